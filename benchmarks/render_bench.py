"""Seconds per 512x512 frame of a reconstructed 128^3 field, on 1 and on 4 ranks, and compositing time.

    python benchmarks/render_bench.py [--size 128] [--frames 3] [--ranks 1 4] > render.json

Builds a cache (8 domains of a 128^3 field fitted at 100:1 with the native
backend), then runs itself under ``mpiexec -n R`` for each rank count: every
rank decodes its share of the domains (once) and renders ``--frames`` frames
of each plot type; figures are the median per frame over the frames. Prints JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build_cache(path: Path, n: int) -> dict:
    import numpy as np

    import inr
    from insitu.cache import EntryMeta, TemporalCache
    from sims.analytic import gaussians

    values = gaussians((n, n, n), n=6, seed=3)
    h = n // 2
    t0 = time.perf_counter()
    with TemporalCache(path) as cache:
        d = 0
        for z in (0, h):
            for y in (0, h):
                for x in (0, h):
                    box = [(max(a - 1, 0), min(a + h + 1, n)) for a in (z, y, x)]
                    block = values[tuple(slice(a, b) for a, b in box)]
                    ghost = np.ones(block.shape, np.int32)
                    ghost[tuple(slice(a - b0, a - b0 + h) for a, (b0, _) in zip((z, y, x), box))] = 0
                    model, rep = inr.fit(block, ghost_mask=ghost, ratio=100, max_steps=400, backend="native")
                    meta = EntryMeta.from_model(model, rep, start=(z, y, x), origin=(z, y, x))
                    cache.put("f", 0, d, model.to_bytes(), meta)
                    d += 1
    return {"fit_seconds": time.perf_counter() - t0}


def worker(cache: str, frames: int, width: int, height: int, out: str) -> None:
    from mpi4py import MPI

    from insitu.cache import TemporalCache
    from insitu.render.cached import RenderSpec, lattice_of
    from insitu.render.frame import FrameStats, camera_for, piece_from_model, render_frame

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    reader = TemporalCache.open(cache, comm=comm)
    doms = reader.domains("f", 0)
    metas = [reader.meta("f", 0, d) for d in doms]
    lattice = lattice_of(metas)
    comm.Barrier()
    t0 = time.perf_counter()
    pieces = [piece_from_model(reader.model("f", 0, d), m, backend="native")
              for d, m in list(zip(doms, metas))[rank::size]]
    decode = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    rng = (min(m.value_range[0] for m in metas), max(m.value_range[1] for m in metas))
    result = {"ranks": size, "decode_seconds": decode, "plots": {}}
    for kind in ("volume", "pseudocolor", "slice"):
        plot = RenderSpec(plot=kind).make_plot(rng)
        per_frame, render, comp = [], [], []
        for i in range(frames):
            cam = camera_for(lattice, {"azimuth": 20 + 10 * i, "elevation": 25}, width, height)
            st = FrameStats()
            comm.Barrier()
            t0 = time.perf_counter()
            render_frame([(plot, pieces)], lattice, cam, comm, stats=st)
            per_frame.append(comm.allreduce(time.perf_counter() - t0, op=MPI.MAX))
            render.append(comm.allreduce(st.render, op=MPI.MAX))
            comp.append(comm.allreduce(st.composite, op=MPI.MAX))
        result["plots"][kind] = {"seconds_per_frame": statistics.median(per_frame),
                                 "render_seconds": statistics.median(render),
                                 "composite_seconds": statistics.median(comp)}
    if rank == 0:
        Path(out).write_text(json.dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--height", type=int, default=512)
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--worker", nargs=2, metavar=("CACHE", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], args.frames, args.width, args.height, args.worker[1])
        return
    from insitu.render.raymarch import native_available

    mpiexec = str(Path(sys.executable).parent / "mpiexec")
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "bench.cache"
        report = {"grid": [args.size] * 3, "image": [args.width, args.height], "domains": 8,
                  "native_raymarch": native_available(), "cpus": os.cpu_count(), **build_cache(cache, args.size),
                  "runs": []}
        for r in args.ranks:
            out = Path(tmp) / f"r{r}.json"
            env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", str(max(1, 2 // r))))
            subprocess.run([mpiexec, "-n", str(r), sys.executable, __file__, "--worker", str(cache), str(out),
                            "--frames", str(args.frames), "--width", str(args.width), "--height", str(args.height)],
                           check=True, env=env)
            report["runs"].append(json.loads(out.read_text()))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
