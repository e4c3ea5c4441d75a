"""Pictures that explain themselves: a colour bar per field, the cycle and time, the domain's outline.

    notes = Annotations((Legend("temperature", "inferno", (0.0, 1.4)),), cycle=40, time=0.4,
                        bounds=lattice.bounds())
    rgb = annotate(flatten(image, background), notes, camera, background)

Drawn on the flattened RGB picture with Pillow (its built-in font, no font
file needed): the colour bars on the right (the colormap from its minimum at
the bottom to its maximum at the top, the two values beside the bar, the
field's name above it), ``cycle N  t = T`` at the top left, and the twelve
edges of the data's bounding box projected through the camera, so a volume
cut by the domain's face reads as the domain's edge rather than a hard flat
edge of the data. :func:`layout` says where each part goes (the tests read
the pixels there). On by default in ``insitu replay``, ``af.render``, scenes
and Cinema; off with ``--no-annotations`` / ``annotations=False`` /
``annotations: false``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1/y1 exclusive


@dataclass(frozen=True)
class Legend:
    """One colour bar: a field's name, the colormap it is drawn with, and the value range the colormap spans."""

    field: str
    colormap: str
    value_range: tuple[float, float]


@dataclass(frozen=True)
class Annotations:
    """What a picture says about itself: colour bars, cycle and simulation time, the data's world bounds."""

    legends: tuple[Legend, ...] = ()
    cycle: int | None = None
    time: float | None = None
    bounds: tuple[Sequence[float], Sequence[float]] | None = None  # world (lo, hi) (x, y, z): the outline


@dataclass(frozen=True)
class Layout:
    """Where the parts of the annotations go in a ``width`` x ``height`` picture."""

    font_size: int
    bars: tuple[Box, ...]  # one colour bar per legend, top to bottom
    names: tuple[tuple[int, int], ...]  # right end, bottom of each legend's field name (above its bar)
    labels: tuple[Box, ...]  # the region left of each bar where its max (top) and min (bottom) are written
    title: tuple[int, int]  # top-left corner of the ``cycle N  t = T`` line


def layout(width: int, height: int, legends: int) -> Layout:
    """The places of ``legends`` colour bars, their labels and the cycle line in a ``width`` x ``height`` image."""
    font = int(min(24, max(10, round(min(width, height) / 30))))
    margin = max(4, font // 2)
    bar_w = max(6, width // 40)
    x1 = width - margin
    x0 = x1 - bar_w
    label_w = int(font * 4.2)  # about 7 characters of the default font (~0.6 em each)
    top = margin + 2 * font  # room for the field name above the first bar
    usable = int(height * 0.6)
    n = max(1, legends)
    each = max(font * 3, usable // n)
    bars, names, labels = [], [], []
    for i in range(legends):
        y0 = top + i * (each + font * 2)
        y1 = y0 + each - font
        bars.append((x0, y0, x1, y1))
        names.append((x1, y0 - font // 3))
        labels.append((max(0, x0 - label_w - margin // 2), y0, x0 - margin // 2, y1))
    return Layout(font, tuple(bars), tuple(names), tuple(labels), (margin, margin))


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: scalable
    except TypeError:  # older Pillow: the fixed bitmap font
        return ImageFont.load_default()


def _ink(background: Sequence[float]) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(text colour, outline colour) that stand out from ``background``."""
    bg = np.asarray(background, dtype=np.float64)[:3]
    dark = float(0.2126 * bg[0] + 0.7152 * bg[1] + 0.0722 * bg[2]) < 0.5
    return ((235, 235, 235), (150, 150, 150)) if dark else ((20, 20, 20), (110, 110, 110))


def _put(draw: Any, font: Any, xy: tuple[float, float], text: str, fill: Any, right: bool = False,
         bottom: bool = False) -> None:
    """``text`` with its top-left (or right / bottom edge) at ``xy``; placed by its bounding box, which works for
    the scalable and the bitmap default font alike (anchors need a scalable one)."""
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    x = xy[0] - (x1 if right else x0)
    y = xy[1] - (y1 if bottom else y0)
    draw.text((x, y), text, fill=fill, font=font)


def _number(v: float, span: float) -> str:
    """``v`` in 4 significant digits; round-off next to zero (|v| < 1e-6 of the range) written as 0."""
    return "0" if abs(v) < 1e-6 * span else f"{v:.4g}"


def box_edges(bounds: tuple[Sequence[float], Sequence[float]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The 12 edges of the world box ``bounds`` = (lo, hi), each as two (x, y, z) corners."""
    lo, hi = np.asarray(bounds[0], dtype=np.float64), np.asarray(bounds[1], dtype=np.float64)
    corners = {c: np.where(np.array(c, dtype=bool), hi, lo) for c in itertools.product((0, 1), repeat=3)}
    return [(corners[a], corners[b]) for a, b in itertools.combinations(corners, 2)
            if sum(x != y for x, y in zip(a, b)) == 1]


def annotate(rgb: np.ndarray, notes: Annotations, camera: Any = None,
             background: Sequence[float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """``rgb`` (uint8, height x width x 3) with the annotations drawn on it (a new array).

    The outline needs the ``camera`` (an :class:`insitu.render.camera.Camera`)
    the picture was taken with; edges with a corner behind the eye are left out.
    """
    import matplotlib
    from PIL import Image, ImageDraw

    height, width = rgb.shape[:2]
    img = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), mode="RGB")
    draw = ImageDraw.Draw(img)
    text, line = _ink(background)
    lay = layout(width, height, len(notes.legends))
    font = _font(lay.font_size)

    if notes.bounds is not None and camera is not None:
        fwd = camera.basis()[0]
        eye = np.asarray(camera.position, dtype=np.float64)
        for a, b in box_edges(notes.bounds):
            if (a - eye) @ fwd <= 0 or (b - eye) @ fwd <= 0:
                continue  # behind the eye: its projection would be meaningless
            (xa, ya), (xb, yb) = camera.project(np.stack([a, b]))
            draw.line([(xa, ya), (xb, yb)], fill=line, width=1)

    for legend, bar, name, label in zip(notes.legends, lay.bars, lay.names, lay.labels):
        x0, y0, x1, y1 = bar
        t = np.linspace(1.0, 0.0, y1 - y0)  # top row: the maximum
        colours = np.asarray(matplotlib.colormaps[legend.colormap](t))[:, :3]
        strip = np.repeat(np.rint(colours * 255).astype(np.uint8)[:, None, :], x1 - x0, axis=1)
        img.paste(Image.fromarray(strip, mode="RGB"), (x0, y0))
        draw.rectangle([x0 - 1, y0 - 1, x1, y1], outline=text, width=1)
        lo, hi = legend.value_range
        span = abs(hi - lo) or abs(hi) or 1.0
        _put(draw, font, (label[2], y0), _number(hi, span), text, right=True)
        _put(draw, font, (label[2], y1), _number(lo, span), text, right=True, bottom=True)
        _put(draw, font, name, legend.field, text, right=True, bottom=True)

    parts = [f"cycle {notes.cycle}"] if notes.cycle is not None else []
    if notes.time is not None:
        parts.append(f"t = {notes.time:.6g}")
    if parts:
        _put(draw, font, lay.title, "   ".join(parts), text)
    return np.asarray(img)
