"""The study-script protocol: loading, its one-line errors, and training through it."""

from __future__ import annotations

import re
import textwrap

import optuna
import pytest
import torch

import budgetopt  # noqa: F401
from budgetopt import BudgetPruner, study_script
from budgetopt.attrs import ATTR_SEED, ATTR_TEST_VALUE
from budgetopt.study_script import (
    StudyScriptError,
    builtin_studies,
    load_study_script,
    make_objective,
    train_config,
)

# The manual's example, as written in budgetopt/study_script.py's docstring.
MINIMAL = textwrap.dedent(
    study_script.__doc__.split("A minimal script (a complete, runnable ``my_study.py``)::")[1].split("Then, with Optuna")[0]
)
PARAMS = {"lr": 0.1}


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "my_study.py"
    path.write_text(MINIMAL)
    return load_study_script(path)


def write(tmp_path, text, name="user_study.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_manual_example_is_a_complete_study_script(tiny):
    assert tiny.name == "my_study"
    assert tiny.direction == "maximize"
    assert tiny.ladder.rungs == (30, 90, 270, 810)
    assert tiny.quick_ladder == tiny.ladder  # quick_ladder is optional
    result = train_config(tiny, PARAMS, [30, 90])
    assert set(result.rung_values) == {30, 90}
    assert 0.5 < result.rung_values[90] <= 1.0  # a linear model learns digits in 90 steps
    assert 0.5 < result.test_value <= 1.0


def test_builtin_studies_load_by_name():
    assert builtin_studies() == ("cifar10", "digits", "fashion_mlp", "fashion_mlp_fixed_lr", "fashion_mnist")
    fashion = load_study_script("fashion_mnist")
    assert fashion.ladder.rungs == (27, 81, 243, 729)  # the reference ladder
    assert load_study_script("fashion-mnist").module is fashion.module
    assert load_study_script("digits").ladder_for(quick=True).rungs == (3, 9, 27, 81)


def test_builtin_search_spaces_span_two_decades_of_learning_rate():
    for name in ("fashion_mnist", "digits", "cifar10"):
        trial = optuna.create_study().ask()
        params = load_study_script(name).search_space(trial)
        lr = trial.distributions["lr"]
        assert lr.log and lr.high / lr.low >= 100, name
        assert {"lr", "weight_decay", "momentum", "label_smoothing"} <= set(params), name


def test_unknown_study_lists_the_known_ones():
    known = r"cifar10, digits, fashion_mlp, fashion_mlp_fixed_lr, fashion_mnist"
    with pytest.raises(StudyScriptError, match=r"unknown study 'mnist'.*" + known) as error:
        load_study_script("mnist")
    assert "\n" not in str(error.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(StudyScriptError, match=r"study script .*nowhere\.py does not exist"):
        load_study_script(tmp_path / "nowhere.py")
    with pytest.raises(StudyScriptError, match="does not exist"):
        load_study_script(str(tmp_path / "nowhere.py"))


def test_script_that_raises_on_import_is_wrapped_in_one_line(tmp_path):
    path = write(tmp_path, "import torch\nraise RuntimeError('no GPU here\\nsecond line')\n")
    with pytest.raises(StudyScriptError) as error:
        load_study_script(path)
    message = str(error.value)
    assert message == (
        f"study script {path} failed to import: RuntimeError: no GPU here second line (at {path}:2 in <module>)"
    )
    assert isinstance(error.value.__cause__, RuntimeError)  # BUDGETOPT_DEBUG=1 shows the script's own traceback


def test_missing_protocol_functions_are_named(tmp_path):
    text = MINIMAL.replace("def train_step(", "def _train_step(").replace("def evaluate(", "def _evaluate(")
    with pytest.raises(StudyScriptError, match=r"it lacks train_step, evaluate \(required: direction, ladder,") as error:
        load_study_script(write(tmp_path, text))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (('direction = "maximize"', 'direction = "up"'), r"direction must be one of maximize, minimize, got 'up'"),
        (("ladder = (30, 810, 3)", "ladder = (30, 810)"), r"ladder must be \(min_budget, max_budget, reduction_factor\)"),
        (("ladder = (30, 810, 3)", "ladder = (810, 30, 3)"), r"ladder \(810, 30, 3\) is not a ladder: max_budget must be >="),
        (("ladder = (30, 810, 3)", "ladder = (30, 810, 3)\nquick_ladder = (3, 9, 1)"), r"quick_ladder .*reduction_factor"),
        (("def build(params, device):", "build = 3\ndef _build(params, device):"), r"build must be a function, got int"),
        (("def build(params, device):", "def build(params):"), r"build\(params\) cannot be called as build\(params, device\)"),
        (
            ("def load_data(data_dir=None, quick=False):", "def load_data():"),
            r"load_data\(\) cannot be called as load_data\(data_dir=..., quick=...\)",
        ),
    ],
)
def test_protocol_values_are_checked(tmp_path, change, match):
    with pytest.raises(StudyScriptError, match=match):
        load_study_script(write(tmp_path, MINIMAL.replace(*change)))


def test_restart_rung_is_a_fresh_run_of_that_budget(tiny):
    # Restart mode restores the weights *and* the batch order, so its model at a budget
    # is exactly an independent run of that budget: the paper's setting.
    ladder = train_config(tiny, PARAMS, [10, 30], mode="restart", seed=3)
    alone = train_config(tiny, PARAMS, [30], mode="restart", seed=3)
    assert ladder.rung_values[30] == alone.rung_values[30]
    assert ladder.compute == 40 and alone.compute == 30
    assert train_config(tiny, PARAMS, [10, 30], mode="continue", seed=3).compute == 30


def test_train_config_is_seeded(tiny):
    a, b = (train_config(tiny, PARAMS, [20], seed=1) for _ in range(2))
    c = train_config(tiny, PARAMS, [20], seed=2)
    assert a.rung_values == b.rung_values and a.test_value == b.test_value
    assert c.rung_values != a.rung_values


def test_diverged_config_ends_with_its_reason(tiny):
    result = train_config(tiny, {"lr": float("inf")}, [10, 30])  # weights become inf/NaN
    assert result.diverged and result.diverged.startswith("diverged")
    assert result.rung_values == {} and result.value is None and result.test_value is None


def test_objective_takes_budgets_from_the_budget_pruner_and_records_attrs(tiny):
    study = optuna.create_study(
        direction=tiny.direction,
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=BudgetPruner(min_budget=10, max_budget=30, reduction_factor=3),
    )
    study.optimize(make_objective(tiny, mode="branch", seed=5, record_test=True), n_trials=4)
    completed = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert completed, "the first trial is the best so far at every rung: it completes"
    for trial in study.trials:
        assert trial.user_attrs[ATTR_SEED] == 5 + trial.number
        assert set(trial.intermediate_values) <= {10, 30}
    for trial in completed:
        assert trial.value == trial.intermediate_values[30]
        assert trial.user_attrs["budgetopt.compute"] == 30 + 5  # branch: last budget + the cooldown of 10 (0.5)
        assert 0 <= trial.user_attrs[ATTR_TEST_VALUE] <= 1


def test_continue_baseline_runs_under_optunas_successive_halving(tiny):
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=5, reduction_factor=3),
    )
    study.optimize(make_objective(tiny, mode="continue", budgets=[5, 15, 45]), n_trials=6)
    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.PRUNED in states and optuna.trial.TrialState.COMPLETE in states
    for trial in study.trials:
        assert set(trial.intermediate_values) <= {5, 15, 45}
        assert ATTR_TEST_VALUE not in trial.user_attrs  # the test split is not touched unless asked


def test_objective_without_budgets_or_budget_pruner_says_what_to_do(tiny):
    study = optuna.create_study()
    with pytest.raises(ValueError, match="no BudgetPruner"):
        study.optimize(make_objective(tiny), n_trials=1, catch=())


def test_cifar10_study_code_path_on_fake_data():
    cifar = load_study_script("cifar10")
    data = cifar.load_data(quick=True, fake=True, batch_size=4)
    assert (len(data.train), len(data.val), len(data.test)) == (64, 16, 16)
    x, y = next(iter(cifar.module.batches(data, seed=0, device="cpu")))
    assert x.shape == (4, 3, 32, 32) and y.dtype == torch.long
    params = {"lr": 0.05, "weight_decay": 5e-4, "momentum": 0.9, "label_smoothing": 0.1}
    model, _ = cifar.build(params, "cpu")
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)  # the CIFAR stem
    assert isinstance(model.maxpool, torch.nn.Identity)
    result = train_config(cifar, params, [2, 4], mode="branch", data=data)
    assert result.compute == 4 + 1 and result.diverged is None
    assert all(0 <= v <= 1 for v in [*result.rung_values.values(), result.test_value])


def test_cifar10_missing_data_dir_is_named(tmp_path):
    missing = tmp_path / "no-cifar"
    with pytest.raises(FileNotFoundError, match=re.escape(f"data directory {missing} does not exist")):
        load_study_script("cifar10").load_data(data_dir=missing)
