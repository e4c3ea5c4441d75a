"""Ascent's execution semantics over ranks: a failure on one rank stops the execute on all; binning over ranks.

    mpiexec -n 2 python tests/mpi/runtime_semantics.py WORKDIR
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

import insitu.runtime.embedded as runtime_mod
from insitu.blueprint import uniform_domain
from insitu.runtime import connect
from insitu.runtime.expressions import Context, evaluate_string

comm = MPI.COMM_WORLD
os.chdir(Path(sys.argv[1]))
N, NX = 12, 10
X = NX * comm.size
z, y, x = np.meshgrid(np.arange(N), np.arange(N), np.arange(X), indexing="ij")
field = np.sin(x / 3.0) + 0.1 * y + 0.01 * z * z


def my_block(cycle):
    """This rank's slab of the global field with one ghost layer on each inner side."""
    x0 = NX * comm.rank
    lo, hi = max(x0 - 1, 0), min(x0 + NX + 1, X)
    ghost = np.zeros((N, N, hi - lo), np.int32)
    ghost[:, :, : x0 - lo] = 1
    ghost[:, :, x0 + NX - lo:] = 1
    return [uniform_domain(field[:, :, lo:hi], field="e", origin=(lo * 0.5, 0, 0), spacing=(0.5, 0.5, 0.5),
                           ghost=ghost, cycle=cycle, domain_id=comm.rank)]


rt = connect(comm, prefer="embedded")
acts = [{"action": "add_extracts", "extracts": {
    "a_fails": {"type": "python", "params": {"source": "from mpi4py import MPI\n"
                                             "if MPI.COMM_WORLD.rank == 1: raise RuntimeError('rank 1 only')"}},
    "b_after": {"type": "python", "params": {"source": "after = globals().get('after', 0) + 1"}}}}]
statuses, first_error = [], ""
for cycle in range(3):
    rt.publish(my_block(cycle))
    rt.execute(acts)
    st = rt.info()["status"]
    statuses.append(st["message"])
    first_error = first_error or (st["errors"] or [""])[0]

expr = "binning('e', 'sum', [axis('x', num_bins=5), axis('e', num_bins=3)])"
rt.execute([{"action": "add_queries", "queries": {
    "q1": {"params": {"name": "b", "expression": expr}},
    "q2": {"params": {"name": "n", "expression": "binning('', 'count', [axis('e', num_bins=1)])"}}}}])
assert rt.info()["status"]["message"] == "completed", rt.info()["status"]
two = runtime_mod._QUERY_HISTORY["b"][-1][1].values.tolist()
count = runtime_mod._QUERY_HISTORY["n"][-1][1].values.tolist()
everyone = comm.gather({"status": statuses, "after": runtime_mod._NAMESPACE.get("after", 0), "err": first_error},
                       root=0)
if comm.rank == 0:
    whole = [uniform_domain(field, field="e", spacing=(0.5, 0.5, 0.5))]
    serial = evaluate_string(expr, Context(published=whole)).values.tolist()
    print(json.dumps({"statuses": [r["status"] for r in everyone], "after": [r["after"] for r in everyone],
                      "rank0_error": everyone[0]["err"], "binning_2ranks": two, "binning_serial": serial,
                      "count": count[0]}))
