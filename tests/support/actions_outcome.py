"""Run one actions file on a braid-like mesh in one runtime, in a process of its own; print the outcome as JSON.

    python -m support.actions_outcome ascent|embedded FILE [CYCLES]

Each runtime keeps process-wide state (Ascent's Python interpreter, its failed-execute memory), so every
file gets a fresh process. The outcome lists, per executed cycle, the status ('completed' or 'failed')
and the first line of its error, and the trigger firings.
"""
from __future__ import annotations

import json
import sys

import numpy as np

from insitu.blueprint import uniform_domain

FIELDS_VERTEX = ["braid", "energy", "pressure", "density", "e", "p", "gyre", "velocity_x", "radial_vert",
                 "nodal_noise"]


def braid_like(cycle: int = 100) -> list:
    """An 8x8x8 mesh with the fields the files use (like Ascent's braid example, published under many names)."""
    z, y, x = np.meshgrid(*[np.linspace(-10, 10, 8)] * 3, indexing="ij")
    braid = (np.sin(x / 3) * np.cos(y / 4) + z / 10).astype(np.float64)
    extra = {name: braid * (i + 1) for i, name in enumerate(FIELDS_VERTEX[1:])}
    dom = uniform_domain(braid, field="braid", origin=(-10, -10, -10), spacing=(20 / 7,) * 3, cycle=cycle,
                         time=1.0, extra_fields=extra)
    dom["fields"]["zonal_noise"] = {"association": "element", "topology": "topo",
                                    "values": np.random.default_rng(0).random(7 ** 3).astype(np.float32)}
    # braid's 'radial': the distance of each element centre from the origin (element associated)
    c = np.linspace(-10, 10, 8)
    c = (c[:-1] + c[1:]) / 2
    zc, yc, xc = np.meshgrid(c, c, c, indexing="ij")
    dom["fields"]["radial"] = {"association": "element", "topology": "topo",
                               "values": np.sqrt(xc ** 2 + yc ** 2 + zc ** 2).ravel()}
    return [dom]


def first_line(status: dict) -> str:
    errors = status.get("errors") or []
    text = errors[0] if errors else str(status.get("details") or "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(("file:", "line:"))]
    lines = [ln for ln in lines if ln not in ("message:", "Details:", "errors:")]
    return lines[0][:160] if lines else ""


def main() -> None:
    from mpi4py import MPI

    from insitu.runtime import connect

    runtime, path = sys.argv[1], sys.argv[2]
    cycles = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    rt = connect(MPI.COMM_WORLD, prefer=runtime)
    steps = []
    for c in range(100, 100 + cycles):
        rt.publish(braid_like(c))
        rt.execute(path)
        st = rt.info().get("status", {})
        failed = "fail" in str(st.get("message", "")).lower()
        steps.append({"cycle": c, "status": "failed" if failed else "completed", "error": first_line(st)})
    triggers = [(t["trigger"], t["cycle"]) for t in rt.info().get("triggers", [])]
    rt.close()
    print("OUTCOME " + json.dumps({"runtime": runtime, "steps": steps, "triggers": triggers}))


if __name__ == "__main__":
    main()
