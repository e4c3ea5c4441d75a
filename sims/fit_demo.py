"""Fit + decode of a synthetic 3D field, printing ratio, PSNR and time.

    python -m sims.fit_demo [--size 64] [--ratio 100] [--target-psnr 40]
"""
from __future__ import annotations

import argparse
import json
import time

import inr
from sims.analytic import FIELDS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--field", choices=sorted(FIELDS), default="gaussians")
    ap.add_argument("--size", type=int, default=64, help="grid points per axis (default 64)")
    ap.add_argument("--ratio", type=float, default=100.0, help="compression ratio to size the model for")
    ap.add_argument("--target-psnr", type=float, default=40.0, help="stop once this PSNR (dB) is reached")
    ap.add_argument("--max-steps", type=int, default=3000)
    ap.add_argument("--backend", default="auto", choices=inr.BACKENDS)
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    args = ap.parse_args(argv)

    values = FIELDS[args.field]((args.size,) * 3)
    print(f"fitting {args.field} {values.shape} ({values.nbytes / 1e6:.1f} MB raw) at {args.ratio:g}:1, "
          f"target {args.target_psnr:g} dB ...", flush=True)
    model, rep = inr.fit(values, ratio=args.ratio, target_psnr=args.target_psnr, max_steps=args.max_steps,
                         backend=args.backend,
                         progress=lambda s, p: print(f"  step {s:5d}  PSNR {p:6.2f} dB", flush=True))
    t = time.perf_counter()
    decoded = inr.Model.from_bytes(model.to_bytes()).decode(backend=args.backend)
    decode_s = time.perf_counter() - t
    result = {
        "field": args.field, "shape": list(values.shape), "backend": rep.backend,
        "raw_bytes": values.nbytes, "stored_bytes": rep.stored_bytes, "ratio": round(rep.ratio, 2),
        "psnr_db": round(inr.psnr(values, decoded), 2), "max_abs_error": rep.max_abs_error,
        "fit_steps": rep.steps, "fit_seconds": round(rep.seconds, 3), "decode_seconds": round(decode_s, 4),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"ratio {result['ratio']:.1f}:1  PSNR {result['psnr_db']:.2f} dB  max error {rep.max_abs_error:.4g}  "
              f"fit {rep.seconds:.2f} s ({rep.steps} steps, {rep.backend})  decode {decode_s:.3f} s")
    ok = rep.ratio >= args.ratio and result["psnr_db"] >= args.target_psnr
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
