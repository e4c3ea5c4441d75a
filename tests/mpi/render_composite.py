"""Under mpiexec -n N: each rank renders its share of a field's blocks, all composite; rank 0 compares
with the whole field rendered as one brick and writes the figures as JSON.

    mpiexec -n 4 python tests/mpi/render_composite.py OUT.json [vertex|element]
"""
import json
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

from support import render_common as rc

from insitu.render.frame import agree, camera_for, render_frame
from insitu.render.raymarch import Plot
from insitu.render.transfer import TransferFunction

comm = MPI.COMM_WORLD
out, assoc = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "vertex"
values = rc.field((30, 34, 38))
all_pieces = rc.pieces(values, (2, 3, 2), assoc)  # 12 uneven blocks, dealt round-robin
mine = all_pieces[comm.Get_rank()::comm.Get_size()]
result = {}
for kind in ("volume", "pseudocolor", "slice", "isosurface"):
    lattice, (rng,) = agree([mine], comm)
    plot = Plot(kind, TransferFunction("plasma", ((0.0, 0.0), (1.0, 0.5)), rng))
    cam = camera_for(lattice, {"azimuth": 35, "elevation": 25, "zoom": 0.1}, 160, 128)
    image = render_frame([(plot, mine)], lattice, cam, comm)
    if comm.Get_rank() == 0:
        whole = rc.pieces(values, (1, 1, 1), assoc)
        ref = render_frame([(plot, whole)], lattice, cam, None)
        diff = np.abs(image - ref)
        result[kind] = {"mean_abs": float(diff.mean()), "max_abs": float(diff.max()),
                        "over_1_255": float((diff.max(axis=2) > 1 / 255).mean()),
                        "coverage": float((ref[..., 3] > 0).mean())}
if comm.Get_rank() == 0:
    Path(out).write_text(json.dumps(result))
