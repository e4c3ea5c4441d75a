"""Where ``Model.decode``'s time goes on one block: the hash encoding against the MLP, and the FLOP bound.

    python benchmarks/decode_profile.py --size 128 --ratios 100 300 1000 --threads 1

For each model (``inr.sizing.config_near_ratio`` at each ratio on a ``--size``^3 block, random parameters: the
time does not depend on their values), prints JSON with:

* ``decode_s``: the native ``decode_grid`` of the whole block (the fused kernel ``Model.decode`` runs), best of
  ``--repeats``;
* ``mlp_s`` and ``encode_s``: the MLP's share, from the cost of one multiply-add measured as the time a second
  hidden layer of the same width adds (``deeper_s``: W*W more per voxel), times the model's own count; the
  encoding's share is the rest;
* ``mlp_fma_per_voxel`` (D*W + (H-1)*W^2 + W multiply-adds, no biases) and ``mlp_bound_mb_s``: the MB/s of
  float32 that the MLP alone would allow at ``--peak-gflops`` (FMA/s per thread: 2 AVX2 FMA units x 8 lanes at
  ~2.5 GHz = 40 G) on ``--threads`` threads, whatever the encoding costs.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dataclasses  # noqa: E402

from inr.backends.native_backend import NativeBackend  # noqa: E402
from inr.config import ModelConfig  # noqa: E402
from inr.grid import grid_axes  # noqa: E402
from inr.layout import init_params  # noqa: E402
from inr.sizing import config_near_ratio  # noqa: E402


def best(fn, repeats: int) -> float:
    """The shortest of ``repeats`` timed calls."""
    out = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--ratios", type=float, nargs="+", default=[100.0, 300.0, 1000.0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peak-gflops", type=float, default=40.0, help="FMA/s per thread, in G (default %(default)s)")
    args = ap.parse_args()
    shape = (args.size,) * 3
    xs, ys, zs = grid_axes(shape, "vertex")
    be = NativeBackend(threads=args.threads)
    rows = []
    for ratio in args.ratios:
        cfg = config_near_ratio(shape, ratio)
        enc, net = cfg.encoding, cfg.network
        params = init_params(enc, net, 0).astype(np.float32)
        decode_s = best(lambda: be.decode_grid(enc, net, params, xs, ys, zs), args.repeats)
        deep = ModelConfig(enc, dataclasses.replace(net, n_hidden_layers=net.n_hidden_layers + 1))
        deep_params = init_params(enc, deep.network, 0).astype(np.float32)
        deeper_s = best(lambda: be.decode_grid(enc, deep.network, deep_params, xs, ys, zs), args.repeats)
        d, w, h = enc.n_output_dims, net.n_neurons, net.n_hidden_layers
        fma = d * w + (h - 1) * w * w + w
        voxels = float(np.prod(shape))
        per_fma = max(0.0, deeper_s - decode_s) / (voxels * w * w)  # seconds per multiply-add, measured
        mlp_s = min(decode_s, per_fma * voxels * fma)
        mlp_bound_s = voxels * fma / (args.peak_gflops * 1e9 * args.threads)
        rows.append({"ratio": ratio, "levels": enc.n_levels, "features": enc.n_features_per_level,
                     "log2_table": enc.log2_hashmap_size, "width": w, "hidden": h, "n_params": cfg.n_params,
                     "decode_s": decode_s, "decode_mb_s": 4 * voxels / 1e6 / decode_s,
                     "deeper_s": deeper_s, "mlp_s": mlp_s, "encode_s": decode_s - mlp_s,
                     "mlp_fma_per_voxel": fma, "mlp_bound_mb_s": 4 * voxels / 1e6 / mlp_bound_s})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(json.dumps({"argv": sys.argv[1:], "size": args.size, "threads": args.threads, "models": rows}, indent=1))


if __name__ == "__main__":
    main()
