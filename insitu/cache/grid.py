"""One cycle's global grid as readers outside the renderer see it (``insitu export``, the xarray backend).

* the grid a cycle's metadata describes is judged (:func:`insitu.cache.meta.check_grid_size`) before
  any array is allocated, so a cache that asks for a huge grid gives one clear line, not a MemoryError;
* :func:`decode_grid` decodes and assembles one cycle, and names the cycle when a
  domain of it cannot be decoded (:class:`CycleDamagedError`);
* :func:`cycle_figures` are a cycle's time, compression ratio and worst-domain
  PSNR, from the index alone (no decode).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np

from insitu.cache.errors import CacheError
from insitu.cache.meta import check_grid_size
from insitu.cache.replay import GridGeometry
from insitu.cache.summary import _group


class CycleDamagedError(CacheError):
    """A domain of the cycle does not decode (damaged entry, broken delta chain); the message names the cycle."""

    def __init__(self, message: str, field: str, cycle: int) -> None:
        super().__init__(message)
        self.field = field
        self.cycle = cycle


def decode_grid(reader: Any, field: str, cycle: int, *, backend: str = "auto",
                progress: Callable[[Iterable[int]], Iterable[int]] | None = None
                ) -> tuple[np.ndarray, GridGeometry]:
    """The global grid of ``field`` at ``cycle`` (float32, z, y, x; NaN where no domain covers) and its placement.

    The grid's size is checked from the metadata first (GridTooLargeError); a domain that
    does not decode raises CycleDamagedError naming the field and cycle. An unknown field or
    cycle raises the reader's CacheKeyError.
    """
    where = f"field {field!r} cycle {cycle}"
    geo = reader.geometry(field, cycle)
    check_grid_size(geo.dims, where)
    try:
        values = reader.reconstruct(field, cycle, blocks=False, backend=backend, progress=progress)
    except CacheError as exc:
        if isinstance(exc, KeyError):
            raise
        raise CycleDamagedError(f"{where} cannot be decoded: {exc}", field, cycle) from exc
    return values, geo


@dataclass(frozen=True)
class CycleFigures:
    """What the index says about one cycle of one field (no decode)."""

    cycle: int
    time: float | None  # simulation time (None: not recorded)
    ratio: float | None  # raw float32 bytes / model bytes stored for the cycle
    psnr_min: float | None  # the worst domain's PSNR at compression (inf: all exact; None: unknown)


def cycle_figures(reader: Any, field: str, cycle: int) -> CycleFigures:
    """Time, compression ratio and worst-domain PSNR of ``field`` at ``cycle``, from the index."""
    rows = [r for r in (reader.index.row((field, cycle, d)) for d in reader.domains(field, cycle)) if r is not None]
    g = _group(rows)
    times = [r.meta.time for r in rows if r.meta.time is not None]
    psnrs = [r.meta.psnr for r in rows]
    psnr = None if not psnrs or any(p is None for p in psnrs) else min(psnrs)  # type: ignore[type-var]
    return CycleFigures(int(cycle), times[0] if times else None, g["ratio"], psnr)
