"""What a backend needs to train one model: the data, prepared once by ``inr.fit``."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import EncodingConfig, NetworkConfig

LOSSES = ("l2", "l1")


@dataclass
class FitProblem:
    """A block's normalised values and how to weigh them.

    ``target`` is the whole block (owned and ghost samples) min-max normalised
    to [0, 1], C order ``(z, y, x)``; ``weight`` the per-sample loss weight
    (extra weight on owned samples at faces shared with neighbours) or None;
    ``xs, ys, zs`` the normalised coordinates along each axis.
    """

    encoding: EncodingConfig
    network: NetworkConfig
    target: np.ndarray
    weight: np.ndarray | None
    xs: np.ndarray
    ys: np.ndarray
    zs: np.ndarray
    batch_size: int = 1 << 16
    loss: str = "l2"

    @property
    def n_samples(self) -> int:
        return int(self.target.size)


@dataclass(frozen=True)
class AdamConfig:
    """Adam as tiny-cuda-nn/instant-ngp configure it for hash grids."""

    beta1: float = 0.9
    beta2: float = 0.99
    eps: float = 1e-15
