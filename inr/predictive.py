"""The predictive coder at a target PSNR: the residual coder alone, its error bound searched for the quality.

:mod:`inr.residual` codes a grid coarse to fine, each sample predicted by
interpolating what is decoded already and its quantised correction stored (the
predictor family of interpolation compressors such as SZ3). With no network
every mode reads only decoded samples, so it is a compressor of its own: on
noisy or sharp-featured volumes (CT and MR scans) it stores fewer bytes at
40 dB than any network of the same quality, in a fraction of a network's
training time (docs/throughput.md). :func:`inr.fit` with a ``target_psnr``
tries it first, and trains a network only to beat its bytes.

The PSNR depends only on the quantisation, not on the entropy coding, so the
search runs the (fast, C++) quantising passes alone and compresses once, at
the end (``Residual.to_bytes``, the caller's); the predictor of each pass is
chosen by the first pass only (trials are most of a pass's time).
"""
from __future__ import annotations

import math

import numpy as np

from .metrics import psnr
from .residual import Residual, compute_residual, float32_below

#: the first guess: uniform quantisation error within +-eps has an MSE of eps^2 / 3; interpolation predicts many
#: samples better than eps, so the first PSNR lands above the target and the search widens the bound
FIRST_GUESS_RMS_PER_EPS = 1 / math.sqrt(3)
#: a bound whose PSNR is within this many dB above the target ends the search
CLOSE_DB = 0.1
#: the per-level step refinement (inr.residual ALPHA, which suits error bounds): at a PSNR target, coarse levels
#: refined a little more stored 1-6 % less at 40 dB (ironprot, hydrogen, carotid; 1.5: the error-bounded mode's)
ALPHA = 1.75
#: quantising passes the search makes at most (each ~0.01 s on 64^3, ~0.15 s on 189x233x197)
MAX_TRIES = 6


def residual_for_psnr(owned: np.ndarray, target_psnr: float, value_range: float, max_tries: int = MAX_TRIES,
                      start: Residual | None = None) -> tuple[Residual, float, np.ndarray]:
    """The residual (no network) of the widest error bound found whose decoded grid reaches ``target_psnr`` dB
    on ``owned`` (PSNR relative to ``value_range`` > 0), with that PSNR and the decoded grid.

    A secant search on (log bound, PSNR), which is close to a line of slope -20 dB per decade: it starts at the
    bound a uniform quantisation error would need and stops once a bound lands within :data:`CLOSE_DB` above the
    target (or after ``max_tries`` passes). The error bound of the result is ``residual.eps``.
    ``start``: an earlier coding of a grid of this shape (its ``settings()`` will do): the search starts at its
    bound with its modes, which in a run's next cycle is usually one or two passes from the end.
    """
    rms = value_range * 10 ** (-target_psnr / 20)
    log_eps = math.log(rms / FIRST_GUESS_RMS_PER_EPS)
    best: tuple[Residual, float, np.ndarray] | None = None
    owned = np.asarray(owned, dtype=np.float64)  # once: the coder works in float64
    tried: list[tuple[float, float]] = []  # (log eps, PSNR) of each pass
    low: tuple[Residual, float, np.ndarray] | None = None  # the closest below the target, if none reaches it
    modes = None
    if start is not None and start.shape == owned.shape and start.eps > 0:
        log_eps, modes = math.log(start.eps), start.modes
    for _ in range(max_tries):
        # the first pass chooses each pass's mode; the others reuse them (the modes barely depend on the bound)
        # a float32 bound: the section stores it in 4 bytes (the search's bounds need no more digits)
        res = compute_residual(owned, None, float32_below(math.exp(log_eps)), value_range, modes=modes, alpha=ALPHA)
        modes = res.modes
        rec = res.apply(None)
        p = psnr(owned, rec, value_range)
        tried.append((log_eps, p))
        if p >= target_psnr:
            if best is None or res.eps > best[0].eps:
                best = (res, p, rec)
            if p - target_psnr <= CLOSE_DB:
                break
        elif low is None or p > low[1]:
            low = (res, p, rec)
        log_eps = _next_log_eps(tried, target_psnr + CLOSE_DB / 2)
    if best is None:  # only when max_tries ran out below the target: the tightest bound tried is the closest
        best = low
    assert best is not None
    return best


def _next_log_eps(tried: list[tuple[float, float]], aim: float) -> float:
    """The next log bound to try for PSNR ``aim``: the secant through the bracketing (or last two) points, the
    -20 dB per decade line through the last point when there is one point only. A step never leaves a bracket."""
    above = [t for t in tried if t[1] >= aim]
    below = [t for t in tried if t[1] < aim]
    if above and below:  # bracketed: the closest pair, and a step inside it
        a = max(above, key=lambda t: t[0])
        b = min(below, key=lambda t: t[0])
        if b[1] != a[1]:
            x = a[0] + (aim - a[1]) * (b[0] - a[0]) / (b[1] - a[1])
            lo, hi = sorted((a[0], b[0]))
            if lo < x < hi:
                return x
        return 0.5 * (a[0] + b[0])
    x0, p0 = tried[-1]
    slope = -20 / math.log(10)  # dB per unit of log eps, for uniform quantisation
    if len(tried) >= 2:
        x1, p1 = tried[-2]
        if x1 != x0 and (p0 - p1) / (x0 - x1) < 0:  # measured, and falling as it should
            slope = (p0 - p1) / (x0 - x1)
    step = (aim - p0) / slope
    return x0 + max(-3.0, min(3.0, step))  # at most ~20x per pass: a flat stretch must not throw it off the grid
