"""Fit a model to one block of a 3D field.

The whole block (owned and ghost samples) is min-max normalised and trained
on; owned samples on faces shared with a neighbour (faces that have ghost
layers) weigh ``boundary_weight`` times more in the loss. That is how
neighbouring ranks agree at their shared faces without exchanging anything.
Quality is always measured on the owned grid, after rounding to fp16.

:func:`fit` runs in four steps, each handing the next what it made:
:func:`fit_options` checks the arguments (:class:`FitOptions`), ``_plan`` sizes
the model and prepares the data for the backend, ``_train`` runs the schedule
until a stop, and ``_finish`` stores, measures and reports.
"""
from __future__ import annotations

import inspect
import math
import time
import warnings
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from .backends import BACKENDS, Backend, Trainer, get_backend
from .delta_search import coarsen_delta
from .errors import InrValueError
from .grid import ASSOCIATIONS, Box, box_shape, box_slices, grid_axes, owned_box
from .layout import init_params
from .metrics import max_abs_error as measured_max_abs_error, psnr
from .config import ModelConfig
from .model import FitReport, Model
from .problem import LOSSES, FitProblem
from .quantize import DEFAULT_PARAM_BITS, check_param_bits, grid_misfit, zero_smallest_entries
from .predictive import residual_for_psnr
from .residual import TABLE_COST_SPEED, Residual, check_error_bound, compute_residual
from .sizing import config_for_ratio, config_near_ratio, expected_bytes, smallest_config, smallest_sized_config

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
#: the training watches a target PSNR on a probe of about this many owned samples (every k-th per axis), and
#: decodes the whole owned grid only to confirm a probe that reached it
PROBE_SAMPLES = 1 << 16
#: the default batch: one parameter update per this many parameters' worth of samples (the per-step cost of
#: summing gradients and Adam stays under ~20 % of a step) and at least 1/BATCH_PER_BLOCK of the block,
#: a power of two between BATCH_MIN and BATCH_MAX (see auto_batch_size)
BATCH_PER_PARAM = 1 / 8
BATCH_PER_BLOCK = 256
BATCH_MIN, BATCH_MAX = 1 << 12, 1 << 16


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


def probe_stride(owned_shape: tuple[int, ...]) -> int:
    """Every how many owned samples per axis the training's PSNR probe takes (about :data:`PROBE_SAMPLES`)."""
    return max(1, int(round((float(np.prod(owned_shape)) / PROBE_SAMPLES) ** (1 / 3))))


def auto_batch_size(n_samples: int, n_params: int) -> int:
    """Samples per training step when ``fit(batch_size=None)``: small enough that a fit takes many steps per
    pass over the block (each step is an update; measured on 128^3 proxies, 2^13-2^14 samples per step reached
    40 dB in 0.4-0.9 passes where 2^16 took 2.5), large enough that the per-step work over all the parameters
    stays small beside the samples' (see :data:`BATCH_PER_PARAM`)."""
    want = max(n_params * BATCH_PER_PARAM, n_samples / BATCH_PER_BLOCK, BATCH_MIN)
    return int(min(BATCH_MAX, 1 << int(math.ceil(math.log2(want)))))


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
    batch_size: int | None = None,
    learning_rate: float | None = None,
    loss: str = "l2",
    boundary_weight: float = 4.0,
    threads: int | None = None,
    progress: Callable[[int, float], None] | None = None,
    param_bits: int = DEFAULT_PARAM_BITS,
    max_abs_error: float | None = None,
    delta_base: Model | None = None,
    max_bytes: int | None = None,
    value_range: float | None = None,
    prefer: str = "size",
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
    from scratch, and not at all in a warm start. ``batch_size`` (samples per
    step) defaults to :func:`auto_batch_size` of the block and model.
    ``progress(step, psnr)`` is called whenever the PSNR is measured (during
    the training, on a probe of the owned samples: an estimate).

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
    ``max_bytes``: a budget of stored bytes (an integer >= 1; not with
    ``max_abs_error``, whose bound decides the bytes). The model is sized for
    the higher of ``ratio`` and raw bytes / ``max_bytes``; a fit that stores
    more is made again with a smaller model, and a fit that misses
    ``target_psnr`` while using under :data:`RETRY_BELOW_BUDGET` of the budget
    is made again with the whole budget (the report counts the ``retries``).
    The report gives the ``asked_ratio`` beside the stored one and, when a
    ``target_psnr`` was missed, ``target_missed_db``.

    A ``target_psnr`` with neither ``ratio`` nor ``config`` (nor ``max_abs_error``)
    first codes the block with no network at all (:mod:`inr.predictive`: the
    residual coder alone, its error bound searched for the target; the report
    says ``stop_reason="predictive"``, ``steps=0``), then searches for a network
    only among sizes smaller than those bytes, and keeps the smaller of the
    two. ``init`` (or ``delta_base``) a model without a network
    (``Model.is_predictive``) asks for the same coding again with a
    ``target_psnr`` (no search), and is ignored otherwise.

    ``value_range``: the range PSNRs (reported and ``target_psnr``) are relative to, default the owned values'
    own. Blocks of one field given the field's range aim at one absolute error together: the split's PSNR over
    the whole field is then about the target, where per-block ranges overshoot it in the blocks of small range.

    ``prefer`` (with a ``target_psnr`` and no size asked): ``"size"`` keeps the smaller of the predictive coding
    and a network; ``"speed"`` keeps the predictive coding whenever it reaches the target, and searches no network:
    it decodes 10-15x faster than a network (a 128^3 block: ~2 ms against ~30 ms on 2 cores) and codes in a
    fraction of the time, for more bytes where a network would have been smaller (sphere_front 128^3 at 40 dB:
    3208:1 against 5002:1); and its codes are table-coded wherever that costs at most
    :data:`inr.residual.TABLE_COST_SPEED` more bytes (``"size"``: 2 %): the codes decode 1.3-2.7x faster (CT and
    MR scans; a whole volume's decoding gains less, mni152_t1 27 -> 23 ms for 2.7 % more bytes).

    ``ratio=R`` is what this fit (one block: raw float32 bytes of its owned
    samples / its stored bytes) stores, within 10 %; a split's blocks asked for
    the same R store R together. Past the smallest sized model
    (:func:`inr.sizing.smallest_sized_config`) that model is stored whole, with
    a warning, and ``report.ratio_off`` says how far off R it is.
    """
    args = dict(ghost_mask=ghost_mask, association=association, config=config, ratio=ratio,
                target_psnr=target_psnr, max_steps=max_steps, time_budget_s=time_budget_s, init=init,
                backend=backend, device=device, seed=seed, batch_size=batch_size, learning_rate=learning_rate,
                loss=loss, boundary_weight=boundary_weight, threads=threads, progress=progress,
                param_bits=param_bits, max_abs_error=max_abs_error, delta_base=delta_base, max_bytes=max_bytes,
                value_range=value_range, prefer=prefer)
    return _fit(values, give_up=False, **args)


#: what a fit to a target_psnr keeps (fit's ``prefer``): the fewest bytes, or the fastest decoding
PREFERENCES = ("size", "speed")


#: fit's keyword arguments and their defaults (a search's tries pass every one on)
_FIT_DEFAULTS = {k: p.default for k, p in inspect.signature(fit).parameters.items() if p.kind is p.KEYWORD_ONLY}


def _fit(values: object, *, give_up: bool, **args: Any) -> tuple[Model, FitReport]:
    """:func:`fit` (``args``: its keyword arguments, all of them); ``give_up``: a fit whose target is out of reach
    stops early (``stop_reason="hopeless"``, see :func:`_hopeless`): a search's tries, which have a better
    candidate to fall back on."""
    if args["prefer"] not in PREFERENCES:
        raise InrValueError(f"prefer={args['prefer']!r} is invalid: valid choices are {list(PREFERENCES)}")
    init, delta_base = args["init"], args["delta_base"]
    if (isinstance(init, Model) and init.is_predictive) or (isinstance(delta_base, Model) and delta_base.is_predictive):
        # no network to warm-start from: the same coding again (a target, no size asked), starting from the
        # earlier one's bound and modes, or a fit from scratch
        earlier = next((m.residual for m in (init, delta_base) if isinstance(m, Model) and m.residual is not None),
                       None)
        args = {**args, "init": None, "delta_base": None}
        if (args["target_psnr"] is not None and args["ratio"] is None and args["config"] is None
                and args["max_abs_error"] is None and args["max_bytes"] is None):
            return predictive_fit(values, start=earlier, **args)
    ratio, target_psnr, config = args["ratio"], args["target_psnr"], args["config"]
    if ratio is None and target_psnr is not None and config is None and args["init"] is None \
            and args["delta_base"] is None:
        _check_number("target_psnr", target_psnr, 0.0)
        _check_number("max_bytes", args["max_bytes"], 1, integer=True)
        return smallest_for_psnr(values, **args)
    t0 = time.perf_counter()  # the time budget and the report's seconds count the checks too
    opts = replace(fit_options(values, **args), give_up=give_up)
    model, rep = _fit_planned(opts, t0)
    # a reached target outranks a ratio (as for a sized fit), never a byte budget
    over_ratio = rep.ratio_off is not None and rep.ratio_off < 0 and rep.stop_reason not in ("target_psnr", "hopeless")
    over_bytes = opts.max_bytes is not None and rep.stored_bytes > opts.max_bytes
    if _holds_ratio(opts) and (over_ratio or over_bytes):
        return _resize_warm(opts, model, rep, t0)
    sized = opts.config is None and (opts.init is None or opts.init.is_constant) and not rep.delta
    if not sized or rep.stop_reason == "constant":
        return model, rep
    if opts.max_bytes is None:
        return _refit_for_ratio(opts, args, model, rep, t0)
    raw = 4 * box_cells(opts.owned)
    retry = None
    if rep.stored_bytes > opts.max_bytes:  # the sizing's estimate of zstd's gain was too kind: a smaller model
        retry = _asked_ratio(opts) * rep.stored_bytes / opts.max_bytes * 1.03
    elif opts.target_psnr is not None and rep.psnr < opts.target_psnr \
            and rep.stored_bytes < RETRY_BELOW_BUDGET * opts.max_bytes:
        retry = raw / opts.max_bytes  # a larger model, the whole budget
    if retry is None:
        return model, rep
    left = None if opts.time_budget_s is None else max(opts.time_budget_s - (time.perf_counter() - t0), 0.0)
    if left is not None and left <= 0:
        return model, rep
    opts2 = fit_options(values, **{**args, "ratio": retry, "time_budget_s": left, "max_bytes": None})
    model2, rep2 = _fit_planned(replace(opts2, max_bytes=opts.max_bytes, ratio=opts.ratio), time.perf_counter(),
                                asked=retry)
    better = rep2.stored_bytes <= opts.max_bytes and (rep.stored_bytes > opts.max_bytes or rep2.psnr > rep.psnr)
    model, rep = (model2, rep2) if better else (model, rep)
    return model, replace(rep, retries=1, seconds=time.perf_counter() - t0, steps=rep.steps + rep2.steps)


def _refit_for_ratio(opts: "FitOptions", args: dict, model: Model, rep: FitReport,
                     t0: float) -> tuple[Model, FitReport]:
    """A sized fit that stored fewer bytes than its ratio allows by more than :data:`RATIO_TOLERANCE` (zstd took
    the codes smaller than sizing expected), made once again with a model sized from the measured miss; the one
    whose ratio is nearer the asked one is kept. Not after a fit that stopped at its ``target_psnr`` (it needs no
    more bytes), nor without time left in ``time_budget_s``."""
    if rep.ratio_off is None or rep.ratio_off <= RATIO_TOLERANCE or rep.stop_reason in ("target_psnr", "hopeless") \
            or rep.asked_ratio is None:
        return model, rep
    left = None if opts.time_budget_s is None else opts.time_budget_s - (time.perf_counter() - t0)
    if left is not None and left <= 0:
        return model, rep
    size_for = max(1.0, rep.asked_ratio / (1 + rep.ratio_off))  # the bytes the codes took per byte expected
    opts2 = replace(opts, time_budget_s=left)
    model2, rep2 = _fit_planned(opts2, time.perf_counter(), asked=rep.asked_ratio, size_for=size_for)
    better = abs(rep2.ratio / rep.asked_ratio - 1) < abs(rep.ratio_off)
    model, rep = (model2, rep2) if better else (model, rep)
    return model, replace(rep, retries=1, seconds=time.perf_counter() - t0, steps=rep.steps + rep2.steps)


def _resize_warm(opts: "FitOptions", model: Model, rep: FitReport, t0: float) -> tuple[Model, FitReport]:
    """A warm-started fit that stored more than :data:`RATIO_TOLERANCE` over its asked ratio's bytes (or any byte
    over ``max_bytes``), made again from scratch with the largest model whose expected bytes, at what the warm
    start's parameters really took per expected byte, fit the budget: trained tables compress less than fresh ones
    (an advection block sized to 200:1 in a run's first cycle stored 141:1 from its second, every cycle after).
    The new size is kept, and its own warm starts then stay within the budget (under it by up to a size step: the
    closest the model family allows, which the report says; a model is never thinned cycle after cycle). Not
    without time left in ``time_budget_s``."""
    left = None if opts.time_budget_s is None else opts.time_budget_s - (time.perf_counter() - t0)
    if (left is not None and left <= 0) or rep.asked_ratio is None:
        return model, rep
    size_for = max(1.0, rep.asked_ratio * rep.stored_bytes / expected_bytes(model.config, opts.param_bits))
    config = config_for_ratio(box_shape(opts.owned), size_for, param_bits=opts.param_bits, strict=False)
    fresh = replace(opts, init=None, config=config, time_budget_s=left)
    model2, rep2 = _fit_planned(fresh, time.perf_counter(), asked=rep.asked_ratio)
    return model2, replace(rep2, retries=1, seconds=time.perf_counter() - t0, steps=rep.steps + rep2.steps)


#: a fit that misses its target_psnr with stored bytes under this fraction of max_bytes is made again with the
#: whole budget
RETRY_BELOW_BUDGET = 0.7


#: a sized fit's stored ratio is within this fraction of the asked one, or its report says by how much it is off
RATIO_TOLERANCE = 0.10


def _asked_ratio(opts: "FitOptions") -> float:
    """The ratio a sized model aims at: ``ratio`` (or the default), or raw / ``max_bytes`` when that is higher."""
    ratio = opts.ratio if opts.ratio is not None else DEFAULT_RATIO
    if opts.max_bytes is not None:
        by_budget = 4 * box_cells(opts.owned) / opts.max_bytes
        ratio = by_budget if opts.ratio is None else max(ratio, by_budget)
    return ratio


def _holds_ratio(opts: "FitOptions") -> bool:
    """Whether a fit that keeps a warm start's model size still holds to a ratio asked of it (``ratio`` or
    ``max_bytes``; with neither, a warm start keeps its model as it is): its report says how far off the ratio is,
    and :func:`_resize_warm` sizes it again when it stores more than the tolerance over the budget (a delta's bytes
    are the delta search's: not these)."""
    return (opts.init is not None and not opts.init.is_constant and opts.config is None and opts.eps is None
            and opts.delta_base is None and (opts.ratio is not None or opts.max_bytes is not None))


def _fit_planned(opts: "FitOptions", t0: float, asked: float | None = None,
                 size_for: float | None = None) -> tuple[Model, FitReport]:
    """One fit of checked options: plan, train, finish (``asked``: the ratio sized for, when not the options';
    ``size_for``: the ratio the model is sized for when not ``asked``, whose bytes stay the budget)."""
    plan = _plan(opts, t0, asked, size_for)
    model, rep = _constant_fit(plan) if plan.problem is None else (_residual_alone(plan) or _finish(plan, _train(plan)))
    # an asked ratio to report against: a sized fit's, a warm start's that holds one, or the one a retry was given
    sized = opts.config is None and (opts.init is None or opts.init.is_constant) and opts.eps is None
    sized = sized or _holds_ratio(opts) or asked is not None
    missed = None
    if opts.target_psnr is not None and rep.psnr < opts.target_psnr:
        missed = opts.target_psnr - rep.psnr
    asked_ratio = (asked or _asked_ratio(opts)) if sized else None
    off = None
    if asked_ratio is not None and rep.stop_reason != "constant" and not rep.delta \
            and abs(rep.ratio / asked_ratio - 1) > RATIO_TOLERANCE:
        off = rep.ratio / asked_ratio - 1  # the closest the model family came (the smallest model is the floor)
    return model, replace(rep, asked_ratio=asked_ratio, target_missed_db=missed, ratio_off=off)


# --- the steps of a fit: options -> plan -> train -> finish ---------------------------------------------------


@dataclass(frozen=True, eq=False)  # eq=False: it holds arrays, which do not compare to one bool
class FitOptions:
    """:func:`fit`'s arguments once checked (built by :func:`fit_options`).

    ``values`` is the validated float32 block and ``owned`` the box the ghost
    mask leaves; ``init`` is already ``delta_base`` when a delta warm-starts
    from its base; ``param_bits`` is checked and ``eps`` is ``max_abs_error``
    checked. The rest is as given (numbers are converted where they are used).
    """

    values: np.ndarray
    owned: Box
    association: str
    config: ModelConfig | None
    ratio: float | None
    target_psnr: float | None
    max_steps: int
    time_budget_s: float | None
    init: Model | None
    backend: str
    device: str
    seed: int
    batch_size: int | None  # None: auto_batch_size
    learning_rate: float | None
    loss: str
    boundary_weight: float
    threads: int | None
    progress: Callable[[int, float], None] | None
    param_bits: int
    eps: float | None
    delta_base: Model | None
    max_bytes: int | None = None
    #: the range PSNRs are relative to (None: the owned values')
    value_range: float | None = None
    #: stop a fit whose target is out of reach (a search's try, see :func:`_hopeless`)
    give_up: bool = False


def fit_options(values: object, *, ghost_mask: np.ndarray | None, association: str, config: ModelConfig | None,
                ratio: float | None, target_psnr: float | None, max_steps: int, time_budget_s: float | None,
                init: Model | None, backend: str, device: str, seed: int, batch_size: int | None,
                learning_rate: float | None, loss: str, boundary_weight: float, threads: int | None,
                progress: Callable[[int, float], None] | None, param_bits: int, max_abs_error: float | None,
                delta_base: Model | None, max_bytes: int | None = None,
                value_range: float | None = None, prefer: str = "size") -> FitOptions:
    """Every argument check of :func:`fit`, in its order (the first failure raises an :class:`InrValueError`)."""
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
    _check_number("batch_size", batch_size, 1, integer=True)
    _check_number("learning_rate", learning_rate, 0.0)
    _check_number("boundary_weight", boundary_weight, 0.0, allow_none=False)
    _check_number("seed", seed, 0, integer=True, allow_none=False)
    _check_number("max_bytes", max_bytes, 1, integer=True)
    if value_range is not None and not (isinstance(value_range, (int, float, np.integer, np.floating))
                                        and math.isfinite(value_range) and value_range > 0):
        raise InrValueError(f"value_range={value_range!r} is invalid: a finite number > 0 (or None: the owned "
                            "values' range)")
    bits = check_param_bits(param_bits)
    eps = None if max_abs_error is None else check_error_bound(max_abs_error)
    if max_bytes is not None and eps is not None:
        raise InrValueError(f"max_bytes={max_bytes!r} and max_abs_error={max_abs_error!r} cannot both be given: "
                            "the error bound decides the bytes of the error-bounded mode")
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
    return FitOptions(vals, owned_box(ghost, vals.shape), association, config, ratio, target_psnr, max_steps,
                      time_budget_s, init, backend, device, seed, batch_size, learning_rate, loss, boundary_weight,
                      threads, progress, bits, eps, delta_base, None if max_bytes is None else int(max_bytes),
                      None if value_range is None else float(value_range))


@dataclass(frozen=True, eq=False)
class _Plan:
    """What a fit trains and measures: the backend, the model's config, the data as the backend takes it.

    ``problem`` is None for a constant block (stored exactly, nothing to learn);
    ``delta_scales`` is the base's quantisation grid when the fit may store a delta.
    """

    opts: FitOptions
    t0: float  # when the fit started (time budget and report)
    backend: Backend
    config: ModelConfig
    owned_vals: np.ndarray
    lo: float
    hi: float
    value_range: float  # the owned values' range: PSNRs and error bounds are relative to it
    axes: tuple[np.ndarray, np.ndarray, np.ndarray]  # normalised x, y, z coordinates of the whole block
    problem: FitProblem | None
    params0: np.ndarray | None
    delta_scales: np.ndarray | None
    #: the stored bytes a model sized for a ratio must fit in (raw / asked ratio), None when it was not sized
    budget_bytes: float | None = None

    @property
    def raw_bytes(self) -> int:
        return 4 * self.owned_vals.size

    def model(self, params: np.ndarray, scales: np.ndarray | None = None) -> Model:
        """The model of trained ``params`` at the fit's ``param_bits``, on the grid ``scales`` (default: their own)."""
        o = self.opts
        return Model(self.config, params, (self.lo, self.hi), o.values.shape, o.association, o.owned, o.param_bits,
                     scales=scales)

    def measure(self, params: np.ndarray, stride: int = 1) -> tuple[float, np.ndarray]:
        """PSNR on the owned grid (every ``stride``-th sample per axis), and the values decoded there."""
        st = slice(None, None, stride)
        oz, oy, ox = box_slices(self.opts.owned)
        xs, ys, zs = self.axes
        out = self.backend.decode_grid(self.config.encoding, self.config.network, params,
                                       xs[ox][st], ys[oy][st], zs[oz][st])
        rec = (out.astype(np.float64) * (self.hi - self.lo) + self.lo).astype(np.float32)
        return psnr(self.owned_vals[st, st, st], rec, self.value_range), rec

    def as_stored(self, params: np.ndarray) -> tuple[Model, np.ndarray | None]:
        """The model these trained parameters store as (fp16, then quantised), and the base's grid if it is on it."""
        params16 = np.clip(params, -65504.0, 65504.0).astype(np.float16)
        scales = (self.delta_scales if self.delta_scales is not None
                  and grid_misfit(params16, self.config, self.opts.param_bits, self.delta_scales) is None else None)
        return self.model(params16, scales), scales


def _model_config(opts: FitOptions, owned_shape: tuple[int, int, int], constant: bool,
                  asked: float | None = None) -> ModelConfig:  # asked: the ratio to size for
    """The config asked for, else ``init``'s, else one sized for the ratio (the smallest when it is out of reach)."""
    config = opts.config
    if config is None and opts.init is not None and not opts.init.is_constant:
        config = opts.init.config
    if config is None and (constant or (opts.ratio is None and opts.target_psnr is None and opts.eps is not None)):
        # error-bounded with no ratio asked for: the residual coder predicts the data itself from what it
        # has decoded, and a larger network rarely makes it smaller (docs/rate_distortion.md)
        config = smallest_config()
    if config is None:
        ratio = asked or _asked_ratio(opts)
        config = config_near_ratio(owned_shape, ratio, param_bits=opts.param_bits)
        if config == smallest_sized_config():
            # stacklevel 4: the warning points at fit's caller (fit -> _plan -> _model_config)
            warnings.warn(f"inr.fit: ratio={ratio} is out of reach for a block of {owned_shape} samples; "
                          "using the smallest model", RuntimeWarning, stacklevel=4)
    return config


def _plan(opts: FitOptions, t0: float, asked: float | None = None, size_for: float | None = None) -> _Plan:
    """Size the model, normalise the block to [0, 1], weigh its shared faces, and pick the starting parameters."""
    vals, owned = opts.values, opts.owned
    owned_vals = vals[box_slices(owned)]
    be = get_backend(opts.backend, opts.device, opts.threads)
    lo, hi = float(vals.min()), float(vals.max())
    config = _model_config(opts, owned_vals.shape, lo == hi, size_for or asked)
    axes = grid_axes(vals.shape, opts.association)
    if lo == hi:  # constant block: stored exactly, nothing to learn
        return _Plan(opts, t0, be, config, owned_vals, lo, hi, 0.0, axes, None, None, None)
    owned_range = float(owned_vals.max()) - float(owned_vals.min())
    value_range = opts.value_range or (owned_range if owned_range > 0 else hi - lo)
    problem = FitProblem(
        config.encoding, config.network, ((vals - lo) / (hi - lo)).astype(np.float32),
        boundary_weights(vals.shape, owned, opts.boundary_weight), *axes,
        int(opts.batch_size or auto_batch_size(vals.size, config.n_params)), opts.loss,
    )
    init, bits, base = opts.init, opts.param_bits, opts.delta_base
    if init is not None and not init.is_constant:
        params0 = init.params.astype(np.float32)
    else:
        params0 = init_params(config.encoding, config.network, int(opts.seed))
    # a delta lives on its base's quantisation grid, when its parameters fit there; anything else on its own
    delta_scales = (base.scales if base is not None and not base.is_constant
                    and base.config == config and base.param_bits == bits and bits != 16 else None)
    sized = (opts.config is None and (opts.init is None or opts.init.is_constant) and opts.eps is None
             and delta_scales is None)
    budget = 4 * owned_vals.size / (asked or _asked_ratio(opts)) if sized else None
    if budget is not None and config == smallest_sized_config() and expected_bytes(config, bits) > budget:
        # past the smallest sized model: thinning its 48 table entries to the budget left hydrogen's 33^3 blocks
        # at 21-23 dB where it stored whole gives ~40 dB; it is stored whole, and the report says the ratio is off
        budget = None
    return _Plan(opts, t0, be, config, owned_vals, lo, hi, value_range, axes, problem, params0, delta_scales,
                 budget)


def _constant_fit(plan: _Plan) -> tuple[Model, FitReport]:
    """A constant block's model (its value, no network) and report."""
    opts = plan.opts
    # float16 storage (Model's default), whatever param_bits says: there are no parameters to quantise
    model = Model(plan.config, np.zeros(0, np.float16), (plan.lo, plan.hi), opts.values.shape, opts.association,
                  opts.owned)
    stored = len(model.to_bytes())
    return model, FitReport(psnr=math.inf, max_abs_error=0.0, steps=0, seconds=time.perf_counter() - plan.t0,
                            stored_bytes=stored, ratio=plan.raw_bytes / stored, backend=plan.backend.name,
                            stop_reason="constant", error_bound=0.0 if opts.eps is not None else None,
                            param_bits=opts.param_bits)


@dataclass(frozen=True, eq=False)
class _Trained:
    """Where training stopped, and why (``"max_steps"``, ``"time_budget"``, ``"target_psnr"`` or ``"hopeless"``)."""

    trainer: Trainer
    steps: int
    stop_reason: str
    #: the stored model, its delta grid (or None), PSNR and decoded owned values when a target stopped the
    #: training: measured there already, so finishing needs no second quantise and full-grid decode
    reached: tuple[Model, np.ndarray | None, float, np.ndarray] | None
    #: the last check's PSNR on the probe (None before the first check)
    probe_psnr: float | None = None


def _train(plan: _Plan) -> _Trained:
    """Train in chunks of :data:`_STEP_CHUNK` steps on the rate schedule until ``max_steps``, the time budget or
    the target PSNR (judged on the model as stored, so a stopped fit has reached it).

    The target is watched on a cheap estimate, the PSNR on a fixed probe (every k-th owned sample per axis,
    about :data:`PROBE_SAMPLES` of them); only when the probe says the target is reached is the whole owned grid
    decoded to confirm it. Checks are spaced to cost under ~20 % of the training time, by a count of samples (a
    step trains on ``batch_size`` samples, forward and backward, ~3 decodes' worth each; a check decodes the
    probe), not by a clock: the same fit stops at the same step on a busy machine as on an idle one."""
    opts = plan.opts
    max_steps = opts.max_steps
    learning_rate = opts.learning_rate
    if learning_rate is None:
        learning_rate = WARM_LEARNING_RATE if opts.init is not None else LEARNING_RATE
    final_fraction = WARM_LR_FINAL_FRACTION if opts.init is not None else LR_FINAL_FRACTION
    trainer = plan.backend.trainer(plan.problem, plan.params0, int(opts.seed))
    steps, reason, reached = 0, "max_steps", None
    train_budget_s = opts.time_budget_s
    if opts.time_budget_s is not None and opts.delta_base is not None and opts.eps is None:
        train_budget_s = DELTA_TRAIN_SHARE * opts.time_budget_s  # the rest is the delta search's
    probe = probe_stride(plan.owned_vals.shape)
    next_eval = _STEP_CHUNK  # measure early: a warm start may already be good enough
    probe_samples = math.prod(-(-n // probe) for n in plan.owned_vals.shape)
    eval_every = _STEP_CHUNK * max(1, math.ceil(5 * probe_samples / (3 * plan.problem.batch_size) / _STEP_CHUNK))
    history: list[tuple[int, float]] = []  # (steps, probe PSNR) at each check
    while steps < max_steps:
        n = min(_STEP_CHUNK, max_steps - steps)
        lr = learning_rate * final_fraction ** (steps / max_steps)
        trainer.step(n, lr)
        steps += n
        if train_budget_s is not None and time.perf_counter() - plan.t0 >= train_budget_s:
            reason = "time_budget"
            break
        if (opts.target_psnr is not None or opts.progress is not None) and steps >= next_eval and steps < max_steps:
            # judged as stored (fp16, then quantised): a target reached only before quantisation is not reached
            model, scales = plan.as_stored(trainer.params())
            p, rec = plan.measure(model.params.astype(np.float32), probe)
            if opts.target_psnr is not None and p >= opts.target_psnr and probe > 1:
                p, rec = plan.measure(model.params.astype(np.float32))  # the probe says so: confirm on every sample
            if opts.progress is not None:
                opts.progress(steps, p)
            if opts.target_psnr is not None and p >= opts.target_psnr and rec.shape == plan.owned_vals.shape:
                reason, reached = "target_psnr", (model, scales, p, rec)  # the final model, already measured
                break
            hopeless = opts.give_up and opts.target_psnr is not None and _hopeless(history, steps, p, max_steps,
                                                                                    opts.target_psnr)
            history.append((steps, p))
            if hopeless:
                reason = "hopeless"
                break
            next_eval = steps + eval_every
    return _Trained(trainer, steps, reason, reached, history[-1][1] if history else None)


#: a search's try gives up when even its extrapolated PSNR stays this many dB below the target (the probe's PSNR
#: wanders by ~0.5 dB from check to check at the rates of a fit from scratch; the best so far is extrapolated)
HOPELESS_MARGIN_DB = 0.75
#: and not before this many steps (the first steps of a fit from scratch gain the most, and vary)
HOPELESS_MIN_STEPS = 50


def _hopeless(history: list[tuple[int, float]], steps: int, psnr_now: float, max_steps: int, target: float) -> bool:
    """Whether a fit at ``psnr_now`` after ``steps`` (``history``: the earlier checks' (steps, PSNR)) cannot reach
    ``target`` by ``max_steps``. The best PSNR so far is extrapolated at its gain per doubling of the steps since
    the best at or before half of them (gains per doubling shrink as a fit converges, and the rate decays, so the
    line is optimistic); hopeless when it stays :data:`HOPELESS_MARGIN_DB` short."""
    if steps < HOPELESS_MIN_STEPS:
        return False
    earlier = [(s, p) for s, p in history if 0 < s <= steps / 2]
    if not earlier:
        return False
    best = max([psnr_now] + [p for _, p in history])
    half = max(p for _, p in earlier)
    per_doubling = max(best - half, 0.0) / math.log2(steps / earlier[-1][0])
    return best + per_doubling * math.log2(max_steps / steps) + HOPELESS_MARGIN_DB < target


def _finish(plan: _Plan, trained: _Trained) -> tuple[Model, FitReport]:
    """Quantise (unless the training stopped on a model already measured), coarsen a delta, add the residual of
    the error-bounded mode, and report on exactly what the stored bytes decode to."""
    opts = plan.opts
    if trained.stop_reason == "hopeless":
        # a search's try that missed its target, which the search never returns: no full-grid decode for it, and
        # its PSNR is the probe's
        model, _ = plan.as_stored(trained.trainer.params())
        stored = len(model.to_bytes())
        return model, FitReport(psnr=trained.probe_psnr, max_abs_error=math.nan, steps=trained.steps,
                                seconds=time.perf_counter() - plan.t0, stored_bytes=stored,
                                ratio=plan.raw_bytes / stored, backend=plan.backend.name, stop_reason="hopeless",
                                param_bits=opts.param_bits)
    if trained.reached is not None:
        model, scales, final_psnr, rec = trained.reached
    else:
        model, scales = plan.as_stored(trained.trainer.params())  # scales: the base's grid for a delta, else None
        final_psnr, rec = plan.measure(model.params.astype(np.float32))
    if plan.budget_bytes is not None and scales is None:
        model, final_psnr, rec = _fit_bytes(plan, model, final_psnr, rec)
    if scales is not None and opts.eps is None:
        # a delta: store only the moves that pay for themselves (inr.delta_search); the error-bounded mode
        # keeps every move, since its residual, not the network, decides its quality
        model, final_psnr, rec = _search_delta(plan, model, scales, final_psnr, rec)
    if opts.eps is not None:
        model.residual = compute_residual(plan.owned_vals, rec, opts.eps, plan.value_range)
        rec = model.residual.apply(rec)
        final_psnr = psnr(plan.owned_vals, rec, plan.value_range)
    stored = len(model.to_bytes(base=opts.delta_base if scales is not None else None))
    report = FitReport(psnr=final_psnr, max_abs_error=measured_max_abs_error(plan.owned_vals, rec),
                       steps=trained.steps, seconds=time.perf_counter() - plan.t0, stored_bytes=stored,
                       ratio=plan.raw_bytes / stored, backend=plan.backend.name, stop_reason=trained.stop_reason,
                       error_bound=opts.eps, param_bits=opts.param_bits, delta=scales is not None)
    if opts.progress is not None:
        opts.progress(trained.steps, final_psnr)
    return model, report


def _fit_bytes(plan: _Plan, model: Model, final_psnr: float,
               rec: np.ndarray) -> tuple[Model, float, np.ndarray]:
    """A sized model over its byte budget, its smallest table entries zeroed until it fits (bisection on their
    count: zero codes are what zstd shrinks best); ``model`` as it is when it fits already, or when thinning it
    would lose a ``target_psnr`` it reached."""
    budget = int(plan.budget_bytes)
    if len(model.to_bytes()) <= budget:
        return model, final_psnr, rec
    params = model.params.astype(np.float32)
    lo, hi = 0, int(np.count_nonzero(params[plan.config.n_params - plan.config.encoding.n_params:]))
    best = None
    while lo < hi:  # the fewest zeroed entries whose model fits
        mid = (lo + hi) // 2
        cand = plan.model(zero_smallest_entries(params, plan.config, mid))
        if len(cand.to_bytes()) <= budget:
            hi, best = mid, cand
        else:
            lo = mid + 1
    if best is None:  # even no table at all does not fit: the MLP and header alone are over the budget
        best = plan.model(zero_smallest_entries(params, plan.config, hi))
    best_psnr, best_rec = plan.measure(best.params.astype(np.float32))
    target = plan.opts.target_psnr
    if target is not None and final_psnr >= target > best_psnr:
        # a reached target outranks the exact bytes: the report's ratio_off says what it cost
        return model, final_psnr, rec
    return best, best_psnr, best_rec


#: steps of the error-bounded mode's probe fit: a network that predicts nothing interpolation misses by then
#: rarely learns to later (docs/rate_distortion.md: the residual coder's interpolation wins on every pass)
PROBE_STEPS = 100


def _residual_alone(plan: _Plan) -> tuple[Model, FitReport] | None:
    """Error-bounded mode, network sized by the fit: the residual coded alone (parameters all zero, stop_reason
    ``"probe"``, no training) when a cheap probe says the network would not pay for its bytes; None to fit it.

    The probe trains :data:`PROBE_STEPS` steps and codes every other sample per axis with and without that
    network: the network pays when the bytes it saves there, scaled to the grid, exceed its own."""
    opts = plan.opts
    if opts.eps is None or opts.config is not None or opts.init is not None or opts.delta_base is not None:
        return None
    trainer = plan.backend.trainer(plan.problem, plan.params0, int(opts.seed))
    trainer.step(min(PROBE_STEPS, opts.max_steps), LEARNING_RATE if opts.learning_rate is None else opts.learning_rate)
    probe, _ = plan.as_stored(trainer.params())
    _, net = plan.measure(probe.params.astype(np.float32), stride=2)
    sub = plan.owned_vals[::2, ::2, ::2]
    saved = (len(compute_residual(sub, None, opts.eps, plan.value_range).to_bytes())
             - len(compute_residual(sub, net, opts.eps, plan.value_range).to_bytes()))
    if saved * plan.owned_vals.size / sub.size > len(probe.to_bytes()) - len(plan.model(
            np.zeros(plan.config.n_params, np.float32)).to_bytes()):
        return None
    residual = compute_residual(plan.owned_vals, None, opts.eps, plan.value_range)
    rec = residual.apply(None)
    return _without_network(plan, residual, rec, psnr(plan.owned_vals, rec, plan.value_range), "probe")


def _without_network(plan: _Plan, residual: Residual, rec: np.ndarray, final_psnr: float,
                     stop_reason: str) -> tuple[Model, FitReport]:
    """The model of a block coded by the residual coder alone (every parameter zero: ``Model.is_predictive``),
    and its report (``rec``: what it decodes to, ``final_psnr`` its PSNR)."""
    model = plan.model(np.zeros(plan.config.n_params, np.float32))
    model.residual = residual
    stored = len(model.to_bytes())
    return model, FitReport(psnr=final_psnr, max_abs_error=measured_max_abs_error(plan.owned_vals, rec), steps=0,
                            seconds=time.perf_counter() - plan.t0, stored_bytes=stored, ratio=plan.raw_bytes / stored,
                            backend=plan.backend.name, stop_reason=stop_reason, error_bound=residual.eps,
                            param_bits=plan.opts.param_bits)


def predictive_fit(values: object, start: Residual | None = None, **args: Any) -> tuple[Model, FitReport]:
    """The block coded with no network to ``args["target_psnr"]`` (:mod:`inr.predictive`); ``args``: :func:`fit`'s
    keyword arguments (size, warm start and error bound are not used). The report's ``stop_reason`` is
    ``"predictive"`` (``"constant"`` for a constant block) and its ``error_bound`` the bound the search chose.
    ``start``: an earlier coding's residual (or its ``settings()``), where the search for the bound starts."""
    t0 = time.perf_counter()
    target = args["target_psnr"]
    args = {**_FIT_DEFAULTS, **args, "config": smallest_config(), "ratio": None, "init": None, "delta_base": None,
            "max_abs_error": None, "max_bytes": None}
    plan = _plan(fit_options(values, **args), t0)
    if plan.problem is None:
        return _constant_fit(plan)
    residual, final_psnr, rec = residual_for_psnr(plan.owned_vals, target, plan.value_range, start=start)
    if args["prefer"] == "speed":  # the table coder's faster decoding for up to TABLE_COST_SPEED more bytes
        residual.table_cost = TABLE_COST_SPEED
    model, rep = _without_network(plan, residual, rec, final_psnr, "predictive")
    if final_psnr < target:  # the search's tries ran out below it (tiny grids): said, as for a network
        rep = replace(rep, target_missed_db=target - final_psnr)
    return model, rep


def _search_delta(plan: _Plan, model: Model, scales: np.ndarray, final_psnr: float,
                   rec: np.ndarray) -> tuple[Model, float, np.ndarray]:
    """The delta with each parameter group moved only as finely as pays for itself; ``model`` when that
    would lose the target."""
    opts = plan.opts
    stride = max(1, round((plan.owned_vals.size / SEARCH_SAMPLES) ** (1 / 3)))
    # with a target, the search never lowers the PSNR below it (or below the fine delta's, if that misses it)
    keep = None if opts.target_psnr is None else min(opts.target_psnr, final_psnr)
    coarse, _ = coarsen_delta(model.params, opts.delta_base.params, plan.config, opts.param_bits, scales,
                              lambda p: plan.measure(p.astype(np.float32), stride)[0], min_psnr=keep,
                              deadline=None if opts.time_budget_s is None else plan.t0 + opts.time_budget_s)
    cand = plan.model(coarse, scales)
    cand_psnr, cand_rec = plan.measure(cand.params.astype(np.float32))
    if keep is None or cand_psnr >= keep:  # the search judged on a subsample: hold the target on all
        return cand, cand_psnr, cand_rec
    return model, final_psnr, rec


#: the search's first guess, and its bounds (ratios of the raw float32 bytes to the stored ones)
SEARCH_START_RATIO, SEARCH_MAX_RATIO = 100.0, 5000.0
#: below this ratio of the predictive coding no network is tried: a block that takes more than 1/100 of its raw
#: bytes at the target has its detail at the finest scales (noise, texture), which a hash grid stores in more
#: bytes than interpolation and context coding. Measured at 35-40 dB: networks were smaller only where the
#: predictive ratio was 267 and up (sphere_front 48^3 at 40 dB: 267 -> 323; 64^3: 581 -> 620 and 1149 -> 1589;
#: mni152_t1's smooth background blocks), never below it on four CT/MR volumes, three proxies' fields and
#: smaller spheres; trying them there was 60-80 % of the compress time of a small volume.
NETWORK_MIN_RATIO = 100.0
#: fits the search tries at most; it stops earlier once the bracket is within 30 %
SEARCH_TRIES = 7


def smallest_for_psnr(values: np.ndarray, target_psnr: float, *, time_budget_s: float | None = None,
                      **kwargs: Any) -> tuple[Model, FitReport]:
    """The smallest model (highest ratio) that reaches ``target_psnr``: the block coded with no network
    (:func:`predictive_fit`), or a network found by bisection on log(ratio) when one is smaller.

    Without ``max_abs_error`` the predictive coding comes first (a fraction of a
    network's training time). Below a ratio of :data:`NETWORK_MIN_RATIO` it is
    returned at once (no network was ever smaller there), and so it is with ``prefer="speed"``; above, its bytes
    bound the search: it starts at that
    ratio and only moves up (smaller networks), each try giving up as soon as
    its target is out of reach (``_hopeless``). When it does not fit in
    ``max_bytes`` (or with ``max_abs_error``) the search starts at 100:1 and
    moves by 4x either way until the target is bracketed. Then it halves the
    bracket (at most :data:`SEARCH_TRIES` fits; ``time_budget_s`` is shared
    out over the fits left). Each fit stops as soon as it reaches the target.
    Returns the smallest model that reached it; when none did, the best one
    tried (a RuntimeWarning says so). The report's seconds and steps are those
    of the whole search.
    """
    t0 = time.perf_counter()
    max_bytes = kwargs.pop("max_bytes", None)  # the search itself tries the larger models: no retries inside
    # no model above the byte budget: the search's ratios start at raw / max_bytes
    raw = 4.0 * _owned_cells(values, kwargs.get("ghost_mask"))
    floor = 1.0 if max_bytes is None else raw / max_bytes
    best_ok: tuple[Model, FitReport] | None = None
    best_any: tuple[Model, FitReport] | None = None
    if kwargs.get("max_abs_error") is None:
        pred = predictive_fit(values, target_psnr=target_psnr, time_budget_s=time_budget_s, max_bytes=None, **kwargs)
        if pred[1].stop_reason == "constant":
            return pred
        if pred[1].psnr >= target_psnr and (max_bytes is None or pred[1].stored_bytes <= max_bytes):
            if pred[1].ratio < NETWORK_MIN_RATIO:  # detail at the finest scales: no network will be smaller
                return pred
            if kwargs.get("prefer") == "speed":  # a network would decode 10-15x slower, whatever it saves
                return pred
            best_ok = best_any = pred
            floor = max(floor, raw / pred[1].stored_bytes)  # a network of more bytes is of no use
    ok_ratio = fail_ratio = None
    ratio, steps = (floor if best_ok is not None else max(SEARCH_START_RATIO, floor)), 0
    for tries_left in range(SEARCH_TRIES, 0, -1):
        budget = None
        if time_budget_s is not None:
            budget = max(time_budget_s - (time.perf_counter() - t0), 0.0) / tries_left
            if budget <= 0 and best_any is not None:
                break
        with warnings.catch_warnings():  # the ratios are the search's tries, not the caller's: no warning about them
            warnings.filterwarnings("ignore", message=r"inr\.fit: ratio=.* is out of reach", category=RuntimeWarning)
            # with a predictive coding in hand, a try that cannot reach the target gives up early
            model, rep = _fit(values, give_up=best_ok is not None, **{
                **_FIT_DEFAULTS, **kwargs, "ratio": ratio, "target_psnr": target_psnr, "time_budget_s": budget})
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
            if ratio <= floor:
                break
            ratio = max(ratio / 4, floor)
    chosen = best_ok or best_any
    assert chosen is not None  # the first fit always runs
    if best_ok is None:
        warnings.warn(f"inr.fit: no model size tried reached target_psnr={target_psnr} dB (best "
                      f"{chosen[1].psnr:.2f} dB at ratio {chosen[1].ratio:.1f}); returning the best", RuntimeWarning,
                      stacklevel=3)
    model, rep = chosen
    missed = None if rep.psnr >= target_psnr else target_psnr - rep.psnr
    return model, replace(rep, seconds=time.perf_counter() - t0, steps=steps, target_missed_db=missed)


def box_cells(box: Box) -> int:
    """Samples in a (z, y, x) index box."""
    return int(np.prod(box_shape(box)))


def _owned_cells(values: np.ndarray, ghost_mask: np.ndarray | None) -> int:
    shape = np.shape(values)
    return box_cells(owned_box(None if ghost_mask is None else np.asarray(ghost_mask), shape))
