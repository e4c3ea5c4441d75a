"""One picture of a distributed volume: bricks of every rank -> fragments -> composited image on root.

The sources of bricks (published Blueprint blocks, cached models decoded with
a margin) live here too, each returning :class:`Piece` lists: a brick with its
world anchor and spacing, so all ranks can agree on one :class:`Lattice`.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from insitu.render.bricks import Brick, Extent, Lattice, margin_box
from insitu.render.camera import Camera
from insitu.render.raymarch import Fragment, Plot, Rays, default_step, render_brick


class EmptyViewWarning(UserWarning):
    """The camera sees none of the data: the image is background only."""


@dataclass
class Piece:
    """A brick and where its lattice sits: ``anchor`` = world (x, y, z) of global index 0, ``spacing`` (x, y, z)."""

    brick: Brick
    anchor: tuple[float, float, float]
    spacing: tuple[float, float, float]
    value_range: tuple[float, float]


# ------------------------------------------------------------------ sources of bricks
def pieces_from_blocks(blocks: Iterable[Any], margin: int = 1) -> list[Piece]:
    """Published Blueprint blocks (:class:`insitu.blueprint.PublishedBlock`): owned samples plus ghost margin."""
    out = []
    for b in blocks:
        owned = b.owned_box
        box, mlo = margin_box(owned, b.values.shape, margin)
        start = b.global_start()
        h = tuple(float(s) for s in b.spacing)
        anchor = tuple(float(b.origin[a]) - (start[2 - a] - owned[2 - a][0]) * h[a] for a in range(3))
        vals = np.ascontiguousarray(b.values[tuple(slice(p, q) for p, q in box)], dtype=np.float32)
        own = b.owned_values
        rng = (float(np.nanmin(own)), float(np.nanmax(own))) if own.size else (0.0, 0.0)
        ext = Extent(start, tuple(q - p for p, q in owned), b.association)  # type: ignore[arg-type]
        out.append(Piece(Brick(vals, ext, mlo), anchor, h, rng))  # type: ignore[arg-type]
    return out


def meta_placement(meta: Any) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """World anchor (x, y, z of global index 0) and spacing (x, y, z) of a cached block's :class:`EntryMeta`."""
    h = tuple(float(v) for v in meta.spacing[::-1])
    return tuple(float(meta.origin[2 - a]) - meta.start[2 - a] * h[a] for a in range(3)), h  # type: ignore[return-value]


def piece_from_model(model: Any, meta: Any, margin: int = 1, backend: str = "auto") -> Piece:
    """A cached block: the model decoded over its owned box plus ``margin`` samples of its ghost region."""
    box, mlo = margin_box(model.owned, model.grid_shape, margin)
    vals = model.decode(backend=backend, box=box)
    anchor, h = meta_placement(meta)
    ext = Extent(tuple(meta.start), tuple(meta.dims), meta.association)  # type: ignore[arg-type]
    return Piece(Brick(vals, ext, mlo), anchor, h, tuple(meta.value_range))  # type: ignore[arg-type]


# ------------------------------------------------------------------ agreeing across ranks
def _allgather(comm: Any, value: Any) -> list[Any]:
    return [value] if comm is None or comm.Get_size() == 1 else comm.allgather(value)


def agree(layers: Sequence[Sequence[Piece]], comm: Any) -> tuple[Lattice | None, list[tuple[float, float]]]:
    """The common lattice of all ranks' pieces and each layer's global value range (collective)."""
    mine = [[(p.brick.extent, p.anchor, p.spacing, p.value_range) for p in layer] for layer in layers]
    everyone = _allgather(comm, mine)
    everything = [item for rank in everyone for layer in rank for item in layer]
    if not everything:
        return None, [(0.0, 0.0) for _ in layers]
    lattice = Lattice.common([e for e, _, _, _ in everything], [a for _, a, _, _ in everything], everything[0][2])
    ranges = []
    for i in range(len(layers)):
        vr = [item[3] for rank in everyone for item in rank[i]]
        ranges.append((min(v[0] for v in vr), max(v[1] for v in vr)) if vr else (0.0, 0.0))
    return lattice, ranges


# ------------------------------------------------------------------ the picture
@dataclass
class FrameStats:
    """Seconds spent: ``render`` (this rank's bricks), ``composite``; ``bricks`` rendered here."""

    render: float = 0.0
    composite: float = 0.0
    bricks: int = 0
    extra: dict = field(default_factory=dict)


def render_frame(plots: Sequence[tuple[Plot, Sequence[Piece]]], lattice: Lattice, camera: Camera, comm: Any = None,
                 *, step: float = 0.5, backend: str = "auto", root: int = 0,
                 stats: FrameStats | None = None) -> np.ndarray | None:
    """Premultiplied RGBA (height, width, 4) of all ranks' pieces on ``root`` (None elsewhere). Collective.

    ``plots`` pairs each plot with this rank's pieces of its field; pieces of
    different plots with the same extent (the same domain) are drawn together.
    A view that sees nothing gives a transparent image and an
    :class:`EmptyViewWarning` on root.
    """
    from insitu.render.composite import composite

    st = stats if stats is not None else FrameStats()
    t0 = time.perf_counter()
    rays = Rays.of(camera)
    dt = default_step(lattice, step)
    by_domain: dict[tuple, list[tuple[Plot, Brick]]] = {}
    for plot, pieces in plots:
        for p in pieces:
            by_domain.setdefault(p.brick.extent.start, []).append((plot, p.brick))
    fragments: list[Fragment] = [render_brick(items, lattice, rays, dt=dt, backend=backend)
                                 for items in by_domain.values()]
    st.render += time.perf_counter() - t0
    st.bricks += len(fragments)
    cst: dict = {}
    image = composite(fragments, rays.shape, comm, root=root, stats=cst)
    st.composite += cst.get("seconds", 0.0)
    if image is not None and not (image[..., 3] > 0).any():
        warnings.warn("the camera sees none of the data: the image is empty (check look_at, position, zoom)",
                      EmptyViewWarning, stacklevel=2)
    return image


def camera_for(lattice: Lattice, params: dict | None, width: int, height: int) -> Camera:
    """An Ascent-style camera around the lattice's bounds."""
    lo, hi = lattice.bounds()
    return Camera.from_params(params, (lo, hi), width, height)


def render_views(plots: Sequence[tuple[Plot, Sequence[Piece]]], lattice: Lattice, camera: dict, width: int,
                 height: int, comm: Any, cycle: int, *, background: Sequence[float], image_path: Any = None,
                 views: Sequence[tuple[float, float]] | None = None, cinema: Any = None, step: float = 0.5,
                 backend: str = "auto", stats: FrameStats | None = None, annotations: Any = None) -> list[str]:
    """Draw one cycle and write it on root (collective); the files written there.

    Without ``views``: one picture from the Ascent ``camera`` to ``image_path``.
    With ``views`` ((phi, theta) pairs, turning the camera by azimuth and
    elevation): one picture each into the Cinema database ``cinema`` (given on
    root only), saved at the end. ``annotations``
    (:class:`insitu.render.annotate.Annotations`, None: a bare picture) are drawn
    on every picture, the outline through each view's own camera.
    """
    from insitu.render.annotate import annotate
    from insitu.render.composite import flatten
    from insitu.render.output import write_png

    written = []
    for view in views or [None]:
        cam = dict(camera)
        if view is not None:
            cam["azimuth"] = float(cam.get("azimuth", 0.0)) + view[0]
            cam["elevation"] = float(cam.get("elevation", 0.0)) + view[1]
        shot = camera_for(lattice, cam, width, height)
        image = render_frame(plots, lattice, shot, comm, step=step, backend=backend, stats=stats)
        if image is None:
            continue
        rgb = flatten(image, background)
        if annotations is not None:
            rgb = annotate(rgb, annotations, shot, background)
        if view is not None:
            written.append(str(cinema.add(view[0], view[1], cycle, rgb, background)))
        else:
            written.append(str(write_png(image_path, rgb, background)))
    if cinema is not None:
        cinema.save()
    return written
