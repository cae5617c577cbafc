"""BudgetPruningCallback in a real Lightning Trainer (CPU, a tiny MLP on digits), checked
against the plain BudgetedRun loop: same rate at every step, same weights, same rungs."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
import warnings

import optuna
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import budgetopt
from budgetopt.data import load_digits
from budgetopt.modes import compute

from conftest import IN_CI

if importlib.util.find_spec("lightning") is None:
    if IN_CI:
        raise ImportError("required in CI: lightning (pip install 'budgetopt[lightning]')")
    pytest.skip("lightning is not installed (pip install 'budgetopt[lightning]')", allow_module_level=True)
# the integration first: it repairs torchvision, which lightning imports through torchmetrics
BudgetPruningCallback = importlib.import_module("budgetopt.integration.lightning").BudgetPruningCallback
L = importlib.import_module("lightning.pytorch")

logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*does not have many workers:UserWarning"),
    # lightning 2.6.6 builds torch pytree LeafSpecs, deprecated in torch 2.13
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*is deprecated:FutureWarning"),
]

BUDGETS = [5, 15, 45]  # 19 batches of 64 per epoch: every mode crosses epochs
DIGITS = load_digits()


def train_loader(batch_size: int = 64) -> DataLoader:
    x, y = DIGITS.train
    generator = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(x.flatten(1), y), batch_size=batch_size, shuffle=True, generator=generator)


def val_loader() -> DataLoader:
    x, y = DIGITS.val
    return DataLoader(TensorDataset(x.flatten(1), y), batch_size=len(y))


class LitMLP(L.LightningModule):
    """64-32-10 MLP, SGD with momentum; records the rate each training step sees."""

    def __init__(self, lr: float = 0.1, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        self.lr = lr
        self.step_lrs: list = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        self.step_lrs.append(self.trainer.optimizers[0].param_groups[0]["lr"])
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_acc", (self(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def make_trainer(callback, **options) -> L.Trainer:
    defaults = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    return L.Trainer(callbacks=[callback], **{**defaults, **options})


def fit(source, mode="restart", model=None, loader=None, **options):
    model = model if model is not None else LitMLP()
    callback = BudgetPruningCallback(source, monitor="val_acc", mode=mode)
    trainer = make_trainer(callback, **options)
    trainer.fit(model, loader if loader is not None else train_loader(), val_loader())
    return callback, model, trainer


def plain_loop(mode, budgets=BUDGETS):
    """The same model, optimizer and data order in a plain BudgetedRun loop."""
    model = LitMLP()
    optimizer = model.configure_optimizers()
    run = budgetopt.BudgetedRun(budgets, model, optimizer, mode=mode)
    loader = train_loader()
    for segment in run.segments():
        for x, y in segment.batches(loader, replay=False):  # Lightning's order: one stream
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            run.record_loss(loss)
        model.eval()
        with torch.no_grad():
            x, y = DIGITS.val
            accuracy = (model(x.flatten(1)).argmax(1) == y).float().mean().item()
        model.train()
        segment.report(accuracy)
    return run, model


@pytest.mark.parametrize("mode", budgetopt.MODES)
def test_each_mode_matches_the_plain_loop(mode):
    callback, model, trainer = fit(BUDGETS, mode)
    run, plain_model = plain_loop(mode)
    assert callback.run.lr_trace == run.lr_trace  # the rate of every optimizer step...
    assert model.step_lrs == run.lr_trace  # ...is the one training_step saw
    for (name, a), b in zip(model.named_parameters(), plain_model.parameters()):
        assert torch.equal(a, b), name
    assert callback.run.rung_values == run.rung_values
    assert callback.value == run.value
    assert callback.run.segment_compute == run.segment_compute
    assert trainer.global_step == callback.run.compute == compute(mode, BUDGETS)
    assert callback.run.ended == f"completed at budget {BUDGETS[-1]}"


def test_study_with_budget_pruner_prunes_and_completes():
    pruner = budgetopt.BudgetPruner(min_budget=4, max_budget=36, reduction_factor=3)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    study.enqueue_trial({"lr": 0.3})
    study.enqueue_trial({"lr": 1e-4})  # far too small: behind the first trial at budget 4

    def objective(trial):
        callback, _, _ = fit(trial, model=LitMLP(lr=trial.suggest_float("lr", 1e-5, 1.0, log=True)))
        return callback.value

    study.optimize(objective, n_trials=2)
    done, pruned = study.trials
    assert done.state == optuna.trial.TrialState.COMPLETE
    assert sorted(done.intermediate_values) == [4, 12, 36] and done.value == done.intermediate_values[36]
    attrs = done.user_attrs
    assert attrs["budgetopt.mode"] == "restart" and attrs["budgetopt.plan"] == [4, 12, 36]
    assert attrs["budgetopt.compute"] == 52 and attrs["budgetopt.ended"] == "completed at budget 36"
    assert attrs["budgetopt.rung_values"] == {str(b): v for b, v in done.intermediate_values.items()}
    assert attrs["budgetopt.lr_trace"][0] == [0, pytest.approx(0.3)]
    assert pruned.state == optuna.trial.TrialState.PRUNED
    assert list(pruned.intermediate_values) == [4]
    assert pruned.user_attrs["budgetopt.ended"] == "pruned at budget 4" and pruned.user_attrs["budgetopt.compute"] == 4


def test_gradient_accumulation_counts_optimizer_steps():
    loader = train_loader(batch_size=100)  # 12 batches: 6 optimizer steps of 2 batches per epoch
    callback, model, trainer = fit([4, 8], loader=loader, accumulate_grad_batches=2)
    layer = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    reference = budgetopt.BudgetedRun([4, 8], layer, optimizer)  # the rates depend on the budgets alone
    for segment in reference.segments():
        for _ in segment:
            optimizer.step()
        segment.report(0.0)
    assert callback.run.lr_trace == reference.lr_trace
    assert model.step_lrs == [lr for lr in reference.lr_trace for _ in range(2)]  # both batches of a step, one rate
    assert trainer.global_step == callback.run.compute == 12


class TwoOptimizers(LitMLP):
    """Manual optimization, one SGD per layer: together the same updates as one SGD."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        first, second = self.optimizers()
        self.step_lrs.append((first.param_groups[0]["lr"], second.param_groups[0]["lr"]))
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        first.zero_grad()
        second.zero_grad()
        self.manual_backward(loss)
        first.step()
        second.step()
        return loss

    def configure_optimizers(self):
        return [torch.optim.SGD(layer.parameters(), lr=self.lr, momentum=0.9) for layer in (self.net[0], self.net[2])]


def test_several_optimizers_follow_one_schedule_and_are_restored():
    callback, model, trainer = fit(BUDGETS, "restart", model=TwoOptimizers())
    run, plain_model = plain_loop("restart")
    assert model.step_lrs == [(lr, lr) for lr in run.lr_trace]
    for a, b in zip(model.parameters(), plain_model.parameters()):  # both momentum states restored at each budget
        assert torch.equal(a, b)
    assert callback.run.compute == compute("restart", BUDGETS) and trainer.global_step == 2 * callback.run.compute


class WithScheduler(LitMLP):
    def configure_optimizers(self):
        optimizer = super().configure_optimizers()
        return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 10)}


class NoValidation(LitMLP):
    validation_step = None


@pytest.mark.parametrize(
    "setting, run_fit, message",
    [
        ("lr scheduler", lambda: fit(BUDGETS, model=WithScheduler()), r"configure_optimizers returns an LR scheduler \(StepLR\)"),
        ("max_steps", lambda: fit(BUDGETS, max_steps=50), r"max_steps=50 stops training before the plan ends \(restart .* 65 "),
        ("max_epochs", lambda: fit(BUDGETS, max_epochs=3), r"max_epochs=3 epochs of 19 optimizer steps .* 65 optimizer steps"),
        ("min_steps", lambda: fit(BUDGETS, min_steps=100), r"min_steps=100 trains past the plan's end"),
        ("monitor", lambda: fit_monitor("val_loss"), r"monitor='val_loss' was not logged .* at budget 5 \(logged: val_acc\)"),
        ("no validation", lambda: fit_without_validation(), r"this Trainer runs no validation"),
    ],
)
def test_bad_settings_get_one_line_errors(setting, run_fit, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=message) as error:
            run_fit()
    assert "\n" not in str(error.value)


def fit_monitor(monitor):
    callback = BudgetPruningCallback(BUDGETS, monitor=monitor)
    make_trainer(callback).fit(LitMLP(), train_loader(), val_loader())


def fit_without_validation():
    callback = BudgetPruningCallback(BUDGETS, monitor="val_acc")
    make_trainer(callback).fit(LitMLP(), train_loader())


def test_divergence_ends_the_trial_as_pruned_with_its_reason():
    study = optuna.create_study(direction="maximize")

    def objective(trial):
        callback = BudgetPruningCallback(trial, monitor="val_acc", budgets=[40, 80], loss_check_every=1)
        make_trainer(callback).fit(LitMLP(lr=1e12), train_loader(), val_loader())
        return callback.value

    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.user_attrs["budgetopt.ended"].startswith("diverged: training loss is")
    assert not trial.intermediate_values and trial.user_attrs["budgetopt.compute"] < 40
    assert math.isfinite(trial.user_attrs["budgetopt.lr_trace"][0][1])


@pytest.mark.parametrize("mode", ["restart", "branch"])
def test_the_callback_keeps_each_budgets_annealed_model(mode, tmp_path):
    """``keep_models`` through the callback: each frontier row's kept model, loaded into a
    fresh module, scores exactly what its trial reported there."""
    from optuna.artifacts import FileSystemArtifactStore

    store = FileSystemArtifactStore(str(tmp_path))
    pruner = budgetopt.BudgetPruner(min_budget=4, max_budget=36, reduction_factor=3)
    study = optuna.create_study(direction="maximize", pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial):
        model = LitMLP(lr=trial.suggest_float("lr", 1e-3, 0.5, log=True))
        callback = BudgetPruningCallback(trial, monitor="val_acc", mode=mode, keep_models=1, model_store=store)
        make_trainer(callback).fit(model, train_loader(), val_loader())
        return callback.value

    study.optimize(objective, n_trials=4)
    front = budgetopt.frontier(study)
    assert [r.budget for r in front] == [4, 12, 36]
    x, y = DIGITS.val
    for row in front:
        model = LitMLP(seed=123)
        assert budgetopt.load_model(study, row.budget, model, store) == row.trial
        with torch.no_grad():
            assert (model(x.flatten(1)).argmax(1) == y).float().mean().item() == row.value
