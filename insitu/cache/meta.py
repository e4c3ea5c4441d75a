"""What the cache stores next to each entry's model bytes: :class:`EntryMeta`.

All per-axis tuples are in (z, y, x) order, like the numpy grids.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from insitu.cache.errors import CacheBudgetError, CacheCorruptError, GridTooLargeError

if TYPE_CHECKING:  # the cache treats models as opaque bytes; inr is only needed by helpers
    import inr

ASSOCIATIONS = ("vertex", "element")

#: the FitReport keys every entry carries (None when unknown).
FIT_KEYS = ("psnr", "max_abs_error", "ratio", "seconds", "error_bound")


def _triple(name: str, value: Sequence[Any], kind: type) -> tuple:
    try:
        out = tuple(kind(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}={value!r} must be three numbers (z, y, x)") from exc
    if len(out) != 3:
        raise ValueError(f"{name}={value!r} must have three values (z, y, x)")
    return out


@dataclass(frozen=True)
class EntryMeta:
    """Metadata of one cached block (one field, cycle and domain).

    * ``start`` / ``dims``: the owned samples' box in the global index space,
      first index and sizes, (z, y, x).
    * ``origin``: world coordinates (z, y, x) of the owned region's lower
      corner point: the first owned vertex for ``"vertex"`` data, the lower
      vertex of the first owned cell for ``"element"`` data (as in a Blueprint
      uniform coordset). ``spacing``: world distance between samples (z, y, x).
    * ``association``: ``"vertex"`` or ``"element"``.
    * ``value_range``: (min, max) of the block's values.
    * ``fit``: the :class:`inr.FitReport` as a dict (``FitReport.to_dict()``):
      at least ``psnr`` (None = exact), ``max_abs_error`` (measured), ``ratio``,
      ``seconds``, ``error_bound`` (the guaranteed max abs error of an
      error-bounded entry, None otherwise).
    * ``time``: simulation time of the cycle (None when unknown).
    * ``model_config``: the model's tiny-cuda-nn config dict (JSON), if known.
    """

    start: tuple[int, int, int]
    dims: tuple[int, int, int]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    association: str = "vertex"
    value_range: tuple[float, float] = (0.0, 0.0)
    fit: dict[str, Any] = field(default_factory=dict)
    time: float | None = None
    model_config: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "start", _triple("start", self.start, int))
        set_(self, "dims", _triple("dims", self.dims, int))
        set_(self, "origin", _triple("origin", self.origin, float))
        set_(self, "spacing", _triple("spacing", self.spacing, float))
        if min(self.dims) < 1:
            raise ValueError(f"dims={self.dims} must be positive sizes (z, y, x)")
        if self.association not in ASSOCIATIONS:
            raise ValueError(f"association={self.association!r} is invalid: valid choices are {list(ASSOCIATIONS)}")
        lo, hi = (float(v) for v in self.value_range)
        set_(self, "value_range", (lo, hi))
        fit = {k: None for k in FIT_KEYS}
        fit.update(dict(self.fit or {}))
        set_(self, "fit", fit)
        if self.time is not None:
            set_(self, "time", float(self.time))

    # --- derived figures ---
    @property
    def stop(self) -> tuple[int, int, int]:
        """One past the last owned index, (z, y, x)."""
        return tuple(a + n for a, n in zip(self.start, self.dims))  # type: ignore[return-value]

    @property
    def raw_bytes(self) -> int:
        """float32 bytes of the owned grid (what the entry stands for)."""
        return 4 * math.prod(self.dims)

    @property
    def error_bound(self) -> float | None:
        """The guaranteed max abs error of the entry (error-bounded mode), None when unbounded."""
        v = self.fit.get("error_bound")
        return None if v is None else float(v)

    @property
    def psnr(self) -> float | None:
        """PSNR measured at compression time; ``inf`` for an exact block, None when unknown."""
        v = self.fit.get("psnr")
        if v is None:
            return math.inf if self.fit.get("max_abs_error") == 0 else None
        return float(v)

    # --- constructors / (de)serialization ---
    @classmethod
    def from_model(cls, model: "inr.Model", report: "inr.FitReport | dict | None" = None, *,
                   start: Sequence[int] = (0, 0, 0), origin: Sequence[float] = (0.0, 0.0, 0.0),
                   spacing: Sequence[float] = (1.0, 1.0, 1.0), time: float | None = None) -> "EntryMeta":
        """Meta of a fitted block: dims, association, value range and config come from ``model``.

        ``start`` is the first owned index of the block in the global grid
        (z, y, x); ``report`` the :class:`inr.FitReport` of the fit.
        """
        fit = report.to_dict() if hasattr(report, "to_dict") else dict(report or {})
        return cls(start=tuple(start), dims=tuple(model.owned_shape), origin=tuple(origin), spacing=tuple(spacing),
                   association=model.association, value_range=tuple(model.value_range), fit=fit, time=time,
                   model_config=model.config.to_tcnn())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("start", "dims", "origin", "spacing", "value_range"):
            d[k] = list(d[k])
        return d

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): what the checksum covers."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False,
                          default=_json_default)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EntryMeta":
        return cls(start=d["start"], dims=d["dims"], origin=d.get("origin", (0, 0, 0)),
                   spacing=d.get("spacing", (1, 1, 1)), association=d.get("association", "vertex"),
                   value_range=d.get("value_range", (0, 0)), fit=d.get("fit") or {}, time=d.get("time"),
                   model_config=d.get("model_config"))

    @classmethod
    def from_json(cls, text: str | bytes) -> "EntryMeta":
        return cls.from_dict(json.loads(text))


def _json_default(v: Any) -> Any:
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    raise TypeError(f"{type(v).__name__} is not JSON serializable")


_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([A-Za-z]*)\s*$")


def parse_size(value: int | float | str, name: str = "budget") -> int:
    """Bytes from ``1234``, ``"512MB"``, ``"2GB"``, ``"1.5 GiB"``; KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024."""
    if isinstance(value, bool):
        raise CacheBudgetError(f"{name}={value!r} is not a size: give bytes or a string such as '512MB' or '2GB'")
    if isinstance(value, (int, float)):
        n = value
    elif isinstance(value, str):
        m = _SIZE.match(value)
        if not m or m.group(2).lower() not in _UNITS:
            raise CacheBudgetError(f"{name}={value!r} is not a size: use e.g. '512MB', '2GB', '64KiB' or a byte count")
        n = float(m.group(1)) * _UNITS[m.group(2).lower()]
    else:
        raise CacheBudgetError(f"{name}={value!r} is not a size: give bytes or a string such as '512MB' or '2GB'")
    if not math.isfinite(n) or n <= 0:
        raise CacheBudgetError(f"{name}={value!r} must be a positive size")
    return int(n)


def human_bytes(n: float) -> str:
    """``n`` bytes for people: ``512 B``, ``4.86 KB``, ``1.20 GB`` (powers of 1000, as parse_size reads)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000.0
    return f"{n} B"  # pragma: no cover


def available_memory() -> int:
    """Bytes of memory this machine can still give (``MemAvailable``; all of it where that is unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # no way to know: do not refuse
        return 1 << 62


def check_grid_size(dims: Sequence[int], what: str, itemsize: int = 4, limit: int | None = None) -> int:
    """The bytes of a grid whose size comes from metadata; one-line ``GridTooLargeError`` naming ``what`` when this
    machine cannot hold it (more than ``limit``, default the memory available now).

    Sizes read from a cache are data: a damaged or hostile index could ask for any size, and an
    allocation that fails deep in numpy says nothing about which entry asked for it.
    """
    if len(dims) != 3 or any(int(n) <= 0 for n in dims):
        raise CacheCorruptError(f"{what}: grid dims {tuple(dims)} are not three positive sizes")
    need = math.prod(int(n) for n in dims) * itemsize
    have = available_memory() if limit is None else int(limit)
    if need > have:
        raise GridTooLargeError(f"{what}: the grid {tuple(int(n) for n in dims)} (z, y, x) needs {human_bytes(need)}, "
                                f"more than the {human_bytes(have)} of memory available here: the cache's extents are "
                                "wrong or the grid is too large to assemble on this machine")
    return need
