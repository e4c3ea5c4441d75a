"""Ranks fit their own blocks independently under a real mpiexec."""
import pytest

from support.mpi import ROOT, run_mpi


@pytest.mark.mpi
@pytest.mark.parametrize("n", [2])
def test_each_rank_fits_its_block(n):
    proc = run_mpi(n, [str(ROOT / "tests/mpi/fit_blocks.py"), "native"], timeout=600)
    assert "OK" in proc.stdout
