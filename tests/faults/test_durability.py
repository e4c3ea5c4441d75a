"""Durability: what a kill keeps (docs/cache_format.md, "Durability")."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from insitu.cache import TemporalCache
from support.cache_common import make_entry
from support.mpi import ROOT, mpiexec

WRITER = """
import os, signal, sys
from insitu.cache import TemporalCache
from support.cache_common import make_entry
cache = TemporalCache(sys.argv[1], memory_budget="64MB")
for d in range(3):
    cache.put("f", 1, d, *make_entry(d)[1:])
cache.flush_behind()           # cycle 1 goes to disk while "the simulation" goes on
cache.put("f", 2, 0, *make_entry(7)[1:])   # waits for cycle 1 to be on disk first
os.kill(os.getpid(), signal.SIGKILL)       # the cycle in flight (2) may be lost, nothing before it
"""


def test_flush_behind_then_sigkill_keeps_the_flushed_cycle(tmp_path):
    path = tmp_path / "c"
    proc = subprocess.run([sys.executable, "-c", WRITER, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with TemporalCache.open(path) as r:
        assert r.domains("f", 1) == [0, 1, 2]
        for d in range(3):
            assert r.get("f", 1, d) == make_entry(d)[1]
        assert r.verify() == []


def test_flush_behind_returns_before_the_disk_and_reads_wait_for_it(tmp_path):
    with TemporalCache(tmp_path / "c", memory_budget="64MB") as cache:
        cache.put("f", 1, 0, *make_entry(0)[1:])
        cache.flush_behind()
        assert cache.location("f", 1, 0) == "memory+disk"  # a read waits for the commit under way
        assert cache.stats()["pending"] == 0
        cache.flush_behind()  # nothing pending: no thread
        assert cache._behind is None or not cache._behind.is_alive()


def long_run(out: Path, segments: int) -> subprocess.Popen:
    """A 2-rank advection run of 400 steps, returned once rank 1 has committed ``segments`` segment files."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [mpiexec(), "-n", "2", sys.executable, "-m", "sims.advection", "--grid", "16", "--steps", "400",
           "--quiet", "--final-actions", "none", "--output", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while len(list((out / "run.cache").glob("r00001-*.h5"))) < segments:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no cycle reached the disk"
        time.sleep(0.1)
    return proc


@pytest.mark.mpi
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_run_with_its_cycles_on_disk_and_the_summary_written(tmp_path, sig):
    out = tmp_path / "run"
    proc = long_run(out, segments=1)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 128 + sig, (proc.returncode, stderr[-2000:])
    assert f"stopped by {signal.Signals(sig).name} after cycle" in stderr and "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    timings = json.loads((out / "timings.json").read_text())
    last = timings[-1]["cycle"]
    assert 1 <= last < 400
    with TemporalCache.open(out / "run.cache") as r:  # every cycle the run published is kept, on both ranks
        assert r.cycles("temperature") == list(range(1, last + 1))
        assert all(r.domains("temperature", c) == [0, 1] for c in range(1, last + 1))
        assert r.verify() == []
    assert summary["fields"]["temperature"]["cycles"] == last
    assert np.isfinite(summary["capacity"])


def rank_pids(marker: str) -> list[int]:
    """The python rank processes of a run (their command line holds ``marker``), not mpiexec's."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if proc.name.isdigit() and argv and argv[0].decode() == sys.executable and marker.encode() in b" ".join(argv):
            pids.append(int(proc.name))
    return sorted(pids)


@pytest.mark.mpi
def test_sigkill_of_one_rank_loses_at_most_the_cycle_in_flight(tmp_path):
    """The default durability ('cycle'): every cycle before the one in flight is on disk for every rank."""
    out = tmp_path / "run"
    proc = long_run(out, segments=4)
    with TemporalCache.open(out / "run.cache") as r:  # what is on disk just before the kill
        seen = max(r.cycles("temperature"))
    victim = rank_pids(str(out))[-1]
    os.kill(victim, signal.SIGKILL)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    with TemporalCache.open(out / "run.cache") as r:
        kept = r.cycles("temperature")
        assert r.verify() == []
        # every cycle before the one in flight, on both ranks: nothing was waiting in memory
        assert kept[: seen - 1] == list(range(1, seen)), (seen, kept)
        assert all(r.domains("temperature", c) == [0, 1] for c in range(1, seen))
