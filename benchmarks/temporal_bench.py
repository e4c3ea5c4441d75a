"""Capacity of the temporal cache with and without temporal weight-delta coding; prints JSON.

    python benchmarks/temporal_bench.py                    # advection, 48^3, 100 cycles, ratios 100 300 (~10 min)
    python benchmarks/temporal_bench.py --quick            # 32^3, 30 cycles, two ratios (~1 min)
    python benchmarks/temporal_bench.py --sim gray_scott --ranks 2 --keyframe-every 20
    python benchmarks/temporal_bench.py --from-json docs/temporal_deltas.json --markdown docs/temporal_deltas.md

Runs a bundled proxy simulation for real (``python -m sims.<sim>``, under
``mpiexec -n RANKS`` when RANKS > 1) once per (mode, ratio): mode ``none``
stores every cycle's model whole (warm-started from the previous one, the
default), mode ``delta`` uses ``af.compress(temporal='delta',
keyframe_every=K)``. Every run fits the same number of steps per cycle, so
the two modes get the same work. From each run's ``summary.json``:

* capacity = raw float32 bytes of all cycles / every byte of the cache folder
  (HDF5 segments, journals, markers), and the same over the model bytes alone;
* mean and min PSNR over every (cycle, domain), measured at compression time
  on what the stored bytes decode to (for a delta: through its chain).

Then, per mode, capacity at equal mean PSNR: log(capacity) interpolated
linearly in PSNR between the ratios run, at the PSNRs both modes reach; the
reported gain is delta / none at those PSNRs.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ACTIONS = """-
  action: "add_extracts"
  extracts:
    inr:
      type: "python"
      params:
        source: "import ascent_filters as af; af.compress(fields=['{field}'], ratio={ratio}, max_steps={steps}, \
temporal='{mode}', keyframe_every={k}, backend='{backend}', cache='run.cache')"
"""

FIELDS = {"advection": "temperature", "gray_scott": "v"}


def run_once(args: argparse.Namespace, mode: str, ratio: float, work: Path) -> dict:
    """One proxy run; the figures of its summary.json."""
    out = work / f"{mode}_{ratio:g}"
    actions = work / f"{mode}_{ratio:g}.yaml"
    actions.write_text(ACTIONS.format(field=FIELDS[args.sim], ratio=ratio, steps=args.fit_steps, mode=mode,
                                      k=args.keyframe_every, backend=args.backend))
    cmd = [sys.executable, "-m", f"sims.{args.sim}", "--grid", str(args.grid), "--steps", str(args.cycles),
           "--actions", str(actions), "--final-actions", "none", "--output", str(out), "--runtime", "embedded",
           "--quiet"]
    if args.ranks > 1:
        cmd = [shutil.which("mpiexec") or "mpiexec", "-n", str(args.ranks)] + cmd
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    s = json.loads((out / "summary.json").read_text())
    deltas = sum(line.count("stored as deltas") for line in proc.stdout.splitlines())
    row = {"mode": mode, "ratio": ratio, "capacity": round(s["capacity"], 1),
           "model_capacity": round(s["raw_bytes"] / s["model_bytes"], 1),
           "psnr_mean": round(s["psnr"]["mean"], 2), "psnr_min": round(s["psnr"]["min"], 2),
           "cache_bytes": s["cache_bytes"], "model_bytes": s["model_bytes"], "raw_bytes": s["raw_bytes"],
           "cycles_with_deltas": deltas, "fit_s_per_cycle": round(s["timings"]["fit_s_per_cycle"], 3),
           "seconds": round(time.perf_counter() - t, 1)}
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def capacity_at(rows: list[dict], psnr: float, key: str) -> float | None:
    """log-linear interpolation of ``key`` at mean PSNR ``psnr`` over one mode's runs (None outside them)."""
    pts = sorted((r["psnr_mean"], math.log(r[key])) for r in rows)
    for (p0, c0), (p1, c1) in zip(pts, pts[1:]):
        if p0 <= psnr <= p1:
            w = 0.0 if p1 == p0 else (psnr - p0) / (p1 - p0)
            return math.exp(c0 + w * (c1 - c0))
    return None


def equal_psnr(rows: list[dict], key: str) -> list[dict]:
    """delta/none capacity at the PSNRs both modes reach (each delta run's PSNR, and each none run's)."""
    none = [r for r in rows if r["mode"] == "none"]
    delta = [r for r in rows if r["mode"] == "delta"]
    out = []
    for p in sorted({r["psnr_mean"] for r in rows}):
        a, b = capacity_at(none, p, key), capacity_at(delta, p, key)
        if a and b:
            out.append({"psnr_mean": p, "none": round(a, 1), "delta": round(b, 1), "gain": round(b / a, 2)})
    return out


def markdown(docs: list[dict]) -> str:
    """The report of one or more runs of this benchmark (their JSON), as markdown."""
    lines = ["# Temporal weight-delta coding: cache capacity with and without deltas", "",
             "Generated by `python benchmarks/temporal_bench.py --from-json ... --markdown "
             "docs/temporal_deltas.md` from the benchmark's JSON; do not edit by hand.", "",
             "Each row is one real run of a bundled proxy under the embedded runtime, every cycle compressed "
             "with the same number of training steps. Capacity = raw float32 bytes of all cycles / every "
             "byte of the cache folder; model capacity = the same over the model bytes alone. PSNR over every "
             "(cycle, domain), measured at compression time on what the stored bytes decode to.", ""]
    for d in docs:
        lines += [f"## {d['sim']}, {d['grid']}^3, {d['cycles']} cycles, {d['ranks']} rank(s), "
                  f"{d['fit_steps']} steps per cycle, keyframe every {d['keyframe_every']}, backend "
                  f"{d.get('backend', 'auto')}", "",
                  "| mode | ratio | capacity | model capacity | PSNR mean | PSNR min | cycles stored as deltas |",
                  "|---|---|---|---|---|---|---|"]
        for r in d["runs"]:
            lines.append(f"| {r['mode']} | {r['ratio']:g} | {r['capacity']:.1f} | {r['model_capacity']:.1f} | "
                         f"{r['psnr_mean']:.2f} | {r['psnr_min']:.2f} | {r['cycles_with_deltas']} |")
        lines += ["", "At equal mean PSNR (log-linear interpolation between the ratios run):", "",
                  "| PSNR mean | capacity none | capacity delta | gain | model capacity none | model capacity delta "
                  "| gain |", "|---|---|---|---|---|---|---|"]
        model = {r["psnr_mean"]: r for r in d["equal_psnr_model_capacity"]}
        for r in d["equal_psnr_capacity"]:
            m = model.get(r["psnr_mean"], {})
            lines.append(f"| {r['psnr_mean']:.2f} | {r['none']} | {r['delta']} | {r['gain']} | {m.get('none', '—')} "
                         f"| {m.get('delta', '—')} | {m.get('gain', '—')} |")
        lines.append("")
    lines += [
        "## Why the deltas are not smaller", "",
        "* A delta stores, per parameter, how many quantisation steps it moved since the previous cycle. "
        "Adam moves every parameter that receives any gradient by about the learning rate per step, "
        "whatever the gradient's size, and the hash-grid tables of a moving feature all receive some: "
        "after a warm-started fit nearly every parameter has moved by a few steps, so a delta costs "
        "about two thirds of a whole model in these runs.",
        "* Side measurements (48^3 analytic fields shifted or rolled each cycle, and 32^3 advection; "
        "5 cycles each; not part of this JSON): zeroing the "
        "moves of 1, 2 or 3 steps saved 5-25 % of a delta's bytes for 0.2-1.5 dB; a learning rate 3-10x "
        "smaller saved 10-25 % but stopped following the flow (PSNR falling cycle after cycle); a large "
        "Adam epsilon (1e-4, damping small gradients) saved 25 % for 5 dB; soft-thresholding the change "
        "from the base after every chunk of steps (up to 1e-3) saved 2 %: the moves are large, not noise. "
        "None beats a smaller whole model at equal PSNR.",
        "* Where the field changes slowly in place (Gray-Scott) more parameters stay put and the gain is "
        "larger than where features travel across the hash grid (advection).",
        "* Most of the movement is convergence, not tracking: with 60 steps per cycle a warm-started fit "
        "keeps improving (advection 48^3 at ratio 100: 44 dB on the first cycle, ~50 dB on the next ones), "
        "and the parameters of cycle t+1 moved by 14-17 quantisation steps on average since cycle t "
        "(side measurement, 20 cycles, not part of this JSON).",
        "* More side measurements there: zstd comes within 4 % of the order-0 entropy of the step counts, "
        "so a better entropy coder has little to give; consecutive deltas correlate (0.7), but coding one "
        "against the previous saves ~9 % of that entropy; holding each delta at its keyframe's PSNR "
        "(stopping early, then storing the moves in multiples of 2-16 steps, the largest that keeps "
        "the PSNR) made the chain 1.81x smaller than whole models at 3 dB lower mean PSNR: about 4.5 dB "
        "per halving of the bytes, where a smaller whole model costs about 7.5 dB per halving at these "
        "sizes (the `none` rows above), so at equal PSNR it loses.",
        "* Side measurements on Gray-Scott 48^3 (40 cycles, ratio 100, keyframe every 10, 60 steps, the chain "
        "run in-process with `inr.fit`; whole models 110 capacity at 26.1 dB, 181 at 23.0 dB; deltas 163 at "
        "26.1 dB, a gain of 1.49; not part of this JSON):",
        "  * one keyframe in 40 cycles instead of one in 10: capacity 165 instead of 163 at the same PSNR. "
        "In the steady state a delta costs ~0.65 of a whole model, so no keyframe interval brings the gain "
        "much above 1/0.65 = 1.55.",
        "  * sparse deltas (a probe fit of a quarter of the steps, then only the 50 % or 25 % of the parameters "
        "that moved most, in quantisation steps, may move; the others stay at the base's values): capacity "
        "187 / 247 but 24.5 / 21.2 dB, a gain at equal PSNR of 1.32 / 1.01. After a keyframe converged "
        "for 600 steps the same selection cost only 0.2 / 1.2 dB for 12 / 32 % of a delta's bytes on "
        "Gray-Scott (3 / 10 dB on advection): in a running chain every cycle still converges, and frozen "
        "parameters cannot.",
        "  * cheap deltas (1, 3 or 10 steps at learning rate 1e-3, keyframes at 60 steps): capacity 456 / 327 "
        "/ 213 at 15.3 / 16.5 / 20.1 dB, 0.73x or less of whole models at equal PSNR: a model that is not "
        "kept up loses PSNR faster than the bytes saved buy back.",
        "  * how far the parameters move: one Adam step at 3e-3 from the base already moves them by 0.9 "
        "quantisation steps on average (a delta of 0.17 of a whole model); after 10 steps 1.7 (0.49), after "
        "60 steps 3.0 (0.59). Keeping Adam's moments from cycle to cycle instead of starting it afresh (32^3, "
        "torch backend, 30 cycles) left the deltas as large: 0.80 of a whole model instead of 0.78, for "
        "+0.3 dB. Adam's step is about the learning rate wherever the gradient keeps its sign, and a new "
        "cycle's data gives most parameters a new direction.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sim", default="advection", choices=list(FIELDS))
    ap.add_argument("--grid", type=int, default=48)
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--ratios", type=float, nargs="+", default=[100, 300])
    ap.add_argument("--fit-steps", type=int, default=60, help="training steps per block and cycle (default 60)")
    ap.add_argument("--keyframe-every", type=int, default=10)
    ap.add_argument("--ranks", type=int, default=1)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--quick", action="store_true", help="32^3, 30 cycles, ratios 50 and 200")
    ap.add_argument("--keep", action="store_true", help="keep the run folders (printed)")
    ap.add_argument("--from-json", nargs="+", help="skip the runs: read these outputs of this benchmark")
    ap.add_argument("--markdown", help="write the markdown report here")
    args = ap.parse_args()
    if args.from_json:
        docs = []
        for p in args.from_json:  # one run's output, or a list of them
            doc = json.loads(Path(p).read_text())
            docs.extend(doc if isinstance(doc, list) else [doc])
        if args.markdown:
            Path(args.markdown).write_text(markdown(docs))
        return
    if args.quick:
        args.grid, args.cycles, args.ratios = 32, 30, [50, 200]
    work = Path(tempfile.mkdtemp(prefix="temporal_bench_"))
    t0 = time.perf_counter()
    try:
        rows = [run_once(args, mode, ratio, work) for ratio in args.ratios for mode in ("none", "delta")]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    out = {"sim": args.sim, "backend": args.backend, "grid": args.grid, "cycles": args.cycles, "ranks": args.ranks,
           "fit_steps": args.fit_steps, "keyframe_every": args.keyframe_every, "runs": rows,
           "equal_psnr_capacity": equal_psnr(rows, "capacity"),
           "equal_psnr_model_capacity": equal_psnr(rows, "model_capacity"),
           "same_ratio_gain": {f"{r:g}": round(next(x["capacity"] for x in rows if x["mode"] == "delta"
                                                    and x["ratio"] == r) /
                                               next(x["capacity"] for x in rows if x["mode"] == "none"
                                                    and x["ratio"] == r), 2) for r in args.ratios},
           "bench_seconds": round(time.perf_counter() - t0, 1)}
    if args.keep:
        out["folders"] = str(work)
    if args.markdown:
        Path(args.markdown).write_text(markdown([out]))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
