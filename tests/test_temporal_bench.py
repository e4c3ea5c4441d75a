"""benchmarks/temporal_bench.py: capacity at equal PSNR and the markdown report (the runs themselves are the
benchmark's; the pipeline they drive is tested in test_temporal.py)."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("temporal_bench", ROOT / "benchmarks" / "temporal_bench.py")
tb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tb)


def run(mode, ratio, capacity, psnr):
    return {"mode": mode, "ratio": ratio, "capacity": capacity, "model_capacity": capacity * 1.2,
            "psnr_mean": psnr, "psnr_min": psnr - 3, "cycles_with_deltas": 9 if mode == "delta" else 0,
            "fit_s_per_cycle": 0.6 if mode == "delta" else 0.5}


def test_capacity_is_compared_at_equal_psnr():
    rows = [run("none", 100, 100.0, 40.0), run("none", 400, 400.0, 30.0),
            run("delta", 100, 150.0, 41.0), run("delta", 400, 500.0, 31.0)]
    # none at 35 dB: log-midway between 100 and 400 -> 200
    assert tb.capacity_at([r for r in rows if r["mode"] == "none"], 35.0, "capacity") == pytest.approx(200.0)
    assert tb.capacity_at([r for r in rows if r["mode"] == "none"], 45.0, "capacity") is None  # outside: no guess
    table = tb.equal_psnr(rows, "capacity")
    assert [t["psnr_mean"] for t in table] == [31.0, 40.0]  # the PSNRs both modes span
    at40 = table[1]
    assert at40["none"] == 100.0 and at40["delta"] == pytest.approx(150 * (500 / 150) ** 0.1, rel=1e-3)


def test_markdown_report_from_the_json(tmp_path):
    doc = {"sim": "advection", "backend": "native", "grid": 32, "cycles": 30, "ranks": 1, "fit_steps": 60,
           "keyframe_every": 10, "runs": [run("none", 100, 100.0, 40.0), run("delta", 100, 150.0, 40.0)],
           "equal_psnr_capacity": [{"psnr_mean": 40.0, "none": 100.0, "delta": 150.0, "gain": 1.5}],
           "equal_psnr_model_capacity": [{"psnr_mean": 40.0, "none": 120.0, "delta": 180.0, "gain": 1.5}]}
    (tmp_path / "a.json").write_text(json.dumps([doc]))
    import sys

    argv = sys.argv
    sys.argv = ["temporal_bench", "--from-json", str(tmp_path / "a.json"), "--markdown", str(tmp_path / "r.md")]
    try:
        tb.main()
    finally:
        sys.argv = argv
    text = (tmp_path / "r.md").read_text()
    assert "## advection, 32^3, 30 cycles" in text and "| delta | 100 | 150.0 | 180.0 | 40.00 |" in text
    assert "| 40.00 | 100.0 | 150.0 | 1.5 | 120.0 | 180.0 | 1.5 |" in text
    # the summary bullets are read from the runs, not written by hand
    assert "falls short of 2x (equal-PSNR rows above): advection 1 rank 1.50 at 40.0 dB." in text
    assert "Over the model bytes alone: advection 1 rank 1.50." in text
    assert "the none row's at the same ratio: advection 1 rank +0.10 s" in text


def test_runs_of_one_configuration_merge_and_compare_with_independent_models(tmp_path):
    config = {"sim": "advection", "backend": "native", "grid": 32, "cycles": 30, "ranks": 1, "fit_steps": 60,
              "keyframe_every": 10}
    first = tb.summarise(config, [run("none", 100, 100.0, 40.0), run("none", 400, 400.0, 30.0),
                                  run("delta", 100, 999.0, 41.0), run("delta", 400, 500.0, 31.0)])
    assert first["equal_psnr_capacity_vs_independent"] == []  # no independent runs yet
    later = tb.summarise(config, [run("independent", 100, 80.0, 38.0), run("independent", 400, 320.0, 28.0),
                                  run("delta", 100, 150.0, 41.0)])  # a rerun of delta at 100 replaces the first
    other = tb.summarise({**config, "ranks": 2}, [run("none", 100, 90.0, 39.0), run("delta", 100, 120.0, 39.0)])
    (tmp_path / "a.json").write_text(json.dumps([first, other]))
    (tmp_path / "b.json").write_text(json.dumps(later))
    import sys

    argv = sys.argv
    sys.argv = ["temporal_bench", "--from-json", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                "--markdown", str(tmp_path / "r.md"), "-o", str(tmp_path / "m.json")]
    try:
        tb.main()
    finally:
        sys.argv = argv
    merged = json.loads((tmp_path / "m.json").read_text())
    assert [(d["ranks"], len(d["runs"])) for d in merged] == [(1, 6), (2, 2)]
    one = merged[0]
    assert {(r["mode"], r["ratio"]): r["capacity"] for r in one["runs"]}[("delta", 100)] == 150.0
    vs = {r["psnr_mean"]: r for r in one["equal_psnr_capacity_vs_independent"]}
    # independent at 31 dB: log-linear between 320 (28 dB) and 80 (38 dB); delta there is its own run, 500
    assert set(vs) == {31.0, 38.0}
    assert vs[31.0]["independent"] == pytest.approx(320 * (80 / 320) ** 0.3, rel=1e-3)
    assert vs[31.0]["gain"] == pytest.approx(500 / (320 * (80 / 320) ** 0.3), abs=0.01)
    text = (tmp_path / "r.md").read_text()
    assert "| 31.00 | " in text and "Against independent per-cycle models, at equal mean PSNR:" in text
    lo, hi = sorted(r["gain"] for r in one["equal_psnr_capacity_vs_independent"])
    assert "* advection 1 rank: against warm-started whole models" in text
    assert f"against independent per-cycle models {lo:.2f} to {hi:.2f}" in text
    assert "* advection 2 ranks: against warm-started whole models 1.33; against independent per-cycle models —" in text


def test_each_mode_asks_compress_for_its_own_temporal_and_warm_start():
    for mode, (temporal, warm) in tb.MODES.items():
        text = tb.ACTIONS.format(field="v", ratio=100, steps=60, temporal=temporal, warm=warm, k=10,
                                 backend="native")
        assert f"temporal='{temporal}', warm_start={warm}," in text, mode
    assert tb.MODES["independent"] == ("none", False) and tb.MODES["delta"] == ("delta", True)
