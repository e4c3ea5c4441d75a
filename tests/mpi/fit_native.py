"""Each rank fits its own block with the native backend; rank 0 checks every PSNR.

    mpiexec -n 2 python tests/mpi/fit_native.py

Also checks that, with OMP_NUM_THREADS unset, the native backend shares the
cores out among the ranks of the node (never oversubscribing).
"""
import os

from mpi4py import MPI

import inr
from inr.backends.native_backend import NativeBackend, cpu_count, local_ranks
from sims.analytic import gaussians

comm = MPI.COMM_WORLD
os.environ.pop("OMP_NUM_THREADS", None)  # read at each backend creation: the MPI default applies
field = gaussians((32, 32, 32 * comm.size), seed=3)
block = field[:, :, 32 * comm.rank: 32 * (comm.rank + 1)]
model, rep = inr.fit(block, ratio=20, target_psnr=35, max_steps=800, batch_size=1 << 13, backend="native",
                     seed=comm.rank)
back = inr.Model.from_bytes(model.to_bytes()).decode(backend="native")
threads = NativeBackend().threads
expected = max(1, cpu_count() // comm.size)
reports = comm.gather((comm.rank, rep.backend, rep.psnr, inr.psnr(block, back), local_ranks(), threads, expected),
                      root=0)
if comm.rank == 0:
    for rank, backend, p, p2, ranks, got, want in reports:
        assert backend == "native", (rank, backend)
        assert p >= 35 and abs(p - p2) < 1e-6, (rank, p, p2)
        assert ranks == comm.size and got == want, (rank, ranks, got, want)
    print("OK", reports)
