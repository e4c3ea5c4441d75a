"""`insitu export` of time series: one VTKHDF file (temporal ImageData) and a .pvd collection of .vti files,
read back with VTK's own readers and compared with the cache's decode."""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from support.cache_common import make_entry
from support.series_common import CYCLES, TIMES, damage, write_cache

from insitu.cache import TemporalCache
from insitu.cli.command import main

INSITU = Path(sys.executable).parent / "insitu"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return write_cache(tmp_path_factory.mktemp("series") / "run.cache")


def decoded(cache: Path, field: str, cycle: int) -> np.ndarray:
    with TemporalCache.open(cache) as r:
        return r.reconstruct(field, cycle)


def read_vtkhdf(path: Path) -> tuple[list[float], list]:
    """(time values, the image at each step) as vtkHDFReader gives them."""
    import vtk

    reader = vtk.vtkHDFReader()
    reader.SetFileName(str(path))
    reader.UpdateInformation()
    info = reader.GetOutputInformation(0)
    times = list(info.Get(vtk.vtkStreamingDemandDrivenPipeline.TIME_STEPS()) or ())  # none for one step
    images = []
    for k in range(reader.GetNumberOfSteps()):
        reader.SetStep(k)
        reader.Update()
        img = vtk.vtkImageData()
        img.DeepCopy(reader.GetOutput())
        images.append(img)
    return times, images


def values_of(img, field: str, shape) -> np.ndarray:
    from vtk.util import numpy_support

    arr = img.GetPointData().GetArray(field)
    if arr is None:
        arr = img.GetCellData().GetArray(field)
    return numpy_support.vtk_to_numpy(arr).reshape(shape)


@pytest.mark.parametrize("field", ["energy", "pressure"])
def test_vtkhdf_holds_every_cycle_with_its_time_and_values(cache, tmp_path, field, capsys):
    out = tmp_path / "run.vtkhdf"
    assert main(["export", str(cache), "--field", field, "--cycles", "all", "-o", str(out)]) == 0
    assert "3 cycle(s) 0..9" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.vtkhdf"]  # nothing beside the target
    times, images = read_vtkhdf(out)
    assert times == [TIMES[c] for c in CYCLES] and len(images) == 3
    element = field == "pressure"
    for cycle, img in zip(CYCLES, images):
        expected = decoded(cache, field, cycle)
        data = img.GetCellData() if element else img.GetPointData()
        assert data.GetArray(field) is not None  # point data for vertex fields, cell data for element fields
        assert np.array_equal(values_of(img, field, expected.shape), expected)
        assert img.GetDimensions() == ((15, 13, 11) if element else (14, 12, 10))
        assert img.GetSpacing() == pytest.approx((0.125, 0.25, 0.5))
        assert img.GetOrigin() == pytest.approx((0.0, 0.0, 0.0))
    # the steps really differ: each holds its own cycle, not the first one again
    assert not np.array_equal(values_of(images[0], field, (10, 12, 14)), values_of(images[2], field, (10, 12, 14)))


def test_vtkhdf_layout_follows_the_specification(cache, tmp_path):
    import h5py

    out = tmp_path / "e.vtkhdf"
    assert main(["export", str(cache), "--field", "energy", "--cycles", "5:10", "-o", str(out)]) == 0
    with h5py.File(out, "r") as f:
        root = f["VTKHDF"]
        assert root.attrs["Type"] == b"ImageData" and list(root.attrs["Version"]) == [2, 0]
        assert list(root.attrs["WholeExtent"]) == [0, 13, 0, 11, 0, 9]
        assert list(root.attrs["Direction"]) == [1, 0, 0, 0, 1, 0, 0, 0, 1]
        assert root["PointData/energy"].shape == (2, 10, 12, 14)
        steps = root["Steps"]
        assert steps.attrs["NSteps"] == 2 and list(steps["Values"]) == [2.5, 4.75]
        assert list(steps["PointDataOffsets/energy"]) == [0, 1]
        assert list(f["insitu/cycles"]) == [5, 9] and list(f["insitu/times"]) == [2.5, 4.75]


@pytest.mark.parametrize("field", ["energy", "pressure"])
def test_pvd_collection_names_each_cycles_vti_with_its_time(cache, tmp_path, field):
    import vtk

    out = tmp_path / "series.pvd"
    assert main(["export", str(cache), "--field", field, "--cycles", "0,9", "-o", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series", "series.pvd"]
    entries = ET.parse(out).getroot().findall("./Collection/DataSet")
    assert [float(e.get("timestep")) for e in entries] == [TIMES[0], TIMES[9]]
    assert [e.get("file") for e in entries] == [f"series/{field}_000000.vti", f"series/{field}_000009.vti"]
    for cycle, e in zip((0, 9), entries):
        reader = vtk.vtkXMLImageDataReader()
        reader.SetFileName(str(tmp_path / e.get("file")))
        reader.Update()
        img = reader.GetOutput()
        expected = decoded(cache, field, cycle)
        assert np.array_equal(values_of(img, field, expected.shape), expected)
        assert img.GetDimensions() == ((15, 13, 11) if field == "pressure" else (14, 12, 10))


def test_a_damaged_cycle_is_skipped_with_one_line_and_the_others_written(tmp_path, capsys):
    cache = write_cache(tmp_path / "c")
    damage(cache, "energy", 5, 2)
    for name in ("run.vtkhdf", "run.pvd"):
        assert main(["export", str(cache), "--field", "energy", "-o", str(tmp_path / name)]) == 1
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and "cycle 5 skipped" in lines[0] and "domain 2" in lines[0], lines
        assert "1 damaged cycle(s) skipped: [5]" in captured.out
    times, images = read_vtkhdf(tmp_path / "run.vtkhdf")
    assert times == [TIMES[0], TIMES[9]]
    assert np.array_equal(values_of(images[1], "energy", (10, 12, 14)), decoded(cache, "energy", 9))
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["energy_000000.vti", "energy_000009.vti"]


def test_cycles_without_times_use_the_cycle_numbers_and_say_so(tmp_path, capsys):
    cache = write_cache(tmp_path / "c", cycles=(3, 4), times=None)
    assert main(["export", str(cache), "--field", "energy", "-o", str(tmp_path / "t.vtkhdf")]) == 0
    assert "the steps' times are the cycle numbers" in capsys.readouterr().err
    assert read_vtkhdf(tmp_path / "t.vtkhdf")[0] == [3.0, 4.0]


def test_cycles_on_different_grids_go_to_pvd_not_one_vtkhdf(tmp_path, capsys):
    cache = write_cache(tmp_path / "c", cycles=(0, 1), times={0: 0.0, 1: 1.0}, shapes={1: (8, 12, 14)})
    out = tmp_path / "x.vtkhdf"
    assert main(["export", str(cache), "--field", "energy", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cycle 1's grid (8, 12, 14) differs from cycle 0's (10, 12, 14)" in err and "export to .pvd" in err
    assert not out.exists()
    assert main(["export", str(cache), "--field", "energy", "-o", str(tmp_path / "x.pvd")]) == 0


def test_a_huge_grid_in_the_metadata_is_one_clear_line_not_a_memory_error(tmp_path):
    path = tmp_path / "c"
    with TemporalCache(path) as c:
        c.put("f", 0, 0, *make_entry(0)[1:])
        c.put("f", 0, 1, *make_entry(1, start=(10 ** 6, 10 ** 6, 10 ** 6))[1:])  # bounding box ~4e18 bytes
    for name in ("h.vtkhdf", "h.vti"):
        proc = subprocess.run([str(INSITU), "export", str(path), "--field", "f", "--cycles", "0", "-o",
                               str(tmp_path / name)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "field 'f' cycle 0: the grid (1000006, 1000007, 1000008)" in lines[0]
        assert "more than the" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


@pytest.mark.parametrize("args, message", [
    (["--cycles", "all", "-o", "{tmp}/x.vti"], "selects 3 cycles but .vti holds one"),
    (["-o", "{tmp}/x.npy"], ".npy holds one cycle: give --cycle C"),
    (["--cycles", "4:5", "-o", "{tmp}/x.vtkhdf"], "--cycles 4:5 selects no cached cycle; cached cycles: 0..9"),
    (["--cycles", "7", "-o", "{tmp}/x.pvd"], "cycle(s) [7] are not cached"),
    (["--cycles", "all", "-o", "{tmp}/x.hdf5"], "use one of .npy, .vti, .vtkhdf, .pvd"),
])
def test_bad_selections_give_one_line(cache, tmp_path, args, message, capsys):
    assert main(["export", str(cache), "--field", "energy", *[a.format(tmp=tmp_path) for a in args]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("insitu: error: ") and message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_one_cycle_selected_with_cycles_still_writes_a_vti(cache, tmp_path):
    out = tmp_path / "one.npy"
    assert main(["export", str(cache), "--field", "energy", "--cycles", "last:1", "-o", str(out)]) == 0
    assert np.array_equal(np.load(out), decoded(cache, "energy", 9))


def test_a_field_name_with_separators_stays_inside_the_target(tmp_path):
    path = tmp_path / "c"
    with TemporalCache(path) as c:
        c.put("../up/e", 0, 0, *make_entry(0, time=0.0)[1:])
    out = tmp_path / "out"
    out.mkdir()
    assert main(["export", str(path), "--field", "../up/e", "-o", str(out / "s.vtkhdf")]) == 0
    assert main(["export", str(path), "--field", "../up/e", "-o", str(out / "s.pvd")]) == 0
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["s", "s.pvd", "s.vtkhdf", "s/___up_e_000000.vti"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "out"]
    times, (img,) = read_vtkhdf(out / "s.vtkhdf")  # one cycle: a static image, as VTK reads one step
    assert np.array_equal(values_of(img, "___up_e", (6, 7, 8)), decoded(path, "../up/e", 0))
