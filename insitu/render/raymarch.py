"""Render one rank's bricks: volume ray marching, pseudocolor surfaces and slices -> fragments.

Per brick (one domain), the opaque plots (``pseudocolor``: the outer faces of
the data coloured by the field, as Ascent draws a 3D mesh; ``slice``:
axis-aligned planes) give the nearest opaque hit inside the brick's owned box;
the ``volume`` plot is marched up to that hit (emission-absorption, samples on
the global lattice ``t = k*dt``, opacity corrected to the transfer function's
unit length) and the hit is composited behind it. The result is a
:class:`Fragment`: premultiplied RGBA and a depth (the distance of the
brick's first sample along each ray), which :mod:`insitu.composite` orders
per pixel.

Decode to a brick, then march: measured on a 128^3 block, decoding the
whole brick through the native backend costs ~0.03 s, while evaluating the
network at every ray sample (~100 M samples for a 512^2 image) would take
seconds; so the renderer always marches decoded bricks (trilinear).

``backend="native"`` runs the C++ loop (``insitu._raymarch``), ``"numpy"`` the
vectorised reference it is tested against; ``"auto"`` picks native when built.
"""
from __future__ import annotations

import functools

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from insitu.render.bricks import Brick, Lattice
from insitu.render.camera import Camera
from insitu.render.transfer import TransferFunction

PLOT_KINDS = ("volume", "pseudocolor", "slice", "isosurface")
RENDER_BACKENDS = ("auto", "native", "numpy")
AXES = {"x": 0, "y": 1, "z": 2}
_EARLY_STOP = 0.9995  # accumulated alpha at which a ray stops (same in the native loop)


@dataclass(frozen=True)
class Plot:
    """What to draw of one field: ``kind`` in :data:`PLOT_KINDS` with its transfer function.

    ``slices``: for ``kind="slice"``, (axis, fraction of the data's bounds)
    pairs, e.g. ``(("z", 0.5),)``. ``iso_values``: for ``kind="isosurface"``,
    the values whose surfaces are drawn (coloured by the colormap at that
    value; None: the middle of the value range). ``shading``: headlight
    diffuse shading of opaque surfaces.
    """

    kind: str
    tf: TransferFunction
    slices: tuple[tuple[str, float], ...] = (("x", 0.5), ("y", 0.5), ("z", 0.5))
    shading: bool = True
    iso_values: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in PLOT_KINDS:
            raise ValueError(f"plot type {self.kind!r} is not supported: valid choices are {list(PLOT_KINDS)}")
        for axis, frac in self.slices:
            if axis not in AXES or not 0.0 <= float(frac) <= 1.0:
                raise ValueError(f"slice ({axis!r}, {frac!r}): axis must be one of {list(AXES)} and the "
                                 "position a fraction of the bounds in [0, 1]")
        if self.tf.value_range is None:
            raise ValueError("Plot needs a transfer function with its value range set (tf.with_range(...))")
        if self.iso_values is not None and (not self.iso_values or not all(np.isfinite(self.iso_values))):
            raise ValueError(f"iso_values={self.iso_values!r} must be a non-empty list of finite numbers")

    def isos(self) -> np.ndarray:
        """The iso values drawn (the middle of the value range by default)."""
        lo, hi = self.tf.value_range  # type: ignore[misc]
        return np.asarray(self.iso_values if self.iso_values is not None else (0.5 * (lo + hi),), dtype=np.float64)


@dataclass
class Fragment:
    """A brick's picture: premultiplied RGBA (n_pixels, 4) and depth (n_pixels,), inf where empty."""

    rgba: np.ndarray
    depth: np.ndarray
    shape: tuple[int, int] = (0, 0)
    stats: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Rays:
    """Camera rays flattened: ``eye`` (3,) float64, ``dirs`` (n, 3) float32 unit vectors; image ``shape``."""

    eye: np.ndarray
    dirs: np.ndarray
    shape: tuple[int, int]

    @classmethod
    def of(cls, camera: Camera) -> "Rays":
        """The rays of ``camera``, made once per camera (read-only): a look-back draws its frames from one camera,
        and making the rays of a 384^2 image took 8 ms a frame on every rank."""
        try:
            return _cached_rays(camera)
        except TypeError:  # a camera given arrays for its vectors is not hashable: its rays are made afresh
            return _rays(camera)


def _rays(camera: Camera) -> Rays:
    eye, d = camera.rays()
    rays = Rays(eye, np.ascontiguousarray(d.reshape(-1, 3), dtype=np.float32), (camera.height, camera.width))
    for a in (rays.eye, rays.dirs):
        a.setflags(write=False)
    return rays


#: cameras whose rays are kept (12 bytes a pixel each: 3 MB at 512^2); a look-back draws every frame from one
_cached_rays = functools.lru_cache(maxsize=4)(_rays)


def default_step(lattice: Lattice, step: float = 0.5) -> float:
    """Ray-marching step: ``step`` times the smallest spacing (the same on every rank)."""
    return float(step) * float(min(lattice.spacing))


# ------------------------------------------------------------------ sampling
def sample_trilinear(values: np.ndarray, origin: np.ndarray, spacing: Sequence[float], points: np.ndarray) -> np.ndarray:
    """Trilinear values of ``values`` (z, y, x) at world ``points`` (N, 3 as x, y, z), clamped to the brick."""
    n = np.array(values.shape[::-1])  # (nx, ny, nz)
    c = (np.asarray(points, dtype=np.float64) - origin) / np.asarray(spacing, dtype=np.float64)
    c = np.clip(c, 0.0, n - 1)
    i0 = np.minimum(c.astype(np.int64), np.maximum(n - 2, 0))
    f = np.where(n > 1, c - i0, 0.0)
    i1 = np.minimum(i0 + 1, n - 1)
    out = np.zeros(len(c))
    for dz in (0, 1):
        wz = f[:, 2] if dz else 1 - f[:, 2]
        iz = i1[:, 2] if dz else i0[:, 2]
        for dy in (0, 1):
            wy = f[:, 1] if dy else 1 - f[:, 1]
            iy = i1[:, 1] if dy else i0[:, 1]
            for dx in (0, 1):
                wx = f[:, 0] if dx else 1 - f[:, 0]
                ix = i1[:, 0] if dx else i0[:, 0]
                out += wz * wy * wx * values[iz, iy, ix]
    return out.astype(np.float32)


def _slab(eye: np.ndarray, dirs: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entry/exit distances of every ray through [lo, hi] (t0 >= t1 where a ray misses)."""
    d = dirs.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ta = (lo - eye) / d
        tb = (hi - eye) / d
    tmin, tmax = np.minimum(ta, tb), np.maximum(ta, tb)
    par = d == 0.0  # parallel to a slab: inside or missed for good
    inside = (eye >= lo) & (eye < hi)
    tmin = np.where(par, np.where(inside, -np.inf, np.inf), tmin)
    tmax = np.where(par, np.where(inside, np.inf, -np.inf), tmax)
    return np.maximum(tmin.max(axis=1), 0.0), tmax.min(axis=1)


# ------------------------------------------------------------------ opaque plots
def _owned_closed(points: np.ndarray, lo: np.ndarray, hi: np.ndarray, hi_closed: np.ndarray) -> np.ndarray:
    """Inside the half-open owned box, closed on the faces that are the data's outer faces."""
    below = np.where(hi_closed, points <= hi, points < hi)
    return ((points >= lo) & below).all(axis=1)


def _surface_hits(plot: Plot, brick: Brick, lattice: Lattice, rays: Rays) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit distance (inf: none) and straight-alpha RGBA of an opaque plot within the brick."""
    n = len(rays.dirs)
    best_t = np.full(n, np.inf)
    best_rgba = np.zeros((n, 4), dtype=np.float32)
    blo, bhi = lattice.bounds()
    own_lo, own_hi = lattice.owned_box(brick.extent)
    hi_closed = np.array([brick.extent.stop[2 - a] == lattice.stop[2 - a] for a in range(3)])
    # only rays that pass near the owned box can hit inside it
    pad = 1e-6 * float(np.max(bhi - blo) or 1.0)
    t0, t1 = _slab(rays.eye, rays.dirs, own_lo - pad, own_hi + pad)
    near = np.nonzero(t0 <= t1)[0]
    d = rays.dirs[near].astype(np.float64)
    candidates: list[tuple[int, float]] = []  # (axis, world position of the plane)
    if plot.kind == "pseudocolor":
        candidates = [(a, float(v)) for a in range(3) for v in (blo[a], bhi[a])]
    else:
        candidates = [(AXES[ax], float(blo[AXES[ax]] + frac * (bhi[AXES[ax]] - blo[AXES[ax]])))
                      for ax, frac in plot.slices]
    for axis, pos in candidates:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (pos - rays.eye[axis]) / d[:, axis]
        ok = np.isfinite(t) & (t > 0) & (t < best_t[near])
        if not ok.any():
            continue
        idx = np.nonzero(ok)[0]
        p = rays.eye + t[idx, None] * d[idx]
        p[:, axis] = pos  # exactly on the plane: ownership of face points must not depend on rounding
        inb = ((p >= blo) & (p <= bhi)).all(axis=1) & _owned_closed(p, own_lo, own_hi, hi_closed)
        idx, p = idx[inb], p[inb]
        if not len(idx):
            continue
        vals = sample_trilinear(brick.values, brick.origin(lattice), lattice.spacing, p)
        rgba = plot.tf.colors(vals)
        rgba[:, 3] = 1.0
        if plot.shading:
            rgba[:, :3] *= (0.3 + 0.7 * np.abs(d[idx, axis]))[:, None].astype(np.float32)
        best_t[near[idx]] = t[idx]
        best_rgba[near[idx]] = rgba
    return best_t, best_rgba


# ------------------------------------------------------------------ isosurfaces
def _iso_numpy(brick: Brick, lattice: Lattice, rays: Rays, isos: np.ndarray, dt: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Reference of ``_raymarch.march_iso``: first crossing per ray among the brick's own samples.

    The sample before the brick's first (inside its margin) is looked at too, so
    a crossing between two bricks belongs to the brick owning the later sample.
    """
    n = len(rays.dirs)
    hit, shade = np.full(n, np.inf), np.zeros(n)
    lo, hi = lattice.owned_box(brick.extent)
    t0, t1 = _slab(rays.eye, rays.dirs, lo, hi)
    live = np.nonzero(t0 < t1)[0]
    origin, h = brick.origin(lattice), np.asarray(lattice.spacing, dtype=np.float64)
    d = rays.dirs.astype(np.float64)

    def at(idx: np.ndarray, t: np.ndarray) -> np.ndarray:
        return sample_trilinear(brick.values, origin, h, rays.eye + t[:, None] * d[idx]).astype(np.float64)

    k = np.ceil(t0[live] / dt)
    vp = at(live, (k - 1) * dt)
    tp = (k - 1) * dt
    while len(live):
        t = k * dt
        go = t < t1[live]
        live, k, t, vp, tp = live[go], k[go], t[go], vp[go], tp[go]
        if not len(live):
            break
        p = rays.eye + t[:, None] * d[live]
        v = at(live, t)
        mine = ((p >= lo) & (p < hi)).all(axis=1) & np.isfinite(v) & np.isfinite(vp)
        best = np.full(len(live), 2.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            for iso in isos:
                cross = mine & (((vp - iso) * (v - iso) < 0) | ((v == iso) & (vp != iso)))
                best = np.where(cross, np.minimum(best, (iso - vp) / (v - vp)), best)
        found = best <= 1.0
        if found.any():
            idx = live[found]
            th = tp[found] + best[found] * (t[found] - tp[found])
            q = rays.eye + th[:, None] * d[idx]
            g = np.stack([(sample_trilinear(brick.values, origin, h, q + 0.5 * h[a] * np.eye(3)[a]).astype(np.float64)
                           - sample_trilinear(brick.values, origin, h, q - 0.5 * h[a] * np.eye(3)[a])) / h[a]
                          for a in range(3)], axis=1)
            norm = np.linalg.norm(g, axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                shade[idx] = np.where(norm > 0, np.abs((g * d[idx]).sum(axis=1)) / norm, 1.0)
            hit[idx] = th
        keep = ~found
        live, k, vp, tp = live[keep], k[keep] + 1.0, v[keep], t[keep]
    return hit.astype(np.float32), shade.astype(np.float32)


def _iso_hits(plot: Plot, brick: Brick, lattice: Lattice, rays: Rays, dt: float, backend: str
              ) -> tuple[np.ndarray, np.ndarray]:
    """Nearest isosurface hit (inf: none) and its straight-alpha RGBA, coloured by the iso value."""
    isos = plot.isos()
    if _marcher(backend) is _march_native:
        from insitu import _raymarch

        lo, hi = lattice.owned_box(brick.extent)
        hit = np.empty(len(rays.dirs), dtype=np.float32)
        shade = np.empty(len(rays.dirs), dtype=np.float32)
        _raymarch.march_iso(np.ascontiguousarray(brick.values, dtype=np.float32), brick.origin(lattice),
                            np.asarray(lattice.spacing, dtype=np.float64), lo, hi, rays.eye, rays.dirs, isos,
                            float(dt), hit, shade)
    else:
        hit, shade = _iso_numpy(brick, lattice, rays, isos, dt)
    rgba = np.zeros((len(rays.dirs), 4), dtype=np.float32)
    ok = np.isfinite(hit)
    if ok.any():
        idx = np.nonzero(ok)[0]
        # the colour of the iso value crossed nearest the hit
        vals = sample_trilinear(brick.values, brick.origin(lattice), lattice.spacing,
                                rays.eye + hit[idx, None].astype(np.float64) * rays.dirs[idx].astype(np.float64))
        nearest = isos[np.argmin(np.abs(vals[:, None].astype(np.float64) - isos[None, :]), axis=1)]
        rgba[idx] = plot.tf.colors(nearest)
        rgba[idx, 3] = 1.0
        if plot.shading:
            rgba[idx, :3] *= (0.3 + 0.7 * shade[idx])[:, None]
    return hit.astype(np.float64), rgba


# ------------------------------------------------------------------ volume
def _march_numpy(brick: Brick, lattice: Lattice, rays: Rays, stop: np.ndarray, lut: np.ndarray,
                 vrange: tuple[float, float], dt: float, unit: float) -> tuple[np.ndarray, np.ndarray]:
    """The reference: every ray steps through the brick's owned box together (vectorised over rays)."""
    n = len(rays.dirs)
    lo, hi = lattice.owned_box(brick.extent)
    t0, t1 = _slab(rays.eye, rays.dirs, lo, hi)
    t1 = np.minimum(t1, stop.astype(np.float64))
    acc = np.zeros((n, 4), dtype=np.float64)
    first = np.full(n, np.inf)
    live = np.nonzero(t0 < t1)[0]
    if not len(live):
        return acc.astype(np.float32), first.astype(np.float32)
    k = np.ceil(t0[live] / dt)
    origin = brick.origin(lattice)
    vmin, vmax = vrange
    scale = (len(lut) - 1) / (vmax - vmin) if vmax > vmin else 0.0
    d = rays.dirs.astype(np.float64)
    while len(live):
        t = k * dt
        go = (t < t1[live]) & (acc[live, 3] <= _EARLY_STOP)
        live, k, t = live[go], k[go], t[go]
        if not len(live):
            break
        p = rays.eye + t[:, None] * d[live]
        ins = ((p >= lo) & (p < hi)).all(axis=1)
        li, p, ts = live[ins], p[ins], t[ins]
        first[li] = np.minimum(first[li], ts)
        v = sample_trilinear(brick.values, origin, lattice.spacing, p).astype(np.float64)
        x = np.clip((np.nan_to_num(v, nan=vmin, posinf=vmin, neginf=vmin) - vmin) * scale, 0.0, len(lut) - 1)
        i = np.minimum(x.astype(np.int64), len(lut) - 2)
        f = (x - i)[:, None]
        c = lut[i].astype(np.float64) * (1 - f) + lut[i + 1].astype(np.float64) * f
        a = np.where(np.isfinite(v), 1.0 - np.power(1.0 - np.minimum(c[:, 3], 0.999999), dt / unit), 0.0)
        w = (1.0 - acc[li, 3]) * a
        acc[li, :3] += w[:, None] * c[:, :3]
        acc[li, 3] += w
        k = k + 1.0
    first[acc[:, 3] <= 0.0] = np.inf
    return acc.astype(np.float32), first.astype(np.float32)


def _march_native(brick: Brick, lattice: Lattice, rays: Rays, stop: np.ndarray, lut: np.ndarray,
                  vrange: tuple[float, float], dt: float, unit: float) -> tuple[np.ndarray, np.ndarray]:
    from insitu import _raymarch

    n = len(rays.dirs)
    lo, hi = lattice.owned_box(brick.extent)
    rgba = np.empty((n, 4), dtype=np.float32)
    depth = np.empty(n, dtype=np.float32)
    _raymarch.march(np.ascontiguousarray(brick.values, dtype=np.float32), brick.origin(lattice),
                    np.asarray(lattice.spacing, dtype=np.float64), lo, hi, rays.eye, rays.dirs,
                    np.ascontiguousarray(stop, dtype=np.float32), lut, float(vrange[0]), float(vrange[1]),
                    float(dt), float(unit), rgba, depth)
    return rgba, depth


def native_available() -> bool:
    try:
        from insitu import _raymarch  # noqa: F401
    except ImportError:
        return False
    return True


def _marcher(backend: str):
    if backend not in RENDER_BACKENDS:
        raise ValueError(f"render backend {backend!r} is invalid: valid choices are {list(RENDER_BACKENDS)}")
    if backend == "native" or (backend == "auto" and native_available()):
        return _march_native
    return _march_numpy


# ------------------------------------------------------------------ one brick, all plots
def render_brick(plots: Sequence[tuple[Plot, Brick]], lattice: Lattice, rays: Rays, *, dt: float,
                 backend: str = "auto") -> Fragment:
    """The fragment of one domain: its opaque plots' nearest hit behind its volume plot (at most one)."""
    march = _marcher(backend)
    n = len(rays.dirs)
    volumes = [(p, b) for p, b in plots if p.kind == "volume"]
    if len(volumes) > 1:
        raise ValueError("a scene takes at most one volume plot (composite several scenes instead)")
    surf_t = np.full(n, np.inf)
    surf_rgba = np.zeros((n, 4), dtype=np.float32)
    for plot, brick in plots:
        if plot.kind == "isosurface":
            t, rgba = _iso_hits(plot, brick, lattice, rays, dt, backend)
        elif plot.kind != "volume":
            t, rgba = _surface_hits(plot, brick, lattice, rays)
        else:
            continue
        nearer = t < surf_t
        surf_t[nearer], surf_rgba[nearer] = t[nearer], rgba[nearer]
    rgba = np.zeros((n, 4), dtype=np.float32)
    depth = np.full(n, np.inf, dtype=np.float32)
    if volumes:
        plot, brick = volumes[0]
        unit = plot.tf.unit or float(min(lattice.spacing))
        rgba, depth = march(brick, lattice, rays, surf_t.astype(np.float32), plot.tf.lut(256),
                            plot.tf.value_range, dt, unit)  # type: ignore[arg-type]
    hit = np.isfinite(surf_t)
    if hit.any():
        rgba[hit] += (1.0 - rgba[hit, 3:4]) * surf_rgba[hit]
        depth[hit] = np.minimum(depth[hit], surf_t[hit].astype(np.float32))
    return Fragment(rgba, depth, rays.shape)
