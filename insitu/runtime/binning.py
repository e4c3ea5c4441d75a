"""Ascent's data binning for expressions: ``binning()``, ``axis()`` and ``bin()``.

    binning('radial', 'max', [axis('x', num_bins=20), axis('y', [-1, 1])])
    binning('', 'count', [axis('e', num_bins=8)], empty_bin_val=-1)
    bin(my_binning, index=3).value

As Ascent 0.9.3 does it (``ascent_blueprint_architect.cpp``):

* an axis is spatial (``'x'``, ``'y'``, ``'z'``: the coordinate of each vertex, or of each element's
  centre) or a scalar field; it is uniform (``num_bins``, default 256, over ``[min_val, max_val)``) or
  rectilinear (``bins``: at least two strictly increasing edges). A spatial axis without ``min_val`` /
  ``max_val`` spans the mesh (``max_val`` = the far edge + 1e-8 of the length, so the last vertex falls
  in); a field axis spans ``[min(field), max(field) + 1.0)``. ``clamp`` puts values outside into the
  first/last bin, otherwise they are left out;
* the reduction variable is a scalar field, ``'x'``/``'y'``/``'z'``, or ``''`` (each sample counts 1:
  for ``count`` and ``pdf``); reductions: ``sum``, ``min``, ``max``, ``avg``, ``count``, ``pdf``,
  ``std``, ``var``, ``rms``; empty bins get ``empty_bin_val`` (default 0);
* the result is flat, the first axis varying fastest; all fields involved must share one association
  (vertex or element), which is the binning's association.

Differences, on purpose: the samples binned are the ones each rank owns (ghosts left out, as every
reduction of this engine; Ascent also bins real ghost zones, counting them twice); ``count`` counts the
samples of each bin (Ascent 0.9.3 accepts ``count`` but leaves every bin at 0); ``component`` (vector
fields) is refused, this runtime reads scalar fields only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

REDUCTIONS = ("sum", "min", "max", "avg", "count", "pdf", "std", "var", "rms")
SPATIAL = ("x", "y", "z")


class BinningError(ValueError):
    """A bad binning()/axis()/bin() call (the message says what to change)."""


@dataclass(frozen=True)
class Axis:
    """What ``axis()`` yields: one axis of a binning (not resolved against the mesh yet)."""

    name: str
    bins: tuple[float, ...] | None = None
    min_val: float | None = None
    max_val: float | None = None
    num_bins: int = 256
    clamp: bool = False

    def described(self) -> dict:
        if self.bins is not None:
            return {"bins": list(self.bins), "clamp": int(self.clamp)}
        out: dict[str, Any] = {"num_bins": self.num_bins, "clamp": int(self.clamp)}
        if self.min_val is not None:
            out["min_val"] = self.min_val
        if self.max_val is not None:
            out["max_val"] = self.max_val
        return out


@dataclass(frozen=True)
class Binning:
    """What ``binning()`` yields: the bins' values (flat, first axis fastest) and how they were made."""

    values: np.ndarray
    reduction_var: str
    reduction_op: str
    bin_axes: dict  # axis name -> {num_bins, clamp, min_val, max_val} or {bins, clamp}, as Ascent reports it
    association: str

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Binning) and np.array_equal(self.values, other.values) and \
            (self.reduction_var, self.reduction_op, self.bin_axes, self.association) == \
            (other.reduction_var, other.reduction_op, other.bin_axes, other.association)

    def __hash__(self) -> int:
        return hash((self.reduction_var, self.reduction_op, self.association, self.values.size))

    @property
    def shape(self) -> tuple[int, ...]:
        """Bins per axis, in axis order (the first varies fastest in :attr:`values`)."""
        return tuple(len(a["bins"]) - 1 if "bins" in a else int(a["num_bins"]) for a in self.bin_axes.values())

    def plain(self) -> dict:
        return {"value": [float(v) for v in self.values], "reduction_var": self.reduction_var,
                "reduction_op": self.reduction_op, "bin_axes": self.bin_axes, "association": self.association}

    def session_entry(self) -> dict:
        """The entry Ascent writes for a binning in ``ascent_session.yaml`` (one cycle)."""
        return {"type": "binning", "attrs": {
            "value": {"value": [float(v) for v in self.values], "type": "array"},
            "reduction_var": {"value": self.reduction_var, "type": "string"},
            "reduction_op": {"value": self.reduction_op, "type": "string"},
            "bin_axes": {"value": self.bin_axes},
            "association": {"value": self.association, "type": "string"}}}


@dataclass(frozen=True)
class Bin:
    """What ``bin(binning, index=i)`` yields (attributes ``value``, ``min``, ``max``, ``center``)."""

    value: float
    min: float
    max: float
    center: float


# ---------------------------------------------------------------- axis()
def _number(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise BinningError(f"axis(): {what} must be a number, got {v!r}")
    return float(v)


def make_axis(name: Any, bins: Any = None, min_val: Any = None, max_val: Any = None, num_bins: Any = None,
              clamp: Any = None) -> Axis:
    """``axis(name, bins=[...] | min_val=, max_val=, num_bins=, clamp=)`` checked as Ascent checks it."""
    if not isinstance(name, str):
        raise BinningError(f"axis(): the first argument is a field name or 'x'/'y'/'z', got {name!r}")
    clamp_b = bool(_number(clamp, "clamp")) if clamp is not None else False
    if bins is not None:
        if min_val is not None or max_val is not None or num_bins is not None:
            raise BinningError(f"axis('{name}'): give either bins=[...] (rectilinear) or min_val/max_val/num_bins "
                               "(uniform), not both")
        if not isinstance(bins, (list, tuple)) or len(bins) < 2:
            raise BinningError(f"axis('{name}'): bins must be a list of at least 2 numbers, got {bins!r}")
        edges = tuple(_number(b, "each of bins") for b in bins)
        if any(b >= a for a, b in zip(edges[1:], edges[:-1])):
            raise BinningError(f"axis('{name}'): bin edges must be strictly increasing, got {list(edges)}")
        return Axis(name, bins=edges, clamp=clamp_b)
    n = 256
    if num_bins is not None:
        if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) or num_bins < 1:
            raise BinningError(f"axis('{name}'): num_bins must be a positive integer, got {num_bins!r}")
        n = int(num_bins)
    lo = _number(min_val, "min_val") if min_val is not None else None
    hi = _number(max_val, "max_val") if max_val is not None else None
    if lo is not None and hi is not None and lo >= hi:
        raise BinningError(f"axis('{name}'): min_val ({lo}) must be smaller than max_val ({hi})")
    return Axis(name, min_val=lo, max_val=hi, num_bins=n, clamp=clamp_b)


# ---------------------------------------------------------------- bin indices
def _uniform_index(v: np.ndarray, ax: dict) -> np.ndarray:
    n, lo, hi = int(ax["num_bins"]), float(ax["min_val"]), float(ax["max_val"])
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.trunc((v - lo) * (n / (hi - lo)))  # C's cast truncates towards zero, as Ascent's
    bad = ~np.isfinite(scaled)
    idx = np.where(bad, -1, scaled).astype(np.int64)
    if ax["clamp"]:
        return np.where(bad, -1, np.clip(idx, 0, n - 1))
    return np.where((idx < 0) | (idx >= n), -1, idx)


def _rectilinear_index(v: np.ndarray, ax: dict) -> np.ndarray:
    edges = np.asarray(ax["bins"], float)
    m = edges.size
    first = np.searchsorted(edges, v, side="right")  # edges <= v
    if ax["clamp"]:
        first = np.clip(first, 1, m - 1)
    else:
        first = np.where((first == m) & (v == edges[-1]), first - 1, first)
        first = np.where((first == 0) | (first >= m), 0, first)
    return np.where(np.isnan(v), -1, first - 1)


# ---------------------------------------------------------------- binning()
def _coords(block: Any) -> list[np.ndarray]:
    """x, y, z of each owned sample of a block (vertex, or element centre), shaped like the owned values."""
    box = block.owned_box
    shift = 0.0 if block.association == "vertex" else 0.5
    out = []
    for d in range(3):  # x, y, z
        lo, hi = box[2 - d]
        line = block.origin[d] + (np.arange(lo, hi) + shift) * block.spacing[d]
        shape = [1, 1, 1]
        shape[2 - d] = hi - lo
        out.append(np.broadcast_to(line.reshape(shape), tuple(b - a for a, b in box)))
    return out


def compute(ctx: Any, reduction_var: Any, reduction_op: Any, bin_axes: Any, empty_bin_val: Any = None,
            component: Any = None) -> Binning:
    """``binning(reduction_var, reduction_op, bin_axes, empty_bin_val=0, component=None)`` over every rank."""
    _check_arguments(reduction_var, reduction_op, bin_axes, component)
    empty = 0.0 if empty_bin_val is None else float(_number(empty_bin_val, "empty_bin_val"))
    axes: dict[str, Axis] = {}
    for a in bin_axes:  # a later axis of the same name replaces the earlier one (Ascent's Node::update)
        axes[a.name] = a
    fields = list(dict.fromkeys(n for n in [*axes, reduction_var] if n and n not in SPATIAL))
    if not fields:
        raise BinningError("binning(): could not determine the association from the reduction_var and the axes "
                           "(all are x/y/z or ''): bin a field, or add a field axis")
    # 1. what each rank has: association per field, coordset extents, field ranges (owned samples)
    everyone = ctx.allgather(lambda: _survey(ctx, fields))
    assoc = {a for r in everyone for a in r["assoc"].values()}
    if len(assoc) > 1:
        raise BinningError(f"binning(): all binning fields must have the same association; {fields} have "
                           f"{sorted(assoc)}")
    association = assoc.pop() if assoc else "element"
    # 2. resolve the axes as Ascent does
    resolved = _resolve_axes(axes, everyone)
    sizes = [len(ax["bins"]) - 1 if "bins" in ax else int(ax["num_bins"]) for ax in resolved.values()]
    total = int(np.prod(sizes))
    if total > 50_000_000:
        raise BinningError(f"binning(): {total} bins is too many (axes {sizes})")
    # 3. each rank bins its owned samples; one collective adds them up
    parts = ctx.allgather(lambda: _accumulate(ctx, fields, resolved, sizes, total, reduction_var, reduction_op))
    res = _reduce(parts, reduction_op, empty)
    return Binning(res, reduction_var, reduction_op, resolved, association)


def _check_arguments(reduction_var: Any, reduction_op: Any, bin_axes: Any, component: Any) -> None:
    if not isinstance(reduction_var, str):
        raise BinningError(f"binning(): reduction_var must be a string (a field name, 'x'/'y'/'z' or ''), "
                           f"got {reduction_var!r}")
    if reduction_op not in REDUCTIONS:
        raise BinningError(f"binning(): unknown reduction_op {reduction_op!r}; known: {list(REDUCTIONS)}")
    if component is not None:
        raise BinningError("binning(): 'component' (a component of a vector field) is not supported by the "
                           "embedded runtime, which reads scalar fields only; bin a scalar field")
    if not isinstance(bin_axes, (list, tuple)) or not bin_axes or not all(isinstance(a, Axis) for a in bin_axes):
        raise BinningError("binning(): bin_axes must be a list of axis(...), e.g. [axis('x', num_bins=10)]")
    if reduction_var == "" and reduction_op not in ("count", "pdf"):
        raise BinningError("binning(): reduction_var can only be left empty ('') if reduction_op is 'count' or "
                           "'pdf'")


def _survey(ctx: Any, fields: list[str]) -> dict:
    """This rank's association per field, coordset extents and field ranges (owned samples)."""
    from insitu.blueprint import blocks

    out: dict[str, Any] = {"assoc": {}, "lo": [np.inf] * 3, "hi": [-np.inf] * 3, "range": {}}
    for f in fields:
        bl = list(blocks(ctx.published, f))
        if bl:
            out["assoc"][f] = bl[0].association
            if any(b.association != bl[0].association for b in bl):
                raise BinningError("binning(): all binning fields must have the same association")
        vals = [b.owned_values for b in bl if b.owned_values.size]
        if vals:
            out["range"][f] = (float(min(np.nanmin(v) for v in vals)), float(max(np.nanmax(v) for v in vals)))
        if f == fields[0]:
            for b in bl:
                for d in range(3):
                    out["lo"][d] = min(out["lo"][d], b.origin[d])
                    out["hi"][d] = max(out["hi"][d], b.origin[d] + (b.dims[d] - 1) * b.spacing[d])
    return out


def _resolve_axes(axes: dict[str, Axis], everyone: list[dict]) -> dict[str, dict]:
    """Each axis with its bins: explicit edges, or num_bins over [min_val, max_val) from the data's extent."""
    lo = [min(r["lo"][d] for r in everyone) for d in range(3)]
    hi = [max(r["hi"][d] for r in everyone) for d in range(3)]
    resolved: dict[str, dict] = {}
    for name, a in axes.items():
        ax = a.described()
        if "bins" not in ax:
            if name in SPATIAL:
                d = SPATIAL.index(name)
                if not np.isfinite(lo[d]):
                    raise BinningError(f"binning(): could not find bounds for axis '{name}'")
                ax.setdefault("min_val", float(lo[d]))
                if "max_val" not in ax:
                    ax["max_val"] = float(hi[d] + (hi[d] - ax["min_val"]) * 1e-8)  # the last edge is exclusive
            else:
                ranges = [r["range"][name] for r in everyone if name in r["range"]]
                if not ranges:
                    raise BinningError(f"binning(): field '{name}' has no owned samples on any rank")
                ax.setdefault("min_val", float(min(r[0] for r in ranges)))
                ax.setdefault("max_val", float(max(r[1] for r in ranges)) + 1.0)  # as Ascent 0.9.3 (+1.0)
            if ax["min_val"] >= ax["max_val"]:
                raise BinningError(f"binning(): axis '{name}': min_val ({ax['min_val']}) must be smaller than "
                                   f"max_val ({ax['max_val']})")
        resolved[name] = ax
    return resolved


def _accumulate(ctx: Any, fields: list[str], resolved: dict[str, dict], sizes: list[int], total: int,
                reduction_var: str, reduction_op: str) -> np.ndarray:
    """This rank's partial sums per bin (value sums, squares, counts as the reduction needs)."""
    from insitu.blueprint import blocks

    acc = np.zeros((3 if reduction_op in ("var", "std") else 2, total))
    if reduction_op in ("min", "max"):
        acc[0] = np.inf if reduction_op == "min" else -np.inf
    per_field = {f: list(blocks(ctx.published, f)) for f in fields}
    for k, block in enumerate(per_field[fields[0]]):
        owned = block.owned_values.shape
        xyz = _coords(block)
        home = np.zeros(owned, np.int64)
        stride = 1
        for (name, ax), n in zip(resolved.items(), sizes):
            v = xyz[SPATIAL.index(name)] if name in SPATIAL else per_field[name][k].owned_values
            v = np.asarray(v, np.float64)
            idx = _rectilinear_index(v, ax) if "bins" in ax else _uniform_index(v, ax)
            home = np.where((home < 0) | (idx < 0), -1, home + idx * stride)
            stride *= n
        if reduction_var == "":
            vals = np.ones(owned)
        elif reduction_var in SPATIAL:
            vals = np.asarray(xyz[SPATIAL.index(reduction_var)], np.float64)
        else:
            vals = np.asarray(per_field[reduction_var][k].owned_values, np.float64)
        keep = home.reshape(-1) >= 0
        h, v = home.reshape(-1)[keep], vals.reshape(-1)[keep]
        if reduction_op in ("min", "max"):
            (np.minimum if reduction_op == "min" else np.maximum).at(acc[0], h, v)
            acc[1] += np.bincount(h, minlength=total)
        elif reduction_op in ("var", "std"):
            acc[0] += np.bincount(h, weights=v * v, minlength=total)
            acc[1] += np.bincount(h, weights=v, minlength=total)
            acc[2] += np.bincount(h, minlength=total)
        else:
            acc[0] += np.bincount(h, weights=v * v if reduction_op == "rms" else v, minlength=total)
            acc[1] += np.bincount(h, minlength=total)
    return acc


def _reduce(parts: list[np.ndarray], reduction_op: str, empty: float) -> np.ndarray:
    """The ranks' partial sums combined into each bin's value (``empty`` where no sample fell)."""
    if reduction_op in ("min", "max"):
        pick = np.min if reduction_op == "min" else np.max
        acc = np.stack([pick([p[0] for p in parts], axis=0), np.sum([p[1] for p in parts], axis=0)])
    else:
        acc = np.sum(parts, axis=0)
    count = acc[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        if reduction_op in ("min", "max", "sum"):
            res = acc[0].copy()
        elif reduction_op == "count":
            res = count.copy()
        elif reduction_op == "avg":
            res = acc[0] / count
        elif reduction_op == "rms":
            res = np.sqrt(acc[0] / count)
        elif reduction_op == "pdf":
            res = acc[0] / acc[0].sum()
        else:  # var, std
            var = np.maximum(acc[0] / count - (acc[1] / count) ** 2, 0.0)
            res = np.sqrt(var) if reduction_op == "std" else var
    return np.where(count > 0, res, empty).astype(np.float64)


# ---------------------------------------------------------------- bin()
def bin_by_index(binning: Any, index: Any) -> Bin:
    """``bin(binning, index=i)``: bin ``i`` of a one-axis uniform binning (what Ascent 0.9.3 implements)."""
    if not isinstance(binning, Binning):
        raise BinningError("bin(): the embedded runtime implements bin(binning, index=i) only "
                           f"(got {type(binning).__name__})")
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise BinningError(f"bin(): index must be an integer, got {index!r}")
    if len(binning.bin_axes) != 1:
        raise BinningError(f"bin(): only binnings with one axis are implemented (as in Ascent); this one has "
                           f"{len(binning.bin_axes)}: {list(binning.bin_axes)}")
    (name, ax), = binning.bin_axes.items()
    if "bins" in ax:
        raise BinningError(f"bin(): axis '{name}' is rectilinear (bins=...); bin() needs a uniform axis "
                           "(num_bins=...), as in Ascent")
    n = int(ax["num_bins"])
    if not 0 <= int(index) < n:
        raise BinningError(f"bin(): invalid bin {int(index)}; number of bins {n}")
    size = (float(ax["max_val"]) - float(ax["min_val"])) / n
    left = float(ax["min_val"]) + int(index) * size
    right = float(ax["min_val"]) + (int(index) + 1) * size
    return Bin(float(binning.values[int(index)]), left, right, left + (right - left) / 2.0)
