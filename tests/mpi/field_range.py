"""psnr_range='field': each rank's block aims at the field's range over all ranks, found by one all-gather.

    mpiexec -n 2 python tests/mpi/field_range.py WORKDIR

Rank r holds a block of values scaled by (r + 1), so the field's range is larger than the first ranks' own.
Each block's PSNR in the cache is relative to the field's range (rank 0 checks it on the decoded blocks), and
the field as a whole meets the target.
"""
import os
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

import inr
from insitu.blueprint import uniform_domain
from insitu.runtime import connect
from sims.analytic import gaussians

comm = MPI.COMM_WORLD
os.chdir(Path(sys.argv[1]))
TARGET = 40.0
SHAPE = (12, 14, 16)


def block_of(rank: int) -> np.ndarray:
    return (gaussians(SHAPE, seed=rank) * (rank + 1)).astype(np.float32)


rt = connect(comm, prefer="embedded")
rt.publish([uniform_domain(block_of(comm.rank), field="e", domain_id=comm.rank, cycle=0)])
rt.execute([{"action": "add_extracts", "extracts": {"x": {"type": "python", "params": {
    "source": f"import ascent_filters as af; af.compress(fields=['e'], target_psnr={TARGET}, psnr_range='field', "
              "backend='native', max_steps=300, cache='run.cache')"}}}}])
rt.close()
from insitu.filters.session import current  # noqa: E402

current().close_all()
comm.Barrier()
if comm.rank == 0:
    from insitu.cache import TemporalCache

    reader = TemporalCache.open("run.cache")
    blocks = [block_of(r) for r in range(comm.size)]
    field_range = max(float(b.max()) for b in blocks) - min(float(b.min()) for b in blocks)
    mse, n = 0.0, 0
    for r, b in enumerate(blocks):
        dec = reader.model("e", 0, r).decode(backend="native")
        reported = reader.meta("e", 0, r).psnr
        assert abs(reported - inr.psnr(b, dec, field_range)) < 1e-3, (r, reported)  # relative to the field's range
        assert reported >= TARGET, (r, reported)
        mse += float(np.sum((dec.astype(np.float64) - b) ** 2))
        n += b.size
    whole = 20 * np.log10(field_range) - 10 * np.log10(mse / n)
    own = inr.psnr(blocks[0], reader.model("e", 0, 0).decode(backend="native"))
    assert whole >= TARGET and own < TARGET, (whole, own)  # rank 0's block alone: below, by its smaller range
    print("OK", round(whole, 2), round(own, 2))
