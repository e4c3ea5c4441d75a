"""Temporal weight-delta coding: model bytes, fit, cache chains (retention, budget, verify), the compress filter."""
from __future__ import annotations

import os

import numpy as np
import pytest

import inr
import insitu.runtime as runtime_mod
from inr.quantize import chain_limit
from insitu import compression
from insitu.blueprint import uniform_domain
from insitu.cache import CacheCorruptError, CacheKeyError, CacheReader, EntryMeta, TemporalCache
from insitu.runtime import connect
from sims.analytic import gaussians

CFG = inr.ModelConfig(inr.EncodingConfig(4, 2, 8, 4, 1.5), inr.NetworkConfig(16, 1))


def model(seed: int = 0, scales=None, params=None, bits: int = 8) -> inr.Model:
    p = params if params is not None else np.random.default_rng(seed).normal(0, 0.2, CFG.n_params)
    return inr.Model(CFG, p, (0.0, 1.0), (6, 7, 8), "vertex", ((0, 6), (0, 7), (0, 8)), bits, scales=scales)


def nudged(base: inr.Model, amount: float, seed: int = 1) -> inr.Model:
    """``base`` with some parameters moved, put on ``base``'s grid (what fit(delta_base=) does)."""
    p = base.params.astype(np.float32)
    rng = np.random.default_rng(seed)
    moved = rng.random(p.size) < 0.3
    p[moved] += rng.normal(0, amount, moved.sum())
    return model(params=p, scales=base.scales)


def same_params(a: inr.Model, b: inr.Model) -> bool:
    return np.array_equal(a.params.view(np.uint16), b.params.view(np.uint16))


# --- model bytes ---------------------------------------------------------------------------------------
def test_delta_round_trip_is_bit_identical_and_smaller():
    base = model()
    new = nudged(base, 0.01)
    blob = new.to_bytes(base=base)
    assert inr.Model.is_delta(blob) and not inr.Model.is_delta(base.to_bytes())
    back = inr.Model.from_bytes(blob, base=base)
    assert same_params(back, new) and np.array_equal(back.scales, base.scales)
    assert np.array_equal(back.decode(backend="torch"), new.decode(backend="torch"))
    # most parameters did not move: the delta is far smaller than the whole model
    assert len(blob) < 0.6 * len(new.to_bytes())
    # an unchanged model costs almost nothing
    assert len(base.to_bytes(base=base)) < 0.2 * len(base.to_bytes())


def test_model_on_a_shared_grid_round_trips_whole_with_wide_steps():
    base = model()
    p = base.params.astype(np.float32)
    p[-5:] = 3 * np.abs(p).max()  # beyond int8 steps of the base grid, within the chain limit
    wide = model(params=p, scales=base.scales)
    back = inr.Model.from_bytes(wide.to_bytes())  # self-contained: scales + int16 steps
    assert same_params(back, wide) and np.array_equal(back.scales, base.scales)
    assert same_params(inr.Model.from_bytes(wide.to_bytes(base=base), base=base), wide)


def test_delta_needs_its_own_base():
    base, other = model(0), model(5)
    blob = nudged(base, 0.01).to_bytes(base=base)
    with pytest.raises(inr.ModelFormatError, match="needs their base model"):
        inr.Model.from_bytes(blob)
    with pytest.raises(inr.ModelFormatError, match="base CRC mismatch"):
        inr.Model.from_bytes(blob, base=model(params=other.params, scales=base.scales))


@pytest.mark.parametrize("make, why", [
    (lambda b: model(1), "quantisation grid"),
    (lambda b: model(params=b.params, bits=16), "param_bits"),
])
def test_delta_against_an_incompatible_base_is_refused(make, why):
    base = model()
    with pytest.raises(inr.InrValueError, match=why):
        make(base).to_bytes(base=base)


def test_fit_stores_a_delta_and_reports_what_it_decodes_to():
    f0, f1 = gaussians((20, 20, 20)), gaussians((20, 20, 20), shift=0.01)
    m0, _ = inr.fit(f0, ratio=10, max_steps=200, backend="torch", seed=0)
    m1, rep = inr.fit(f1, ratio=10, max_steps=60, backend="torch", delta_base=m0)
    assert rep.delta and np.array_equal(m1.scales, m0.scales)
    blob = m1.to_bytes(base=m0)
    assert rep.stored_bytes == len(blob) and rep.ratio == pytest.approx(m1.raw_bytes / len(blob))
    back = inr.Model.from_bytes(blob, base=m0)
    assert inr.psnr(f1, back.decode(backend="torch"), float(np.ptp(f1))) == pytest.approx(rep.psnr, abs=1e-6)
    # a base of another config cannot carry a delta: a whole model is made
    small = inr.fit(f0, ratio=60, max_steps=20, backend="torch")[0]
    _, rep2 = inr.fit(f1, config=m0.config, max_steps=10, backend="torch", delta_base=small)
    assert not rep2.delta


def test_fit_falls_back_to_a_keyframe_when_parameters_outgrow_the_grid():
    base = model()
    p = base.params.astype(np.float32)
    p[:3] = (chain_limit(8) + 10) * base.scales.max()
    assert inr.quantize.grid_misfit(p, CFG, 8, base.scales) is not None
    f = gaussians((6, 7, 8))
    tiny = inr.Model(CFG, np.full(CFG.n_params, 1e-3), (0.0, 1.0), (6, 7, 8), "vertex", ((0, 6), (0, 7), (0, 8)), 8)
    # a base whose grid steps are tiny: the trained parameters leave it
    _, rep = inr.fit(f, config=CFG, max_steps=40, backend="torch", delta_base=tiny, learning_rate=0.05)
    assert not rep.delta


# --- the cache -------------------------------------------------------------------------------------------
def chain_cache(path, n: int, keyframe_every: int, **kw) -> tuple[TemporalCache, dict[int, inr.Model]]:
    """A cache of field 'f', domain 0, cycles 0..n-1: keyframes every ``keyframe_every`` cycles, deltas between."""
    cache = TemporalCache(path, memory_budget="64KiB", **kw)
    models: dict[int, inr.Model] = {}
    for c in range(n):
        key = c % keyframe_every == 0
        m = model(seed=c) if key else nudged(models[c - 1], 0.01, seed=c)
        meta = EntryMeta.from_model(m)
        cache.put("f", c, 0, m.to_bytes(base=None if key else models[c - 1]), meta, base_cycle=None if key else c - 1)
        models[c] = m
        cache.flush()
    return cache, models


def assert_chains_whole(path, models: dict[int, inr.Model], cycles: list[int]) -> None:
    """A reader finds no problem, and every cycle decodes to the model that was put."""
    with CacheReader(path) as r:
        assert r.verify() == []
        assert all(same_params(r.model("f", c, 0), models[c]) for c in cycles)


def test_chains_resolve_from_memory_and_from_disk(tmp_path):
    cache, models = chain_cache(tmp_path / "c", 9, 4)
    assert [cache.base_of("f", c, 0) for c in range(9)] == [None, 0, 1, 2, None, 4, 5, 6, None]
    for c in (7, 3, 0, 6):
        assert same_params(cache.model("f", c, 0), models[c])
    cache.close()
    with CacheReader(tmp_path / "c") as r:
        assert r.verify() == []
        for c in range(9):
            assert same_params(r.model("f", c, 0), models[c])
            assert r.reconstruct("f", c).shape == (6, 7, 8)


def test_info_and_verify_commands_see_the_chains(tmp_path, capsys):
    import json

    from insitu.cli import main

    cache, _ = chain_cache(tmp_path / "c", 6, 4)
    cache.close()
    assert main(["info", str(tmp_path / "c")]) == 0
    assert "6 entries (4 temporal deltas)" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "c"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fields"]["f"]["deltas"] == 4
    os.unlink(tmp_path / "c" / next(p for p in os.listdir(tmp_path / "c") if "-c0000000004-" in p))
    assert main(["verify", str(tmp_path / "c")]) == 1
    assert "cycle=5" in capsys.readouterr().out


def test_put_checks_the_base(tmp_path):
    with TemporalCache(tmp_path / "c") as cache:
        m = model()
        cache.put("f", 0, 0, m.to_bytes(), EntryMeta.from_model(m))
        with pytest.raises(CacheKeyError, match="cycle 3"):
            cache.put("f", 5, 0, m.to_bytes(base=m), EntryMeta.from_model(m), base_cycle=3)
        with pytest.raises(ValueError, match="earlier cycle"):
            cache.put("f", 0, 0, m.to_bytes(base=m), EntryMeta.from_model(m), base_cycle=0)


@pytest.mark.parametrize("retention, kept", [
    ({"keep_last": 2}, list(range(8, 12))),      # 10, 11 need keyframe 8 and delta 9
    ({"keep_every": 4}, [0, 4, 8, 9, 10, 11]),   # keyframes at multiples of 4, and the newest's chain
    ({"keep_last": 1, "keep_every": 6}, [0, 4, 5, 6, 8, 9, 10, 11]),  # 6 needs 5, 4
])
def test_retention_never_breaks_a_kept_chain(tmp_path, retention, kept):
    cache, models = chain_cache(tmp_path / "c", 12, 4, retention=retention)
    assert cache.cycles("f") == kept
    cache.close()
    assert_chains_whole(tmp_path / "c", models, kept)


def test_disk_budget_drops_whole_chains_oldest_first(tmp_path):
    probe, _ = chain_cache(tmp_path / "probe", 4, 4)
    chain_bytes = probe.stats()["disk_bytes"]
    probe.close()
    cache, models = chain_cache(tmp_path / "c", 11, 4, disk_budget=int(2.3 * chain_bytes))
    cycles = cache.cycles("f")
    assert cycles[-1] == 10 and cycles[0] % 4 == 0  # starts at a keyframe
    assert cache.dropped["disk_budget"] > 0
    cache.close()
    assert_chains_whole(tmp_path / "c", models, cycles)


def test_disk_budget_smaller_than_the_newest_chain_keeps_it_and_says_so(tmp_path):
    cache, models = chain_cache(tmp_path / "c", 4, 10)
    cache.close()
    with TemporalCache(tmp_path / "c", disk_budget=100) as cache:
        m = nudged(models[3], 0.01, seed=4)
        cache.put("f", 4, 0, m.to_bytes(base=models[3]), EntryMeta.from_model(m), base_cycle=3)
        with pytest.warns(RuntimeWarning, match="newest cycle's delta chain .*a smaller keyframe_every"):
            cache.flush()
        assert cache.cycles("f") == [0, 1, 2, 3, 4] and cache.dropped["disk_budget"] == 0


def test_replacing_a_base_drops_the_deltas_stored_against_it(tmp_path):
    cache, models = chain_cache(tmp_path / "c", 6, 10)
    m = model(seed=99)
    cache.put("f", 2, 0, m.to_bytes(), EntryMeta.from_model(m))
    assert cache.cycles("f") == [0, 1, 2]
    assert cache.dropped["base_replaced"] == 3
    assert same_params(cache.model("f", 2, 0), m)  # the memo forgot the old model
    cache.close()
    assert_chains_whole(tmp_path / "c", {**models, 2: m}, [0, 1, 2])


def test_verify_reports_broken_chains(tmp_path):
    cache, models = chain_cache(tmp_path / "c", 4, 10)
    # a delta stored against a model that is not the cached base
    m = nudged(model(seed=7), 0.01)
    cache.put("f", 4, 0, m.to_bytes(base=model(seed=7)), EntryMeta.from_model(m), base_cycle=3)
    cache.close()
    seg1 = [p for p in os.listdir(tmp_path / "c") if "-c0000000001-" in p]
    os.unlink(tmp_path / "c" / seg1[0])  # cycle 1 gone: 2 and 3 lose their base
    with CacheReader(tmp_path / "c") as r:
        problems = r.verify()
        text = "\n".join(str(p) for p in problems)
        assert {p.cycle for p in problems} == {2, 3, 4}, text
        assert "needs its base, cycle 1, which is not in the cache" in text
        assert "base CRC mismatch" in text or "needs its base" in text
        assert all(p.field == "f" and p.domain == 0 for p in problems)
        with pytest.raises(CacheCorruptError, match="cycle 1"):
            r.reconstruct("f", 3)
        assert r.reconstruct("f", 0).shape == (6, 7, 8)  # the rest stays readable


def test_verify_reports_a_delta_against_the_wrong_base(tmp_path):
    cache, models = chain_cache(tmp_path / "c", 2, 10)
    m = nudged(model(seed=7), 0.01)
    cache.put("f", 2, 0, m.to_bytes(base=model(seed=7)), EntryMeta.from_model(m), base_cycle=1)
    cache.close()
    with CacheReader(tmp_path / "c") as r:
        (problem,) = r.verify()
        assert problem.cycle == 2 and "base CRC mismatch" in str(problem)


# --- the compress filter ------------------------------------------------------------------------------------
@pytest.fixture
def embedded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runtime_mod.reset_process_state()
    yield connect(prefer="embedded")
    compression.close_all()


def compress(rt, kwargs: str) -> dict:
    src = f"import ascent_filters as af; r = af.compress(fields=['e'], {kwargs})"
    rt.execute([{"action": "add_extracts", "extracts": {"x": {"type": "python", "params": {"source": src}}}}])
    return runtime_mod._NAMESPACE["r"]


def test_compress_writes_chains_that_replay_exactly(embedded, capsys):
    fields = {}
    for c in range(7):
        fields[c] = gaussians((12, 13, 14), shift=0.01 * c)
        embedded.publish([uniform_domain(fields[c], field="e", cycle=c, domain_id=d) for d in range(2)])
        r = compress(embedded, "ratio=10, max_steps=60, temporal='delta', keyframe_every=3, backend='torch'")
        assert not r["errors"]
    assert "(2 stored as deltas)" in capsys.readouterr().out
    compression.close_all()
    with CacheReader("run.cache") as reader:
        assert [reader.base_of("e", c, 1) for c in range(7)] == [None, 0, 1, None, 3, 4, None]
        assert reader.verify() == []
        for c in range(7):
            meta = reader.meta("e", c, 0)
            assert meta.fit["delta"] == (c % 3 != 0)
            got = reader.reconstruct("e", c)
            # the PSNR recorded at compression time is that of what replay decodes
            assert inr.psnr(fields[c], got, float(np.ptp(fields[c]))) == pytest.approx(meta.psnr, abs=1e-4)
