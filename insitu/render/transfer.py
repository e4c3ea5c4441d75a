"""Transfer functions: a matplotlib colormap plus opacity control points, as a lookup table.

    tf = TransferFunction("viridis", opacity=[(0.0, 0.0), (1.0, 0.8)], value_range=(0.0, 2.0))
    lut = tf.lut(256)          # (256, 4) float32 RGBA, straight (not premultiplied) alpha

Opacity control points are (position in [0, 1] of the value range, alpha in
[0, 1]), linearly interpolated; alpha means "opacity per unit length"
(:attr:`TransferFunction.unit`, in world units) for volume rendering, so images
do not depend on the ray-marching step or on how the volume is split into
bricks. Shared by the renderer, the render filter, scenes and the viewer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: the default opacity ramp: transparent below a tenth of the range, then ((t - 0.1) / 0.9)^2 up to opaque at
#: the top. A linear ramp let the rays stop in the dim outer shells of a feature (the low, dark end of the
#: colormap: the demo's hot spots were dim purple in inferno); rising with the square, the opacity lets rays
#: reach the cores, so the picture spans the colormap's brightness (mean luminance of the drawn pixels
#: 1.6-1.9x the linear ramp's on the advection proxy's hot spots, 64^3 and 128^3)
DEFAULT_OPACITY: tuple[tuple[float, float], ...] = ((0.0, 0.0), (0.1, 0.0), (0.4, 0.11), (0.7, 0.44), (1.0, 1.0))


class TransferFunctionError(ValueError):
    """Bad colormap name or opacity points (the message lists the valid choices)."""


def colormaps() -> list[str]:
    """Names accepted as ``colormap`` (matplotlib's registered colormaps, sorted)."""
    import matplotlib

    return sorted(matplotlib.colormaps)


def check_colormap(name: str) -> str:
    """``name`` when it is a known colormap; TransferFunctionError listing the valid ones otherwise."""
    import matplotlib

    if not isinstance(name, str) or name not in matplotlib.colormaps:
        common = ["viridis", "plasma", "inferno", "magma", "cividis", "coolwarm", "jet", "turbo", "gray"]
        raise TransferFunctionError(f"unknown colormap {name!r}: valid choices include {common} "
                                    f"(any of matplotlib's {len(colormaps())} colormap names)")
    return name


def check_opacity(points: Sequence[Sequence[float]] | None) -> tuple[tuple[float, float], ...]:
    """Opacity control points as sorted (position, alpha) pairs, both in [0, 1]."""
    if points is None:
        return DEFAULT_OPACITY
    try:
        pts = tuple(sorted((float(p), float(a)) for p, a in points))
    except (TypeError, ValueError):
        raise TransferFunctionError(f"opacity={points!r} must be a list of [position, alpha] pairs") from None
    if not pts or any(not (0.0 <= p <= 1.0 and 0.0 <= a <= 1.0) for p, a in pts):
        raise TransferFunctionError(f"opacity={points!r}: positions and alphas must lie in [0, 1]")
    return pts


@dataclass(frozen=True)
class TransferFunction:
    """Colormap + opacity ramp over ``value_range`` (None: the data's own range, set at render time)."""

    colormap: str = "viridis"
    opacity: tuple[tuple[float, float], ...] = DEFAULT_OPACITY
    value_range: tuple[float, float] | None = None
    unit: float | None = None  # world length the opacity refers to (None: one cell of the data)

    def __post_init__(self) -> None:
        check_colormap(self.colormap)
        object.__setattr__(self, "opacity", check_opacity(self.opacity))
        if self.value_range is not None:
            lo, hi = (float(v) for v in self.value_range)
            if not (np.isfinite(lo) and np.isfinite(hi)) or hi < lo:
                raise TransferFunctionError(f"value_range={self.value_range!r} must be two finite numbers, min <= max")
            if hi == lo:  # a constant field: centre it in the map (mid colour, mid opacity) rather than erase it
                half = 0.5 * max(abs(lo), 1.0)
                lo, hi = lo - half, hi + half
            object.__setattr__(self, "value_range", (lo, hi))

    def with_range(self, value_range: tuple[float, float]) -> "TransferFunction":
        """The same transfer function over another value range."""
        return TransferFunction(self.colormap, self.opacity, value_range, self.unit)

    def lut(self, n: int = 256) -> np.ndarray:
        """(n, 4) float32 RGBA table over the value range; alpha from the opacity points."""
        import matplotlib

        t = np.linspace(0.0, 1.0, n)
        rgba = np.asarray(matplotlib.colormaps[self.colormap](t), dtype=np.float64)
        pos, alpha = zip(*self.opacity)
        rgba[:, 3] = np.interp(t, pos, alpha)
        return rgba.astype(np.float32)

    def colors(self, values: np.ndarray) -> np.ndarray:
        """RGBA (straight alpha) of ``values`` through the table (clamped to the value range)."""
        lo, hi = self.value_range if self.value_range is not None else (float(np.nanmin(values)),
                                                                         float(np.nanmax(values)))
        lut = self.lut()
        v = np.asarray(values, dtype=np.float64)
        bad = ~np.isfinite(v)
        x = np.clip((np.where(bad, lo, v) - lo) / ((hi - lo) or 1.0), 0.0, 1.0) * (len(lut) - 1)
        i = np.minimum(x.astype(np.int64), len(lut) - 2)
        f = (x - i)[..., None]
        out = (lut[i] * (1 - f) + lut[i + 1] * f).astype(np.float32)
        out[bad] = 0.0  # NaN/Inf (masked data): transparent black
        return out
