"""The cache subcommands of the `insitu` command line: info, verify, export."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from support.cache_common import decomposition, entry_file_offset, make_entry

from insitu.cache import TemporalCache
from insitu.cli.command import main

INSITU = Path(sys.executable).parent / "insitu"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """Two fields, two cycles, 8 domains of a 10x12x14 grid (energy: vertex, pressure: element)."""
    path = tmp_path_factory.mktemp("cli") / "run.cache"
    with TemporalCache(path) as c:
        for cycle in (0, 5):
            for d, start, dims in decomposition():
                for fi, field in enumerate(("energy", "pressure")):
                    _, b, meta = make_entry(100 * cycle + 10 * d + fi, start=start, owned_shape=dims,
                                            association=("vertex", "element")[fi], time=cycle * 0.5)
                    c.put(field, cycle, d, b, meta)
    return path


def cli(*args: str) -> subprocess.CompletedProcess:
    """The real console script, as a user runs it."""
    return subprocess.run([str(INSITU), *args], capture_output=True, text=True, timeout=300)


def test_info_text_and_json(cache, capsys):
    assert main(["info", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "field 'energy': 2 cycles (0, 5), 8 domains, 16 entries" in out and "PSNR min/mean/max" in out
    assert main(["info", str(cache), "-v"]) == 0
    lines = capsys.readouterr().out.splitlines()  # the per-cycle table shows the simulation time
    assert any(line.split()[:3] == ["5", "2.5", "8"] for line in lines if line.strip())
    assert main(["info", str(cache), "--json", "-v"]) == 0
    doc = json.loads(capsys.readouterr().out)
    e = doc["fields"]["energy"]
    assert e["cycles"] == [0, 5] and e["domains"] == list(range(8)) and e["entries"] == 16
    assert e["raw_bytes"] == 2 * 4 * 10 * 12 * 14 and e["ratio"] == pytest.approx(e["raw_bytes"] / e["stored_bytes"])
    assert 30 <= e["psnr"]["min"] <= e["psnr"]["mean"] <= e["psnr"]["max"] <= 50
    assert set(e["per_cycle"]) == {"0", "5"} and doc["total"]["entries"] == 32


def test_verify_ok(cache, capsys):
    assert main(["verify", str(cache)]) == 0
    assert "OK: 32 entries" in capsys.readouterr().out


def test_verify_names_the_bad_entry(tmp_path, capsys):
    path = tmp_path / "c"
    with TemporalCache(path) as c:
        for d in range(3):
            c.put("energy", 7, d, *make_entry(d)[1:])
    (seg,) = path.glob("*.h5")
    offset = entry_file_offset(seg, 1)
    raw = bytearray(seg.read_bytes())
    raw[offset + 10] ^= 0x01
    seg.write_bytes(bytes(raw))
    proc = cli("verify", str(path))
    assert proc.returncode == 1
    bad = [line for line in proc.stdout.splitlines() if line.startswith("BAD")]
    assert len(bad) == 1 and "field='energy' cycle=7 domain=1" in bad[0] and seg.name in bad[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("field", ["energy", "pressure"])
def test_export_vti_matches_the_reconstruction(cache, tmp_path, field, capsys):
    import vtk
    from vtk.util import numpy_support

    out = tmp_path / f"{field}.vti"
    assert main(["export", str(cache), "--field", field, "--cycle", "5", "-o", str(out), "--backend", "torch"]) == 0
    assert "wrote" in capsys.readouterr().out
    with TemporalCache.open(cache) as r:
        expected = r.reconstruct(field, 5, backend="torch")
        geo = r.geometry(field, 5)
    assert expected.shape == (10, 12, 14) and not np.isnan(expected).any()
    reader = vtk.vtkXMLImageDataReader()
    reader.SetFileName(str(out))
    reader.Update()
    img = reader.GetOutput()
    element = field == "pressure"
    data = img.GetCellData() if element else img.GetPointData()
    values = numpy_support.vtk_to_numpy(data.GetArray(field)).reshape(expected.shape)
    assert np.array_equal(values, expected)
    assert img.GetDimensions() == ((15, 13, 11) if element else (14, 12, 10))
    assert img.GetSpacing() == pytest.approx((0.125, 0.25, 0.5)) == tuple(reversed(geo.spacing))
    assert img.GetOrigin() == pytest.approx((0.0, 0.0, 0.0))


def test_export_npy(cache, tmp_path):
    out = tmp_path / "e.npy"
    assert main(["export", str(cache), "--field", "energy", "--cycle", "0", "-o", str(out), "--backend", "torch"]) == 0
    with TemporalCache.open(cache) as r:
        assert np.array_equal(np.load(out), r.reconstruct("energy", 0, backend="torch"))


@pytest.mark.parametrize("args, message", [
    (["info", "{tmp}/missing"], "does not exist"),
    (["verify", "{tmp}"], "is not an insitu cache"),
    (["export", "{cache}", "--field", "rho", "--cycle", "0", "-o", "{tmp}/x.vti"],
     "unknown field 'rho': the cache holds fields ['energy', 'pressure']"),
    (["export", "{cache}", "--field", "energy", "--cycle", "3", "-o", "{tmp}/x.vti"],
     "unknown cycle 3 of field 'energy': cached cycles are [0, 5]"),
    (["export", "{cache}", "--field", "energy", "--cycle", "0", "-o", "{tmp}/x.png"], "unknown format '.png'"),
    (["export", "{cache}", "--field", "energy", "--cycle", "0", "-o", "{tmp}/no/x.vti"], "does not exist"),
])
def test_bad_input_gives_a_clear_message_and_exit_2(cache, tmp_path, args, message):
    (tmp_path / "stuff.txt").write_text("not a cache")
    proc = cli(*[a.format(tmp=tmp_path, cache=cache) for a in args])
    assert proc.returncode == 2, proc
    assert proc.stderr.startswith("insitu: error: ") and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_wrong_format_version_via_cli(tmp_path):
    path = tmp_path / "c"
    with TemporalCache(path) as c:
        c.put("f", 0, 0, *make_entry(0)[1:])
    (path / "insitu-cache.json").write_text(json.dumps({"format": "insitu-inr-cache", "format_version": 2}))
    proc = cli("info", str(path))
    assert proc.returncode == 2 and "format_version 2" in proc.stderr and "Traceback" not in proc.stderr
