"""A 3D Cartesian domain decomposition with ghost layers and a non-blocking halo exchange of faces.

    dec = CartDecomposition(comm, (nz, ny, nx), periodic=(True, True, True), ghosts=1)
    a = dec.allocate()          # owned block + ghost layers, float64
    dec.exchange(a)             # fill ghosts from the neighbours (axis by axis: edges and corners too)

Blocks are as even as the grid allows: along an axis of n samples over p
processes the first ``n % p`` blocks get one more sample. Ranks are laid out by
``MPI.Compute_dims`` and ``Create_cart`` (axis 0 = z). Only arrays of owned
values cross ranks, and only to face neighbours.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def split(n: int, parts: int) -> list[tuple[int, int]]:
    """(start, stop) of ``parts`` blocks of ``n`` samples, sizes differing by at most one."""
    base, extra = divmod(n, parts)
    out, start = [], 0
    for i in range(parts):
        size = base + (1 if i < extra else 0)
        out.append((start, start + size))
        start += size
    return out


class CartDecomposition:
    """This rank's block of a global (z, y, x) grid, its neighbours, and halo exchange."""

    def __init__(self, comm: Any, shape: Sequence[int], periodic: Sequence[bool] = (True, True, True),
                 ghosts: int = 1, dims: Sequence[int] | None = None) -> None:
        from mpi4py import MPI

        self.comm = comm
        self.shape = tuple(int(n) for n in shape)
        self.ghosts = int(ghosts)
        size = comm.Get_size()
        self.dims = list(dims) if dims is not None else MPI.Compute_dims(size, 3)
        for n, p in zip(self.shape, self.dims):
            if p > n:
                raise ValueError(f"a grid of {self.shape} cannot be split over {size} processes as {self.dims}: "
                                 "use a larger grid or fewer processes")
        smallest = min(n // p for n, p in zip(self.shape, self.dims))
        if not 0 <= self.ghosts <= smallest:  # a ghost layer comes from one neighbour's owned samples
            raise ValueError(f"ghosts={ghosts} must be >= 0 and at most the smallest block size ({smallest}) "
                             f"of {self.shape} over {size} processes as {self.dims}")
        self.periodic = tuple(bool(p) for p in periodic)
        self.cart = comm.Create_cart(self.dims, periods=list(self.periodic), reorder=False)
        self.coords = tuple(self.cart.Get_coords(self.cart.Get_rank()))
        self.box = tuple(split(n, p)[c] for n, p, c in zip(self.shape, self.dims, self.coords))
        self.start = tuple(a for a, _ in self.box)
        self.local_shape = tuple(b - a for a, b in self.box)
        self.neighbours = [self.cart.Shift(axis, 1) for axis in range(3)]  # (lower, upper) per axis

    @property
    def rank(self) -> int:
        """This process's rank in the Cartesian communicator (the published ``domain_id``)."""
        return self.cart.Get_rank()

    def allocate(self, dtype: Any = np.float64, fill: float = 0.0) -> np.ndarray:
        """An array of the owned block plus ``ghosts`` layers on every side."""
        g = self.ghosts
        return np.full(tuple(n + 2 * g for n in self.local_shape), fill, dtype=dtype)

    def owned(self, a: np.ndarray) -> np.ndarray:
        """The owned part of an array from :meth:`allocate` (a view)."""
        g = self.ghosts
        return a[tuple(slice(g, g + n) for n in self.local_shape)]

    def global_index(self, with_ghosts: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Global (z, y, x) indices of the owned samples (or of the whole array, ghosts included)."""
        g = self.ghosts if with_ghosts else 0
        axes = [np.arange(a - g, b + g) for a, b in self.box]
        return tuple(np.meshgrid(*axes, indexing="ij"))  # type: ignore[return-value]

    def ghost_mask(self) -> np.ndarray:
        """1 on ghost samples, 0 on owned ones (the Blueprint ``ascent_ghosts`` field)."""
        mask = np.ones(tuple(n + 2 * self.ghosts for n in self.local_shape), dtype=np.int32)
        self.owned(mask)[...] = 0
        return mask

    def exchange(self, a: np.ndarray) -> None:
        """Fill ``a``'s ghost layers from the face neighbours (Isend/Irecv, one axis at a time).

        Each axis sends full slabs, ghosts of the axes already done included,
        so edge and corner ghosts are right too. Outer faces of non-periodic
        axes are left alone (the caller's boundary condition fills them).
        """
        from mpi4py import MPI

        g = self.ghosts
        if g == 0:
            return
        for axis in range(3):
            lower, upper = self.neighbours[axis]
            n = self.local_shape[axis]

            def slab(lo: int, hi: int) -> tuple[slice, ...]:
                idx = [slice(None)] * 3
                idx[axis] = slice(lo, hi)
                return tuple(idx)

            sends = [(np.ascontiguousarray(a[slab(g, 2 * g)]), lower, 0),        # my low face goes down
                     (np.ascontiguousarray(a[slab(n, n + g)]), upper, 1)]       # my high face goes up
            recv_hi = np.empty_like(sends[0][0])  # from the upper neighbour's low face
            recv_lo = np.empty_like(sends[1][0])  # from the lower neighbour's high face
            reqs = []
            if upper != MPI.PROC_NULL:
                reqs.append(self.cart.Irecv(recv_hi, source=upper, tag=10 * axis + 0))
            if lower != MPI.PROC_NULL:
                reqs.append(self.cart.Irecv(recv_lo, source=lower, tag=10 * axis + 1))
            for buf, dest, tag in sends:
                if dest != MPI.PROC_NULL:
                    reqs.append(self.cart.Isend(buf, dest=dest, tag=10 * axis + tag))
            MPI.Request.Waitall(reqs)
            if upper != MPI.PROC_NULL:
                a[slab(n + g, n + 2 * g)] = recv_hi
            if lower != MPI.PROC_NULL:
                a[slab(0, g)] = recv_lo

    def gather(self, owned: np.ndarray, root: int = 0) -> np.ndarray | None:
        """The global array assembled on ``root`` from every rank's owned block (None elsewhere)."""
        parts = self.comm.gather((self.box, np.ascontiguousarray(owned)), root=root)
        if self.comm.Get_rank() != root:
            return None
        out = np.empty(self.shape, dtype=owned.dtype)
        for box, block in parts:
            out[tuple(slice(a, b) for a, b in box)] = block
        return out
