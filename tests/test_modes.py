"""budgetopt.modes: each mode object's phases and compute are what BudgetedRun executes."""

from __future__ import annotations

import pytest
import torch

from budgetopt import BudgetedRun
from budgetopt.modes import (
    COOLDOWN,
    MODES,
    Branch,
    Continue,
    Restart,
    compute,
    cooldown_iterations,
    describe_schedule,
    get_mode,
    mode_of_schedule,
)
from budgetopt.schedules import budget_multiplier, get_profile

LR0 = 0.5
MODE_OBJECTS = [
    Restart(),
    Restart(horizon_exponent=0.5),
    Branch(),
    Branch(cooldown=0.1),
    Branch(cooldown=0.5),
    Branch(cooldown=1.0),
    Continue(),
]
LADDERS = [[4, 8, 16], [10, 30, 90], [3, 7, 20], [5, 17, 40, 41], [12]]


def executed(mode, budgets, warmup=0, profile="linear", **params):
    """Run BudgetedRun on a one-weight model; per budget: the t it yielded, the rate of
    each step, and the run's compute after the report."""
    model = torch.nn.Linear(1, 1, bias=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR0)
    run = BudgetedRun(
        budgets, model, optimizer, mode=mode.name, warmup=warmup, profile=profile, **mode.options(), **params
    )
    segments = []
    for segment in run.segments():
        ts, rates = [], []
        for t in segment:
            ts.append(t)
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
        segment.report(0.0)
        segments.append((ts, rates, run.compute))
    return segments


def drawn(mode, budgets, warmup=0, profile="linear", **params):
    """The same, read off the mode object's phases alone."""
    fn = get_profile(profile, **params)
    segments, total = [], 0
    for k in range(len(budgets)):
        ts, rates = [], []
        for phase in mode.segment(budgets, k, warmup).phases:
            shape = get_profile("constant") if phase.profile == "constant" else fn
            for t in range(phase.start, phase.stop):
                ts.append(t)
                multiplier = budget_multiplier(t - phase.origin, phase.horizon, shape, phase.warmup)
                rates.append(LR0 * (phase.peak_scale or 1.0) * multiplier)
        total += len(ts)
        segments.append((ts, rates, total))
    return segments


@pytest.mark.parametrize("mode", MODE_OBJECTS, ids=repr)
@pytest.mark.parametrize("budgets", LADDERS, ids=str)
def test_phases_are_what_budgeted_run_executes_and_compute_counts_them(mode, budgets):
    run = executed(mode, budgets)
    phases = drawn(mode, budgets)
    assert [ts for ts, _, _ in run] == [ts for ts, _, _ in phases]
    for (_, rates, _), (_, expected, _) in zip(run, phases):
        assert rates == pytest.approx(expected, rel=1e-9, abs=1e-12)
    counted = [c for _, _, c in run]
    assert counted == [c for _, _, c in phases]
    assert counted == [mode.compute(budgets, k) for k in range(len(budgets))]
    assert counted[-1] == mode.compute(budgets)
    # every budget ends at its last step, whatever the mode
    assert all(ts[-1] == budget - 1 for (ts, _, _), budget in zip(run, budgets))


@pytest.mark.parametrize("mode", [Restart(), Branch(cooldown=0.25), Continue()], ids=repr)
def test_phases_with_warmup_and_another_profile(mode):
    budgets = [16, 32, 64]
    run = executed(mode, budgets, warmup=3, profile="poly", power=2.0)
    phases = drawn(mode, budgets, warmup=3, profile="poly", power=2.0)
    assert [ts for ts, _, _ in run] == [ts for ts, _, _ in phases]
    for (_, rates, _), (_, expected, _) in zip(run, phases):
        assert rates == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_closed_form_compute_formulas():
    budgets = [10, 30, 90]
    assert [Restart().compute(budgets, k) for k in range(3)] == [10, 40, 130]
    assert [Branch(cooldown=0.2).compute(budgets, k) for k in range(3)] == [10, 30 + 2, 90 + 2 + 6]
    assert [Continue().compute(budgets, k) for k in range(3)] == [10, 30, 90]
    assert cooldown_iterations(3, 0.1) == 1 and cooldown_iterations(20, 0.1) == 2
    with pytest.raises(ValueError, match="k must index the 3 budgets, got 3"):
        Restart().compute(budgets, 3)


@pytest.mark.parametrize("name", MODES)
def test_compute_by_name_is_the_objects(name):
    budgets = [5, 17, 40, 41]
    for k in range(4):
        obj = get_mode(name, cooldown=0.5) if name == "branch" else get_mode(name)
        assert compute(name, budgets, k, cooldown=0.5) == obj.compute(budgets, k)
    # the simulator passes its table's cooldown for every mode: only branch reads it
    same = compute(name, budgets, cooldown=0.5) == compute(name, budgets, cooldown=1.0)
    assert same is (name != "branch"), (name, compute(name, budgets, cooldown=0.5), compute(name, budgets, cooldown=1.0))


def test_each_modes_rates_and_compute_by_hand():
    """Written out from the definitions, not from the code under test: restart decays
    linearly to zero at each budget from the start (rate 1 - t/B); branch holds the peak
    on its trunk and cools down linearly over the last half of each budget, the next
    budget resuming the trunk where the cooldown began (compute: the last budget plus the
    earlier cooldowns)."""
    restart = executed(Restart(), [4, 8])
    assert [(ts, [r / LR0 for r in rates], c) for ts, rates, c in restart] == [
        ([0, 1, 2, 3], [1.0, 0.75, 0.5, 0.25], 4),
        ([0, 1, 2, 3, 4, 5, 6, 7], [1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125], 12),
    ]
    branch = executed(Branch(cooldown=0.5), [4, 8])
    assert [(ts, [r / LR0 for r in rates], c) for ts, rates, c in branch] == [
        ([0, 1, 2, 3], [1.0, 1.0, 1.0, 0.5], 4),
        ([2, 3, 4, 5, 6, 7], [1.0, 1.0, 1.0, 0.75, 0.5, 0.25], 10),
    ]


def test_what_each_mode_keeps_and_resumes_from():
    assert (Restart.keeps, Restart.resumes_from) == ("initial", "initial")
    assert (Branch.keeps, Branch.resumes_from) == ("trunk", "trunk")
    assert (Continue.keeps, Continue.resumes_from) == (None, "current")
    assert [m.segment([4, 8, 16], k).restore for m in (Restart(), Branch(), Continue()) for k in (0, 1)] == [
        None, "initial", None, "trunk", None, None
    ]
    # branch keeps the trunk before every cooldown but the last budget's
    assert [any(p.snapshot_before for p in Branch().segment([4, 8, 16], k).phases) for k in range(3)] == [True, True, False]


def test_only_continue_is_judged_mid_schedule():
    plan = (9, 27, 81)
    assert Restart().converged(plan) == plan and Branch().converged(plan) == plan
    assert Continue().converged(plan) == (81,)
    assert [m.budget_aware for m in (Restart, Branch, Continue)] == [True, True, False]


def test_warmup_limits():
    assert Restart().warmup_limit([10, 20]) == (10, "the first budget")
    assert Continue().warmup_limit([10, 20]) == (10, "the first budget")
    assert Branch(cooldown=0.2).warmup_limit([10, 20])[0] == 8


@pytest.mark.parametrize(
    "kwargs, schedule, words",
    [
        (dict(mode="restart"), dict(profile="linear", params={}, warmup=0, cooldown=None, horizon_exponent=0.0), "linear"),
        (
            dict(mode="branch", cooldown=0.1, warmup=2),
            dict(profile="linear", params={}, warmup=2, cooldown=0.1, horizon_exponent=0.0),
            "constant trunk + linear cooldown over 0.1 of each budget, warmup 2",
        ),
        (
            dict(mode="restart", profile="poly", power=3.0, horizon_exponent=0.3),
            dict(profile="poly", params={"power": 3.0}, warmup=0, cooldown=None, horizon_exponent=0.3),
            "poly(power=3.0), peak rate x (B_max/B)^0.3",
        ),
        (
            dict(mode="continue", profile="cosine", warmup=5),
            dict(profile="cosine", params={}, warmup=5, cooldown=None, horizon_exponent=0.0),
            "cosine, warmup 5",
        ),
    ],
)
def test_the_schedule_a_run_records_is_structured_and_round_trips(kwargs, schedule, words):
    model = torch.nn.Linear(1, 1, bias=False)
    run = BudgetedRun([20, 60], model, torch.optim.SGD(model.parameters(), lr=0.1), **kwargs)
    assert run.schedule == {"mode": kwargs["mode"], **schedule}
    assert describe_schedule(run.schedule) == words
    assert mode_of_schedule(run.schedule) == run.mode_object


def test_a_mode_refuses_another_modes_option():
    assert get_mode("branch") == Branch(COOLDOWN)
    with pytest.raises(ValueError, match="cooldown is branch mode's"):
        get_mode("restart", cooldown=0.1)
    with pytest.raises(ValueError, match="horizon_exponent needs mode='restart'"):
        get_mode("continue", horizon_exponent=0.2)
    with pytest.raises(ValueError, match=r"cooldown must be in \(0, 1\]"):
        get_mode("branch", cooldown=2)
    with pytest.raises(ValueError, match="mode must be one of restart, branch, continue; got 'resume'"):
        get_mode("resume")
    assert Branch(0.3).options() == {"cooldown": 0.3} and Restart().options() == {} and Continue().options() == {}


def test_mode_with_keeps_only_the_modes_own_options():
    from budgetopt.modes import mode_with

    assert mode_with("restart", cooldown=0.5) == Restart()
    assert mode_with("branch", cooldown=0.5, horizon_exponent=0.3) == Branch(0.5)
    assert mode_with("restart", cooldown=0.5, horizon_exponent=0.3) == Restart(0.3)
    assert mode_with("continue", cooldown=0.5, horizon_exponent=0.3) == Continue()
    assert mode_with("branch", cooldown=None) == Branch(COOLDOWN)
    assert Branch.option_names() == ("cooldown",) and Restart.option_names() == ("horizon_exponent",)
