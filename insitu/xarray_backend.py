"""An xarray backend: ``xr.open_dataset("run.cache", engine="insitu")`` (or :func:`insitu.open`).

What the Dataset holds (see ``docs/open_in_python_and_paraview.md``):

* one variable per cached field, dims ``(cycle, z, y, x)``, float32, NaN where
  no domain covers; vertex fields' ``x``/``y``/``z`` are the vertices' world
  coordinates, element fields' the cell centres (origin + (i + 0.5) * spacing);
* coordinates along ``cycle``: ``cycle`` (the numbers), ``time`` (simulation
  time, NaN when not recorded), and per field ``psnr_<field>`` (the worst
  domain's PSNR at compression, dB) and ``ratio_<field>`` (raw float32 bytes /
  model bytes stored), read from the index;
* fields on other cycles or other grids: an axis is shared (plain name ``cycle``,
  ``z``, ``y``, ``x``) when its coordinate equals the first field's, otherwise the
  field gets its own (``x_<field>``, ``cycle_<field>``, ...): a vertex and an
  element field on one mesh share ``cycle`` but not ``x``;
* a field whose grid changes between cycles keeps the cycles on its latest
  cycle's grid; the others are left out with one warning naming them.

Nothing is decoded at open: each variable is a lazy :class:`CycleArray`, and
reading any part of a cycle decodes that whole cycle (all its domains, once; the
two latest grids are kept). A cycle with a damaged entry raises
:class:`insitu.cache.grid.CycleDamagedError` naming the field and cycle when it
is read; the other cycles read normally.
"""
from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import xarray as xr
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.core import indexing

from insitu.cache import CacheReader, GridGeometry
from insitu.cache.grid import cycle_figures, decode_grid
from insitu.cache.segment import MARKER

AXES = ("z", "y", "x")
#: decoded grids kept per opened cache (reading a cycle piece by piece decodes it once)
KEEP_GRIDS = 2


class _Source:
    """One opened cache shared by a Dataset's arrays: the reader (opened on first use, one user at a time) and
    the latest decoded grids."""

    def __init__(self, path: str, decode_backend: str) -> None:
        self.path = path
        self.decode_backend = decode_backend
        self._reader: CacheReader | None = None
        self._lock = threading.Lock()
        self._grids: "OrderedDict[tuple[str, int], np.ndarray]" = OrderedDict()

    def reader(self) -> CacheReader:
        if self._reader is None:
            self._reader = CacheReader(self.path)
        return self._reader

    def grid(self, field: str, cycle: int) -> np.ndarray:
        """The decoded global grid of ``field`` at ``cycle`` (read-only)."""
        with self._lock:  # the reader's open files and model memo are not for concurrent use
            key = (field, int(cycle))
            if key not in self._grids:
                values, _ = decode_grid(self.reader(), field, int(cycle), backend=self.decode_backend)
                values.flags.writeable = False
                self._grids[key] = values
                while len(self._grids) > KEEP_GRIDS:
                    self._grids.popitem(last=False)
            self._grids.move_to_end(key)
            return self._grids[key]

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            self._grids.clear()

    def __getstate__(self) -> dict:  # dask's processes get the path, and open their own reader
        return {"path": self.path, "decode_backend": self.decode_backend}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["decode_backend"])  # type: ignore[misc]


class CycleArray(BackendArray):
    """A field's cycles as a lazy (cycle, z, y, x) float32 array: indexing decodes only the cycles it touches."""

    def __init__(self, source: _Source, field: str, cycles: list[int], grid_shape: tuple[int, int, int]) -> None:
        self.source = source
        self.field = field
        self.cycles = list(cycles)
        self.shape = (len(self.cycles), *grid_shape)
        self.dtype = np.dtype(np.float32)

    def __getitem__(self, key: Any) -> np.ndarray:
        # outer indexing: a list of cycles decodes those cycles, not every cycle between them
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER, self._read)

    def _read(self, key: tuple) -> np.ndarray:
        which, rest = key[0], tuple(key[1:])
        if isinstance(which, (int, np.integer)):
            return _outer(self.source.grid(self.field, self.cycles[which]), rest)
        picked = range(self.shape[0])[which] if isinstance(which, slice) else [int(i) for i in np.ravel(which)]
        if not len(picked):  # the shape alone, without touching a grid
            return np.empty((0, *_outer(np.broadcast_to(np.float32(0), self.shape[1:]), rest).shape), np.float32)
        return np.stack([_outer(self.source.grid(self.field, self.cycles[i]), rest) for i in picked])


def _outer(grid: np.ndarray, key: tuple) -> np.ndarray:
    """``grid`` indexed axis by axis (xarray's outer indexing: each array picks along its own axis), a copy."""
    out, axis = grid, 0
    for k in key:
        if isinstance(k, (int, np.integer)):
            out = np.take(out, int(k), axis=axis)
        else:
            out = out[(slice(None),) * axis + (k,)]
            axis += 1
    return np.array(out)


def _axis_coords(geo: GridGeometry) -> dict[str, np.ndarray]:
    """World coordinates of the samples along z, y, x: vertices, or cell centres for element data."""
    shift = 0.5 if geo.association == "element" else 0.0
    return {a: geo.origin[i] + (np.arange(geo.dims[i]) + shift) * geo.spacing[i] for i, a in enumerate(AXES)}


def _field_layout(reader: CacheReader, field: str) -> tuple[list[int], GridGeometry]:
    """The cycles of ``field`` on its latest cycle's grid, and that grid (one warning for cycles left out)."""
    from insitu.render.series import same_grid

    cycles = reader.cycles(field)
    geos = {c: reader.geometry(field, c) for c in cycles}
    geo = geos[cycles[-1]]
    kept = [c for c in cycles if same_grid(geos[c], geo)]
    if len(kept) < len(cycles):
        other = [c for c in cycles if c not in set(kept)]
        warnings.warn(f"insitu: field {field!r}: {len(other)} cycle(s) {other[:10]} are on another grid than the "
                      f"latest cycle's {tuple(geo.dims)} and are left out (export them with `insitu export`)",
                      stacklevel=3)
    return kept, geo


def open_cache_dataset(path: str | os.PathLike, *, fields: Iterable[str] | None = None,
                       drop_variables: str | Iterable[str] | None = None, decode_backend: str = "auto") -> xr.Dataset:
    """The cache at ``path`` as a lazily decoded :class:`xarray.Dataset` (see the module's docstring)."""
    source = _Source(os.fspath(path), decode_backend)
    reader = source.reader()
    drop = {drop_variables} if isinstance(drop_variables, str) else set(drop_variables or ())
    names = [f for f in (reader.fields() if fields is None else list(fields)) if f not in drop]
    unknown = [f for f in names if f not in reader.fields()]
    if unknown:
        source.close()
        raise ValueError(f"fields {unknown} are not in the cache {str(path)!r}; cached fields: {reader.fields()}")
    plain: dict[str, np.ndarray] = {}  # the first field's coordinate of each axis: others with equal ones share it
    variables, coords = {}, {}
    for field in names:
        cycles, geo = _field_layout(reader, field)
        figures = [cycle_figures(reader, field, c) for c in cycles]
        axes = {"cycle": np.array(cycles, dtype=np.int64),
                "time": np.array([np.nan if f.time is None else f.time for f in figures], dtype=np.float64),
                **_axis_coords(geo)}
        dims = {}
        for axis in ("cycle", *AXES):
            # cycles share a dim only with the same times too: one dim, one time coordinate
            same = axis in plain and np.array_equal(plain[axis], axes[axis]) and \
                (axis != "cycle" or np.array_equal(plain["time"], axes["time"], equal_nan=True))
            if axis not in plain:
                plain[axis] = axes[axis]
                if axis == "cycle":
                    plain["time"] = axes["time"]
                same = True
            dims[axis] = axis if same else f"{axis}_{field}"
        where = "cell centres" if geo.association == "element" else "vertices"
        coords[dims["cycle"]] = (dims["cycle"], axes["cycle"], {"long_name": "cycle"})
        coords["time" if dims["cycle"] == "cycle" else f"time_{field}"] = (
            dims["cycle"], axes["time"], {"long_name": "simulation time (NaN: not recorded)"})
        for a in AXES:
            coords.setdefault(dims[a], (dims[a], axes[a], {"long_name": a,
                                                           "description": f"world {a} of the {where}"}))
        coords[f"psnr_{field}"] = (dims["cycle"], np.array([np.nan if f.psnr_min is None else f.psnr_min
                                                             for f in figures]),
                                   {"long_name": f"{field}: worst domain's PSNR at compression", "units": "dB"})
        coords[f"ratio_{field}"] = (dims["cycle"], np.array([np.nan if f.ratio is None else f.ratio for f in figures]),
                                    {"long_name": f"{field}: raw float32 bytes / stored model bytes"})
        lazy = indexing.LazilyIndexedArray(CycleArray(source, field, cycles, tuple(geo.dims)))  # type: ignore[arg-type]
        variables[field] = xr.Variable([dims[a] for a in ("cycle", *AXES)], lazy,
                                       attrs={"association": geo.association, "field": field,
                                              "spacing_zyx": list(geo.spacing), "origin_zyx": list(geo.origin),
                                              "psnr": f"psnr_{field}", "ratio": f"ratio_{field}"})
    ds = xr.Dataset(variables, coords=coords, attrs={"source": os.fspath(path), "insitu_decode": "lazy, per cycle"})
    ds.set_close(source.close)
    return ds


class InsituBackendEntrypoint(BackendEntrypoint):
    """``engine="insitu"``: open an insitu-inr cache directory; extra options ``fields`` (a subset) and
    ``decode_backend`` (the inr decode backend: auto, native, torch, ...)."""

    description = "Open an insitu-inr temporal cache (neural-compressed timesteps), decoded lazily per cycle"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "fields", "decode_backend")

    def open_dataset(self, filename_or_obj: Any, *, drop_variables: str | Iterable[str] | None = None,
                     fields: Iterable[str] | None = None, decode_backend: str = "auto") -> xr.Dataset:
        if not isinstance(filename_or_obj, (str, os.PathLike)):
            raise ValueError(f"engine='insitu' opens a cache directory given by its path, not "
                             f"{type(filename_or_obj).__name__}")
        return open_cache_dataset(filename_or_obj, fields=fields, drop_variables=drop_variables,
                                  decode_backend=decode_backend)

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        try:
            return (Path(filename_or_obj) / MARKER).is_file()
        except TypeError:
            return False
