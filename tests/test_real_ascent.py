"""Real Ascent: the filters, the proxies and every shared actions file, side by side with the embedded runtime.

Runs only where LLNL Ascent's Python module imports (a source build: Conduit 0.9.2 + Ascent 0.9.3 with Python
and MPI); everywhere else these tests skip and say why, and the embedded runtime and the Ascent-like harness
cover the contract.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from insitu.blueprint import uniform_domain
from insitu.runtime.ascent_bridge import ascent_import_error
from sims.analytic import gaussians
from support.mpi import ROOT, TESTS, mpiexec

ERR = ascent_import_error()
pytestmark = pytest.mark.skipif(ERR is not None, reason=f"real Ascent is not importable here ({ERR}); the embedded "
                                                        "runtime and the Ascent-like harness cover the contract")

#: a minimal Ascent build (no VTK-h/VTK-m) cannot do these; the embedded runtime can: not a disagreement
BUILD_LIMITS = ("not compiled with rendering support", "Unknown filter", "jupyter", "hdf5", "HDF5")
#: the embedded runtime has no pipelines (Ascent's transforms need VTK-h): it refuses them when it reads the actions,
#: where Ascent may get further; not a disagreement either
EMBEDDED_LIMITS = ("unsupported action 'add_pipelines'",)
#: files that never return in real Ascent (the jupyter extract waits for a client forever)
NEVER_RETURN = ("tutorial_cloverleaf_jupyter_extract_ascent_actions.yaml",)


def test_compress_inside_real_ascent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from insitu.cache import TemporalCache
    from insitu.filters import compress as compression
    from insitu.runtime import connect

    rt = connect(prefer="ascent")
    acts = [{"action": "add_extracts", "extracts": {"inr": {"type": "python", "params": {
        "source": "import ascent_filters as af; af.compress(fields=['e'], ratio=4, max_steps=200, cache='run.cache')"}}}}]
    for c in range(3):
        rt.publish([uniform_domain(gaussians((12, 12, 12), shift=0.01 * c), field="e", cycle=c)])
        rt.execute(acts)
    rt.close()
    compression.close_all()
    assert TemporalCache.open("run.cache").cycles("e") == [0, 1, 2]


def run_proxy(name: str, runtime: str, out: Path) -> subprocess.CompletedProcess:
    cmd = [mpiexec(), "-n", "2", sys.executable, "-m", f"sims.{name}", "--grid", "24", "--steps", "10", "--quiet",
           "--runtime", runtime, "--output", str(out)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))


@pytest.mark.mpi
@pytest.mark.parametrize("name", ["advection", "gray_scott"])
def test_the_proxies_shipped_actions_give_the_same_run_under_real_ascent(name, tmp_path):
    """The README's main job under real Ascent: every cycle of every domain cached, the same trigger firings and
    the same pictures (af.render draws them, so a build without rendering support makes them too)."""
    from insitu.cache import TemporalCache

    runs = {rt: run_proxy(name, rt, tmp_path / rt) for rt in ("ascent", "embedded")}
    for rt, p in runs.items():
        assert p.returncode == 0, f"{rt}:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}"
    got = {}
    for rt in runs:
        with TemporalCache.open(tmp_path / rt / "run.cache") as r:
            got[rt] = {f: {c: r.domains(f, c) for c in r.cycles(f)} for f in r.fields()}
        summary = json.loads((tmp_path / rt / "summary.json").read_text())
        got[rt]["triggers"] = sorted((t["trigger"], t["cycle"]) for t in summary["triggers"])
        got[rt]["images"] = (sorted(summary["images"]), summary["cinema"])  # pictures by the project's renderer
    assert got["ascent"] == got["embedded"]
    assert all(len(cycles) == 10 and all(d == [0, 1] for d in cycles.values())
               for f, cycles in got["ascent"].items() if f not in ("triggers", "images"))
    assert got["ascent"]["images"][0] and got["ascent"]["images"][1]


def outcome(runtime: str, path: Path, cwd: Path) -> dict:
    if runtime == "ascent" and path.name in NEVER_RETURN:
        return {"steps": [{"status": "skipped", "error": "never returns in real Ascent"}], "triggers": []}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    p = subprocess.run([sys.executable, "-m", "support.actions_outcome", runtime, str(path)], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=120)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("OUTCOME ")]
    if not lines:
        return {"steps": [{"status": f"crashed ({p.returncode})", "error": (p.stderr.strip().splitlines() or [""])[-1]}],
                "triggers": []}
    return json.loads(lines[-1][len("OUTCOME "):])


def test_every_shared_actions_file_in_both_runtimes(shared_dir, tmp_path, capsys):
    """Each file at two cycles, each runtime in a fresh process: same status per cycle, same trigger firings,
    except where the minimal Ascent build lacks a feature. Prints the table."""
    import shutil

    rows, disagree = [], []
    for path in sorted((shared_dir / "ascent_actions").glob("*.*")):
        if path.suffix not in (".yaml", ".json"):
            continue
        res = {}
        for rt in ("ascent", "embedded"):
            work = tmp_path / rt / path.name.replace(".", "_")
            shutil.copytree(shared_dir / "ascent_actions", work)
            res[rt] = outcome(rt, work / path.name, work)
        a, e = res["ascent"], res["embedded"]
        sa = " / ".join(s["status"] for s in a["steps"])
        se = " / ".join(s["status"] for s in e["steps"])
        why_a = next((s["error"] for s in a["steps"] if s["error"]), "")
        why_e = next((s["error"] for s in e["steps"] if s["error"]), "")
        same = sa == se and a["triggers"] == e["triggers"]
        limited = any(w in why_a for w in BUILD_LIMITS) or "skipped" in sa or any(w in why_e for w in EMBEDDED_LIMITS)
        rows.append(f"| {path.name} | {sa} | {se} | {'same' if same else ('build' if limited else 'DIFFERS')} | "
                    f"{why_a[:70]} | {why_e[:70]} |")
        if not same and not limited:
            disagree.append(f"{path.name}: ascent {sa} ({why_a}) vs embedded {se} ({why_e}); triggers "
                            f"{a['triggers']} vs {e['triggers']}")
    with capsys.disabled():
        print("\n| file | real Ascent | embedded | verdict | Ascent's error | embedded's error |\n|---|---|---|---|---|---|")
        print("\n".join(rows))
    assert len(rows) >= 30
    assert not disagree, "outcomes differ:\n" + "\n".join(disagree)
