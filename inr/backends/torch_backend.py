"""The torch backend: the reference implementation (CPU and CUDA)."""
from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch

from ..config import EncodingConfig, NetworkConfig
from ..hashgrid import LevelTables, encode
from ..layout import mlp_shapes
from ..problem import AdamConfig, FitProblem

_CHUNK = 1 << 17  # points per inference chunk: bounds memory (N x levels x 8 x F)


class TorchNetwork:
    """Hash grid + MLP evaluated from a flat parameter tensor in our layout."""

    def __init__(self, enc: EncodingConfig, net: NetworkConfig, device: torch.device) -> None:
        self.enc, self.net, self.device = enc, net, device
        self.tables = LevelTables(enc, device)
        self.shapes = mlp_shapes(enc, net)

    def __call__(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        at, mats = 0, []
        for o, i in self.shapes:
            mats.append(flat[at:at + o * i].view(o, i))
            at += o * i
        table = flat[at:].view(-1, self.enc.n_features_per_level)
        h = encode(x, table, self.tables)
        for w in mats[:-1]:
            h = torch.relu(h @ w.t())
        return (h @ mats[-1].t())[:, 0]


def sample_batch(problem: FitProblem, axes: list[torch.Tensor], gen: torch.Generator,
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices of a random batch of grid samples (all when the grid is smaller) and their (x, y, z)."""
    n = problem.n_samples
    idx = torch.arange(n) if problem.batch_size >= n else torch.randint(0, n, (problem.batch_size,), generator=gen)
    idx = idx.to(device)
    _, ny, nx = problem.target.shape
    xs, ys, zs = axes
    return idx, torch.stack([xs[idx % nx], ys[(idx // nx) % ny], zs[idx // (nx * ny)]], dim=1)


@contextlib.contextmanager
def _flush_denormals(device: torch.device) -> Iterator[None]:
    """Subnormal floats (e.g. Adam's second moments of tiny gradients) flushed to zero while training on a CPU.

    x86 CPUs take a slow microcode path for each subnormal: a reference fit measured 195 s with them, 27 s
    flushed. What they carry is far below float32's resolution of the parameters, so the fit is unchanged. The
    flag is the calling thread's; it is cleared again afterwards (torch's default) so that other code on this
    thread, the native kernels' OpenMP thread 0 among it, computes as it always does.
    """
    if device.type != "cpu":
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


class TorchTrainer:
    """Adam on random batches of grid samples; ``step(n, lr)`` runs n steps."""

    def __init__(self, backend: "TorchBackend", problem: FitProblem, params0: np.ndarray, seed: int) -> None:
        dev = backend.device
        self.problem = problem
        self.network = TorchNetwork(problem.encoding, problem.network, dev)
        self.flat = torch.nn.Parameter(torch.from_numpy(np.array(params0, dtype=np.float32)).to(dev))
        adam = AdamConfig()
        self.opt = torch.optim.Adam([self.flat], lr=1e-2, betas=(adam.beta1, adam.beta2), eps=adam.eps)
        self.gen = torch.Generator(device="cpu").manual_seed(int(seed))
        self.target = torch.from_numpy(problem.target.reshape(-1)).to(dev)
        self.weight = None if problem.weight is None else torch.from_numpy(problem.weight.reshape(-1)).to(dev)
        self.axes = [torch.from_numpy(a).to(dev) for a in (problem.xs, problem.ys, problem.zs)]

    def step(self, n_steps: int, lr: float) -> float:
        for group in self.opt.param_groups:
            group["lr"] = lr
        loss = torch.zeros(())
        with _flush_denormals(self.target.device):
            for _ in range(n_steps):
                idx, pts = sample_batch(self.problem, self.axes, self.gen, self.target.device)
                err = self.network(self.flat, pts) - self.target[idx]
                per = err * err if self.problem.loss == "l2" else err.abs()
                if self.weight is not None:
                    per = per * self.weight[idx]
                loss = per.mean()
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
        return float(loss.detach())

    def params(self) -> np.ndarray:
        return self.flat.detach().cpu().numpy().copy()


class TorchBackend:
    """Reference backend on torch, on ``device`` ("cpu" or "cuda[:k]")."""

    name = "torch"

    def __init__(self, device: str = "cpu", threads: int | None = None) -> None:
        self.device = torch.device(device)
        if threads is not None:
            torch.set_num_threads(int(threads))

    @torch.no_grad()
    def evaluate(self, enc: EncodingConfig, net: NetworkConfig, params: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Network output (normalised units) at ``points`` (N, 3) in [0, 1]^3."""
        network = TorchNetwork(enc, net, self.device)
        flat = torch.from_numpy(np.asarray(params, dtype=np.float32)).to(self.device)
        pts = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32)).to(self.device)
        out = [network(flat, pts[a:a + _CHUNK]) for a in range(0, pts.shape[0], _CHUNK)]
        return torch.cat(out).cpu().numpy() if out else np.zeros(0, np.float32)

    def decode_grid(self, enc: EncodingConfig, net: NetworkConfig, params: np.ndarray,
                    xs: np.ndarray, ys: np.ndarray, zs: np.ndarray) -> np.ndarray:
        """Network output on the tensor grid ``zs x ys x xs`` -> (nz, ny, nx) float32."""
        from ..grid import grid_points

        out = self.evaluate(enc, net, params, grid_points(xs, ys, zs))
        return out.reshape(len(zs), len(ys), len(xs))

    def trainer(self, problem: FitProblem, params0: np.ndarray, seed: int) -> TorchTrainer:
        return TorchTrainer(self, problem, params0, seed)
