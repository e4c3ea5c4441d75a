"""Ascent scenes in the embedded runtime (add_scenes), serial and over MPI ranks."""
import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from support import render_common as rc

import insitu.runtime.embedded as runtime_mod
from support.mpi import run_mpi
from insitu.blueprint import uniform_domain
from insitu.runtime.scenes import SceneError, parse_scene


def png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


@pytest.fixture
def rt(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runtime_mod.reset_process_state()
    r = runtime_mod.connect(prefer="embedded")
    yield r
    r.close()
    from insitu.filters.compress import close_all

    close_all()  # the reconstruction scene's cache lives in this test's folder


def publish(rt, cycle=3):
    values = rc.field((24, 20, 28), seed=2)
    rt.publish([uniform_domain(values, field="temp", spacing=(0.5, 0.5, 0.5), cycle=cycle, time=0.3)])
    return values


def test_volume_and_pseudocolor_scenes_write_named_images(rt, tmp_path):
    publish(rt, cycle=3)
    rt.execute([{"action": "add_scenes", "scenes": {
        "s1": {"plots": {"p1": {"type": "volume", "field": "temp", "min_value": 0, "max_value": 1.5}},
               "image_prefix": "vol_%04d"},
        "s2": {"plots": {"p1": {"type": "pseudocolor", "field": "temp", "color_table": {"name": "Viridis"}}},
               "renders": {"r1": {"image_name": "surf", "camera": {"azimuth": 30, "elevation": 20, "zoom": 0.2},
                                  "image_width": 100, "image_height": 80, "bg_color": [1, 1, 1]}}},
    }}])
    assert rt.info()["status"]["message"] == "completed", rt.info()["status"]
    vol, surf = png(tmp_path / "vol_0003.png"), png(tmp_path / "surf.png")
    assert vol.shape == (512, 512, 3) and (vol.sum(axis=2) > 20).mean() > 0.1
    assert surf.shape == (80, 100, 3)
    white = (surf == 255).all(axis=2)
    assert 0.1 < white.mean() < 0.9  # white background around an opaque surface
    assert rt.info()["timings"]["scenes"].keys() == {"s1", "s2"}
    assert sorted(Path(p).name for p in rt.info()["images"]) == ["surf.png", "vol_0003.png"]


def test_scene_pictures_are_annotated_unless_a_render_says_annotations_false(rt, tmp_path):
    """Annotated by default (the colour bar of the plot's colormap, the cycle and time); bare with
    ``annotations: false`` (as Ascent writes it)."""
    import matplotlib

    from insitu.render.annotate import layout

    publish(rt, cycle=7)
    size = {"image_width": 200, "image_height": 160, "camera": {"azimuth": 30, "elevation": 25}}
    rt.execute([{"action": "add_scenes", "scenes": {"s": {
        "plots": {"p": {"type": "volume", "field": "temp", "color_table": {"name": "Viridis"}}},
        "renders": {"on": dict(size, image_prefix="on_%04d"),
                    "off": dict(size, image_prefix="off_%04d", annotations="false")}}}}])
    on, off = png(tmp_path / "on_0007.png"), png(tmp_path / "off_0007.png")
    lay = layout(200, 160, 1)
    x0, y0, x1, y1 = lay.bars[0]
    top, bottom = np.rint(np.asarray(matplotlib.colormaps["viridis"]([1.0, 0.0]))[:, :3] * 255)
    assert np.abs(on[y0, (x0 + x1) // 2] - top).max() <= 2
    assert np.abs(on[y1 - 1, (x0 + x1) // 2] - bottom).max() <= 2
    assert np.abs(off[y0:y1, x0:x1]).max() < 40
    tx, ty, f = lay.title[0], lay.title[1], lay.font_size
    assert (on[ty: ty + f + 2, tx: tx + 8 * f].min(axis=-1) > 180).sum() >= 5  # "cycle 7   t = 0.3"
    assert (off[ty: ty + f + 2, tx: tx + 8 * f].min(axis=-1) > 180).sum() == 0


def test_cinema_render_and_reconstruction_source(rt, tmp_path):
    """af.compress then a scene of the reconstruction; a cinema render writes a database."""
    publish(rt, cycle=5)
    rt.execute([
        {"action": "add_extracts", "extracts": {"c": {"type": "python", "params": {
            "source": "import ascent_filters as af; af.compress(fields=['temp'], ratio=8, cache='run.cache', "
                      "max_steps=400, backend='native')"}}}},
        {"action": "add_scenes", "scenes": {
            "orig": {"plots": {"p": {"type": "slice", "field": "temp", "colormap": "plasma"}}, "image_name": "orig"},
            "rec": {"plots": {"p": {"type": "slice", "field": "temp", "colormap": "plasma",
                                    "source": "reconstruction"}}, "image_name": "rec"},
            "ring": {"plots": {"p": {"type": "volume", "field": "temp"}},
                     "renders": {"r": {"type": "cinema", "phi": 3, "theta": 2, "db_name": "ring",
                                       "image_width": 64, "image_height": 64}}},
        }},
    ])
    assert rt.info()["status"]["message"] == "completed", rt.info()["status"]
    a, b = png(tmp_path / "orig.png"), png(tmp_path / "rec.png")
    assert (a.sum(axis=2) > 20).mean() > 0.1
    mse = np.mean((a - b) ** 2)
    assert 0 < mse and 10 * np.log10(255 ** 2 / mse) > 30  # the reconstruction looks like the data
    with open(tmp_path / "ring.cdb" / "data.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {r["time"] for r in rows} == {"5"}
    assert all((tmp_path / "ring.cdb" / r["FILE"]).exists() for r in rows)


@pytest.mark.parametrize("scene,message", [
    ({"plots": {"p": {"type": "contour", "field": "temp"}}}, "supported types: ['volume', 'pseudocolor', 'slice', 'isosurface']"),
    ({"plots": {"p": {"type": "volume", "field": "temp", "pipeline": "pl1"}}}, "pipelines are not supported"),
    ({"plots": {"p": {"type": "volume", "field": "temp", "samples": 3}}}, "supported: ['type', 'field'"),
    ({"plots": {"p": {"type": "volume", "field": "temp", "color_table": {"name": "Nope"}}}}, "Ascent names accepted"),
    ({"plots": {"p": {"type": "volume", "field": "temp"}}, "renders": {"r": {"type": "movie"}}},
     "supported: ['image', 'cinema']"),
    ({"plots": {"p": {"type": "volume", "field": "temp"}}, "renders": {"r": {"camera": {"roll": 3}}}},
     "camera: unsupported parameter(s) ['roll']"),
])
def test_bad_scenes_are_rejected_with_the_supported_names(scene, message):
    with pytest.raises(SceneError) as info:
        parse_scene("s1", scene)
    assert message in str(info.value)


def test_unknown_field_reports_and_the_run_goes_on(rt, tmp_path):
    publish(rt, cycle=1)
    rt.execute([{"action": "add_scenes", "scenes": {"s": {"plots": {"p": {"type": "volume", "field": "nope"}}}}}])
    errors = rt.info()["status"]["errors"]
    assert rt.info()["status"]["message"] == "failed" and any("'nope'" in e for e in errors)
    publish(rt, cycle=2)
    rt.execute([{"action": "add_scenes", "scenes": {"s": {"plots": {"p": {"type": "volume", "field": "temp"}}}}}])
    assert rt.info()["status"]["message"] == "completed" and (tmp_path / "s_000002.png").exists()


@pytest.mark.mpi
def test_scenes_over_ranks_match_one_rank(tmp_path):
    """12 ghosted blocks on 4 ranks vs the same blocks on 1 rank: the same pictures."""
    run_mpi(1, ["tests/mpi/scene_ranks.py", str(tmp_path / "one"), "2x3x2"])
    run_mpi(4, ["tests/mpi/scene_ranks.py", str(tmp_path / "four"), "2x3x2"])
    for name in ("vol_0007.png", "surface.png"):
        a, b = png(tmp_path / "one" / name), png(tmp_path / "four" / name)
        assert (a.sum(axis=2) > 20).mean() > 0.1
        assert np.abs(a - b).max() <= 1, name
