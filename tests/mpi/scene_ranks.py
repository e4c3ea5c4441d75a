"""Under mpiexec -n N (or alone): publish a global field as ghosted blocks dealt over the ranks and
run an add_scenes action in the embedded runtime; images go to the working directory.

    mpiexec -n 4 python tests/mpi/scene_ranks.py OUTDIR PARTS
"""
import os
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

from support import render_common as rc

from insitu.blueprint import uniform_domain
from insitu.render.bricks import margin_box
from insitu.runtime import connect

comm = MPI.COMM_WORLD
out, parts = Path(sys.argv[1]), tuple(int(p) for p in sys.argv[2].split("x"))
os.makedirs(out, exist_ok=True)
os.chdir(out)
values = rc.field((26, 30, 22), seed=3)
h = rc.SPACING
domains = []
for d, (start, stop) in enumerate(rc.split(values.shape, parts)):
    if d % comm.Get_size() != comm.Get_rank():
        continue
    box, _ = margin_box(tuple(zip(start, stop)), values.shape)  # one ghost layer towards each neighbour
    block = values[tuple(slice(a, b) for a, b in box)]
    ghost = np.ones(block.shape, np.int32)
    ghost[tuple(slice(a - g, b - g) for a, b, (g, _) in zip(start, stop, box))] = 0
    origin = tuple(box[2 - a][0] * h[a] for a in range(3))
    domains.append(uniform_domain(block, field="temp", origin=origin, spacing=h, ghost=ghost, cycle=7, domain_id=d))
rt = connect(comm, prefer="embedded")
rt.publish(domains)
rt.execute([{"action": "add_scenes", "scenes": {
    "vol": {"plots": {"p": {"type": "volume", "field": "temp", "color_table": {"name": "Inferno"}}},
            "renders": {"r": {"image_prefix": "vol_%04d", "image_width": 120, "image_height": 100,
                              "camera": {"azimuth": 25, "elevation": 30}}}},
    "surf": {"plots": {"p": {"type": "pseudocolor", "field": "temp"}}, "image_name": "surface",
             "renders": {"r": {"image_name": "surface", "image_width": 120, "image_height": 100,
                               "camera": {"azimuth": -40, "elevation": 10}}}},
}}])
status = rt.info()["status"]
if status["message"] != "completed":
    print(status, file=sys.stderr)
    sys.exit(1)
