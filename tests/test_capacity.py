"""One capacity figure (raw float32 bytes / every byte of the cache folder): the run summary, summary.json,
``insitu info`` (text and --json) and the viewer all give the one :func:`insitu.cache.summary.capacity` computes."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from insitu.cache import TemporalCache
from insitu.cache.summary import capacity, folder_bytes

ROOT = Path(__file__).resolve().parents[1]
ACTIONS = """
-
  action: "add_extracts"
  extracts:
    inr:
      type: "python"
      params:
        source: "import ascent_filters as af; af.compress(fields=['temperature'], ratio=50, max_steps=60, cache='run.cache')"
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A real small run of the advection proxy (one process, embedded runtime): its output folder and stdout."""
    tmp = tmp_path_factory.mktemp("capacity")
    (tmp / "actions.yaml").write_text(ACTIONS)
    out = tmp / "run"
    p = subprocess.run([sys.executable, "-m", "sims.advection", "--grid", "16", "--steps", "4", "--runtime",
                        "embedded", "--actions", str(tmp / "actions.yaml"), "--final-actions", "none",
                        "--output", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={"OMP_NUM_THREADS": "1", "PATH": str(Path(sys.executable).parent)})
    assert p.returncode == 0, p.stderr[-3000:]
    return out, p


def insitu(*args: str) -> str:
    p = subprocess.run([str(Path(sys.executable).parent / "insitu"), *args], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_summary_info_and_the_function_agree(run):
    out, proc = run
    cache = out / "run.cache"
    with TemporalCache.open(cache) as reader:
        cap = capacity(reader)
        raw = sum(reader.meta(f, c, d).raw_bytes for f in reader.fields() for c in reader.cycles(f)
                  for d in reader.domains(f, c))
    # the definition: raw float32 bytes of every entry / every byte in the folder (marker, journal, locks too)
    every_file = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())
    assert cap.raw_bytes == raw == 4 * 16 ** 3 * 4 and cap.folder_bytes == every_file == folder_bytes(cache)
    assert any(not p.name.endswith(".h5") for p in cache.iterdir())  # not only segments: they count too
    assert cap.factor == raw / every_file

    summary = json.loads((out / "summary.json").read_text())
    info = json.loads(insitu("info", str(cache), "--json"))
    assert summary["capacity"] == info["capacity"] == cap.factor
    assert summary["cache_bytes"] == info["folder_bytes"] == every_file

    # printed the same way by the run's summary and insitu info
    line = cap.text()
    assert f"capacity factor {cap.factor:.1f}x" in line
    assert line in proc.stdout.splitlines()
    assert line in insitu("info", str(cache)).splitlines()


def test_the_viewer_shows_the_same_figure(run):
    from insitu.viewer.data import CacheView

    cache = run[0] / "run.cache"
    view = CacheView(cache)
    try:
        with TemporalCache.open(cache) as reader:
            assert view.capacity() == capacity(reader)
    finally:
        view.close()
