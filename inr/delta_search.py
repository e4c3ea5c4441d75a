"""Rate-distortion choice of a temporal delta's moves: how coarsely each parameter group moves.

A warm-started fit moves nearly every parameter by a few quantisation steps,
and storing every move exactly costs about two thirds of a whole model
(docs/temporal_deltas.md). Most of those moves buy little PSNR. So, after the
fit, each parameter group (an MLP weight matrix, a hash level's table) may
move in coarser whole multiples ``m`` of its steps, ``q = q_base + m *
rint((q_fit - q_base) / m)``, or not at all (``m = 0``); the delta section then
stores the small integers ``rint(...)`` and one ``m`` per group
(:mod:`inr.quantize`).

Which ``m`` per group is a Lagrangian choice: minimise ``bytes - mu * PSNR``,
with ``mu`` the bytes a whole model pays per dB at its size. Whole models gain
about :data:`DB_PER_HALVING` dB per doubling of their bytes on the proxies
(the ``none`` rows of docs/temporal_deltas.md), so ``mu = whole_bytes * ln 2 /
DB_PER_HALVING``: a delta gives up a dB only where that saves more bytes than
a dB of a whole model costs, which is the trade that raises capacity at equal
mean PSNR. The search is greedy, one group at a time (largest first), each
trying the multipliers in :data:`MULTIPLIERS`; bytes are estimated by the
order-0 entropy of the stored integers (zstd comes within a few % of it) and
PSNR is measured for real on the owned grid (by :func:`inr.fit` on every
second sample per axis).
"""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from .quantize import _assemble, _steps, chain_limit, encode_params, param_groups

#: dB a whole model gains per doubling of its bytes (measured on advection and Gray-Scott, 48^3, ratios 50-300:
#: 3.9-4.1 dB with the earlier model shape; today's range is in docs/temporal_deltas.md); sets the price of
#: a dB in bytes
DB_PER_HALVING = 4.0
#: step multipliers tried per group, in this order (0: the group keeps the base's values)
MULTIPLIERS = (2, 3, 4, 6, 8, 12, 16, 24, 32)
#: stop trying larger multipliers for a group after this many that did not lower the cost
_PATIENCE = 2


def _entropy_bytes(k: np.ndarray) -> float:
    """Order-0 entropy of integers, in bytes: the estimate of what zstd stores them in."""
    if k.size == 0:
        return 0.0
    _, counts = np.unique(k, return_counts=True)
    p = counts / k.size
    return float(-(counts * np.log2(p)).sum() / 8)


def coarsen_delta(params: np.ndarray, base_params: np.ndarray, config, bits: int, scales: np.ndarray,
                  quality: Callable[[np.ndarray], float], db_per_halving: float = DB_PER_HALVING, *,
                  min_psnr: float | None = None, deadline: float | None = None) -> tuple[np.ndarray, list[int]]:
    """(float16 parameters on the grid ``scales`` with each group's moves from ``base_params`` coarsened,
    the multiplier chosen per quantised group: 1 = unchanged, 0 = the base's values).

    ``quality(params) -> PSNR`` measures a candidate on the real data. Both
    parameter sets must be on the grid ``scales`` (a delta and its base).
    ``min_psnr``: no candidate below it is taken (a fit's ``target_psnr``).
    ``deadline`` (a ``time.perf_counter()`` value): no candidate is measured
    after it; the best choice found so far is returned.
    """
    limit = chain_limit(bits)
    q, kept = _steps(params, config, scales, limit)
    q_base, _ = _steps(base_params, config, scales, limit)
    dq = q.astype(np.int32) - q_base
    groups, at = [], 0
    for sl, quantised in param_groups(config):
        if quantised:
            groups.append(slice(at, at + sl.stop - sl.start))
            at += sl.stop - sl.start
    mu = len(encode_params(params, config, bits)) * math.log(2) / db_per_halving

    def moves(g: slice, m: int) -> np.ndarray:
        return np.rint(dq[g] / m).astype(np.int32) if m else np.zeros(g.stop - g.start, np.int32)

    def candidate(ms: list[int]) -> np.ndarray:
        qn = q_base.astype(np.int32).copy()
        for g, m in zip(groups, ms):
            qn[g] += moves(g, m) * m
        return _assemble(config, scales, np.clip(qn, -limit, limit).astype(np.int16), kept, params.size)

    ms = [1] * len(groups)
    sizes = [_entropy_bytes(dq[g]) for g in groups]
    cost = sum(sizes) - mu * quality(candidate(ms))
    for i in sorted(range(len(groups)), key=lambda i: groups[i].start - groups[i].stop):
        misses = 0
        for m in (*MULTIPLIERS, 0):
            if m and misses >= _PATIENCE:
                continue  # larger multipliers only get worse; still try leaving the group alone
            if deadline is not None and time.perf_counter() >= deadline:
                return candidate(ms), ms
            trial = ms[:i] + [m] + ms[i + 1:]
            size_i = _entropy_bytes(moves(groups[i], m))
            db = quality(candidate(trial))
            c = sum(sizes) - sizes[i] + size_i - mu * db
            if c < cost and (min_psnr is None or db >= min_psnr):
                cost, ms, sizes[i], misses = c, trial, size_i, 0
            else:
                misses += 1
    return candidate(ms), ms
