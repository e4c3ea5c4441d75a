"""Temporal weight-delta coding: model bytes, fit, cache chains (retention, budget, verify), the compress filter."""
from __future__ import annotations

import json
import os
import struct
import sys
import zlib

import numpy as np
import pytest
import zstandard

import inr
import insitu.runtime.embedded as runtime_mod
from inr.delta_search import coarsen_delta
from inr.quantize import chain_limit
from insitu.filters import compress as compression
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
    assert np.array_equal(back.decode(backend="native"), new.decode(backend="native"))
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
    m0, _ = inr.fit(f0, ratio=10, max_steps=200, backend="native", seed=0)
    m1, rep = inr.fit(f1, ratio=10, max_steps=60, backend="native", delta_base=m0)
    assert rep.delta and np.array_equal(m1.scales, m0.scales)
    blob = m1.to_bytes(base=m0)
    assert rep.stored_bytes == len(blob) and rep.ratio == pytest.approx(m1.raw_bytes / len(blob))
    back = inr.Model.from_bytes(blob, base=m0)
    assert inr.psnr(f1, back.decode(backend="native"), float(np.ptp(f1))) == pytest.approx(rep.psnr, abs=1e-6)
    # a base of another config cannot carry a delta: a whole model is made
    small = inr.fit(f0, ratio=60, max_steps=20, backend="native")[0]
    _, rep2 = inr.fit(f1, config=m0.config, max_steps=10, backend="native", delta_base=small)
    assert not rep2.delta


def test_fit_falls_back_to_a_keyframe_when_parameters_outgrow_the_grid():
    base = model()
    p = base.params.astype(np.float32)
    p[:3] = (chain_limit(8) + 10) * base.scales.max()
    assert inr.quantize.grid_misfit(p, CFG, 8, base.scales) is not None
    f = gaussians((6, 7, 8))
    tiny = inr.Model(CFG, np.full(CFG.n_params, 1e-3), (0.0, 1.0), (6, 7, 8), "vertex", ((0, 6), (0, 7), (0, 8)), 8)
    # a base whose grid steps are tiny: the trained parameters leave it
    _, rep = inr.fit(f, config=CFG, max_steps=40, backend="native", delta_base=tiny, learning_rate=0.05)
    assert not rep.delta


def group_slices(config) -> list[slice]:
    """The quantised groups' slices of the flat parameters (the MLP's output layer is float16)."""
    return [sl for sl, quantised in inr.quantize.param_groups(config) if quantised]


def test_delta_stores_coarse_and_frozen_groups_as_small_integers():
    base = model()
    p = base.params.astype(np.float32)
    rng = np.random.default_rng(3)
    (g0, g1, g2, *_), sc = group_slices(CFG), base.scales
    p[g0] += 7 * sc[0] * rng.integers(-3, 4, g0.stop - g0.start)  # every move a multiple of 7 steps
    p[g2] += sc[2] * rng.integers(-2, 3, g2.stop - g2.start)  # single steps; g1 does not move
    new = model(params=p, scales=base.scales)
    blob = new.to_bytes(base=base)
    back = inr.Model.from_bytes(blob, base=base)
    assert same_params(back, new)
    assert np.array_equal(back.params[g1], base.params[g1]) and not np.array_equal(back.params[g0], base.params[g0])
    # the section leads with one multiplier per quantised group: gcd of the moves, 0 for a group that stayed
    h, _, end = inr.Model._read_header(blob)
    raw = zstandard.ZstdDecompressor().decompress(blob[end:end + h["pb"]])
    mult = np.frombuffer(raw, "<u2", len(sc))
    assert h["dm"] == 1 and mult[0] == 7 and mult[1] == 0 and mult[2] in (1, 2)
    # what the base already says is left out of the header
    assert not {"enc", "net", "grid", "owned"} & set(h)


def test_a_delta_of_another_block_shape_says_so():
    base = model()
    other = inr.Model(CFG, nudged(base, 0.01).params, (0.0, 2.0), (6, 7, 9), "element", ((0, 6), (1, 7), (0, 9)), 8,
                      scales=base.scales)
    blob = other.to_bytes(base=base)
    h, _, _ = inr.Model._read_header(blob)
    assert h["grid"] == [6, 7, 9] and h["assoc"] == "element" and "enc" not in h
    back = inr.Model.from_bytes(blob, base=base)
    assert (back.grid_shape, back.association, back.owned, back.value_range) == \
        (other.grid_shape, other.association, other.owned, other.value_range) and same_params(back, other)


def delta_without_multipliers(new: inr.Model, base: inr.Model) -> bytes:
    """The delta bytes as written before per-group multipliers existed: no ``dm``, the steps themselves."""
    limit = chain_limit(8)
    q, kept = inr.quantize._steps(new.params, CFG, base.scales, limit)
    qb, _ = inr.quantize._steps(base.params, CFG, base.scales, limit)
    section = zstandard.ZstdCompressor().compress((q - qb).astype(np.int8).tobytes() + kept.astype("<f2").tobytes())
    h = dict(new._header(), dtype="d8", bc=inr.model._params_crc(base.params), pb=len(section), rb=0, eb=None)
    header = json.dumps(h).encode()
    body = inr.model._PREFIX.pack(inr.model.MAGIC, 2, len(header)) + header + section
    return body + struct.pack("<I", zlib.crc32(body))


def test_deltas_written_before_the_multipliers_still_decode():
    base = model()
    new = nudged(base, 0.01)
    assert same_params(inr.Model.from_bytes(delta_without_multipliers(new, base), base=base), new)


def test_coarsen_delta_trades_bytes_for_psnr_at_the_price_it_is_given():
    m0, fine, quality = coarsen_setup()

    def cost(m: inr.Model, db_per_halving: float) -> float:
        mu = len(fine.to_bytes()) * np.log(2) / db_per_halving
        return len(m.to_bytes(base=m0)) - mu * quality(m.params)

    for price in (0.01, 4.0, 40.0):
        p, mults = coarsen_delta(fine.params, m0.params, m0.config, 8, m0.scales, quality, db_per_halving=price)
        coarse = inr.Model(m0.config, p, fine.value_range, fine.grid_shape, "vertex", fine.owned, 8, scales=m0.scales)
        assert len(mults) == len(m0.scales)
        if price == 0.01:  # a dB is worth more than any saving: no change that loses PSNR
            assert quality(coarse.params) >= quality(fine.params)
            continue
        # the choice lowers the cost it minimises (measured on the real stored bytes), and stores fewer bytes
        assert cost(coarse, price) < cost(fine, price)
        assert len(coarse.to_bytes(base=m0)) < len(fine.to_bytes(base=m0))
        for g, m in zip(group_slices(m0.config), mults):
            if m == 0:
                assert np.array_equal(coarse.params[g], m0.params[g])
        if price == 40.0:  # bytes are what counts: most groups stay put
            assert sum(m == 0 for m in mults) > len(mults) // 2


def test_fit_stores_fewer_moves_than_it_trained():
    f0, f1 = gaussians((24, 24, 24)), gaussians((24, 24, 24), shift=0.01)
    m0, _ = inr.fit(f0, ratio=20, max_steps=100, backend="native", seed=0)
    m1, rep = inr.fit(f1, max_steps=60, backend="native", delta_base=m0)
    # the same training without the choice of moves: every move it made, stored on m0's grid
    trained, _ = inr.fit(f1, config=m0.config, init=m0, max_steps=60, backend="native")
    every = inr.Model(m0.config, trained.params, trained.value_range, trained.grid_shape, "vertex", trained.owned, 8,
                      scales=m0.scales)
    assert rep.delta and rep.stored_bytes == len(m1.to_bytes(base=m0))
    assert rep.stored_bytes < 0.8 * len(every.to_bytes(base=m0))
    assert rep.psnr > inr.psnr(f1, every.decode(backend="native"), float(np.ptp(f1))) - 1.5


def coarsen_setup():
    """(base model, a warm-started fit on the base's grid with every move kept, quality(params) -> PSNR)."""
    f0, f1 = gaussians((20, 20, 20)), gaussians((20, 20, 20), shift=0.01)
    m0, _ = inr.fit(f0, ratio=10, max_steps=200, backend="native", seed=0)
    m1, _ = inr.fit(f1, config=m0.config, init=m0, max_steps=60, backend="native")
    fine = inr.Model(m0.config, m1.params, m1.value_range, m1.grid_shape, "vertex", m1.owned, 8, scales=m0.scales)

    def quality(p: np.ndarray) -> float:
        cand = inr.Model(m0.config, p, fine.value_range, fine.grid_shape, "vertex", fine.owned, 8, scales=m0.scales)
        return inr.psnr(f1, cand.decode(backend="native"), float(np.ptp(f1)))
    return m0, fine, quality


def test_coarsen_delta_keeps_a_psnr_floor_and_stops_at_its_deadline():
    m0, fine, quality = coarsen_setup()
    full = quality(fine.params)
    # bytes count for nearly everything, but no candidate may fall under the floor
    floor = full - 0.3
    p, mults = coarsen_delta(fine.params, m0.params, m0.config, 8, m0.scales, quality, db_per_halving=40.0,
                             min_psnr=floor)
    assert quality(p) >= floor and any(m != 1 for m in mults)
    # a deadline already passed: nothing is tried, every move is kept
    calls = []
    p, mults = coarsen_delta(fine.params, m0.params, m0.config, 8, m0.scales,
                             lambda q: calls.append(1) or quality(q), min_psnr=None, deadline=0.0)
    assert mults == [1] * len(m0.scales) and np.array_equal(p.view(np.uint16), fine.params.view(np.uint16))
    assert len(calls) <= 1  # at most the starting point is measured


def test_a_delta_fit_never_trades_away_its_target_psnr(monkeypatch):
    f0, f1 = gaussians((24, 24, 24)), gaussians((24, 24, 24), shift=0.01)
    m0, _ = inr.fit(f0, ratio=20, max_steps=100, backend="native", seed=0)
    fit_module = sys.modules["inr.fit"]
    real, seen = fit_module.coarsen_delta, {}

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(fit_module, "coarsen_delta", spy)
    for target in (20.0, 90.0):  # reached at once; out of reach
        seen.clear()
        m1, rep = inr.fit(f1, target_psnr=target, max_steps=40, backend="native", delta_base=m0)
        assert rep.delta
        # the search was held to the target, or to the delta with every move when that misses it
        assert seen["min_psnr"] is not None and seen["min_psnr"] <= target
        assert rep.psnr >= seen["min_psnr"]
        if target == 20.0:
            assert seen["min_psnr"] == target
        back = inr.Model.from_bytes(m1.to_bytes(base=m0), base=m0).decode(backend="native")
        assert inr.psnr(f1, back, float(np.ptp(f1))) == pytest.approx(rep.psnr)


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

    from insitu.cli.command import main

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


@pytest.mark.slow
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
