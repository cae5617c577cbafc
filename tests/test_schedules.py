"""Profiles, BudgetScheduler, TimeBudgetScheduler and the budget helpers."""

from __future__ import annotations

import io
import math

import pytest
import torch

from budgetopt import PROFILES, BudgetScheduler, TimeBudgetScheduler, budget_from_epochs, budget_from_fraction, get_profile

LR0 = 0.5

# The documented value of every profile at p = 1 (its default parameters).
END_VALUES = {
    "linear": 0.0,
    "step": 0.1**2,  # gamma ** len(milestones)
    "cosine": 0.0,
    "exp": 1e-3,  # end
    "poly": 0.0,
    "htd": 0.5 * (1 - math.tanh(3.0)),  # 0.0025
    "constant": 1.0,
    "rex": 0.0,
    "sqrt": 0.0,
    "wsd": 0.0,
}


def make_optimizer(lr: float = LR0) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(3))], lr=lr, momentum=0.9)


def lr_of(opt: torch.optim.Optimizer) -> float:
    return opt.param_groups[0]["lr"]


def rates(scheduler: BudgetScheduler, steps: int) -> list[float]:
    """The rate of each of ``steps`` training steps: read before the step, then step."""
    out = []
    for _ in range(steps):
        out.append(lr_of(scheduler.optimizer))
        scheduler.optimizer.step()
        scheduler.step()
    return out


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- profiles -------------------------------------------------------------------------


def test_every_profile_has_a_documented_end_value():
    assert set(END_VALUES) == set(PROFILES)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profile_starts_at_one(name):
    # htd starts at 0.5 * (1 - tanh(-6)) = 1 - 6.1e-6, as documented
    assert get_profile(name)(0.0) == pytest.approx(1.0, abs=1e-5 if name == "htd" else 0)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profile_reaches_its_documented_end_value(name):
    assert get_profile(name)(1.0) == pytest.approx(END_VALUES[name], rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("name", ["linear", "cosine", "rex", "sqrt", "wsd"])
def test_decay_to_zero_profiles_end_at_exactly_zero(name):
    assert get_profile(name)(1.0) == 0.0


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profile_is_monotone_non_increasing(name):
    fn = get_profile(name)
    values = [fn(i / 1000) for i in range(1001)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_profile_parameters_change_the_end_value():
    assert get_profile("step", milestones=(0.3, 0.6, 0.9), gamma=0.5)(1.0) == 0.5**3
    assert get_profile("exp", end=0.05)(1.0) == pytest.approx(0.05)
    assert get_profile("poly", power=1.0)(0.25) == 0.75
    assert get_profile("wsd", cooldown=0.5)(0.5) == 1.0
    assert get_profile("wsd", cooldown=0.5)(0.75) == 0.5
    assert get_profile("htd", lower=-3.0, upper=3.0)(0.5) == 0.5


def test_step_profile_drops_at_its_milestones():
    fn = get_profile("step", milestones=(0.5, 0.75), gamma=0.1)
    assert [fn(p) for p in (0.0, 0.49, 0.5, 0.74, 0.75, 1.0)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


# -- BudgetScheduler -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_scheduler_rate_of_step_t_is_lr0_times_profile_of_t_over_budget(name):
    budget = 20
    fn = get_profile(name)
    sched = BudgetScheduler(make_optimizer(), budget, name)
    assert rates(sched, budget) == [LR0 * fn(t / budget) for t in range(budget)]
    # after the T-th scheduler step the optimizer holds the end value, and keeps it
    assert lr_of(sched.optimizer) == LR0 * fn(1.0)
    assert rates(sched, 3) == [LR0 * fn(1.0)] * 3


def test_linear_lr_reaches_zero_at_budget():
    budget = 7
    sched = BudgetScheduler(make_optimizer(), budget)
    trace = rates(sched, budget)
    assert trace[0] == LR0  # the first step uses the peak rate
    assert trace[-1] == pytest.approx(LR0 / budget)  # the last step is not spent at 0
    assert min(trace) > 0
    assert lr_of(sched.optimizer) == 0.0  # exactly 0 after the budget


def test_scheduler_with_profile_parameters_follows_them():
    sched = BudgetScheduler(make_optimizer(), 10, "poly", power=3.0)
    assert rates(sched, 10) == pytest.approx([LR0 * (1 - t / 10) ** 3 for t in range(10)])


def test_warmup_ramps_linearly_then_runs_the_profile_over_the_rest():
    budget, warmup = 20, 4
    sched = BudgetScheduler(make_optimizer(), budget, "linear", warmup=warmup)
    trace = rates(sched, budget)
    assert trace[:warmup] == pytest.approx([LR0 * (t + 1) / (warmup + 1) for t in range(warmup)])
    assert trace[warmup] == LR0  # the profile starts at 1 right after the warmup
    assert trace[warmup:] == pytest.approx([LR0 * (1 - (t - warmup) / (budget - warmup)) for t in range(warmup, budget)])
    assert lr_of(sched.optimizer) == 0.0


def test_scheduler_scales_every_param_group_by_its_own_peak():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.1}])
    sched = BudgetScheduler(opt, 4)
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.75, 0.075])


def test_state_dict_round_trip_resumes_at_the_same_rate():
    budget = 30
    kwargs = dict(warmup=3, power=1.5)
    opt = make_optimizer()
    sched = BudgetScheduler(opt, budget, "poly", **kwargs)
    rates(sched, 11)
    buffer = io.BytesIO()
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, buffer)
    expected = rates(sched, budget - 11 + 2)

    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)  # plain data only: no functions
    fresh_opt = make_optimizer()
    fresh = BudgetScheduler(fresh_opt, budget, "poly", **kwargs)
    fresh_opt.load_state_dict(checkpoint["optimizer"])
    fresh.load_state_dict(checkpoint["scheduler"])
    assert fresh.last_epoch == 11
    assert rates(fresh, budget - 11 + 2) == expected


def test_state_dict_carries_budget_and_profile():
    opt = make_optimizer()
    sched = BudgetScheduler(opt, 50, "wsd", cooldown=0.5)
    rates(sched, 30)
    fresh = BudgetScheduler(make_optimizer(), 10)  # built with other settings
    fresh.load_state_dict(sched.state_dict())
    assert (fresh.budget, fresh.profile, fresh.profile_params) == (50, "wsd", {"cooldown": 0.5})
    assert fresh.multiplier(40) == sched.multiplier(40) == pytest.approx(0.4)


# -- TimeBudgetScheduler ---------------------------------------------------------------


def test_time_budget_rate_follows_elapsed_over_seconds():
    clock = FakeClock()
    opt = make_optimizer()
    sched = TimeBudgetScheduler(opt, seconds=10.0, clock=clock)
    assert lr_of(opt) == LR0
    for elapsed in (2.5, 5.0, 9.0):
        clock.now = 100.0 + elapsed
        opt.step()
        sched.step()
        assert lr_of(opt) == pytest.approx(LR0 * (1 - elapsed / 10.0))
        assert sched.progress == pytest.approx(elapsed / 10.0)
        assert not sched.expired


def test_time_budget_expires_at_the_deadline_with_rate_zero():
    clock = FakeClock()
    opt = make_optimizer()
    sched = TimeBudgetScheduler(opt, seconds=10.0, clock=clock)
    clock.now += 10.0
    opt.step()
    sched.step()
    assert sched.expired
    assert lr_of(opt) == 0.0
    clock.now += 50.0  # past the deadline the rate stays at the end value
    sched.step()
    assert lr_of(opt) == 0.0 and sched.progress == 1.0


def test_time_budget_follows_any_profile():
    clock = FakeClock()
    opt = make_optimizer()
    sched = TimeBudgetScheduler(opt, 8.0, "cosine", clock=clock)
    clock.now += 4.0
    opt.step()
    sched.step()
    assert lr_of(opt) == pytest.approx(LR0 * 0.5)


def test_time_budget_warmup_counts_iterations():
    clock = FakeClock()
    opt = make_optimizer()
    sched = TimeBudgetScheduler(opt, 10.0, warmup=3, clock=clock)
    trace = [lr_of(opt)]
    for _ in range(3):
        clock.now += 1.0
        opt.step()
        sched.step()
        trace.append(lr_of(opt))
    # steps 0..2 ramp regardless of the clock, step 3 follows elapsed (3 s of 10)
    assert trace == pytest.approx([LR0 * 1 / 4, LR0 * 2 / 4, LR0 * 3 / 4, LR0 * 0.7])


def test_time_budget_state_dict_keeps_elapsed_not_the_clock_reading():
    clock = FakeClock(100.0)
    opt = make_optimizer()
    sched = TimeBudgetScheduler(opt, 10.0, clock=clock)
    clock.now = 104.0
    opt.step()
    sched.step()
    state = sched.state_dict()
    assert state["elapsed"] == 4.0
    assert "_clock" not in state and "_fn" not in state

    later = FakeClock(5000.0)  # the resumed process has another clock origin
    fresh = TimeBudgetScheduler(make_optimizer(), 10.0, clock=later)
    fresh.load_state_dict(state)
    assert fresh.elapsed == 4.0
    later.now += 1.0
    fresh.optimizer.step()
    fresh.step()
    assert lr_of(fresh.optimizer) == pytest.approx(LR0 * 0.5)


# -- budget helpers --------------------------------------------------------------------


def test_budget_from_epochs_multiplies_and_rounds():
    assert budget_from_epochs(3, 100) == 300
    assert budget_from_epochs(2.5, 11) == 28  # round(27.5) = 28
    assert budget_from_epochs(0.001, 100) == 1  # never below one iteration


def test_budget_from_fraction_of_a_full_budget():
    assert budget_from_fraction(0.1, 2700) == 270
    assert budget_from_fraction(1, 2700) == 2700
    assert budget_from_fraction(1e-6, 2700) == 1


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "budget, error, match",
    [
        (0, ValueError, r"budget must be an integer >= 1, got 0"),
        (-5, ValueError, r"budget must be an integer >= 1, got -5"),
        (2.5, TypeError, r"budget must be an integer number of iterations, got 2\.5"),
        (True, TypeError, r"budget must be an integer number of iterations, got True"),
        ("100", TypeError, r"got '100'"),
    ],
)
def test_bad_budget_is_rejected_by_name(budget, error, match):
    with pytest.raises(error, match=match):
        BudgetScheduler(make_optimizer(), budget)


def test_unknown_profile_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match=r"profile must be one of linear, step, .*; got 'cosin'"):
        BudgetScheduler(make_optimizer(), 10, "cosin")


@pytest.mark.parametrize("cooldown", [0, -0.1, 1.5])
def test_wsd_cooldown_outside_zero_one_is_rejected(cooldown):
    with pytest.raises(ValueError, match=rf"cooldown must be in \(0, 1\], got {cooldown}"):
        BudgetScheduler(make_optimizer(), 10, "wsd", cooldown=cooldown)


def test_warmup_not_below_budget_is_rejected():
    with pytest.raises(ValueError, match=r"warmup must be smaller than the budget \(10 iterations\), got 10"):
        BudgetScheduler(make_optimizer(), 10, warmup=10)
    with pytest.raises(ValueError, match=r"warmup must be an integer >= 0, got -1"):
        BudgetScheduler(make_optimizer(), 10, warmup=-1)
    with pytest.raises(TypeError, match=r"warmup must be an integer number of iterations, got 1\.5"):
        BudgetScheduler(make_optimizer(), 10, warmup=1.5)


def test_optimizer_without_param_groups_is_rejected():
    opt = make_optimizer()
    opt.param_groups.clear()  # torch itself refuses to build an empty optimizer
    with pytest.raises(ValueError, match=r"optimizer has no param groups"):
        BudgetScheduler(opt, 10)
    with pytest.raises(ValueError, match=r"optimizer has no param groups"):
        TimeBudgetScheduler(opt, 10.0)


def test_non_optimizer_is_rejected():
    with pytest.raises(TypeError, match=r"optimizer must be a torch\.optim\.Optimizer, got list"):
        BudgetScheduler([torch.zeros(1)], 10)


@pytest.mark.parametrize(
    "name, params, match",
    [
        ("linear", {"power": 2}, r"profile 'linear' takes no parameter 'power' \(allowed: none\)"),
        ("poly", {"cooldown": 0.2}, r"profile 'poly' takes no parameter 'cooldown' \(allowed: power\)"),
        ("poly", {"power": 0}, r"power must be a number > 0, got 0"),
        ("exp", {"end": 1.0}, r"end must be a number in \(0, 1\), got 1\.0"),
        ("exp", {"end": 0}, r"end must be a number in \(0, 1\), got 0"),
        ("step", {"gamma": 2.0}, r"gamma must be in \(0, 1\], got 2\.0"),
        ("step", {"milestones": (0.6, 0.3)}, r"milestones must be increasing fractions in \(0, 1\), got \(0\.6, 0\.3\)"),
        ("step", {"milestones": (0.5, 1.2)}, r"got \(0\.5, 1\.2\)"),
        ("htd", {"lower": 3.0, "upper": -6.0}, r"htd needs lower < upper, got lower=3\.0, upper=-6\.0"),
    ],
)
def test_bad_profile_parameter_is_rejected_by_name(name, params, match):
    with pytest.raises(ValueError, match=match):
        BudgetScheduler(make_optimizer(), 10, name, **params)


@pytest.mark.parametrize("seconds", [0, -3.0, True, "60"])
def test_bad_time_budget_is_rejected(seconds):
    with pytest.raises(ValueError, match=rf"seconds must be a number > 0, got {seconds!r}"):
        TimeBudgetScheduler(make_optimizer(), seconds, clock=FakeClock())


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: budget_from_epochs(0, 100), ValueError, r"epochs must be a number > 0, got 0"),
        (lambda: budget_from_epochs(2, 0), ValueError, r"iterations_per_epoch must be an integer >= 1, got 0"),
        (
            lambda: budget_from_epochs(2, 2.5), TypeError,
            r"iterations_per_epoch must be an integer number of iterations, got 2\.5",
        ),
        (lambda: budget_from_fraction(0, 100), ValueError, r"fraction must be in \(0, 1\], got 0"),
        (lambda: budget_from_fraction(1.5, 100), ValueError, r"fraction must be in \(0, 1\], got 1\.5"),
        (lambda: budget_from_fraction(0.5, True), TypeError, r"full_budget must be an integer number of iterations, got True"),
    ],
)
def test_bad_budget_helper_input_is_rejected_by_name(call, error, match):
    with pytest.raises(error, match=match):
        call()
