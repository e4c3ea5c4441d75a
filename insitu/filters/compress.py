"""In situ compression: fit every published block of the chosen fields and cache it.

Called through ``ascent_filters.compress(...)``. Each rank fits its own domains
(no communication); the cache and the previous cycle's models (warm starts)
live in module state, since the interpreter persists between executes.
"""
from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import inr
from inr.nonfinite import NonFinite

from insitu.blueprint import blocks, published_fields
from insitu.filters.env import ExtractEnv, FilterResult
from insitu.filters.params import (CACHE, Check, FilterParamError, FilterParams, Invalid, Param, ParamSet, integer,
                                   flag, names, number, size)
from insitu.filters.session import BlockKey, current

TEMPORAL_MODES = ("none", "delta")
DURABILITY_MODES = ("cycle", "trigger")


def _device(v: Any) -> Any:
    if not isinstance(v, str) or not (v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit())):
        raise Invalid("is invalid: valid choices are 'auto', 'cpu', 'cuda', 'cuda:N'")
    return v


COMPRESS_PARAMS = ParamSet("compress", [
    Param("fields", "list of field names to compress", check=names(), default_doc="every published scalar field"),
    Param("ratio", "compression ratio the model is sized for", check=number(1.0),
          default_doc="none: 100, except that target_psnr then searches for the smallest model reaching that PSNR "
                      "(on a domain's first cycle, kept by the warm starts after it) and max_abs_error uses the "
                      "smallest model (the error-bounded residual coder rarely gains from a larger one)"),
    Param("target_psnr", "stop fitting once this PSNR (dB) is reached", check=number(0.0)),
    Param("max_bytes", "stored bytes per block at most (a model sized for raw bytes / max_bytes, or ratio if that is "
                       "higher; made again smaller if it stores more, or with the whole budget if it misses "
                       "target_psnr); not with max_abs_error", check=integer(1), default_doc="none"),
    Param("psnr_range", "what target_psnr and the PSNRs reported are relative to: 'block' (each block's own value "
                        "range) or 'field' (the field's range over every rank, one all-gather of two numbers per "
                        "call: the blocks aim at one absolute error, and the field as a whole meets the target)",
          "block", choices=("block", "field")),
    Param("prefer", "with target_psnr and no ratio or max_bytes, what a block keeps: 'size' the smaller of the "
                    "predictive coding and a network, 'speed' the predictive coding whenever it reaches the target "
                    "(no network searched: it decodes 10-15x faster and codes in a fraction of the time, for more "
                    "bytes where a network would be smaller; its codes table-coded where that costs up to 10 % more "
                    "bytes: they decode 1.3-2.7x faster)", "size", choices=tuple(inr.PREFERENCES)),
    Param("max_steps", "training steps per block at most", 1000, check=integer(1)),
    Param("time_budget_s", "seconds of fitting per block at most", check=number(0.0)),
    Param("cycle_budget_s", "seconds of fitting per cycle on this rank, shared by its blocks", check=number(0.0),
          default_doc="the simulation's, insitu.filters.session.current().cycle_budget_s, else none"),
    CACHE,
    Param("memory_budget", "bytes of models kept in memory, e.g. '2GB'", "2GB", check=size()),
    Param("disk_budget", "bytes of cache files per rank on disk", check=size(), default_doc="unlimited"),
    Param("keep_last", "keep only the newest N cycles", check=integer(1), default_doc="all"),
    Param("keep_every", "keep every k-th cycle", check=integer(1), default_doc="all"),
    Param("warm_start", "start each fit from the previous cycle's model of the domain", True, check=flag()),
    Param("max_abs_error", "error-bounded mode: every decoded owned value within this absolute error of the data "
                           "(the quantised residual is stored with the model; the name inr.fit uses)",
          check=number(0, above=True, note=" (absolute error)"), aliases=("max_error",)),
    Param("param_bits", "bits per stored parameter: 8 (quantised + zstd), 4..7, or 16 (float16)",
          inr.DEFAULT_PARAM_BITS, choices=tuple(inr.VALID_PARAM_BITS)),
    Param("temporal", "'none': every cycle's model stored whole; 'delta': temporal weight-delta coding, each model "
                      "warm-starts from the previous cycle's and stores only the change of its parameters",
          "none", choices=TEMPORAL_MODES),
    Param("keyframe_every", "with temporal='delta', a whole model at least every K cycles, so any cycle decodes "
                            "from at most K entries; a block coded without a network (target_psnr) searches for "
                            "one again after K cycles (2K, 4K, up to 8K after searches in a row that found none)",
          10, check=integer(1)),
    Param("backend", "inr training backend", "auto", choices=tuple(inr.BACKENDS)),
    Param("device", "'auto' (this rank's GPU, rank modulo the GPUs torch sees, else the CPU), 'cpu', 'cuda' or "
                    "'cuda:N'", "auto", check=Check(_device, "device")),
    Param("seed", "random seed of the fits", 0, check=integer(0)),
    Param("durability", "when this cycle's entries reach the disk: 'cycle', written behind on a thread while the "
                        "simulation goes on and done before the next cycle's compression starts (a kill loses at "
                        "most the cycle in flight); 'trigger', only when a filter reads the cache (af.render, "
                        "af.export, scenes of the reconstruction), the memory budget spills, or the run ends",
          "cycle", choices=DURABILITY_MODES),
])


class CompressParams(FilterParams):
    """The checked parameters of one ``af.compress`` call: one attribute per :data:`COMPRESS_PARAMS` entry."""

    PARAMS = COMPRESS_PARAMS

    @property
    def max_error(self) -> float | None:
        """The former name of :attr:`max_abs_error` (still accepted by ``af.compress``)."""
        return self.max_abs_error

    def check(self, action: str) -> None:
        """The rules between parameters, and the session's cycle budget when none is given."""
        if self.cycle_budget_s is None:
            self.cycle_budget_s = current().cycle_budget_s
        if self.temporal == "delta" and self.param_bits == 16:
            raise FilterParamError(f"{action}: temporal='delta' needs quantised parameters: param_bits 4..8, not 16")
        if self.temporal == "delta" and not self.warm_start:
            raise FilterParamError(f"{action}: temporal='delta' needs warm_start=True (each model starts from the "
                                   "previous cycle's)")
        if self.max_bytes is not None and self.max_abs_error is not None:
            raise FilterParamError(f"{action}: max_bytes={self.max_bytes!r} and max_abs_error="
                                   f"{self.max_abs_error!r} cannot both be given: the error bound decides the bytes")
        if self.backend == "native" and self.device.startswith("cuda"):
            raise FilterParamError(f"{action}: backend='native' runs on the CPU only; got device={self.device!r}")
        if self.backend == "tcnn" and self.device == "cpu":
            raise FilterParamError(f"{action}: backend='tcnn' needs a GPU: use device='cuda' or 'auto'")


def _gpu_device_files() -> bool:
    """Whether this node shows a GPU driver's device files (NVIDIA's /dev/nvidia<N>, ROCm's /dev/kfd)."""
    dev = Path("/dev")
    return any(dev.glob("nvidia[0-9]*")) or (dev / "kfd").exists()


def fit_device(params: CompressParams, comm: Any) -> str:
    """The device this rank fits on: ``params.device``, with 'auto' resolved.

    'auto' spreads the ranks over the GPUs torch sees (rank modulo their number:
    ranks of one node are numbered consecutively by the usual launchers), and
    falls back to the CPU where there is none or the backend is 'native'.
    """
    if params.device != "auto":
        return params.device
    if params.backend == "native":
        return "cpu"
    if "torch" not in sys.modules and not _gpu_device_files():
        return "cpu"  # no GPU driver on this node: importing torch only to count none costs seconds
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n == 0:
        return "cpu"
    rank = comm.Get_rank() if comm is not None else 0
    return f"cuda:{rank % n}"


def open_cache(path: str, comm: Any, params: CompressParams | None = None) -> Any:
    """The writer cache of this rank for ``path`` (opened once, kept for the run: see :mod:`.session`)."""
    p = params or CompressParams()
    return current().open_cache(path, comm, memory_budget=p.memory_budget, disk_budget=p.disk_budget,
                                keep_last=p.keep_last, keep_every=p.keep_every)


def close_all() -> None:
    """Flush and close every cache; warm starts and delta chains start over after this."""
    current().close_all()


def compress_published(env: ExtractEnv, params: CompressParams, result: FilterResult) -> None:
    """Fit and cache every (field, domain) of this rank; problems go to ``result``, the rest goes on."""
    session = current()
    names = params.fields or published_fields(env.data)
    t0 = time.perf_counter()
    work: list[tuple[str, list]] = []
    for name in names:
        try:
            work.append((name, list(blocks(env.data, name))))
        except Exception as exc:
            result.error(f"field '{name}': {exc}")
    # collective (psnr_range='field'): before anything that may raise on one rank only (opening the cache)
    ranges = field_ranges(env.comm, work) if params.psnr_range == "field" else {}
    try:
        cache = open_cache(params.cache, env.comm, params)
        device = fit_device(params, env.comm)
    except Exception as exc:  # reported; this rank still takes part in the collective refits below
        result.error(f"{type(exc).__name__}: {exc}")
        cache, device, work = None, "cpu", []
    tally = _Tally()
    left = sum(len(b) for _, b in work)
    done: list[_Stored] = []
    for name, field_blocks in work:
        for block in field_blocks:
            budget = params.time_budget_s
            if params.cycle_budget_s is not None:  # share what is left of the cycle's budget evenly
                share = max(params.cycle_budget_s - (time.perf_counter() - t0), 0.0) / max(left, 1)
                budget = share if budget is None else min(budget, share)
            left -= 1
            try:
                if block.ghost is None and name not in session.noted:
                    session.noted.add(name)
                    result.notes.append(f"field '{name}': no {'ascent_ghosts'} field, every sample treated as owned")
                stored = _fit(name, block, params, cache, device, ranges.get(name), budget, result)
                _store(stored, params, cache)
                done.append(stored)
                tally.add(stored, params)
            except Exception as exc:  # e.g. NaN/Inf: this domain and cycle skipped, the rest goes on
                result.error(f"{_where(name, block)}: skipped: {exc}")
    refit_low_blocks(env, params, cache, device, ranges, done, tally, result)
    if params.durability == "cycle" and cache is not None:
        cache.flush_behind()  # on disk before this rank's next put; the simulation does not wait for it
    result.stats = tally.stats(params, time.perf_counter() - t0)


def _where(name: str, block: Any) -> str:
    return f"field '{name}' domain {block.domain_id} cycle {block.cycle}"


def _block_key(params: CompressParams, name: str, block: Any) -> BlockKey:
    """What the session keeps a block's warm start, chain and search state under."""
    return (os.path.abspath(params.cache), name, block.domain_id)


@dataclasses.dataclass
class _Stored:
    """One block fitted this cycle (by :func:`_fit`), as :func:`_store` puts it in the cache."""

    name: str
    block: Any
    model: inr.Model
    report: inr.FitReport
    blob: bytes
    meta: Any  # insitu.cache.EntryMeta
    base_cycle: int | None  # the earlier cycle whose entry it is stored as a delta of (None: stored whole)
    prev: inr.Model | None  # the warm start it came from
    searched: bool  # a search for the model's size (not the coding of the last cycle again)

    @property
    def stored_bytes(self) -> int:
        return len(self.blob)


@dataclasses.dataclass
class _Tally:
    """What compress_published reports of this rank's blocks (the stats of its FilterResult)."""

    psnrs: list[float] = dataclasses.field(default_factory=list)
    ratios: list[float] = dataclasses.field(default_factory=list)
    blocks_psnr: list[tuple[str, float]] = dataclasses.field(default_factory=list)  # the summary names low ones
    fit_s: float = 0.0
    n_done: int = 0
    n_delta: int = 0
    n_predictive: int = 0
    raw: int = 0
    stored: int = 0
    asked_raw: int = 0  # the ratio asked of the sized blocks
    asked_bytes: float = 0.0
    retries: int = 0  # fits made again: by inr.fit (a missed target or byte budget) or for a low block
    off: int = 0  # stored ratios > 10 % from the asked one
    raised: int = 0  # blocks fitted again with a larger model: far under their neighbours

    def add(self, s: _Stored, params: CompressParams) -> None:
        rep = s.report
        self.psnrs.append(rep.psnr)
        self.ratios.append(rep.ratio)
        self.blocks_psnr.append((f"'{s.name}' domain {s.block.domain_id} cycle {s.block.cycle}", rep.psnr))
        if params.ratio is not None and rep.asked_ratio is not None:  # not a target_psnr search's tries
            self.asked_raw += s.model.raw_bytes
            self.asked_bytes += s.model.raw_bytes / rep.asked_ratio
            self.off += rep.ratio_off is not None
        self.retries += rep.retries
        self.timed(rep)
        self.raw += s.model.raw_bytes
        self.stored += s.stored_bytes
        self.n_done += 1
        self.n_delta += int(rep.delta)
        self.n_predictive += int(s.model.is_predictive)

    def timed(self, rep: inr.FitReport) -> None:
        """Count a fit's seconds, here and in the session's in situ accounting."""
        self.fit_s += rep.seconds
        current().fit_seconds += rep.seconds

    def replace(self, i: int, old: _Stored, new: _Stored) -> None:
        """Block ``i`` (in the order added) fitted again and stored as ``new``: its figures are the new fit's."""
        self.psnrs[i], self.ratios[i] = new.report.psnr, new.report.ratio
        self.blocks_psnr[i] = (self.blocks_psnr[i][0], new.report.psnr)
        self.stored += new.stored_bytes - old.stored_bytes
        self.n_delta += int(new.report.delta) - int(old.report.delta)
        self.n_predictive += int(new.model.is_predictive) - int(old.model.is_predictive)
        self.retries += 1
        self.raised += 1

    def stats(self, params: CompressParams, seconds: float) -> dict:
        return {"blocks": self.n_done, "deltas": self.n_delta, "predictive": self.n_predictive, "psnr": self.psnrs,
                "ratios": self.ratios, "fit_seconds": self.fit_s, "seconds": seconds, "raw_bytes": self.raw,
                "stored_bytes": self.stored, "blocks_psnr": self.blocks_psnr,
                "asked_ratio": self.asked_raw / self.asked_bytes if self.asked_bytes else None,
                "retries": self.retries, "raised": self.raised, "ratio_off": self.off,
                "target_psnr": params.target_psnr, "prefer": params.prefer}


def _fit(name: str, block: Any, params: CompressParams, cache: Any, device: str, value_range: float | None,
         budget: float | None, result: FilterResult, ratio: float | None = None, fresh: bool = False) -> _Stored:
    """Fit one block: warm-started, stored as a delta, or coded as last cycle, as the session and ``params``
    allow (``fresh``: none of these, and ``ratio`` instead of params.ratio)."""
    from insitu.cache import EntryMeta

    session = current()
    key = _block_key(params, name, block)
    prev = session.previous.get(key) if params.warm_start and not fresh else None
    if prev is not None and (prev.grid_shape != block.values.shape or prev.association != block.association
                             or prev.is_constant):
        prev = None
    base_cycle = None
    searched = prev is None
    if prev is not None and prev.is_predictive:
        # coded without a network last cycle: the same coding again (a fraction of a fit), and a new search for a
        # network once the run is keyframe_every cycles long (twice that after two searches in a row found none,
        # and so on up to SEARCH_BACKOFF times: a field that the predictive coder suits stops paying for searches)
        if params.prefer == "size" and \
                session.chains.get(key, (0, 0))[1] >= search_interval(params, session.misses.get(key, 0)):
            prev, searched = None, True
    elif prev is not None:
        base_cycle = delta_base_cycle(params, cache, key, block.cycle, session.chains)
    values, nonfinite = finite_part(block.values)
    model, report = inr.fit(values, ghost_mask=block.ghost, association=block.association,
                            ratio=ratio or params.ratio, target_psnr=params.target_psnr,
                            max_steps=params.max_steps, time_budget_s=budget, init=prev,
                            backend=params.backend, device=device, seed=params.seed,
                            param_bits=params.param_bits, max_abs_error=params.max_abs_error,
                            max_bytes=params.max_bytes, value_range=value_range, prefer=params.prefer,
                            delta_base=prev if base_cycle is not None else None)
    if not report.delta:
        base_cycle = None
    blob = None
    if nonfinite is not None:  # the NaN/Inf samples go with the model, exactly
        model = dataclasses.replace(model, nonfinite=NonFinite.of(block.owned_values))
        blob = model.to_bytes(base=prev if report.delta else None)
        report = dataclasses.replace(report, stored_bytes=len(blob), ratio=model.raw_bytes / len(blob))
        result.notes.append(f"field '{name}': {nonfinite} NaN/Inf sample(s) in a block (e.g. {_where(name, block)}): "
                            "stored exactly beside the network fitted to the finite values")
    box = block.owned_box
    origin = tuple(block.origin[2 - a] + box[a][0] * block.spacing[2 - a] for a in range(3))
    spacing = tuple(block.spacing[2 - a] for a in range(3))
    meta = EntryMeta.from_model(model, report, start=block.global_start(), origin=origin, spacing=spacing,
                                time=block.time)
    if blob is None:
        blob = model.to_bytes(base=prev if report.delta else None)
    return _Stored(name, block, model, report, blob, meta, base_cycle, prev, searched)


def _store(s: _Stored, params: CompressParams, cache: Any) -> None:
    """Put a fitted block in the cache, and keep what the next cycle starts from."""
    session = current()
    key = _block_key(params, s.name, s.block)
    cache.put(s.name, s.block.cycle, s.block.domain_id, s.blob, s.meta, base_cycle=s.base_cycle)
    # a predictive run counts as a chain too: its length decides when to search for a network again
    grows = s.report.delta or (s.prev is not None and s.prev.is_predictive and s.model.is_predictive)
    session.chains[key] = (s.block.cycle, session.chains[key][1] + 1 if grows else 1)
    if s.searched and params.ratio is None and params.target_psnr is not None:
        session.misses[key] = session.misses.get(key, 0) + 1 if s.model.is_predictive else 0
    # the warm start needs the network only: an error-bounded model's residual is not kept
    # (a predictive block keeps its residual's settings, a few dozen bytes: the next search starts there)
    session.previous[key] = dataclasses.replace(
        s.model, nonfinite=None,
        residual=s.model.residual.settings() if s.model.is_predictive and s.model.residual else None)


#: a sized block (``ratio=``, no byte budget nor error bound) this many dB under the median PSNR of its field's
#: blocks on every rank is fitted again with a model RAISE_FACTOR times larger (ratio / RAISE_FACTOR)
RAISE_BELOW_MEDIAN_DB = 6.0
RAISE_FACTOR = 2.0


def refit_low_blocks(env: ExtractEnv, params: CompressParams, cache: Any, device: str, ranges: dict[str, float],
                     done: list[_Stored], tally: _Tally, result: FilterResult) -> None:
    """No silent cliff: a sized block far under its neighbours (:data:`RAISE_BELOW_MEDIAN_DB` under the median of
    its field's blocks on every rank: the model size the ratio allows is past a quality cliff for it) is fitted
    again with a larger model (once per keyframe_every cycles at most), within the time budget per block, and
    keeps the better fit. Collective (one all-gather of a few numbers per block) whenever a ratio is asked; the
    summary names the blocks that stay low."""
    if params.ratio is None or params.max_bytes is not None or params.max_abs_error is not None:
        return
    mine = [(s.name, s.report.psnr) for s in done if math.isfinite(s.report.psnr)]
    every = [p for part in env.comm.allgather(mine) for p in part] if env.comm is not None and env.size > 1 else mine
    medians = {f: float(np.median([p for g, p in every if g == f])) for f in {g for g, _ in every}}
    raised = current().raised
    for i, old in enumerate(done):
        if not old.report.psnr < medians.get(old.name, -math.inf) - RAISE_BELOW_MEDIAN_DB:
            continue
        key = _block_key(params, old.name, old.block)
        if old.block.cycle - raised.get(key, -math.inf) < params.keyframe_every:
            continue  # tried lately: the next cycles start from that fit, larger or not (a hard block, not a cliff)
        raised[key] = old.block.cycle
        try:
            new = _fit(old.name, old.block, params, cache, device, ranges.get(old.name), params.time_budget_s,
                       result, ratio=params.ratio / RAISE_FACTOR, fresh=True)
            tally.timed(new.report)
            if new.report.psnr > old.report.psnr:  # else the first fit stays
                _store(new, params, cache)
                tally.replace(i, old, new)
        except Exception as exc:
            result.error(f"{_where(old.name, old.block)}: the fit with a larger model failed: {exc}")


#: the search for a network over a block coded without one comes back every keyframe_every cycles, doubling
#: after each search in a row that found none, up to this many times keyframe_every
SEARCH_BACKOFF = 8


def search_interval(params: Any, misses: int) -> int:
    """Cycles between two searches for a network over a predictive block, after ``misses`` searches in a row
    found none: keyframe_every, then doubling from the second miss on, at most SEARCH_BACKOFF times it."""
    return params.keyframe_every * min(2 ** max(misses - 1, 0), SEARCH_BACKOFF)


def field_ranges(comm: Any, work: list[tuple[str, list]]) -> dict[str, float]:
    """Each field's value range over the owned finite samples of every rank (``psnr_range='field'``): one
    all-gather per call, which every rank makes whatever it holds. Fields constant everywhere are left out."""
    mine = {}
    for name, field_blocks in work:
        los, his = [], []
        for block in field_blocks:
            v = np.asarray(block.owned_values)
            v = v[np.isfinite(v)]
            if v.size:
                los.append(float(v.min()))
                his.append(float(v.max()))
        if los:
            mine[name] = (min(los), max(his))
    everyone = [mine] if comm is None or comm.Get_size() == 1 else comm.allgather(mine)
    out = {}
    for name in {n for d in everyone for n in d}:
        lo = min(d[name][0] for d in everyone if name in d)
        hi = max(d[name][1] for d in everyone if name in d)
        if hi > lo:
            out[name] = hi - lo
    return out


F32_MAX = float(np.finfo(np.float32).max)


def finite_part(values: np.ndarray) -> tuple[np.ndarray, int | None]:
    """``values`` with NaN/Inf samples filled with the finite mean (what the network is fitted to), and how many
    there were (None: all finite). Finite values beyond float32's range cannot be cached: a clear error."""
    arr = np.asarray(values)
    finite = np.isfinite(arr)  # one pass over the block: this runs for every block of every cycle
    if arr.dtype.itemsize > 4:  # only wider types can hold finite values float32 cannot
        big = finite & (np.abs(arr) > F32_MAX)
        if big.any():
            raise ValueError(f"{int(big.sum())} value(s) beyond float32's range (largest |v| = "
                             f"{float(np.abs(arr[big]).max()):.3g} > {F32_MAX:.3g}): the cache stores float32")
    if finite.all():
        return values, None
    bad = ~finite
    filled = np.array(arr, dtype=np.float32)
    kept = filled[finite]
    filled[bad] = float(kept.mean()) if kept.size else 0.0
    return filled, int(bad.sum())


def delta_base_cycle(params: CompressParams, cache: Any, key: BlockKey, cycle: int,
                     chains: dict[BlockKey, tuple[int, int]]) -> int | None:
    """The cycle this block's model may be stored against as a delta, or None for a keyframe:
    temporal='delta', the chain shorter than keyframe_every, and its newest entry still cached."""
    if params.temporal != "delta" or key not in chains:
        return None
    last, length = chains[key]
    if length >= params.keyframe_every or last >= cycle or (key[1], last, key[2]) not in cache:
        return None
    return last


def summarise(results: list[FilterResult]) -> str:
    """One line for rank 0: blocks, PSNR, ratio, time, errors of all ranks."""
    stats = [r.stats for r in results if r.stats]
    n = sum(s["blocks"] for s in stats)
    psnrs = [p for s in stats for p in s["psnr"]]
    finite = [p for p in psnrs if math.isfinite(p)]
    raw = sum(s["raw_bytes"] for s in stats)
    stored = sum(s["stored_bytes"] for s in stats)
    errors = sum(len(r.errors) for r in results)
    notes = {note for r in results for note in r.notes}
    line = f"compress: {n} blocks on {len(results)} ranks"
    if n:
        deltas = sum(s.get("deltas", 0) for s in stats)
        line += f" ({deltas} stored as deltas)" if deltas else ""
        coded = sum(s.get("predictive", 0) for s in stats)
        why = ("prefer='speed'" if any(s.get("prefer") == "speed" for s in stats)
               else "the predictive coder was smaller")
        line += f" ({coded} coded without a network: {why})" if coded else ""
        asked = [s.get("asked_ratio") for s in stats if s.get("asked_ratio")]
        line += (f", ratio {raw / max(stored, 1):.1f}:1"
                 + (f" (asked {sum(asked) / len(asked):.1f})" if asked else "")
                 + f", PSNR min {min(finite) if finite else math.inf:.2f} "
                 f"mean {sum(finite) / len(finite) if finite else math.inf:.2f} dB, "
                 f"fit {max(s['seconds'] for s in stats):.2f} s")
        retried = sum(s.get("retries", 0) for s in stats)
        raised = sum(s.get("raised", 0) for s in stats)
        line += f", {retried} block(s) fitted again" if retried else ""
        line += f" ({raised} with a larger model: far under their field's median)" if raised else ""
        off = sum(s.get("ratio_off", 0) for s in stats)
        line += f", {off} block(s) > 10 % from the asked ratio (the closest model size)" if off else ""
    if errors:
        line += f", {errors} problem(s) reported above"
    low = low_blocks(stats)
    if low:
        line += (f"\n{' ' * 12}note: {len(low)} block(s) stayed low: "
                 + ", ".join(f"{where} {p:.1f} dB" for where, p in low[:LOW_NAMED])
                 + (f" ... (+{len(low) - LOW_NAMED} more)" if len(low) > LOW_NAMED else ""))
    for note in sorted(notes):
        line += f"\n{' ' * 12}note: {note}"
    return line


#: a block this many dB under the median of all blocks (or under target_psnr) is named as low in the summary
LOW_BELOW_MEDIAN_DB = 10.0
#: the summary names at most this many low blocks
LOW_NAMED = 8


def low_blocks(stats: list[dict]) -> list[tuple[str, float]]:
    """(block, PSNR) of the blocks under target_psnr or :data:`LOW_BELOW_MEDIAN_DB` under the median of all
    blocks of all ranks (their neighbours' quality), lowest first."""
    every = [(w, p) for s in stats for w, p in s.get("blocks_psnr", ()) if math.isfinite(p)]
    if not every:
        return []
    median = sorted(p for _, p in every)[len(every) // 2]
    target = next((s["target_psnr"] for s in stats if s.get("target_psnr") is not None), None)
    return sorted(((w, p) for w, p in every
                   if p < median - LOW_BELOW_MEDIAN_DB or (target is not None and p < target - 0.5)),
                  key=lambda wp: wp[1])
