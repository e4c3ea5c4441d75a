"""Grid geometry: normalised coordinates of grid points and the owned box."""
from __future__ import annotations

import numpy as np

from .errors import InrValueError

ASSOCIATIONS = ("vertex", "element")

#: (start, stop) per axis in (z, y, x) order.
Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


def axis_coords(n: int, association: str) -> np.ndarray:
    """Normalised coordinate in [0, 1] of each of ``n`` samples along one axis.

    Vertex data sits on the block's corners (``i/(n-1)``); element (cell) data
    at cell centres (``(i+0.5)/n``). A single vertex sits at 0.5.
    """
    if association == "vertex":
        if n == 1:
            return np.full(1, 0.5, dtype=np.float32)
        return (np.arange(n, dtype=np.float64) / (n - 1)).astype(np.float32)
    if association == "element":
        return ((np.arange(n, dtype=np.float64) + 0.5) / n).astype(np.float32)
    raise InrValueError(f"association={association!r} is invalid: valid choices are {list(ASSOCIATIONS)}")


def grid_axes(shape: tuple[int, int, int], association: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates along x, y, z for a C-ordered ``(nz, ny, nx)`` grid."""
    nz, ny, nx = shape
    return axis_coords(nx, association), axis_coords(ny, association), axis_coords(nz, association)


def grid_points(xs: np.ndarray, ys: np.ndarray, zs: np.ndarray) -> np.ndarray:
    """All points of the tensor grid as (N, 3) float32 (x, y, z), x fastest."""
    z, y, x = np.meshgrid(zs, ys, xs, indexing="ij")
    return np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1).astype(np.float32)


def full_box(shape: tuple[int, ...]) -> Box:
    return tuple((0, int(n)) for n in shape)  # type: ignore[return-value]


def owned_box(ghost_mask: np.ndarray | None, shape: tuple[int, int, int]) -> Box:
    """The box of owned samples (ghost value 0) of a block; the whole block without a mask.

    Ghost layers sit on the faces of a block, so the owned samples must form a box.
    """
    if ghost_mask is None:
        return full_box(shape)
    g = np.asarray(ghost_mask)
    if g.shape != tuple(shape):
        raise InrValueError(f"ghost_mask has shape {g.shape}; it must match values' shape {tuple(shape)}")
    owned = g == 0
    if not owned.any():
        raise InrValueError("ghost_mask marks every sample as ghost: nothing is owned")
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(owned.any(axis=other))
        box.append((int(hit[0]), int(hit[-1]) + 1))
    sl = tuple(slice(a, b) for a, b in box)
    if not owned[sl].all() or owned.sum() != owned[sl].size:
        raise InrValueError("ghost_mask: the owned samples (value 0) must form a box with ghosts only on its faces")
    return tuple(box)  # type: ignore[return-value]


def box_slices(box: Box) -> tuple[slice, slice, slice]:
    return tuple(slice(a, b) for a, b in box)  # type: ignore[return-value]


def box_shape(box: Box) -> tuple[int, int, int]:
    return tuple(b - a for a, b in box)  # type: ignore[return-value]
