"""Helpers shared by the cache subcommands (``info``, ``verify``, ``export``); not a subcommand itself."""
from __future__ import annotations

import sys
from typing import Any, Iterable, TypeVar

from .cli import CliError

T = TypeVar("T")


def open_cache(path: str) -> Any:
    """A read-only :class:`insitu.cache.CacheReader`, cache errors turned into :class:`CliError`."""
    from .cache import CacheError, CacheReader

    try:
        return CacheReader(path)
    except CacheError as exc:
        raise CliError(str(exc)) from None


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
    """A tqdm progress bar on stderr (shown on terminals, silent in pipes and tests)."""
    from tqdm import tqdm

    return tqdm(items, desc=desc, total=total, unit="entry", file=sys.stderr, disable=None, leave=False)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000.0
    return f"{n} B"  # pragma: no cover
