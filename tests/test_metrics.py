"""inr.metrics: the native one-pass error (cpp/inr_native/metrics.cpp, kernel_metrics.h) against numpy's
definition, for every dtype pair, odd lengths, non-finite values and the layouts it hands back to numpy."""
import math

import numpy as np
import pytest

from inr import metrics

pytestmark = pytest.mark.skipif(metrics._error_stats is None, reason="the C++ extension is not built")


def _numpy(a, b):
    d = np.subtract(a, b, dtype=np.float64)
    return float((d * d).sum()), float(np.abs(d).max())


@pytest.mark.parametrize("n", [1, 7, 8, 9, 1001, 65539])
@pytest.mark.parametrize("da, db", [(np.float32, np.float32), (np.float64, np.float32), (np.float32, np.float64),
                                    (np.float64, np.float64)])
def test_native_error_stats_are_numpys(n, da, db):
    rng = np.random.default_rng(n)
    a = (rng.standard_normal(n) * 100).astype(da)
    b = (a + rng.standard_normal(n) * 1e-3).astype(db)
    total, top = metrics._error_stats(a, b)
    ref_total, ref_top = _numpy(a, b)
    assert total == pytest.approx(ref_total, rel=1e-12)
    assert top == ref_top  # a max has no rounding to differ by
    assert metrics.mse(a, b) == pytest.approx(ref_total / n, rel=1e-12)
    assert metrics.max_abs_error(a, b) == ref_top
    assert metrics._error_stats(b, a) == (total, top)  # a - b = -(b - a) exactly: the order does not matter


def test_non_finite_differences_give_numpys_answers():
    a = np.arange(1, 20, dtype=np.float32)
    b = np.zeros_like(a)
    a[11] = np.inf
    assert metrics.mse(a, b) == math.inf and metrics.max_abs_error(a, b) == math.inf
    a[13] = np.nan
    assert math.isnan(metrics.mse(a, b)) and math.isnan(metrics.max_abs_error(a, b))
    assert math.isnan(np.max(np.abs(np.subtract(a, b, dtype=np.float64))))  # what numpy says too


def test_layouts_the_native_pass_does_not_take_fall_back_to_numpy():
    rng = np.random.default_rng(3)
    grid = rng.standard_normal((9, 10, 11)).astype(np.float32)
    rec = grid + np.float32(0.01)
    strided = grid[:, ::2, :]  # not contiguous
    assert metrics._native_stats(strided, rec[:, ::2, :]) is None
    assert metrics.mse(strided, rec[:, ::2, :]) == pytest.approx(1e-4, rel=1e-3)
    assert metrics._native_stats(grid, rec[0]) is None  # broadcast: numpy's
    assert metrics.mse(grid, rec[0]) == pytest.approx(_numpy(grid, rec[0])[0] / grid.size, rel=1e-12)
    ints = np.arange(12).reshape(3, 4)
    assert metrics._native_stats(ints, ints + 1) is None and metrics.mse(ints, ints + 1) == 1.0
    assert math.isnan(metrics.mse(np.zeros(0, np.float32), np.zeros(0, np.float32)))
    assert metrics.max_abs_error(np.zeros(0, np.float32), np.zeros(0, np.float32)) == 0.0


def test_psnr_of_a_grid_is_the_definitions():
    rng = np.random.default_rng(4)
    grid = rng.random((20, 21, 22), dtype=np.float32) * 50
    rec = grid + rng.standard_normal(grid.shape).astype(np.float32) * 0.05
    d = grid.astype(np.float64) - rec
    want = 20 * math.log10(float(grid.max()) - float(grid.min())) - 10 * math.log10(float((d * d).mean()))
    assert metrics.psnr(grid, rec) == pytest.approx(want, abs=1e-9)
