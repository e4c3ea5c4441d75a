"""The viewer's pictures drawn with matplotlib (PNG data URLs): the quality plot (PSNR and compression ratio per
cycle, the current cycle marked) and the colour bar of the volume and slice views."""
from __future__ import annotations

import base64
import io
import math
from typing import Sequence


def quality_png(cycles: Sequence[int], psnr: Sequence[float], ratio: Sequence[float], current: int | None,
                unavailable: Sequence[int] = (), size: tuple[float, float] = (4.2, 2.2), dpi: int = 90) -> bytes:
    """PNG bytes: PSNR (left axis) and ratio (right axis) against the cycle, a vertical line at ``current``.

    NaN values (unknown PSNR, exact blocks) leave gaps; ``unavailable`` cycles get a red cross.
    """
    # the object-oriented API with the Agg canvas: no pyplot global state, safe in a server
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    ax.plot(cycles, psnr, "o-", color="tab:blue", ms=3, lw=1.2)
    ax.set_xlabel("cycle", fontsize=8)
    ax.set_ylabel("PSNR (dB)", color="tab:blue", fontsize=8)
    ax.tick_params(labelsize=7)
    ax2 = ax.twinx()
    ax2.plot(cycles, ratio, "s--", color="tab:orange", ms=3, lw=1.0)
    ax2.set_ylabel("ratio (x)", color="tab:orange", fontsize=8)
    ax2.tick_params(labelsize=7)
    if current is not None:
        ax.axvline(current, color="crimson", lw=1.5, alpha=0.8)
    finite = [p for p in psnr if not math.isnan(p)]
    for c in unavailable:
        ax.plot([c], [min(finite) if finite else 0.0], "x", color="red", ms=7, mew=2)
    fig.tight_layout(pad=0.4)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def colorbar_png(colormap: str, value_range: tuple[float, float], label: str, size: tuple[float, float] = (3.8, 0.75),
                 dpi: int = 90) -> bytes:
    """PNG bytes: a horizontal colour bar of ``colormap`` over ``value_range`` (ticks in data units), ``label``
    (the field's name) under it."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    lo, hi = value_range
    fig = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.03, 0.62, 0.94, 0.34))
    ax.imshow(np.linspace(0.0, 1.0, 256)[None, :], aspect="auto", cmap=colormap, extent=(lo, hi, 0.0, 1.0))
    ax.set_yticks([])
    ax.tick_params(labelsize=7, pad=1)
    ax.set_xlabel(label, fontsize=8, labelpad=1)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def data_url(png: bytes) -> str:
    """``data:image/png;base64,...`` for an <img src>."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
