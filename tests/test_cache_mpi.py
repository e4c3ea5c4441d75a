"""Written by 4 ranks under mpiexec, replayed with 1 and with 3 processes."""
from __future__ import annotations

from pathlib import Path

import pytest

from support.mpi import run_mpi

MPI_DIR = Path(__file__).parent / "mpi"


@pytest.mark.slow
@pytest.mark.mpi
def test_written_by_4_ranks_read_by_1_and_3(tmp_path):
    path = tmp_path / "c"
    out = run_mpi(4, [str(MPI_DIR / "cache_write.py"), str(path)], timeout=300)
    assert "wrote 8 domains per cycle from 4 ranks" in out.stdout
    assert sorted(p.name for p in path.glob("*.lock")) == [f"r0000{r}.lock" for r in range(4)]
    for n in (1, 3):
        out = run_mpi(n, [str(MPI_DIR / "cache_read.py"), str(path)], timeout=300)
        assert f"replayed on {n} processes: OK" in out.stdout
