"""Pictures that explain themselves (insitu.render.annotate): colour bar, cycle and time, outline, and the default
transfer function's brightness; on by default in replay, af.render, scenes and Cinema, off on request."""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image

from support import render_common as rc

from insitu.cli.command import main
from insitu.render.annotate import box_edges, layout
from insitu.render.frame import agree, camera_for, render_frame
from insitu.render.composite import flatten
from insitu.render.raymarch import Plot
from insitu.render.transfer import DEFAULT_OPACITY, TransferFunction

SIZE = (200, 160)  # width, height of the replayed pictures
CAMERA = {"azimuth": 30, "elevation": 25}
OLD_OPACITY = ((0.0, 0.0), (1.0, 0.6))  # the default before annotated pictures: a linear ramp


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """Cycles 0 and 3 of a field of blobs (time 0.1 x cycle), 2 domains."""
    path = tmp_path_factory.mktemp("annotate") / "run.cache"
    rc.write_cache(path, {c: rc.field((24, 20, 16), seed=2 + c) for c in (0, 3)}, (2, 1, 1), ratio=8, max_steps=120)
    return path


def png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def replay(cache: Path, out: Path, *extra: str) -> None:
    assert main(["replay", str(cache), "--cycles", "3", "--size", f"{SIZE[0]}x{SIZE[1]}", "--colormap", "inferno",
                 "--camera", "azimuth=30,elevation=25", "-o", str(out), *extra]) == 0


def outline(cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """The data box's edges seen by the replay's camera: (N, 2) pixels (column, row) along the middle halves of
    the edges, and a mask of every pixel within 3 of an edge."""
    from PIL import ImageDraw

    from insitu.cache import TemporalCache
    from insitu.render.cached import lattice_of

    with TemporalCache.open(cache) as reader:
        lattice = lattice_of([reader.meta("f", 3, d) for d in reader.domains("f", 3)])
    camera = camera_for(lattice, CAMERA, *SIZE)
    canvas = Image.new("L", SIZE)
    pen = ImageDraw.Draw(canvas)
    pts = []
    for a, b in box_edges(lattice.bounds()):
        pen.line([tuple(p) for p in camera.project(np.stack([a, b]))], fill=255, width=7)
        pts += [a + t * (b - a) for t in np.linspace(0.25, 0.75, 9)]
    return np.rint(camera.project(np.array(pts))).astype(int), np.asarray(canvas) > 0


def test_replay_draws_colour_bar_labels_time_and_outline(cache, tmp_path):
    replay(cache, tmp_path / "on")
    replay(cache, tmp_path / "off", "--no-annotations")
    on, off = png(tmp_path / "on" / "f_000003.png"), png(tmp_path / "off" / "f_000003.png")
    lay = layout(*SIZE, 1)
    px, near_outline = outline(cache)

    # the colour bar: inferno from its maximum (top row) to its minimum (bottom row)
    x0, y0, x1, y1 = lay.bars[0]
    column = on[y0:y1, (x0 + x1) // 2]
    expect = np.rint(np.asarray(matplotlib.colormaps["inferno"](np.linspace(1, 0, y1 - y0)))[:, :3] * 255)
    assert np.abs(column - expect).max() <= 2
    assert np.abs(off[y0:y1, x0:x1]).max() < 40  # nothing of it without annotations (background, faint volume)

    # text: the value range beside the bar, the field's name above it, the cycle and time at the top left
    def text_pixels(img: np.ndarray, box: tuple[int, int, int, int]) -> int:
        bx0, by0, bx1, by1 = box
        light = img[by0:by1, bx0:bx1].min(axis=-1) > 100  # light grey to white: the text (antialiased) on black
        return int((light & ~near_outline[by0:by1, bx0:bx1]).sum())

    lx0, ly0, lx1, ly1 = lay.labels[0]
    font = lay.font_size
    top_label = (lx0, ly0, lx1, ly0 + font + 2)
    bottom_label = (lx0, ly1 - font - 2, lx1, ly1)
    name = (x0 - 2 * font, y0 - 2 * font, x1, y0)
    title = (lay.title[0], lay.title[1], lay.title[0] + 8 * font, lay.title[1] + font + 2)
    for box in (top_label, bottom_label, name, title):
        assert text_pixels(on, box) >= 5, box
        assert text_pixels(off, box) == 0, box

    # the outline: the box's edges are grey lines (where the volume does not cover them), none without annotations
    inside = (px[:, 0] >= 0) & (px[:, 0] < SIZE[0]) & (px[:, 1] >= 0) & (px[:, 1] < SIZE[1])
    px = px[inside]
    assert len(px) > 40

    def grey_near(img: np.ndarray, c: int, r: int) -> bool:
        patch = img[max(r - 1, 0): r + 2, max(c - 1, 0): c + 2].reshape(-1, 3)
        return bool(((patch.min(axis=1) > 60) & (np.ptp(patch, axis=1) < 12)).any())

    assert np.mean([grey_near(on, c, r) for c, r in px]) > 0.6
    assert not any(grey_near(off, c, r) for c, r in px)

    # everything else is the same picture: the annotations draw on top, they do not change the rendering
    elsewhere = ~near_outline
    elsewhere[: ly1 + font, lx0 - font:] = False  # the legend column
    elsewhere[: title[3] + 2, : title[2] + 4 * font] = False  # the cycle line
    assert elsewhere.mean() > 0.5
    assert np.array_equal(on[elsewhere], off[elsewhere])


def test_cinema_pictures_are_annotated_unless_asked_not_to(cache, tmp_path):
    replay(cache, tmp_path / "on", "--cinema", "2x1")
    replay(cache, tmp_path / "off", "--cinema", "2x1", "--no-annotations")
    x0, y0, x1, y1 = layout(*SIZE, 1).bars[0]
    for view in ("-180_0", "0_0"):
        on = png(tmp_path / "on" / "f.cdb" / "image" / "3" / f"{view}.png")
        off = png(tmp_path / "off" / "f.cdb" / "image" / "3" / f"{view}.png")
        top, bottom = on[y0 + 1, (x0 + x1) // 2], on[y1 - 2, (x0 + x1) // 2]
        assert top.sum() > 500 and bottom.sum() < 60  # inferno: pale yellow at the top, near black at the bottom
        assert np.abs(off[y0:y1, x0:x1]).max() < 40


def test_render_filter_and_scene_params_turn_annotations_off(cache, tmp_path):
    """af.render(annotations=False) and a scene render's ``annotations: false`` give bare pictures; bad values
    are one clear error naming the parameter."""
    from insitu.filters.params import FilterParamError
    from insitu.filters.render import RenderParams
    from insitu.runtime.scenes import SceneError, parse_scene

    base = dict(field="f", cache=str(cache))
    assert RenderParams.from_kwargs(base).spec().annotations is True
    assert RenderParams.from_kwargs({**base, "annotations": False}).spec().annotations is False
    with pytest.raises(FilterParamError, match=r"render: annotations='no' .*True or False"):
        RenderParams.from_kwargs({**base, "annotations": "no"})

    plots = {"p": {"type": "volume", "field": "f"}}
    assert parse_scene("s", {"plots": plots}).renders[0].annotations is True
    for off in (False, "false", "False"):
        scene = {"plots": plots, "renders": {"r": {"annotations": off}}}
        assert parse_scene("s", scene).renders[0].annotations is False
    with pytest.raises(SceneError, match=r"scene 's' render 'r': annotations='maybe' is invalid: valid choices"):
        parse_scene("s", {"plots": plots, "renders": {"r": {"annotations": "maybe"}}})


def luminance_of_drawn(rgb: np.ndarray) -> float:
    """Mean luminance (0..1) of the pixels the volume covers (not the black background)."""
    x = rgb.astype(float) / 255
    lum = 0.2126 * x[..., 0] + 0.7152 * x[..., 1] + 0.0722 * x[..., 2]
    return float(lum[rgb.sum(axis=-1) > 0].mean())


@pytest.mark.parametrize("n", [48, 96])
def test_default_transfer_function_is_brighter_than_the_linear_ramp(n):
    """The advection proxy's hot spots in inferno on black: the default opacity lets the rays reach the bright
    cores instead of stopping in the dark outer shells."""
    from sims import advection

    p = argparse.ArgumentParser()
    advection.add_options(p)
    args = p.parse_args([])
    args.seed = 0
    shape = (n, n, n)
    idx = np.meshgrid(*[np.arange(s, dtype=float) for s in shape], indexing="ij")
    values = advection.exact(args, shape, 0.0, idx).astype(np.float32)
    pieces = rc.pieces(values, (2, 1, 1))
    lattice, (rng,) = agree([pieces], None)
    camera = camera_for(lattice, CAMERA, 160, 160)

    def picture(opacity) -> np.ndarray:
        plot = Plot("volume", TransferFunction("inferno", opacity, rng))
        return flatten(render_frame([(plot, pieces)], lattice, camera))

    new, old = luminance_of_drawn(picture(DEFAULT_OPACITY)), luminance_of_drawn(picture(OLD_OPACITY))
    assert new > 1.4 * old, (new, old)
