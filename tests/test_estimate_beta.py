"""studies/estimate_beta.py recovers a known drift of the best learning rate."""

import importlib.util
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "studies" / "estimate_beta.py"
spec = importlib.util.spec_from_file_location("estimate_beta", SCRIPT)
estimate_beta = importlib.util.module_from_spec(spec)
spec.loader.exec_module(estimate_beta)


def test_a_known_power_law_drift_is_recovered_and_a_flat_one_is_zero():
    rng = np.random.default_rng(0)
    rungs = (30, 90, 270, 810)
    x = rng.uniform(-1.5, 1.5, size=120)  # log10 lr
    covariates = rng.uniform(0, 1, size=(120, 2))
    for beta in (0.0, 0.3, 0.6):
        optimum = 0.8 - beta * np.log10(np.array(rungs))  # x*(B) falls as B^-beta
        values = np.stack([0.9 - 0.1 * (x[:, None] - optimum) ** 2 + 0.02 * covariates[:, :1]] * 2, axis=1)
        values = values + rng.normal(0, 1e-3, size=values.shape)
        fit = estimate_beta.optimum_drift(values, x, covariates, rungs)
        np.testing.assert_allclose(fit["optima"], optimum, atol=0.02)
        assert abs(fit["beta"] - beta) < 0.02


def test_a_rung_without_an_interior_optimum_is_left_out():
    x = np.linspace(-1, 1, 40)
    none = np.zeros((40, 0))
    rising = np.stack([np.stack([x, x], axis=1)] * 3, axis=2)  # value rises with lr at every rung: no optimum
    fit = estimate_beta.optimum_drift(rising, x, none, (10, 30, 90))
    assert np.isnan(fit["optima"]).all() and np.isnan(fit["beta"])
    valley = np.stack([np.stack([(x - 0.2) ** 2] * 2, axis=1)] * 3, axis=2)  # a minimum inside the range, not a maximum
    fit = estimate_beta.optimum_drift(valley, x, none, (10, 30, 90))
    assert np.isnan(fit["optima"]).all() and np.isnan(fit["beta"])


def test_a_resample_is_fitted_over_the_whole_groups_rungs():
    x = np.linspace(-1, 1, 40)
    peaks = [0.5, 0.2, -0.1, 5.0]  # the last rung's optimum is outside the range: not used
    values = np.stack([np.stack([-((x - p) ** 2)] * 2, axis=1) for p in peaks], axis=2)
    fit = estimate_beta.optimum_drift(values, x, np.zeros((40, 0)), (10, 100, 1000, 10000))
    assert list(fit["use"]) == [True, True, True, False] and abs(fit["beta"] - 0.3) < 1e-6
    # a resample in which a used rung has no optimum is undefined, not fitted over fewer rungs
    flat = values.copy()
    flat[:, :, 1] = x[:, None]
    assert np.isnan(estimate_beta.optimum_drift(flat, x, np.zeros((40, 0)), (10, 100, 1000, 10000), use=fit["use"])["beta"])
