"""Fit and decode throughput of the backends, side by side; prints JSON.

    python benchmarks/inr_bench.py                 # default run (~3-5 min on 2 cores)
    python benchmarks/inr_bench.py --quick         # 64^3 only, fewer steps (~1 min)
    python benchmarks/inr_bench.py --sizes 128 --fields waves --backends native
    python benchmarks/inr_bench.py --device cuda   # torch and tiny-cuda-nn on a GPU

For each analytic field (sims/analytic.py) and block size, and each available
backend: ``inr.fit`` at 100:1 (PSNR, ratio, seconds, steps), training
throughput (samples/s, timed over whole steps of 2^16 samples after a
warm-up) and decode throughput (voxels/s of ``Model.decode``). Torch runs few
steps at 128^3 (its samples/s is what matters). Then the "Numbers" model of
issue 4 (8 levels x 2 features, 2^12 tables, base 8, scale 1.5, MLP 16 x 1 on
128^3) and the 64^3 target (a smooth field to 40 dB at 100:1 within 2 s).
Every figure carries native/torch ratios where both ran.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import inr  # noqa: E402
from inr.backends import available_backends, get_backend  # noqa: E402
from inr.grid import grid_axes  # noqa: E402
from inr.layout import init_params  # noqa: E402
from inr.problem import FitProblem  # noqa: E402
from sims.analytic import FIELDS  # noqa: E402

BATCH = 1 << 16
NUMBERS_MODEL = inr.ModelConfig(inr.EncodingConfig(8, 2, 12, 8, 1.5), inr.NetworkConfig(16, 1))


def train_rate(backend, config, values, steps: int, warmup: int = 2) -> float:
    """Training samples per second of ``backend`` on ``values`` (whole steps of BATCH samples)."""
    target = ((values - values.min()) / (values.max() - values.min())).astype(np.float32)
    xs, ys, zs = grid_axes(values.shape, "vertex")
    problem = FitProblem(config.encoding, config.network, target, None, xs, ys, zs, BATCH, "l2")
    trainer = backend.trainer(problem, init_params(config.encoding, config.network, 0), 0)
    trainer.step(warmup, 1e-2)
    t = time.perf_counter()
    trainer.step(steps, 1e-2)
    return steps * min(BATCH, values.size) / (time.perf_counter() - t)


def decode_rate(model: inr.Model, backend: str, threads: int, min_seconds: float, device: str = "cpu") -> float:
    """Voxels per second of ``model.decode`` (best of repeats lasting at least ``min_seconds``)."""
    model.decode(backend=backend, device=device, threads=threads)  # warm-up
    best, spent = float("inf"), 0.0
    while spent < min_seconds or best == float("inf"):
        t = time.perf_counter()
        model.decode(backend=backend, device=device, threads=threads)  # includes the copy back to the host
        dt = time.perf_counter() - t
        best, spent = min(best, dt), spent + dt
    return float(np.prod(model.owned_shape)) / best


def ratios(entry: dict, keys=("fit_samples_per_s", "decode_voxels_per_s")) -> dict:
    """native/torch (CPU) or tcnn/torch (GPU) for each figure, where both ran."""
    fast = "native" if "native" in entry else "tcnn"
    if fast in entry and "torch" in entry:
        return {f"{fast}_over_torch_{k}": round(entry[fast][k] / entry["torch"][k], 1) for k in keys}
    return {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--fields", nargs="+", default=list(FIELDS), choices=list(FIELDS))
    ap.add_argument("--backends", nargs="+", default=None, help="default: every available CPU backend")
    ap.add_argument("--device", default="cpu", help="'cpu' (default) or 'cuda': on cuda the backends are torch "
                    "and tcnn (when it imports), run as many steps as native on the CPU")
    ap.add_argument("--threads", type=int, default=None, help="default: all cores this process may use")
    ap.add_argument("--native-steps", type=int, default=400, help="inr.fit steps for native")
    ap.add_argument("--torch-steps", type=int, default=None, help="inr.fit steps for torch (default 20 at 64^3, 10 above)")
    ap.add_argument("--quick", action="store_true", help="64^3 only, fewer steps, no Numbers model")
    ap.add_argument("--no-numbers", action="store_true", help="skip the Numbers model")
    ap.add_argument("--no-target", action="store_true", help="skip the 64^3 40 dB target run")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.native_steps, args.no_numbers = [64], 200, True
    threads = args.threads or len(os.sched_getaffinity(0))
    gpu = args.device.startswith("cuda")
    backends = args.backends or [b for b in ("torch", "native", "tcnn") if b in available_backends(args.device)]
    out: dict = {
        "machine": {"cpus": len(os.sched_getaffinity(0)), "threads": threads, "platform": platform.platform(),
                    "processor": platform.processor(), "load_avg_1min_at_start": os.getloadavg()[0]},
        "backends": backends, "device": args.device, "batch": BATCH, "fields": [],
    }
    if gpu:
        import torch

        out["machine"]["gpu"] = torch.cuda.get_device_name(args.device)
        out["machine"]["torch"] = torch.__version__
    if "native" in backends:
        from inr import _native

        out["machine"]["native_isa"] = _native.isa()
    t_start = time.perf_counter()

    for size in args.sizes:
        shape = (size, size, size)
        for field in args.fields:
            values = FIELDS[field](shape)
            entry: dict = {"field": field, "shape": list(shape)}
            for name in backends:
                be = get_backend(name, args.device, threads)
                fast = name == "native" or gpu  # slow torch-on-CPU runs few steps: its samples/s is what matters
                steps = args.native_steps if fast else (args.torch_steps or (10 if size > 64 else 20))
                model, rep = inr.fit(values, ratio=100, max_steps=steps, batch_size=BATCH, backend=name,
                                     device=args.device, threads=threads, seed=0)
                entry[name] = {
                    "fit_samples_per_s": round(train_rate(be, model.config, values,
                                                          20 if fast else (2 if size > 64 else 4),
                                                          warmup=2 if fast else 1)),
                    "decode_voxels_per_s": round(decode_rate(model, name, threads, 1.0 if fast else 0.0, args.device)),
                    "psnr": round(rep.psnr, 2), "ratio": round(rep.ratio, 1), "fit_seconds": round(rep.seconds, 3),
                    "fit_steps": rep.steps,
                }
            entry["speedups"] = ratios(entry)
            out["fields"].append(entry)
            print(json.dumps(entry), file=sys.stderr, flush=True)

    if not args.no_numbers:
        values = FIELDS["gaussians"]((128, 128, 128))
        entry = {"model": "issue 4 Numbers: 8 levels x 2, 2^12 tables, base 8, scale 1.5, MLP 16x1, 128^3",
                 "stored_ratio": None}
        for name in backends:
            be = get_backend(name, args.device, threads)
            fast = name == "native" or gpu
            params = init_params(NUMBERS_MODEL.encoding, NUMBERS_MODEL.network, 0).astype(np.float16)
            model = inr.Model(NUMBERS_MODEL, params, (0.0, 1.0), values.shape, "vertex", inr.grid.full_box(values.shape))
            entry["stored_ratio"] = round(model.raw_bytes / len(model.to_bytes()), 1)
            entry[name] = {
                "fit_samples_per_s": round(train_rate(be, NUMBERS_MODEL, values, 20 if fast else 2,
                                                      warmup=2 if fast else 1)),
                "decode_voxels_per_s": round(decode_rate(model, name, threads, 1.0 if fast else 0.0, args.device)),
            }
        entry["speedups"] = ratios(entry)
        out["numbers_model"] = entry
        print(json.dumps(entry), file=sys.stderr, flush=True)

    target_backend = "native" if "native" in backends else ("tcnn" if "tcnn" in backends else None)
    if not args.no_target and target_backend:
        values = FIELDS["gaussians"]((64, 64, 64))
        model, rep = inr.fit(values, ratio=100, target_psnr=40, max_steps=5000, backend=target_backend,
                             device=args.device, threads=threads)
        out["target_64_40dB_100to1"] = {"field": "gaussians 64^3", "backend": target_backend,
                                        "psnr": round(rep.psnr, 2),
                                        "ratio": round(rep.ratio, 1), "seconds": round(rep.seconds, 3),
                                        "steps": rep.steps, "stop_reason": rep.stop_reason,
                                        "met": bool(rep.psnr >= 40 and rep.ratio >= 100 and rep.seconds <= 2.0)}
    out["bench_seconds"] = round(time.perf_counter() - t_start, 1)
    out["machine"]["load_avg_1min_at_end"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
