"""`insitu replay` (serial and under mpiexec with another process count) and the render filter."""
import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from support import render_common as rc

from support.mpi import mpiexec
from insitu.cli.command import main

INSITU = Path(sys.executable).parent / "insitu"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """Cycles 0, 10, 20 of a moving field, written as 4 domains (as by 4 ranks)."""
    path = tmp_path_factory.mktemp("replay") / "run.cache"
    rc.write_cache(path, {c: rc.field((36, 32, 40), seed=1 + c // 10) for c in (0, 10, 20)}, (2, 2, 1),
                   ratio=8, max_steps=300)
    return path


def png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def test_replay_serial_writes_one_png_per_cycle(cache, tmp_path, capsys):
    out = tmp_path / "frames"
    assert main(["replay", str(cache), "--cycles", "0:21:10", "--size", "96x64", "-o", str(out),
                 "--camera", "azimuth=30,elevation=20"]) == 0
    assert "3 image(s)" in capsys.readouterr().out
    imgs = [png(out / f"f_{c:06d}.png") for c in (0, 10, 20)]
    assert all(i.shape == (64, 96, 3) for i in imgs)
    assert all((i.sum(axis=2) > 20).mean() > 0.1 for i in imgs)  # the volume is drawn
    assert np.abs(imgs[0] - imgs[2]).mean() > 1  # the field changed between cycles, and so did the picture


@pytest.mark.mpi
@pytest.mark.parametrize("n", [3])
def test_replay_under_mpiexec_matches_serial(cache, tmp_path, n):
    """4 writer domains read by 3 processes: the same PNG as one process reads."""
    serial, parallel = tmp_path / "s", tmp_path / "p"
    args = ["replay", str(cache), "--cycles", "last:2", "--size", "80x72", "--plot", "slice", "--colormap", "magma"]
    assert main(args + ["-o", str(serial)]) == 0
    cmd = [mpiexec(), "-n", str(n), str(INSITU), *args, "-o", str(parallel)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={"OMP_NUM_THREADS": "1",
                                                                                 "PATH": str(INSITU.parent)})
    assert proc.returncode == 0, proc.stderr
    assert f"on {n} process(es)" in proc.stdout
    for c in (10, 20):
        a, b = png(serial / f"f_{c:06d}.png"), png(parallel / f"f_{c:06d}.png")
        assert (a.sum(axis=2) > 20).mean() > 0.1
        assert np.abs(a - b).max() <= 1


def test_replay_cinema_database(cache, tmp_path):
    assert main(["replay", str(cache), "--cycles", "20", "--cinema", "3x2", "--size", "48x48",
                 "-o", str(tmp_path), "--db-name", "ring"]) == 0
    with open(tmp_path / "ring.cdb" / "data.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {r["time"] for r in rows} == {"20"}
    pictures = [png(tmp_path / "ring.cdb" / r["FILE"]) for r in rows]
    assert all((p.sum(axis=2) > 20).mean() > 0.1 for p in pictures)
    assert np.abs(pictures[0] - pictures[2]).mean() > 1  # different views, different pictures


@pytest.mark.parametrize("args,message", [
    (["--field", "nope"], "cached fields: ['f']"),
    (["--cycles", "30:90"], "cached cycles: 0..20 (3 cycles)"),
    (["--cycles", "5"], "not cached; cached cycles: 0..20"),
    (["--colormap", "nope"], "valid choices include"),
    (["--plot", "iso"], "valid choices are ['volume', 'pseudocolor', 'slice', 'isosurface']"),
    (["--camera", "azimut=3"], "valid ones are"),
    (["--cinema", "3by2"], "PHIxTHETA"),
])
def test_replay_bad_input_is_one_clear_line(cache, tmp_path, capsys, args, message):
    assert main(["replay", str(cache), *args, "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_replay_not_a_cache(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "missing")]) == 2
    assert "insitu: error:" in capsys.readouterr().err


def test_replay_camera_that_sees_nothing_warns(cache, tmp_path, capsys):
    assert main(["replay", str(cache), "--cycles", "0", "--size", "32x32", "-o", str(tmp_path), "--no-annotations",
                 "--camera", "look_at=500;500;500,position=500;500;600"]) == 0
    assert "sees none of the data" in capsys.readouterr().err
    assert png(tmp_path / "f_000000.png").max() == 0  # black background only


def test_render_filter_from_a_trigger(cache, tmp_path, monkeypatch):
    """A trigger renders the cached cycles (last:2) through the embedded runtime's python extract."""
    import insitu.runtime.embedded as runtime_mod
    from insitu.blueprint import uniform_domain

    monkeypatch.chdir(tmp_path)
    runtime_mod.reset_process_state()
    rt = runtime_mod.connect(prefer="embedded")
    rt.publish([uniform_domain(np.zeros((4, 4, 4), np.float32), field="f", cycle=20)])
    source = (f"import ascent_filters as af; af.render(field='f', cycles='last:2', cache={str(cache)!r}, "
              "output_dir='trig', width=64, height=48, camera={'azimuth': 40}, plot='pseudocolor')")
    rt.execute([{"action": "add_triggers", "triggers": {"t": {"params": {
        "condition": "cycle() >= 20",
        "actions": [{"action": "add_extracts", "extracts": {"r": {"type": "python", "params": {"source": source}}}}],
    }}}}])
    assert rt.info()["status"]["message"] == "completed"
    assert rt.info()["triggers"][0]["errors"] == []
    for c in (10, 20):
        img = png(tmp_path / "trig" / f"f_{c:06d}.png")
        assert img.shape == (48, 64, 3) and (img.sum(axis=2) > 20).mean() > 0.1
    # bad parameters: reported (naming the valid ones), nothing raised, the run goes on
    res = {}
    runtime_mod._NAMESPACE["res"] = res
    rt.execute([{"action": "add_extracts", "extracts": {"r": {"type": "python", "params": {
        "source": f"import ascent_filters as af; res['a'] = af.render(field='f', cycles=[3], cache={str(cache)!r})\n"
                  f"res['b'] = af.render(field='f', colour='red', cache={str(cache)!r})"}}}}])
    assert "cached cycles: 0..20" in res["a"]["errors"][0]
    assert "unknown parameter(s) ['colour']" in res["b"]["errors"][0] and "colormap" in res["b"]["errors"][0]
