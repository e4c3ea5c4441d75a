"""The renderer: camera, transfer functions, ray marching (native vs numpy), compositing, PNG, Cinema."""
import csv
import json
import math

import numpy as np
import pytest
from PIL import Image

from support import render_common as rc

from support.mpi import run_mpi
from insitu.render.composite import composite, flatten
from insitu.render.bricks import Brick, Extent, Lattice
from insitu.render.camera import Camera, CameraError
from insitu.render.frame import EmptyViewWarning, Piece, agree, camera_for, render_frame
from insitu.render.output import CinemaDatabase, cinema_views, image_name, write_png
from insitu.render.raymarch import Plot, Rays, default_step, native_available, render_brick
from insitu.render.transfer import TransferFunction, TransferFunctionError


def psnr_images(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 20 * math.log10(255.0) - 10 * math.log10(mse)


def draw(values, parts, kind="volume", assoc="vertex", cam=None, size=(96, 80), backend="auto", tf=None, shading=True):
    pieces = rc.pieces(values, parts, assoc)
    lattice, (rng,) = agree([pieces], None)
    plot = Plot(kind, tf or TransferFunction("viridis", ((0.0, 0.0), (1.0, 0.5)), rng), shading=shading)
    camera = camera_for(lattice, cam if cam is not None else {"azimuth": 30, "elevation": 20}, *size)
    rays = Rays.of(camera)
    frags = [render_brick([(plot, p.brick)], lattice, rays, dt=default_step(lattice), backend=backend)
             for p in pieces]
    return composite(frags, rays.shape), camera, lattice


# ---------------------------------------------------------------- camera and transfer function
def test_camera_defaults_look_at_the_centre_from_plus_z():
    cam = Camera.from_params({}, ((0, 0, 0), (2, 4, 6)), 64, 48)
    assert cam.look_at == pytest.approx((1, 2, 3))
    assert cam.position[0] == pytest.approx(1) and cam.position[1] == pytest.approx(2) and cam.position[2] > 6
    # the look-at point projects to the image centre; azimuth 90 moves the eye to +x
    assert cam.project(np.array([[1.0, 2.0, 3.0]]))[0] == pytest.approx([31.5, 23.5])
    side = Camera.from_params({"azimuth": 90}, ((0, 0, 0), (2, 4, 6)))
    assert side.position[0] > 2 and side.position[2] == pytest.approx(3)
    top = Camera.from_params({"elevation": 90}, ((0, 0, 0), (2, 4, 6)))
    assert top.position[1] > 4
    zoomed = Camera.from_params({"zoom": 1}, ((0, 0, 0), (2, 4, 6)))
    assert math.tan(math.radians(zoomed.fov) / 2) == pytest.approx(math.tan(math.radians(cam.fov) / 2) / 4)


def test_camera_and_transfer_function_errors_name_the_choices():
    with pytest.raises(CameraError, match="valid ones are"):
        Camera.from_params({"azimut": 3}, ((0, 0, 0), (1, 1, 1)))
    with pytest.raises(CameraError, match="look_at"):
        Camera.from_params({"look_at": [1, 2]}, ((0, 0, 0), (1, 1, 1)))
    with pytest.raises(CameraError, match="degenerate"):
        Camera.from_params({"position": [0.5, 0.5, 0.5]}, ((0, 0, 0), (1, 1, 1)))
    with pytest.raises(TransferFunctionError, match="viridis"):
        TransferFunction("not-a-map")
    with pytest.raises(TransferFunctionError, match=r"\[0, 1\]"):
        TransferFunction("viridis", ((0.0, 2.0),))
    lut = TransferFunction("viridis", ((0.0, 0.0), (1.0, 1.0))).lut(11)
    assert lut.shape == (11, 4) and lut[0, 3] == 0 and lut[-1, 3] == pytest.approx(1) and lut[5, 3] == pytest.approx(.5)


# ---------------------------------------------------------------- brick rendering
def test_rays_are_made_once_per_camera_and_read_only():
    # a look-back draws every frame from one camera: its rays are made once and shared, so nobody may write them;
    # a camera given arrays (not hashable) still gets its rays
    cam = Camera((0.0, 0.0, 60.0), (0.0, 0.0, 0.0), (0, 1, 0), 30.0, 40, 30)
    a, b = Rays.of(cam), Rays.of(Camera((0.0, 0.0, 60.0), (0.0, 0.0, 0.0), (0, 1, 0), 30.0, 40, 30))
    assert a is b and a.dirs.shape == (40 * 30, 3) and not a.dirs.flags.writeable and not a.eye.flags.writeable
    with pytest.raises(ValueError):
        a.dirs[0, 0] = 1.0
    arr = Camera(np.array([0.0, 0.0, 60.0]), np.zeros(3), np.array([0.0, 1.0, 0.0]), 30.0, 40, 30)
    assert np.array_equal(Rays.of(arr).dirs, a.dirs) and Rays.of(cam.orbit(30, 0)) is not a


@pytest.mark.skipif(not native_available(), reason="the native ray marcher insitu._raymarch was not built")
@pytest.mark.parametrize("assoc", ["vertex", "element"])
def test_native_marcher_matches_numpy_reference(assoc):
    values = rc.field((20, 22, 24))
    nat, _, _ = draw(values, (2, 1, 2), assoc=assoc, backend="native")
    ref, _, _ = draw(values, (2, 1, 2), assoc=assoc, backend="numpy")
    assert ref[..., 3].max() > 0.3
    assert np.abs(nat - ref).max() < 2e-4


@pytest.mark.skipif(not native_available(), reason="the native ray marcher insitu._raymarch was not built")
@pytest.mark.parametrize("assoc", ["vertex", "element"])
def test_native_marcher_skips_clear_space_with_the_same_image(assoc):
    # a transfer function clear over the lower 60 % of the range (the demo's kind): the native marcher jumps over
    # the cells that map to zero opacity, and still gives the reference's image, edges of the clear cells included
    values = rc.field((40, 36, 44))
    tf = TransferFunction("inferno", ((0.0, 0.0), (0.6, 0.0), (1.0, 0.7)), (float(values.min()), float(values.max())))
    nat, _, _ = draw(values, (2, 2, 1), assoc=assoc, backend="native", tf=tf, size=(120, 100))
    ref, _, _ = draw(values, (2, 2, 1), assoc=assoc, backend="numpy", tf=tf, size=(120, 100))
    assert ref[..., 3].max() > 0.3 and (ref[..., 3] == 0).mean() > 0.2  # something shown, and clear space
    assert np.abs(nat - ref).max() < 2e-4


@pytest.mark.parametrize("kind", ["volume", "pseudocolor", "slice", "isosurface"])
@pytest.mark.parametrize("assoc", ["vertex", "element"])
def test_split_volume_composites_to_the_whole(kind, assoc):
    """Any split (uneven blocks, margin from the neighbours) gives the one-brick image: no seams."""
    values = rc.field((21, 26, 19))
    whole, _, _ = draw(values, (1, 1, 1), kind, assoc)
    split, _, _ = draw(values, (2, 3, 2), kind, assoc)
    assert (whole[..., 3] > 0).mean() > (0.04 if kind == "isosurface" else 0.2)
    diff = np.abs(split - whole)
    assert diff.mean() < 1 / 255 / 10
    # isosurface shading takes gradients half a cell around the hit, clamped at the brick's margin:
    # a few pixels where the surface meets a brick face shade slightly differently
    assert (diff.max(axis=2) > 1 / 255).mean() < (0.005 if kind == "isosurface" else 1e-9)


def test_sphere_covers_the_expected_pixels():
    """A ball of radius r seen from distance d covers pi * (f * tan(asin(r/d)))^2 pixels."""
    n, h, radius = 64, 0.5, 10.0
    z, y, x = np.meshgrid(*[np.arange(n) * h] * 3, indexing="ij")
    c = (n - 1) * h / 2
    ball = (np.sqrt((x - c) ** 2 + (y - c) ** 2 + (z - c) ** 2) < radius).astype(np.float32)
    pieces = [Piece(Brick(ball, Extent((0, 0, 0), ball.shape, "vertex")), (0.0, 0.0, 0.0), (h, h, h), (0.0, 1.0))]
    lattice = Lattice((0.0, 0.0, 0.0), (h, h, h), (0, 0, 0), ball.shape, "vertex")
    tf = TransferFunction("gray", ((0.0, 0.0), (0.49, 0.0), (0.51, 1.0), (1.0, 1.0)), (0.0, 1.0))
    cam = Camera((c, c, c + 60.0), (c, c, c), (0, 1, 0), 30.0, 200, 200)
    img = render_frame([(Plot("volume", tf), pieces)], lattice, cam)
    covered = int((img[..., 3] > 0.5).sum())
    r_px = math.tan(math.asin(radius / 60.0)) / math.tan(math.radians(15)) * 100
    assert covered == pytest.approx(math.pi * r_px ** 2, rel=0.04)
    assert img[100, 100, 3] > 0.99 and img[5, 5, 3] == 0  # centre opaque, corner empty


def test_pseudocolor_known_colour_at_known_pixel():
    """A field equal to x, seen straight on: the centre pixel shows the middle of the colormap."""
    n = 17
    xs = np.broadcast_to(np.arange(n, dtype=np.float32), (n, n, n)).copy()  # values = x index (0..16)
    pieces = [Piece(Brick(xs, Extent((0, 0, 0), xs.shape, "vertex")), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (0.0, 16.0))]
    lattice = Lattice((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (0, 0, 0), xs.shape, "vertex")
    tf = TransferFunction("viridis", value_range=(0.0, 16.0))
    cam = camera_for(lattice, {}, 101, 101)  # looks down -z at the centre of the front face
    img = render_frame([(Plot("pseudocolor", tf, shading=False), pieces)], lattice, cam)
    rgb = flatten(img)
    expected = np.rint(np.asarray(tf.colors(np.array([8.0]))[0, :3]) * 255)
    assert np.abs(rgb[50, 50].astype(int) - expected).max() <= 1
    left = np.rint(np.asarray(tf.colors(np.array([0.0]))[0, :3]) * 255)
    col = int(np.nonzero(img[50, :, 3] > 0)[0][0])  # the first covered column is the x = 0 edge
    assert np.abs(rgb[50, col].astype(int) - left).max() <= 12


def test_camera_that_sees_nothing_warns_and_gives_an_empty_image():
    values = rc.field((10, 10, 10))
    pieces = rc.pieces(values, (1, 1, 1))
    lattice, (rng,) = agree([pieces], None)
    cam = camera_for(lattice, {"look_at": [100, 100, 100], "position": [100, 100, 120]}, 32, 32)
    with pytest.warns(EmptyViewWarning, match="sees none"):
        img = render_frame([(Plot("volume", TransferFunction(value_range=rng)), pieces)], lattice, cam)
    assert img.shape == (32, 32, 4) and not img.any()


def test_reconstruction_renders_close_to_the_original(tmp_path):
    """The image of the decoded cache vs the image of the original field: PSNR >= 30 dB."""
    from insitu.cache import TemporalCache
    from insitu.render.cached import RenderSpec, render_cached

    values = rc.field((40, 40, 40), seed=4)
    rc.write_cache(tmp_path / "c.cache", {0: values}, (2, 1, 1), ratio=10, max_steps=600)
    # the raw picture (compared pixel by pixel below) with a linear opacity ramp that shows most of the volume
    spec = RenderSpec(camera={"azimuth": 30, "elevation": 20}, width=128, height=128, opacity=[[0, 0], [1, 0.6]],
                      annotations=False)
    with TemporalCache.open(tmp_path / "c.cache") as reader:
        render_cached(reader, "f", [0], spec, output_dir=tmp_path, image_prefix="rec_%d")
    pieces = rc.pieces(values, (2, 1, 1))
    lattice, _ = agree([pieces], None)
    with TemporalCache.open(tmp_path / "c.cache") as reader:  # the same colour scale: the cached range
        rng = (min(reader.meta("f", 0, d).value_range[0] for d in (0, 1)),
               max(reader.meta("f", 0, d).value_range[1] for d in (0, 1)))
    orig = render_frame([(spec.make_plot(rng), pieces)], lattice, camera_for(lattice, spec.camera, 128, 128))
    rec = np.asarray(Image.open(tmp_path / "rec_0.png"))
    assert (rec.sum(axis=2) > 30).mean() > 0.2
    assert psnr_images(rec, flatten(orig)) >= 30


# ---------------------------------------------------------------- compositing over MPI
@pytest.mark.mpi
@pytest.mark.parametrize("n,assoc", [(4, "vertex"), (3, "element")])
def test_mpi_composite_matches_one_rank(tmp_path, n, assoc):
    out = tmp_path / "r.json"
    run_mpi(n, ["tests/mpi/render_composite.py", str(out), assoc], timeout=300)
    res = json.loads(out.read_text())
    for kind, r in res.items():
        assert r["coverage"] > (0.04 if kind == "isosurface" else 0.2), kind
        assert r["mean_abs"] < 1 / 255 / 10 and r["over_1_255"] < (0.005 if kind == "isosurface" else 1e-9), (kind, r)


def test_blend_orders_fragments_by_depth():
    red = np.array([[1.0, 0, 0, 1.0]], dtype=np.float32)
    half_blue = np.array([[0, 0, 0.5, 0.5]], dtype=np.float32)
    from insitu.render.raymarch import Fragment

    a = Fragment(red, np.array([5.0], dtype=np.float32), (1, 1))
    b = Fragment(half_blue, np.array([1.0], dtype=np.float32), (1, 1))
    img = composite([a, b], (1, 1))  # blue is nearer: half blue over red
    assert img[0, 0] == pytest.approx([0.5, 0, 0.5, 1.0])
    assert composite([b, a], (1, 1))[0, 0] == pytest.approx(img[0, 0])


# ---------------------------------------------------------------- files
def test_png_and_image_names(tmp_path):
    img = np.zeros((4, 6, 4), dtype=np.float32)
    img[1, 2] = [0.5, 0.25, 0.0, 0.5]  # premultiplied: half-transparent orange over white
    p = write_png(tmp_path / "sub" / "x.png", img, background=(1, 1, 1))
    back = np.asarray(Image.open(p))
    assert back.shape == (4, 6, 3) and tuple(back[1, 2]) == (255, 191, 128) and tuple(back[0, 0]) == (255, 255, 255)
    assert image_name("v_%04d", 7) == "v_0007" and image_name("out", 12) == "out000012"


def test_cinema_database_written_and_parsed_back(tmp_path):
    views = cinema_views(4, 2)
    assert len(views) == 8 and {p for p, _ in views} == {-180.0, -90.0, 0.0, 90.0}
    assert {t for _, t in views} == {-45.0, 45.0}
    img = np.ones((8, 8, 4), dtype=np.float32)
    db = CinemaDatabase(tmp_path / "run.cdb")
    for cycle in (10, 20):
        for phi, theta in views:
            db.add(phi, theta, cycle, img)
        db.save()
        db = CinemaDatabase(tmp_path / "run.cdb")  # reopened: rows kept, the next time appended
    with open(tmp_path / "run.cdb" / "data.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["phi", "theta", "time", "FILE"] and len(rows) == 16
    assert {r["time"] for r in rows} == {"10", "20"}
    for r in rows:
        assert np.asarray(Image.open(tmp_path / "run.cdb" / r["FILE"])).min() == 255


@pytest.mark.parametrize("backend", ["numpy", "native"] if native_available() else ["numpy"])
def test_nan_samples_are_transparent_and_flat_data_still_draws(backend):
    values = rc.field((12, 12, 12))
    values[3:6, 3:6, 3:6] = np.nan  # masked samples
    img, _, _ = draw(values, (2, 1, 1), backend=backend)
    assert np.isfinite(img).all() and img[..., 3].max() > 0.3
    flat = rc.field((1, 16, 20))  # a 2D slab of cells: pseudocolor and volume both draw it
    for kind in ("pseudocolor", "volume"):
        img, _, _ = draw(flat, (1, 2, 2), kind, "element", cam={"elevation": 30}, backend=backend)
        assert (img[..., 3] > 0).mean() > 0.1, kind


def test_isosurface_of_a_ball_native_numpy_and_split():
    """The iso-surface r = R of a radial field: seen from far, a disc of the right size; seams: none."""
    n = 40
    z, y, x = np.meshgrid(*[np.arange(n, dtype=np.float32)] * 3, indexing="ij")
    c = (n - 1) / 2
    r = np.sqrt((x - c) ** 2 + (y - c) ** 2 + (z - c) ** 2) * 0.5  # world units (spacing 0.5)
    tf = TransferFunction("viridis", value_range=(0.0, float(r.max())))
    cam = Camera((c * 0.5, c * 0.5, c * 0.5 + 60.0), (c * 0.5,) * 3, (0, 1, 0), 30.0, 120, 120)
    imgs = {}
    for parts in ((1, 1, 1), (2, 3, 2)):
        pieces = rc.pieces(r, parts)
        lattice, _ = agree([pieces], None)
        for backend in (["native", "numpy"] if native_available() else ["numpy"]):
            plot = Plot("isosurface", tf, iso_values=(6.0,))
            rays = Rays.of(cam)
            frags = [render_brick([(plot, p.brick)], lattice, rays, dt=default_step(lattice), backend=backend)
                     for p in pieces]
            imgs[(parts, backend)] = composite(frags, rays.shape)
    ref = imgs[((1, 1, 1), "numpy")]
    r_px = math.tan(math.asin(6.0 / 60.0)) / math.tan(math.radians(15)) * 60
    assert (ref[..., 3] > 0).sum() == pytest.approx(math.pi * r_px ** 2, rel=0.05)
    centre = ref[60, 60, :3] / (0.3 + 0.7)  # facing the camera: full shading
    assert centre == pytest.approx(tf.colors(np.array([6.0]))[0, :3], abs=0.03)
    for key, img in imgs.items():
        assert np.abs(img[..., 3] - ref[..., 3]).mean() < 0.002, key
        assert np.abs(img - ref).mean() < 1 / 255, key
