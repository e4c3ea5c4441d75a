"""In situ compression: fit every published block of the chosen fields and cache it.

Called through ``ascent_filters.compress(...)``. Each rank fits its own domains
(no communication); the cache and the previous cycle's models (warm starts)
live in module state, since the interpreter persists between executes.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from typing import Any

import inr

from insitu.blueprint import blocks, published_fields
from insitu.filters.env import ExtractEnv, FilterParamError, FilterResult, check_kwargs
from insitu.filters.session import BlockKey, current

COMPRESS_PARAMS = {
    "fields": "list of field names to compress (default: every published scalar field)",
    "ratio": "compression ratio the model is sized for (default 100); when not given, target_psnr searches for "
             "the smallest model reaching that PSNR (on a domain's first cycle, kept by the warm starts after it) "
             "and max_error uses the smallest model (the error-bounded residual coder rarely gains from a "
             "larger one)",
    "target_psnr": "stop fitting once this PSNR (dB) is reached (default: none)",
    "max_steps": "training steps per block at most (default 1000)",
    "time_budget_s": "seconds of fitting per block at most (default: none)",
    "cycle_budget_s": "seconds of fitting per cycle on this rank, shared by its blocks (default: the "
                      "simulation's, insitu.filters.session.current().cycle_budget_s, else none)",
    "cache": "cache directory (default 'run.cache')",
    "memory_budget": "bytes of models kept in memory, e.g. '2GB' (default '2GB')",
    "disk_budget": "bytes of cache files per rank on disk (default: unlimited)",
    "keep_last": "keep only the newest N cycles (default: all)",
    "keep_every": "keep every k-th cycle (default: all)",
    "warm_start": "start each fit from the previous cycle's model of the domain (default True)",
    "max_error": "error-bounded mode: every decoded owned value within this absolute error of the data (the "
                 "quantised residual is stored with the model; default: none)",
    "param_bits": "bits per stored parameter: 8 (default, quantised + zstd), 4..7, or 16 (float16)",
    "temporal": "'none' (default: every cycle's model stored whole) or 'delta' (temporal weight-delta coding: "
                "each model warm-starts from the previous cycle's and stores only the change of its parameters)",
    "keyframe_every": "with temporal='delta', a whole model at least every K cycles, so any cycle decodes from at "
                      "most K entries (default 10)",
    "backend": f"one of {list(inr.BACKENDS)} (default 'auto')",
    "device": "'auto' (default: this rank's GPU, rank modulo the GPUs torch sees, else the CPU), 'cpu', 'cuda' "
              "or 'cuda:N'",
    "seed": "random seed of the fits (default 0)",
}


TEMPORAL_MODES = ("none", "delta")

@dataclass
class CompressParams:
    fields: list[str] | None = None
    ratio: float | None = None  # None: inr.fit decides (see COMPRESS_PARAMS)
    target_psnr: float | None = None
    max_steps: int = 1000
    time_budget_s: float | None = None
    cycle_budget_s: float | None = None
    cache: str = "run.cache"
    memory_budget: Any = "2GB"
    disk_budget: Any = None
    keep_last: int | None = None
    keep_every: int | None = None
    warm_start: bool = True
    max_error: float | None = None
    param_bits: int = inr.DEFAULT_PARAM_BITS
    temporal: str = "none"
    keyframe_every: int = 10
    backend: str = "auto"
    device: str = "auto"
    seed: int = 0

    @classmethod
    def from_kwargs(cls, kwargs: dict) -> "CompressParams":
        check_kwargs("compress", kwargs, COMPRESS_PARAMS)
        p = cls(**kwargs)
        if p.fields is not None:
            if isinstance(p.fields, str):
                p.fields = [p.fields]
            if not isinstance(p.fields, (list, tuple)) or not all(isinstance(f, str) for f in p.fields):
                raise FilterParamError(f"compress: fields={p.fields!r} must be a list of field names")
            p.fields = list(p.fields)
        if p.cycle_budget_s is None:
            p.cycle_budget_s = current().cycle_budget_s
        if p.max_error is not None and (isinstance(p.max_error, bool) or not isinstance(p.max_error, (int, float))
                                        or not math.isfinite(p.max_error) or p.max_error <= 0):
            raise FilterParamError(f"compress: max_error={p.max_error!r} must be a number > 0 (absolute error)")
        if isinstance(p.param_bits, bool) or p.param_bits not in inr.VALID_PARAM_BITS:
            raise FilterParamError(f"compress: param_bits={p.param_bits!r} is invalid: valid choices are "
                                   f"{list(inr.VALID_PARAM_BITS)}")
        for name, lo in (("ratio", 1.0), ("target_psnr", 0.0), ("time_budget_s", 0.0), ("cycle_budget_s", 0.0)):
            v = getattr(p, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                                  or v < lo):
                raise FilterParamError(f"compress: {name}={v!r} must be a number >= {lo}")
        if p.temporal not in TEMPORAL_MODES:
            raise FilterParamError(f"compress: temporal={p.temporal!r} is invalid: valid choices are "
                                   f"{list(TEMPORAL_MODES)}")
        if p.temporal == "delta" and p.param_bits == 16:
            raise FilterParamError("compress: temporal='delta' needs quantised parameters: param_bits 4..8, not 16")
        if p.temporal == "delta" and not p.warm_start:
            raise FilterParamError("compress: temporal='delta' needs warm_start=True (each model starts from the "
                                   "previous cycle's)")
        for name in ("max_steps", "keep_last", "keep_every", "keyframe_every", "seed"):
            v = getattr(p, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "seed" else 1)):
                raise FilterParamError(f"compress: {name}={v!r} must be a positive integer")
        if p.backend not in inr.BACKENDS:
            raise FilterParamError(f"compress: backend={p.backend!r} is invalid: valid choices are {list(inr.BACKENDS)}")
        if not isinstance(p.device, str) or not (p.device in ("auto", "cpu", "cuda") or
                                                   (p.device.startswith("cuda:") and p.device[5:].isdigit())):
            raise FilterParamError(f"compress: device={p.device!r} is invalid: valid choices are 'auto', 'cpu', "
                                   "'cuda', 'cuda:N'")
        if p.backend == "native" and p.device.startswith("cuda"):
            raise FilterParamError(f"compress: backend='native' runs on the CPU only; got device={p.device!r}")
        if p.backend == "tcnn" and p.device == "cpu":
            raise FilterParamError("compress: backend='tcnn' needs a GPU: use device='cuda' or 'auto'")
        if not isinstance(p.cache, (str, os.PathLike)) or not str(p.cache):
            raise FilterParamError(f"compress: cache={p.cache!r} must be a directory path")
        return p


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


def flush_all() -> None:
    """Write every cache's in-memory entries to disk."""
    current().flush_all()


def close_all() -> None:
    """Flush and close every cache; warm starts and delta chains start over after this."""
    current().close_all()


def compress_published(env: ExtractEnv, params: CompressParams, result: FilterResult) -> None:
    """Fit and cache every (field, domain) of this rank; problems go to ``result``, the rest goes on."""
    from insitu.cache import EntryMeta

    session = current()
    names = params.fields or published_fields(env.data)
    cache = open_cache(params.cache, env.comm, params)
    device = fit_device(params, env.comm)
    psnrs, ratios, fit_s, n_done, n_delta = [], [], 0.0, 0, 0
    raw = stored = 0
    t0 = time.perf_counter()
    work: list[tuple[str, list]] = []
    for name in names:
        try:
            work.append((name, list(blocks(env.data, name))))
        except Exception as exc:
            result.error(f"field '{name}': {exc}")
    left = sum(len(b) for _, b in work)
    for name, field_blocks in work:
        for block in field_blocks:
            budget = params.time_budget_s
            if params.cycle_budget_s is not None:  # share what is left of the cycle's budget evenly
                share = max(params.cycle_budget_s - (time.perf_counter() - t0), 0.0) / max(left, 1)
                budget = share if budget is None else min(budget, share)
            left -= 1
            where = f"field '{name}' domain {block.domain_id} cycle {block.cycle}"
            try:
                if block.ghost is None and name not in session.noted:
                    session.noted.add(name)
                    result.notes.append(f"field '{name}': no {'ascent_ghosts'} field, every sample treated as owned")
                key = (os.path.abspath(params.cache), name, block.domain_id)
                prev = session.previous.get(key) if params.warm_start else None
                if prev is not None and (prev.grid_shape != block.values.shape or prev.association != block.association
                                         or prev.is_constant):
                    prev = None
                base_cycle = delta_base_cycle(params, cache, key, block.cycle, session.chains) if prev is not None else None
                model, report = inr.fit(block.values, ghost_mask=block.ghost, association=block.association,
                                        ratio=params.ratio, target_psnr=params.target_psnr,
                                        max_steps=params.max_steps, time_budget_s=budget, init=prev,
                                        backend=params.backend, device=device, seed=params.seed,
                                        param_bits=params.param_bits, max_abs_error=params.max_error,
                                        delta_base=prev if base_cycle is not None else None)
                if not report.delta:
                    base_cycle = None
                box = block.owned_box
                origin = tuple(block.origin[2 - a] + box[a][0] * block.spacing[2 - a] for a in range(3))
                spacing = tuple(block.spacing[2 - a] for a in range(3))
                meta = EntryMeta.from_model(model, report, start=block.global_start(), origin=origin,
                                            spacing=spacing, time=block.time)
                cache.put(name, block.cycle, block.domain_id, model.to_bytes(base=prev if report.delta else None), meta,
                          base_cycle=base_cycle)
                session.chains[key] = (block.cycle, session.chains[key][1] + 1 if report.delta else 1)
                n_delta += int(report.delta)
                # the warm start needs the network only: an error-bounded model's residual is not kept
                session.previous[key] = model if model.residual is None else dataclasses.replace(model, residual=None)
                psnrs.append(report.psnr)
                ratios.append(report.ratio)
                fit_s += report.seconds
                session.fit_seconds += report.seconds
                raw += model.raw_bytes
                stored += report.stored_bytes
                n_done += 1
            except Exception as exc:  # e.g. NaN/Inf: this domain and cycle skipped, the rest goes on
                result.error(f"{where}: skipped: {exc}")
    result.stats = {"blocks": n_done, "deltas": n_delta, "psnr": psnrs, "ratios": ratios, "fit_seconds": fit_s,
                    "seconds": time.perf_counter() - t0, "raw_bytes": raw, "stored_bytes": stored}


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
        line += (f", ratio {raw / max(stored, 1):.1f}:1, PSNR min {min(finite) if finite else math.inf:.2f} "
                 f"mean {sum(finite) / len(finite) if finite else math.inf:.2f} dB, "
                 f"fit {max(s['seconds'] for s in stats):.2f} s")
    if errors:
        line += f", {errors} problem(s) reported above"
    for note in sorted(notes):
        line += f"\n{' ' * 12}note: {note}"
    return line
