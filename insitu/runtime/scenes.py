"""Ascent scenes in the embedded runtime: ``add_scenes`` drawn by :mod:`insitu.render`.

Supported, with Ascent's meaning::

    scenes:
      s1:
        plots:
          p1: {type: volume | pseudocolor, field: F, min_value: .., max_value: .., color_table: {name: Viridis}}
        image_prefix: "v_%04d"          # or image_name, here or in a render
        renders:
          r1: {camera: {azimuth: 30, elevation: 20, zoom: 0.2}, image_width: 512, image_height: 512,
               bg_color: [1, 1, 1]}
          r2: {type: cinema, phi: 8, theta: 3, db_name: clover_db}

insitu-inr extensions of a plot: ``type: slice`` (with ``slices``), ``type:
isosurface`` (with ``iso_values``), ``source:
reconstruction`` (draw the field as decoded from this cycle's cached models,
written by ``af.compress`` earlier in the same execute - filters run by name,
a scene at ``exec_<name>``, so name the compress extract to sort before that,
e.g. ``compress``; ``cache`` names the cache, default ``run.cache``),
``colormap`` (a matplotlib name) and
``opacity`` points. Anything else is rejected with the supported names.
Without renders, a scene writes one image named by its ``image_prefix`` /
``image_name`` (default ``<scene>_%06d``). Pictures carry a colour bar, the
cycle and time and the data's outline (:mod:`insitu.render.annotate`), as
Ascent's do; a render's ``annotations: false`` leaves them out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from insitu.render.camera import CAMERA_PARAMS
from insitu.render.transfer import TransferFunctionError, check_colormap, check_opacity

PLOT_TYPES = ("volume", "pseudocolor", "slice", "isosurface")
PLOT_PARAMS = ("type", "field", "min_value", "max_value", "color_table", "source", "cache", "colormap", "opacity",
               "slices", "iso_values")
SOURCES = ("published", "reconstruction")
SCENE_PARAMS = ("plots", "renders", "image_prefix", "image_name")
RENDER_PARAMS = ("type", "image_prefix", "image_name", "camera", "image_width", "image_height", "bg_color",
                 "phi", "theta", "db_name", "annotations",
                 # accepted for compatibility; they only decorate Ascent's images
                 "fg_color", "render_bg", "world_annotations", "screen_annotations")
RENDER_TYPES = ("image", "cinema")
#: Ascent color-table names -> matplotlib colormaps
ASCENT_COLOR_TABLES = {"cool to warm": "coolwarm", "cool2warm": "coolwarm", "viridis": "viridis",
                       "inferno": "inferno", "plasma": "plasma", "magma": "magma", "jet": "jet",
                       "rainbow": "rainbow", "rainbow desaturated": "rainbow", "gray": "gray", "grey": "gray",
                       "grayscale": "gray", "black-body radiation": "inferno", "black, blue and white": "bone",
                       "blue": "Blues", "orange": "Oranges", "cividis": "cividis", "turbo": "turbo"}


class SceneError(ValueError):
    """A bad scene description (message names the scene, plot or render and the valid choices)."""


def _annotations(where: str, value: Any) -> bool:
    """A render's ``annotations``: true/false as Ascent writes them (a YAML bool, or the strings "true"/"false")."""
    text = str(value).strip().lower() if isinstance(value, str) else value
    if text in (True, "true"):
        return True
    if text in (False, "false"):
        return False
    raise SceneError(f"{where}: annotations={value!r} is invalid: valid choices are [true, false] (a colour bar, "
                     "the cycle and time, the domain's outline)")


@dataclass
class PlotSpec:
    name: str
    kind: str
    field: str
    colormap: str
    opacity: Any
    value_range: tuple[float, float] | None
    source: str
    cache: str
    slices: Any = None
    iso_values: Any = None


@dataclass
class RenderOut:
    name: str
    kind: str  # image | cinema
    prefix: str | None
    exact_name: str | None
    camera: dict
    width: int
    height: int
    background: tuple[float, float, float]
    cinema: tuple[int, int, str] | None = None
    annotations: bool = True


@dataclass
class SceneSpec:
    name: str
    plots: list[PlotSpec] = field(default_factory=list)
    renders: list[RenderOut] = field(default_factory=list)


def _unknown(where: str, given: dict, valid: tuple[str, ...]) -> None:
    bad = sorted(set(given) - set(valid))
    if bad:
        raise SceneError(f"{where}: unsupported parameter(s) {bad}; supported: {list(valid)}")


def _colormap(where: str, p: dict) -> str:
    if "colormap" in p:
        name = p["colormap"]
    elif "color_table" in p:
        ct = p["color_table"]
        if not isinstance(ct, dict) or "name" not in ct or set(ct) - {"name", "reverse", "annotation"}:
            raise SceneError(f"{where}: color_table supports 'name' (and 'reverse') here; got {ct!r}")
        raw = str(ct["name"])
        name = ASCENT_COLOR_TABLES.get(raw.lower(), raw)
        if str(ct.get("reverse", "false")).lower() in ("true", "1") and not name.endswith("_r"):
            name += "_r"
    else:
        name = "coolwarm"  # Ascent's default color table is "Cool to Warm"
    try:
        return check_colormap(name)
    except TransferFunctionError as exc:
        raise SceneError(f"{where}: {exc}; Ascent names accepted: {sorted(ASCENT_COLOR_TABLES)}") from None


def parse_scene(name: str, scene: Any) -> SceneSpec:
    """A validated :class:`SceneSpec` (SceneError naming what is wrong)."""
    if not isinstance(scene, dict):
        raise SceneError(f"scene '{name}' must be a mapping with 'plots'")
    _unknown(f"scene '{name}'", scene, SCENE_PARAMS)
    plots = scene.get("plots")
    if not isinstance(plots, dict) or not plots:
        raise SceneError(f"scene '{name}' needs a mapping 'plots' of named plots")
    out = SceneSpec(name)
    for pname, p in plots.items():
        where = f"scene '{name}' plot '{pname}'"
        if not isinstance(p, dict):
            raise SceneError(f"{where} must be a mapping")
        if "pipeline" in p:
            raise SceneError(f"{where}: pipelines are not supported by the embedded runtime (plots draw published "
                             f"or reconstructed fields); supported plot parameters: {list(PLOT_PARAMS)}")
        _unknown(where, p, PLOT_PARAMS)
        kind = p.get("type")
        if kind not in PLOT_TYPES:
            raise SceneError(f"{where}: plot type {kind!r} is not supported; supported types: {list(PLOT_TYPES)}")
        if not isinstance(p.get("field"), str) or not p["field"]:
            raise SceneError(f"{where}: 'field' (the name of a published field) is required")
        vr = None
        if "min_value" in p or "max_value" in p:
            if not ("min_value" in p and "max_value" in p):
                raise SceneError(f"{where}: give both min_value and max_value")
            try:
                vr = (float(p["min_value"]), float(p["max_value"]))
            except (TypeError, ValueError):
                raise SceneError(f"{where}: min_value and max_value must be numbers") from None
        source = p.get("source", "published")
        if source not in SOURCES:
            raise SceneError(f"{where}: source={source!r} is invalid: valid choices are {list(SOURCES)}")
        try:
            opacity = check_opacity(p.get("opacity"))
        except TransferFunctionError as exc:
            raise SceneError(f"{where}: {exc}") from None
        out.plots.append(PlotSpec(str(pname), kind, p["field"], _colormap(where, p), opacity, vr, source,
                                  str(p.get("cache", "run.cache")), p.get("slices"), p.get("iso_values")))
    renders = scene.get("renders") or {"__default__": {}}
    if not isinstance(renders, dict):
        raise SceneError(f"scene '{name}': 'renders' must be a mapping of named renders")
    for rname, r in renders.items():
        where = f"scene '{name}' render '{rname}'"
        if not isinstance(r, dict):
            raise SceneError(f"{where} must be a mapping")
        _unknown(where, r, RENDER_PARAMS)
        kind = r.get("type", "image")
        if kind not in RENDER_TYPES:
            raise SceneError(f"{where}: render type {kind!r} is not supported; supported: {list(RENDER_TYPES)}")
        cam = r.get("camera") or {}
        if not isinstance(cam, dict):
            raise SceneError(f"{where}: camera must be a mapping of {sorted(CAMERA_PARAMS)}")
        _unknown(f"{where} camera", cam, tuple(CAMERA_PARAMS))
        try:
            w, h = int(r.get("image_width", 512)), int(r.get("image_height", 512))
            bg = tuple(float(v) for v in r.get("bg_color", (0.0, 0.0, 0.0)))
        except (TypeError, ValueError):
            raise SceneError(f"{where}: image_width/image_height must be integers, bg_color [r, g, b]") from None
        if not (1 <= w <= 8192 and 1 <= h <= 8192) or len(bg) != 3:
            raise SceneError(f"{where}: image size must be 1..8192 pixels and bg_color three numbers")
        prefix = r.get("image_prefix", scene.get("image_prefix"))
        exact = r.get("image_name", scene.get("image_name"))
        cinema = None
        if kind == "cinema":
            try:
                cinema = (int(r.get("phi", 8)), int(r.get("theta", 3)), str(r.get("db_name", name)))
            except (TypeError, ValueError):
                raise SceneError(f"{where}: phi and theta must be integers") from None
            if cinema[0] < 1 or cinema[1] < 1:
                raise SceneError(f"{where}: phi and theta must be positive")
        if prefix is None and exact is None:
            prefix = f"{name}_%06d" if rname == "__default__" else f"{name}_{rname}_%06d"
        notes = _annotations(where, r.get("annotations", True))
        out.renders.append(RenderOut(str(rname), kind, prefix, exact, dict(cam), w, h, bg, cinema,  # type: ignore
                                     notes))
    return out


def render_scene(spec: SceneSpec, published: Any, comm: Any, cycle: int, errors: list[str]) -> list[str]:
    """Draw a parsed scene from this rank's published data (collective); rank 0's written files.

    Problems with this rank's data (a field not published here, no cached model)
    are appended to ``errors``; the rank still takes part with what it has.
    """
    import warnings

    from insitu.blueprint import blocks
    from insitu.render.cached import RenderSpec, annotations_for
    from insitu.render.frame import agree, render_views
    from insitu.render.output import CinemaDatabase, cinema_views, image_name, safe_name

    layers = []
    for p in spec.plots:
        pieces = []
        try:
            pieces = _pieces(p, published, comm, cycle, blocks)
        except Exception as exc:
            errors.append(f"scene '{spec.name}' plot '{p.name}': {exc}")
        layers.append(pieces)
    lattice, ranges = agree(layers, comm)
    rank = 0 if comm is None else comm.Get_rank()
    if lattice is None:
        raise SceneError(f"scene '{spec.name}': no rank has data for its plots "
                         f"(fields {sorted({p.field for p in spec.plots})})")
    plots = []
    for p, pieces, rng in zip(spec.plots, layers, ranges):
        rs = RenderSpec(plot=p.kind, colormap=p.colormap, opacity=p.opacity, value_range=p.value_range,
                        slices=p.slices, iso_values=p.iso_values)
        plots.append((rs.make_plot(rng), pieces))
    layer_names = [(p.field, plot) for p, (plot, _) in zip(spec.plots, plots)]
    time = _published_time(published, blocks, [p.field for p in spec.plots])
    written = []
    for r in spec.renders:
        notes = annotations_for(r.annotations, layer_names, lattice, cycle, time)
        path = None
        if not r.cinema:
            # an image_prefix of an actions file is a path as in Ascent (it may name any folder); a name made up
            # from the scene's name is one plain file name
            path = Path((r.exact_name if r.exact_name is not None
                         else image_name(r.prefix or safe_name(spec.name), cycle)) + ".png")
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            written += render_views(plots, lattice, r.camera, r.width, r.height, comm, cycle,
                                    background=r.background, image_path=path,
                                    views=cinema_views(r.cinema[0], r.cinema[1]) if r.cinema else None,
                                    cinema=CinemaDatabase(Path(f"{r.cinema[2]}.cdb")) if r.cinema and rank == 0
                                    else None, annotations=notes)
        for w in {str(w.message) for w in seen}:
            errors.append(f"scene '{spec.name}' render '{r.name}': warning: {w}")
    return written


def _published_time(published: Any, blocks: Any, fields: Sequence[str]) -> float | None:
    """The simulation time this rank published (``state/time`` of its first domain of the first of ``fields``
    it has), None without one."""
    for name in fields:
        try:
            first = next(iter(blocks(published, name)), None)
        except Exception:  # noqa: BLE001 - a picture without its time is still a picture
            continue
        if first is not None:
            return float(first.time)
    return None


def _pieces(p: PlotSpec, published: Any, comm: Any, cycle: int, blocks: Any) -> list:
    from insitu.render.frame import piece_from_model, pieces_from_blocks

    if p.source == "published":
        return pieces_from_blocks(blocks(published, p.field))
    from insitu.filters.session import current

    cache = current().open_cache(p.cache, comm)
    out = []
    for b in blocks(published, p.field):
        key = (p.field, b.cycle, b.domain_id)
        if key not in cache:
            raise SceneError(f"field '{p.field}' domain {b.domain_id} cycle {b.cycle} is not in cache {p.cache}: "
                             "run af.compress on it before the scene (source: reconstruction)")
        meta = cache.meta(*key)
        out.append(piece_from_model(cache.model(*key), meta))
    return out

