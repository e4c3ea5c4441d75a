"""Analytic 3D fields for demos, benchmarks and tests (C order (z, y, x), float32)."""
from __future__ import annotations

import numpy as np


def _grid(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nz, ny, nx = shape
    return np.meshgrid(np.linspace(0, 1, nz), np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij")


def gaussians(shape: tuple[int, int, int] = (64, 64, 64), n: int = 5, seed: int = 0, shift: float = 0.0) -> np.ndarray:
    """A smooth sum of ``n`` Gaussian blobs; ``shift`` advects them all along x."""
    rng = np.random.default_rng(seed)
    z, y, x = _grid(shape)
    f = np.zeros(shape)
    for _ in range(n):
        c = rng.uniform(0.2, 0.8, 3)
        s = rng.uniform(0.08, 0.2)
        a = rng.uniform(0.5, 1.5)
        f += a * np.exp(-((x - c[0] - shift) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2) / (2 * s * s))
    return f.astype(np.float32)


def waves(shape: tuple[int, int, int] = (64, 64, 64), k: float = 3.0) -> np.ndarray:
    """Smooth interfering sine waves (several wavelengths across the block)."""
    z, y, x = _grid(shape)
    f = np.sin(2 * np.pi * k * x) * np.cos(2 * np.pi * (k - 1) * y) + 0.5 * np.sin(2 * np.pi * (k + 1) * (x + z))
    return f.astype(np.float32)


def sphere_front(shape: tuple[int, int, int] = (64, 64, 64), radius: float = 0.3, width: float = 0.02) -> np.ndarray:
    """A sharp spherical front (tanh profile of ``width``) on a gentle gradient."""
    z, y, x = _grid(shape)
    r = np.sqrt((x - 0.5) ** 2 + (y - 0.5) ** 2 + (z - 0.5) ** 2)
    return (np.tanh((radius - r) / width) + 0.3 * x).astype(np.float32)


FIELDS = {"gaussians": gaussians, "waves": waves, "sphere_front": sphere_front}
