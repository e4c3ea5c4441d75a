"""Models, points and checks shared by the native-backend tests and the per-ISA subprocess they start."""
from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import torch

import inr
from inr.backends.native_backend import NativeBackend, loss_gradient
from inr.backends.torch_backend import TorchBackend, TorchNetwork
from inr.grid import axis_coords
from inr.layout import init_params
from inr.problem import FitProblem
from sims.analytic import gaussians

# (levels, features, log2 table, base resolution, per-level scale), (neurons, hidden layers)
CONFIGS = [
    ((8, 2, 12, 8, 1.5), (16, 1)),    # the "Numbers" model of issue 4
    ((12, 2, 11, 4, 1.3704), (16, 1)),  # 12 hashed levels up to a 128^3 block's resolution
    ((4, 1, 10, 3, 1.9), (32, 2)),
    ((6, 4, 8, 16, 2.0), (64, 3)),
    ((3, 8, 6, 2, 3.0), (16, 2)),
    ((16, 2, 15, 16, 1.4), (64, 2)),
]
IDS = [f"L{e[0]}F{e[1]}T{e[2]}-W{n[0]}H{n[1]}" for e, n in CONFIGS]


def model_and_params(cfg, seed):
    (enc, net) = cfg
    enc, net = inr.EncodingConfig(*enc), inr.NetworkConfig(*net)
    rng = np.random.default_rng(seed)
    params = init_params(enc, net, seed)
    params[net.n_params(enc.n_output_dims):] = rng.normal(0, 0.5, enc.n_params)  # tables far from zero
    return enc, net, params, rng


def random_points(rng, n):
    pts = rng.random((n, 3), dtype=np.float32)
    pts[:8] = [[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5], [1, 0, 1], [0.25, 0.75, 1], [0, 1, 0], [1 / 3, 2 / 3, 1], [1, 1, 0]]
    return pts


def assert_close(got, ref, rtol):
    """Within ``rtol`` relative to each value, with an absolute floor at rtol x the largest value."""
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * float(np.abs(ref).max()))


def torch_loss_gradient(enc, net, params, pts, target, weight, loss):
    network = TorchNetwork(enc, net, torch.device("cpu"))
    flat = torch.tensor(params, requires_grad=True)
    err = network(flat, torch.from_numpy(pts)) - torch.from_numpy(target)
    per = err * err if loss == "l2" else err.abs()
    if weight is not None:
        per = per * torch.from_numpy(weight)
    value = per.mean()
    value.backward()
    return float(value.detach()), flat.grad.numpy()




def check_this_build() -> dict:
    """Run in a process whose INR_NATIVE_ISA picks one kernel build: outputs and gradients against torch, then
    a digest of what the build computes (training with random and whole-grid batches, L2 and L1, and decoding)."""
    from inr import _native

    for cfg in CONFIGS:
        enc, net, params, rng = model_and_params(cfg, 5)
        pts = random_points(rng, 700)
        assert_close(NativeBackend(2).evaluate(enc, net, params, pts), TorchBackend().evaluate(enc, net, params, pts), 1e-5)
        axes = [np.linspace(0, 1, n, dtype=np.float32) for n in (140, 6, 5)]
        assert_close(NativeBackend(2).decode_grid(enc, net, params, *axes),
                     TorchBackend().decode_grid(enc, net, params, *axes), 1e-5)
        target = rng.random(700, dtype=np.float32)
        _, ref = torch_loss_gradient(enc, net, params, pts, target, None, "l2")
        assert_close(loss_gradient(enc, net, params, pts, target)[1], ref, 1e-4)
    digest = hashlib.sha256()
    values = gaussians((13, 10, 21), seed=3)  # odd sizes: partial tiles and vectors everywhere
    target = ((values - values.min()) / (values.max() - values.min())).astype(np.float32)
    xs, ys, zs = (axis_coords(n, "vertex") for n in target.shape[::-1])
    for cfg in CONFIGS[:4]:
        enc, net = inr.EncodingConfig(*cfg[0]), inr.NetworkConfig(*cfg[1])
        for batch, loss in ((1000, "l2"), (1 << 16, "l1")):
            problem = FitProblem(enc, net, target, None, xs, ys, zs, batch, loss)
            tr = NativeBackend(2).trainer(problem, init_params(enc, net, 0), seed=1)
            digest.update(np.float32(tr.step(40, 1e-2)).tobytes())
            params = tr.params()
            digest.update(params.tobytes())
            digest.update(NativeBackend(2).decode_grid(enc, net, params, xs, ys, zs).tobytes())
    from inr.residual import compute_residual  # the residual coder's trials and passes (kernel_residual.h)
    for rel in (1e-2, 1e-4):
        res = compute_residual(values, None, rel * float(np.ptp(values)), float(np.ptp(values)))
        digest.update(res.to_bytes())
        digest.update(res.apply(None, threads=2).tobytes())
    rng = np.random.default_rng(9)  # the error of a reconstruction (kernel_metrics.h): float32 and float64 grids
    a = rng.standard_normal(100_003)
    b = (a + rng.standard_normal(a.size) * 1e-3).astype(np.float32)
    for x in (a, a.astype(np.float32)):
        total, top = _native.error_stats(x, b)
        d = np.subtract(x, b, dtype=np.float64)
        assert abs(total / float((d * d).sum()) - 1) < 1e-12 and top == float(np.abs(d).max()), (total, top)
        digest.update(np.float64([total, top]).tobytes())
    return {"isa": _native.isa(), "digest": digest.hexdigest()}


@functools.lru_cache(maxsize=None)
def isa_report(isa: str) -> dict:
    """:func:`check_this_build` in a subprocess with INR_NATIVE_ISA=isa (the pick is made once per process)."""
    code = "import json; from support.native import check_this_build; print(json.dumps(check_this_build()))"
    proc = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, INR_NATIVE_ISA=isa),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"INR_NATIVE_ISA={isa}:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])
