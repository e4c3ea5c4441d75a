"""inr.fit's training schedule: the closed-form output layer and the learning-rate warm-up."""
import numpy as np
import pytest

import inr
from inr.fit import fit_options, solve_output_layer, _plan
from inr.layout import split
from sims.analytic import sphere_front


def _probe_mse(plan, params, stride):
    p, rec = plan.measure(params, stride)
    owned = plan.owned_vals[::stride, ::stride, ::stride]
    return float(np.mean((rec.astype(np.float64) - owned) ** 2))


@pytest.mark.parametrize("stride", [1, 2])
def test_the_solved_output_layer_fits_the_samples_at_least_as_well_and_changes_only_that_layer(stride):
    values = sphere_front((16, 16, 16))
    opts = fit_options(values, ghost_mask=None, association="vertex", config=None, ratio=20.0, target_psnr=None,
                       max_steps=50, time_budget_s=None, init=None, backend="native", device="cpu", seed=0,
                       batch_size=None, learning_rate=None, loss="l2", boundary_weight=1.0, threads=1,
                       param_bits=16, progress=None, max_abs_error=None, delta_base=None)
    plan = _plan(opts, 0.0)
    trainer = plan.backend.trainer(plan.problem, plan.params0, 0)
    trainer.step(30, 1e-2)
    params = trainer.params()
    solved = solve_output_layer(plan, params, stride)
    assert _probe_mse(plan, solved, stride) <= _probe_mse(plan, params, stride) * (1 + 1e-4)
    before, after = split(params, plan.config.encoding, plan.config.network), split(solved, plan.config.encoding,
                                                                                    plan.config.network)
    assert np.array_equal(before[1], after[1])  # the tables untouched
    for a, b in zip(before[0][:-1], after[0][:-1]):
        assert np.array_equal(a, b)  # the hidden layers untouched
    assert not np.array_equal(before[0][-1], after[0][-1])
    assert params is not solved and np.array_equal(params, trainer.params())  # the input is not written


def test_a_fit_with_warm_up_reaches_its_target(monkeypatch):
    fit_module = __import__("sys").modules["inr.fit"]
    monkeypatch.setattr(fit_module, "LR_WARMUP_STEPS", 50)
    values = sphere_front((16, 16, 16))
    _, rep = inr.fit(values, ratio=20.0, target_psnr=30.0, max_steps=600, backend="native", threads=1)
    assert rep.psnr >= 30.0 and rep.stop_reason == "target_psnr"
