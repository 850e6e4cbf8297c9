"""The long-term experiment's measurements, and a reduced run of its central claim."""

import numpy as np
import pytest

from training import tasks
from training.experiments import long_term


def test_linear_recurrence_gradient_decays_at_the_spectral_radius():
    results = long_term.linear_recurrence_decay([0.5, 0.8, 0.9], length=60, units=16)
    for rho, result in results.items():
        # dL/ds_tau = (W^T)^(T - tau) p: past the transient its norm shrinks by rho per step.
        assert result["rate"] == pytest.approx(rho, rel=0.03)
        assert result["norms"][0] < result["norms"][-1]  # the start of the sequence gets the smallest gradient


def test_gradient_norms_has_one_entry_per_step_and_shrinks_with_distance_for_elman(tmp_path):
    task, config = long_term.run_config_for("adding", "elman", 40, 0, 10)
    inputs, targets = task.split_data(config)["test"]
    model = task.build_model(config)
    model(inputs[:1])
    norms = long_term.gradient_norms(model, inputs[:32], targets[:32], lambda y, p: task.loss(config, y, p))
    assert norms.shape == (40,) and np.all(np.isfinite(norms)) and np.all(norms > 0)
    assert norms[0] < 0.3 * norms[-1], "a tanh recurrence at initialisation forgets 40 steps back"


@pytest.mark.slow
def test_gated_cells_solve_adding_at_t_100_while_elman_stays_at_the_baseline(tmp_path):
    # The lecture's prediction, reduced to one seed and 1200 steps (Adam 0.01, 32 units, clipping at 1).
    # Thresholds: results.md §1.3: "LSTM MSE < 0.05 within a few epochs, SimpleRNN ~ 0.16-0.17"; the baseline of
    # predicting the mean is 1/6 ~ 0.167, so 0.12 is well above anything a model that remembers would reach.
    mse = {}
    for cell in ("lstm", "gru", "elman"):
        _, metrics = long_term.train_one("adding", cell, 100, 0, 1200, str(tmp_path / cell))
        mse[cell] = metrics["mse"]
    baseline = tasks.get("adding").chance_levels({})["mse"]
    assert mse["lstm"] < 0.05 and mse["gru"] < 0.05, mse
    assert mse["elman"] > 0.12, mse
    assert mse["elman"] < baseline * 1.2, mse  # and no worse than the baseline either: it learnt the mean
