"""Ranks fit their own blocks independently under a real mpiexec."""
import pytest

from support.mpi import ROOT, run_mpi


@pytest.mark.mpi
@pytest.mark.parametrize("n", [2])
def test_each_rank_fits_its_block(n):
    proc = run_mpi(n, [str(ROOT / "tests/mpi/fit_blocks.py"), "native"], timeout=600)
    assert "OK" in proc.stdout


@pytest.mark.mpi
@pytest.mark.parametrize("n", [2, 4])
def test_a_field_range_psnr_is_shared_by_every_rank(n, tmp_path):
    proc = run_mpi(n, [str(ROOT / "tests/mpi/field_range.py"), str(tmp_path)], timeout=600)
    assert "OK" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.mpi
@pytest.mark.parametrize("n", [2])
def test_a_block_far_under_its_neighbours_on_other_ranks_is_fitted_again(n, tmp_path):
    proc = run_mpi(n, [str(ROOT / "tests/mpi/low_block.py"), str(tmp_path)], timeout=600)
    assert "OK" in proc.stdout and "1 with a larger model" in proc.stdout, proc.stdout + proc.stderr
