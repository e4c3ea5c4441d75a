"""Writing pictures: PNG files, image names with a cycle, and Cinema databases like Ascent's.

A Cinema database (spec D) is a folder ``NAME.cdb`` with ``data.csv``
(columns ``phi,theta,time,FILE``; FILE relative to the folder) and one image
per view per time, here ``image/<time>/<phi>_<theta>.png``. Views form a
ring: ``phi`` azimuths evenly spread over [-180, 180) and ``theta``
elevations evenly spread inside (-90, 90), both in degrees; ``time`` is the
cycle. Adding a time to an existing database keeps its other rows.
"""
from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from insitu.render.composite import flatten


def write_png(path: str | os.PathLike, image: np.ndarray, background: Sequence[float] = (0.0, 0.0, 0.0)) -> Path:
    """A premultiplied RGBA float image (or uint8 RGB) written as an RGB PNG (folders created)."""
    from PIL import Image

    rgb = image if image.dtype == np.uint8 else flatten(image, background)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        Image.fromarray(rgb, mode="RGB").save(tmp, format="PNG")
    except OSError as exc:  # a full disk: one line naming the picture, no half-written file left behind
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, f"could not write {path} ({exc.strerror or exc})") from None
    os.replace(tmp, path)  # a viewer never sees a half-written picture
    return path


def safe_name(name: object) -> str:
    """``name`` (a field's, a Cinema database's) as one plain file name: path separators, control characters
    and leading dots become ``_``, so a name such as ``../../x`` or ``/etc/x`` stays inside its folder."""
    text = re.sub(r"[\x00-\x1f\x7f/\\]", "_", str(name))
    text = re.sub(r"^\.+", lambda m: "_" * len(m.group()), text)
    return text or "_"


def inside(folder: str | os.PathLike, relative: str) -> Path:
    """``folder/relative``, refused (ValueError) when it would land outside ``folder`` (``..``, an absolute
    path): an image prefix may name subfolders, never leave the output folder."""
    base = Path(folder).resolve()
    target = (base / relative).resolve()
    if target != base and base not in target.parents:
        raise ValueError(f"image name {relative!r} would write outside the output folder {str(folder)!r}: use a "
                         "name or a path inside it")
    return Path(folder) / relative


def image_name(prefix: str, cycle: int) -> str:
    """Ascent's rule: ``prefix % cycle`` when it holds a format (``out_%04d``), else prefix + 6-digit cycle."""
    if "%" in prefix:
        try:
            return prefix % int(cycle)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"image_prefix {prefix!r} must hold one integer format such as %04d: {exc}") from None
    return f"{prefix}{int(cycle):06d}"


def cinema_views(phi: int, theta: int) -> list[tuple[float, float]]:
    """The (phi, theta) angle pairs of a ``phi`` x ``theta`` ring of views, in degrees."""
    if int(phi) < 1 or int(theta) < 1:
        raise ValueError(f"cinema: phi={phi!r} and theta={theta!r} must be positive counts of views")
    phis = [-180.0 + 360.0 * i / int(phi) for i in range(int(phi))]
    thetas = [-90.0 + 180.0 * (j + 0.5) / int(theta) for j in range(int(theta))]
    return [(p, t) for p in phis for t in thetas]


class CinemaDatabase:
    """A Cinema spec-D database at ``path`` (a ``.cdb`` folder); written by one process."""

    COLUMNS = ("phi", "theta", "time", "FILE")

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.rows: dict[tuple[str, str, str], str] = {}
        csv_path = self.path / "data.csv"
        if csv_path.exists():
            with open(csv_path, newline="") as f:
                for row in csv.DictReader(f):
                    self.rows[(row["phi"], row["theta"], row["time"])] = row["FILE"]

    @staticmethod
    def _fmt(x: float) -> str:
        return f"{float(x):g}"

    def add(self, phi: float, theta: float, time: int, image: np.ndarray,
            background: Sequence[float] = (0.0, 0.0, 0.0)) -> Path:
        """Write the picture of one view at one time and record it (call :meth:`save` after)."""
        key = (self._fmt(phi), self._fmt(theta), str(int(time)))
        rel = f"image/{key[2]}/{key[0]}_{key[1]}.png"
        write_png(self.path / rel, image, background)
        self.rows[key] = rel
        return self.path / rel

    def save(self) -> Path:
        """Write ``data.csv`` (all rows, sorted by time, phi, theta)."""
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / "data.csv.tmp"
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(self.COLUMNS)
            for (p, t, tm), rel in sorted(self.rows.items(), key=lambda kv: (int(kv[0][2]), float(kv[0][0]),
                                                                            float(kv[0][1]))):
                w.writerow([p, t, tm, rel])
        os.replace(tmp, self.path / "data.csv")
        return self.path / "data.csv"
