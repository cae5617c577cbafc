"""PyTorch Lightning: budget-aware training and pruning inside ``Trainer.fit``.

:class:`BudgetPruningCallback` takes the place of Optuna's
``PyTorchLightningPruningCallback``: the objective builds a ``Trainer`` with it and calls
``fit``; the callback trains the trial's plan of budgets in the chosen mode and reports
each rung's validation metric to the trial. Needs the ``lightning`` extra
(``pip install 'budgetopt[lightning]'``, which pins ``lightning==2.6.6``)::

    import lightning.pytorch as L
    from budgetopt.integration.lightning import BudgetPruningCallback

    def objective(trial):
        model = LitModel(lr=trial.suggest_float("lr", 1e-3, 1, log=True))  # its optimizer's lr is the peak rate
        budget = BudgetPruningCallback(trial, monitor="val_acc", mode="restart")
        trainer = L.Trainer(max_epochs=-1, callbacks=[budget], enable_checkpointing=False, logger=False)
        trainer.fit(model, train_loader, val_loader)  # raises optuna.TrialPruned when the pruner says so
        return budget.value                           # the metric at the largest budget reached

It is one :class:`~budgetopt.BudgetedRun` on the LightningModule and its optimizer, the
same object a plain loop uses (same schedules, modes, snapshots, user attrs), driven
from Lightning's hooks instead of a ``for`` loop.

Next to a CPU-only torch with PyPI's (CUDA) torchvision, import this module before
lightning: lightning imports torchvision through torchmetrics, and this module repairs
that import first (:func:`budgetopt.repair_torchvision_ops`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
import torch

from budgetopt._torchvision import repair_torchvision_ops
from budgetopt._validation import check_choice, check_iterations
from budgetopt.distributed import collective_of
from budgetopt.errors import InputError, InputTypeError
from budgetopt.ladder import Ladder
from budgetopt.modes import MODES
from budgetopt.run import BudgetedRun, HookDriver

repair_torchvision_ops()  # lightning imports torchvision through torchmetrics: make it load on a CPU-only torch
try:
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import Callback
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "budgetopt.integration.lightning needs PyTorch Lightning: pip install 'budgetopt[lightning]'"
    ) from error


class BudgetPruningCallback(Callback):
    """Trains a trial's budgets in ``Trainer.fit`` and prunes it, like Optuna's
    ``PyTorchLightningPruningCallback`` with budget-aware learning rates.

    What it does, in Lightning's hooks:

    - **Learning rate.** Before every optimizer step, the rate of each param group is
      the group's peak (its ``lr`` when ``configure_optimizers`` returned it) times the
      mode's schedule for the current budget (:class:`~budgetopt.BudgetedRun`: restart,
      branch or continue, with ``profile``, ``warmup``, ``cooldown``).
    - **Budgets** count optimizer steps, Lightning's ``trainer.global_step``. With
      ``accumulate_grad_batches=k`` a step takes ``k`` batches (``ceil(len / k)`` steps
      per epoch: Lightning steps on an epoch's last batch) and the rate changes only at
      steps. With manual optimization and several optimizers, one training batch in
      which any optimizer stepped is one step of the budget, and every optimizer's
      groups follow the same schedule from their own peak rates; restart and branch
      save and restore all of them.
    - **Rungs.** When a budget's last step is done, Lightning's validation loop runs
      right then (mid-epoch if need be; it runs only at rungs: ``val_check_interval``
      and ``check_val_every_n_epoch`` are not used), and the logged ``monitor`` metric
      is reported as ``trial.report(value, step=budget)``; ``optuna.TrialPruned``
      propagates out of ``fit`` when the pruner stops the trial, as with Optuna's
      callback. After the last budget the callback stops the Trainer: leave
      ``max_steps`` unset (``max_epochs=-1`` silences Lightning's default-epochs
      warning).
    - **Modes.** ``restart`` restores the initial model and optimizer state before
      each budget after the first; ``branch`` snapshots the constant-rate trunk before
      each cooldown and restores it after the rung; ``continue`` runs one schedule.
      Restores happen at the first batch after the rung's validation, so callbacks
      that save checkpoints at validation end save the rung's model.
    - **Data order.** Lightning iterates the DataLoader, so every mode reads one stream
      of batches across epochs (``Segment.batches(loader, replay=False)`` in a plain
      loop): restart's later budgets retrain on the batches after the previous
      budget's, not on a replay of the first ones.
    - **User attrs** of the trial: those of :class:`~budgetopt.BudgetedRun` (mode,
      plan, profile, rung values, compute, why it ended, learning-rate trace), so the
      dashboard shows a Lightning study like any other.

    **Several processes (DDP).** Under ``strategy="ddp"`` give the callback
    ``optuna_integration.TorchDistributedTrial(trial)`` on every rank (rank 0 owns the
    trial, the others pass None; start the ranks with ``torchrun`` and call
    ``torch.distributed.init_process_group`` before the Trainer, as Optuna's distributed
    recipe does): the plan, each rung's value (rank 0's: log the metric with
    ``sync_dist=True`` to report the global one) and the prune decision are broadcast, every
    rank checks its loss at the same steps and one rank's NaN ends all, restart and branch
    restore each rank's replica at the same step; ``optuna.TrialPruned`` leaves ``fit`` on
    every rank. Without a TorchDistributedTrial a Trainer of several processes is refused
    in one line. Not supported: ``ddp_spawn`` (the trial would have to cross the spawn).

    Divergence: the training loss that
    ``training_step`` returns is checked for NaN/inf at every ``loss_check_every``-th
    optimizer step (default 25; one device sync each) and the parameters at every rung;
    a diverged trial ends as pruned with its reason (``BudgetedRun.record_loss``).

    Errors (one-line ``ValueError`` naming the setting, raised from ``fit``): an LR
    scheduler returned by ``configure_optimizers``; ``max_steps``, ``max_epochs``,
    ``min_steps`` or ``min_epochs`` that contradict the plan's optimizer steps
    (:func:`budgetopt.modes.compute`); no validation; a ``monitor`` metric that the
    validation did not log.

    Args:
        source: an Optuna trial (budgets from its study's :class:`~budgetopt.BudgetPruner`,
            or ``budgets=``), a :class:`~budgetopt.Ladder`, or increasing budgets.
        monitor: the validation metric to report (the name given to ``self.log``).
        budgets: explicit budgets for a trial whose study has no BudgetPruner.
        mode: ``"restart"`` (default), ``"branch"`` or ``"continue"``.
        loss_check_every: check the training loss of every this many optimizer steps.
        **run_options: the other arguments of :class:`~budgetopt.BudgetedRun`
            (``profile``, ``warmup``, ``cooldown``, ``snapshot_device``,
            ``grad_norm_every``, ``horizon_exponent``, ``keep_models`` and ``model_store``
            to keep each budget's annealed module for the top trials, profile parameters).

    Attributes:
        run: the :class:`~budgetopt.BudgetedRun` of the last ``fit`` (``rung_values``,
            ``compute``, ``lr_trace``, ``ended``); None before ``fit``.
    """

    def __init__(
        self,
        source: optuna.trial.Trial | Ladder | Sequence[int],
        monitor: str,
        *,
        budgets: Sequence[int] | Ladder | None = None,
        mode: str = "restart",
        loss_check_every: int = 25,
        **run_options: Any,
    ) -> None:
        super().__init__()
        if not isinstance(monitor, str) or not monitor:
            raise InputTypeError(f"monitor must be the name of a logged metric, got {monitor!r}")
        self.mode = check_choice(mode, "mode", MODES)
        # One step's loss in loss_check_every goes to the run, as a float (the one device
        # sync): adding every step's loss tensor up would cost more than LinearLR's step.
        self.loss_check_every = check_iterations(loss_check_every, "loss_check_every")
        self.monitor = monitor
        self._source = source
        self._budgets = budgets
        self._options = run_options
        self.run: BudgetedRun | None = None
        self.total_steps = 0
        self._driver: HookDriver | None = None
        self._last_step = 0
        self._steps_done = 0

    @property
    def value(self) -> float | None:
        """The metric reported at the largest budget reached (None before any report)."""
        return None if self.run is None else self.run.value

    def _drive(self) -> HookDriver:
        self._run()
        assert self._driver is not None
        return self._driver

    def _run(self) -> BudgetedRun:
        if self.run is None:
            raise RuntimeError("BudgetPruningCallback is used by Trainer.fit only (its run starts in on_fit_start)")
        return self.run

    # -- setup and checks -----------------------------------------------------------------

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.world_size > 1 and collective_of(self._source) is None:
            raise InputError(
                f"this Trainer trains on {trainer.world_size} processes: give BudgetPruningCallback "
                "optuna_integration.TorchDistributedTrial(trial) on every rank (the trial on rank 0, None on the others), "
                f"not {type(self._source).__name__}"
            )
        if trainer.lr_scheduler_configs:
            name = type(trainer.lr_scheduler_configs[0].scheduler).__name__
            raise InputError(
                f"configure_optimizers returns an LR scheduler ({name}): BudgetPruningCallback sets every step's "
                "learning rate from the budget's schedule; return the optimizer alone"
            )
        optimizers = trainer.optimizers
        if not optimizers:
            raise InputError("configure_optimizers returns no optimizer: BudgetPruningCallback needs one")
        optimizer = optimizers[0] if len(optimizers) == 1 else _Optimizers(optimizers)
        self.run = BudgetedRun(
            self._source, pl_module, optimizer, budgets=self._budgets, mode=self.mode,
            loss_check_every=self.loss_check_every,  # under DDP every rank checks at these steps
            **self._options,
        )
        run = self.run
        self.total_steps = total = run.mode_object.compute(run.budgets)
        plan = f"{run.mode} over budgets {list(run.budgets)} takes {total} optimizer steps"
        if trainer.max_steps != -1 and trainer.max_steps < total:
            raise InputError(
                f"max_steps={trainer.max_steps} stops training before the plan ends ({plan}): "
                "leave max_steps=-1, the callback stops the Trainer after the last budget"
            )
        if trainer.min_steps is not None and trainer.min_steps > total:
            raise InputError(f"min_steps={trainer.min_steps} trains past the plan's end ({plan}): lower it or leave it unset")
        self._driver = HookDriver(run)
        # Validation runs at the rungs and only there: Lightning's epoch loop asks this.
        trainer.fit_loop.epoch_loop._should_check_val_fx = self._should_validate  # type: ignore[method-assign]

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.enable_validation:
            raise InputError(
                f"BudgetPruningCallback reports {self.monitor!r} from validation at every rung, and this Trainer runs "
                "no validation: pass val_dataloaders to fit, define validation_step, keep limit_val_batches > 0"
            )
        run, batches = self._run(), trainer.num_training_batches
        if math.isfinite(batches):
            automatic = pl_module.automatic_optimization
            per_epoch = math.ceil(batches / trainer.accumulate_grad_batches) if automatic else int(batches)
            plan = f"{run.mode} over budgets {list(run.budgets)} takes {self.total_steps} optimizer steps"
            epochs = f"epochs of {per_epoch} optimizer steps ({int(batches)} batches"
            epochs += f", accumulate_grad_batches={trainer.accumulate_grad_batches})" if automatic else ")"
            if trainer.max_epochs not in (None, -1) and trainer.max_epochs * per_epoch < self.total_steps:
                raise InputError(
                    f"max_epochs={trainer.max_epochs} {epochs} stops training before the plan ends ({plan}): "
                    "set max_epochs=-1, the callback stops the Trainer after the last budget"
                )
            if trainer.min_epochs and trainer.min_epochs * per_epoch > self.total_steps:
                raise InputError(f"min_epochs={trainer.min_epochs} {epochs} trains past the plan's end ({plan}): lower it")
        self._last_step, self._steps_done = trainer.global_step, 0

    # -- training -------------------------------------------------------------------------

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        # the first batch of a budget: restart/branch restore the state here
        self._drive().start_step("validation", "Trainer.fit (min_epochs or min_steps?)")

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step == self._last_step:  # accumulating gradients: no optimizer step on this batch
            return
        run, self._last_step = self._run(), step
        self._steps_done += 1
        if self._steps_done % self.loss_check_every == 0:
            loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
            if isinstance(loss, torch.Tensor):
                run.record_loss(float(loss.detach().sum()))  # checked in the step's bookkeeping, end_step
        # the step's bookkeeping and the next rate; at a budget's end Lightning's epoch loop
        # now runs the validation (a diverged one raised optuna.TrialPruned with a trial)
        if not self._drive().end_step() and run.diverged is not None:
            trainer.should_stop = True

    def _should_validate(self, data_fetcher: Any) -> bool:
        return self._driver is not None and self._driver.pending is not None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self._driver is None or self._driver.pending is None:
            return
        segment = self._driver.take_pending()
        assert segment is not None
        value = trainer.callback_metrics.get(self.monitor)
        collective = self._run().collective
        missing = value is None
        if collective is not None:  # rank 0's value is the one reported: its absence stops every rank, another's none
            missing = collective.broadcast(missing, f"whether {self.monitor!r} was logged at budget {segment.budget}")
        if missing:
            logged = ", ".join(sorted(trainer.callback_metrics)) or "nothing"
            raise InputError(
                f"monitor={self.monitor!r} was not logged by the validation at budget {segment.budget} "
                f"(logged: {logged}): log it in validation_step with self.log({self.monitor!r}, ...)"
            )
        # trial.report(value, step=budget) on rank 0; raises optuna.TrialPruned when pruned
        segment.report(None if value is None else float(value))
        if self._run().ended is not None:
            trainer.should_stop = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.run is not None and self.run.ended is None:
            raise RuntimeError(
                f"Trainer.fit stopped after {trainer.global_step} optimizer steps, before the plan's end "
                f"({self.total_steps} steps, rungs reported: {list(self.run.rung_values)}): "
                "did another callback set trainer.should_stop?"
            )

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        trainer.fit_loop.epoch_loop.__dict__.pop("_should_check_val_fx", None)  # Lightning's own rule again

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.teardown(trainer, pl_module, "fit")  # Lightning skips callbacks' teardown after an exception


class _Optimizers(torch.optim.Optimizer):
    """Several optimizers seen as one by :class:`~budgetopt.BudgetedRun` and its
    schedulers: their param groups in order, their states saved and restored together.
    The optimizers themselves are stepped by the LightningModule."""

    _opt_called = True  # torch's LRScheduler warns unless the optimizer it patched stepped: the real ones do

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:  # no super().__init__: no groups of its own
        self.optimizers = list(optimizers)
        self.defaults: dict = {}

    @property
    def param_groups(self) -> list[dict]:  # type: ignore[override]
        # Re-read every time: load_state_dict gives an optimizer new group dicts.
        return [group for optimizer in self.optimizers for group in optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"optimizers": [optimizer.state_dict() for optimizer in self.optimizers]}

    def load_state_dict(self, state_dict: dict) -> None:
        for optimizer, state in zip(self.optimizers, state_dict["optimizers"]):
            optimizer.load_state_dict(state)

    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        raise RuntimeError("budgetopt's _Optimizers is not stepped: the LightningModule steps each optimizer")

    def __repr__(self) -> str:
        return f"_Optimizers({', '.join(type(o).__name__ for o in self.optimizers)})"
