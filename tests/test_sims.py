"""The proxy simulations: decomposition and halo exchange, physics, decomposition independence, the driver."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, run_mpi

SIMS = ["gray_scott", "advection"]


@pytest.mark.parametrize("n,shape,periodic,ghosts", [
    (1, (5, 6, 7), 1, 1), (2, (9, 6, 7), 1, 1), (4, (7, 9, 10), 1, 2), (4, (10, 7, 9), 0, 1), (3, (6, 8, 5), 0, 1),
])
def test_decomposition_and_halo_exchange(n, shape, periodic, ghosts):
    proc = run_mpi(n, ["tests/mpi/sim_halo.py", *map(str, shape), str(periodic), str(ghosts)], timeout=120)
    assert "OK" in proc.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each proxy run on 1, 2 and 4 ranks (small grids, uneven blocks), gathered on rank 0."""
    tmp = tmp_path_factory.mktemp("sims")
    opts = {"gray_scott": ["--grid", "14", "13", "15", "--steps", "3", "--substeps", "5"],
            "advection": ["--grid", "24", "23", "25", "--steps", "6", "--width", "0.2", "--substeps", "5"]}
    out = {}
    for name in SIMS:
        for n in (1, 2, 4):
            path = tmp / f"{name}_{n}.npz"
            run_mpi(n, ["tests/mpi/sim_run.py", name, str(path), *opts[name]], timeout=300)
            out[(name, n)] = dict(np.load(path))
    return out


@pytest.mark.parametrize("name", SIMS)
def test_same_global_field_on_any_rank_count(runs, name):
    one = runs[(name, 1)]
    for n in (2, 4):
        other = runs[(name, n)]
        for key in one:
            assert np.array_equal(one[key], other[key]), (name, n, key)  # the same arithmetic: bit for bit


def test_advection_matches_the_analytic_solution_and_conserves_heat(runs):
    from sims import advection
    from sims.driver import parse

    res = runs[("advection", 1)]
    args = parse(advection.PROXY, ["--grid", "24", "23", "25", "--width", "0.2", "--actions", "none"])
    shape = (24, 23, 25)
    idx = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    t = float(res["time"])
    exact = advection.exact(args, shape, t, idx)
    initial = advection.exact(args, shape, 0.0, idx)
    assert t > 1.0
    err = np.abs(res["temperature"] - exact).max() / exact.max()
    drift = np.abs(initial - exact).max() / exact.max()
    assert err < 0.03 and drift > 10 * err  # the spots moved; the scheme follows them closely
    assert res["temperature"].sum() == pytest.approx(initial.sum(), rel=1e-12)  # conservative fluxes


def test_gray_scott_homogeneous_state_stays_and_patterns_grow(tmp_path):
    """u=1, v=0 is a fixed point (no seeds); with seeds, v spreads but stays within [0, 1]."""
    path = tmp_path / "gs.npz"
    run_mpi(2, ["tests/mpi/sim_run.py", "gray_scott", str(path), "--grid", "12", "--steps", "2", "--seeds", "0"])
    res = np.load(path)
    assert (res["u"] == 1.0).all() and (res["v"] == 0.0).all()
    run_mpi(2, ["tests/mpi/sim_run.py", "gray_scott", str(path), "--grid", "20", "--steps", "6"])
    res = np.load(path)
    assert 0 <= res["v"].min() and res["v"].max() <= 1 and 0 < res["u"].min() and res["u"].max() <= 1 + 1e-12
    assert (res["v"] > 0.01).mean() > 0.01


def sim(*args, cwd=None, n=None):
    cmd = [sys.executable, "-m", "sims.advection", *args]
    if n:
        from conftest import mpiexec

        cmd = [mpiexec(), "-n", str(n), *cmd]
    return subprocess.run(cmd, cwd=cwd or ROOT, capture_output=True, text=True, timeout=600,
                          env={"OMP_NUM_THREADS": "1", "PATH": str(Path(sys.executable).parent)})


def test_driver_bad_options_exit_2_with_a_clear_message(tmp_path):
    p = sim("--bogus", "1")
    assert p.returncode == 2 and "unrecognized arguments: --bogus" in p.stderr
    p = sim("--actions", str(tmp_path / "missing.yaml"), "--output", str(tmp_path / "o"))
    assert p.returncode == 2 and "missing.yaml' does not exist" in p.stderr and "Traceback" not in p.stderr
    p = sim("--grid", "8", "8")
    assert p.returncode == 2 and "--grid takes N or NZ NY NX" in p.stderr


def test_run_with_actions_caches_times_and_survives_a_broken_action(tmp_path):
    actions = tmp_path / "a.yaml"
    actions.write_text("""
-
  action: "add_extracts"
  extracts:
    inr:
      type: "python"
      params:
        source: "import ascent_filters as af; af.compress(fields=['temperature'], ratio=20, max_steps=60, cache='run.cache')"
    broken:
      type: "python"
      params:
        source: "import ascent_filters as af; af.no_such_filter()"
""")
    out = tmp_path / "run"
    p = sim("--grid", "20", "--steps", "4", "--publish-every", "2", "--actions", str(actions),
            "--final-actions", "none", "--output", str(out), n=2)
    assert p.returncode == 0, p.stderr
    assert "no_such_filter" in p.stderr  # reported, and the simulation went on
    from insitu.cache import TemporalCache

    with TemporalCache.open(out / "run.cache") as reader:
        assert reader.cycles("temperature") == [2, 4] and reader.domains("temperature", 4) == [0, 1]
        meta = reader.meta("temperature", 4, 1)
        assert sum(reader.meta("temperature", 4, d).dims[0] * reader.meta("temperature", 4, d).dims[1]
                   * reader.meta("temperature", 4, d).dims[2] for d in (0, 1)) == 20 ** 3
        assert meta.time is not None and meta.time > 0
    timings = json.loads((out / "timings.json").read_text())
    assert [t["cycle"] for t in timings] == [2, 4]
    assert all(t["sim_s"] > 0 and t["insitu_s"] > 0 and t["fit_s"] > 0 for t in timings)
    assert "capacity factor" in p.stdout and "insitu replay" in p.stdout


def test_end_to_end_default_actions_then_replay_on_another_process_count(tmp_path):
    """advection on 2 ranks with its shipped actions -> cache, scene PNG, Cinema -> replay on 3 ranks."""
    from PIL import Image

    from conftest import mpiexec

    out = tmp_path / "run"
    p = sim("--grid", "28", "--steps", "10", "--output", str(out), n=2)
    assert p.returncode == 0, p.stderr[-3000:]
    scene = np.asarray(Image.open(out / "temperature_0010.png").convert("RGB")).astype(int)
    assert (scene.sum(axis=2) > 30).mean() > 0.01  # hot spots drawn on black
    with open(out / "advection.cdb" / "data.csv") as f:
        assert f.readline().strip() == "phi,theta,time,FILE" and len(f.readlines()) == 16
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fields"]["temperature"]["cycles"] == 10 and summary["capacity"] > 5
    insitu = str(Path(sys.executable).parent / "insitu")
    frames = {}
    for n in (1, 3):
        cmd = [mpiexec(), "-n", str(n), insitu, "replay", str(out / "run.cache"), "--cycles", "last:2",
               "--size", "96x96", "--camera", "azimuth=30,elevation=25", "-o", str(tmp_path / f"f{n}")]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                           env={"OMP_NUM_THREADS": "1", "PATH": str(Path(sys.executable).parent)})
        assert r.returncode == 0, r.stderr
        frames[n] = [np.asarray(Image.open(tmp_path / f"f{n}" / f"temperature_{c:06d}.png")).astype(int)
                     for c in (9, 10)]
    for a, b in zip(frames[1], frames[3]):
        assert (a.sum(axis=2) > 30).mean() > 0.01 and np.abs(a - b).max() <= 1
    assert np.abs(frames[1][0] - frames[1][1]).mean() > 0.01  # the spots moved between cycles 9 and 10
