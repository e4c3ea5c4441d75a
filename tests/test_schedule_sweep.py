"""benchmarks/schedule_sweep.py: the swept decay reaches the fit, the shipped schedule is restored, and a real
small run and its report (the schedule itself is inr.fit's, tested in test_fit.py)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import schedule_sweep as sw  # benchmarks/ is on pytest's pythonpath (pyproject.toml)

ROOT = Path(__file__).resolve().parents[1]


def test_the_swept_decay_reaches_the_fit():
    values = np.random.default_rng(0).random((12, 12, 12)).astype(np.float32)
    saved = sw.FIT.LR_FINAL_FRACTION
    try:
        runs = {f: sw.cold(values, 4, 30, 1e-2, f) for f in (0.01, 1.0)}
    finally:
        sw.FIT.LR_FINAL_FRACTION = saved
    assert runs[0.01]["psnr"] != runs[1.0]["psnr"]  # the same seed: only the schedule differs
    assert all(r["bytes"] > 0 for r in runs.values())


def test_a_small_run_restores_the_shipped_schedule_and_reports(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "schedule_sweep.py"), "--size", "16",
                          "--fields", "gaussians", "--ratios", "20", "--steps", "20", "--rates", "0.01",
                          "--finals", "0.5", "1", "--chain-cycles", "3", "--chain-size", "12",
                          "--markdown", str(tmp_path / "s.md")], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads(out.stdout)
    assert doc["shipped"] == {"lr": sw.FIT.LEARNING_RATE, "final_fraction": sw.FIT.LR_FINAL_FRACTION,
                              "warm_final_fraction": sw.FIT.WARM_LR_FINAL_FRACTION}
    assert [(r["lr"], r["final_fraction"]) for r in doc["cold"][0]["runs"]] == [(0.01, 0.5), (0.01, 1.0)]
    assert {(c["final_fraction"], c["mode"]) for c in doc["chains"]} == {(0.5, "none"), (0.5, "delta"),
                                                                        (1.0, "none"), (1.0, "delta")}
    delta = [c for c in doc["chains"] if c["mode"] == "delta"]
    whole = [c for c in doc["chains"] if c["mode"] == "none"]
    assert sum(c["bytes"] for c in delta) < sum(c["bytes"] for c in whole)  # deltas after the keyframe store less
    text = (tmp_path / "s.md").read_text()
    best = max(doc["cold"][0]["runs"], key=lambda r: r["psnr"])
    assert f"Best mean: lr 0.01, final fraction {best['final_fraction']:g}" in text
    for c in doc["chains"]:
        assert f"| {c['final_fraction']:g} | {c['mode']} | {c['bytes']} | {c['psnr_mean']:.2f} |" in text
