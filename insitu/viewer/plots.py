"""The quality plot: PSNR and compression ratio per cycle, the current cycle marked (a PNG data URL)."""
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


def data_url(png: bytes) -> str:
    """``data:image/png;base64,...`` for an <img src>."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
