"""Time series of decoded grids that ParaView opens with a time slider: one VTKHDF file, or a .pvd collection.

* :func:`write_vtkhdf`: one HDF5 file in the temporal ImageData layout of VTKHDF
  version 2 (VTK >= 9.3, ParaView >= 5.12): the group ``/VTKHDF`` (attributes
  ``Version``, ``Type = "ImageData"``, ``WholeExtent``, ``Origin``, ``Spacing``,
  ``Direction``), the field in ``PointData/NAME`` (vertex fields) or
  ``CellData/NAME`` (element fields) with shape (steps, z, y, x), and
  ``Steps`` (attribute ``NSteps``, dataset ``Values`` = the times,
  ``PointDataOffsets/NAME`` or ``CellDataOffsets/NAME`` = each step's index
  along the first axis). Every step shares one grid (ImageData has one
  extent). One cycle alone is written as a static image (no time axis, no
  ``Steps``: VTK reads a one-step file as static). The cycle numbers and
  times are kept beside it in ``/insitu/cycles`` and ``/insitu/times``
  (groups outside ``/VTKHDF`` are for readers' own use).
* :func:`write_pvd`: ``NAME.pvd`` (a VTK XML ``Collection``, each entry's
  ``timestep`` the time) and one ``.vti`` per cycle in the folder ``NAME/``
  beside it; each cycle may have its own grid.

Both take :class:`Frame` s one at a time, so a long series never holds more
than one decoded grid.
"""
from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from insitu.render.output import inside, safe_name
from insitu.render.vti import write_vti

#: the VTKHDF version written: 2.0, the first with temporal data, read by every VTK from 9.3 on
VTKHDF_VERSION = (2, 0)
#: the largest HDF5 chunk written (a chunk holds whole x-y planes of one step)
CHUNK_BYTES = 64 << 20


@dataclass
class Frame:
    """One step of a series: the cycle, its time, its grid (float32, z, y, x) and the grid's placement."""

    cycle: int
    time: float
    values: np.ndarray
    geo: Any  # insitu.cache.GridGeometry


def series_times(cycles: Sequence[int], times: Sequence[float | None]) -> tuple[list[float], str | None]:
    """The time of each step: the simulation times when every cycle has one and they increase, else the cycle
    numbers (a time slider needs increasing values), with the reason as the second item."""
    why = None
    if any(t is None or not math.isfinite(t) for t in times):
        why = "some cycles have no simulation time"
    elif any(b <= a for a, b in zip(times, times[1:])):  # type: ignore[operator]
        why = "the simulation times do not increase"
    if why:
        return [float(c) for c in cycles], f"{why}: the steps' times are the cycle numbers"
    return [float(t) for t in times], None  # type: ignore[arg-type]


def same_grid(a: Any, b: Any) -> bool:
    """Whether two GridGeometry place the same samples (dims, association, origin and spacing)."""
    return (tuple(a.dims) == tuple(b.dims) and a.association == b.association
            and np.allclose(a.origin, b.origin, rtol=1e-12, atol=0)
            and np.allclose(a.spacing, b.spacing, rtol=1e-12, atol=0))


def _image_group(root: Any, name: str, geo: Any) -> Any:
    """Fill ``/VTKHDF``'s attributes for ``geo`` and create the growing (steps, z, y, x) array of ``name``."""
    element = geo.association == "element"
    nz, ny, nx = (int(n) for n in geo.dims)
    points = [n + 1 if element else n for n in (nx, ny, nz)]  # VTK's order: x, y, z, in points
    root.attrs["Version"] = np.array(VTKHDF_VERSION, dtype=np.int64)
    root.attrs.create("Type", np.bytes_("ImageData"))  # a fixed-length ASCII string, as VTK writes it
    root.attrs["WholeExtent"] = np.array([v for n in points for v in (0, n - 1)], dtype=np.int64)
    root.attrs["Origin"] = np.array(list(reversed(geo.origin)), dtype=np.float64)
    root.attrs["Spacing"] = np.array(list(reversed(geo.spacing)), dtype=np.float64)
    root.attrs["Direction"] = np.eye(3, dtype=np.float64).ravel()
    group = root.create_group("CellData" if element else "PointData")
    root.create_group("PointData" if element else "CellData")  # the other one, empty: readers look for both
    planes = max(1, min(nz, CHUNK_BYTES // max(1, 4 * ny * nx)))
    return group.create_dataset(name, shape=(0, nz, ny, nx), maxshape=(None, nz, ny, nx), dtype=np.float32,
                                chunks=(1, planes, ny, nx))


def write_vtkhdf(path: str | os.PathLike, name: str, frames: Iterable[Frame]) -> list[int]:
    """Write ``frames`` of field ``name`` as one temporal VTKHDF ImageData file; the cycles written, in order.

    The array is named ``safe_name(name)`` (HDF5 reads ``/`` as a group separator).
    The file appears at ``path`` only once complete (written as ``path.part``, then renamed);
    no frame: nothing is written. ValueError when a frame's grid differs from the first's.
    """
    import h5py

    path = Path(path)
    part = path.with_name(path.name + ".part")
    field, name = name, safe_name(name)  # an HDF5 name: no '/' (a group separator), no leading '.'
    cycles: list[int] = []
    times: list[float] = []
    try:
        with h5py.File(part, "w") as f:
            root = f.create_group("VTKHDF")
            data, first = None, None
            for fr in frames:
                if first is None:
                    data, first = _image_group(root, name, fr.geo), fr
                elif not same_grid(fr.geo, first.geo):
                    raise ValueError(f"cycle {fr.cycle}'s grid {tuple(fr.geo.dims)} ({fr.geo.association}, origin "
                                     f"{fr.geo.origin}) differs from cycle {first.cycle}'s {tuple(first.geo.dims)}: "
                                     "one VTKHDF ImageData holds one grid; export these cycles as .pvd instead")
                data.resize(len(cycles) + 1, axis=0)  # type: ignore[union-attr]
                data[len(cycles)] = np.asarray(fr.values, dtype=np.float32)  # type: ignore[index]
                cycles.append(int(fr.cycle))
                times.append(float(fr.time))
            if first is None:
                return []
            mine = f.create_group("insitu")  # outside /VTKHDF: ignored by VTK, kept for people
            mine.create_dataset("cycles", data=np.array(cycles, dtype=np.int64))
            mine.create_dataset("times", data=np.array(times, dtype=np.float64))
            mine.attrs["field"] = field  # as the cache names it
            if len(cycles) == 1:  # VTK reads a one-step file as a static image: no time axis then
                group, one = data.parent, data[0]  # type: ignore[union-attr]
                del group[name]
                group.create_dataset(name, data=one)
            else:
                _steps(root, name, first.geo.association, times)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
    return cycles


def _steps(root: Any, name: str, association: str, times: list[float]) -> None:
    """The ``Steps`` group of a temporal file: the times, and step k at row k of the array."""
    steps = root.create_group("Steps")
    steps.attrs["NSteps"] = np.int64(len(times))
    steps.create_dataset("Values", data=np.array(times, dtype=np.float64))
    offsets = np.arange(len(times), dtype=np.int64)
    element = association == "element"
    steps.create_group("CellDataOffsets" if element else "PointDataOffsets").create_dataset(name, data=offsets)
    steps.create_group("PointDataOffsets" if element else "CellDataOffsets")


def pvd_folder(path: str | os.PathLike) -> Path:
    """The folder a ``.pvd`` collection keeps its ``.vti`` files in: its own name without the suffix."""
    path = Path(path)
    return path.with_name(safe_name(path.stem))


def write_pvd(path: str | os.PathLike, name: str, frames: Iterable[Frame]) -> list[int]:
    """Write ``frames`` as one ``.vti`` each in :func:`pvd_folder` and the ``.pvd`` collection naming them with
    their times; the cycles written, in order. No frame: nothing is written."""
    path = Path(path)
    folder = pvd_folder(path)
    collection = ET.Element("Collection")
    cycles: list[int] = []
    for fr in frames:
        folder.mkdir(exist_ok=True)
        rel = f"{safe_name(name)}_{int(fr.cycle):06d}.vti"
        write_vti(inside(folder, rel), fr.values, name, fr.geo)
        ET.SubElement(collection, "DataSet", timestep=repr(float(fr.time)), group="", part="0",
                      file=f"{folder.name}/{rel}")
        cycles.append(int(fr.cycle))
    if not cycles:
        return []
    doc = ET.Element("VTKFile", type="Collection", version="0.1", byte_order="LittleEndian")
    doc.append(collection)
    ET.indent(doc)
    part = path.with_name(path.name + ".part")
    ET.ElementTree(doc).write(part, encoding="utf-8", xml_declaration=True)
    os.replace(part, path)
    return cycles
