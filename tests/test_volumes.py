"""benchmarks/volumes.py converts real volume formats to float32 (z, y, x) without the network."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import volumes


def _nifti_bytes(values: np.ndarray, datatype: int, slope: float = 1.0, inter: float = 0.0) -> bytes:
    nz, ny, nx = values.shape
    header = bytearray(352)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, 3, nx, ny, nz, 1, 1, 1, 1)
    struct.pack_into("<h", header, 70, datatype)
    struct.pack_into("<f", header, 108, 352.0)
    struct.pack_into("<2f", header, 112, slope, inter)
    # NIfTI is x fastest, which is the C order of a (z, y, x) array
    return gzip.compress(bytes(header) + values.tobytes())


def test_nifti_is_read_in_z_y_x_order_with_its_scaling() -> None:
    rng = np.random.default_rng(0)
    grid = rng.integers(0, 1000, size=(3, 4, 5)).astype(np.int16)
    out = volumes._nifti(_nifti_bytes(grid, 4, slope=0.5, inter=2.0))
    assert out.dtype == np.float32 and out.shape == (3, 4, 5)
    np.testing.assert_allclose(out, grid * 0.5 + 2.0)


def test_nifti_that_is_not_a_scalar_volume_is_refused() -> None:
    with pytest.raises(ValueError, match="datatype 1234"):
        volumes._nifti(_nifti_bytes(np.zeros((2, 2, 2), np.uint8), 1234))


@pytest.mark.parametrize("suffix", [".vtk", ".vti"])
def test_vtk_images_keep_x_fastest_as_z_y_x(tmp_path: Path, suffix: str) -> None:
    import vtk
    from vtk.util.numpy_support import numpy_to_vtk

    grid = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5) ** 1.5
    image = vtk.vtkImageData()
    image.SetDimensions(5, 4, 3)
    scalars = numpy_to_vtk(grid.ravel(), deep=True)
    scalars.SetName("s")
    image.GetPointData().SetScalars(scalars)
    writer = vtk.vtkXMLImageDataWriter() if suffix == ".vti" else vtk.vtkStructuredPointsWriter()
    if suffix == ".vtk":
        writer.SetFileTypeToBinary()
    path = tmp_path / f"v{suffix}"
    writer.SetFileName(str(path))
    writer.SetInputData(image)
    writer.Write()
    np.testing.assert_array_equal(volumes._vtk_image(path.read_bytes(), suffix), grid)


def test_unknown_volume_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known volumes: ironprot"):
        volumes.load("no_such_volume")


def test_converted_volumes_are_read_back_without_the_network(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("INSITU_VOLUMES_DIR", str(tmp_path))
    calls = []
    vol = volumes.Volume("tiny", "scan", "test", "pypi:none==0", "", "x.nii.gz", volumes._nifti)
    grid = np.linspace(0, 1, 24, dtype=np.float32).reshape(2, 3, 4)
    monkeypatch.setattr(volumes, "_wheel_file", lambda v: calls.append(v) or _nifti_bytes(grid, 16))
    first = np.load(volumes.fetch(vol))
    second = np.load(volumes.fetch(vol))
    np.testing.assert_array_equal(first, grid)
    np.testing.assert_array_equal(second, grid)
    assert len(calls) == 1 and (tmp_path / "tiny.json").exists()


def test_max_side_subsamples_by_the_smallest_whole_stride_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("INSITU_VOLUMES_DIR", str(tmp_path))
    grid = np.arange(10 * 7 * 5, dtype=np.float32).reshape(10, 7, 5)
    np.save(tmp_path / "hydrogen.npy", grid)  # already converted: no network
    notes: list[str] = []
    out = volumes.load_available(["hydrogen"], notes, max_side=4)
    np.testing.assert_array_equal(out["hydrogen"], grid[::3, ::3, ::3])  # ceil(10 / 4) = 3
    assert notes == ["volume hydrogen (10, 7, 5): every 3th sample per axis (--max-side 4)"]
    assert volumes.load_available(["hydrogen"], [], max_side=10)["hydrogen"].shape == (10, 7, 5)
