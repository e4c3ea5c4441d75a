"""Training ideas for issue 26, measured side by side: steps and seconds to a target PSNR on one model.

    python benchmarks/fit_ideas.py --fields gray_scott.v@20 --volumes ironprot -o ideas.json

For every field, the smallest model that reaches ``--psnr`` (``inr.fit``'s own search, not timed) is fitted from
scratch once per variant (one thread, the variants interleaved ``--repeats`` times so that a noisy machine
disturbs them alike); each variant sets ``inr.fit``'s schedule constants:

* ``base``: the shipped schedule;
* ``lr2e-2``: learning rate 2e-2 instead of 1e-2;
* ``lr2e-2+warmup``: the same with a linear warm-up over ``LR_WARMUP_STEPS`` steps;
* ``solve``: the output layer solved in closed form at every check (``inr.fit.solve_output_layer``);
* ``lr2e-2+warmup+solve``: both.

JSON: per field and variant the steps, seconds (the median over repeats), PSNR and ratio at the stop.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import inr  # noqa: E402
from rate_distortion import sweep_fields  # noqa: E402

FIT = sys.modules["inr.fit"]
VARIANTS: dict[str, dict[str, object]] = {
    "base": {},
    "lr2e-2": {"LEARNING_RATE": 2e-2},
    "lr2e-2+warmup": {"LEARNING_RATE": 2e-2, "LR_WARMUP_STEPS": 50},
    "solve": {"SOLVE_OUTPUT_LAYER": True},
    "lr2e-2+warmup+solve": {"LEARNING_RATE": 2e-2, "LR_WARMUP_STEPS": 50, "SOLVE_OUTPUT_LAYER": True},
}


def run_variant(values: np.ndarray, config: inr.ModelConfig, target: float, max_steps: int,
                settings: dict[str, object]) -> dict:
    """One timed fit of ``config`` to ``target`` dB with ``inr.fit``'s constants set as ``settings`` say."""
    saved = {k: getattr(FIT, k) for k in settings}
    try:
        for k, v in settings.items():
            setattr(FIT, k, v)
        t = time.perf_counter()
        model, rep = inr.fit(values, config=config, target_psnr=target, max_steps=max_steps, backend="native",
                             threads=1)
        seconds = time.perf_counter() - t
    finally:
        for k, v in saved.items():
            setattr(FIT, k, v)
    return {"steps": rep.steps, "seconds": seconds, "psnr": rep.psnr, "ratio": rep.ratio,
            "stop_reason": rep.stop_reason}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fields", nargs="*", default=["gray_scott.v@20"])
    ap.add_argument("--volumes", nargs="*", default=[])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--psnr", type=float, default=40.0)
    ap.add_argument("--max-steps", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    ap.add_argument("-o", "--output")
    args = ap.parse_args()
    notes: list[str] = []
    fields = sweep_fields(args.fields, args.size, notes) if args.fields else {}
    if args.volumes:
        from benchmarks.volumes import load_available

        fields.update(load_available(args.volumes, notes))
    doc: dict = {"argv": sys.argv[1:], "fields": {}, "notes": notes}
    for name, values in fields.items():
        values = np.ascontiguousarray(values, dtype=np.float32)
        model, _ = inr.fit(values, target_psnr=args.psnr, max_steps=args.max_steps, backend="native")
        runs: dict[str, list[dict]] = {v: [] for v in args.variants}
        for _ in range(args.repeats):
            for v in args.variants:
                runs[v].append(run_variant(values, model.config, args.psnr, args.max_steps, VARIANTS[v]))
                print(name, v, runs[v][-1], file=sys.stderr, flush=True)
        doc["fields"][name] = {"shape": list(values.shape), "n_params": model.config.n_params,
                               "variants": {v: {**r[-1], "seconds": statistics.median(x["seconds"] for x in r)}
                                            for v, r in runs.items()}}
    text = json.dumps(doc, indent=1) + "\n"
    (Path(args.output).write_text if args.output else print)(text)


if __name__ == "__main__":
    main()
