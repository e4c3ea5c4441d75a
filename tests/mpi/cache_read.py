"""MPI reader: replay a cache written by cache_write.py on any number of processes and check it.

usage: mpiexec -n N python cache_read.py CACHE
The reconstructed grid must equal each block's Model.decode() placed by its extent.
"""
from __future__ import annotations

import sys

import numpy as np
from mpi4py import MPI

from support.cache_common import decomposition, make_entry

from insitu.cache import TemporalCache

comm = MPI.COMM_WORLD
reader = TemporalCache.open(sys.argv[1], comm=comm)
blocks = decomposition()
assert reader.fields() == ["energy", "pressure"], reader.fields()
assert reader.cycles("energy") == [0, 10, 20]
writer_ranks = {s.rank for s in reader.index.segments.values()}
assert len(writer_ranks) == 4, writer_ranks

# the expected global grids, from each block's Model.decode()
for cycle in (0, 10, 20):
    for fi, field in enumerate(("energy", "pressure")):
        assoc = "vertex" if fi == 0 else "element"
        expected = np.full((10, 12, 14), np.nan, np.float32)
        for d, start, dims in blocks:
            model, _, _ = make_entry(1000 * cycle + 10 * d + fi, start=start, owned_shape=dims, association=assoc)
            sl = tuple(slice(s, s + n) for s, n in zip(start, dims))
            expected[sl] = model.decode(backend="torch")
        assert not np.isnan(expected).any()
        mine = reader.reconstruct(field, cycle, blocks=True, backend="torch")
        assert [b.domain for b in mine] == reader.my_domains(field, cycle)
        for b in mine:  # this rank's share, each block equal to its decode placed by its extent
            sl = tuple(slice(s, s + n) for s, n in zip(b.start, b.dims))
            assert np.array_equal(b.values, expected[sl]), (field, cycle, b.domain)
        shares = comm.allgather(reader.my_domains(field, cycle))
        assert sorted(d for s in shares for d in s) == list(range(len(blocks))), shares
        assert all(len(s) >= 1 for s in shares)
        whole = reader.reconstruct(field, cycle, blocks=False, backend="torch")  # gathered on rank 0
        if comm.rank == 0:
            assert np.array_equal(whole, expected), (field, cycle)
        else:
            assert whole is None
        if comm.size == 1:
            assert np.array_equal(reader.reconstruct(field, cycle, backend="torch"), expected)
        geo = reader.geometry(field, cycle)
        assert geo.start == (0, 0, 0) and geo.dims == (10, 12, 14) and geo.association == assoc
assert reader.verify() == []
reader.close()
comm.Barrier()
if comm.rank == 0:
    print("replayed on", comm.size, "processes: OK")
