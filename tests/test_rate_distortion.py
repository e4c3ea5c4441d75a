"""benchmarks/rate_distortion.py --quick: keys, figures consistent with their definitions, report."""
import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

import inr

ROOT = Path(__file__).resolve().parents[1]


def load_bench():
    spec = importlib.util.spec_from_file_location("rate_distortion", ROOT / "benchmarks" / "rate_distortion.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["rate_distortion"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_ratio_at_interpolates_log_ratio_between_the_bracketing_points():
    rd = load_bench()
    pts = [{"ratio": 10.0, "psnr": 50.0}, {"ratio": 100.0, "psnr": 30.0}, {"ratio": 1000.0, "psnr": 20.0}]
    assert rd.ratio_at(pts, 40.0) == pytest.approx(math.sqrt(10 * 100))
    assert rd.ratio_at(pts, 60.0) is None and rd.ratio_at(pts, 10.0) is None
    assert rd.ratio_at([{"ratio": 5.0, "psnr": None}], 40.0) is None


def test_quick_run_json_and_markdown(tmp_path):
    rd = load_bench()
    out, md, png = tmp_path / "rd.json", tmp_path / "rd.md", tmp_path / "rd.png"
    assert rd.main(["--quick", "-o", str(out), "--markdown", str(md), "--plot", str(png)]) == 0
    doc = json.loads(out.read_text())
    assert set(doc) == {"meta", "fields", "notes"}
    f = doc["fields"]["gaussians"]
    values = rd.ANALYTIC["gaussians"]((24, 24, 24))
    assert f["shape"] == [24, 24, 24] and f["value_range"] == pytest.approx(float(np.ptp(values)))
    assert {"insitu-inr", "insitu-inr-f16"} <= set(f["runs"]) and set(f["ratio_at_40db"]) == set(f["runs"])
    for comp, pts in f["runs"].items():
        for p in pts:
            assert set(p) >= {"ratio", "bytes", "psnr", "max_abs_error", "compress_s", "decompress_s", "setting"}
            assert p["ratio"] == pytest.approx(values.nbytes / p["bytes"])
    # the insitu-inr figures are what the stored model decodes to: refit the same way and recompute
    p = f["runs"]["insitu-inr"][0]
    model, _ = inr.fit(values, ratio=p["setting"]["ratio"], max_steps=doc["meta"]["steps"], backend="native")
    blob = model.to_bytes()
    assert len(blob) == p["bytes"]
    dec = inr.Model.from_bytes(blob).decode(backend="native")
    assert inr.psnr(values, dec) == pytest.approx(p["psnr"], abs=1e-9)
    assert 20 * math.log10(np.ptp(values)) - 10 * math.log10(np.mean((dec - values.astype(np.float64)) ** 2)) \
        == pytest.approx(p["psnr"], abs=1e-6)
    for row in f["error_bounded"]:
        assert row["insitu-inr"]["max_abs_error"] <= row["abs_error"]
        assert row["insitu-inr"]["setting"].get("ratio") is None  # the headline is the default model size
        assert row["best"]["bytes"] <= row["insitu-inr"]["bytes"] and row["best"]["max_abs_error"] <= row["abs_error"]
        assert row["insitu-inr"]["residual_bytes"] < row["insitu-inr"]["bytes"]
        if "sz3" in row:
            assert row["size_vs_sz3"] == pytest.approx(row["insitu-inr"]["bytes"] / row["sz3"]["bytes"])
            assert row["best_vs_sz3"] == pytest.approx(row["best"]["bytes"] / row["sz3"]["bytes"])
    eb = f["runs"]["insitu-inr-eb"]
    assert len(eb) == 2 and all(p["max_abs_error"] <= p["setting"]["max_abs_error"] for p in eb)
    assert eb[0]["ratio"] > eb[1]["ratio"]  # the looser bound stores fewer bytes
    text = md.read_text()
    assert "## Ratio at 40 dB" in text and "| gaussians |" in text and "rd.png" in text
    assert png.stat().st_size > 1000
