"""Entry points called from Ascent's Python extract (and the embedded runtime).

Ascent passes no parameters to a Python extract besides its source, so the
source is the call::

    -
      action: "add_extracts"
      extracts:
        inr:
          type: "python"
          params:
            source: "import ascent_filters as af; af.compress(fields=['energy'], ratio=100, cache='run.cache')"

Each function parses its keyword arguments (unknown ones are rejected with the
valid ones listed) and delegates to :mod:`insitu`. None of them ever raises:
an exception escaping a Python extract would break every later extract of the
process, so problems are reported (rank, action, field, cause) and rank 0
prints a one-line summary.
"""
from __future__ import annotations

from typing import Any


def compress(**kwargs: Any) -> dict | None:
    """Fit every published block of ``fields`` and put it in the temporal cache.

    Parameters: see ``insitu.filters.compress.COMPRESS_PARAMS`` (fields, ratio,
    target_psnr, max_steps, time_budget_s, cycle_budget_s, cache,
    memory_budget, disk_budget, keep_last, keep_every, warm_start,
    max_error, param_bits, backend, seed). ``max_error=eps`` is the
    error-bounded mode: every decoded owned value lies within ``eps`` of the
    data (the entry's meta records ``fit.error_bound``). Returns this rank's
    figures (blocks, PSNRs, ratios, seconds), or None outside an extract.
    """
    from insitu.filters import compress as compression
    from insitu.filters.env import run_filter

    def work(env, result):
        compression.compress_published(env, compression.CompressParams.from_kwargs(kwargs), result)

    res = run_filter("compress", work, compression.summarise)
    return None if res is None else {"stats": res.stats, "errors": res.errors}


def export(**kwargs: Any) -> dict | None:
    """Write cached cycles of ``field`` reconstructed on the global grid (rank 0 writes).

    Parameters: see ``insitu.exporting.EXPORT_PARAMS`` (field, cycles='last:N'
    | cycle | [cycles], cache, format='npy'|'vti', output_dir, backend).
    """
    from insitu.filters import export as exporting
    from insitu.filters.env import run_filter

    def work(env, result):
        exporting.export_cycles(env, exporting.ExportParams.from_kwargs(kwargs), result)

    res = run_filter("export", work, exporting.summarise)
    return None if res is None else {"stats": res.stats, "errors": res.errors}


def render(**kwargs: Any) -> dict | None:
    """Render cached cycles of ``field`` (e.g. the last 20 when a trigger fires); rank 0 writes PNGs.

    Parameters: see ``insitu.rendering.RENDER_PARAMS`` (field, cycles='last:N'
    | cycle | [cycles], cache, output_dir, image_prefix, plot='volume' |
    'pseudocolor' | 'slice', colormap, opacity, value_range, slices, camera,
    width, height, background, step, cinema={'phi', 'theta', 'db_name'}, backend).
    """
    from insitu.filters import render as rendering
    from insitu.filters.env import run_filter

    def work(env, result):
        rendering.render_cycles(env, rendering.RenderParams.from_kwargs(dict(kwargs)), result)

    res = run_filter("render", work, rendering.summarise)
    return None if res is None else {"stats": res.stats, "errors": res.errors}
