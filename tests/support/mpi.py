"""Paths of the checkout and real ``mpiexec`` runs (MPI tests never use a fake communicator)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
SHARED = ROOT.parent / "shared"


def mpiexec() -> str:
    """mpiexec next to this interpreter (pip's mpich in the venv), else on PATH."""
    here = Path(sys.executable).parent / "mpiexec"
    found = str(here) if here.exists() else shutil.which("mpiexec")
    if not found:
        pytest.fail("mpiexec not found: install an MPI (pip install mpich) - MPI tests must run for real")
    return found


def run_mpi(n: int, args: list[str], timeout: float = 600, cwd: Path | None = None, env: dict | None = None):
    """Run ``python args...`` under ``mpiexec -n n``; fail the test with its output on error."""
    e = dict(os.environ)
    e.setdefault("OMP_NUM_THREADS", "1")
    e.update(env or {})
    cmd = [mpiexec(), "-n", str(n), sys.executable, *args]
    proc = subprocess.run(cmd, cwd=cwd or ROOT, env=e, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}")
    return proc
