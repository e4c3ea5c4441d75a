"""Per-rank blocks (issue 27): the compress summary names the blocks that stayed low; the blocks benchmark's split."""
import sys
from pathlib import Path

import pytest

from insitu.filters.compress import low_blocks, summarise
from insitu.filters.env import FilterResult

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.blocks import blocks  # noqa: E402
from sims.analytic import gaussians  # noqa: E402


def stats(psnrs, target=None, asked=None):
    return {"blocks": len(psnrs), "deltas": 0, "psnr": psnrs, "ratios": [100.0] * len(psnrs), "fit_seconds": 1.0,
            "seconds": 1.0, "raw_bytes": 4000 * len(psnrs), "stored_bytes": 40 * len(psnrs),
            "blocks_psnr": [(f"'v' domain {i} cycle 3", p) for i, p in enumerate(psnrs)], "asked_ratio": asked,
            "retries": 0, "target_psnr": target}


def result(st):
    r = FilterResult("compress")
    r.stats = st
    return r


def test_the_summary_names_blocks_far_below_their_neighbours_or_the_target():
    a, b = stats([44.0, 45.0, 24.8], asked=90.0), stats([43.0, 46.0, 44.5, 25.5])
    low = low_blocks([a, b])
    assert [p for _, p in low] == [24.8, 25.5]
    line = summarise([result(a), result(b)])
    assert "2 block(s) stayed low: 'v' domain 2 cycle 3 24.8 dB, 'v' domain 3 cycle 3 25.5 dB" in line
    assert "(asked 90.0)" in line
    # with a target, a block under it is low even when its neighbours are no better
    assert [p for _, p in low_blocks([stats([38.0, 39.0, 41.0], target=40)])] == [38.0, 39.0]
    assert "stayed low" not in summarise([result(stats([44.0, 45.0, 43.0]))])


def test_benchmark_split_owns_every_sample_once_with_one_ghost_layer():
    shape = (10, 9, 8)
    seen = {}
    for owned, full in blocks(shape, 2):
        for (a, b), (fa, fb), n in zip(owned, full, shape):
            assert fa == max(a - 1, 0) and fb == min(b + 1, n)
        key = tuple(owned)
        seen[key] = seen.get(key, 0) + 1
    assert len(seen) == 8 and sum((b0 - a0) * (b1 - a1) * (b2 - a2)
                                  for (a0, b0), (a1, b1), (a2, b2) in seen) == 10 * 9 * 8


def test_block_complexity_is_zero_where_the_residual_stays_under_the_error_and_grows_at_a_front():
    import numpy as np
    from benchmarks.blocks import block_complexity

    z, y, x = np.meshgrid(*[np.linspace(0, 1, 20)] * 3, indexing="ij")
    linear = (x + 2 * y - z).astype(np.float32)  # Lorenzo predicts a linear field exactly
    front = np.where(x + y + z > 1.5, 1.0, 0.0).astype(np.float32)
    assert block_complexity(np.full((8, 8, 8), 3.0), 0.01) == 0.0
    assert block_complexity(linear, 0.01) < 0.01
    assert block_complexity(front, 0.01) > 0.1
    # absolute units: scaling the values and the error together changes nothing; a finer error costs more
    assert abs(block_complexity(10 * front, 0.1) - block_complexity(front, 0.01)) < 1e-9
    assert block_complexity(front, 0.001) > block_complexity(front, 0.01)


def test_content_weights_keep_the_total_and_give_hard_blocks_more_within_the_clip():
    import numpy as np
    import pytest
    from benchmarks.blocks import content_weights

    w = content_weights([0.0, 1.0, 3.0], [100, 100, 200])
    assert np.isclose(w[0] * 100 + w[1] * 100 + w[2] * 200, 400)
    assert w[0] < w[1] < w[2]
    assert w[2] / w[0] <= 16 + 1e-9  # each within 4x of even before renormalising
    assert content_weights([0.0, 0.0], [5, 7]) == [1.0, 1.0]
    with pytest.raises(ValueError, match="complexities and samples"):
        content_weights([1.0], [1, 2])


def test_benchmark_split_weights_even_or_by_content():
    import numpy as np
    from benchmarks.blocks import split_weights

    v = np.zeros((16, 16, 16), np.float32)
    v[8:, 8:, 8:] = np.random.default_rng(0).random((8, 8, 8))  # one busy block, seven constant ones
    assert split_weights(v, 2, "even") == [1.0] * 8
    w = split_weights(v, 2, "content")
    assert np.isclose(sum(w), 8) and max(w) == w[-1] and w[-1] > 2 * w[0]


def test_a_target_psnr_run_reports_no_asked_ratio(tmp_path):
    """With target_psnr and no ratio, the ratios are the search's tries, not the user's: the summary asks none."""
    import insitu.runtime.embedded as runtime_mod
    from insitu.blueprint import uniform_domain
    from insitu.filters.session import current
    from insitu.runtime import connect
    from sims.analytic import gaussians

    out = {}
    for key, args in (("target", "target_psnr=35"), ("ratio", "ratio=20")):
        runtime_mod.reset_process_state()
        rt = connect(prefer="embedded")
        rt.publish([uniform_domain(gaussians((16, 16, 16), seed=1), field="e", cycle=1)])
        runtime_mod._NAMESPACE["res"] = res = {}
        rt.execute([{"action": "add_extracts", "extracts": {"inr": {"type": "python", "params": {"source":
                     f"import ascent_filters as af; res['r'] = af.compress(fields=['e'], {args}, max_steps=100, "
                     f"backend='native', cache='{tmp_path / key}')"}}}}])
        current().close_all()
        out[key] = res["r"]["stats"]
    assert out["target"]["asked_ratio"] is None and "(asked" not in summarise([result(out["target"])])
    assert out["ratio"]["asked_ratio"] == 20 and "(asked 20.0)" in summarise([result(out["ratio"])])


def test_the_engine_split_meets_the_target_over_the_field_and_is_reported():
    import argparse

    import benchmarks.blocks as bench

    values = gaussians((20, 22, 24))
    one = bench.engine_split(values, 2, 40.0, steps=100)
    # each block aims at 40 dB over the field's range: the stitched field meets it, and the bytes add up
    assert one["psnr"] >= 40.0 and one["ratio"] == pytest.approx(values.nbytes / one["bytes"])
    assert 0 <= one["predictive_blocks"] <= 8 and len(one["block_psnr"]) == 8
    args = argparse.Namespace(steps=100, seed=0)
    pts = bench.engine_points("g", values, 2, args)
    assert pts[0]["asked_psnr"] == 40.0 and (pts[-1]["psnr"] < 40.0 or len(pts) == bench.ENGINE_POINTS)
    sz = bench.sz3_points(values, 1) if _has_pysz() else None
    doc = {"meta": {"size": 20, "argv": ["--quick"], "splits": [2], "steps": 100, "seed": 0, "target_psnr": 40.0,
                    "threads": None, "cpus": 2},
           "fields": {"g": {"shape": [20, 22, 24], "splits": {"2": {
               "blocks": 8, "inr": [], "engine": pts, "engine_ratio_at_40db": bench.ratio_at(pts),
               "sz3": sz, "sz3_ratio_at_40db": bench.ratio_at(sz) if sz else None}}}},
           "notes": []}
    text = bench.markdown(doc)
    assert "## The engine: `target_psnr` per block" in text and "## Networks sized by a ratio" not in text
    assert f"| g (20x22x24) | 8 | {bench._f(bench.ratio_at(pts))} |" in text


def _has_pysz() -> bool:
    try:
        import pysz  # noqa: F401
    except ImportError:
        return False
    return True
