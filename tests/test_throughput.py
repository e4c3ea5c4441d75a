"""benchmarks/throughput.py: each compressor is taken at the target quality, and a real small run and its report."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import throughput as tp  # benchmarks/ is on pytest's pythonpath (pyproject.toml)

import inr
from sims.analytic import sphere_front

ROOT = Path(__file__).resolve().parents[1]


def test_a_peer_is_taken_at_the_bound_that_just_reaches_the_target():
    pytest.importorskip("pysz")
    values = sphere_front((16, 16, 16))
    e = tp.peer_at_psnr("sz3", values, 35.0, repeats=1)
    assert 35.0 <= e["psnr"] <= 35.0 + 10  # reached, by a bound not far below what it needs
    assert e["stored_ratio"] > 1 and e["compress_mb_s"] > 0 and e["decompress_mb_s"] > 0
    looser = tp.peer_at_psnr("sz3", values, 25.0, repeats=1)
    assert looser["stored_ratio"] > e["stored_ratio"]  # a lower target compresses more


def test_the_inr_is_timed_as_a_user_calls_it_and_decodes_to_the_target():
    values = sphere_front((16, 16, 16))
    e = tp.inr_at_psnr(values, 30.0, repeats=1, max_steps=400)
    assert e["psnr"] >= 30.0 and e["coded_by"] in ("predictive", "network")
    model, rep = inr.fit(values, target_psnr=30.0, max_steps=400, backend="native")
    assert e["coded_by"] == ("predictive" if model.is_predictive else "network")
    assert e["ratio"] == pytest.approx(values.nbytes / len(model.to_bytes()))  # the stored bytes, deterministic fit
    sized = tp.inr_at_psnr(values, 30.0, repeats=1, max_steps=400, ratio=20.0)
    assert sized["coded_by"] == "network" and sized["stop_reason"] in ("target_psnr", "max_steps")
    fast = tp.inr_at_psnr(values, 30.0, repeats=1, max_steps=400, prefer="speed")
    assert fast["coded_by"] == "predictive" and fast["psnr"] >= 30.0 and fast["steps"] == 0


def test_versus_sz3_divides_by_sz3s_figures():
    row = {"sz3": {"ratio": 10.0, "compress_mb_s": 100.0, "decompress_mb_s": 200.0},
           "insitu-inr": {"ratio": 20.0, "compress_mb_s": 1.0, "decompress_mb_s": 50.0}, "shape": [4, 4, 4]}
    tp.versus_sz3(row)
    assert row["insitu-inr"]["vs_sz3"] == {"ratio": 2.0, "compress": 0.01, "decompress": 0.25}


def test_a_small_run_and_its_report(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--size", "16", "--fields",
                          "sphere_front", "--psnr", "30", "--repeats", "1", "--max-steps", "400",
                          "-o", str(tmp_path / "t.json"), "--markdown", str(tmp_path / "t.md")],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads((tmp_path / "t.json").read_text())
    row = doc["fields"]["sphere_front"]
    assert row["shape"] == [16, 16, 16]
    assert row["insitu-inr"]["psnr"] >= 30.0
    text = (tmp_path / "t.md").read_text()
    if row["insitu-inr"]["coded_by"] == "network":  # and beside it the predictive coding (prefer='speed')
        assert row["insitu-inr/speed"]["coded_by"] == "predictive"
    for comp in ("insitu-inr",) + tuple(p for p in ("sz3", "zfp", "insitu-inr@sz3", "insitu-inr/speed") if p in row):
        e = row[comp]
        assert f"| sphere_front | {comp} | {e['ratio']:.1f}" in text


def test_the_report_of_real_volumes_names_each_with_its_shape_and_the_command():
    e = {"ratio": 10.0, "psnr": 40.1, "compress_mb_s": 1.0, "decompress_mb_s": 5.0}
    doc = {"meta": {"size": None, "argv": ["--volumes", "hydrogen"], "target_psnr": 40.0, "repeats": 1,
                    "machine": "x", "processor": "", "cores": 2, "threads": None},
           "fields": {"hydrogen": {"shape": [64, 64, 64], "insitu-inr": e}}}
    text = tp.markdown(doc, doc)
    assert text.count("## Public volumes") == 2 and text.count("# Compression throughput") == 1
    assert "`python benchmarks/throughput.py --volumes hydrogen`" in text
    assert "| hydrogen 64x64x64 | insitu-inr | 10.0 |" in text


def test_the_recorded_command_leaves_out_where_it_writes():
    assert tp.run_argv(["--volumes", "hydrogen", "-o", "/x/t.json", "--markdown=/x/t.md", "--repeats", "2"]) == [
        "--volumes", "hydrogen", "--repeats", "2"]
