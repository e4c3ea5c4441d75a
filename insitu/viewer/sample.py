"""A small demo cache for the viewer's tests, benchmark and docs: a blob moving through a box.

    python -m insitu.viewer.sample demo.cache      # then: insitu view demo.cache

Every writer rank owns a slab along z and keeps its own segment files, as the
simulation ranks do; models are real fits (``inr.fit``), kept tiny so that
building the cache takes seconds on a laptop CPU.
"""
from __future__ import annotations

import argparse
import os
from typing import Sequence

import numpy as np


def blob_field(shape: Sequence[int], cycle: int, n_cycles: int) -> np.ndarray:
    """A Gaussian blob (plus a gentle gradient) whose centre moves along x with the cycle; float32 (z, y, x)."""
    z, y, x = np.meshgrid(*(np.linspace(0.0, 1.0, n) for n in shape), indexing="ij")
    cx = 0.25 + 0.5 * cycle / max(n_cycles - 1, 1)
    r2 = (x - cx) ** 2 + (y - 0.5) ** 2 + (z - 0.5) ** 2
    return (np.exp(-r2 / 0.03) + 0.2 * z).astype(np.float32)


def make_sample_cache(path: str | os.PathLike, *, shape: Sequence[int] = (24, 24, 24), cycles: Sequence[int] = (0, 10, 20),
                      ranks: int = 2, field: str = "energy", ratio: float = 8.0, max_steps: int = 200,
                      spacing: Sequence[float] = (0.1, 0.1, 0.1), more_fields: Sequence[str] = ()) -> None:
    """Write ``field`` at ``cycles`` into the cache at ``path`` (created, or appended to), split over ``ranks``
    writer ranks (z slabs); each of ``more_fields`` holds the blob turned inside out and scaled (k + 2)."""
    import inr
    from insitu.cache import EntryMeta, TemporalCache

    cuts = np.linspace(0, shape[0], ranks + 1).astype(int)
    writers = [TemporalCache(path, rank=r) for r in range(ranks)]
    try:
        for i, cycle in enumerate(cycles):
            blob = blob_field(shape, i, len(cycles))
            for k, name in enumerate((field, *more_fields)):
                values = blob if k == 0 else ((1.2 - blob) * (k + 1)).astype(np.float32)
                for r, cache in enumerate(writers):
                    z0, z1 = int(cuts[r]), int(cuts[r + 1])
                    model, report = inr.fit(np.ascontiguousarray(values[z0:z1]), ratio=ratio, backend="native",
                                            max_steps=max_steps, seed=r, threads=1)
                    start = (z0, 0, 0)
                    origin = tuple(s * h for s, h in zip(start, spacing))
                    meta = EntryMeta.from_model(model, report, start=start, origin=origin, spacing=spacing,
                                                time=0.01 * cycle)
                    cache.put(name, int(cycle), r, model.to_bytes(), meta)
            for cache in writers:
                cache.flush()
    finally:
        for cache in writers:
            cache.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m insitu.viewer.sample", description=__doc__.splitlines()[0])
    p.add_argument("path", help="the cache directory to create")
    p.add_argument("--size", type=int, default=32, help="grid size per axis (default 32)")
    p.add_argument("--cycles", type=int, default=8, help="number of cycles (default 8)")
    p.add_argument("--ranks", type=int, default=2, help="writer ranks (default 2)")
    a = p.parse_args(argv)
    make_sample_cache(a.path, shape=(a.size,) * 3, cycles=[10 * i for i in range(a.cycles)], ranks=a.ranks)
    print(f"wrote {a.path}: field 'energy', {a.cycles} cycles, {a.ranks} writer ranks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
