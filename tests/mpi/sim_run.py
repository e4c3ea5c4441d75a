"""Under mpiexec -n N: run a proxy without actions; save its initial and final global fields (rank 0).

    mpiexec -n 4 python tests/mpi/sim_run.py PROXY OUT.npz [proxy options...]

Keys: each field's final global array, ``initial_<field>``, ``time``.
"""
import importlib
import json
import sys

import numpy as np
from mpi4py import MPI

from sims.decomposition import CartDecomposition
from sims.driver import parse, run

name, out, *opts = sys.argv[1:]
proxy = importlib.import_module(f"sims.{name}").PROXY
args = parse(proxy, [*opts, "--actions", "none", "--final-actions", "none", "--quiet"])
comm = MPI.COMM_WORLD
dec = CartDecomposition(comm, args.grid, proxy.periodic, args.ghosts)
initial = {f"initial_{k}": dec.gather(dec.owned(v)) for k, v in proxy.fields(dec, proxy.init(dec, args)).items()}
res = run(proxy, args, comm)
final = res.gather()
if comm.Get_rank() == 0:
    np.savez(out, time=res.state["time"], **final, **initial)
    print(json.dumps({"dims": list(res.dec.dims), "time": res.state["time"], "updates": args.updates}))
