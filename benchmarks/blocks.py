"""Whole volume vs per-rank blocks: the ratio at 40 dB after the domain split, beside SZ3 whole and per block.

    python benchmarks/blocks.py > blocks.json
    python benchmarks/blocks.py --from-json blocks.json --markdown docs/blocks.md
    python benchmarks/blocks.py --quick        # one small field, splits 1 and 2 (a few minutes on 2 cores)
    python benchmarks/blocks.py --volumes hydrogen ironprot carotid --splits 1 2   # real volumes

``--volumes`` (no names: every one) takes the public volumes of
``benchmarks/volumes.py`` instead of the analytic fields (fetched on first use;
``$INSITU_VOLUMES_DIR`` / ``$INSITU_VOLUMES_MIRRORS`` as there); a volume whose
longest axis exceeds ``--max-side`` is subsampled by a whole stride on every
axis (the JSON's notes say so).

For every field and split (1: whole; 2: 2x2x2 blocks; 4: 4x4x4), each block
is fitted on its own as a rank does it in ``af.compress``: its owned part plus
one ghost layer towards each neighbour, ``inr.fit(..., ghost_mask=...)``; the
stored bytes are decoded (``Model.from_bytes``), the owned parts stitched back
into the full grid, and bytes and PSNR measured over it (ratio = raw float32
bytes of the grid / sum of the stored model bytes; PSNR = 20 log10(range) -
10 log10(MSE) over the full grid). The ratio at 40 dB comes from a small
search on the asked ratio (x2 steps until 40 dB is bracketed, then geometric
bisection), interpolated in log(ratio) between the two stored points around
40 dB. Every fit's asked and stored ratio is kept ("honoured": stored within
+-10 % of asked). SZ3 (``pysz``, the ``[bench]`` extra) is swept over
absolute error bounds on the whole grid and on each owned block (no ghosts:
SZ3 needs none), and its ratio at 40 dB interpolated the same way.

Fields: the analytic fields of ``sims/analytic.py`` and the proxies'
(``advection.temperature@C``, ``gray_scott.v@C``, run in-process); see
``benchmarks/rate_distortion.py``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import inr  # noqa: E402
from benchmarks.rate_distortion import (PEER_REL_ERRORS, TARGET_PSNR, benchmark_fields, log, ratio_at,  # noqa: E402
                                         run_argv)
from sims.decomposition import split  # noqa: E402

DEFAULT_FIELDS = ["advection.temperature@40", "gray_scott.v@40", "sphere_front"]
#: the first asked ratio of the search, its bounds, and the fits it makes at most per field and split
SEARCH_START, SEARCH_MIN, SEARCH_MAX, SEARCH_FITS = 100.0, 2.0, 4000.0, 6
#: a stored ratio within this fraction of the asked one is honoured
HONOURED = 0.10
Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


def blocks(shape: tuple[int, ...], parts: int, ghosts: int = 1) -> list[tuple[Box, Box]]:
    """(owned box, box with ghosts) of each block of a ``parts``^3 split of ``shape``, in global indices."""
    out = []
    axes = [split(n, parts) for n in shape]
    for bz in axes[0]:
        for by in axes[1]:
            for bx in axes[2]:
                owned = (bz, by, bx)
                full = tuple((max(a - ghosts, 0), min(b + ghosts, n)) for (a, b), n in zip(owned, shape))
                out.append((owned, full))  # type: ignore[arg-type]
    return out


def _sl(box: Box, origin: tuple[int, ...] = (0, 0, 0)) -> tuple[slice, ...]:
    return tuple(slice(a - o, b - o) for (a, b), o in zip(box, origin))


#: a block's share of the bytes is kept within this factor of an even one (every model has a floor, and the
#: estimate is rough: a block it calls nearly free still needs its large-scale shape)
CONTENT_WEIGHT_CLIP = 4.0
#: the complexity estimate reads at most about this many samples of a block (a whole-stride subsample past it)
COMPLEXITY_SAMPLES = 1 << 18


def block_complexity(values: np.ndarray, error: float) -> float:
    """Bits per sample a predictive coder is expected to need on ``values`` (z, y, x) at an absolute ``error``.

    The 3-D Lorenzo residual ``r`` of a subsample (every ``s``-th sample per axis, ``s`` the smallest whole stride
    leaving about :data:`COMPLEXITY_SAMPLES`), counted as ``max(0, log2(|r| / error))`` per sample: the rate of
    reverse water-filling, so a block whose residual stays under the error costs nothing and a front costs the
    log of its jump. Cheap (a few array passes), and in the absolute units of the field: blocks of one field
    compare without knowing each other's ranges.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 3 or min(v.shape) < 2:
        raise ValueError(f"values of shape {v.shape} must be a 3-D block of at least 2 samples per axis")
    if not (error > 0 and math.isfinite(error)):
        raise ValueError(f"error={error!r} is invalid: expected a positive number")
    s = max(1, int(math.ceil((v.size / COMPLEXITY_SAMPLES) ** (1 / 3))))
    v = v[::s, ::s, ::s]
    r = (v[1:, 1:, 1:] - v[:-1, 1:, 1:] - v[1:, :-1, 1:] - v[1:, 1:, :-1]
         + v[:-1, :-1, 1:] + v[:-1, 1:, :-1] + v[1:, :-1, :-1] - v[:-1, :-1, :-1])
    return float(np.mean(np.maximum(0.0, np.log2(np.abs(r) / error + 1e-300))))


def content_weights(complexities: list[float], samples: list[int], clip: float = CONTENT_WEIGHT_CLIP) -> list[float]:
    """Weights ``w`` that move a byte budget between blocks by their :func:`block_complexity`: block ``i`` is asked
    for ``ratio / w[i]``, and ``sum(w[i] * samples[i]) == sum(samples)``, so the blocks together store the asked
    ratio. ``w`` is proportional to the complexity, within ``clip`` of 1 (then renormalised)."""
    if len(complexities) != len(samples) or not samples:
        raise ValueError("complexities and samples must be two non-empty lists of one length")
    c = np.asarray(complexities, dtype=np.float64)
    n = np.asarray(samples, dtype=np.float64)
    mean = float(np.sum(c * n) / np.sum(n))
    w = np.ones_like(c) if mean <= 0 else np.clip(c / mean, 1 / clip, clip)
    return list(w * np.sum(n) / np.sum(w * n))


def split_weights(values: np.ndarray, parts: int, sizing: str) -> list[float]:
    """Each block's share of the bytes: 1 (``even``: every block asked for the ratio) or
    :func:`content_weights` of the owned blocks' :func:`block_complexity` at the error of
    40 dB over the field's range (``content``: what one all-reduce of the range and the complexity sum gives a rank)."""
    bs = blocks(values.shape, parts)
    if sizing == "even":
        return [1.0] * len(bs)
    rmse = float(values.max() - values.min()) * 10 ** (-TARGET_PSNR / 20)
    owned = [values[_sl(o)] for o, _ in bs]
    return content_weights([block_complexity(b, rmse) for b in owned], [b.size for b in owned])


def inr_split(values: np.ndarray, parts: int, ratio: float, steps: int | None, seed: int = 0,
              weights: list[float] | None = None) -> dict:
    """Fit each block of a ``parts``^3 split (one ghost layer) at ``ratio / weights[i]`` (default weights 1); the
    stitched grid's bytes and PSNR."""
    ws = weights or [1.0] * parts ** 3
    out = fit_split(values, parts, lambda i: {"ratio": max(1.0, ratio / ws[i]), "seed": seed,
                                              **({} if steps is None else {"max_steps": steps})})
    return {"asked": ratio, **out}


def engine_split(values: np.ndarray, parts: int, target: float, steps: int | None, seed: int = 0) -> dict:
    """Each block of a ``parts``^3 split compressed as ``af.compress(target_psnr=target, psnr_range='field')``
    does it on a rank (``inr.fit(target_psnr=..., value_range=<the field's range>)``: the predictive coding, or a
    smaller network); the stitched grid's bytes and PSNR, and how many blocks kept no network."""
    rng = float(values.max() - values.min())
    out = fit_split(values, parts, lambda i: {"target_psnr": target, "seed": seed, "value_range": rng,
                                              **({} if steps is None else {"max_steps": steps})})
    return {"asked_psnr": target, **out}


def fit_split(values: np.ndarray, parts: int, fit_kwargs: Callable[[int], dict]) -> dict:
    """Fit block i of a ``parts``^3 split (one ghost layer) with ``inr.fit(..., **fit_kwargs(i))``, decode the
    stored bytes and stitch the owned parts: the grid's bytes, ratio and PSNR, each block's PSNR."""
    out = np.empty_like(values)
    total, t0, block_psnr, fit_s, predictive = 0, time.perf_counter(), [], 0.0, 0
    for i, (owned, full) in enumerate(blocks(values.shape, parts)):
        origin = tuple(a for a, _ in full)
        ghost = np.ones(tuple(b - a for a, b in full), bool)
        ghost[_sl(owned, origin)] = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "out of reach" warnings: the stored ratio says it
            model, rep = inr.fit(values[_sl(full)], ghost_mask=ghost, backend="native", **fit_kwargs(i))
        blob = model.to_bytes()
        total += len(blob)
        fit_s += rep.seconds
        predictive += int(model.is_predictive)
        block_psnr.append(None if math.isinf(rep.psnr) else rep.psnr)
        out[_sl(owned)] = inr.Model.from_bytes(blob).decode(backend="native")
    p = inr.psnr(values, out)
    return {"ratio": values.nbytes / total, "bytes": total, "psnr": None if math.isinf(p) else p,
            "block_psnr": block_psnr, "fit_s": fit_s, "seconds": time.perf_counter() - t0,
            "predictive_blocks": predictive}


def sz3_split(values: np.ndarray, parts: int, eps: float) -> dict:
    """SZ3 at absolute error ``eps`` on each owned block of a ``parts``^3 split; the stitched grid's bytes and PSNR."""
    from benchmarks.rate_distortion import sz3

    out = np.empty_like(values)
    total = 0
    for owned, _ in blocks(values.shape, parts):
        comp, back = sz3(np.ascontiguousarray(values[_sl(owned)]), eps)
        total += len(comp)
        out[_sl(owned)] = np.asarray(back(), np.float32).reshape(out[_sl(owned)].shape)
    p = inr.psnr(values, out)
    return {"abs_error": eps, "ratio": values.nbytes / total, "bytes": total, "psnr": None if math.isinf(p) else p}


#: SZ3's sweep is refined by bisection of its error bound until a point lands this close above 40 dB
SZ3_CLOSE_DB, SZ3_BISECTIONS = 0.25, 12


def sz3_points(values: np.ndarray, parts: int) -> list[dict]:
    """SZ3 on a ``parts``^3 split over the error bounds of the sweep (``PEER_REL_ERRORS`` of the range), then
    bisected (log bound) between the pair around 40 dB until a point is within :data:`SZ3_CLOSE_DB` above it: the
    ratio interpolated at 40 dB is then read between two close points, not across half a decade."""
    rng = float(values.max() - values.min())
    pts = [sz3_split(values, parts, rel * rng) for rel in PEER_REL_ERRORS]
    for _ in range(SZ3_BISECTIONS):
        ok = [p for p in pts if p["psnr"] is None or p["psnr"] >= TARGET_PSNR]
        bad = [p for p in pts if p["psnr"] is not None and p["psnr"] < TARGET_PSNR]
        if not ok or not bad:
            break
        a = max(ok, key=lambda p: p["abs_error"])
        b = min(bad, key=lambda p: p["abs_error"])
        if a["psnr"] is not None and a["psnr"] - TARGET_PSNR <= SZ3_CLOSE_DB:
            break
        pts.append(sz3_split(values, parts, math.sqrt(a["abs_error"] * b["abs_error"])))
    return pts


def search_40db(evaluate: Callable[[float], dict], fits: int = SEARCH_FITS, start: float = SEARCH_START) -> list[dict]:
    """Points of ``evaluate(asked ratio)`` around 40 dB: x2 steps from ``start`` until it is
    bracketed, then geometric bisection of the asked ratio, ``fits`` evaluations at most."""
    pts: list[dict] = []
    ok = bad = None  # the highest asked ratio reaching 40 dB, the lowest missing it
    r = min(max(start, SEARCH_MIN), SEARCH_MAX)
    for _ in range(fits):
        p = evaluate(r)
        pts.append(p)
        if p["psnr"] is None or p["psnr"] >= TARGET_PSNR:
            ok = r if ok is None else max(ok, r)
        else:
            bad = r if bad is None else min(bad, r)
        if ok is not None and bad is not None:
            if bad / ok < 1.15:
                break
            r = math.sqrt(ok * bad)
        elif ok is not None:
            if r >= SEARCH_MAX:
                break
            r = min(2 * r, SEARCH_MAX)
        else:
            if r <= SEARCH_MIN:
                break
            r = max(r / 2, SEARCH_MIN)
    return pts


def bench_field(name: str, values: np.ndarray, args: argparse.Namespace, sz3_ok: bool) -> dict:
    rng = float(values.max() - values.min())
    res: dict[str, Any] = {"shape": list(values.shape), "value_range": rng, "splits": {}}
    sz3_whole = None
    if sz3_ok:  # first: its ratio at 40 dB starts the INR's searches (where the comparison is decided)
        sz3_whole = sz3_points(values, 1)
    start = ratio_at(sz3_whole) if sz3_whole else None
    for parts in args.splits:
        for sizing in (["even"] if parts == 1 else args.sizing):
            weights = split_weights(values, parts, sizing)

            def evaluate(r: float, parts: int = parts, sizing: str = sizing, weights: list = weights) -> dict:
                p = inr_split(values, parts, r, args.steps, args.seed, weights)
                log(f"{name} split {parts}^3 ({sizing}) asked {r:.1f}: stored {p['ratio']:.1f}x, {p['psnr']:.2f} dB "
                    f"(blocks min {min(b for b in p['block_psnr'] if b is not None):.1f} dB), {p['seconds']:.1f} s")
                return p
            row: dict[str, Any] = {"blocks": parts ** 3, "sizing": sizing, "weights": weights, "inr": []}
            if args.ratio_search:
                pts = search_40db(evaluate, args.fits, round(start) if start else SEARCH_START)
                at = ratio_at(pts)
                # no point under 40 dB (the model family's floor reached first): the best stored ratio is a lower
                # bound
                floor = max((p["ratio"] for p in pts if p["psnr"] is None or p["psnr"] >= TARGET_PSNR), default=None)
                row.update(inr=pts, inr_ratio_at_40db=at or floor, at_least=at is None and floor is not None)
            if sizing == "even":
                row["engine"] = engine_points(name, values, parts, args)
                row["engine_ratio_at_40db"] = ratio_at(row["engine"])
            if sz3_ok:
                sz = sz3_whole if parts == 1 else sz3_points(values, parts)
                row["sz3"] = sz
                row["sz3_ratio_at_40db"] = ratio_at(sz)
            res["splits"][str(parts) if sizing == "even" else f"{parts}:{sizing}"] = row
    whole = res["splits"].get("1", {})
    for row in res["splits"].values():
        a, w = row.get("inr_ratio_at_40db"), whole.get("inr_ratio_at_40db")
        row["bytes_vs_whole"] = w / a if a and w else None  # bytes at 40 dB relative to the whole-volume model
        s = whole.get("sz3_ratio_at_40db")
        row["vs_sz3_whole"] = a / s if a and s else None
        e, ew = row.get("engine_ratio_at_40db"), whole.get("engine_ratio_at_40db")
        row["engine_bytes_vs_whole"] = ew / e if e and ew else None
        row["engine_vs_sz3_whole"] = e / s if e and s else None
        if row["inr"]:
            row["honoured"] = sum(abs(p["ratio"] / p["asked"] - 1) <= HONOURED for p in row["inr"]) / len(row["inr"])
    return res


#: evaluations of the engine per split at most: per-block targets from 40 dB down, until the grid's PSNR is
#: bracketed around 40 dB
ENGINE_POINTS = 4


def engine_points(name: str, values: np.ndarray, parts: int, args: argparse.Namespace) -> list[dict]:
    """The split compressed by :func:`engine_split` at targets around 40 dB: each block aims at the target over
    the field's range, so the grid lands just above it; each next target is lowered by the overshoot, until a
    point falls below 40 dB (the ratio at 40 dB is interpolated between the two)."""
    pts: list[dict] = []
    target = TARGET_PSNR
    for _ in range(ENGINE_POINTS):
        p = engine_split(values, parts, target, args.steps, args.seed)
        log(f"{name} split {parts}^3 engine at {target:.2f} dB per block: stored {p['ratio']:.1f}x, "
            f"{p['psnr']:.2f} dB overall, {p['predictive_blocks']}/{parts ** 3} blocks without a network, "
            f"{p['seconds']:.1f} s")
        pts.append(p)
        if p["psnr"] is None or p["psnr"] < TARGET_PSNR:
            break
        target -= max(p["psnr"] - TARGET_PSNR, 0.0) + 0.25
    return pts


def run(args: argparse.Namespace) -> dict:
    notes: list[str] = []
    fields = benchmark_fields(args.volumes, args.fields, args.size, args.max_side, notes)
    try:
        import pysz  # noqa: F401
        sz3_ok = True
    except Exception as exc:
        sz3_ok = False
        notes.append(f"sz3 skipped: cannot import pysz ({type(exc).__name__}: {exc}); pip install '.[bench]'")
    doc = {"meta": {"size": None if args.volumes is not None else args.size, "argv": run_argv(sys.argv[1:]), "splits": list(args.splits), "steps": args.steps, "seed": args.seed,
                    "target_psnr": TARGET_PSNR, "threads": os.environ.get("OMP_NUM_THREADS"),
                    "machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()},
           "fields": {}, "notes": notes}
    for name, values in fields.items():
        doc["fields"][name] = bench_field(name, values, args, sz3_ok)
    return doc


def merge(docs: list[dict]) -> dict:
    """One document of several runs' JSON: the first's meta, every run's fields and notes (with each command)."""
    out = {"meta": docs[0]["meta"], "fields": {}, "notes": [], "commands": []}
    for d in docs:
        out["fields"].update(d["fields"])
        out["notes"] += [n for n in d["notes"] if n not in out["notes"]]
        out["commands"] += d.get("commands") or [d["meta"].get("argv")]
    return out


def _f(v: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if v is None else fmt.format(v)


def markdown(doc: dict) -> str:
    m = doc["meta"]
    searched = any(row["inr"] for f in doc["fields"].values() for row in f["splits"].values())
    lines = ["# Per-rank blocks against whole volumes", "",
             "Generated by `python benchmarks/blocks.py --from-json ... --markdown ...` from the "
             "benchmark's JSON; do not edit by hand.", "",
             ("Fields" if m["size"] is None else f"Fields of {m['size']}^3 samples") + " split into 1, 8 or 64 blocks with one ghost layer, each block fitted on "
             f"its own (`inr.fit(ghost_mask=...)`, native backend, steps: {m['steps'] or 'the default'}, "
             f"{m.get('cpus')} CPUs, OMP_NUM_THREADS={m['threads']}); bytes and PSNR over the full grid stitched "
             f"back from the stored bytes. SZ3: `pysz`, absolute error bound swept (then bisected to within "
             f"{SZ3_CLOSE_DB} dB above {m['target_psnr']:.0f} dB in runs since the predictive coding), whole grid "
             "and each owned block; its ratio at the target interpolated (log ratio linear in PSNR) between the "
             "points around it.", "",
             *[f"Command: `python benchmarks/blocks.py {' '.join(a)}`" for a in doc.get("commands") or [m.get("argv")] if a],
             ""]
    if searched:
        lines += [
             "## Networks sized by a ratio", "",
             f"Ratio at {m['target_psnr']:.0f} dB: interpolated between the stored points around it of a search on "
             "the asked ratio. Sizing of a split: `even` asks every block for the ratio R (each block's "
             "`inr.fit(ratio=R)` stores within 10 % of R, so the split does too); `content` asks block i for R / w_i, "
             "with w = `content_weights` of each owned block's `block_complexity` (bits per sample of "
             "a 3-D Lorenzo predictor at the RMS error of 40 dB over the field's range), so that "
             "sum(w_i * samples_i) = sum(samples_i): R is then the ratio of the blocks together, not of each "
             "(in a run: one all-reduce of the range and of the complexity sum, or a rank over its own blocks). "
             "The search starts at SZ3's whole-volume ratio at 40 dB.", "",
             "| field | blocks | sizing | INR ratio @40 dB | bytes vs whole | SZ3 per block @40 dB | SZ3 whole @40 dB | "
             "INR / SZ3 whole | asked -> stored ratios | min block dB at the 40 dB point |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, f in doc["fields"].items():
        whole_sz3 = f["splits"].get("1", {}).get("sz3_ratio_at_40db")
        for parts, row in f["splits"].items():
            if not row["inr"]:
                continue
            asked = ", ".join(f"{p['asked']:.0f}->{p['ratio']:.0f}" for p in sorted(row["inr"], key=lambda p: p["asked"]))
            near = min(row["inr"], key=lambda p: abs((p["psnr"] or 1e9) - m["target_psnr"]))
            low = min((b for b in near["block_psnr"] if b is not None), default=None)
            lines.append(f"| {name} ({'x'.join(map(str, f['shape']))}) | {row['blocks']} | {row.get('sizing', 'even')} | {'>= ' if row.get('at_least') else ''}{_f(row['inr_ratio_at_40db'])} | "
                         f"{_f(row.get('bytes_vs_whole'), '{:.2f}x')} | {_f(row.get('sz3_ratio_at_40db'))} | "
                         f"{_f(whole_sz3)} | {_f(row.get('vs_sz3_whole'), '{:.2f}x')} | {asked} | "
                         f"{_f(low)} ({_f(near['psnr'])} overall) |")
    engine = [(name, f, row) for name, f in doc["fields"].items() for row in f["splits"].values() if row.get("engine")]
    if engine:
        lines += ["## The engine: `target_psnr` per block", "",
                  "Each block compressed as `af.compress(target_psnr=T, psnr_range='field')` does on a rank: "
                  "`inr.fit(target_psnr=T, value_range=<the field's range>)`, the predictive coding (no network) "
                  "or a network smaller than it. The grid lands just above T; T is lowered by the overshoot until "
                  f"the grid's PSNR brackets {m['target_psnr']:.0f} dB, and the ratio interpolated there.", "",
                  f"| field | blocks | engine ratio @{m['target_psnr']:.0f} dB | bytes vs whole | SZ3 per block | "
                  "SZ3 whole | engine / SZ3 whole | blocks without a network | seconds (all blocks, one core) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, f, row in engine:
            whole_sz3 = f["splits"].get("1", {}).get("sz3_ratio_at_40db")
            near = min(row["engine"], key=lambda p: abs((p["psnr"] or 1e9) - m["target_psnr"]))
            lines.append(f"| {name} ({'x'.join(map(str, f['shape']))}) | {row['blocks']} | "
                         f"{_f(row.get('engine_ratio_at_40db'))} | {_f(row.get('engine_bytes_vs_whole'), '{:.2f}x')} | "
                         f"{_f(row.get('sz3_ratio_at_40db'))} | {_f(whole_sz3)} | "
                         f"{_f(row.get('engine_vs_sz3_whole'), '{:.2f}x')} | "
                         f"{near['predictive_blocks']}/{row['blocks']} | {near['fit_s']:.2f} |")
    if doc["notes"]:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in doc["notes"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=64, help="samples per axis of every field (default %(default)s)")
    ap.add_argument("--fields", nargs="+", default=DEFAULT_FIELDS, help="default: %(default)s")
    ap.add_argument("--splits", type=int, nargs="+", default=[1, 2, 4], help="blocks per axis (default %(default)s)")
    ap.add_argument("--steps", type=int, default=None, help="max_steps of every fit (default: inr.fit's)")
    ap.add_argument("--sizing", nargs="+", choices=["even", "content"], default=["even", "content"],
                    help="how a split shares the bytes between blocks (default %(default)s; see split_weights)")
    ap.add_argument("--fits", type=int, default=SEARCH_FITS, help="fits of the 40 dB search per split")
    ap.add_argument("--no-ratio-search", dest="ratio_search", action="store_false",
                    help="leave out the search on the asked ratio (networks only): the engine's points alone")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--volumes", nargs="*", default=None,
                    help="public volumes of benchmarks/volumes.py instead of --fields (no names: every one)")
    ap.add_argument("--max-side", type=int, default=96, help="volumes longer than this are subsampled (default %(default)s)")
    ap.add_argument("--quick", action="store_true", help="one 32^3 field, splits 1 and 2, 300 steps")
    ap.add_argument("-o", "--output", help="write the JSON here instead of stdout")
    ap.add_argument("--from-json", nargs="+", help="read the JSON of earlier runs (their fields merged) instead of running")
    ap.add_argument("--markdown", help="write the markdown table here")
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.fields, args.splits, args.steps, args.fits = 32, ["sphere_front"], [1, 2], 300, 4
    doc = merge([json.loads(Path(f).read_text()) for f in args.from_json]) if args.from_json else run(args)
    text = json.dumps(doc, indent=1)
    if args.output:
        Path(args.output).write_text(text)
    elif not args.from_json:
        print(text)
    if args.markdown:
        Path(args.markdown).write_text(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
