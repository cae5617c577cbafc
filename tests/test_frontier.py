"""budgetopt.frontier: the best value per budget among all trials, and the fit of what
longer training is worth."""

import json
import math
import re

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

import budgetopt
from budgetopt.attrs import ATTR_COMPUTE, ATTR_MODE, ATTR_PLAN, ATTR_RUNG_VALUES, STUDY_ATTR_LADDER
from budgetopt.cli import main
from budgetopt.frontier import fit_frontier, frontier

RUNGS = (10, 30, 90, 270)


def _trial(number_rng, mode, plan, values, state):
    attrs = {ATTR_MODE: mode, ATTR_PLAN: list(plan), ATTR_RUNG_VALUES: {str(b): v for b, v in values.items()},
             ATTR_COMPUTE: int(sum(plan[: len(values)]))}
    final = values[plan[-1]] if state == TrialState.COMPLETE else None
    return create_trial(
        state=state,
        value=final,
        params={"x": float(number_rng.uniform())},
        distributions={"x": FloatDistribution(0, 1)},
        user_attrs=attrs,
        intermediate_values={b: v for b, v in values.items()},
    )


def random_study(seed: int, direction: str = "maximize", storage: str | None = None) -> optuna.Study:
    rng = np.random.default_rng(seed)
    study = optuna.create_study(direction=direction, storage=storage)
    study.set_user_attr(STUDY_ATTR_LADDER, {"rungs": list(RUNGS), "reduction_factor": 3})
    for _ in range(int(rng.integers(5, 40))):
        mode = rng.choice(["restart", "branch", "continue"], p=[0.5, 0.3, 0.2])
        reached = int(rng.integers(0, len(RUNGS) + 1))
        values = {b: float(rng.uniform()) for b in RUNGS[:reached]}
        if reached == len(RUNGS):
            state = [TrialState.COMPLETE, TrialState.FAIL][int(rng.integers(2))]
        else:
            state = [TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING][int(rng.integers(3))]
        study.add_trial(_trial(rng, str(mode), RUNGS, values, state))
    return study


def brute_force(study: optuna.Study, include_continue=False):
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    best = {}
    for t in study.get_trials():
        if t.user_attrs[ATTR_MODE] == "continue" and not include_continue:
            continue
        for b, v in t.intermediate_values.items():
            key = (v if maximize else -v, -t.number)
            if b not in best or key > best[b][0]:
                best[b] = (key, t.number, v)
    return {b: (n, v) for b, (_, n, v) in best.items()}


@pytest.mark.parametrize("seed", range(20))
def test_frontier_equals_a_brute_force_over_every_trials_intermediate_values(seed, tmp_path):
    direction = "maximize" if seed % 2 else "minimize"
    # In memory (Optuna's public get_trials) and in SQLite (budgetopt._optuna.trial_records).
    study = random_study(seed, direction, None if seed % 4 < 2 else f"sqlite:///{tmp_path / 'f.db'}")
    expected = brute_force(study)
    if not expected:
        with pytest.raises(ValueError, match="no budget-converged value"):
            frontier(study)
        return
    front = frontier(study)
    assert front.budgets == RUNGS
    for row in front:
        if row.budget not in expected:
            assert row.trial is None and row.measured == 0
            continue
        number, value = expected[row.budget]
        assert (row.trial, row.value) == (number, value)
        measured = [
            t for t in study.get_trials() if t.user_attrs[ATTR_MODE] != "continue" and row.budget in t.intermediate_values
        ]
        assert row.measured == len(measured)
        assert row.params == study.trials[number].params
        if row.measured > 1:
            assert row.margin >= 0
    with_continue = frontier(study, include_continue=True)
    for row in with_continue:
        if row.trial is not None:
            assert row.value == brute_force(study, include_continue=True)[row.budget][1]
            assert row.mid_schedule == (study.trials[row.trial].user_attrs[ATTR_MODE] == "continue")


def test_the_best_model_at_a_budget_can_belong_to_a_pruned_trial():
    rng = np.random.default_rng(0)
    study = optuna.create_study(direction="maximize")
    study.add_trial(_trial(rng, "restart", RUNGS, {10: 0.5, 30: 0.6, 90: 0.7, 270: 0.8}, TrialState.COMPLETE))
    study.add_trial(_trial(rng, "restart", RUNGS, {10: 0.55, 30: 0.65}, TrialState.PRUNED))
    front = frontier(study)
    assert study.best_trial.number == 0
    assert front.row(30).trial == 1 and front.row(30).value == 0.65 and front.row(30).margin == pytest.approx(0.05)
    assert front.row(270).trial == 0 and front.row(90).gain == pytest.approx(0.05)
    assert front.row(10).compute == 20 and front.row(30).compute == 60  # each trial's segment of that budget (restart)
    assert front.to_dict()["rows"][1]["trial"] == 1
    frame = front.to_dataframe()  # pandas comes with budgetopt[bench]
    assert list(frame.index) == [10, 30, 90, 270] and frame.loc[30, "trial"] == 1 and frame.loc[30, "value"] == 0.65
    assert frame.loc[30, "param_x"] == front.row(30).params["x"]
    with pytest.raises(ValueError, match="not on the study's ladder: its budgets are 10, 30, 90, 270"):
        front.row(45)


def _synthetic(a, b, c, budgets, noise=0.0, seed=0, trials=6, direction="maximize"):
    """A study whose trials at each budget scatter below the curve a - b * (B / B_max)**-c."""
    rng = np.random.default_rng(seed)
    study = optuna.create_study(direction=direction)
    sign = 1 if direction == "maximize" else -1
    for k in range(trials):
        values = {}
        for budget in budgets:
            top = a - b * (budget / budgets[-1]) ** (-c)
            values[budget] = sign * float(top - (0 if k == 0 else rng.uniform(0, 0.01)) + rng.normal(0, noise))
        study.add_trial(_trial(rng, "restart", budgets, values, TrialState.COMPLETE))
    return study


def test_the_fit_recovers_a_known_curve_and_predicts_longer_training():
    budgets = (10, 30, 90, 270, 810)
    for direction in ("maximize", "minimize"):
        fit = fit_frontier(frontier(_synthetic(0.9, 0.2, 0.5, budgets, direction=direction)), min_gain=0.03)
        assert fit.trusted, fit.reason
        assert fit.parameters == pytest.approx((0.9, 0.2, 0.5), abs=1e-3)
        sign = 1 if direction == "maximize" else -1
        value, low, high = fit.predictions[1620]
        assert value == pytest.approx(sign * (0.9 - 0.2 * 2**-0.5), abs=1e-3)
        assert low <= value <= high
        # gain of a doubling from B: 0.2 * (B/810)^-0.5 * (1 - 2^-0.5) = 0.0586 (B/810)^-0.5 < 0.03 first at B = 810 * 4
        assert fit.enough_at == 3240
        assert "training 2x longer than 810 iterations is predicted to" in fit.advice()
        noisy = fit_frontier(frontier(_synthetic(0.9, 0.2, 0.5, budgets, noise=0.002, direction=direction)))
        assert noisy.trusted, noisy.reason  # the interval reads from less to more gain, for a loss too
        gain, least, most = map(float, re.search(r"predicted to [a-z ]+ (\S+) \((\S+) to (\S+)\)", noisy.advice()).groups())
        assert least <= gain <= most, noisy.advice()


def test_the_fit_refuses_too_few_budgets_a_flat_frontier_and_says_why():
    few = fit_frontier(frontier(_synthetic(0.9, 0.2, 0.5, (10, 30))))
    assert not few.trusted and "a fit needs 3" in few.reason and few.predictions == {}
    assert few.advice().startswith("no prediction for longer training")
    three = fit_frontier(frontier(_synthetic(0.9, 0.2, 0.5, (10, 30, 90))))  # a curve through every point
    assert not three.trusted and "none is left to check the curve" in three.reason
    assert fit_frontier(frontier(_synthetic(0.9, 0.2, 0.5, (10, 30, 90))), backtest=False).trusted
    rng = np.random.default_rng(0)
    flat = optuna.create_study(direction="maximize")
    flat.add_trial(_trial(rng, "restart", RUNGS, {10: 0.5, 30: 0.6, 90: 0.6, 270: 0.61}, TrialState.COMPLETE))
    refused = fit_frontier(frontier(flat))
    assert not refused.trusted and "not rising (budget 90" in refused.reason
    with pytest.raises(ValueError, match="min_gain must be > 0"):
        fit_frontier(frontier(flat), min_gain=0)


def test_frontier_command_prints_the_table_and_advice_json_and_csv(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    study = optuna.create_study(study_name="s", storage=url, direction="maximize")
    for t in _synthetic(0.9, 0.2, 0.5, (10, 30, 90, 270)).get_trials():
        study.add_trial(t)
    assert main(["frontier", url, "--min-gain", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "Frontier of study 's'" in out and "training 2x longer than 270 iterations" in out
    assert main(["frontier", url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["budget"] for r in data["rows"]] == [10, 30, 90, 270] and data["fit"]["trusted"]
    assert main(["frontier", url, "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("budget,trial,value") and len(lines) == 5
    plot = tmp_path / "frontier.html"
    assert main(["frontier", url, "--plot", str(plot)]) == 0
    html = plot.read_text()
    assert "Frontier: the best value measured at each budget" in html and "predicted (95%)" in html
    assert 'src="https://cdn.plot.ly' not in html and len(html) > 1_000_000  # plotly.js inside: opens offline


def test_a_study_without_converged_values_says_why_in_its_own_terms():
    rng = np.random.default_rng(0)
    diverged = optuna.create_study()
    for _ in range(2):
        diverged.add_trial(_trial(rng, "restart", RUNGS, {}, TrialState.PRUNED))
    with pytest.raises(ValueError, match=r"none of its 2 trials \(mode restart\) reported a finite value at a budget: "
                       r"2 diverged or failed before their first rung") as raised:
        frontier(diverged)
    assert "continue" not in str(raised.value)
    diverged.add_trial(_trial(rng, "restart", RUNGS, {}, TrialState.RUNNING))
    with pytest.raises(ValueError, match="2 diverged or failed before their first rung, 1 still running before"):
        frontier(diverged)
    cont = optuna.create_study()
    cont.add_trial(_trial(rng, "continue", RUNGS, {10: 0.5, 30: 0.6}, TrialState.PRUNED))
    with pytest.raises(ValueError, match="mode continue; continue values are mid-schedule .*--include-continue"):
        frontier(cont)
    cont.add_trial(_trial(rng, "restart", RUNGS, {}, TrialState.PRUNED))  # mixed modes: the hint still given
    with pytest.raises(ValueError, match="mode continue, restart; continue values are mid-schedule"):
        frontier(cont)


def test_frontier_command_bad_input_is_one_line_exit_2(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    study = optuna.create_study(study_name="plain", storage=url)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert main(["frontier", url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no budget-converged value" in err[0]
    assert main(["frontier", url, "--study", "nope"]) == 2
    assert "no study 'nope'" in capsys.readouterr().err
    assert main(["frontier", url, "--min-gain", "0"]) == 2
    assert "--min-gain must be a number > 0" in capsys.readouterr().err
    assert main(["frontier", url, "--plot", "frontier.png"]) == 2
    assert "--plot must name an .html file, got 'frontier.png'" in capsys.readouterr().err
    assert main(["frontier", url, "--plot", str(tmp_path / "no" / "f.html")]) == 2
    assert "its directory does not exist" in capsys.readouterr().err


def test_frontier_of_a_real_digits_study_names_pruned_trials_and_exports():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    script = budgetopt.load_study_script("digits")
    ladder = script.quick_ladder
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=budgetopt.BudgetPruner(ladder.min_budget, ladder.max_budget, ladder.reduction_factor),
    )
    study.optimize(budgetopt.make_objective(script, mode="restart"), n_trials=9)
    front = budgetopt.frontier(study)
    assert front.budgets == tuple(ladder)
    assert front.row(ladder.min_budget).measured == 9
    assert front.compute == sum(t.user_attrs[ATTR_COMPUTE] for t in study.trials)
    for row in front:
        trial = study.trials[row.trial]
        assert trial.intermediate_values[row.budget] == row.value
        assert all(t.intermediate_values.get(row.budget, -math.inf) <= row.value for t in study.trials)


def test_a_noisy_frontier_is_refused_or_says_how_little_it_knows():
    """Noise of 0.03 on every trial's value (the clean curve's interval at twice the largest
    budget is 0.006 wide): the fit refuses, saying why (its backtest misses the largest
    budget, or the frontier is not rising), or its interval is at least five times the
    clean one's; never the clean fit's confidence."""
    budgets, (a, b, c) = (10, 30, 90, 270, 810), (0.9, 0.2, 0.5)
    clean = fit_frontier(frontier(_synthetic(a, b, c, budgets)))
    _, low, high = clean.predictions[1620]
    refused = 0
    for seed in range(20):
        fit = fit_frontier(frontier(_synthetic(a, b, c, budgets, noise=0.03, seed=seed)))
        if not fit.trusted:
            refused += 1
            assert "not rising" in fit.reason or "does not extrapolate" in fit.reason, fit.reason
            continue
        _, noisy_low, noisy_high = fit.predictions[1620]
        assert noisy_high - noisy_low >= 5 * (high - low), (seed, fit.predictions[1620])
    assert refused >= 8, refused  # 9 of these 20 are refused outright
    # a rising frontier whose largest budget leaps off the curve fails its own backtest
    leap = _synthetic(a, b, c, budgets)
    leap.add_trial(_trial(np.random.default_rng(1), "restart", budgets, {810: a - b + 0.08}, TrialState.COMPLETE))
    refused_fit = fit_frontier(frontier(leap))
    assert not refused_fit.trusted and "does not extrapolate on this study" in refused_fit.reason
