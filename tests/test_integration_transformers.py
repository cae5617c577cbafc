"""BudgetTrainerCallback in a real Hugging Face Trainer (CPU, a tiny BERT built from a config,
no download, on synthetic token data): the rate of every optimizer step is BudgetedRun's,
evaluation runs at the rungs only, restart and branch restore their state, a study with
BudgetPruner prunes and completes, and bad settings are one-line errors."""

from __future__ import annotations

import importlib
import importlib.util
import logging

import optuna
import pytest
import torch

import budgetopt
from budgetopt import BudgetedRun
from budgetopt.modes import compute

from conftest import IN_CI

if importlib.util.find_spec("transformers") is None:
    if IN_CI:
        raise ImportError("required in CI: transformers (pip install 'budgetopt[transformers]')")
    pytest.skip("transformers is not installed (pip install 'budgetopt[transformers]')", allow_module_level=True)
# the integration first: it repairs torchvision, which transformers imports
BudgetTrainerCallback = importlib.import_module("budgetopt.integration.transformers").BudgetTrainerCallback
transformers = importlib.import_module("transformers")
from tiny_bert import accuracy, dataset, tiny_bert  # noqa: E402

transformers.logging.set_verbosity_error()
logging.getLogger("transformers").setLevel(logging.ERROR)
BUDGETS = [4, 8, 16]
LR = 3e-3


TRAIN, VAL = dataset(256, 0), dataset(64, 1)


def make_trainer(tmp_path, callback, model=None, lr=LR, extra_callbacks=(), **overrides):
    settings = dict(
        output_dir=str(tmp_path), learning_rate=lr, lr_scheduler_type="constant", max_steps=callback.max_steps,
        eval_strategy="no", save_strategy="no", report_to="none", logging_steps=1, per_device_train_batch_size=16,
        per_device_eval_batch_size=64, use_cpu=True, disable_tqdm=True, seed=0, dataloader_num_workers=0,
    )
    settings.update(overrides)
    return transformers.Trainer(
        model=model or tiny_bert(), args=transformers.TrainingArguments(**settings), train_dataset=TRAIN,
        eval_dataset=VAL, compute_metrics=accuracy, callbacks=[callback, *extra_callbacks],
    )


def reference_trace(mode: str) -> list[float]:
    """The rates a plain BudgetedRun loop gives each step (a throwaway model: rates only)."""
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    run = BudgetedRun(BUDGETS, model, optimizer, mode=mode)
    for segment in run.segments():
        for _ in segment:
            optimizer.step()
        segment.report(0.0)
    return run.lr_trace


class Evaluations(transformers.TrainerCallback):
    """Records the global step of every evaluation and the parameters at chosen steps' starts."""

    def __init__(self, at=()):
        self.steps, self.at, self.params, self.rates = [], set(at), {}, []

    def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        self.rates.append(optimizer.param_groups[0]["lr"])  # the rate this optimizer step uses

    def on_evaluate(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step in self.at:
            self.params[state.global_step] = {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("mode", ["restart", "branch", "continue"])
def test_every_step_trains_at_the_modes_rate_and_rungs_are_evaluated(mode, tmp_path):
    callback = BudgetTrainerCallback(BUDGETS, monitor="eval_accuracy", mode=mode)
    seen = Evaluations()
    trainer = make_trainer(tmp_path, callback, extra_callbacks=[seen])
    trainer.train()
    logged = [h["learning_rate"] for h in trainer.state.log_history if "learning_rate" in h]
    assert callback.run.lr_trace == pytest.approx(reference_trace(mode), rel=1e-12)
    assert seen.rates == pytest.approx(callback.run.lr_trace, rel=1e-12)  # the rate each optimizer step used
    assert logged == pytest.approx(callback.run.lr_trace, rel=1e-6)  # and the one the Trainer logged
    assert trainer.state.global_step == callback.max_steps == compute(mode, BUDGETS)
    rung_steps = [compute(mode, BUDGETS, k) for k in range(len(BUDGETS))]
    assert seen.steps == rung_steps  # evaluated at the rungs and only there
    assert sorted(callback.run.rung_values) == BUDGETS
    assert callback.value == callback.run.rung_values[BUDGETS[-1]]
    assert callback.run.ended == f"completed at budget {BUDGETS[-1]}"


def test_restart_begins_every_budget_from_the_initial_state(tmp_path):
    callback = BudgetTrainerCallback(BUDGETS, monitor="eval_loss", mode="restart")
    starts = [0, 4, 12]  # restart's global steps where budgets 4, 8 and 16 begin
    seen = Evaluations(at=starts)
    make_trainer(tmp_path, callback, extra_callbacks=[seen]).train()
    for step in starts[1:]:
        for name, tensor in seen.params[0].items():
            assert torch.equal(seen.params[step][name], tensor), (step, name)


def test_branch_resumes_the_trunk_after_each_cooldown(tmp_path):
    callback = BudgetTrainerCallback([8, 16], monitor="eval_loss", mode="branch", cooldown=0.5)
    # branch 8/16 at cooldown 0.5: trunk 0-3, cooldown 4-7 (rung 8), trunk resumes at step 8 from step 4's state
    seen = Evaluations(at=[4, 8])
    make_trainer(tmp_path, callback, extra_callbacks=[seen]).train()
    for name, tensor in seen.params[4].items():
        assert torch.equal(seen.params[8][name], tensor), name


def test_a_study_with_budget_pruner_prunes_and_completes(tmp_path):
    pruner = budgetopt.BudgetPruner(min_budget=4, max_budget=36, reduction_factor=3)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    study.enqueue_trial({"lr": 3e-3})
    study.enqueue_trial({"lr": 1e-7})  # far too small: behind the first trial at budget 4

    def objective(trial):
        callback = BudgetTrainerCallback(trial, monitor="eval_accuracy")
        make_trainer(tmp_path, callback, lr=trial.suggest_float("lr", 1e-7, 1e-2, log=True)).train()
        return callback.value

    study.optimize(objective, n_trials=2)
    done, pruned = study.trials
    assert done.state == optuna.trial.TrialState.COMPLETE
    assert sorted(done.intermediate_values) == [4, 12, 36] and done.value == done.intermediate_values[36]
    assert done.user_attrs["budgetopt.compute"] == 52 and done.user_attrs["budgetopt.ended"] == "completed at budget 36"
    assert pruned.state == optuna.trial.TrialState.PRUNED
    assert list(pruned.intermediate_values) == [4]
    assert pruned.user_attrs["budgetopt.ended"] == "pruned at budget 4"


BAD = [
    ("scheduler", dict(lr_scheduler_type="linear"), r"^lr_scheduler_type='linear': .*set lr_scheduler_type='constant'$"),
    ("warmup", dict(warmup_steps=2), r"^warmup_steps=2 .*give BudgetTrainerCallback\(\.\.\., warmup=ITERATIONS\) instead$"),
    ("max_steps", dict(max_steps=10), r"^max_steps=10 \(10 optimizer steps\) contradicts the plan \(restart over budgets "
                                      r"\[4, 8, 16\] takes 28 optimizer steps\).*here 28$"),
    ("eval_strategy", dict(eval_strategy="steps", eval_steps=5), r"^eval_strategy='steps' evaluates between the rungs"),
    ("best_model", dict(load_best_model_at_end=True, save_strategy="best", metric_for_best_model="eval_accuracy"),
     r"^load_best_model_at_end=True would load an earlier rung's checkpoint"),
]


@pytest.mark.parametrize("setting, overrides, message", BAD, ids=[b[0] for b in BAD])
def test_settings_that_fight_the_plan_are_one_line_errors(setting, overrides, message, tmp_path):
    callback = BudgetTrainerCallback(BUDGETS, monitor="eval_accuracy")
    with pytest.raises(ValueError, match=message) as error:
        make_trainer(tmp_path, callback, **overrides).train()
    assert "\n" not in str(error.value)


def test_a_monitor_the_evaluation_did_not_compute_names_what_it_did(tmp_path):
    callback = BudgetTrainerCallback(BUDGETS, monitor="accuracy")
    with pytest.raises(ValueError, match=r"monitor='accuracy' is not among .* budget 4 \(got: .*eval_accuracy"):
        make_trainer(tmp_path, callback).train()


def test_checkpoints_save_with_the_following_scheduler(tmp_path):
    callback = BudgetTrainerCallback(BUDGETS, monitor="eval_loss", mode="branch")
    make_trainer(tmp_path, callback, save_strategy="steps", save_steps=5).train()  # LambdaLR.state_dict() pickles
    assert {p.name for p in tmp_path.glob("checkpoint-*")} == {"checkpoint-5", "checkpoint-10", "checkpoint-15",
                                                              "checkpoint-20", "checkpoint-22"}


def test_a_second_train_on_a_trials_callback_is_refused(tmp_path):
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    callback = BudgetTrainerCallback(trial, monitor="eval_loss", budgets=[4, 8])
    trainer = make_trainer(tmp_path, callback)
    trainer.train()
    with pytest.raises(RuntimeError, match=r"this trial's run already trained \(train\(\) called twice\)"):
        trainer.train()
