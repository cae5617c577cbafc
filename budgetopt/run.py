"""BudgetedRun: drives one trial's (or one plain training's) optimizer across its budgets.

What each mode executes is its mode object's (:mod:`budgetopt.modes`); what the run
reads from and writes to its Optuna trial is :mod:`budgetopt.trial_io`'s.
"""

from __future__ import annotations

import array
import copy
import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeGuard

import torch

from budgetopt._validation import check_iterations, is_real
from budgetopt.distributed import Collective, RankFailure, collective_of, owned_trial
from budgetopt.errors import InputError, InputTypeError
from budgetopt.ladder import Ladder
from budgetopt.modes import MODES, Phase, get_mode
from budgetopt.schedules import BudgetScheduler, check_optimizer, check_warmup, get_profile
from budgetopt.trial_io import TrialIO, plan_of

if TYPE_CHECKING:
    import optuna

    from budgetopt.integration.dataloader import LoaderStream

__all__ = ["MODES", "BudgetedRun", "HookDriver", "Segment", "run_budgets"]


def _clone(obj: Any, device: torch.device | str | None, *, pinned: set[torch.device] | None = None) -> Any:
    """A deep copy of a (nested) state dict, tensors copied to ``device`` (None: where they are).

    With ``pinned`` (a set), a CUDA tensor copied to the CPU goes into pinned
    (page-locked) memory without blocking, and its device is added to ``pinned``: the
    caller synchronizes those devices once before the copies are read (:func:`_snapshot`).
    """
    if isinstance(obj, torch.Tensor):
        target = torch.device(device) if device is not None else obj.device
        if pinned is not None and target.type == "cpu" and obj.device.type == "cuda":
            out = torch.empty(obj.shape, dtype=obj.dtype, pin_memory=True)
            out.copy_(obj.detach(), non_blocking=True)
            pinned.add(obj.device)
            return out
        return obj.detach().to(target, copy=True)
    if isinstance(obj, dict):
        return {k: _clone(v, device, pinned=pinned) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clone(v, device, pinned=pinned) for v in obj)
    return obj


def _snapshot(obj: Any, device: torch.device | str | None) -> Any:
    """:func:`_clone` for a snapshot. CUDA tensors bound for the CPU are copied through
    pinned memory without blocking, all queued at once, then one synchronization per GPU
    before returning (the snapshot may be read at once, e.g. saved to an artifact store).
    Copies on one device (``snapshot_device=None``) are stream-ordered and never wait."""
    pinned: set[torch.device] = set()
    out = _clone(obj, device, pinned=pinned)
    for gpu in pinned:
        torch.cuda.synchronize(gpu)
    return out


def _check_snapshot_device(spec: object) -> torch.device | None:
    if spec is None:
        return None
    try:
        return torch.device(spec)  # type: ignore[call-overload]  # checked here: a ValueError names it
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"snapshot_device must be None or a torch device such as 'cpu' or 'cuda:0', got {spec!r}") from None


def _is_trial(obj: object) -> TypeGuard[optuna.trial.Trial]:
    return hasattr(obj, "should_prune") and hasattr(obj, "report")


class Segment:
    """The iterations of one budget. Iterate it to train; then :meth:`report` a value.

    Iterating yields ``t``, the position of the step in this budget's schedule; the
    learning rate of that step is already set in the optimizer. The segment stops early
    when a divergence was detected (see :meth:`BudgetedRun.record_loss`).
    """

    def __init__(self, run: BudgetedRun, index: int, budget: int) -> None:
        self.run = run
        self.index = index
        self.budget = budget
        self.compute = 0
        self.reported = False

    def __repr__(self) -> str:
        return f"Segment(budget={self.budget}, mode={self.run.mode!r}, compute={self.compute})"

    def __iter__(self) -> Iterator[int]:
        run = self.run
        plan = run.mode_object.segment(run.budgets, self.index, run.warmup)
        if plan.restore is not None:
            run._restore_kept(plan.restore)
        for phase in plan.phases:
            if phase.snapshot_before:
                run._keep_trunk()
            scheduler = run._scheduler(phase)  # built right before its phase: it sets the rate of its first step
            for t in range(phase.start, phase.stop):
                run._lr_trace.append(run.optimizer.param_groups[0]["lr"])
                yield t
                self.compute += 1
                run.compute += 1
                if run._after_step(self, t, last=t == self.budget - 1):  # every mode's last t is budget - 1
                    return
                if run.grad_scaler is None:
                    scheduler.step()
                else:  # a step the scaler skipped is still an iteration; torch's order warning does not apply
                    with warnings.catch_warnings():
                        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
                        scheduler.step()

    def batches(self, loader: Iterable, *, replay: bool = True) -> Iterator[Any]:
        """This segment's steps, each with its batch drawn from ``loader``; use it instead of
        iterating the segment::

            for segment in run.segments():
                for x, y in segment.batches(train_loader):  # this step's rate is already set
                    ...                                     # one optimizer step on (x, y)
                segment.report(evaluate(model))

        ``loader`` (a ``torch.utils.data.DataLoader``, or any re-iterable of batches) is
        read as one stream across epochs, kept by the run from one segment to the next:
        when an epoch ends the next begins, after ``set_epoch(epoch)`` on the loader's
        sampler (or its batch sampler's sampler) when it has one (``DistributedSampler``).
        One batch is drawn per step, no more, so a budget stops exactly at its last step,
        in the middle of an epoch if that is where it falls. A budget in epochs converts
        with ``budget_from_epochs(epochs, len(loader))``: ``len(loader)`` steps per epoch
        (a smaller last batch, ``drop_last=False``, is one step), a partial last epoch
        rounded to whole steps (``round``, which takes an exact half to the even count).

        Data order with ``replay=True`` (default): step ``t`` of a budget's schedule
        trains on batch ``t`` of the stream, so every rung sees the data a fresh run of
        its length would:

        - ``restart``: each budget replays the stream from its first batch (epoch 0);
          budget ``B`` is exactly the first ``B`` batches of a fresh run.
        - ``branch``: the trunk and each cooldown read the stream at their positions;
          after a cooldown the stream is rewound to the trunk snapshot, so the next
          trunk trains on the batches the cooldown used, as one uninterrupted
          warmup-stable-decay run of the last budget does. Rewinding re-reads the
          batches from the start of that epoch (loading, no training).
        - ``continue``: one pass, never rewound.

        A rewind also restores torch's random state (CPU, and CUDA's once initialised)
        and the ``generator`` of the loader and its samplers to what they were at that
        position, so shuffling, dropout and augmentation repeat too: with deterministic
        code, restart's budget ``B`` is the same computation as a fresh run of ``B``
        steps. Python's and NumPy's random states are not touched.

        ``replay=False`` continues the stream instead: each budget takes the batches
        after the previous budget's (restart retrains on new data and epochs keep
        counting; branch's trunk skips the batches its cooldowns used); nothing is
        rewound. This is the order of :mod:`budgetopt.integration.lightning`, where
        Lightning iterates the DataLoader.
        """
        from budgetopt.integration.dataloader import LoaderStream

        run = self.run
        if run._stream is None or run._stream.loader is not loader:
            run._stream = LoaderStream(loader)
        stream = run._stream
        for t in self:
            if replay:
                stream.seek(t)
            yield stream.draw()

    def report(self, value: float | None) -> None:
        """Record the budget-converged ``value`` of this budget.

        With a trial: ``trial.report(value, step=budget)``, then ``optuna.TrialPruned``
        when the study's pruner says so, or when the run diverged (reason in the trial's
        ``budgetopt.ended`` user attr).
        Distributed (a ``TorchDistributedTrial``): call it on every rank; rank 0's value
        is the trial's (the others may pass None), and every rank raises or goes on alike.
        """
        if self.reported:
            raise RuntimeError(f"budget {self.budget} was already reported")
        self.reported = True
        self.run._report(self, value)


class HookDriver:
    """A :class:`BudgetedRun` driven from a training framework's hooks instead of a ``for``
    loop (the Lightning and Transformers callbacks): :meth:`start_step` before each
    optimizer step, :meth:`end_step` after it, and the budget's value reported from the
    framework's evaluation through :meth:`take_pending`."""

    def __init__(self, run: BudgetedRun) -> None:
        self.run = run
        self._segments = run.segments()
        self._segment: Segment | None = None
        self._steps: Iterator[int] | None = None
        self.pending: Segment | None = None  # a budget whose last step is done and whose value is awaited

    def start_step(self, evaluation: str, past_end: str) -> bool:
        """Before a step; at a budget's first (then True), the budget starts (restart and
        branch restore their state) and the step's rate is set. ``evaluation`` names what
        should have run for a pending budget, ``past_end`` what trains past the plan."""
        if self.pending is not None:
            raise RuntimeError(f"{evaluation} did not run at budget {self.pending.budget}, so it could not be reported")
        if self._steps is not None:
            return False
        self._segment = next(self._segments, None)
        if self._segment is None:
            raise RuntimeError(f"{past_end} trains past the plan's end ({self.run.ended})")
        self._steps = iter(self._segment)
        next(self._steps)  # sets the rate of the budget's first step
        return True

    def end_step(self) -> bool:
        """After a step: its bookkeeping and the next step's rate. True when the budget's last
        step is done and its value is awaited (:attr:`pending`); a budget that diverged is
        reported here instead (``optuna.TrialPruned`` with a trial; ``run.ended`` without)."""
        assert self._steps is not None and self._segment is not None
        try:
            next(self._steps)
            return False
        except StopIteration:  # the budget's last step is done (or the loss diverged)
            segment, self._steps = self._segment, None
            if self.run.diverged is not None:
                segment.report(math.nan)
                return False
            self.pending = segment
            return True

    def take_pending(self) -> Segment | None:
        """The budget awaiting its value (None when an evaluation is not a rung's), cleared."""
        segment, self.pending = self.pending, None
        return segment


NONFINITE_CHECKS = 3  # with a grad_scaler: loss checks in a row with a non-finite loss that end a run


class BudgetedRun:
    """Trains across budgets with a learning rate that decays to zero at each budget.

    Example (no Optuna)::

        run = BudgetedRun([100, 300, 900], model, optimizer, mode="restart")
        for segment in run.segments():
            for step in segment:              # the rate of this step is already set
                train_one_batch(model, optimizer)
            segment.report(evaluate(model))
        print(run.rung_values, run.compute)   # {100: .., 300: .., 900: ..} 1300

    With an Optuna trial instead of budgets, the budgets are the trial's plan, given by
    the study's :class:`~budgetopt.BudgetPruner`; ``report`` goes to the trial and raises
    ``optuna.TrialPruned`` when the pruner stops it.

    Modes (Li et al., ICLR 2020; Hägele et al., 2024):

    - ``restart``: before each budget, restore the initial model and optimizer state
      and train the whole budget with ``profile`` decaying to 0 at it.
      Compute: the sum of the budgets.
    - ``branch``: one constant-rate trunk (after ``warmup``); for budget ``B`` the trunk
      runs to ``B - C`` with ``C = max(1, round(cooldown * B))``, is snapshotted, cools
      down with ``profile`` over ``C`` iterations to 0, is reported, and is restored
      before the next budget. The last budget's model is a warmup-stable-decay run of
      that length. Compute: the last budget plus the other budgets' cooldowns.
    - ``continue``: one schedule over the largest budget, reported at each budget while
      the rate is still high: today's early stopping, the baseline. Compute: the
      largest budget reached.

    Args:
        source: an Optuna trial, a :class:`~budgetopt.Ladder`, or increasing budgets; or,
            for one trial trained by several processes (DDP), an
            ``optuna_integration.TorchDistributedTrial`` on every rank (extra
            ``distributed``): rank 0 owns the trial, and the plan, each rung's value and
            decision, divergence and a retry's snapshot are the same on every rank
            (:mod:`budgetopt.distributed`). Call everything on every rank, including
            :meth:`record_loss`'s checks, which then happen at the same steps on all.
        model: the ``torch.nn.Module`` being trained (its state is snapshotted).
        optimizer: its optimizer; each param group's current ``lr`` is the peak rate.
        budgets: explicit budgets for a trial whose study has no ``BudgetPruner``.
        mode: ``"restart"`` (default), ``"branch"`` or ``"continue"``.
        profile: decay profile (:data:`budgetopt.schedules.PROFILES`, default
            ``"linear"``); in branch mode, the shape of each cooldown.
        warmup: linear warmup iterations at the start of training (restart: of every
            budget), smaller than the first budget (branch: than its trunk).
        cooldown: branch mode's cooldown fraction of each budget, in (0, 1] (default
            :data:`~budgetopt.modes.COOLDOWN`, 0.5); another mode has none (a ValueError).
        snapshot_device: where state snapshots are kept: None (default) for the
            tensors' own device, or ``"cpu"`` to spare accelerator memory (from a GPU
            through pinned memory, the copies queued without blocking and synchronized
            once per snapshot). What is held, beside the live model and optimizer
            (``P`` the model's state bytes, ``O`` the optimizer's, e.g. ``2P`` for Adam
            and AdamW once they have stepped): restart keeps the initial state for the
            whole run (``P`` plus the optimizer's initial state, empty for Adam); branch
            keeps the trunk, ``P + O``, from the start of each cooldown to the end of the
            run (replaced at the next cooldown, the old one freed first); continue keeps
            nothing. On the CPU through pinned memory, torch's pinned-memory cache rounds
            each tensor up to a power of two and keeps freed blocks for reuse, so the
            page-locked memory held can exceed these sizes. Rung snapshots
            (``snapshot_store``) and kept models (``keep_models``) are serialized to the
            CPU for the upload and freed after it.
        grad_norm_every: record the gradient norm every this many iterations and at the
            last iteration of every budget (None: never). Each record costs a device sync.
        loss_check_every: how often a loss tensor given to :meth:`record_loss` is checked
            for NaN/inf (each check is a device sync; float losses are checked at once).
        snapshot_store: an Optuna artifact store (with a trial): after each promoted
            rung a snapshot that a retry of the trial resumes from (:mod:`budgetopt.trial_io`).
        progress_seconds: with a trial, how often the compute so far is recorded.
        horizon_exponent: ``beta >= 0``, restart mode only: budget ``B`` trains at the peak
            rate times ``(B_max / B) ** beta`` (``B_max`` the last budget, whose rate is
            unchanged). The optimal peak rate falls with the horizon roughly as
            ``B ** -beta`` (beta about 0.3-0.5 in recent work); 0 (default) keeps one
            peak rate for every budget, as the paper does.
        keep_models: with a trial, keep the annealed model of each rung while the trial is
            among the ``keep_models`` best at that budget (restart: the end of the budget;
            branch: the end of its cooldown), in ``model_store``, and remove those that
            leave the top (:mod:`budgetopt.keep`; :func:`budgetopt.load_model`). 0: none.
        model_store: an Optuna artifact store for ``keep_models`` (e.g.
            ``optuna.artifacts.FileSystemArtifactStore(DIR)``).
        grad_scaler: the ``torch.amp.GradScaler`` of a mixed-precision loop. Its state is
            part of every snapshot: restart begins each budget from the initial scale,
            branch's cooldowns from the trunk's, a retry from the snapshot's. A step the
            scaler skips (inf/NaN gradients) is still an iteration: the schedule advances
            and compute counts it, as in PyTorch's AMP recipe. A non-finite training loss
            the scaler can skip ends the run only when it persists: in
            :data:`NONFINITE_CHECKS` loss checks in a row (without a scaler, at the first).
        **profile_params: the profile's parameters (e.g. ``power`` for ``poly``).

    ``mode_object`` is the mode as an object (:mod:`budgetopt.modes`: the phases each
    budget executes, its compute); ``schedule`` the schedule as data, recorded in the
    trial's user attr ``budgetopt.schedule``.
    """

    def __init__(
        self,
        source: optuna.trial.Trial | Ladder | Sequence[int],
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        budgets: Sequence[int] | Ladder | None = None,
        mode: str = "restart",
        profile: str = "linear",
        warmup: int = 0,
        cooldown: float | None = None,
        snapshot_device: torch.device | str | None = None,
        grad_norm_every: int | None = None,
        loss_check_every: int = 25,
        snapshot_store: Any = None,
        progress_seconds: float = 30.0,
        horizon_exponent: float = 0.0,
        keep_models: int = 0,
        model_store: Any = None,
        grad_scaler: Any = None,
        **profile_params: object,
    ) -> None:
        self.mode_object = get_mode(mode, cooldown=cooldown, horizon_exponent=horizon_exponent)
        self.mode = self.mode_object.name
        self.horizon_exponent = float(horizon_exponent)
        self.cooldown: float | None = getattr(self.mode_object, "cooldown", None)  # branch mode's, None in the others
        if not isinstance(model, torch.nn.Module):
            raise InputTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        check_optimizer(optimizer)
        get_profile(profile, **profile_params)
        self._dist = collective_of(source)  # several processes train this trial (torch.distributed)
        if self._dist is not None:  # rank 0 owns the trial; the plan is its, on every rank
            owned = owned_trial(source)
            self.trial = owned
            self.budgets = self._dist.on_zero(lambda: run_budgets(owned, budgets), "the plan")
        else:
            self.trial = source if _is_trial(source) else None
            self.budgets = run_budgets(source, budgets)
        self.model = model
        self.optimizer = optimizer
        self.profile = profile
        self.profile_params = profile_params
        limit, what = self.mode_object.warmup_limit(self.budgets)
        self.warmup = check_warmup(warmup, limit, what=what)
        self.schedule = self.mode_object.schedule(profile, profile_params, self.warmup)
        self.snapshot_device = _check_snapshot_device(snapshot_device)
        self.grad_norm_every = None if grad_norm_every is None else check_iterations(grad_norm_every, "grad_norm_every")
        self.loss_check_every = check_iterations(loss_check_every, "loss_check_every")
        if snapshot_store is not None and self.trial is None and self._dist is None:
            raise InputTypeError("snapshot_store needs an Optuna trial: rung snapshots let a retried trial resume")
        self.snapshot_store = snapshot_store
        self.progress_seconds = progress_seconds
        self._keeper = None
        if keep_models:
            if self._dist is None and (self.trial is None or model_store is None):
                raise InputTypeError("keep_models needs an Optuna trial and a model_store (an Optuna artifact store)")
            if not self.mode_object.budget_aware:
                raise InputError(f"keep_models keeps annealed rung models: mode {self.mode!r} has none (restart or branch)")
            from budgetopt.keep import ModelKeeper

            if self._dist is None:
                self._keeper = ModelKeeper(self.trial, model_store, keep_models)
            else:  # rank 0 keeps the models (only it needs the store); its argument errors are every rank's
                kept: list = []
                self._dist.on_zero(lambda: kept.append(ModelKeeper(self.trial, model_store, keep_models)), "keep_models")
                self._keeper = kept[0] if kept else None

        if grad_scaler is not None and not all(
            callable(getattr(grad_scaler, m, None)) for m in ("scale", "state_dict", "load_state_dict")
        ):
            raise InputTypeError(f"grad_scaler must be a torch.amp.GradScaler, got {type(grad_scaler).__name__}")
        self.grad_scaler = grad_scaler
        self._nonfinite_checks = 0  # loss checks in a row that saw a non-finite loss (with a grad_scaler)
        self.compute = 0
        self.rung_values: dict[int, float] = {}
        self.segment_compute: dict[int, int] = {}
        self.grad_norms: list[tuple[int, int, float, float]] = []  # (budget, t, lr, norm)
        self.ended: str | None = None
        self.diverged: str | None = None
        self._lr_trace = array.array("d")
        self._loss_sum: torch.Tensor | float = 0.0
        self._loss_count = 0
        self._trunk: dict | None = None
        self._shared_scheduler: BudgetScheduler | None = None
        self._next_segment = 0
        self._stream: LoaderStream | None = None  # Segment.batches' data stream
        for group in optimizer.param_groups:
            group["initial_lr"] = group["lr"]
        self._peak_lrs = [group["lr"] for group in optimizer.param_groups]
        keeps_initial = self.mode_object.keeps == "initial" and len(self.budgets) > 1
        self._initial = self._state() if keeps_initial else None
        self._io = None if self.trial is None else TrialIO(self.trial, snapshot_store, progress_seconds)
        if self._io is not None or self._dist is not None:
            io = self._io
            start = (lambda: io.start(self.mode, self.budgets, self.schedule)) if io is not None else (lambda: (None, 0))
            record, self.compute = start() if self._dist is None else self._dist.on_zero(start, "the trial's start")
            if record is not None:
                self._resume(record)

    # -- public -------------------------------------------------------------------------

    def segments(self) -> Iterator[Segment]:
        """One :class:`Segment` per budget, until the last budget, a prune or a divergence."""
        for index in range(self._next_segment, len(self.budgets)):
            if self.ended is not None:
                return
            segment = Segment(self, index, self.budgets[index])
            yield segment
            if not segment.reported:
                raise RuntimeError(
                    f"the segment of budget {segment.budget} ended without segment.report(value): "
                    "report a budget-converged value before the next budget"
                )

    def record_loss(self, loss: torch.Tensor | float) -> None:
        """Give the run this step's training loss so that a NaN/inf loss ends the run.

        A float is checked at once; a tensor is summed on its device and checked every
        ``loss_check_every`` steps and at the end of the budget (one sync per check).
        """
        if isinstance(loss, torch.Tensor):
            self._loss_sum = self._loss_sum + loss.detach().float().sum()
        else:
            self._loss_sum = self._loss_sum + float(loss)
        self._loss_count += 1

    @property
    def collective(self) -> Collective | None:
        """The collectives of the processes that train this trial together (a
        ``TorchDistributedTrial`` source), or None for one process."""
        return self._dist

    @property
    def value(self) -> float | None:
        """The value reported at the largest budget reached (None before any report)."""
        return self.rung_values[max(self.rung_values)] if self.rung_values else None

    @property
    def lr_trace(self) -> list[float]:
        """The learning rate (first param group) of every executed iteration, in order."""
        return self._lr_trace.tolist()

    # -- segments -----------------------------------------------------------------------

    def _scheduler(self, phase: Phase) -> BudgetScheduler:
        """The scheduler of ``phase``, at its first step (a shared one is built once)."""
        if phase.shared and self._shared_scheduler is not None:
            return self._shared_scheduler
        if phase.peak_scale is not None:
            for group, peak in zip(self.optimizer.param_groups, self._peak_lrs):
                group["initial_lr"] = peak * phase.peak_scale
        profile, params = (self.profile, self.profile_params) if phase.profile is None else (phase.profile, {})
        scheduler = BudgetScheduler(
            self.optimizer, phase.horizon, profile, warmup=phase.warmup, last_epoch=phase.start - phase.origin - 1, **params
        )
        if phase.shared:
            self._shared_scheduler = scheduler
        return scheduler

    def _after_step(self, segment: Segment, t: int, last: bool) -> bool:
        """Bookkeeping after the user's step ``t``; True when the run must stop (diverged)."""
        if self._io is not None:
            self._io.progress(self.compute)
        if self.grad_norm_every is not None and (last or (t + 1) % self.grad_norm_every == 0):
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            if grads:
                norm = float(torch.nn.utils.get_total_norm(grads))
                self.grad_norms.append((segment.budget, t, self._lr_trace[-1], norm))
        if self._dist is not None:  # every rank checks at the same steps, recorded losses or not
            check = last or (t + 1) % self.loss_check_every == 0
        else:
            check = bool(self._loss_count) and (
                last or self._loss_count % self.loss_check_every == 0 or not isinstance(self._loss_sum, torch.Tensor)
            )
        if check:
            loss_sum = float(self._loss_sum)
            self._loss_sum = 0.0  # each check sees the losses since the previous one
            finite = math.isfinite(loss_sum)
            if self._dist is not None and self._dist.any(not finite, f"the loss check at iteration {t}"):
                finite, loss_sum = False, loss_sum if not finite else math.nan  # one rank's NaN is every rank's
            if finite:
                self._nonfinite_checks = 0
            else:
                self._nonfinite_checks += 1
                if self.grad_scaler is None or self._nonfinite_checks >= NONFINITE_CHECKS:
                    persisted = f" in {NONFINITE_CHECKS} loss checks in a row" if self.grad_scaler is not None else ""
                    self.diverged = (
                        f"diverged: training loss is {loss_sum} by iteration {t} of budget {segment.budget}{persisted}"
                    )
                    return True
        return False

    # -- state kept between budgets -------------------------------------------------------

    def _state(self) -> dict:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }
        state = _snapshot(state, self.snapshot_device)
        if self.grad_scaler is not None:  # plain numbers: the scale, its growth tracker
            state["grad_scaler"] = copy.deepcopy(self.grad_scaler.state_dict())
        return state

    def _restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        # Optimizer.load_state_dict keeps tensors that are already on the right device:
        # hand it a copy so that training never writes into the snapshot.
        self.optimizer.load_state_dict(_clone(state["optimizer"], None))
        if self.grad_scaler is not None and state.get("grad_scaler"):  # empty: a disabled scaler
            self.grad_scaler.load_state_dict(copy.deepcopy(state["grad_scaler"]))

    def _restore_kept(self, which: str) -> None:
        kept = self._initial if which == "initial" else self._trunk
        if kept is not None:
            self._restore(kept)

    def _keep_trunk(self) -> None:
        self._trunk = None  # the old trunk freed before the new one is taken: one trunk held at a time
        self._trunk = self._state()
        if self._stream is not None:  # Segment.batches rewinds its data here after the cooldown
            self._stream.bookmark()

    # -- rung snapshots (a retried trial resumes from the last one) -------------------------

    def _snapshot_state(self, segment: Segment) -> dict:
        """What a retry needs to resume at the next budget: the mode's kept state (restart:
        the initial state, branch: the trunk, continue: the current model and optimizer)
        and the run's records."""
        return {
            "next_segment": segment.index + 1,
            "budget": segment.budget,
            "compute": self.compute,
            "rung_values": self.rung_values,
            "segment_compute": self.segment_compute,
            "lr_trace": self.lr_trace,
            "grad_norms": self.grad_norms,
            "initial": self._initial,
            "trunk": self._trunk,
            "current": self._state() if self.mode_object.resumes_from == "current" else None,
        }

    def _resume(self, record: dict) -> None:
        """Continue a retried trial from the rung snapshot its failed attempt left."""
        def read() -> dict:
            assert self._io is not None
            return self._io.read_snapshot(record)

        failure: Exception | None = None
        try:
            # distributed: rank 0 reads it, every rank applies it (or fails as rank 0 did)
            state = read() if self._dist is None else self._dist.on_zero(read, "the rung snapshot")
            if self._initial is not None and state["initial"] is not None:
                self._initial = state["initial"]
            if state["current"] is not None:
                self._restore(state["current"])
        except RankFailure:
            raise
        except Exception as error:  # unreadable, corrupted or mismatched: train from zero, say why
            failure = error
        if self._dist is not None and self._dist.any(failure is not None, "the resume") and failure is None:
            failure = RuntimeError("another rank could not apply the rung snapshot")
        if failure is not None:
            self.compute = self._io.resume_failed(record, failure) if self._io is not None else 0
            if self._dist is not None:
                self.compute = self._dist.broadcast(self.compute, "the compute after a failed resume")
            return
        self._next_segment = state["next_segment"]
        self.rung_values = dict(state["rung_values"])
        self.segment_compute = dict(state["segment_compute"])
        self._lr_trace = array.array("d", state["lr_trace"])
        self.grad_norms = [tuple(g) for g in state["grad_norms"]]
        self._trunk = state["trunk"]
        self.compute = (
            self._io.resumed(record, self.rung_values, state["budget"], state["compute"])
            if self._io is not None
            else int(state["compute"])
        )
        if self._dist is not None:  # rank 0's count (it adds the lost work)
            self.compute = self._dist.broadcast(self.compute, "the compute after a resume")

    # -- reports ------------------------------------------------------------------------

    def _report(self, segment: Segment, reported: Any) -> None:
        budget = segment.budget
        if isinstance(reported, torch.Tensor):
            reported = reported.item()
        if self._dist is not None:  # rank 0's value is the trial's (the others may pass None), checked on every rank
            reported = self._dist.broadcast(reported if self._dist.rank == 0 else None, f"the value at budget {budget}")
        if not is_real(reported):
            raise InputTypeError(f"segment.report needs a number, got {reported!r}")
        value = float(reported)
        self.segment_compute[budget] = segment.compute
        if self.diverged is None:
            if not math.isfinite(value):
                self.diverged = f"diverged: value {value} at budget {budget}"
            else:
                finite = bool(torch.stack([p.isfinite().all() for p in self.model.parameters()]).all())  # one sync
                if self._dist is not None:
                    finite = not self._dist.any(not finite, f"the parameter check at budget {budget}")
                if not finite:
                    self.diverged = f"diverged: non-finite parameters at budget {budget}"
        if self.diverged is not None:
            self.ended = self.diverged
        else:
            self.rung_values[budget] = value
            if budget == self.budgets[-1]:
                self.ended = f"completed at budget {budget}"
        if self._io is None and self._dist is None:
            return
        import optuna

        def decide() -> str | None:  # the trial's part: rank 0's alone when distributed
            assert self._io is not None
            self._io.rung(self.rung_values, self.compute)
            ended = self.ended
            if self.diverged is None:
                self._io.trial.report(value, step=budget)
                if self._keeper is not None:  # the model is this budget's annealed one (branch: before the trunk returns)
                    self._keeper.rung(budget, value, self.model)
                if ended is None and self._io.trial.should_prune():
                    ended = f"pruned at budget {budget}"
            if ended is None:
                if self.snapshot_store is not None:
                    self._io.save_snapshot(self._snapshot_state(segment), budget, self.compute)
            else:
                self._io.ended(ended, self._lr_trace, self.grad_norms)
            return ended

        # distributed: rank 0 decides (prune, complete, diverged) and its decision, or its
        # error, reaches every rank
        self.ended = decide() if self._dist is None else self._dist.on_zero(decide, f"the decision at budget {budget}")
        if self.ended is not None and not self.ended.startswith("completed"):
            raise optuna.TrialPruned(self.ended)


def run_budgets(source: object, budgets: Sequence[int] | Ladder | None = None) -> tuple[int, ...]:
    """The budgets a run of ``source`` trains (:class:`BudgetedRun`'s first two arguments):
    a trial's plan from its study's BudgetPruner, or ``budgets``; a Ladder's rungs; or
    the increasing budgets given. A TypeError or ValueError names what is wrong."""
    if _is_trial(source):
        return _check_budgets(plan_of(source) if budgets is None else budgets)
    if budgets is not None:
        raise InputTypeError("give budgets either as the first argument or as budgets=, not both")
    return _check_budgets(source)


def _check_budgets(budgets: object) -> tuple[int, ...]:
    if isinstance(budgets, Ladder):
        return budgets.rungs
    if isinstance(budgets, (str, bytes)) or not isinstance(budgets, Sequence) or not budgets:
        raise InputTypeError(f"budgets must be a Ladder or a non-empty sequence of integers, got {budgets!r}")
    checked = tuple(check_iterations(b, "budget") for b in budgets)
    if any(b >= c for b, c in zip(checked, checked[1:])):
        raise InputError(f"budgets must be strictly increasing, got {list(checked)}")
    return checked
