"""The end-of-run summary: figures recomputed from the cache, the quality plot drawn."""
import json

import numpy as np
import pytest
from PIL import Image

from support import render_common as rc

from insitu.cache import TemporalCache
from insitu.filters.report import summarize


def test_summary_figures_and_plot(tmp_path):
    rc.write_cache(tmp_path / "run.cache", {c: rc.field((24, 24, 24), seed=c) for c in (0, 1, 2)}, (2, 1, 1),
                   ratio=10, max_steps=100)
    (tmp_path / "frames").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "frames" / "v_0001.png")
    # one cycle with a trigger's look-back: it weighs on the run's overhead, not on the median cycle's
    timings = [{"cycle": c, "sim_s": 0.5, "insitu_s": 0.25 if c < 2 else 1.0, "fit_s": 0.2} for c in (0, 1, 2)]
    triggers = [{"trigger": "hot", "cycle": 2, "errors": []}]
    doc, lines = summarize(tmp_path, timings, triggers, ranks=2)
    with TemporalCache.open(tmp_path / "run.cache") as r:
        metas = [r.meta("f", c, d) for c in (0, 1, 2) for d in (0, 1)]
    raw = sum(4 * int(np.prod(m.dims)) for m in metas)
    disk = sum(p.stat().st_size for p in (tmp_path / "run.cache").rglob("*") if p.is_file())
    assert doc["raw_bytes"] == raw == 3 * 4 * 24 ** 3 and doc["capacity"] == pytest.approx(raw / disk)
    assert doc["psnr"]["min"] == pytest.approx(min(m.fit["psnr"] for m in metas))
    assert doc["timings"]["overhead"] == pytest.approx(1.0) and doc["images"] == ["frames/v_0001.png"]
    assert doc["timings"]["median_cycle_overhead"] == pytest.approx(0.5)
    text = "\n".join(lines)
    assert "3 cycles cached (0..2), 2 domains" in text and "hot x1 (cycles [2])" in text
    assert "overhead 1.00x the simulation (median cycle 0.50x)" in text
    plot = np.asarray(Image.open(tmp_path / "quality.png").convert("RGB")).astype(int)
    assert plot.shape[0] > 300 and (np.abs(plot - 255).sum(axis=2) > 100).mean() > 0.01  # lines were drawn
    assert json.loads((tmp_path / "summary.json").read_text())["fields"]["f"]["cycles"] == 3
