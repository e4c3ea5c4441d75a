"""benchmarks/shape_sweep.py: shapes kept within the default's budget, PSNR at equal bytes, a real small run and
its report (the fits are the benchmark's; sizing itself is tested in test_config.py)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import inr
import shape_sweep as ss  # benchmarks/ is on pytest's pythonpath (pyproject.toml)
from inr.sizing import param_section_bytes

ROOT = Path(__file__).resolve().parents[1]


def finest(cfg: inr.ModelConfig) -> float:
    e = cfg.encoding
    return e.base_resolution * e.per_level_scale ** (e.n_levels - 1)


def test_a_variant_changes_one_knob_and_brackets_the_default_budget():
    shape = (64, 64, 64)
    default = inr.config_for_ratio(shape, 100)
    budget = param_section_bytes(default, 8)
    bracketed = 0
    for knobs in ss.VARIANTS.values():
        lo = ss.shaped(default, shape, budget, **knobs)
        hi = ss.shaped(default, shape, budget, larger=True, **knobs)
        assert lo is not None and param_section_bytes(lo, 8) <= budget, knobs
        if hi is None:  # every level dense already: a larger table adds nothing, the benchmark skips it
            bigger = inr.ModelConfig(inr.EncodingConfig(*(lo.encoding.n_levels, lo.encoding.n_features_per_level,
                                                          lo.encoding.log2_hashmap_size + 1,
                                                          lo.encoding.base_resolution, lo.encoding.per_level_scale)),
                                     lo.network)
            assert bigger.n_params == lo.n_params, knobs
            continue
        bracketed += 1
        assert param_section_bytes(hi, 8) > budget and hi.encoding.log2_hashmap_size == lo.encoding.log2_hashmap_size + 1
    # most variants must bracket the budget (a sweep of all-dense variants would measure nothing); the ones that
    # halve the finest level make every level dense at this budget, which the loop above checks
    assert bracketed >= 0.75 * len(ss.VARIANTS)
    half = ss.shaped(default, shape, budget, **ss.VARIANTS["finest=half"])
    assert finest(half) == pytest.approx(finest(default) / 2, rel=0.01)
    twelve = ss.shaped(default, shape, budget, **ss.VARIANTS["levels=12"])
    assert twelve.encoding.n_levels == 12 and twelve.network == default.network


def test_psnr_is_read_at_the_default_bytes_in_log_bytes():
    a, b = {"psnr": 30.0, "bytes": 1000}, {"psnr": 34.0, "bytes": 4000}
    assert ss.at_bytes(a, b, 2000) == pytest.approx(32.0)
    assert ss.at_bytes(a, b, 8000) == pytest.approx(36.0)  # outside: extrapolated on the same line


def test_a_small_run_and_its_report(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "shape_sweep.py"), "--size", "24", "--fields",
                          "gaussians", "--ratios", "20", "--steps", "20", "--variants", "levels=6", "finest=double",
                          "--markdown", str(tmp_path / "m.md")], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads(out.stdout)
    default = next(r for r in doc["rows"] if r["variant"] == "default")
    assert default["ratio"] == 20 and default["achieved_ratio"] >= 20
    for r in doc["rows"]:
        if r["variant"] != "default":
            a, b = r["fits"]
            assert a["bytes"] < b["bytes"]
            assert r["vs_default_db"] == pytest.approx(r["psnr_at_default_bytes"] - default["psnr"], abs=2e-3)
    report = (tmp_path / "m.md").read_text()
    assert "| gaussians | 20 |" in report and "finest=double" in report
