"""Shared by the render tests and their MPI scripts: a global field split in ghosted blocks, as bricks or a cache."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from insitu.render.bricks import Brick, Extent, Lattice, margin_box
from insitu.render.frame import Piece

SPACING = (0.5, 0.5, 0.5)  # (x, y, z) world spacing of the test grids


def field(shape=(40, 36, 32), seed: int = 1) -> np.ndarray:
    """A smooth field with blobs (z, y, x), float32."""
    from sims.analytic import gaussians

    return gaussians(shape, n=4, seed=seed)


def split(shape, parts):
    """(start, stop) per block (z, y, x) of a regular, possibly uneven, decomposition."""
    cuts = [np.linspace(0, n, p + 1).astype(int) for n, p in zip(shape, parts)]
    for idx in itertools.product(*(range(p) for p in parts)):
        yield (tuple(int(cuts[a][i]) for a, i in enumerate(idx)), tuple(int(cuts[a][i + 1]) for a, i in enumerate(idx)))


def pieces(values: np.ndarray, parts, association: str = "vertex") -> list[Piece]:
    """The field's blocks as render pieces (margin from the neighbours, as ghost layers give)."""
    out = []
    for start, stop in split(values.shape, parts):
        owned = tuple(zip(start, stop))
        box, mlo = margin_box(owned, values.shape)
        vals = np.ascontiguousarray(values[tuple(slice(a, b) for a, b in box)])
        own = values[tuple(slice(a, b) for a, b in owned)]
        ext = Extent(start, tuple(b - a for a, b in owned), association)
        out.append(Piece(Brick(vals, ext, mlo), (0.0, 0.0, 0.0), SPACING, (float(np.nanmin(own)), float(np.nanmax(own)))))
    return out


def lattice(shape, association: str = "vertex") -> Lattice:
    return Lattice((0.0, 0.0, 0.0), SPACING, (0, 0, 0), tuple(shape), association)


def write_cache(path: Path, values_by_cycle: dict[int, np.ndarray], parts, ratio: float = 20.0,
                max_steps: int = 400, association: str = "vertex") -> None:
    """Fit every ghosted block of every cycle (native backend) into a cache at ``path``; one domain per block."""
    import inr
    from insitu.cache import EntryMeta, TemporalCache

    with TemporalCache(path) as cache:
        for cycle, values in values_by_cycle.items():
            for d, (start, stop) in enumerate(split(values.shape, parts)):
                owned = tuple(zip(start, stop))
                box, _ = margin_box(owned, values.shape)  # one ghost layer where a neighbour exists
                block = values[tuple(slice(a, b) for a, b in box)]
                ghost = np.ones(block.shape, dtype=np.int32)
                ghost[tuple(slice(a - g, b - g) for (a, b), (g, _) in zip(owned, box))] = 0
                model, report = inr.fit(block, ghost_mask=ghost, association=association, ratio=ratio,
                                        max_steps=max_steps, backend="native", seed=d)
                origin = tuple(s * h for s, h in zip(start, SPACING[::-1]))
                meta = EntryMeta.from_model(model, report, start=start, origin=origin, spacing=SPACING[::-1],
                                            time=0.1 * cycle)
                cache.put("f", cycle, d, model.to_bytes(), meta)
