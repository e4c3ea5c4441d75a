"""The native backend (cpp/inr_native/) against the torch reference: outputs, gradients, fits, threads, MPI, fallback."""
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import inr
from inr.backends import native_backend
from inr.backends.native_backend import NativeBackend, loss_gradient
from inr.backends.torch_backend import TorchBackend
from inr.grid import axis_coords
from inr.layout import init_params, n_params
from inr.problem import FitProblem
from inr import _native
from sims.analytic import gaussians
from support.mpi import ROOT, run_mpi
from support.native import (CONFIGS, IDS, assert_close, isa_report, model_and_params, random_points,
                            torch_loss_gradient)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_evaluate_matches_torch(cfg):
    enc, net, params, rng = model_and_params(cfg, 1)
    pts = random_points(rng, 3000)
    ref = TorchBackend().evaluate(enc, net, params, pts)
    got = NativeBackend(2).evaluate(enc, net, params, pts)
    assert got.dtype == np.float32 and got.shape == (3000,)
    assert_close(got, ref, 1e-5)
    assert NativeBackend(1).evaluate(enc, net, params, np.zeros((0, 3), np.float32)).shape == (0,)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
@pytest.mark.parametrize("shape,association", [((9, 10, 150), "vertex"), ((5, 7, 33), "element"), ((1, 1, 1), "vertex")])
def test_decode_grid_matches_torch(cfg, shape, association):
    enc, net, params, _ = model_and_params(cfg, 2)
    nz, ny, nx = shape
    xs, ys, zs = (axis_coords(n, association) for n in (nx, ny, nz))
    ref = TorchBackend().decode_grid(enc, net, params, xs, ys, zs)
    got = NativeBackend(2).decode_grid(enc, net, params, xs, ys, zs)
    assert got.shape == ref.shape == shape and got.dtype == np.float32
    assert_close(got, ref, 1e-5)


def test_decode_grid_of_unordered_sub_axes():
    """Any axis values work (not only sorted, full-block ones): the fused row decode is general."""
    enc, net, params, rng = model_and_params(CONFIGS[0], 3)
    xs = rng.random(200, dtype=np.float32)
    ys = np.array([0.9, 0.1, 0.5], np.float32)
    zs = np.array([0.3], np.float32)
    ref = TorchBackend().decode_grid(enc, net, params, xs, ys, zs)
    assert_close(NativeBackend(2).decode_grid(enc, net, params, xs, ys, zs), ref, 1e-5)


def test_coordinates_outside_the_unit_cube_are_refused():
    enc, net, params, _ = model_and_params(CONFIGS[1], 3)
    be = NativeBackend(1)
    for bad in (1.5, -0.25, np.nan):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            be.evaluate(enc, net, params, np.array([[0.5, bad, 0.5]], np.float32))
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            be.decode_grid(enc, net, params, np.array([0.0, bad], np.float32), np.zeros(1, np.float32),
                           np.zeros(1, np.float32))
    with pytest.raises(ValueError, match="params has"):
        be.evaluate(enc, net, params[:-1], np.zeros((2, 3), np.float32))


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
@pytest.mark.parametrize("loss,weighted", [("l2", False), ("l2", True), ("l1", True)])
def test_gradient_matches_torch_autograd(cfg, loss, weighted):
    enc, net, params, rng = model_and_params(cfg, 4)
    pts = random_points(rng, 2000)
    target = rng.random(2000, dtype=np.float32)
    weight = rng.uniform(0.5, 4, 2000).astype(np.float32) if weighted else None
    ref_value, ref = torch_loss_gradient(enc, net, params, pts, target, weight, loss)
    value, grad = loss_gradient(enc, net, params, pts, target, weight, loss)
    assert grad.shape == (n_params(enc, net),)
    assert value == pytest.approx(ref_value, rel=1e-5)
    n_mlp = net.n_params(enc.n_output_dims)
    assert_close(grad[:n_mlp], ref[:n_mlp], 1e-4)  # MLP weights
    assert_close(grad[n_mlp:], ref[n_mlp:], 1e-4)  # hash tables


@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512"])
def test_every_instruction_set_build_matches_torch_and_the_others(isa):
    """Each kernel build this CPU can run (INR_NATIVE_ISA caps the pick) is checked against torch in a process
    of its own, and trains to the same bits as the baseline build: every build sums in the same order."""
    if isa not in _native.isas():
        pytest.skip(f"this CPU cannot run the {isa} kernel build (it runs {_native.isas()})")
    got = isa_report(isa)
    assert got["isa"] == isa, got
    if isa != "baseline":
        assert got["digest"] == isa_report("baseline")["digest"], f"{isa} trains to other bits than baseline"


def test_fit_psnr_matches_torch():
    values = gaussians((32, 32, 32))
    kw = dict(ratio=20, max_steps=200, batch_size=2048, seed=0)
    _, ref = inr.fit(values, backend="torch", threads=1, **kw)
    model, rep = inr.fit(values, backend="native", **kw)
    assert rep.backend == "native" and ref.backend == "torch"
    assert rep.steps == ref.steps == 200
    assert abs(rep.psnr - ref.psnr) <= 0.5, (rep.psnr, ref.psnr)
    assert rep.psnr > 30


# How far native and torch fits may end apart, from a measurement (this test's fit, seeds 0-7, 2 cores, AMD EPYC,
# AVX2; torch 2.13.0 CPU): the two backends sum in different orders, so their float32 gradients differ by
# rounding. L2 fits contract those differences: |native - torch| <= 0.003 dB, <= 0.03 dB with targets moved by
# 1 ulp. L1 fits train on sign(err), which flips with rounding near convergence: |native - torch| was 0.13-0.88 dB
# (mean 0.46), and 0.73 dB on an AVX-512 machine where torch's own kernels differ. A real bug costs far more.
WHOLE_GRID_TOLERANCE_DB = {"l2": 0.1, "l1": 1.5}


@pytest.mark.parametrize("loss", ["l2", "l1"])
def test_fit_whole_grid_batches_match_torch(loss):
    """Batches larger than the block train on the whole grid, in order (no randomness): L2 and L1."""
    values = gaussians((12, 10, 14), seed=2)
    kw = dict(ratio=4, max_steps=200, batch_size=1 << 16, loss=loss)
    _, ref = inr.fit(values, backend="torch", threads=1, **kw)
    _, rep = inr.fit(values, backend="native", **kw)
    assert abs(rep.psnr - ref.psnr) <= WHOLE_GRID_TOLERANCE_DB[loss], (rep.psnr, ref.psnr)


def test_params_written_by_one_backend_decode_in_the_other():
    values = gaussians((20, 24, 28), seed=5)
    ghost = np.ones(values.shape, np.uint8)
    ghost[1:-1, 1:-1, 2:-1] = 0
    pts = np.random.default_rng(0).random((500, 3), dtype=np.float32)
    for backend in ("native", "torch"):
        kw = {"threads": 1} if backend == "torch" else {}
        model, rep = inr.fit(values, ghost_mask=ghost, ratio=10, max_steps=60, batch_size=2048, backend=backend, **kw)
        again = inr.Model.from_bytes(model.to_bytes())
        a, b = again.decode(backend="torch"), again.decode(backend="native")
        assert a.shape == b.shape == (18, 22, 25)
        scale = float(np.abs(a).max())
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * scale)
        assert inr.psnr(values[1:-1, 1:-1, 2:-1], b) == pytest.approx(rep.psnr, abs=1e-3)
        np.testing.assert_allclose(again.sample(pts, backend="native"), again.sample(pts, backend="torch"),
                                   rtol=1e-5, atol=1e-5 * scale)


def native_problem(shape=(24, 20, 30), batch_size=4096, weighted=True):
    values = gaussians(shape, seed=9)
    cfg = inr.config_for_ratio(shape, 10)
    target = ((values - values.min()) / (values.max() - values.min())).astype(np.float32)
    weight = np.random.default_rng(1).uniform(1, 4, shape).astype(np.float32) if weighted else None
    xs, ys, zs = (axis_coords(n, "vertex") for n in shape[::-1])
    return FitProblem(cfg.encoding, cfg.network, target, weight, xs, ys, zs, batch_size, "l2"), cfg


@pytest.mark.parametrize("batch_size", [4096, 1 << 16])
def test_training_is_independent_of_thread_count(batch_size):
    problem, cfg = native_problem(batch_size=batch_size)
    p0 = init_params(cfg.encoding, cfg.network, 0)
    results = []
    for threads in (1, 2, 3, 8):
        tr = NativeBackend(threads).trainer(problem, p0, seed=7)
        losses = [tr.step(10, 1e-2) for _ in range(3)]
        results.append((losses, tr.params()))
    for losses, params in results[1:]:
        assert losses == results[0][0]
        assert np.array_equal(params.view(np.uint32), results[0][1].view(np.uint32))
    # the seed decides the batches
    other = NativeBackend(2).trainer(problem, p0, seed=8)
    other.step(30, 1e-2)
    if batch_size < problem.n_samples:
        assert not np.array_equal(other.params(), results[0][1])


def test_nondeterministic_mode_trains_too():
    problem, cfg = native_problem(weighted=False)
    tr = NativeBackend(2, deterministic=False).trainer(problem, init_params(cfg.encoding, cfg.network, 0), seed=0)
    first = tr.step(1, 1e-2)
    for _ in range(10):
        last = tr.step(10, 1e-2)
    assert last < first / 4
    params = tr.params()
    params[0] += 1  # a copy
    assert tr.params()[0] != params[0]


def test_fit_results_identical_for_any_thread_count():
    values = gaussians((24, 24, 24), seed=4)
    reps = [inr.fit(values, ratio=20, max_steps=100, batch_size=4096, backend="native", threads=t) for t in (1, 2)]
    (m1, r1), (m2, r2) = reps
    assert np.array_equal(m1.params.view(np.uint16), m2.params.view(np.uint16))
    assert r1.psnr == r2.psnr


def test_threads_default_from_environment(monkeypatch):
    for name in ("OMP_NUM_THREADS", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMIX_LOCAL_SIZE",
                 "PALS_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE", "PMI_SIZE"):
        monkeypatch.delenv(name, raising=False)
    cores = native_backend.cpu_count()
    monkeypatch.setattr(native_backend.os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # an idle node
    assert NativeBackend().threads == cores
    assert NativeBackend(threads=3).threads == 3
    monkeypatch.setenv("MPI_LOCALNRANKS", "2")
    assert NativeBackend().threads == max(1, cores // 2)
    monkeypatch.setenv("MPI_LOCALNRANKS", str(4 * cores))
    assert NativeBackend().threads == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "5")  # an explicit setting wins
    assert NativeBackend().threads == 5
    assert NativeBackend(threads=2).threads == 2


def test_threads_default_leaves_busy_cores_alone(monkeypatch):
    for name in ("OMP_NUM_THREADS", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMIX_LOCAL_SIZE",
                 "PALS_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE", "PMI_SIZE"):
        monkeypatch.delenv(name, raising=False)
    cores = native_backend.cpu_count()
    monkeypatch.setattr(native_backend, "own_load", lambda: 0.0)  # this process idle so far
    # every core busy with other work (this process counted in the load): one thread, not an oversubscribed node
    monkeypatch.setattr(native_backend.os, "getloadavg", lambda: (float(cores), 0.0, 0.0))
    assert NativeBackend().threads == 1
    monkeypatch.setattr(native_backend.os, "getloadavg", lambda: (cores - 1.0, 0.0, 0.0))
    assert NativeBackend().threads == min(cores, 2)
    # this process alone a little over one core's load on an otherwise idle node: still every core
    monkeypatch.setattr(native_backend.os, "getloadavg", lambda: (1.1, 0.0, 0.0))
    assert NativeBackend().threads == cores
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # an explicit setting still wins
    assert NativeBackend().threads == 3


class _Clock:
    """time.monotonic and time.process_time of a process whose threads keep ``busy`` cores busy."""

    def __init__(self, busy):
        self.wall, self.cpu, self.busy = 1000.0, 50.0, busy

    def run(self, seconds):
        self.wall += seconds
        self.cpu += self.busy * seconds

    def monotonic(self):
        return self.wall

    def process_time(self):
        return self.cpu


def test_a_process_keeping_its_threads_busy_does_not_count_them_as_others_work(monkeypatch):
    for name in ("OMP_NUM_THREADS", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMIX_LOCAL_SIZE",
                 "PALS_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE", "PMI_SIZE"):
        monkeypatch.delenv(name, raising=False)
    clock = _Clock(busy=2.0)
    monkeypatch.setattr(native_backend, "time", clock)
    monkeypatch.setattr(native_backend, "_own_seen", {"wall": clock.wall, "cpu": clock.cpu, "load": 0.0})
    monkeypatch.setattr(native_backend, "cpu_count", lambda: 2)
    for _ in range(120):  # two minutes of both threads busy, asked every second (as coder_threads does)
        clock.run(1.0)
        native_backend.own_load()
    own = native_backend.own_load()
    assert abs(own - 2.0 * (1 - math.exp(-2.0))) < 0.02, own  # the kernel's average of 2 runnable threads
    monkeypatch.setattr(native_backend.os, "getloadavg", lambda: (own, 0.0, 0.0))  # an otherwise idle node
    assert native_backend.free_cores() == 2  # its own load: both cores still (counted as others': one)
    monkeypatch.setattr(native_backend.os, "getloadavg", lambda: (own + 2.0, 0.0, 0.0))  # another job on both
    assert native_backend.free_cores() == 1
    # 4 ranks of 4 threads each on an idle 16-core node: each keeps its 4 (counted as others' work: 1 each)
    monkeypatch.setattr(native_backend, "cpu_count", lambda: 16)
    monkeypatch.setattr(native_backend, "own_load", lambda: 4.0)
    monkeypatch.setattr(native_backend.os, "getloadavg", lambda: (16.0, 0.0, 0.0))
    monkeypatch.setenv("MPI_LOCALNRANKS", "4")
    assert native_backend.default_threads() == 4


@pytest.mark.mpi
def test_fit_under_mpi_with_native_backend():
    proc = run_mpi(2, [str(ROOT / "tests/mpi/fit_native.py")], timeout=300)
    assert "OK" in proc.stdout


def test_auto_prefers_native_on_cpu():
    assert inr.get_backend("auto").name == "native"
    assert "native" in inr.available_backends()


FALLBACK = textwrap.dedent("""
    import sys, warnings
    import importlib.abc

    class Broken(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "inr._native":
                raise ImportError("simulated: _native failed to load")
            return None

    sys.meta_path.insert(0, Broken())
    import numpy as np
    import inr

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = [inr.get_backend("auto").name for _ in range(3)]
        model, rep = inr.fit(np.random.default_rng(0).random((16, 16, 16)), ratio=2, max_steps=10)
    runtime = [w for w in caught if "native" in str(w.message)]
    assert names == ["torch"] * 3 and rep.backend == "torch", (names, rep.backend)
    assert len(runtime) == 1, [str(w.message) for w in runtime]
    assert "simulated: _native failed to load" in str(runtime[0].message), runtime[0].message
    assert "native" not in inr.available_backends()
    try:
        inr.get_backend("native")
    except inr.BackendUnavailableError as exc:
        assert "simulated: _native failed to load" in str(exc), exc
    else:
        raise AssertionError("backend='native' did not raise")
    try:
        inr.fit(np.ones((4, 4, 4)) * np.arange(4), backend="native")
    except inr.BackendUnavailableError:
        pass
    else:
        raise AssertionError("fit(backend='native') did not raise")
    print("FALLBACK OK")
""")


def test_fallback_when_native_module_is_absent():
    proc = subprocess.run([sys.executable, "-c", FALLBACK], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FALLBACK OK" in proc.stdout
