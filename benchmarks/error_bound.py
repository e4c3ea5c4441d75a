"""The error-bounded mode against SZ3 at the same absolute error bound: bytes, max error, speed.

    python benchmarks/error_bound.py > eb.json                 # proxies' fields, sphere_front, real volumes
    python benchmarks/error_bound.py --quick                    # one small field (~10 s)
    INSITU_VOLUMES_DIR=... python benchmarks/error_bound.py --volumes hydrogen carotid

For every field (sharp-featured: ``sphere_front``, the proxies' fields as
``benchmarks/rate_distortion.py`` makes them, and the real volumes of
``benchmarks/volumes.py`` that can be had) and every bound (fractions of the
field's range, default 1e-2 and 1e-3):

* ``inr``: ``inr.fit(values, max_abs_error=eps)`` (what ``af.compress(max_error=eps)``
  does): stored bytes, ratio, max abs error of the decoded bytes (<= eps, checked),
  compress MB/s (the whole fit) and decompress MB/s (``Model.from_bytes`` + ``decode``),
  the fit's steps and whether the probe kept the network;
* ``coder``: the residual coder alone (:func:`inr.residual.compute_residual` with no
  network, then ``to_bytes``; ``from_bytes`` + ``apply``), MB/s both ways, the best of ``--repeats``;
* ``sz3``: SZ3 (``pysz``, ABS mode, default predictor) at the same bound, MB/s both ways, the best of
  ``--repeats``;
* ``inr_vs_sz3``: our bytes over SZ3's (below 1: we store less).

MB/s = float32 bytes of the field / seconds (10^6 bytes). JSON goes to stdout
(or ``-o``); progress lines to stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import inr  # noqa: E402
from inr.residual import Residual, compute_residual  # noqa: E402
from rate_distortion import log, proxy_fields, sz3  # noqa: E402
from throughput import best_time  # noqa: E402
from sims.analytic import FIELDS as ANALYTIC  # noqa: E402

REL_ERRORS = (1e-2, 1e-3)


def _mbs(nbytes: int, seconds: float) -> float:
    return nbytes / 1e6 / max(seconds, 1e-9)


def inr_point(values: np.ndarray, eps: float, max_steps: int) -> dict:
    """The error-bounded fit of ``values`` at ``eps``, measured on what its bytes decode to."""
    t = time.perf_counter()
    model, rep = inr.fit(values, max_abs_error=eps, backend="native", max_steps=max_steps)
    blob = model.to_bytes()
    ct = time.perf_counter() - t
    t = time.perf_counter()
    dec = inr.Model.from_bytes(blob).decode(backend="native")
    dt = time.perf_counter() - t
    err = inr.max_abs_error(values, dec)
    if not err <= eps or not np.isfinite(dec).all():
        raise AssertionError(f"inr broke its bound: max error {err} > eps {eps}")
    return {"bytes": len(blob), "ratio": values.nbytes / len(blob), "max_abs_error": err,
            "compress_mbs": _mbs(values.nbytes, ct), "decompress_mbs": _mbs(values.nbytes, dt),
            "fit_s": rep.seconds, "steps": rep.steps, "stop_reason": rep.stop_reason,
            "residual_bytes": len(model.residual.to_bytes()) if model.residual is not None else 0}


def coder_point(values: np.ndarray, eps: float, repeats: int = 1) -> dict:
    """The residual coder alone, with no network: what the error-bounded mode runs once its probe skips the
    network, and what a target-PSNR fit codes (``inr/predictive.py``); the best of ``repeats`` timings."""
    rng = float(values.max() - values.min())
    ct, blob = best_time(lambda: compute_residual(values, None, eps, rng).to_bytes(), repeats)
    dt, dec = best_time(lambda: Residual.from_bytes(blob, values.shape).apply(None), repeats)
    err = inr.max_abs_error(values, dec)
    if not err <= eps or not np.isfinite(dec).all():
        raise AssertionError(f"the residual coder broke its bound: max error {err} > eps {eps}")
    return {"bytes": len(blob), "max_abs_error": err, "compress_mbs": _mbs(values.nbytes, ct),
            "decompress_mbs": _mbs(values.nbytes, dt)}


def sz3_point(values: np.ndarray, eps: float, repeats: int = 1) -> dict:
    ct, (blob, back) = best_time(lambda: sz3(values, eps), repeats)
    dt, dec = best_time(back, repeats)
    return {"bytes": len(blob), "ratio": values.nbytes / len(blob), "max_abs_error": inr.max_abs_error(values, dec),
            "compress_mbs": _mbs(values.nbytes, ct), "decompress_mbs": _mbs(values.nbytes, dt)}


def load(args: argparse.Namespace, notes: list[str]) -> dict[str, np.ndarray]:
    """The benchmark's fields, in order: analytic, proxies', real volumes (those that can be had)."""
    fields = {n: ANALYTIC[n]((args.size,) * 3) for n in args.fields}
    if args.cycles:
        fields.update(proxy_fields(args.size, tuple(args.cycles), notes))
    if args.volumes != ["none"]:
        import volumes

        mirrors = dict(m.split("=", 1) for m in args.git_mirror if "=" in m)
        fields.update(volumes.load_available(args.volumes or None, notes, mirrors))
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in fields.items()}


def run(args: argparse.Namespace) -> dict:
    notes: list[str] = []
    rows = []
    for name, values in load(args, notes).items():
        rng = float(values.max() - values.min())
        for rel in args.bounds:
            eps = rel * rng
            row: dict[str, Any] = {"field": name, "shape": list(values.shape), "rel_error": rel, "abs_error": eps}
            row["inr"] = inr_point(values, eps, args.max_steps)
            row["coder"] = coder_point(values, eps, args.repeats)
            try:
                row["sz3"] = sz3_point(values, eps, args.repeats)
                row["inr_vs_sz3"] = row["inr"]["bytes"] / row["sz3"]["bytes"]
            except ImportError as exc:
                notes.append(f"sz3 skipped: {exc}")
            log(f"{name} eps {rel:g}: inr {row['inr']['bytes']} B in {row['inr']['fit_s']:.2f} s "
                f"({row['inr']['stop_reason']}), coder {row['coder']['compress_mbs']:.1f}/"
                f"{row['coder']['decompress_mbs']:.1f} MB/s"
                + (f", sz3 {row['sz3']['bytes']} B {row['sz3']['compress_mbs']:.1f} MB/s" if "sz3" in row else ""))
            rows.append(row)
    return {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
            "max_steps": args.max_steps, "repeats": args.repeats, "rows": rows, "notes": notes}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=64, help="samples per axis of the analytic and proxy fields")
    ap.add_argument("--fields", nargs="*", default=["sphere_front"], choices=sorted(ANALYTIC))
    ap.add_argument("--cycles", type=int, nargs="*", default=[5, 20], help="proxy cycles (none: no proxies)")
    ap.add_argument("--volumes", nargs="*", default=[],
                    help="real volumes (default: every one that can be had; 'none' for none)")
    ap.add_argument("--git-mirror", action="append", default=[], metavar="OWNER/NAME=GIT_DIR",
                    help="read a GitHub repository's files from a local clone (see benchmarks/volumes.py)")
    ap.add_argument("--bounds", type=float, nargs="+", default=list(REL_ERRORS),
                    help="error bounds as fractions of each field's range")
    ap.add_argument("--max-steps", type=int, default=2000, help="inr.fit's max_steps (its default)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="the coder's and SZ3's timings: the best of this many (the fit is timed once)")
    ap.add_argument("--quick", action="store_true", help="one 32^3 analytic field, no proxies, no volumes")
    ap.add_argument("-o", "--output", help="write the JSON here instead of stdout")
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.cycles, args.volumes = 32, [], ["none"]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    text = json.dumps(run(args), indent=1)
    if args.output:
        Path(args.output).write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
