"""BudgetedRun: restart / branch / continue, compute, learning rates, divergence, errors."""

from __future__ import annotations

import math
import re

import optuna
import pytest
import torch
from torch import nn

from budgetopt import BudgetedRun, BudgetScheduler, Ladder

LR0 = 0.1
X = torch.randn(256, 4, generator=torch.Generator().manual_seed(0))
Y = X @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1 * torch.randn(256, 1, generator=torch.Generator().manual_seed(1))


def make(seed: int = 0, lr: float = LR0) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    return model, torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


def train_step(model: nn.Module, opt: torch.optim.Optimizer, t: int) -> torch.Tensor:
    """One step on batch ``t`` (batches are indexed by the iteration, as in a resumable loader)."""
    i = (t * 16) % len(X)
    opt.zero_grad()
    loss = nn.functional.mse_loss(model(X[i : i + 16]), Y[i : i + 16])
    loss.backward()
    opt.step()
    return loss


def drive(run: BudgetedRun, on_step=None) -> list[float]:
    """The protocol of the README's "Use it"; returns the rate the optimizer held at each user step."""
    seen = []
    for segment in run.segments():
        for t in segment:
            seen.append(run.optimizer.param_groups[0]["lr"])
            if on_step is not None:
                on_step(segment, t)
            train_step(run.model, run.optimizer, t)
        with torch.no_grad():
            segment.report(-float(nn.functional.mse_loss(run.model(X), Y)))
    return seen


def plain_loop(budget: int, profile: str = "linear", **params) -> nn.Module:
    """The reference: a fresh model trained ``budget`` steps with a BudgetScheduler."""
    model, opt = make()
    sched = BudgetScheduler(opt, budget, profile, **params)
    for t in range(budget):
        train_step(model, opt, t)
        sched.step()
    return model


def state_of(model: nn.Module, opt: torch.optim.Optimizer) -> dict:
    return {
        "model": {k: v.clone() for k, v in model.state_dict().items()},
        "momentum": [opt.state[p]["momentum_buffer"].clone() for p in model.parameters() if p in opt.state],
    }


def assert_bitwise_equal(a: dict, b: dict) -> None:
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert len(a["momentum"]) == len(b["momentum"])
    assert all(torch.equal(x, y) for x, y in zip(a["momentum"], b["momentum"]))


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


# -- restart ---------------------------------------------------------------------------


def test_restart_mode_resets_weights_and_momentum_between_rungs():
    model, opt = make()
    initial = state_of(model, opt)
    assert initial["momentum"] == []
    starts = []

    def capture(segment, t):
        if t == 0:
            starts.append(state_of(model, opt))

    run = BudgetedRun([5, 15, 45], model, opt, mode="restart")
    drive(run, capture)
    assert len(starts) == 3
    for start in starts:
        assert_bitwise_equal(start, initial)  # weights equal, no momentum buffer carried over
    assert not torch.equal(model[0].weight, initial["model"]["0.weight"])  # it did train


def test_restart_final_model_equals_a_plain_linear_run_of_the_last_budget():
    model, opt = make()
    drive(BudgetedRun([10, 30, 90], model, opt, mode="restart"))
    assert_same_weights(model, plain_loop(90))


def test_restart_compute_is_the_sum_of_budgets():
    run = BudgetedRun([10, 30, 90], *make(), mode="restart")
    drive(run)
    assert run.compute == 130
    assert run.segment_compute == {10: 10, 30: 30, 90: 90}


# -- branch ----------------------------------------------------------------------------


def test_branch_mode_restores_the_trunk_it_snapshotted():
    budgets, cooldown = [16, 32, 64], 0.25  # cooldowns 4, 8, 16; trunks end at 12, 24, 48
    model, opt = make()
    before_cooldown, after_restore = {}, {}

    def capture(segment, t):
        if t == 12 and segment.budget == 16 or t == 24 and segment.budget == 32:
            before_cooldown[segment.index] = state_of(model, opt)
        if segment.index > 0 and segment.index not in after_restore:
            after_restore[segment.index] = (t, state_of(model, opt))

    run = BudgetedRun(budgets, model, opt, mode="branch", cooldown=cooldown)
    drive(run, capture)
    assert sorted(after_restore) == [1, 2]
    for k, (t, state) in after_restore.items():
        assert t == [12, 24][k - 1]  # the trunk resumes where it was cut, not at 0
        assert_bitwise_equal(state, before_cooldown[k - 1])
        assert state["momentum"]  # the trunk's momentum came back too


def test_branch_final_model_equals_a_plain_warmup_stable_decay_run():
    # cooldown * budget is an integer (and a power of two: the rates are bitwise equal)
    model, opt = make()
    drive(BudgetedRun([16, 32, 64], model, opt, mode="branch", cooldown=0.25))
    assert_same_weights(model, plain_loop(64, "wsd", cooldown=0.25))


def test_branch_compute_is_last_budget_plus_other_cooldowns():
    run = BudgetedRun([10, 30, 90], *make(), mode="branch", cooldown=0.2)
    drive(run)
    # cooldowns 2, 6, 18; trunks end at 8, 24, 72
    assert run.segment_compute == {10: 8 + 2, 30: (24 - 8) + 6, 90: (72 - 24) + 18}
    assert run.compute == 90 + 2 + 6


def test_branch_cooldown_is_at_least_one_iteration_and_rounded():
    run = BudgetedRun([3, 7, 20], *make(), mode="branch", cooldown=0.1)
    drive(run)
    # cooldowns max(1, round(0.3)) = 1, max(1, round(0.7)) = 1, round(2.0) = 2
    assert run.segment_compute == {3: 3, 7: (6 - 2) + 1, 20: (18 - 6) + 2}
    assert run.compute == 20 + 1 + 1


def test_branch_with_full_cooldown_is_restart():
    model, opt = make()
    run = BudgetedRun([1, 5, 20], model, opt, mode="branch", cooldown=1.0)
    drive(run)
    assert run.compute == 1 + 5 + 20
    assert_same_weights(model, plain_loop(20))


# -- continue --------------------------------------------------------------------------


def test_continue_final_model_equals_one_linear_schedule_over_the_largest_budget():
    model, opt = make()
    run = BudgetedRun([10, 30, 90], model, opt, mode="continue")
    drive(run)
    assert_same_weights(model, plain_loop(90))
    assert run.compute == 90
    assert run.segment_compute == {10: 10, 30: 20, 90: 60}


# -- learning rates --------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode, kwargs, expected",
    [
        ("restart", {}, [1 - t / 4 for t in range(4)] + [1 - t / 8 for t in range(8)]),
        ("continue", {}, [1 - t / 8 for t in range(8)]),
        # budget 8: trunk 0..5, cooldown 2; budget 16: trunk 6..11, cooldown 4
        ("branch", {"cooldown": 0.25}, [1] * 6 + [1, 0.5] + [1] * 6 + [1, 0.75, 0.5, 0.25]),
        (
            "restart",
            {"warmup": 2},
            [1 / 3, 2 / 3, 1, 0.5] + [1 / 3, 2 / 3] + [1 - (t - 2) / 6 for t in range(2, 8)],
        ),
        # the profile shapes branch's cooldowns: 1 - sqrt(t / C)
        (
            "branch",
            {"cooldown": 0.25, "profile": "sqrt"},
            [1] * 6 + [1, 1 - 0.5**0.5] + [1] * 6 + [1 - (t / 4) ** 0.5 for t in range(4)],
        ),
        ("branch", {"cooldown": 0.25, "warmup": 2}, [1 / 3, 2 / 3] + [1] * 4 + [1, 0.5] + [1] * 6 + [1, 0.75, 0.5, 0.25]),
    ],
)
def test_rate_of_every_step_is_set_before_the_users_step(mode, kwargs, expected):
    budgets = [8, 16] if mode == "branch" else [4, 8]
    model, opt = make(lr=0.8)
    run = BudgetedRun(budgets, model, opt, mode=mode, **kwargs)
    seen = drive(run)
    assert seen == pytest.approx([0.8 * m for m in expected])
    assert run.lr_trace == seen
    assert opt.param_groups[0]["lr"] == 0.0  # decayed to exactly 0 after the last step


def test_run_follows_another_profile():
    model, opt = make(lr=1.0)
    run = BudgetedRun([4], model, opt, profile="poly", power=2.0)
    assert drive(run) == pytest.approx([1.0, 0.5625, 0.25, 0.0625])


def test_run_accepts_a_ladder():
    run = BudgetedRun(Ladder(2, 18, 3), *make())
    drive(run)
    assert run.budgets == (2, 6, 18)
    assert list(run.rung_values) == [2, 6, 18]
    assert run.value == run.rung_values[18]
    assert run.ended == "completed at budget 18"


# -- divergence ------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), torch.tensor(float("nan")), float("inf")])
def test_non_finite_loss_ends_the_segment_and_the_run(bad):
    model, opt = make()
    run = BudgetedRun([10, 20], model, opt, loss_check_every=1)
    segments = []
    for segment in run.segments():
        segments.append(segment)
        for t in segment:
            loss = train_step(model, opt, t)
            run.record_loss(bad if t == 3 else loss)
        segment.report(1.0)
    assert len(segments) == 1  # segments() stops after the divergence
    assert run.compute == segments[0].compute == 4  # steps 0..3, then stopped
    assert run.diverged.startswith("diverged: training loss is")
    assert "by iteration 3 of budget 10" in run.diverged
    assert run.ended == run.diverged
    assert run.rung_values == {} and run.value is None


def test_non_finite_loss_tensor_is_caught_at_the_next_check():
    model, opt = make()
    run = BudgetedRun([50], model, opt, loss_check_every=5)
    for segment in run.segments():
        for t in segment:
            loss = train_step(model, opt, t)
            run.record_loss(loss * float("nan") if t == 2 else loss)
        segment.report(0.0)
    assert run.compute == 5  # checked after the 5th recorded loss (t = 4)
    assert "by iteration 4 of budget 50" in run.diverged


def test_non_finite_loss_tensor_is_caught_at_the_last_step_of_a_budget():
    model, opt = make()
    run = BudgetedRun([10, 20], model, opt, loss_check_every=25)
    for segment in run.segments():
        for t in segment:
            loss = train_step(model, opt, t)
            run.record_loss(loss + float("inf") if t == 7 else loss)
        segment.report(0.0)
    assert run.compute == 10
    assert "training loss is inf by iteration 9 of budget 10" in run.diverged


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_reported_value_ends_the_run(value):
    run = BudgetedRun([5, 10], *make())
    reported = []
    for segment in run.segments():
        for t in segment:
            train_step(run.model, run.optimizer, t)
        segment.report(value)
        reported.append(segment.budget)
    assert reported == [5]
    assert run.ended == f"diverged: value {value} at budget 5"
    assert run.rung_values == {}


def test_non_finite_parameters_end_the_run():
    model, opt = make()
    run = BudgetedRun([5, 10], model, opt)
    for segment in run.segments():
        for t in segment:
            train_step(model, opt, t)
        with torch.no_grad():
            model[0].weight[0, 0] = float("nan")
        segment.report(0.5)
    assert run.ended == "diverged: non-finite parameters at budget 5"
    assert run.compute == 5


# -- gradient norms --------------------------------------------------------------------


def test_grad_norms_are_recorded_at_the_interval_and_at_each_budgets_last_step():
    model, opt = make()
    manual = {}
    run = BudgetedRun([10, 25], model, opt, grad_norm_every=4)
    for segment in run.segments():
        for t in segment:
            train_step(model, opt, t)
            manual[(segment.budget, t)] = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in model.parameters()))
        segment.report(0.0)
    assert [(b, t) for b, t, _, _ in run.grad_norms] == [
        (10, 3), (10, 7), (10, 9),
        (25, 3), (25, 7), (25, 11), (25, 15), (25, 19), (25, 23), (25, 24),
    ]  # fmt: skip
    for budget, t, lr, norm in run.grad_norms:
        assert norm == pytest.approx(manual[(budget, t)], rel=1e-5)
        assert lr == pytest.approx(LR0 * (1 - t / budget))


def test_grad_norms_in_branch_mode_skip_the_trunk_end():
    run = BudgetedRun([10, 20], *make(), mode="branch", cooldown=0.2, grad_norm_every=5)
    drive(run)
    # the trunks' last steps (t = 7 and 15) are no budget's last step: not recorded there;
    # budget 20 resumes the trunk at t = 8
    assert [(b, t) for b, t, _, _ in run.grad_norms] == [(10, 4), (10, 9), (20, 9), (20, 14), (20, 19)]


def test_grad_norms_are_off_by_default():
    run = BudgetedRun([10], *make())
    drive(run)
    assert run.grad_norms == []


# -- with an Optuna trial --------------------------------------------------------------


def test_report_goes_to_the_trial_with_the_budget_as_step():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    run = BudgetedRun(trial, *make(), budgets=[5, 15], mode="restart")
    drive(run)
    study.tell(trial, run.value)
    frozen = study.trials[0]
    assert frozen.intermediate_values == run.rung_values
    assert list(frozen.intermediate_values) == [5, 15]
    attrs = frozen.user_attrs
    assert attrs["budgetopt.mode"] == "restart"
    assert attrs["budgetopt.plan"] == [5, 15]
    assert attrs["budgetopt.compute"] == 20
    assert attrs["budgetopt.ended"] == "completed at budget 15"


def test_diverged_trial_is_pruned_with_its_reason():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    run = BudgetedRun(trial, *make(), budgets=[5, 15])
    with pytest.raises(optuna.TrialPruned, match="diverged: value nan at budget 5"):
        for segment in run.segments():
            for t in segment:
                train_step(run.model, run.optimizer, t)
            segment.report(float("nan"))
    assert trial.user_attrs["budgetopt.ended"] == "diverged: value nan at budget 5"


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "budgets, kwargs, error, match",
    [
        ([10], {"mode": "restrat"}, ValueError, r"mode must be one of restart, branch, continue; got 'restrat'"),
        ([30, 10], {}, ValueError, r"budgets must be strictly increasing, got \[30, 10\]"),
        ([10, 10], {}, ValueError, r"budgets must be strictly increasing, got \[10, 10\]"),
        ([], {}, TypeError, r"budgets must be a Ladder or a non-empty sequence of integers, got \[\]"),
        (100, {}, TypeError, r"budgets must be a Ladder or a non-empty sequence of integers, got 100"),
        ([10, 2.5], {}, TypeError, r"budget must be an integer number of iterations, got 2\.5"),
        ([0, 10], {}, ValueError, r"budget must be an integer >= 1, got 0"),
        ([10, 20], {"warmup": 10}, ValueError, r"warmup must be smaller than the first budget \(10 iterations\), got 10"),
        (
            [10, 20],
            {"mode": "branch", "warmup": 8},
            ValueError,
            r"warmup must be smaller than the first trunk .*\(5 iterations\), got 8",
        ),
        ([10], {"mode": "branch", "cooldown": 0}, ValueError, r"cooldown must be in \(0, 1\], got 0"),
        ([10], {"mode": "branch", "cooldown": 1.5}, ValueError, r"cooldown must be in \(0, 1\], got 1\.5"),
        ([10], {"mode": "restart", "cooldown": 0.2}, ValueError, r"cooldown is branch mode's .* got it with mode='restart'"),
        ([10], {"mode": "continue", "cooldown": 0.2}, ValueError, r"cooldown is branch mode's .* got it with mode='continue'"),
        ([10], {"profile": "linaer"}, ValueError, r"profile must be one of .*; got 'linaer'"),
        ([10], {"profile": "poly", "power": -1}, ValueError, r"power must be a number > 0, got -1"),
        ([10], {"grad_norm_every": 0}, ValueError, r"grad_norm_every must be an integer >= 1, got 0"),
        ([10], {"loss_check_every": 0.5}, TypeError, r"loss_check_every must be an integer number of iterations, got 0\.5"),
        ([10], {"budgets": [20]}, TypeError, r"give budgets either as the first argument or as budgets=, not both"),
    ],
)
def test_bad_run_input_is_rejected_by_name(budgets, kwargs, error, match):
    with pytest.raises(error, match=match):
        BudgetedRun(budgets, *make(), **kwargs)


def test_non_module_model_is_rejected():
    _, opt = make()
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module, got function"):
        BudgetedRun([10], lambda x: x, opt)


def test_optimizer_without_param_groups_is_rejected():
    model, opt = make()
    opt.param_groups.clear()
    with pytest.raises(ValueError, match=r"optimizer has no param groups"):
        BudgetedRun([10], model, opt)


def test_reporting_twice_is_an_error():
    run = BudgetedRun([5, 10], *make())
    segment = next(run.segments())
    for t in segment:
        train_step(run.model, run.optimizer, t)
    segment.report(0.1)
    with pytest.raises(RuntimeError, match=r"budget 5 was already reported"):
        segment.report(0.2)


def test_forgetting_to_report_is_an_error():
    run = BudgetedRun([5, 10], *make())
    with pytest.raises(RuntimeError, match=r"the segment of budget 5 ended without segment\.report\(value\)"):
        for segment in run.segments():
            for t in segment:
                train_step(run.model, run.optimizer, t)


@pytest.mark.parametrize("value", ["0.9", None, True])
def test_reporting_a_non_number_is_an_error(value):
    run = BudgetedRun([5], *make())
    segment = next(run.segments())
    with pytest.raises(TypeError, match=rf"segment\.report needs a number, got {value!r}"):
        segment.report(value)


def test_reporting_a_tensor_records_its_value():
    run = BudgetedRun([5], *make())
    for segment in run.segments():
        for t in segment:
            train_step(run.model, run.optimizer, t)
        segment.report(torch.tensor(0.75))
    assert run.rung_values == {5: 0.75}


# -- the mode's compute formula (budgetopt.modes), which the benchmark simulator charges ----------


@pytest.mark.parametrize("mode", ["restart", "branch", "continue"])
@pytest.mark.parametrize("budgets, cooldown", [([10, 30, 90], 0.2), ([3, 7, 20], 0.1), ([5, 17, 40, 41], 0.5)])
def test_counted_compute_at_every_budget_equals_the_modes_formula(mode, budgets, cooldown):
    from budgetopt.modes import compute

    run = BudgetedRun(budgets, *make(), mode=mode, **({"cooldown": cooldown} if mode == "branch" else {}))
    counted = []
    for segment in run.segments():
        for t in segment:
            train_step(run.model, run.optimizer, t)
        segment.report(0.0)
        counted.append(run.compute)
    assert counted == [compute(mode, budgets, k, cooldown) for k in range(len(budgets))]


# -- horizon-scaled peak rates (restart only) -------------------------------------------------


def test_horizon_exponent_scales_each_budgets_peak_rate_and_leaves_the_last_unchanged():
    budgets, beta = [10, 40, 160], 0.5
    run = BudgetedRun(budgets, *make(), mode="restart", horizon_exponent=beta)
    first_rates = {}
    for segment in run.segments():
        for t in segment:
            if t == 0:
                first_rates[segment.budget] = run.optimizer.param_groups[0]["lr"]
            train_step(run.model, run.optimizer, t)
        segment.report(0.0)
    assert first_rates == pytest.approx({10: LR0 * 4.0, 40: LR0 * 2.0, 160: LR0})
    # and the last budget's model is the plain linear run's
    model, opt = make()
    drive(BudgetedRun([160], model, opt, mode="restart", horizon_exponent=beta))
    assert_same_weights(model, plain_loop(160))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(mode="branch", horizon_exponent=0.3), "horizon_exponent needs mode='restart'"),
        (dict(mode="restart", horizon_exponent=-1), "horizon_exponent must be a number >= 0"),
    ],
)
def test_horizon_exponent_is_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BudgetedRun([10, 30], *make(), **kwargs)


# -- mixed precision: the GradScaler's state is part of every snapshot ----------------------


def _scaled_run(mode, inf_steps=(), nan_from=None, **kwargs):
    """A loop with a CPU GradScaler; the gradients of the steps in ``inf_steps`` are inf
    (the scaler skips them and halves its scale), the loss NaN from step ``nan_from`` on.
    Returns the run and the scale each segment's first step saw."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    run = BudgetedRun([4, 8], model, optimizer, mode=mode, grad_scaler=scaler, **kwargs)
    first_scales, step = [], 0
    for segment in run.segments():
        for i, _ in enumerate(segment):  # the segment's state is restored when its first step begins
            if i == 0:
                first_scales.append(scaler.get_scale())
            x = torch.ones(2, 3)
            loss = model(x).pow(2).mean()
            if step in inf_steps:
                loss = loss * float("inf")
            if nan_from is not None and step >= nan_from:
                loss = loss * float("nan")
            optimizer.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            run.record_loss(loss)
            step += 1
        if run.diverged:
            break
        segment.report(-float(model(torch.ones(1, 3)).pow(2).item()))
    return run, scaler, first_scales


def test_restart_begins_every_budget_from_the_initial_scale_and_branch_from_the_trunks():
    run, scaler, first = _scaled_run("restart", inf_steps=(1,), loss_check_every=1)
    assert first == [2.0**10, 2.0**10]  # budget 4 halved it; budget 8 starts from the initial state again
    assert run.diverged is None and run.ended == "completed at budget 8"  # a skipped inf step does not end the run
    run, scaler, first = _scaled_run("branch", inf_steps=(0,), cooldown=0.5, loss_check_every=1)
    # budget 4: trunk 0-1 (step 0 skipped: 2**9), cooldown 2-3; budget 8 resumes the trunk's scaler
    assert first[1] == 2.0**9 and run.ended == "completed at budget 8"


def test_a_nan_that_persists_under_a_scaler_still_ends_the_run_with_its_reason():
    from budgetopt.run import NONFINITE_CHECKS

    run, _, _ = _scaled_run("restart", nan_from=2, loss_check_every=1)
    assert run.diverged is not None and f"in {NONFINITE_CHECKS} loss checks in a row" in run.diverged
    assert "by iteration 0 of budget 8" in run.diverged  # steps 2 and 3 of budget 4, then the first of budget 8


# -- snapshot_device ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["restart", "branch"])
def test_snapshots_kept_on_another_device_give_the_same_run(mode):
    runs = []
    for device in (None, "cpu"):
        model, opt = make()
        run = BudgetedRun([16, 32, 64], model, opt, mode=mode, snapshot_device=device)
        drive(run)
        runs.append((state_of(model, opt), run.lr_trace))
    assert_bitwise_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


def test_a_snapshot_is_a_copy_on_the_snapshot_device():
    model, opt = make()
    run = BudgetedRun([16, 32], model, opt, mode="restart", snapshot_device="cpu")
    assert run.snapshot_device == torch.device("cpu")
    initial = run._initial
    assert all(t.device.type == "cpu" for t in initial["model"].values())
    before = {k: v.clone() for k, v in initial["model"].items()}
    drive(run)  # training never writes into the kept initial state
    assert all(torch.equal(before[k], initial["model"][k]) for k in before)


@pytest.mark.parametrize("bad", ["gpu7", 3.5, "cuda:x"])
def test_a_bad_snapshot_device_is_one_line_naming_it(bad):
    with pytest.raises(ValueError, match=r"snapshot_device must be None or a torch device.*" + re.escape(repr(bad))):
        BudgetedRun([16, 32], *make(), snapshot_device=bad)
