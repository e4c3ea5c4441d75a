"""Sort-last compositing over MPI: fragments from every brick of every rank -> one image on ``root``.

Direct send with per-pixel visibility order: the image's pixels are split in
``size`` contiguous ranges; every rank sends each range's non-empty fragment
pixels (index, depth, premultiplied RGBA) to the rank owning it
(``alltoall``), each rank sorts its pixels' fragments by depth and blends
them front to back with "over", and ``root`` gathers the ranges. Ordering
per pixel (not per brick) is exact for any convex, disjoint bricks and any
camera, so there are no seams and every process count gives the same image.
The same code runs on one process (``comm=None``).
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from insitu.render.raymarch import Fragment


def _sparse(fragments: Sequence[Fragment]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All fragments' non-empty pixels: (pixel index, depth, rgba)."""
    pix, dep, col = [], [], []
    for f in fragments:
        keep = np.nonzero((f.rgba[:, 3] > 0) & np.isfinite(f.depth))[0]
        pix.append(keep.astype(np.int64))
        dep.append(f.depth[keep])
        col.append(f.rgba[keep])
    if not pix:
        return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros((0, 4), np.float32)
    return np.concatenate(pix), np.concatenate(dep), np.concatenate(col)


def blend(pix: np.ndarray, depth: np.ndarray, rgba: np.ndarray, n_pixels: int, offset: int = 0) -> np.ndarray:
    """Front-to-back "over" of the fragments of pixels ``offset .. offset+n_pixels``; premultiplied RGBA."""
    out = np.zeros((n_pixels, 4), dtype=np.float64)
    if not len(pix):
        return out.astype(np.float32)
    order = np.lexsort((depth, pix))  # by pixel, then nearest first
    pix, rgba = pix[order] - offset, rgba[order].astype(np.float64)
    # layer of each fragment within its pixel: 0 for the nearest, 1 for the next, ...
    starts = np.r_[0, np.nonzero(np.diff(pix))[0] + 1]
    counts = np.diff(np.r_[starts, len(pix)])
    layer = np.arange(len(pix)) - np.repeat(starts, counts)
    for k in range(int(layer.max()) + 1):
        sel = layer == k
        p = pix[sel]
        out[p] += (1.0 - out[p, 3:4]) * rgba[sel]
    return out.astype(np.float32)


def composite(fragments: Sequence[Fragment], shape: tuple[int, int], comm: Any = None, root: int = 0,
              stats: dict | None = None) -> np.ndarray | None:
    """The (height, width, 4) premultiplied image of all ranks' ``fragments`` on ``root`` (None elsewhere).

    Collective over ``comm``: every rank calls it, with however many
    fragments (zero included). ``stats`` (if given) receives ``seconds``.
    """
    t0 = time.perf_counter()
    h, w = shape
    n = h * w
    pix, dep, col = _sparse(fragments)
    size = 1 if comm is None else comm.Get_size()
    if size == 1:
        image = blend(pix, dep, col, n)
    else:
        rank = comm.Get_rank()
        bounds = np.linspace(0, n, size + 1).astype(np.int64)
        order = np.argsort(pix, kind="stable")
        pix, dep, col = pix[order], dep[order], col[order]
        cuts = np.searchsorted(pix, bounds)
        sends = [(pix[cuts[r]:cuts[r + 1]], dep[cuts[r]:cuts[r + 1]], col[cuts[r]:cuts[r + 1]])
                 for r in range(size)]
        received = comm.alltoall(sends)
        mine = blend(np.concatenate([r[0] for r in received]), np.concatenate([r[1] for r in received]),
                     np.concatenate([r[2] for r in received]), int(bounds[rank + 1] - bounds[rank]),
                     offset=int(bounds[rank]))
        parts = comm.gather(mine, root=root)
        image = np.concatenate(parts) if rank == root else None
    if stats is not None:
        stats["seconds"] = time.perf_counter() - t0
    return None if image is None else image.reshape(h, w, 4)


def flatten(image: np.ndarray, background: Sequence[float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """A premultiplied RGBA image over an opaque background -> uint8 RGB."""
    bg = np.asarray(background, dtype=np.float64)[:3]
    rgb = image[..., :3].astype(np.float64) + (1.0 - image[..., 3:4]) * bg
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
