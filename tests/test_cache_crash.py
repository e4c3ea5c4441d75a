"""Crash safety: a writer SIGKILLed at random moments never loses a committed entry nor exposes a torn one."""
from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from insitu.cache import TemporalCache
from insitu.cli.command import main as cli_main
from support.cache_common import blob

WRITER = Path(__file__).parent / "mpi" / "cache_crash_writer.py"
KILLS = 18


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_committed(tmp_path, capsys):
    path = tmp_path / "c"
    rng = random.Random(1234)
    committed: list[int] = []
    torn_windows = 0
    for i in range(KILLS):
        first = 1000 * (i + 1)
        proc = subprocess.Popen([sys.executable, str(WRITER), str(path), str(first)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.35, 1.0))  # the interpreter starts in ~0.3 s; kills land before, during, after puts
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, f"writer ended on its own ({proc.returncode}):\n{err}"
        assert "Error" not in err, err
        done = [int(line.split()[1]) for line in out.splitlines() if line.startswith("committed ")]
        committed += done
        torn_windows += any(p.name.startswith(".tmp-") for p in path.iterdir()) if path.exists() else 0
        if not path.exists():  # killed before it created the cache (a slow start on a loaded machine)
            assert done == []
            continue
        # after every kill: each committed entry is there, bit for bit, and everything readable verifies
        with TemporalCache.open(path) as r:
            for c in done:
                for d in range(3):
                    assert r.get("energy", c, d) == blob(c, d)
                if c % 2 == 0:
                    assert r.get("pressure", c, 0) == blob(c, 99)
            assert r.verify() == []
            assert r.bad_segments == []
    assert len(committed) > KILLS, f"too few commits ({len(committed)}) to test anything"
    capsys.readouterr()
    assert cli_main(["verify", str(path)]) == 0
    assert "every checksum matches" in capsys.readouterr().out
    # the next writer cleans the temp files a killed one left, and appends
    with TemporalCache(path) as w:
        assert w.cycles("energy")[-1] >= max(committed)
    assert not any(p.name.startswith(".tmp-") for p in path.iterdir())
    print(f"{len(committed)} committed cycles over {KILLS} kills, {torn_windows} kills left a temp file")
