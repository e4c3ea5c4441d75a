"""Helpers shared by the cache subcommands (``info``, ``verify``, ``export``); not a subcommand itself."""
from __future__ import annotations

import sys
from typing import Any, Iterable, TypeVar

from insitu.cli.command import CliError

T = TypeVar("T")


def open_cache(path: str) -> Any:
    """A read-only :class:`insitu.cache.CacheReader`, cache errors turned into :class:`CliError`."""
    from insitu.cache import CacheError, CacheReader

    try:
        return CacheReader(path)
    except CacheError as exc:
        raise CliError(str(exc)) from None


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
    """A tqdm progress bar on stderr (shown on terminals, silent in pipes and tests)."""
    from tqdm import tqdm

    return tqdm(items, desc=desc, total=total, unit="entry", file=sys.stderr, disable=None, leave=False)
