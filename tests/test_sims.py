"""The proxy simulations: decomposition and halo exchange, physics, decomposition independence, the driver."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from support.mpi import ROOT, run_mpi

SIMS = ["gray_scott", "advection"]


@pytest.mark.parametrize("n,shape,periodic,ghosts", [
    (1, (5, 6, 7), "111", 1), (1, (5, 6, 7), "010", 2), (2, (9, 6, 7), "111", 1), (4, (7, 9, 10), "111", 2),
    (4, (10, 7, 9), "000", 1), (4, (9, 10, 7), "110", 1), (3, (6, 8, 5), "001", 1),
])
@pytest.mark.mpi
def test_decomposition_and_halo_exchange(n, shape, periodic, ghosts):
    """Blocks cover the grid once, sizes differ by at most one; every ghost holds its neighbour's value,
    edges and corners included; outer ghosts of non-periodic axes are left alone; the published domain."""
    proc = run_mpi(n, ["tests/mpi/sim_halo.py", *map(str, shape), periodic, str(ghosts)], timeout=120)
    assert "OK" in proc.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each proxy run on 1, 2 and 4 ranks (small grids, uneven blocks), gathered on rank 0."""
    tmp = tmp_path_factory.mktemp("sims")
    opts = {"gray_scott": ["--grid", "14", "13", "15", "--steps", "3", "--step-time", "4"],
            "advection": ["--grid", "24", "23", "25", "--steps", "6", "--width", "0.2"]}
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
    assert all(not np.array_equal(one[f"initial_{k}"], one[k]) for k in one if f"initial_{k}" in one)  # it evolved
    for n in (2, 4):
        other = runs[(name, n)]
        assert one.keys() == other.keys()
        for key in one:
            assert np.array_equal(one[key], other[key]), (name, n, key)  # the same arithmetic: bit for bit


def advection_args(*opts):
    from sims import advection
    from sims.driver import parse

    return parse(advection.PROXY, [*opts, "--actions", "none", "--final-actions", "none", "--quiet"])


def test_advection_matches_the_analytic_solution_and_conserves_heat(runs):
    from sims import advection

    res = runs[("advection", 4)]
    shape = res["temperature"].shape
    args = advection_args("--grid", *map(str, shape), "--width", "0.2")
    idx = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    t = float(res["time"])
    exact = advection.exact(args, shape, t, idx)
    assert t == pytest.approx(6 * args.step_time) and np.array_equal(res["initial_temperature"],
                                                                     advection.exact(args, shape, 0.0, idx))
    err = np.abs(res["temperature"] - exact).max() / exact.max()
    drift = np.abs(res["initial_temperature"] - exact).max() / exact.max()
    assert err < 0.02 and drift > 20 * err  # the spots moved across blocks; the scheme follows them closely
    total = res["initial_temperature"].sum()
    assert abs(res["temperature"].sum() - total) < 1e-12 * total  # conservative fluxes: heat kept to round-off


def test_advection_converges_at_second_order():
    """The same physical problem on 16^3 and 32^3 (velocity and diffusion rescaled to cells): error / 4."""
    from mpi4py import MPI

    from sims import advection
    from sims.driver import run

    errors = []
    for n in (16, 32):
        r = n / 16
        args = advection_args("--grid", str(n), "--steps", "4", "--width", "0.15", "--diffusion", str(0.15 * r * r),
                              "--velocity", *(str(v * r) for v in (0.15, 0.35, 0.6)))
        res = run(advection.PROXY, args, MPI.COMM_SELF)
        idx = np.meshgrid(*[np.arange(n)] * 3, indexing="ij")
        exact = advection.exact(args, (n,) * 3, res.state["time"], idx)
        errors.append(np.abs(res.gather()["temperature"] - exact).max() / exact.max())
    order = np.log2(errors[0] / errors[1])
    assert 1.8 < order < 2.2, errors


@pytest.mark.parametrize("velocity,diffusion", [((0.15, 0.35, 0.6), 0.0), ((0.15, -0.35, 0.6), 0.15),
                                                ((2.0, 1.0, -3.0), 0.01), ((0.1, 0.0, 0.2), 2.0)])
def test_advection_stable_dt_amplifies_no_mode(velocity, diffusion):
    """From noise (every mode), updates of stable_dt (cfl 1) never grow the L2 norm. Without diffusion
    the bound is sharp (SSP-RK3 reaches sqrt(3) up the imaginary axis): 20 % more and a mode blows up."""
    from mpi4py import MPI

    from sims import advection
    from sims.decomposition import CartDecomposition

    args = advection_args("--grid", "16", "--cfl", "1", "--diffusion", str(diffusion),
                          "--velocity", *map(str, velocity))
    dec = CartDecomposition(MPI.COMM_SELF, (16, 16, 16))

    def norms(dt):
        state = {"c": dec.allocate(), "time": 0.0}
        dec.owned(state["c"])[...] = np.random.default_rng(0).standard_normal(dec.local_shape)
        dec.exchange(state["c"])
        out = [np.linalg.norm(dec.owned(state["c"]))]
        for _ in range(150):
            advection.update(dec, state, args, dt)
            out.append(np.linalg.norm(dec.owned(state["c"])))
        return np.array(out)

    stable = norms(advection.stable_dt(args))
    assert np.diff(stable).max() <= 1e-12 * stable[0]
    if diffusion == 0:
        assert norms(1.2 * advection.stable_dt(args))[-1] > 10 * stable[0]


@pytest.mark.mpi
def test_gray_scott_fixed_point_bounds_and_mass_balance(tmp_path):
    """u=1, v=0 is a fixed point (no seeds); the update keeps u in [0, 1] and v >= 0; with F = k = 0 the
    reaction only turns u into v, so sum(u + v) is conserved to round-off while v grows (on 4 ranks)."""
    path = tmp_path / "gs.npz"
    run_mpi(2, ["tests/mpi/sim_run.py", "gray_scott", str(path), "--grid", "12", "--steps", "2", "--seeds", "0"])
    res = np.load(path)
    assert (res["u"] == 1.0).all() and (res["v"] == 0.0).all()
    run_mpi(4, ["tests/mpi/sim_run.py", "gray_scott", str(path), "--grid", "20", "--steps", "6"])
    res = np.load(path)
    assert 0 <= res["v"].min() and res["v"].max() <= 1 and 0 <= res["u"].min() and res["u"].max() <= 1
    grown = (res["v"] > 0.01).mean()
    assert grown > 1.5 * (res["initial_v"] > 0.01).mean()  # the spots spread
    run_mpi(4, ["tests/mpi/sim_run.py", "gray_scott", str(path), "--grid", "18", "--steps", "4", "--feed", "0",
                "--kill", "0"])
    res = np.load(path)
    before = res["initial_u"].sum() + res["initial_v"].sum()
    assert abs(res["u"].sum() + res["v"].sum() - before) < 1e-12 * before
    assert res["v"].sum() > 1.5 * res["initial_v"].sum()


def sim(*args, cwd=None, n=None, proxy="advection"):
    cmd = [sys.executable, "-m", f"sims.{proxy}", *args]
    if n:
        from support.mpi import mpiexec

        cmd = [mpiexec(), "-n", str(n), *cmd]
    return subprocess.run(cmd, cwd=cwd or ROOT, capture_output=True, text=True, timeout=600,
                          env={"OMP_NUM_THREADS": "1", "PATH": str(Path(sys.executable).parent)})


def one_line_error(p, *words):
    """Exit 2, every word in stderr's last line, no traceback."""
    last = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
    return p.returncode == 2 and all(w in last for w in words) and "Traceback" not in p.stderr


def test_driver_bad_options_exit_2_with_a_clear_message(tmp_path):
    p = sim("--bogus", "1")
    assert one_line_error(p, "unrecognized arguments: --bogus")
    p = sim("--actions", str(tmp_path / "missing.yaml"), "--output", str(tmp_path / "o"))
    assert one_line_error(p, "--actions", "missing.yaml' does not exist")
    assert not (tmp_path / "o").exists()  # checked before anything starts
    p = sim("--grid", "8", "8")
    assert one_line_error(p, "--grid takes N or NZ NY NX")
    p = sim("--ghosts", "0", proxy="gray_scott")
    assert one_line_error(p, "--ghosts must be at least 1")
    p = sim("--cfl", "1.5")
    assert one_line_error(p, "--cfl must be in (0, 1]")
    p = sim("--grid", "4", "--ghosts", "3", "--actions", "none", "--final-actions", "none", "--output",
            str(tmp_path / "o"), n=2)
    assert one_line_error(p, "ghosts=3", "smallest block size (2)")
    from insitu.runtime.ascent_bridge import ascent_import_error

    if ascent_import_error() is not None:  # where Ascent imports, --runtime ascent simply runs
        p = sim("--grid", "8", "--steps", "1", "--runtime", "ascent", "--output", str(tmp_path / "o"), n=2)
        assert one_line_error(p, "--runtime ascent", "Ascent cannot be used here")


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
    # one line (per rank, printed once) listing the filters; the simulation went on
    assert "af.no_such_filter: no such filter; the filters are ['compress', 'render', 'export']" in p.stderr
    assert "Traceback" not in p.stderr and "AttributeError" not in p.stderr
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
    # the summary counts the errors per action: 2 ranks x 2 cycles
    assert "errors: 4 in 2 of 2 cycles" in p.stdout and "af.no_such_filter: 4x in cycles 2, 4" in p.stdout


@pytest.mark.mpi
def test_a_run_that_compresses_nothing_says_so_and_exits_1(tmp_path):
    actions = tmp_path / "a.yaml"
    actions.write_text("""
-
  action: "add_extracts"
  extracts:
    inr:
      type: "python"
      params:
        source: "import ascent_filters as af; af.compress(fields=['nope'], ratio=20, max_steps=20)"
""")
    common = ["--grid", "12", "--steps", "3", "--actions", str(actions), "--final-actions", "none", "--quiet"]
    p = sim(*common, "--output", str(tmp_path / "go_on"), n=2)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "the run compressed nothing (3 cycles published): 6 error(s) reported" in p.stderr
    assert "errors: 6 in 3 of 3 cycles" in p.stdout
    p = sim(*common, "--on-error", "stop", "--output", str(tmp_path / "stop"), n=2)
    assert p.returncode == 1 and "stopped at cycle 1 (--on-error stop)" in p.stderr and "'nope'" in p.stderr
    timings = json.loads((tmp_path / "stop" / "timings.json").read_text())
    assert [t["cycle"] for t in timings] == [1]  # the run ended there


@pytest.mark.slow
@pytest.mark.mpi
def test_end_to_end_default_actions_then_replay_on_another_process_count(tmp_path):
    """advection on 2 ranks with its shipped actions -> cache, scene PNG, Cinema -> replay on 3 ranks."""
    from PIL import Image

    from insitu.render.annotate import layout
    from support.mpi import mpiexec

    out = tmp_path / "run"
    p = sim("--grid", "28", "--steps", "10", "--output", str(out), n=2)
    assert p.returncode == 0, p.stderr[-3000:]
    scene = np.asarray(Image.open(out / "temperature_0010.png").convert("RGB")).astype(int)
    left_of_legend = scene[:, : layout(scene.shape[1], scene.shape[0], 1).labels[0][0]]
    assert (np.ptp(left_of_legend, axis=2) > 30).mean() > 0.01  # coloured hot spots (the outline and text are grey)
    with open(out / "advection.cdb" / "data.csv") as f:
        assert f.readline().strip() == "phi,theta,time,FILE" and len(f.readlines()) == 16
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fields"]["temperature"]["cycles"] == 10 and summary["capacity"] > 5
    insitu = str(Path(sys.executable).parent / "insitu")
    frames = {}
    for n in (1, 3):
        cmd = [mpiexec(), "-n", str(n), insitu, "replay", str(out / "run.cache"), "--cycles", "last:2",
               "--size", "96x96", "--camera", "azimuth=30,elevation=25", "-o", str(tmp_path / f"f{n}"),
               "--no-annotations"]  # the bare pictures: only the data differs between cycles
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                           env={"OMP_NUM_THREADS": "1", "PATH": str(Path(sys.executable).parent)})
        assert r.returncode == 0, r.stderr
        frames[n] = [np.asarray(Image.open(tmp_path / f"f{n}" / f"temperature_{c:06d}.png")).astype(int)
                     for c in (9, 10)]
    for a, b in zip(frames[1], frames[3]):
        assert (a.sum(axis=2) > 30).mean() > 0.01 and np.abs(a - b).max() <= 1
    assert np.abs(frames[1][0] - frames[1][1]).mean() > 0.01  # the spots moved between cycles 9 and 10


@pytest.mark.mpi
def test_executes_that_do_nothing_after_a_failure_are_reported(tmp_path):
    """Ascent's trap, reproduced by the embedded runtime: after an execute fails while running, the same actions
    do nothing at every later cycle and still report success. The run says so and exits 1."""
    actions = tmp_path / "a.yaml"
    actions.write_text("""
-
  action: "add_extracts"
  extracts:
    a_boom:
      type: "python"
      params:
        source: "assert ascent_data().child(0)['state/cycle'] != 2, 'boom at cycle 2'"
    inr:
      type: "python"
      params:
        source: "import ascent_filters as af; af.compress(fields=['temperature'], ratio=20, max_steps=20)"
""")
    p = sim("--grid", "12", "--steps", "4", "--actions", str(actions), "--final-actions", "none", "--quiet",
            "--runtime", "embedded", "--output", str(tmp_path / "o"), n=2)
    assert p.returncode == 1 and "Traceback" not in p.stderr.split("boom")[0][-200:]
    assert "3 execute(s) ran no filter (cycles [2, 3, 4])" in p.stderr  # 2 failed, 3 and 4 did nothing
    assert "execute: ran no af.* filter this cycle although earlier cycles did" in p.stdout
    from insitu.cache import TemporalCache

    with TemporalCache.open(tmp_path / "o" / "run.cache") as r:
        assert r.cycles("temperature") == [1]
