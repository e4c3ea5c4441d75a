"""The CUDA paths: torch on a GPU and tiny-cuda-nn, each checked against the CPU reference.

Skipped (with the reason) where torch sees no CUDA device, as on CI; tiny-cuda-nn
tests also skip when ``tinycudann`` does not import.
"""
import numpy as np
import pytest

import inr
from sims.analytic import FIELDS

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA paths need a GPU: torch sees none")]


def random_model(seed=0, shape=(17, 19, 23)):
    cfg = inr.ModelConfig(inr.EncodingConfig(8, 2, 12, 4, 1.5), inr.NetworkConfig(32, 2))
    params = np.random.default_rng(seed).normal(0, 0.3, cfg.n_params).astype(np.float16)
    return inr.Model(cfg, params, (-1.0, 2.0), shape, "vertex", tuple((0, n) for n in shape))


def psnr_of(model: inr.Model, values: np.ndarray) -> float:
    rec = model.decode(backend="torch")
    return inr.psnr(values, rec, float(values.max() - values.min()))


def tcnn_or_skip() -> None:
    err = inr.backends.tcnn_import_error()
    if err is not None:
        pytest.skip(f"tiny-cuda-nn not usable here: {err}")


def test_torch_cuda_decode_matches_cpu():
    m = random_model()
    cpu = m.decode(backend="torch", device="cpu")
    gpu = m.decode(backend="torch", device="cuda")
    assert gpu.shape == cpu.shape
    # same float32 arithmetic, different summation order on the GPU
    assert np.abs(gpu - cpu).max() <= 1e-4 * (1 + np.abs(cpu).max())
    pts = np.random.default_rng(1).random((5000, 3), dtype=np.float32)
    assert np.allclose(m.sample(pts, backend="torch", device="cuda"), m.sample(pts, backend="torch"), atol=1e-4)


def test_torch_cuda_fit_learns_like_cpu():
    values = FIELDS["gaussians"]((40, 40, 40))
    kw = dict(ratio=50, max_steps=300, backend="torch", seed=0)
    m_gpu, r_gpu = inr.fit(values, device="cuda", **kw)
    m_cpu, r_cpu = inr.fit(values, device="cpu", **kw)
    assert r_gpu.backend == "torch" and r_gpu.steps == 300
    assert r_gpu.psnr > 30  # it learned, not just ran
    assert abs(r_gpu.psnr - r_cpu.psnr) < 3.0  # same optimiser, same samples: only rounding differs
    # the report is measured on what the stored bytes decode to, wherever they are decoded
    back = inr.Model.from_bytes(m_gpu.to_bytes())
    assert psnr_of(back, values) == pytest.approx(r_gpu.psnr, abs=0.05)


def test_auto_backend_on_cuda_prefers_tcnn_when_it_imports():
    want = "tcnn" if inr.backends.tcnn_import_error() is None else "torch"
    assert inr.get_backend("auto", "cuda").name == want


def test_tcnn_decode_matches_torch_reference():
    tcnn_or_skip()
    m = random_model()
    ref = m.decode(backend="torch")
    got = m.decode(backend="tcnn", device="cuda")
    assert np.abs(got - ref).max() <= 2e-2 * max(1.0, np.abs(ref).max())  # tcnn computes in fp16


def test_tcnn_fit_stores_a_model_the_cpu_decodes():
    tcnn_or_skip()
    values = FIELDS["gaussians"]((48, 48, 48))
    model, rep = inr.fit(values, ratio=50, max_steps=600, backend="tcnn", device="cuda", seed=0)
    assert rep.backend == "tcnn" and rep.psnr > 30
    back = inr.Model.from_bytes(model.to_bytes())
    # the CPU evaluates in float32 what tcnn trained in fp16: within a fraction of a dB
    assert psnr_of(back, values) == pytest.approx(rep.psnr, abs=1.0)
    # and a warm start from it on the CPU keeps that quality (the layouts are the same)
    _, warm = inr.fit(values, init=back, max_steps=50, backend="torch", seed=0)
    assert warm.psnr > rep.psnr - 2.0


def test_compress_filter_fits_on_the_gpu(tmp_path, monkeypatch, capsys):
    import insitu.runtime.embedded as runtime_mod
    from insitu.filters import compress as compression
    from insitu.blueprint import uniform_domain
    from insitu.cache import CacheReader
    from insitu.runtime import connect

    monkeypatch.chdir(tmp_path)
    runtime_mod.reset_process_state()
    try:
        rt = connect(prefer="embedded")
        f = FIELDS["gaussians"]((24, 26, 28))
        rt.publish([uniform_domain(f, field="e", cycle=0)])
        src = "import ascent_filters as af; r = af.compress(fields=['e'], ratio=20, max_steps=300, device='auto')"
        rt.execute([{"action": "add_extracts", "extracts": {"x": {"type": "python", "params": {"source": src}}}}])
        r = runtime_mod._NAMESPACE["r"]
        assert not r["errors"] and r["stats"]["blocks"] == 1
        compression.close_all()
        reader = CacheReader("run.cache")
        model = reader.model("e", 0, 0)
        assert psnr_of(model, f) == pytest.approx(r["stats"]["psnr"][0], abs=0.5)
        assert r["stats"]["psnr"][0] > 25
    finally:
        compression.close_all()
        compression.current().previous.clear()


@pytest.mark.parametrize("backend", ["torch", "tcnn"])
def test_temporal_delta_fitted_on_the_gpu_decodes_on_the_cpu(backend):
    if backend == "tcnn":
        tcnn_or_skip()
    f0, f1 = FIELDS["gaussians"]((32, 32, 32)), FIELDS["gaussians"]((32, 32, 32), shift=0.01)
    m0, _ = inr.fit(f0, ratio=30, max_steps=300, backend=backend, device="cuda")
    m1, rep = inr.fit(f1, ratio=30, max_steps=100, backend=backend, device="cuda", delta_base=m0)
    assert rep.delta
    back = inr.Model.from_bytes(m1.to_bytes(base=m0), base=inr.Model.from_bytes(m0.to_bytes()))
    assert np.array_equal(back.params.view(np.uint16), m1.params.view(np.uint16))
    assert psnr_of(back, f1) == pytest.approx(rep.psnr, abs=1.0 if backend == "tcnn" else 0.05)
