"""The console script answers --version and --help."""
import subprocess
import sys
from pathlib import Path

import insitu


def insitu_cmd(*args):
    exe = Path(sys.executable).parent / "insitu"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)


def test_version_and_help():
    v = insitu_cmd("--version")
    assert v.returncode == 0 and insitu.__version__ in v.stdout
    h = insitu_cmd("--help")
    assert h.returncode == 0 and "usage: insitu" in h.stdout
