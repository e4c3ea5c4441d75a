"""Each rank fits its own slab of a global field, no data exchanged; rank 0 checks all PSNRs.

    mpiexec -n 2 python tests/mpi/fit_blocks.py [backend]
"""
import sys

from mpi4py import MPI

import inr
from sims.analytic import gaussians

comm = MPI.COMM_WORLD
backend = sys.argv[1] if len(sys.argv) > 1 else "native"
field = gaussians((32, 32, 32 * comm.size), seed=7)
block = field[:, :, 32 * comm.rank: 32 * (comm.rank + 1)]
model, rep = inr.fit(block, ratio=20, target_psnr=35, max_steps=800, batch_size=1 << 13, backend=backend,
                     seed=comm.rank)
back = inr.Model.from_bytes(model.to_bytes()).decode(backend=backend)
reports = comm.gather((comm.rank, rep.psnr, inr.psnr(block, back), rep.ratio), root=0)
if comm.rank == 0:
    for rank, p, p2, ratio in reports:
        assert p >= 35 and abs(p - p2) < 1e-6 and ratio >= 20, (rank, p, p2, ratio)
    print("OK", reports)
