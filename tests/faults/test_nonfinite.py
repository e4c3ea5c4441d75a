"""NaN/Inf blocks are cached: the network fits the finite values, the NaN/Inf samples come back exactly."""
from __future__ import annotations

import numpy as np

import insitu.runtime.embedded as runtime_mod
from insitu.blueprint import uniform_domain
from insitu.cache import TemporalCache
from insitu.filters.session import current
from insitu.runtime import connect
from sims.analytic import gaussians


def compress(tmp_path, values: np.ndarray, cycle: int = 1) -> dict:
    runtime_mod.reset_process_state()
    rt = connect(prefer="embedded")
    rt.publish([uniform_domain(values, field="e", cycle=cycle)])
    runtime_mod._NAMESPACE["res"] = res = {}
    rt.execute([{"action": "add_extracts", "extracts": {"inr": {"type": "python", "params": {"source":
                 f"import ascent_filters as af; res['r'] = af.compress(fields=['e'], ratio=8, max_steps=150, "
                 f"backend='native', cache='{tmp_path / 'c'}')"}}}}])
    current().close_all()
    return res["r"]


def test_a_block_with_nan_and_inf_is_cached_and_decodes_them_in_place(tmp_path):
    values = gaussians((16, 16, 16), seed=3)
    values[3, 4, 5] = np.nan
    values[10, 0, 15] = np.inf
    values[15, 15, 0] = -np.inf
    r = compress(tmp_path, values)
    assert r["errors"] == [] and r["stats"]["blocks"] == 1
    with TemporalCache.open(tmp_path / "c") as reader:
        back = reader.reconstruct("e", 1)
    assert np.isnan(back[3, 4, 5]) and back[10, 0, 15] == np.inf and back[15, 15, 0] == -np.inf
    finite = np.isfinite(values)
    assert np.isfinite(back[finite]).all()
    err = np.abs(back[finite] - values[finite])
    assert err.max() < 0.1 * np.ptp(values[finite])  # the finite values are fitted as usual


def test_values_beyond_float32_get_their_own_message(tmp_path):
    values = gaussians((8, 8, 8), seed=1).astype(np.float64)
    values[0, 0, 0] = 1e40
    r = compress(tmp_path, values)
    assert r["stats"]["blocks"] == 0
    assert len(r["errors"]) == 1 and "beyond float32's range" in r["errors"][0] and "1e+40" in r["errors"][0]
