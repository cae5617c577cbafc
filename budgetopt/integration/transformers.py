"""Hugging Face Transformers: budget-aware training and pruning inside ``Trainer.train``.

:class:`BudgetTrainerCallback` drives one :class:`~budgetopt.BudgetedRun` from the
``Trainer``'s callback hooks: every optimizer step's learning rate comes from the mode's
schedule, evaluation runs exactly at the rung budgets, the metric is reported to the
trial, and ``optuna.TrialPruned`` ends a pruned trial by propagating out of ``train()``.
Needs the ``transformers`` extra (``pip install 'budgetopt[transformers]'``, pinned in
``constraints.txt``)::

    from transformers import Trainer, TrainingArguments
    from budgetopt.integration.transformers import BudgetTrainerCallback

    def objective(trial):
        budget = BudgetTrainerCallback(trial, monitor="eval_accuracy", mode="restart")
        args = TrainingArguments(
            "out", learning_rate=trial.suggest_float("lr", 1e-5, 1e-3, log=True),  # the peak rate
            lr_scheduler_type="constant",      # the callback sets every step's rate
            max_steps=budget.max_steps,        # the plan's optimizer steps (restart: the budgets' sum)
            eval_strategy="no", save_strategy="no", report_to="none",
        )
        trainer = Trainer(model=build_model(), args=args, train_dataset=train, eval_dataset=val,
                          compute_metrics=accuracy, callbacks=[budget])
        trainer.train()                        # raises optuna.TrialPruned when the pruner says so
        return budget.value                    # the metric at the largest budget reached

How it maps onto the Trainer's loop:

- **Learning rate.** After each optimizer step (``on_optimizer_step``) the callback sets
  the next step's rate: the param group's peak (its ``learning_rate``) times the mode's
  schedule, so each step trains at exactly the rate a plain
  :class:`~budgetopt.BudgetedRun` loop gives. The Trainer's own scheduler, which
  ``lr_scheduler_type="constant"`` makes, is set to keep the rate it finds (its
  ``lr_lambdas`` follow the param groups): one schedule, and the Trainer logs the rate
  each step trained at as ``learning_rate``. Warmup is the run's (``warmup=``
  iterations), not the Trainer's.
- **Budgets** count optimizer steps (``state.global_step``; with
  ``gradient_accumulation_steps=k`` a step takes ``k`` batches).
- **Rungs.** When a budget's last step is done the callback asks the Trainer to evaluate
  (``control.should_evaluate``), reads ``monitor`` from the evaluation's metrics
  (the Trainer prefixes them ``eval_``) and reports it as
  ``trial.report(value, step=budget)``. After the last budget, or a prune, it stops the
  Trainer.
- **Modes.** ``restart`` restores the initial model and optimizer state at the first
  step of each budget after the first; ``branch`` snapshots the trunk before each
  cooldown and restores it after the rung; ``continue`` runs one schedule. The Trainer
  reads its DataLoader as one stream, so restart's later budgets train on the batches
  after the previous budget's (as in the Lightning callback).
- **Divergence** is checked at every rung: a non-finite metric or non-finite parameters
  end the trial as pruned, with the reason in ``budgetopt.ended`` (the Trainer's logged
  loss is not read: ``logging_nan_inf_filter`` replaces a NaN there).
- **User attrs** of the trial are :class:`~budgetopt.BudgetedRun`'s (mode, plan, rung
  values, compute, why it ended, learning-rate trace).

One-line ``ValueError`` (raised from ``train()``, before the first step): a
``lr_scheduler_type`` other than ``"constant"``, Trainer warmup (``warmup_steps`` or
``warmup_ratio``), a ``max_steps`` other than the plan's (:attr:`max_steps`), an
``eval_strategy`` other than ``"no"`` (evaluations between rungs would be read as rungs
by nothing, and cost time), ``load_best_model_at_end`` (it would swap the last budget's
model for an earlier rung's), and ``Trainer.hyperparameter_search``, whose design does not
allow it: it reports its own objective to the Optuna trial at ``global_step`` (not at
budgets; restart's steps after the first rung are not budgets) and hands callbacks no
trial. Run ``study.optimize(objective)`` with a plain objective instead, as above.

Next to a CPU-only torch with PyPI's (CUDA) torchvision, import this module before
transformers: transformers imports torchvision when it is installed, and this module
repairs that import first (:func:`budgetopt.repair_torchvision_ops`).

Several processes (DDP, ranks started by ``torchrun``, the process group initialised
before the callback is made): give ``optuna_integration.TorchDistributedTrial(trial)`` on
every rank (the trial on rank 0, None on the others); the plan, each rung's value (rank
0's) and the prune decision are broadcast and every rank trains and stops alike. Without
one, a Trainer of several processes is refused in one line.

Not covered: fp16 through the Trainer (``fp16=True``) keeps its gradient scaler inside
Accelerate, out of the snapshots (bf16 needs none).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch

from budgetopt._torchvision import repair_torchvision_ops
from budgetopt._validation import check_choice
from budgetopt.distributed import collective_of, owned_trial
from budgetopt.errors import InputError, InputTypeError
from budgetopt.ladder import Ladder
from budgetopt.modes import MODES, get_mode
from budgetopt.run import BudgetedRun, HookDriver, run_budgets

repair_torchvision_ops()  # transformers imports torchvision when it is installed: make it load on a CPU-only torch
try:
    from transformers import TrainerCallback
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "budgetopt.integration.transformers needs Hugging Face Transformers: pip install 'budgetopt[transformers]'"
    ) from error

__all__ = ["BudgetTrainerCallback"]


class BudgetTrainerCallback(TrainerCallback):
    """Trains a trial's budgets inside ``Trainer.train`` and prunes it (see the module's text).

    Args:
        source: an Optuna trial (budgets from its study's :class:`~budgetopt.BudgetPruner`,
            or ``budgets=``), a :class:`~budgetopt.Ladder`, or increasing budgets.
        monitor: the evaluation metric to report, as the Trainer names it (``"eval_loss"``,
            ``"eval_accuracy"`` for a ``compute_metrics`` key ``accuracy``).
        budgets: explicit budgets for a trial whose study has no BudgetPruner.
        mode: ``"restart"`` (default), ``"branch"`` or ``"continue"``.
        **run_options: the other arguments of :class:`~budgetopt.BudgetedRun`
            (``profile``, ``warmup``, ``cooldown``, ``snapshot_device``, ``keep_models``
            and ``model_store``, ``horizon_exponent``, profile parameters).

    Attributes:
        run: the :class:`~budgetopt.BudgetedRun` of the last ``train()``; None before.
        max_steps: the optimizer steps of the plan, for ``TrainingArguments(max_steps=...)``.
    """

    def __init__(
        self,
        source: Any,
        monitor: str,
        *,
        budgets: Sequence[int] | Ladder | None = None,
        mode: str = "restart",
        **run_options: Any,
    ) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise InputTypeError(f"monitor must be the name of an evaluation metric such as 'eval_loss', got {monitor!r}")
        self.monitor = monitor
        self.mode = check_choice(mode, "mode", MODES)
        collective = collective_of(source)  # several processes (TorchDistributedTrial): rank 0's plan on every rank
        if collective is not None:
            owned = owned_trial(source)
            self.budgets = collective.on_zero(lambda: run_budgets(owned, budgets), "the plan")
        else:
            self.budgets = run_budgets(source, budgets)  # the trial's plan, checked once here
        self._trial: Any = None if isinstance(source, (Ladder, Sequence)) else source
        self._collective = collective
        self._options = run_options
        mode_object = get_mode(
            mode, cooldown=run_options.get("cooldown"), horizon_exponent=run_options.get("horizon_exponent", 0.0)
        )
        self.max_steps = int(mode_object.compute(self.budgets))
        self.run: BudgetedRun | None = None
        self._driver: HookDriver | None = None
        self._scheduler: Any = None

    @property
    def value(self) -> float | None:
        """The metric reported at the largest budget reached (None before any report)."""
        return None if self.run is None else self.run.value

    # -- checks and start ----------------------------------------------------------------

    def _check(self, args: Any, state: Any) -> None:
        plan = f"{self.mode} over budgets {list(self.budgets)} takes {self.max_steps} optimizer steps"
        scheduler = str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type))
        if scheduler != "constant":
            raise InputError(
                f"lr_scheduler_type={scheduler!r}: BudgetTrainerCallback sets every step's learning rate from the "
                "budget's schedule; set lr_scheduler_type='constant'"
            )
        if getattr(args, "warmup_steps", 0) or getattr(args, "warmup_ratio", 0):
            raise InputError(
                f"warmup_steps={args.warmup_steps} / warmup_ratio={getattr(args, 'warmup_ratio', 0)}: the Trainer's warmup "
                "would be a second schedule; give BudgetTrainerCallback(..., warmup=ITERATIONS) instead"
            )
        if state.max_steps != self.max_steps:
            raise InputError(
                f"max_steps={args.max_steps} ({state.max_steps} optimizer steps) contradicts the plan ({plan}): "
                f"set TrainingArguments(max_steps=callback.max_steps), here {self.max_steps}"
            )
        strategy = str(getattr(args.eval_strategy, "value", args.eval_strategy))
        if strategy != "no":
            raise InputError(
                f"eval_strategy={strategy!r} evaluates between the rungs: set eval_strategy='no', BudgetTrainerCallback "
                "evaluates at every rung budget"
            )
        if getattr(args, "load_best_model_at_end", False):
            raise InputError(
                "load_best_model_at_end=True would load an earlier rung's checkpoint after train(): each rung's value "
                "is for its own budget; leave it False"
            )
        if getattr(state, "trial_params", None) is not None:
            raise InputError(
                "Trainer.hyperparameter_search is not supported: it reports its own objective to the trial at global "
                "steps, not budgets; call trainer.train() in an objective(trial) run by study.optimize"
            )
        if getattr(args, "world_size", 1) > 1 and self._collective is None:
            raise InputError(
                f"this Trainer trains on {args.world_size} processes: give BudgetTrainerCallback "
                "optuna_integration.TorchDistributedTrial(trial) on every rank (the trial on rank 0, None on the others)"
            )

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, optimizer: Any = None,
                       **kwargs: Any) -> None:
        self._check(args, state)
        if self.run is not None and self._trial is not None:
            raise RuntimeError(
                "BudgetTrainerCallback: this trial's run already trained (train() called twice); make a new callback "
                "for each trial"
            )
        if model is None or optimizer is None:
            raise RuntimeError("BudgetTrainerCallback needs the Trainer's model and optimizer in on_train_begin")
        scheduler = kwargs.get("lr_scheduler")
        if not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
            raise InputError(
                f"the Trainer's LR scheduler is a {type(scheduler).__name__}: BudgetTrainerCallback follows the one "
                "lr_scheduler_type='constant' makes (a LambdaLR); do not pass optimizers=(optimizer, scheduler)"
            )
        # The Trainer's constant scheduler keeps whatever rate the group has: one schedule,
        # the run's, and the Trainer logs the rate each step trained at.
        scheduler.lr_lambdas = [_follow(optimizer, i, base) for i, base in enumerate(scheduler.base_lrs)]
        self._scheduler = scheduler
        source = self._trial if self._trial is not None else self.budgets
        budgets = self.budgets if self._trial is not None else None
        self.run = BudgetedRun(source, model, optimizer, budgets=budgets, mode=self.mode, **self._options)
        self._driver = HookDriver(self.run)

    # -- training -------------------------------------------------------------------------

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # the first step of a budget: restart and branch restore the state here
        if self._drive().start_step("the evaluation", "the Trainer"):
            with warnings.catch_warnings():  # the order warning of torch: this step only re-reads the rate
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
                self._scheduler.step()  # the Trainer's scheduler takes it, so the Trainer logs it

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # Right after optimizer.step(), before the Trainer reads the rate it logs and steps
        # its own (constant) scheduler, which then keeps the rate set here (on_train_begin).
        if self._drive().end_step():
            control.should_evaluate = True  # the Trainer evaluates after this step's on_step_end
        elif self._run().ended is not None:  # diverged without a trial (with one, TrialPruned was raised)
            control.should_training_stop = True

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict | None = None, **kwargs: Any) -> None:
        segment = self._drive().take_pending() if self._driver is not None else None
        if segment is None:
            return  # an evaluation the user asked for (trainer.evaluate()): not a rung
        metrics = metrics or {}
        missing = self.monitor not in metrics
        if self._collective is not None:  # rank 0's metric is the one reported: its absence stops every rank
            missing = self._collective.broadcast(missing, f"whether {self.monitor!r} was computed at budget {segment.budget}")
        if missing:
            logged = ", ".join(sorted(metrics)) or "nothing"
            raise InputError(
                f"monitor={self.monitor!r} is not among the evaluation's metrics at budget {segment.budget} "
                f"(got: {logged}): the Trainer prefixes compute_metrics' keys with 'eval_'"
            )
        value = metrics.get(self.monitor)
        if isinstance(value, torch.Tensor):
            value = value.item()
        try:  # trial.report(value, step=budget) (rank 0's); optuna.TrialPruned when pruned
            segment.report(None if value is None else float(value))
        finally:
            if self._run().ended is not None:
                control.should_training_stop = True

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.run is not None and self.run.ended is None:
            raise RuntimeError(
                f"Trainer.train stopped after {state.global_step} optimizer steps, before the plan's end "
                f"({self.max_steps} steps, rungs reported: {list(self.run.rung_values)}): "
                "did another callback set should_training_stop?"
            )

    def _drive(self) -> HookDriver:
        self._run()
        assert self._driver is not None
        return self._driver

    def _run(self) -> BudgetedRun:
        if self.run is None:
            raise RuntimeError("BudgetTrainerCallback is used by Trainer.train only (its run starts in on_train_begin)")
        return self.run



def _follow(optimizer: Any, index: int, base: Any) -> Callable[[int], float]:
    """A LambdaLR factor that keeps param group ``index``'s current rate (set by the run).
    A plain function, not a callable object: ``LambdaLR.state_dict()`` (a Trainer
    checkpoint) leaves functions out and would try to pickle an object's optimizer."""

    def factor(step: int) -> float:
        rate = optimizer.param_groups[index]["lr"]
        return rate / base if base else 0.0

    return factor
