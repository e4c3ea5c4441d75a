"""Under mpiexec -n N: the decomposition covers the grid once and the halo exchange fills every ghost.

    mpiexec -n 4 python tests/mpi/sim_halo.py NZ NY NX PERIODIC GHOSTS

PERIODIC: one 0/1 flag per axis (z, y, x), e.g. 101.
"""
import sys

import numpy as np
from mpi4py import MPI

from sims.decomposition import CartDecomposition

comm = MPI.COMM_WORLD
nz, ny, nx, g = (int(v) for v in sys.argv[1:4] + sys.argv[5:6])
periodic = tuple(flag == "1" for flag in sys.argv[4])
shape = (nz, ny, nx)
dec = CartDecomposition(comm, shape, periodic, g)
covered = comm.allreduce(int(np.prod(dec.local_shape)))
assert covered == nz * ny * nx, (covered, shape)
boxes = comm.allgather(dec.box)
hits = np.zeros(shape, int)
for box in boxes:
    hits[tuple(slice(a, b) for a, b in box)] += 1
assert (hits == 1).all(), "blocks overlap or leave holes"
sizes = [[b - a for a, b in (box[axis] for box in boxes)] for axis in range(3)]
assert all(max(s) - min(s) <= 1 for s in sizes), sizes


def code(z, y, x):
    return (z * 1000 + y) * 1000 + x


a = dec.allocate(fill=-1.0)
dec.owned(a)[...] = code(*dec.global_index())
dec.exchange(a)
z, y, x = dec.global_index(with_ghosts=True)
# a periodic axis wraps; on the others a ghost outside the grid is the caller's (left at -1)
idx = [np.mod(i, n) if p else i for i, n, p in zip((z, y, x), shape, periodic)]
inside = np.ones(a.shape, bool)
for i, n in zip(idx, shape):
    inside &= (i >= 0) & (i < n)
assert (a[inside] == code(*idx)[inside]).all(), f"rank {comm.Get_rank()}: ghosts wrong"
assert (a[~inside] == -1).all(), "outer ghosts of a non-periodic axis must be left alone"
full = dec.gather(dec.owned(a))
if comm.Get_rank() == 0:
    zz, yy, xx = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    assert (full == code(zz, yy, xx)).all()
    print("OK", dec.dims)

# the published Blueprint domain: ghosts marked, placed on the global lattice, owned values right
from insitu.blueprint import blocks  # noqa: E402 (the second half of the script)
from sims.driver import blueprint  # noqa: E402

for assoc in ("vertex", "element"):
    dom = blueprint(dec, {"a": a, "b": 2 * a}, cycle=3, t=0.5, association=assoc, spacing=0.25)
    (blk,) = list(blocks([dom], "a"))
    assert blk.global_start() == dec.start, (blk.global_start(), dec.start)
    assert np.array_equal(blk.owned_values, dec.owned(a).astype(np.float32))
    assert blk.ghost.sum() == a.size - np.prod(dec.local_shape) and blk.domain_id == comm.Get_rank()
    assert (blk.cycle, blk.time, blk.association) == (3, 0.5, assoc)
    (b2,) = list(blocks([dom], "b"))
    assert np.array_equal(b2.owned_values, 2 * blk.owned_values)
