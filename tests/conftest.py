"""Suite-wide set-up: subprocesses import ``support`` too, and the shared actions files as a fixture."""
import os
from pathlib import Path

import pytest

from support.mpi import SHARED, TESTS

# Scripts the tests start (tests/mpi/*.py, ``python -c`` snippets) import support.* like the tests do.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: the shared actions files are not available here")
    return SHARED
