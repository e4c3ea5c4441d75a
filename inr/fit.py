"""Fit a model to one block of a 3D field.

The whole block (owned and ghost samples) is min-max normalised and trained
on; owned samples on faces shared with a neighbour (faces that have ghost
layers) weigh ``boundary_weight`` times more in the loss. That is how
neighbouring ranks agree at their shared faces without exchanging anything.
Quality is always measured on the owned grid, after rounding to fp16.
"""
from __future__ import annotations

import dataclasses
import math
import time
import warnings
from typing import Callable

import numpy as np

from .backends import BACKENDS, get_backend
from .delta_search import coarsen_delta
from .errors import InrValueError
from .grid import ASSOCIATIONS, Box, box_slices, grid_axes, owned_box
from .layout import init_params
from .metrics import max_abs_error as measured_max_abs_error, psnr
from .model import FitReport, Model, ModelConfig
from .problem import LOSSES, FitProblem
from .quantize import DEFAULT_PARAM_BITS, check_param_bits, grid_misfit
from .residual import check_error_bound, compute_residual
from .sizing import config_for_ratio, smallest_config

#: fraction of the initial learning rate reached at ``max_steps`` (exponential decay) in a fit from
#: scratch. Measured (benchmarks/schedule_sweep.py, docs/training_schedule.md): decaying only to 0.5 gave
#: +0.1 to +1.7 dB (mean +0.9) over 0.1 on 64^3 fits of 800 steps at equal bytes; no decay at all was
#: 0.1 dB worse.
LR_FINAL_FRACTION = 0.5
#: the same for a warm start (``init`` or ``delta_base``: a short fine-tune at WARM_LEARNING_RATE), which
#: does not decay: on warm-started chains of 60 steps per cycle no decay gave +0.5 dB over 0.5 for whole
#: models at equal bytes, and on 100 advection cycles raised capacity at equal PSNR by about 20 % for whole
#: models and deltas alike (docs/temporal_deltas.md).
WARM_LR_FINAL_FRACTION = 1.0
#: the ratio a model is sized for when nothing says otherwise
DEFAULT_RATIO = 100.0
LEARNING_RATE = 1e-2
WARM_LEARNING_RATE = 3e-3
_STEP_CHUNK = 10  # steps between time-budget checks
#: the delta search (inr.delta_search) compares its candidates on about this many owned samples (every
#: k-th per axis): on 48^3 proxies every 2nd sample per axis made the same choices within 1 % of capacity as
#: every sample, for 5x less time; the stored delta's PSNR is measured on all of them
SEARCH_SAMPLES = 1 << 15
#: with a time budget, a delta's training stops at this fraction of it, leaving the rest to the search
#: (the search's bytes are worth more than the last steps' dB: docs/temporal_deltas.md)
DELTA_TRAIN_SHARE = 0.75


def validate_values(values: object, name: str = "values") -> np.ndarray:
    """A finite 3D float32 array in C order, or an :class:`InrValueError` saying what is wrong."""
    try:
        arr = np.asarray(values)
    except Exception as exc:
        raise InrValueError(f"{name} must be a 3D numeric array (z, y, x): {exc}") from exc
    if arr.dtype.kind not in "fiub":
        raise InrValueError(f"{name} must be a 3D numeric array (z, y, x); got dtype {arr.dtype}")
    if arr.ndim != 3:
        raise InrValueError(f"{name} must be a 3D array (z, y, x); got {arr.ndim} dimensions, shape {arr.shape}")
    if 0 in arr.shape:
        raise InrValueError(f"{name} has an empty axis: shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InrValueError(f"{name} holds {int(bad.sum())} NaN/Inf values (first at (z, y, x) = {first})")
    return arr


def _check_number(name: str, value: object, lo: float, *, integer: bool = False, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value) == int(value)
    if not ok or not math.isfinite(float(value)) or float(value) < lo:  # type: ignore[arg-type]
        kind = "an integer" if integer else "a number"
        raise InrValueError(f"{name}={value!r} is invalid: expected {kind} >= {lo}")


def boundary_weights(shape: tuple[int, int, int], owned: Box, boundary_weight: float) -> np.ndarray | None:
    """Per-sample loss weights: ``boundary_weight`` on owned faces that border ghost layers."""
    if boundary_weight == 1.0 or owned == tuple((0, n) for n in shape):
        return None
    w = np.ones(shape, dtype=np.float32)
    sl = list(box_slices(owned))
    for axis, ((a, b), n) in enumerate(zip(owned, shape)):
        for face, has_ghosts in ((a, a > 0), (b - 1, b < n)):
            if has_ghosts:
                idx = list(sl)
                idx[axis] = slice(face, face + 1)
                w[tuple(idx)] = boundary_weight
    return w


def fit(
    values: np.ndarray,
    *,
    ghost_mask: np.ndarray | None = None,
    association: str = "vertex",
    config: ModelConfig | None = None,
    ratio: float | None = None,
    target_psnr: float | None = None,
    max_steps: int = 2000,
    time_budget_s: float | None = None,
    init: Model | None = None,
    backend: str = "auto",
    device: str = "cpu",
    seed: int = 0,
    batch_size: int = 1 << 16,
    learning_rate: float | None = None,
    loss: str = "l2",
    boundary_weight: float = 4.0,
    threads: int | None = None,
    progress: Callable[[int, float], None] | None = None,
    param_bits: int = DEFAULT_PARAM_BITS,
    max_abs_error: float | None = None,
    delta_base: Model | None = None,
) -> tuple[Model, FitReport]:
    """Fit a hash-grid INR to ``values`` (3D, C order (z, y, x), x fastest).

    Stops at the first of: ``target_psnr`` reached on the owned grid,
    ``max_steps``, ``time_budget_s``. ``config`` defaults to
    ``config_for_ratio(owned shape, ratio)`` (or ``init``'s config). Without
    a ``ratio`` (nor config or init) the model is sized for 100:1, except
    that with a ``target_psnr`` the fit searches for the smallest model that
    reaches it (see :func:`smallest_for_psnr`);
    ``init`` warm-starts from a previous Model of the same config.
    ``learning_rate`` defaults to 1e-2, or 3e-3 for a warm start (a model that
    is already close is disturbed less); it decays to half over ``max_steps``
    from scratch, and not at all in a warm start. ``progress(step, psnr)`` is called
    whenever the PSNR is measured.

    ``param_bits`` is the storage of the parameters (8, the default: 8-bit
    quantisation + zstd, see :mod:`inr.quantize`; 4..7; or 16 for float16);
    the model is sized for it. ``max_abs_error=eps`` (error-bounded mode)
    stores, after the fit, the residual quantised with step ~2*eps
    (:mod:`inr.residual`): every decoded owned value is then within ``eps``
    of ``values``, and the stored bytes (hence the ratio) include it. With
    ``max_abs_error`` and neither ``ratio`` nor ``target_psnr`` (nor config or
    init) the network is the smallest there is: the residual coder predicts
    most samples from the samples it has decoded, and a larger network rarely
    pays for itself.

    ``delta_base`` (temporal weight-delta coding): warm-start from that model
    (unless ``init`` says otherwise) and put the parameters on its
    quantisation grid, so that ``model.to_bytes(base=delta_base)`` stores only
    their change. The report's bytes and ratio are then the delta's and
    ``report.delta`` is True; when the parameters do not fit that grid (or the
    configs differ) a whole model is made instead (``report.delta`` False).
    Each parameter group of a delta then moves only as finely as pays for
    itself in bytes against PSNR (:func:`inr.delta_search.coarsen_delta`;
    not in the error-bounded mode). With ``time_budget_s`` the training of a
    delta stops at :data:`DELTA_TRAIN_SHARE` of it and the search ends with
    it; with ``target_psnr`` reached, the search keeps it.
    Returns the Model and a FitReport measured on the real data, on exactly
    what the stored bytes decode to.
    """
    if ratio is None and target_psnr is not None and config is None and init is None and delta_base is None:
        _check_number("target_psnr", target_psnr, 0.0)
        return smallest_for_psnr(values, target_psnr, ghost_mask=ghost_mask, association=association,
                                 max_steps=max_steps, time_budget_s=time_budget_s, backend=backend, device=device,
                                 seed=seed, batch_size=batch_size, learning_rate=learning_rate, loss=loss,
                                 boundary_weight=boundary_weight, threads=threads, progress=progress,
                                 param_bits=param_bits, max_abs_error=max_abs_error)
    t0 = time.perf_counter()
    vals = validate_values(values)
    if association not in ASSOCIATIONS:
        raise InrValueError(f"association={association!r} is invalid: valid choices are {list(ASSOCIATIONS)}")
    if loss not in LOSSES:
        raise InrValueError(f"loss={loss!r} is invalid: valid choices are {list(LOSSES)}")
    if backend not in BACKENDS:
        raise InrValueError(f"backend={backend!r} is invalid: valid choices are {list(BACKENDS)}")
    _check_number("ratio", ratio, 1.0)
    _check_number("target_psnr", target_psnr, 0.0)
    _check_number("max_steps", max_steps, 1, integer=True, allow_none=False)
    _check_number("time_budget_s", time_budget_s, 0.0)
    _check_number("batch_size", batch_size, 1, integer=True, allow_none=False)
    _check_number("learning_rate", learning_rate, 0.0)
    _check_number("boundary_weight", boundary_weight, 0.0, allow_none=False)
    _check_number("seed", seed, 0, integer=True, allow_none=False)
    bits = check_param_bits(param_bits)
    eps = None if max_abs_error is None else check_error_bound(max_abs_error)
    if config is not None and not isinstance(config, ModelConfig):
        raise InrValueError(f"config must be an inr.ModelConfig or None; got {type(config).__name__}")
    if delta_base is not None:
        if not isinstance(delta_base, Model):
            raise InrValueError(f"delta_base must be an inr.Model or None; got {type(delta_base).__name__}")
        if init is None and (config is None or config == delta_base.config):
            init = delta_base
    if init is not None:
        if not isinstance(init, Model):
            raise InrValueError(f"init must be an inr.Model or None; got {type(init).__name__}")
        if config is not None and config != init.config and not init.is_constant:
            raise InrValueError("init has a different config than config=: warm start needs the same model config")
    ghost = None
    if ghost_mask is not None:
        ghost = np.asarray(ghost_mask)
        if ghost.shape != vals.shape:
            raise InrValueError(f"ghost_mask has shape {ghost.shape}; it must match values' shape {vals.shape}")
    owned = owned_box(ghost, vals.shape)
    owned_vals = vals[box_slices(owned)]
    raw_bytes = 4 * owned_vals.size

    be = get_backend(backend, device, threads)
    lo, hi = float(vals.min()), float(vals.max())
    if config is None and init is not None and not init.is_constant:
        config = init.config
    if config is None and (lo == hi or (ratio is None and target_psnr is None and eps is not None)):
        # error-bounded with no ratio asked for: the residual coder predicts the data itself from what it
        # has decoded, and a larger network rarely makes it smaller (docs/rate_distortion.md)
        config = smallest_config()
    if config is None:
        ratio = ratio if ratio is not None else DEFAULT_RATIO
        config = config_for_ratio(owned_vals.shape, ratio, param_bits=bits, strict=False)
        if config == smallest_config():
            warnings.warn(f"inr.fit: ratio={ratio} is out of reach for a block of {owned_vals.shape} samples; "
                          "using the smallest model", RuntimeWarning, stacklevel=2)

    if lo == hi:  # constant block: stored exactly, nothing to learn
        model = Model(config, np.zeros(0, np.float16), (lo, hi), vals.shape, association, owned)
        stored = len(model.to_bytes())
        return model, FitReport(math.inf, 0.0, 0, time.perf_counter() - t0, stored, raw_bytes / stored,
                                be.name, "constant", 0.0 if eps is not None else None, bits)

    owned_range = float(owned_vals.max()) - float(owned_vals.min())
    value_range = owned_range if owned_range > 0 else hi - lo
    xs, ys, zs = grid_axes(vals.shape, association)
    oz, oy, ox = box_slices(owned)
    problem = FitProblem(
        config.encoding, config.network, ((vals - lo) / (hi - lo)).astype(np.float32),
        boundary_weights(vals.shape, owned, boundary_weight), xs, ys, zs, int(batch_size), loss,
    )
    if learning_rate is None:
        learning_rate = WARM_LEARNING_RATE if init is not None else LEARNING_RATE
    final_fraction = WARM_LR_FINAL_FRACTION if init is not None else LR_FINAL_FRACTION
    if init is not None and not init.is_constant:
        params0 = init.params.astype(np.float32)
    else:
        params0 = init_params(config.encoding, config.network, int(seed))

    def measure(params: np.ndarray, stride: int = 1) -> tuple[float, np.ndarray]:
        """PSNR on the owned grid (every ``stride``-th sample per axis), and the values decoded there."""
        st = slice(None, None, stride)
        out = be.decode_grid(config.encoding, config.network, params, xs[ox][st], ys[oy][st], zs[oz][st])
        rec = (out.astype(np.float64) * (hi - lo) + lo).astype(np.float32)
        return psnr(owned_vals[st, st, st], rec, value_range), rec

    # a delta lives on its base's quantisation grid, when its parameters fit there; anything else on its own
    delta_base_scales = (delta_base.scales if delta_base is not None and not delta_base.is_constant
                         and delta_base.config == config and delta_base.param_bits == bits and bits != 16 else None)

    def as_stored(params: np.ndarray) -> tuple[Model, np.ndarray | None]:
        """The model these trained parameters store as (fp16, then quantised), and the base's grid if it is on it."""
        params16 = np.clip(params, -65504.0, 65504.0).astype(np.float16)
        scales = (delta_base_scales if delta_base_scales is not None
                  and grid_misfit(params16, config, bits, delta_base_scales) is None else None)
        return Model(config, params16, (lo, hi), vals.shape, association, owned, bits, scales=scales), scales

    trainer = be.trainer(problem, params0, int(seed))
    steps, reason, reached = 0, "max_steps", None
    train_budget_s = time_budget_s
    if time_budget_s is not None and delta_base is not None and eps is None:
        train_budget_s = DELTA_TRAIN_SHARE * time_budget_s  # the rest is the delta search's
    next_eval = _STEP_CHUNK  # measure early: a warm start may already be good enough
    step_time = eval_time = 0.0
    while steps < max_steps:
        n = min(_STEP_CHUNK, max_steps - steps)
        lr = learning_rate * final_fraction ** (steps / max_steps)
        ts = time.perf_counter()
        trainer.step(n, lr)
        step_time = (time.perf_counter() - ts) / n
        steps += n
        if train_budget_s is not None and time.perf_counter() - t0 >= train_budget_s:
            reason = "time_budget"
            break
        if (target_psnr is not None or progress is not None) and steps >= next_eval and steps < max_steps:
            te = time.perf_counter()
            # judged as stored (fp16, then quantised): a target reached only before quantisation is not reached
            stored = as_stored(trainer.params())
            p, rec = measure(stored[0].params.astype(np.float32))
            eval_time = time.perf_counter() - te
            if progress is not None:
                progress(steps, p)
            if target_psnr is not None and p >= target_psnr:
                reason, reached = "target_psnr", (stored, p, rec)  # the final model, already measured
                break
            # keep measuring under ~20% of the training time
            eval_every = max(_STEP_CHUNK, int(math.ceil(5 * eval_time / max(step_time, 1e-9) / _STEP_CHUNK)) * _STEP_CHUNK)
            next_eval = steps + eval_every

    if reached is not None:
        (model, scales), final_psnr, rec = reached
    else:
        model, scales = as_stored(trainer.params())  # scales: the base's grid for a delta, else None
        final_psnr, rec = measure(model.params.astype(np.float32))
    if scales is not None and eps is None:
        # a delta: store only the moves that pay for themselves (inr.delta_search); the error-bounded mode
        # keeps every move, since its residual, not the network, decides its quality
        stride = max(1, round((owned_vals.size / SEARCH_SAMPLES) ** (1 / 3)))
        # with a target, the search never lowers the PSNR below it (or below the fine delta's, if that misses it)
        keep = None if target_psnr is None else min(target_psnr, final_psnr)
        coarse, _ = coarsen_delta(model.params, delta_base.params, config, bits, scales,
                                  lambda p: measure(p.astype(np.float32), stride)[0], min_psnr=keep,
                                  deadline=None if time_budget_s is None else t0 + time_budget_s)
        cand = Model(config, coarse, (lo, hi), vals.shape, association, owned, bits, scales=scales)
        cand_psnr, cand_rec = measure(cand.params.astype(np.float32))
        if keep is None or cand_psnr >= keep:  # the search judged on a subsample: hold the target on all
            model, final_psnr, rec = cand, cand_psnr, cand_rec
    if eps is not None:
        model.residual = compute_residual(owned_vals, rec, eps, value_range)
        rec = model.residual.apply(rec)
        final_psnr = psnr(owned_vals, rec, value_range)
    stored = len(model.to_bytes(base=delta_base if scales is not None else None))
    report = FitReport(final_psnr, measured_max_abs_error(owned_vals, rec), steps, time.perf_counter() - t0,
                       stored, raw_bytes / stored, be.name, reason, eps, bits, scales is not None)
    if progress is not None:
        progress(steps, final_psnr)
    return model, report


#: the search's first guess, and its bounds (ratios of the raw float32 bytes to the stored ones)
SEARCH_START_RATIO, SEARCH_MAX_RATIO = 100.0, 5000.0
#: fits the search tries at most; it stops earlier once the bracket is within 30 %
SEARCH_TRIES = 7


def smallest_for_psnr(values: np.ndarray, target_psnr: float, *, time_budget_s: float | None = None,
                      **kwargs) -> tuple[Model, FitReport]:
    """The smallest model (highest ratio) whose fit reaches ``target_psnr``, by bisection on log(ratio).

    Starts at 100:1 and moves by 4x until the target is bracketed, then halves
    the bracket (at most :data:`SEARCH_TRIES` fits; ``time_budget_s`` is shared
    out over the fits left). Each fit stops as soon as it reaches the target.
    Returns the smallest model that reached it; when none did, the best one
    tried (a RuntimeWarning says so). The report's seconds and steps are those
    of the whole search.
    """
    t0 = time.perf_counter()
    best_ok: tuple[Model, FitReport] | None = None
    best_any: tuple[Model, FitReport] | None = None
    ok_ratio = fail_ratio = None
    ratio, steps = SEARCH_START_RATIO, 0
    for tries_left in range(SEARCH_TRIES, 0, -1):
        budget = None
        if time_budget_s is not None:
            budget = max(time_budget_s - (time.perf_counter() - t0), 0.0) / tries_left
            if budget <= 0 and best_any is not None:
                break
        model, rep = fit(values, ratio=ratio, target_psnr=target_psnr, time_budget_s=budget, **kwargs)
        steps += rep.steps
        if best_any is None or rep.psnr > best_any[1].psnr:
            best_any = (model, rep)
        if rep.psnr >= target_psnr:
            if best_ok is None or rep.stored_bytes < best_ok[1].stored_bytes:
                best_ok = (model, rep)
            ok_ratio = ratio
        else:
            fail_ratio = ratio
        if ok_ratio is not None and fail_ratio is not None:
            if fail_ratio / ok_ratio < 1.3 or fail_ratio < ok_ratio:
                break
            ratio = math.sqrt(ok_ratio * fail_ratio)
        elif ok_ratio is not None:
            if ratio >= SEARCH_MAX_RATIO:
                break
            ratio = min(ratio * 4, SEARCH_MAX_RATIO)
        else:
            if ratio <= 1.0:
                break
            ratio = max(ratio / 4, 1.0)
    chosen = best_ok or best_any
    assert chosen is not None  # the first fit always runs
    if best_ok is None:
        warnings.warn(f"inr.fit: no model size tried reached target_psnr={target_psnr} dB (best "
                      f"{chosen[1].psnr:.2f} dB at ratio {chosen[1].ratio:.1f}); returning the best", RuntimeWarning,
                      stacklevel=3)
    model, rep = chosen
    rep = dataclasses.replace(rep, seconds=time.perf_counter() - t0, steps=steps)
    return model, rep
