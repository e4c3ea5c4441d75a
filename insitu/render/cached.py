"""Render cached cycles: each rank decodes its share of the domains, all ranks composite, root writes.

Shared by ``insitu replay`` (offline, any process count) and the ``render``
filter (in situ, e.g. the last 20 cycles when a trigger fires). The domains
of a cycle go round-robin over the ranks, so the reader's process count need
not match the writer's; the lattice and value range come from the cache's
index (which every rank holds), so every process count draws the same image.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from insitu.cache.replay import check_decodable
from insitu.render.annotate import Annotations, Legend
from insitu.render.bricks import Extent, Lattice
from insitu.render.camera import CameraError
from insitu.render.camera import check_params as check_camera
from insitu.render.frame import FrameStats, Piece, meta_placement, piece_from_model, render_views
from insitu.render.output import CinemaDatabase, cinema_views, image_name, inside, safe_name
from insitu.render.raymarch import PLOT_KINDS, RENDER_BACKENDS, Plot
from insitu.render.transfer import TransferFunction, check_colormap, check_opacity


def _as_list(v: Any) -> list | None:
    try:
        return list(v)
    except TypeError:
        return None


def _plot(v: Any) -> None:
    if not isinstance(v, str) or v not in PLOT_KINDS:
        raise ValueError(f"plot={v!r} is invalid: valid choices are {list(PLOT_KINDS)}")


def _value_range(v: Any) -> None:
    if v is None:
        return
    vr = _as_list(v)
    if vr is None or len(vr) != 2 or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in vr) \
            or vr[1] < vr[0]:
        raise ValueError(f"value_range={v!r} must be [min, max] numbers, min <= max")


def _camera(v: Any) -> None:
    try:
        check_camera(v)
    except CameraError as exc:
        raise ValueError(str(exc)) from None


def _pixels(name: str) -> Callable[[Any], None]:
    def check(v: Any) -> None:
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 8192:
            raise ValueError(f"{name}={v!r} must be an integer number of pixels in 1..8192")
    return check


def _step(v: Any) -> None:
    if not (isinstance(v, (int, float)) and 0.05 <= v <= 4):
        raise ValueError(f"step={v!r} must be a number of cells in [0.05, 4]")


def _render_backend(v: Any) -> None:
    if not isinstance(v, str) or v not in RENDER_BACKENDS:
        raise ValueError(f"render_backend={v!r} is invalid: valid choices are {list(RENDER_BACKENDS)}")


def _annotations(v: Any) -> None:
    if not isinstance(v, bool):
        raise ValueError(f"annotations={v!r} must be True or False (a colour bar, the cycle and time, the "
                         "domain's outline)")


def _background(v: Any) -> None:
    bg = _as_list(v)
    if bg is None or len(bg) != 3 or not all(isinstance(x, (int, float)) and 0 <= x <= 1 for x in bg):
        raise ValueError(f"background={v!r} must be [r, g, b] in [0, 1]")


#: the check of each :class:`RenderSpec` field checked alone (ValueError naming it, its value and what is
#: valid), in the order :meth:`RenderSpec.check` runs them; the render filter declares its parameters with them
SPEC_CHECKS: dict[str, Callable[[Any], Any]] = {
    "plot": _plot, "colormap": check_colormap, "opacity": check_opacity, "value_range": _value_range,
    "camera": _camera, "width": _pixels("width"), "height": _pixels("height"), "step": _step,
    "render_backend": _render_backend, "background": _background, "annotations": _annotations,
}


@dataclass
class RenderSpec:
    """How to draw: plot kind, transfer function, camera (Ascent params), image size, background, step."""

    plot: str = "volume"
    colormap: str = "viridis"
    opacity: Sequence[Sequence[float]] | None = None
    value_range: Sequence[float] | None = None
    slices: Sequence[Sequence[Any]] | None = None
    iso_values: Sequence[float] | None = None
    camera: dict = field(default_factory=dict)
    width: int = 512
    height: int = 512
    background: Sequence[float] = (0.0, 0.0, 0.0)
    step: float = 0.5
    shading: bool = True
    render_backend: str = "auto"
    annotations: bool = True  # colour bar, cycle and time, the domain's outline (insitu.render.annotate)

    def check(self, where: str = "render") -> "RenderSpec":
        """Validate every parameter (:data:`SPEC_CHECKS`, then the plot they make together); ValueError
        ``"{where}: ..."`` naming the parameter, its value and the valid choices."""
        for name, check in SPEC_CHECKS.items():
            try:
                check(getattr(self, name))
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        try:
            self.make_plot((0.0, 1.0))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}: {exc}") from None
        return self

    def make_plot(self, data_range: tuple[float, float]) -> Plot:
        vr = tuple(self.value_range) if self.value_range is not None else data_range
        tf = TransferFunction(self.colormap, check_opacity(self.opacity), vr)  # type: ignore[arg-type]
        kw = {}
        if self.slices is not None:
            kw["slices"] = tuple((str(a), float(f)) for a, f in self.slices)
        if self.iso_values is not None:
            isos = [self.iso_values] if isinstance(self.iso_values, (int, float)) else self.iso_values
            kw["iso_values"] = tuple(float(v) for v in isos)
        return Plot(self.plot, tf, shading=self.shading, **kw)


def annotations_for(enabled: bool, layers: Sequence[tuple[str, Plot]], lattice: Lattice, cycle: int,
                    time: float | None) -> Annotations | None:
    """The annotations of a picture (None when not ``enabled``): one colour bar per (field name, plot) layer
    over the range its colours span, the cycle and time, the lattice's outline."""
    if not enabled:
        return None
    legends = tuple(dict.fromkeys(Legend(name, plot.tf.colormap, plot.tf.value_range)  # type: ignore[arg-type]
                                  for name, plot in layers))
    return Annotations(legends, int(cycle), time, lattice.bounds())


def lattice_of(metas: Sequence[Any]) -> Lattice:
    """The lattice of cached blocks (from their index metadata; the same on every rank)."""
    exts = [Extent(tuple(m.start), tuple(m.dims), m.association) for m in metas]
    return Lattice.common(exts, [meta_placement(m)[0] for m in metas], meta_placement(metas[0])[1])


def check_cycles(reader: Any, field_name: str, cycles: Sequence[int]) -> list[int]:
    """``cycles`` that are cached; ValueError showing the cached range for the others."""
    fields = reader.fields()
    if field_name not in fields:
        raise ValueError(f"field {field_name!r} is not in the cache; cached fields: {sorted(fields)}")
    have = reader.cycles(field_name)
    missing = [c for c in cycles if c not in set(have)]
    if missing:
        span = f"{have[0]}..{have[-1]} ({len(have)} cycles)" if have else "none"
        raise ValueError(f"cycle(s) {missing[:10]} of field {field_name!r} are not cached; cached cycles: {span}")
    return list(cycles)


@dataclass
class CachedRender:
    """Figures of one call: files written (root), per-cycle seconds, problems met on this rank."""

    written: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # cycles with a damaged entry: not drawn (all ranks agree)
    stats: FrameStats = field(default_factory=FrameStats)


def render_cached(reader: Any, field_name: str, cycles: Sequence[int], spec: RenderSpec, comm: Any = None, *,
                  output_dir: str | Path = ".", image_prefix: str | None = None,
                  cinema: tuple[int, int, str] | None = None, decode_backend: str = "auto",
                  progress: Callable[[Iterable[int]], Iterable[int]] | None = None) -> CachedRender:
    """Render ``cycles`` of ``field_name`` from a cache reader (collective over ``comm``).

    Writes ``output_dir/<image_prefix % cycle>.png`` (default prefix
    ``FIELD_%06d``), or with ``cinema=(phi, theta, name)`` a Cinema database
    ``output_dir/name.cdb``. A cycle with a domain that does not decode (a damaged
    entry, a broken delta chain) is not drawn: its problem goes to ``errors`` and the
    cycle to ``skipped``, on every rank alike, so the ranks stay in step.
    """
    import time

    rank = 0 if comm is None else comm.Get_rank()
    size = 1 if comm is None else comm.Get_size()
    out = CachedRender()
    prefix = image_prefix or safe_name(field_name).replace("%", "%%") + "_%06d"
    db = CinemaDatabase(Path(output_dir) / f"{safe_name(cinema[2])}.cdb") if cinema and rank == 0 else None
    views = cinema_views(cinema[0], cinema[1]) if cinema else None
    constant: list[tuple[int, float]] = []  # (cycle, value) of the cycles whose field is constant
    for cycle in (progress(cycles) if progress else cycles):
        t0 = time.perf_counter()
        doms = reader.domains(field_name, cycle)
        metas = [reader.meta(field_name, cycle, d) for d in doms]
        lattice = lattice_of(metas)
        data_range = (min(m.value_range[0] for m in metas), max(m.value_range[1] for m in metas))
        if data_range[0] == data_range[1] and spec.value_range is None:
            constant.append((cycle, data_range[0]))
        pieces: list[Piece] = []
        failed = 0
        for d, meta in list(zip(doms, metas))[rank::size]:
            try:
                model = reader.model(field_name, cycle, d)
                check_decodable(model, meta, f"domain {d}")
                pieces.append(piece_from_model(model, meta, backend=decode_backend))
            except Exception as exc:  # the other ranks must not wait for us: the cycle is skipped by all
                failed += 1
                out.errors.append(f"field {field_name!r} cycle {cycle} skipped: domain {d}: {exc}")
        # a picture without a domain would show wrong data as data: every rank skips the cycle together
        if (comm.allreduce(failed) if comm is not None else failed):
            out.skipped.append(cycle)
            continue
        plot = spec.make_plot(data_range)
        times = [m.time for m in metas if m.time is not None]
        notes = annotations_for(spec.annotations, [(field_name, plot)], lattice, cycle, times[0] if times else None)
        out.written += render_views([(plot, pieces)], lattice, spec.camera, spec.width,
                                    spec.height, comm, cycle, background=spec.background,
                                    image_path=inside(output_dir, image_name(prefix, cycle) + ".png"),
                                    views=views, cinema=db, step=spec.step, backend=spec.render_backend,
                                    stats=out.stats, annotations=notes)
        out.seconds.append(time.perf_counter() - t0)
    if constant and rank == 0:  # one line for the whole call, not one per cycle
        warnings.warn(f"field {field_name!r} is constant at {len(constant)} cycle(s) (cycle {constant[0][0]}: "
                      f"{constant[0][1]:g}): drawn in the middle colour of the map", stacklevel=2)
    return out
