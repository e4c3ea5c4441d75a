"""The main job's figures: capacity, PSNR and in situ overhead of a proxy run under mpiexec, as JSON.

    python benchmarks/sims_bench.py [--proxy advection] [--ranks 4] [--grid 128] [--steps 40] [--sim-only]

Runs ``mpiexec -n RANKS python -m sims.PROXY`` with its shipped actions in a
temporary folder and prints the run summary (``summary.json``: capacity factor =
raw float32 bytes of all cached cycles / bytes of the cache on disk, PSNR
min/mean, simulation vs in situ seconds per cycle) plus the wall time.
``--sim-only`` runs the physics alone (``--actions none``) and prints the
simulation seconds per step (slowest rank, per step: mean, min, max).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proxy", default="advection", choices=["advection", "gray_scott"])
    ap.add_argument("--ranks", type=int, default=4)
    ap.add_argument("--grid", type=int, default=128)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--sim-only", action="store_true", help="no actions: simulation seconds per step only")
    args = ap.parse_args()
    mpiexec = str(Path(sys.executable).parent / "mpiexec")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        t0 = time.perf_counter()
        extra = ["--actions", "none", "--final-actions", "none"] if args.sim_only else []
        subprocess.run([mpiexec, "-n", str(args.ranks), sys.executable, "-m", f"sims.{args.proxy}", "--grid",
                        str(args.grid), "--steps", str(args.steps), "--output", str(out), "--quiet",
                        "--runtime", "embedded", *extra], check=True, env=env, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        timings = json.loads((out / "timings.json").read_text())
        summary = {} if args.sim_only else json.loads((out / "summary.json").read_text())
    sim = [t["sim_s"] for t in timings]
    report = {"proxy": args.proxy, "ranks": args.ranks, "grid": [args.grid] * 3, "steps": args.steps,
              "wall_seconds": wall, "sim_seconds_per_step": {"mean": sum(sim) / len(sim), "min": min(sim),
                                                             "max": max(sim)}}
    if not args.sim_only:
        report.update({"capacity": summary.get("capacity"), "raw_bytes": summary.get("raw_bytes"),
                       "cache_bytes": summary.get("cache_bytes"), "model_bytes": summary.get("model_bytes"),
                       "psnr": summary.get("psnr"), "timings": summary.get("timings"),
                       "trigger_firings": len(summary.get("triggers", [])), "images": len(summary.get("images", []))})
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
