"""Quality metrics, defined once for the whole project.

PSNR = 20*log10(value range) - 10*log10(MSE), over the full owned grid.
A perfect reconstruction (MSE 0) has infinite PSNR; a constant field stored
exactly too.
"""
from __future__ import annotations

import math

import numpy as np


def mse(a: np.ndarray, b: np.ndarray) -> float:
    # one float64 difference, summed by einsum: 4-6x faster than squaring and averaging on large grids (the PSNR
    # search of inr.predictive measures several per block), and not BLAS's dot, whose threads spin on after each
    # call (on 2 cores they took the second core from the coder's and trainer's threads: fits ran 2x slower);
    # NaN for empty grids, as np.mean gives
    d = np.subtract(a, b, dtype=np.float64).ravel()
    return float(np.einsum("i,i->", d, d) / d.size) if d.size else math.nan


def psnr(original: np.ndarray, reconstruction: np.ndarray, value_range: float | None = None) -> float:
    """PSNR in dB of ``reconstruction`` against ``original``; range defaults to the original's."""
    original = np.asarray(original)
    if value_range is None:
        value_range = float(np.max(original)) - float(np.min(original)) if original.size else 0.0
    err = mse(original, reconstruction)
    if err == 0.0:
        return math.inf
    if value_range == 0.0:
        return -math.inf
    return 20.0 * math.log10(value_range) - 10.0 * math.log10(err)


def max_abs_error(original: np.ndarray, reconstruction: np.ndarray) -> float:
    d = np.subtract(original, reconstruction, dtype=np.float64)
    return float(np.max(np.abs(d))) if d.size else 0.0
