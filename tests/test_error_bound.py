"""Error-bounded mode: |decoded - data| <= eps for every owned value, stored with the model."""
import numpy as np
import pytest

import inr
import inr.residual as residual_module
from inr import entropy
from inr.residual import NETWORK_MODES, Residual, compute_residual
from sims.analytic import gaussians, sphere_front, waves


def step_field(shape=(24, 24, 24)):
    """Discontinuities: a cube of 5 in a field of 0, plus noise and a jump along x."""
    rng = np.random.default_rng(3)
    v = rng.normal(0, 0.05, shape)
    v[6:15, 4:20, 8:17] += 5.0
    v[:, :, 20:] -= 2.0
    return v.astype(np.float32)


FIELDS = {
    "gaussians": lambda: gaussians((24, 24, 24), seed=1),
    "sphere_front": lambda: sphere_front((24, 24, 24), width=0.005),
    "waves": lambda: waves((20, 24, 28)),
    "steps": step_field,
}


def check_bound(model, values, eps, backend):
    dec = inr.Model.from_bytes(model.to_bytes()).decode(backend=backend)
    err = np.abs(dec.astype(np.float64) - values.astype(np.float64))
    assert err.max() <= eps, (err.max(), eps)
    return err.max()


@pytest.mark.parametrize("name", sorted(FIELDS))
@pytest.mark.parametrize("rel_eps", [1e-1, 1e-2, 1e-4])
def test_bound_holds_for_every_value(name, rel_eps):
    v = FIELDS[name]()
    eps = rel_eps * float(v.max() - v.min())
    m, rep = inr.fit(v, ratio=50, max_steps=60, backend="native", max_abs_error=eps)
    assert rep.error_bound == eps and m.error_bound == eps
    assert rep.max_abs_error <= eps
    worst = check_bound(m, v, eps, "native")
    assert worst == pytest.approx(rep.max_abs_error)
    check_bound(m, v, eps, "torch")  # another backend's last bits stay within the margin
    assert rep.stored_bytes == len(m.to_bytes()) and rep.ratio == pytest.approx(v.nbytes / rep.stored_bytes)


def test_looser_bound_stores_fewer_bytes():
    v = sphere_front((24, 24, 24))
    cfg = inr.config_for_ratio(v.shape, 40)
    sizes = [inr.fit(v, config=cfg, max_steps=60, backend="native", max_abs_error=e)[1].stored_bytes
             for e in (1e-4, 1e-3, 1e-2)]
    assert sizes[0] > sizes[1] > sizes[2]


def test_float32_rounding_violators_are_stored_exactly():
    # values near 1e4: float32 spacing there (2^-10 ~ 9.8e-4) lies between eps and 2 eps, so rounding the
    # corrected value to float32 can land on the neighbour of the datum, 9.8e-4 > eps away
    from inr.residual import _encode, _TRIAL_ORDER

    v = (1e4 + gaussians((16, 16, 16), seed=2)).astype(np.float32)
    eps = 7e-4
    m, rep = inr.fit(v, ratio=20, max_steps=30, backend="native", max_abs_error=eps)
    check_bound(m, v, eps, "native")
    # the encoding that keeps a margin for the network (too small for float32 here) misses and stores exactly
    net = m._network(m.owned, "native", "cpu", None)
    spacing = float(np.spacing(np.float32(1e4)))
    res = _encode(v.astype(np.float64), net, eps, 1e-5, 1e-6, spacing, _TRIAL_ORDER)
    assert res.exact_index.size > 0
    assert np.abs(res.apply(net).astype(np.float64) - v).max() <= eps


def test_ghosts_owned_box_and_margin_decode():
    v = gaussians((20, 22, 24), seed=4)
    ghost = np.ones(v.shape, np.uint8)
    ghost[1:19, 2:20, 1:23] = 0
    eps = 1e-3
    m, _ = inr.fit(v, ghost_mask=ghost, ratio=20, max_steps=60, backend="native", max_abs_error=eps)
    owned = v[1:19, 2:20, 1:23]
    assert m.residual.shape == owned.shape
    check_bound(m, owned, eps, "native")
    # a box reaching one sample into the ghosts: the owned part meets the bound, a ghost sample is the
    # network plus the correction of its nearest owned sample
    box = ((0, 20), (1, 21), (0, 24))
    full = m.decode(backend="native", box=box)
    inner = full[1:19, 1:19, 1:23]
    assert np.abs(inner.astype(np.float64) - owned).max() <= eps
    plain = inr.Model(m.config, m.params, m.value_range, m.grid_shape, m.association, m.owned, m.param_bits)
    correction = m.decode(backend="native").astype(np.float64) - plain.decode(backend="native")
    expected = plain.decode(backend="native", box=box)[0, 1:19, 1:23] + correction[0]
    assert np.allclose(full[0, 1:19, 1:23], expected, rtol=0, atol=1e-6)
    assert np.allclose(full[1:19, 1:19, 0], plain.decode(backend="native", box=box)[1:19, 1:19, 0]
                       + correction[:, :, 0], rtol=0, atol=1e-6)
    # a box inside the owned grid sees the same corrected values as the whole decode
    part = m.decode(backend="native", box=((3, 9), (4, 12), (5, 20)))
    assert np.array_equal(part, m.decode(backend="native")[2:8, 2:10, 4:19])


def test_ghost_ring_continues_the_corrected_values():
    # a small network is far off; the corrected owned values are not: the ghost ring the renderer
    # interpolates across block faces follows them, not the bare network
    v = gaussians((24, 24, 24), seed=5)
    ghost = np.ones(v.shape, np.uint8)
    ghost[1:23, 1:23, 1:23] = 0
    from inr.sizing import smallest_config

    # a config given: the network is fitted whatever the probe would say
    m, _ = inr.fit(v, ghost_mask=ghost, config=smallest_config(), max_steps=40, backend="native", max_abs_error=1e-3)
    box = ((0, 24), (0, 24), (0, 24))
    ring = ghost.astype(bool)
    plain = inr.Model(m.config, m.params, m.value_range, m.grid_shape, m.association, m.owned, m.param_bits)
    err = np.abs(m.decode(backend="native", box=box).astype(np.float64) - v)[ring].mean()
    bare = np.abs(plain.decode(backend="native", box=box).astype(np.float64) - v)[ring].mean()
    assert err < bare / 3, (err, bare)


def test_residual_bytes_round_trip():
    rng = np.random.default_rng(0)
    data = rng.normal(0, 1, (5, 6, 7)).astype(np.float32)
    net = (data + rng.normal(0, 30, data.shape)).astype(np.float32)
    res = compute_residual(data, net, 1e-3, float(data.max() - data.min()))
    assert np.abs(res.codes).max() > 255  # noise: multi-byte codes
    back = Residual.from_bytes(res.to_bytes(), data.shape)
    assert back.modes == res.modes and np.array_equal(back.codes, res.codes)
    assert (back.step, back.eps, back.alpha, back.beta) == (res.step, res.eps, res.alpha, res.beta)
    assert np.array_equal(back.apply(net), res.apply(net))
    assert np.abs(back.apply(net).astype(np.float64) - data).max() <= 1e-3
    with pytest.raises(inr.ModelFormatError, match="residual"):
        Residual.from_bytes(res.to_bytes(), (5, 6, 8))  # another grid


def _grid_codes_bytes(k):
    import zstandard

    from inr.residual import _planes
    return len(zstandard.ZstdCompressor(level=19).compress(_planes(k)[1]))


def test_smooth_data_costs_little_whatever_the_network():
    # a smooth field and a network that is useless (zeros): quantising the plain residual costs ~bits per
    # value; predicting each pass from the decoded samples costs a fraction of that
    z, y, x = np.indices((33, 30, 28))
    data = (np.sin(x / 6.0) * np.cos(y / 9.0) + 0.02 * z).astype(np.float32)
    eps = 1e-3
    net = np.zeros_like(data)
    res = compute_residual(data, net, eps, float(data.max() - data.min()))
    plain = np.rint(data.astype(np.float64) / (2 * eps))
    assert len(res.to_bytes()) < 0.25 * _grid_codes_bytes(plain)
    assert not set(NETWORK_MODES) & set(res.modes)  # the network is never the better predictor here
    counts = res.mode_counts()
    assert sum(counts.values()) == data.size and sum(counts[m] for m in NETWORK_MODES) == 0
    assert np.abs(res.apply(net).astype(np.float64) - data).max() <= eps
    # a network within the bound already: the finest level (7/8 of the samples, full step) costs nothing
    good = (data + np.random.default_rng(1).uniform(-0.3 * eps, 0.3 * eps, data.shape)).astype(np.float32)
    res = compute_residual(data, good, eps, float(data.max() - data.min()))
    assert np.mean(res.codes == 0) > 0.85 and len(res.to_bytes()) < data.nbytes / 100


def test_sharp_feature_the_network_holds_is_predicted_through_it():
    # a step the network has exactly, on top of a smooth field it lacks: interpolating the data blurs the
    # step, the network plus the interpolated residual does not
    z, y, x = np.indices((32, 32, 32))
    step = np.where((x - 16) ** 2 + (y - 15) ** 2 + (z - 17) ** 2 < 81, 10.0, 0.0)
    data = (step + np.sin(x / 7.0) + np.cos(z / 5.0)).astype(np.float32)
    eps = 1e-2
    res = compute_residual(data, step.astype(np.float32), eps, float(data.max() - data.min()))
    assert {"rlin", "rcub"} & set(res.modes)
    counts = res.mode_counts()
    assert sum(counts.values()) == data.size and sum(counts[m] for m in NETWORK_MODES) > 0
    no_net = compute_residual(data, np.zeros_like(data), eps, float(data.max() - data.min()))
    assert len(res.to_bytes()) < len(no_net.to_bytes())


def test_backend_deviation_of_the_network_keeps_the_bound():
    # decoders on other backends see network values up to MARGIN_REL of the range off: the deviation that
    # travels through the predictions stays within the margin the encoder kept
    from inr.residual import MARGIN_REL

    z, y, x = np.indices((30, 31, 29))
    data = (np.where(x + y > 30, 5.0, 0.0) + np.sin(z / 4.0)).astype(np.float32)
    net = np.where(x + y > 30, 5.0, 0.0).astype(np.float32)
    rng = float(data.max() - data.min())
    for eps in (1e-2, 1e-4):
        res = compute_residual(data, net, eps, rng)
        assert res.modes.count("net") + res.modes.count("rlin") + res.modes.count("rcub") > 0
        for sign in (1, -1):
            shaken = net + np.float32(sign * MARGIN_REL * rng) * np.random.default_rng(2).choice([0, 1], net.shape)
            err = np.abs(res.apply(shaken.astype(np.float32)).astype(np.float64) - data).max()
            assert err <= eps, (eps, err)


def test_sections_of_the_previous_format_still_decode():
    # before the predictive coder: k = rint(residual / step) on the grid, plain or as Lorenzo errors
    import struct

    import zstandard

    from inr.residual import LORENZO, _planes

    rng = np.random.default_rng(0)
    data = rng.normal(0, 1, (6, 7, 9)).astype(np.float32)
    net = (data + rng.normal(0, 0.05, data.shape)).astype(np.float32)
    step = 2e-3
    k = np.rint((data.astype(np.float64) - net) / step).astype(np.int64)
    exact_i, exact_v = np.array([3, 40]), np.array([7.0, -1.0], np.float32)
    want = (net.astype(np.float64) + k * step).astype(np.float32)
    want.ravel()[exact_i] = exact_v
    lor = k.copy()
    for axis in range(3):
        lor = np.diff(lor, axis=axis, prepend=0)
    cctx = zstandard.ZstdCompressor()
    for flag, coded in ((0, k), (LORENZO, lor)):
        width, planes = _planes(coded)
        kblob = cctx.compress(planes)
        eblob = cctx.compress(np.diff(exact_i, prepend=0).astype("<u4").tobytes() + exact_v.tobytes())
        blob = struct.pack("<ddBII", 1e-3, step, width | flag, len(kblob), 2) + kblob + eblob
        back = Residual.from_bytes(blob, data.shape, layout=2)
        assert np.array_equal(back.apply(net), want)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "0.1", True])
def test_bad_bound_is_rejected_naming_the_parameter(bad):
    with pytest.raises(inr.InrValueError, match="max_abs_error="):
        inr.fit(np.random.default_rng(0).random((6, 6, 6)), max_abs_error=bad, max_steps=1)


def test_constant_block_is_exact_with_zero_bound():
    v = np.full((4, 5, 6), 2.5, np.float32)
    m, rep = inr.fit(v, max_abs_error=1e-3)
    assert rep.error_bound == 0.0 and rep.max_abs_error == 0.0 and m.residual is None


def test_compress_filter_max_error_is_recorded_and_replay_meets_it(tmp_path, monkeypatch):
    import insitu.runtime.embedded as runtime_mod
    from insitu.filters import compress as compression
    from insitu.blueprint import uniform_domain
    from insitu.cache import TemporalCache
    from insitu.runtime import connect

    monkeypatch.chdir(tmp_path)
    runtime_mod.reset_process_state()
    try:
        rt = connect(prefer="embedded")
        v = sphere_front((12, 14, 16), width=0.01)
        rt.publish([uniform_domain(v, field="e", cycle=3)])
        src = ("import ascent_filters as af; r = af.compress(fields=['e'], ratio=20, max_steps=40, max_error=0.002, "
               "backend='native', cache='eb.cache')")
        rt.execute([{"action": "add_extracts", "extracts": {"x": {"type": "python", "params": {"source": src}}}}])
        assert not runtime_mod._NAMESPACE["r"]["errors"]
        rt.execute([{"action": "add_extracts", "extracts": {"x": {"type": "python", "params": {
            "source": "import ascent_filters as af; r = af.compress(fields=['e'], max_error=-1, cache='eb.cache')"}}}}])
        assert "max_error=-1" in runtime_mod._NAMESPACE["r"]["errors"][0]
        compression.close_all()
        with TemporalCache.open(tmp_path / "eb.cache") as reader:
            meta = reader.meta("e", 3, 0)
            assert meta.error_bound == 0.002 and meta.fit["max_abs_error"] <= 0.002
            got = reader.reconstruct("e", 3, backend="torch")
        assert np.abs(got.astype(np.float64) - v).max() <= 0.002
    finally:
        compression.close_all()
        compression.current().previous.clear()


def test_error_bound_without_ratio_sizes_the_smallest_model():
    from insitu.filters.compress import CompressParams
    from inr.sizing import smallest_config

    v = gaussians((40, 40, 40), seed=6)
    m, rep = inr.fit(v, max_steps=20, backend="native", max_abs_error=1e-2)
    assert inr.config_for_ratio(v.shape, inr.DEFAULT_RATIO) != smallest_config()
    assert m.config == smallest_config()
    check_bound(m, v, 1e-2, "native")
    bigger, _ = inr.fit(v, ratio=inr.DEFAULT_RATIO, max_steps=20, backend="native", max_abs_error=1e-2)
    assert bigger.config.n_params > m.config.n_params
    # the compress filter leaves the choice to inr.fit when no ratio is given
    assert CompressParams.from_kwargs({"max_error": 0.1}).ratio is None
    assert CompressParams.from_kwargs({"max_error": 0.1, "ratio": 50}).ratio == 50


def test_delta_entries_keep_the_bound():
    # temporal weight-delta coding and the error bound together: each delta of the chain carries its own
    # residual, and what the chain decodes to meets the bound
    # a network to be the base (a config: the probe of the error-bounded mode would skip the network here)
    prev, _ = inr.fit(gaussians((16, 18, 20), seed=7), config=inr.config_for_ratio((16, 18, 20), 20), max_steps=40,
                      backend="native", max_abs_error=1e-3)
    assert not prev.is_predictive
    for seed in (8, 9):
        v = (gaussians((16, 18, 20), seed=7) + 0.05 * gaussians((16, 18, 20), seed=seed)).astype(np.float32)
        m, rep = inr.fit(v, delta_base=prev, max_steps=30, backend="native", max_abs_error=1e-3)
        assert rep.delta
        back = inr.Model.from_bytes(m.to_bytes(base=prev), base=prev)
        assert back.residual is not None and back.error_bound == 1e-3
        assert np.abs(back.decode(backend="torch").astype(np.float64) - v).max() <= 1e-3
        prev = back


@pytest.mark.parametrize("field", ["sharp", "waves"])
@pytest.mark.parametrize("trial_samples", [1 << 17, 40])
@pytest.mark.parametrize("rel_eps", [1e-2, 1e-3])
def test_native_passes_match_the_numpy_reference(monkeypatch, rel_eps, trial_samples, field):
    # the C++ passes and the numpy ones code and decode the same bytes bit for bit, so either reads the other's;
    # a sharp field near 1e4 puts float32 rounding at the edge of the bound; few trial samples: modes are chosen
    # on every m-th line (m > 1), in C++ and in numpy alike
    import inr.residual as residual

    if residual._native_passes() is None:
        pytest.skip("inr._native not built")
    monkeypatch.setattr(residual, "TRIAL_SAMPLES", trial_samples)
    v = (1e4 * (step_field((19, 22, 25)) > 2.5) + step_field((19, 22, 25))).astype(np.float32)
    if field == "waves":  # smooth: interpolation wins, lin and cub both chosen
        v = waves((19, 22, 25))
    eps = rel_eps * float(v.max() - v.min())
    native = compute_residual(v, None, eps, float(v.max() - v.min()))
    monkeypatch.setattr(residual, "_native_passes", lambda: None)
    numpy_ref = compute_residual(v, None, eps, float(v.max() - v.min()))
    assert native.modes == numpy_ref.modes and (field == "sharp" or {"lin", "cub"} <= set(native.modes))
    assert native.to_bytes() == numpy_ref.to_bytes()
    dec_numpy = Residual.from_bytes(native.to_bytes(), v.shape).apply(None)
    monkeypatch.undo()
    dec_native = Residual.from_bytes(numpy_ref.to_bytes(), v.shape).apply(None)
    assert np.array_equal(dec_numpy, dec_native) and np.isfinite(dec_native).all()
    assert np.abs(dec_native.astype(np.float64) - v).max() <= eps


@pytest.mark.parametrize("field", ["waves", "noisy"])
def test_trials_ruled_out_by_their_bit_lengths_are_not_range_coded_and_change_no_choice(monkeypatch, field):
    # a mode whose codes' bit lengths sum far above the best one's is not range-coded (its trial costs INT64_MAX,
    # in C++ and in the reference alike): at a tight bound the 'zero' mode of the fine passes; the modes chosen
    # and the bytes are those of trying every mode
    import inr.residual as residual

    v = waves((24, 26, 28))
    if field == "noisy":
        v = (v + 0.05 * np.random.default_rng(2).standard_normal(v.shape)).astype(np.float32)
    rng_ = float(v.max() - v.min())
    pruned = compute_residual(v, None, 1e-4 * rng_, rng_)
    monkeypatch.setattr(residual, "TRIAL_PRUNE_BITS", 1 << 40)  # every trial within reach: all range-coded
    full = compute_residual(v, None, 1e-4 * rng_, rng_)
    assert pruned.modes == full.modes and pruned.to_bytes() == full.to_bytes()
    monkeypatch.undo()
    if residual._native_passes() is None:
        pytest.skip("inr._native not built: the C++ trials are not there to check")
    native = residual._native_passes()
    out = pruned.apply(None)  # any decoded grid: the trials of the fine passes read it
    ruled_out = 0
    for axis, h, view, _ in residual._all_passes_of(v.shape)[-3:]:
        st = residual._level_step(pruned.step, h, pruned.alpha, pruned.beta)
        costs = {slack: native.residual_trial_passes(out, v.astype(np.float64), residual._strides(view), axis, h,
                                                     np.array([0, 1, 2], np.int64), st, 1, residual.TRIAL_PRUNE,
                                                     slack, 2)
                 for slack in (residual.TRIAL_PRUNE_BITS, 1 << 40)}
        pruned_costs, every_cost = costs[residual.TRIAL_PRUNE_BITS], costs[1 << 40]
        ruled_out += pruned_costs.count(np.iinfo(np.int64).max)
        assert all(p in (c, np.iinfo(np.int64).max) for p, c in zip(pruned_costs, every_cost))
        assert min(pruned_costs) == min(every_cost)  # the best is always coded
    assert ruled_out  # at this bound 'zero' (and 'lin' beside a cubic fit) fall far behind on some fine pass
    assert residual._worth_coding([10000, 12000, 13000]) == [True, True, False]  # within a quarter, plus the slack
    assert residual._worth_coding([0, 256, 257]) == [True, True, False]  # the slack: TRIAL_PRUNE_BITS


def test_the_bytes_hint_is_about_the_coded_bytes_and_changes_no_byte():
    # the encoder's trials say about how long the range-coded codes are (to guess a stream's split); a residual
    # without the hint (as read back) writes the very same bytes
    rng = np.random.default_rng(3)
    v = (waves((40, 44, 48)) + 0.02 * rng.standard_normal((40, 44, 48))).astype(np.float32)
    res = compute_residual(v, None, 1e-3 * float(np.ptp(v)), float(np.ptp(v)))
    plain = len(entropy.encode_codes(res.codes, residual_module._pass_table_of(v.shape)))
    assert res.bytes_hint is not None and abs(res.bytes_hint / plain - 1) < 0.05
    back = Residual.from_bytes(res.to_bytes(), v.shape)
    assert back.bytes_hint is None and back.to_bytes() == res.to_bytes() and np.array_equal(back.codes, res.codes)


def test_large_passes_on_two_threads_code_what_one_thread_does(monkeypatch):
    # a pass of PARALLEL_TARGETS targets or more runs on several threads, each on its own slab of targets: the
    # codes, the exactly stored samples (float32 rounding at the edge of the bound near 1e4) and the decode are
    # those of one thread
    import inr.residual as residual

    if residual._native_passes() is None:
        pytest.skip("inr._native not built")
    v = (1e4 * (step_field((40, 64, 64)) > 2.5) + step_field((40, 64, 64))).astype(np.float32)
    eps = 1e-7 * float(v.max() - v.min())  # about float32's spacing at 1e4: some samples are stored exactly
    got = {}
    for threads in (1, 2):
        monkeypatch.setattr(residual, "coder_threads", lambda threads=threads: threads)
        res = compute_residual(v, None, eps, float(v.max() - v.min()))
        got[threads] = (res, res.apply(None), res.to_bytes())
    (one, dec_one, bytes_one), (two, dec_two, bytes_two) = got[1], got[2]
    assert one.exact_index.size and np.array_equal(one.exact_index, two.exact_index)
    assert np.array_equal(one.codes, two.codes) and bytes_one == bytes_two
    assert np.array_equal(dec_one, dec_two) and np.abs(dec_two.astype(np.float64) - v).max() <= eps


@pytest.mark.parametrize("scale, eps", [(1e22, 1e-3), (1e30, 1e-20)])
@pytest.mark.parametrize("native", [True, False])
def test_values_far_above_the_bounds_step_keep_the_bound(monkeypatch, scale, eps, native):
    # a value / step past int64 (data of 1e22 at a bound of 1e-3) has no code: it is stored exactly, in C++ and
    # in the reference alike (its code, cast as it was, wrapped, and the value decoded ~1e22 off its bound)
    import inr.residual as residual

    if not native:
        monkeypatch.setattr(residual, "_native_passes", lambda: None)
    v = (scale * (1 + 0.1 * np.random.default_rng(1).random((12, 13, 14)))).astype(np.float32)
    res = compute_residual(v, None, eps, float(v.max() - v.min()))
    dec = Residual.from_bytes(res.to_bytes(), v.shape).apply(None)
    assert np.abs(dec.astype(np.float64) - v).max() <= eps
    assert res.exact_index.size == v.size  # no value is within eps of a step's multiple at these magnitudes
    if native:  # the public API: the model as stored keeps the bound too
        model, _ = inr.fit(v, max_abs_error=eps, backend="native")
        back = inr.Model.from_bytes(model.to_bytes()).decode(backend="native")
        assert np.abs(back.astype(np.float64) - v).max() <= eps


@pytest.mark.parametrize("top", [100, 40_000, 3_000_000_000, 2 ** 62])
def test_native_planes_match_the_numpy_reference(monkeypatch, top):
    # every byte width (1, 2, 4, 8) and both signs: the C++ planes are the numpy ones, and each reads the other's
    import inr.residual as residual

    if residual._native_passes() is None:
        pytest.skip("inr._native not built")
    k = np.random.default_rng(5).integers(-top, top, 1000, dtype=np.int64)
    k[:2] = (-top, top - 1)
    width, raw = residual._planes(k)
    monkeypatch.setattr(residual, "_native_passes", lambda: None)
    assert residual._planes(k) == (width, raw)
    assert np.array_equal(residual._unplanes(raw, width, k.size), k)
    monkeypatch.undo()
    assert np.array_equal(residual._unplanes(raw, width, k.size), k)


def test_probe_skips_a_network_that_would_not_pay():
    # smooth data at a loose bound: interpolation predicts it; no training, the bound still holds on every backend
    v = gaussians((32, 32, 32), seed=11)
    eps = 1e-2 * float(v.max() - v.min())
    m, rep = inr.fit(v, backend="native", max_abs_error=eps)
    assert rep.stop_reason == "probe" and rep.steps == 0 and not m.residual.reads_network
    check_bound(m, v, eps, "torch")
    assert rep.stored_bytes == len(m.to_bytes())


def test_the_benchmarks_coder_point_runs_the_coder_as_the_product_does():
    import error_bound as bench  # benchmarks/ is on pytest's pythonpath

    values = gaussians((16, 18, 20), seed=3)
    eps = 1e-3 * float(np.ptp(values))
    point = bench.coder_point(values, eps)
    direct = inr.residual.compute_residual(values, None, eps, float(np.ptp(values))).to_bytes()
    assert point["bytes"] == len(direct) and point["max_abs_error"] <= eps
    assert point["compress_mbs"] > 0 and point["decompress_mbs"] > 0
