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
valid ones listed) and delegates to :mod:`insitu`. Their parameters are
declared once, in :mod:`insitu.filters` (``COMPRESS_PARAMS``, ``RENDER_PARAMS``,
``EXPORT_PARAMS``); the lists in the docstrings below are generated from there. None of them ever raises:
an exception escaping a Python extract would break every later extract of the
process, so problems are reported (rank, action, field, cause) and rank 0
prints a one-line summary.
"""
from __future__ import annotations

from typing import Any


def compress(**kwargs: Any) -> dict | None:
    """Fit every published block of ``fields`` and put it in the temporal cache.

    ``max_abs_error=eps`` (alias ``max_error``) is the error-bounded mode: every
    decoded owned value lies within ``eps`` of the data (the entry's meta
    records ``fit.error_bound``). Returns this rank's figures (blocks, PSNRs,
    ratios, seconds), or None outside an extract.
    """
    from insitu.filters import compress as compression
    from insitu.filters.env import run_filter

    def work(env, result):
        compression.compress_published(env, compression.CompressParams.from_kwargs(kwargs), result)

    res = run_filter("compress", work, compression.summarise)
    return None if res is None else {"stats": res.stats, "errors": res.errors}


def export(**kwargs: Any) -> dict | None:
    """Write cached cycles of ``field`` reconstructed on the global grid (rank 0 writes).

    Returns this rank's figures (files written), or None outside an extract.
    """
    from insitu.filters import export as exporting
    from insitu.filters.env import run_filter

    def work(env, result):
        exporting.export_cycles(env, exporting.ExportParams.from_kwargs(kwargs), result)

    res = run_filter("export", work, exporting.summarise)
    return None if res is None else {"stats": res.stats, "errors": res.errors}


def render(**kwargs: Any) -> dict | None:
    """Render cached cycles of ``field`` (e.g. the last 20 when a trigger fires); rank 0 writes PNGs.

    Returns this rank's figures (images written, seconds), or None outside an extract.
    """
    from insitu.filters import render as rendering
    from insitu.filters.env import run_filter

    def work(env, result):
        rendering.render_cycles(env, rendering.RenderParams.from_kwargs(dict(kwargs)), result)

    res = run_filter("render", work, rendering.summarise)
    return None if res is None else {"stats": res.stats, "errors": res.errors}


def _document() -> None:
    """Append each filter's parameter list, generated from its declarations, to its docstring."""
    from insitu.filters.compress import COMPRESS_PARAMS
    from insitu.filters.export import EXPORT_PARAMS
    from insitu.filters.render import RENDER_PARAMS

    for fn, params, where in ((compress, COMPRESS_PARAMS, "insitu.filters.compress.COMPRESS_PARAMS"),
                              (export, EXPORT_PARAMS, "insitu.filters.export.EXPORT_PARAMS"),
                              (render, RENDER_PARAMS, "insitu.filters.render.RENDER_PARAMS")):
        fn.__doc__ = (f"{(fn.__doc__ or '').rstrip()}\n\n    Parameters (declared in ``{where}``):\n\n"
                      f"{params.doc(indent='    ')}\n")


_document()

#: the filters an actions file can call (``af.<name>(...)``)
FILTERS = ("compress", "render", "export")


def __getattr__(name: str) -> Any:
    """``af.<unknown>(...)`` reports one line listing the filters instead of an AttributeError escaping the
    extract (which would break every later extract of the process in Ascent)."""
    if name.startswith("_"):
        raise AttributeError(name)

    def unknown_filter(*args: Any, **kwargs: Any) -> None:
        import sys

        from insitu.filters.env import PREFIX
        from insitu.filters.session import current

        msg = f"af.{name}: no such filter; the filters are {list(FILTERS)}"
        if current().messages.count(msg) == 1:
            print(f"{PREFIX} {msg}", file=sys.stderr, flush=True)
        current().problems.append(msg)
        return None

    return unknown_filter
