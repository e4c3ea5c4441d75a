"""Error-bounded mode: |decoded - data| <= eps for every owned value, stored with the model."""
import numpy as np
import pytest

import inr
from inr.residual import Residual, compute_residual
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
    v = (1e4 + gaussians((16, 16, 16), seed=2)).astype(np.float32)
    eps = 7e-4
    m, rep = inr.fit(v, ratio=20, max_steps=30, backend="native", max_abs_error=eps)
    assert m.residual.exact_index.size > 0
    check_bound(m, v, eps, "native")


def test_ghosts_owned_box_and_margin_decode():
    v = gaussians((20, 22, 24), seed=4)
    ghost = np.ones(v.shape, np.uint8)
    ghost[1:19, 2:20, 1:23] = 0
    eps = 1e-3
    m, _ = inr.fit(v, ghost_mask=ghost, ratio=20, max_steps=60, backend="native", max_abs_error=eps)
    owned = v[1:19, 2:20, 1:23]
    assert m.residual.shape == owned.shape
    check_bound(m, owned, eps, "native")
    # a box reaching one sample into the ghosts: the owned part meets the bound, the ghost part is the network
    box = ((0, 20), (1, 21), (0, 24))
    full = m.decode(backend="native", box=box)
    inner = full[1:19, 1:19, 1:23]
    assert np.abs(inner.astype(np.float64) - owned).max() <= eps
    plain = inr.Model(m.config, m.params, m.value_range, m.grid_shape, m.association, m.owned, m.param_bits)
    assert np.array_equal(full[0], plain.decode(backend="native", box=box)[0])
    # a box inside the owned grid sees the same corrected values as the whole decode
    part = m.decode(backend="native", box=((3, 9), (4, 12), (5, 20)))
    assert np.array_equal(part, m.decode(backend="native")[2:8, 2:10, 4:19])


def test_residual_bytes_round_trip():
    rng = np.random.default_rng(0)
    data = rng.normal(0, 1, (5, 6, 7)).astype(np.float32)
    net = (data + rng.normal(0, 30, data.shape)).astype(np.float32)  # large k: 2-byte codes
    res = compute_residual(data, net, 1e-3, float(data.max() - data.min()))
    assert np.abs(res.k).max() > 255
    back = Residual.from_bytes(res.to_bytes(), data.shape)
    assert np.array_equal(back.k, res.k) and back.step == res.step and back.eps == res.eps
    assert np.abs(back.apply(net).astype(np.float64) - data).max() <= 1e-3


def test_smooth_residual_is_coded_as_lorenzo_errors_noise_is_not():
    from inr.residual import LORENZO, lorenzo, unlorenzo

    z, y, x = np.indices((20, 21, 22))
    rng = np.random.default_rng(0)
    smooth = np.rint(300 * np.sin(x / 5.0) * np.cos(y / 7.0) + z).astype(np.int64)
    noise = rng.integers(-3, 4, smooth.shape)
    assert np.array_equal(unlorenzo(lorenzo(smooth)), smooth)
    sizes = {}
    for name, k in (("smooth", smooth), ("noise", noise)):
        res = Residual(0.1, 0.2, k, np.array([5, 17]), np.array([1.5, -2.0], np.float32))
        blob = res.to_bytes()
        back = Residual.from_bytes(blob, k.shape)
        assert np.array_equal(back.k, k) and np.array_equal(back.exact_index, [5, 17])
        sizes[name] = (bool(blob[16] & LORENZO), len(blob))
    assert sizes["smooth"][0] and not sizes["noise"][0]
    # what the predictor saves on a smooth residual
    plain = Residual(0.1, 0.2, smooth, np.zeros(0, np.int64), np.zeros(0, np.float32))
    import zstandard

    from inr.residual import _planes
    assert sizes["smooth"][1] < 0.5 * len(zstandard.ZstdCompressor(level=19).compress(_planes(plain.k)[1]))


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "0.1", True])
def test_bad_bound_is_rejected_naming_the_parameter(bad):
    with pytest.raises(inr.InrValueError, match="max_abs_error="):
        inr.fit(np.random.default_rng(0).random((6, 6, 6)), max_abs_error=bad, max_steps=1)


def test_constant_block_is_exact_with_zero_bound():
    v = np.full((4, 5, 6), 2.5, np.float32)
    m, rep = inr.fit(v, max_abs_error=1e-3)
    assert rep.error_bound == 0.0 and rep.max_abs_error == 0.0 and m.residual is None


def test_compress_filter_max_error_is_recorded_and_replay_meets_it(tmp_path, monkeypatch):
    import insitu.runtime as runtime_mod
    from insitu import compression
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
        compression._PREVIOUS.clear()
