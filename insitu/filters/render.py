"""The ``render`` filter: pictures of cached cycles from an actions file or a trigger.

``af.render(field='v', cycles='last:20', cache='run.cache', output_dir='trigger_frames')``
renders the 20 newest cached cycles (this one included) from every rank's
models: each rank decodes its share of the domains, all ranks composite, rank
0 writes ``output_dir/<image_prefix % cycle>.png`` (or a Cinema database with
``cinema={'phi': 8, 'theta': 3, 'db_name': 'v'}``).
"""
from __future__ import annotations

import dataclasses
from typing import Any

from insitu.filters.env import ExtractEnv, FilterResult
from insitu.filters.params import (CACHE, CYCLES, DECODE_BACKEND, Check, FilterParamError, FilterParams, Invalid,
                                   Param, ParamSet, flag, path, select_cached, text,
                                   via)
from insitu.render.cached import SPEC_CHECKS, RenderSpec
from insitu.render.camera import CAMERA_PARAMS
from insitu.render.raymarch import PLOT_KINDS
from insitu.render.transfer import DEFAULT_OPACITY

_SPEC = {f.name: f for f in dataclasses.fields(RenderSpec)}


def _spec_default(name: str) -> Any:
    """The default of RenderSpec's field ``name`` (the renderer's defaults are the filter's)."""
    f = _SPEC[name]
    return f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]


def _spec_param(name: str, doc: str, **kw: Any) -> Param:
    """A parameter the filter hands to RenderSpec: its default and check are the renderer's."""
    if "choices" not in kw and "check" not in kw:
        kw["check"] = via(SPEC_CHECKS[name]) if name in SPEC_CHECKS else None
    return Param(name, doc, _spec_default(name), **kw)


def _cinema(v: Any) -> Any:
    if not isinstance(v, dict) or set(v) - {"phi", "theta", "db_name"}:
        raise Invalid("must be a mapping with phi, theta, db_name")
    for k in ("phi", "theta"):
        try:
            ok = k not in v or int(v[k]) >= 1
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise Invalid(f"must be a mapping with phi, theta, db_name ({k} a positive number of views)")
    return v


def _image_prefix(v: Any) -> Any:
    """A relative image name inside the output folder: no absolute path, no '..' component."""
    if not isinstance(v, str):
        raise Invalid("must be a string")
    parts = v.replace("\\", "/").split("/")
    if v.startswith(("/", "\\")) or ".." in parts:
        raise Invalid("would write outside the output folder: give a name, or a path inside output_dir")
    return v


RENDER_PARAMS = ParamSet("render", [
    Param("field", "the cached field to render", required=True, check=text("the name of a cached field")),
    CYCLES,
    CACHE,
    Param("output_dir", "folder of the images", "renders", check=path(empty=True)),
    Param("image_prefix", "image name with a cycle format, e.g. 'v_%04d' (subfolders of output_dir allowed, "
                          "never a path out of it)", check=Check(_image_prefix, "str"), default_doc="FIELD_%06d"),
    _spec_param("plot", "what to draw", choices=PLOT_KINDS),
    _spec_param("colormap", "a matplotlib colormap name"),
    _spec_param("opacity", "opacity control points [[position, alpha], ...] over the value range",
                default_doc=str([list(p) for p in DEFAULT_OPACITY])),
    _spec_param("value_range", "[min, max] of the colormap", default_doc="the cached range of each cycle"),
    _spec_param("slices", "for plot='slice': [[axis, fraction], ...], e.g. [['z', 0.5]]",
                default_doc="x, y and z at 0.5"),
    _spec_param("iso_values", "for plot='isosurface': the values whose surfaces are drawn", default_doc="mid-range"),
    _spec_param("camera", f"Ascent camera parameters {sorted(CAMERA_PARAMS)}", default_doc="the whole data in view"),
    _spec_param("width", "image width in pixels"),
    _spec_param("height", "image height in pixels"),
    _spec_param("background", "[r, g, b] in [0, 1]", default_doc="black"),
    _spec_param("step", "ray-marching step in cells"),
    _spec_param("annotations", "draw a colour bar (field name and value range), the cycle and time and the "
                               "domain's outline on the pictures", check=flag()),
    Param("cinema", "{'phi': N, 'theta': M, 'db_name': NAME}: a Cinema database over a ring of views instead of "
                    "images", check=Check(_cinema, "dict")),
    DECODE_BACKEND,
])
#: the parameters that say how to draw (RenderSpec's)
SPEC_KEYS = tuple(p.name for p in RENDER_PARAMS if p.name in _SPEC)


class RenderParams(FilterParams):
    """The checked parameters of one ``af.render`` call: one attribute per :data:`RENDER_PARAMS` entry."""

    PARAMS = RENDER_PARAMS

    def check(self, action: str) -> None:
        """The drawing parameters together (e.g. slices with the plot): :meth:`RenderSpec.check`."""
        try:
            self.spec().check(action)
        except (ValueError, TypeError) as exc:
            raise FilterParamError(str(exc)) from None

    @property
    def spec_kwargs(self) -> dict:
        return {k: getattr(self, k) for k in SPEC_KEYS}

    def spec(self) -> RenderSpec:
        return RenderSpec(**self.spec_kwargs)

    def cinema_views(self) -> tuple[int, int, str] | None:
        """``cinema`` as (phi, theta, database name), None for images."""
        if self.cinema is None:
            return None
        return (int(self.cinema.get("phi", 8)), int(self.cinema.get("theta", 3)),
                str(self.cinema.get("db_name", self.field)))

    def select(self, available: list[int]) -> list[int]:
        """The cycles asked for among the cached ones (FilterParamError showing the cached range)."""
        return select_cached(self.PARAMS.action, self.cycles, available)


def render_cycles(env: ExtractEnv, params: RenderParams, result: FilterResult) -> None:
    """Collective: every rank reads the index, decodes its share and composites; rank 0 writes."""
    import warnings

    from insitu.cache import CacheReader
    from insitu.filters.session import current, on_timeline
    from insitu.render.cached import render_cached

    current().flush_all()  # this rank's newest entries may still be in memory only
    # collective (and a barrier): every rank's entries are on disk before rank 0 scans
    own = current().own_cycles(params.cache, params.field, env.comm if env.size > 1 else None)
    reader = CacheReader(params.cache, comm=env.comm if env.size > 1 else None)
    try:
        fields = reader.fields()
        unwritten = current().unwritten(params.cache, params.field)
        if params.field not in fields:
            if unwritten:  # e.g. a full disk: the entries are kept and retried, they are not missing
                raise FilterParamError(f"render: field {params.field!r} has nothing on disk in {params.cache} yet: "
                                       f"{unwritten} entries of this rank could not be written (see the write "
                                       "error above); they stay in memory and are retried at the next flush")
            raise FilterParamError(f"render: field {params.field!r} is not cached in {params.cache}; "
                                   f"cached fields: {sorted(fields)}")
        if unwritten:
            result.notes.append(f"{unwritten} entries of this rank are still in memory only (their write failed); "
                                "the images show what is on disk")
        cycles = params.select(on_timeline(reader.cycles(params.field), own))
        cinema = params.cinema_views()
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            res = render_cached(reader, params.field, cycles, params.spec(), env.comm if env.size > 1 else None,
                                output_dir=params.output_dir, image_prefix=params.image_prefix, cinema=cinema,
                                decode_backend=params.backend)
        for w in {str(w.message) for w in seen}:
            result.notes.append(w)
        for e in res.errors:
            result.error(e)
        result.stats = {"written": res.written, "seconds": sum(res.seconds), "cycles": cycles,
                        "composite_seconds": res.stats.composite}
    finally:
        reader.close()


def summarise(results: list[FilterResult]) -> str:
    written = [w for r in results for w in r.stats.get("written", [])]
    errors = sum(len(r.errors) for r in results)
    secs = max((r.stats.get("seconds", 0.0) for r in results), default=0.0)
    line = f"render: wrote {len(written)} image(s) in {secs:.2f} s" + (f" ({written[-1]} ...)" if written else "")
    for note in sorted({n for r in results for n in r.notes}):
        line += f"\n{' ' * 12}note: {note}"
    return line + (f", {errors} problem(s) reported above" if errors else "")
