"""MPI writer: every rank caches its blocks of a 2x2x2 decomposition (2 domains per rank with 4 ranks).

usage: mpiexec -n N python cache_write.py CACHE
"""
from __future__ import annotations

import sys

from mpi4py import MPI

from support.cache_common import decomposition, make_entry

from insitu.cache import TemporalCache

comm = MPI.COMM_WORLD
path = sys.argv[1]
blocks = decomposition()
with TemporalCache(path, comm=comm, memory_budget="64KB") as cache:
    for cycle in (0, 10, 20):
        for d, start, dims in blocks[comm.rank::comm.size]:
            for fi, field in enumerate(("energy", "pressure")):
                seed = 1000 * cycle + 10 * d + fi
                _, b, meta = make_entry(seed, start=start, owned_shape=dims,
                                        association="vertex" if fi == 0 else "element", time=cycle * 0.01)
                cache.put(field, cycle, d, b, meta)
        assert cache.flush() == 0
comm.Barrier()
if comm.rank == 0:
    print("wrote", len(blocks), "domains per cycle from", comm.size, "ranks")
