"""Under mpiexec -n N: run a proxy without actions and save the gathered global field (rank 0).

    mpiexec -n 4 python tests/mpi/sim_run.py PROXY OUT.npy [proxy options...]
"""
import importlib
import json
import sys

import numpy as np
from mpi4py import MPI

from sims.driver import parse, run

name, out, *opts = sys.argv[1:]
proxy = importlib.import_module(f"sims.{name}").PROXY
args = parse(proxy, [*opts, "--actions", "none", "--final-actions", "none", "--quiet"])
res = run(proxy, args, MPI.COMM_WORLD)
fields = proxy.fields(res.dec, res.state)
gathered = {k: res.dec.gather(res.dec.owned(v)) for k, v in fields.items()}
if MPI.COMM_WORLD.Get_rank() == 0:
    np.savez(out, time=res.state["time"], **gathered)
    print(json.dumps({"dims": list(res.dec.dims), "time": res.state["time"]}))
