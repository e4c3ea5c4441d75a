"""The ``render`` filter: pictures of cached cycles from an actions file or a trigger.

``af.render(field='v', cycles='last:20', cache='run.cache', output_dir='trigger_frames')``
renders the 20 newest cached cycles (this one included) from every rank's
models: each rank decodes its share of the domains, all ranks composite, rank
0 writes ``output_dir/<image_prefix % cycle>.png`` (or a Cinema database with
``cinema={'phi': 8, 'theta': 3, 'db_name': 'v'}``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from insitu.filters.env import ExtractEnv, FilterParamError, FilterResult, check_kwargs, select_cycles
from insitu.render.camera import CAMERA_PARAMS
from insitu.render.raymarch import PLOT_KINDS

RENDER_PARAMS = {
    "field": "the cached field to render",
    "cycles": "'last:N' (default 'last:1'), one cycle number, or a list of cycle numbers",
    "cache": "cache directory (default 'run.cache')",
    "output_dir": "folder of the images (default 'renders')",
    "image_prefix": "image name with a cycle format, e.g. 'v_%04d' (default FIELD_%06d)",
    "plot": f"one of {list(PLOT_KINDS)} (default 'volume')",
    "colormap": "a matplotlib colormap name (default 'viridis')",
    "opacity": "opacity control points [[position, alpha], ...] over the value range (default [[0,0],[1,0.6]])",
    "value_range": "[min, max] of the colormap (default: the cached range of each cycle)",
    "slices": "for plot='slice': [[axis, fraction], ...], e.g. [['z', 0.5]] (default: x, y and z at 0.5)",
    "iso_values": "for plot='isosurface': the values whose surfaces are drawn (default: mid-range)",
    "camera": f"Ascent camera parameters {sorted(CAMERA_PARAMS)}",
    "width": "image width in pixels (default 512)",
    "height": "image height in pixels (default 512)",
    "background": "[r, g, b] in [0, 1] (default black)",
    "step": "ray-marching step in cells (default 0.5)",
    "cinema": "{'phi': N, 'theta': M, 'db_name': NAME}: a Cinema database over a ring of views instead of images",
    "backend": "inr decode backend (default 'auto')",
}
_SPEC_KEYS = ("plot", "colormap", "opacity", "value_range", "slices", "iso_values", "camera", "width", "height", "background",
              "step")


@dataclass
class RenderParams:
    field: str = ""
    cycles: Any = "last:1"
    cache: str = "run.cache"
    output_dir: str = "renders"
    image_prefix: str | None = None
    cinema: dict | None = None
    backend: str = "auto"
    spec_kwargs: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_kwargs(cls, kwargs: dict) -> "RenderParams":
        from insitu.render.cached import RenderSpec

        check_kwargs("render", kwargs, RENDER_PARAMS)
        spec_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in _SPEC_KEYS}
        p = cls(**kwargs, spec_kwargs=spec_kwargs)
        if not isinstance(p.field, str) or not p.field:
            raise FilterParamError("render: field= is required (the name of a cached field)")
        try:
            RenderSpec(**spec_kwargs).check("render")
        except (ValueError, TypeError) as exc:
            raise FilterParamError(str(exc)) from None
        if p.cinema is not None:
            if not isinstance(p.cinema, dict) or set(p.cinema) - {"phi", "theta", "db_name"}:
                raise FilterParamError(f"render: cinema={p.cinema!r} must be a mapping with phi, theta, db_name")
        return p

    def spec(self):
        from insitu.render.cached import RenderSpec

        return RenderSpec(**self.spec_kwargs)

    def select(self, available: list[int]) -> list[int]:
        """The cycles asked for among the cached ones (FilterParamError showing the cached range)."""
        return select_cycles("render", self.cycles, available)


def render_cycles(env: ExtractEnv, params: RenderParams, result: FilterResult) -> None:
    """Collective: every rank reads the index, decodes its share and composites; rank 0 writes."""
    import warnings

    from insitu.cache import CacheReader
    from insitu.filters.session import current
    from insitu.render.cached import render_cached

    current().flush_all()  # this rank's newest entries may still be in memory only
    if env.comm is not None and env.size > 1:
        env.comm.Barrier()  # ... and every rank's must be on disk before rank 0 scans
    reader = CacheReader(params.cache, comm=env.comm if env.size > 1 else None)
    try:
        fields = reader.fields()
        if params.field not in fields:
            raise FilterParamError(f"render: field {params.field!r} is not cached in {params.cache}; "
                                   f"cached fields: {sorted(fields)}")
        cycles = params.select(reader.cycles(params.field))
        cinema = None
        if params.cinema is not None:
            cinema = (int(params.cinema.get("phi", 8)), int(params.cinema.get("theta", 3)),
                      str(params.cinema.get("db_name", params.field)))
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
