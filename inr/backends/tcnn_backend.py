"""The tcnn backend: tiny-cuda-nn's fused HashGrid + FullyFusedMLP on a CUDA device.

Parameters move in and out through the documented layout conversion
(``inr.layout.to_tcnn`` / ``from_tcnn``); tiny-cuda-nn computes in fp16, so
outputs agree with the torch reference within fp16 tolerance, not bit for bit.
"""
from __future__ import annotations

import numpy as np
import torch

from ..config import EncodingConfig, NetworkConfig
from ..grid import grid_points
from ..layout import from_tcnn, to_tcnn
from ..problem import AdamConfig, FitProblem
from .torch_backend import sample_batch

_CHUNK = 1 << 20


def _network(enc: EncodingConfig, net: NetworkConfig, params: np.ndarray, device: torch.device):
    import tinycudann as tcnn

    model = tcnn.NetworkWithInputEncoding(3, 1, enc.to_tcnn(), net.to_tcnn()).to(device)
    with torch.no_grad():
        model.params.copy_(torch.from_numpy(to_tcnn(params, enc, net)).to(model.params))
    return model


class TcnnTrainer:
    def __init__(self, backend: "TcnnBackend", problem: FitProblem, params0: np.ndarray, seed: int) -> None:
        self.problem, self.device = problem, backend.device
        self.model = _network(problem.encoding, problem.network, params0, self.device)
        adam = AdamConfig()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-2, betas=(adam.beta1, adam.beta2), eps=adam.eps)
        self.gen = torch.Generator(device="cpu").manual_seed(int(seed))
        self.target = torch.from_numpy(problem.target.reshape(-1)).to(self.device)
        self.weight = None if problem.weight is None else torch.from_numpy(problem.weight.reshape(-1)).to(self.device)
        self.axes = [torch.from_numpy(a).to(self.device) for a in (problem.xs, problem.ys, problem.zs)]

    def step(self, n_steps: int, lr: float) -> float:
        for g in self.opt.param_groups:
            g["lr"] = lr
        loss = torch.zeros(())
        for _ in range(n_steps):
            idx, pts = sample_batch(self.problem, self.axes, self.gen, self.device)
            err = self.model(pts).float()[:, 0] - self.target[idx]
            per = err * err if self.problem.loss == "l2" else err.abs()
            loss = (per * self.weight[idx] if self.weight is not None else per).mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        return float(loss.detach())

    def params(self) -> np.ndarray:
        p = self.model.params.detach().float().cpu().numpy()
        return from_tcnn(p, self.problem.encoding, self.problem.network)


class TcnnBackend:
    name = "tcnn"

    def __init__(self, device: str = "cuda") -> None:
        self.device = torch.device(device)

    @torch.no_grad()
    def evaluate(self, enc: EncodingConfig, net: NetworkConfig, params: np.ndarray, points: np.ndarray) -> np.ndarray:
        model = _network(enc, net, np.asarray(params, np.float32), self.device)
        pts = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32)).to(self.device)
        out = [model(pts[a:a + _CHUNK]).float()[:, 0] for a in range(0, pts.shape[0], _CHUNK)]
        return torch.cat(out).cpu().numpy() if out else np.zeros(0, np.float32)

    def decode_grid(self, enc: EncodingConfig, net: NetworkConfig, params: np.ndarray,
                    xs: np.ndarray, ys: np.ndarray, zs: np.ndarray) -> np.ndarray:
        return self.evaluate(enc, net, params, grid_points(xs, ys, zs)).reshape(len(zs), len(ys), len(xs))

    def trainer(self, problem: FitProblem, params0: np.ndarray, seed: int) -> TcnnTrainer:
        return TcnnTrainer(self, problem, params0, seed)
