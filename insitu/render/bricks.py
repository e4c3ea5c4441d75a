"""Bricks: the pieces of a distributed volume a rank renders, placed on one global lattice.

A brick is one block's values plus up to one sample of margin on each side
(from the ghost layers, or from the neural model evaluated there), so
interpolation runs across block boundaries. Each brick *owns* a half-open
world box; the owned boxes of all bricks tile the data's bounds without
overlap, which is what makes the composited image independent of how the
volume is split.

Placement is computed from integer indices on a lattice anchored at a common
world ``anchor`` with a common ``spacing``, so two bricks compute the same
float for the face they share. Index ``k`` of vertex data sits at
``anchor + k*h``; cell ``k`` of element data spans ``anchor + [k, k+1]*h``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Extent:
    """An owned block in global index space: ``start`` and ``dims`` (z, y, x), and its association."""

    start: tuple[int, int, int]
    dims: tuple[int, int, int]
    association: str

    @property
    def stop(self) -> tuple[int, int, int]:
        return tuple(s + n for s, n in zip(self.start, self.dims))  # type: ignore[return-value]


@dataclass(frozen=True)
class Lattice:
    """The common placement of all bricks: world ``anchor`` and ``spacing`` (x, y, z) and the global index box."""

    anchor: tuple[float, float, float]
    spacing: tuple[float, float, float]
    start: tuple[int, int, int]  # (z, y, x) global index box of all owned samples
    stop: tuple[int, int, int]
    association: str

    def world(self, index_zyx: Sequence[float]) -> np.ndarray:
        """World (x, y, z) of a (z, y, x) lattice coordinate."""
        return np.asarray(self.anchor) + np.asarray(index_zyx[::-1], dtype=np.float64) * np.asarray(self.spacing)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """World (lo, hi) of the data: first to last vertex, or the outer faces of the cells."""
        last = tuple(b - 1 for b in self.stop) if self.association == "vertex" else self.stop
        return self.world(self.start), self.world(last)

    def owned_box(self, ext: Extent) -> tuple[np.ndarray, np.ndarray]:
        """World (lo, hi) a brick owns: half-way to the neighbouring vertices, or its cells' faces."""
        if self.association == "vertex":
            lo, hi = self.world([s - 0.5 for s in ext.start]), self.world([e - 0.5 for e in ext.stop])
            blo, bhi = self.bounds()
            # the data ends at the outer vertices; nudge hi so the last vertex is inside [lo, hi)
            return np.maximum(lo, blo), np.minimum(hi, np.nextafter(bhi, np.inf))
        return self.world(ext.start), self.world(ext.stop)

    def sample_origin(self, first_index_zyx: Sequence[int]) -> np.ndarray:
        """World (x, y, z) of the sample at a (z, y, x) index: vertex positions or cell centres."""
        off = 0.0 if self.association == "vertex" else 0.5
        return self.world([i + off for i in first_index_zyx])

    @classmethod
    def common(cls, extents: Sequence[Extent], anchors: Sequence[Sequence[float]],
               spacing: Sequence[float]) -> "Lattice":
        """The lattice of a set of blocks (every rank passes the same lists, e.g. after an allgather)."""
        if not extents:
            raise ValueError("no blocks to render")
        assoc = {e.association for e in extents}
        if len(assoc) != 1:
            raise ValueError(f"blocks mix associations {sorted(assoc)}: render one association at a time")
        lo = tuple(min(e.start[a] for e in extents) for a in range(3))
        hi = tuple(max(e.stop[a] for e in extents) for a in range(3))
        anchor = tuple(float(np.min([a[i] for a in anchors])) for i in range(3))
        return cls(anchor, tuple(float(h) for h in spacing), lo, hi, assoc.pop())  # type: ignore[arg-type]


@dataclass
class Brick:
    """Values (z, y, x, float32) covering an owned extent plus ``margin_lo``/``margin_hi`` samples per axis."""

    values: np.ndarray
    extent: Extent
    margin_lo: tuple[int, int, int] = (0, 0, 0)

    def origin(self, lattice: Lattice) -> np.ndarray:
        """World (x, y, z) of ``values[0, 0, 0]``."""
        return lattice.sample_origin([s - m for s, m in zip(self.extent.start, self.margin_lo)])

    def owned_values(self) -> np.ndarray:
        sl = tuple(slice(m, m + n) for m, n in zip(self.margin_lo, self.extent.dims))
        return self.values[sl]


def margin_box(owned: Sequence[Sequence[int]], shape: Sequence[int], margin: int = 1
               ) -> tuple[tuple[tuple[int, int], ...], tuple[int, int, int]]:
    """The owned (z, y, x) box grown by up to ``margin`` samples inside ``shape``, and the growth below."""
    box = tuple((max(a - margin, 0), min(b + margin, n)) for (a, b), n in zip(owned, shape))
    return box, tuple(a - g for (a, _), (g, _) in zip(owned, box))  # type: ignore[return-value]
