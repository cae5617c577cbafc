"""Workers: processes on one or many machines that run one study until its budget is spent.

``budgetopt worker`` runs :func:`run_worker` in one process; ``budgetopt launch``
(:func:`launch`) starts one worker per device of a machine. Every worker opens the
same Optuna storage (PostgreSQL across machines, SQLite or a journal file on one),
joins the study (:func:`join_study`), and asks for trials until the study -- not the
worker -- has had its trials or its compute.

What is guaranteed, with every worker a budgetopt worker:

- **Trial count** (``n_trials``): counted over the study, all workers together. A
  worker asks for a new trial only inside the study's *ask lock* (:func:`ask_lock`),
  after counting the study's trials: a PostgreSQL advisory lock, or an ``flock`` on a
  file beside a SQLite database or a journal file. So the study never gets more than
  ``n_trials`` fresh trials, however the workers race. A retry of a trial whose worker
  died (a WAITING copy of it, made by the heartbeat's stale-trial callback) is the same
  trial run again: it is run, and not counted. On other storages (MySQL, Redis
  journals, ...) there is no lock: the count is checked before each ask, and racing
  workers may overshoot by at most ``workers - 1`` trials.
- **Compute** (``compute``): the sum of the ``budgetopt.compute`` user attr over the
  study's trials (a retried trial counted once, its retry carrying the lost work; a
  running trial by its last progress record). A worker starts a trial only while that
  sum is below ``compute``; the trials running when it is reached finish their plans,
  so the study ends above it by at most what those trials still had to train.
- **Dead workers** (RDB storages: Optuna's heartbeat): a worker records a heartbeat
  every ``heartbeat_interval`` seconds for its trial; a trial without one for
  ``grace_period`` seconds is failed by the next worker that asks, and re-queued
  (:class:`RetryStaleTrial`). Its retry resumes at its last rung snapshot. A worker
  with nothing left to ask for waits while other workers' trials are running, so
  that a retry is never left without a worker. A worker killed in the milliseconds
  between creating a trial and its first heartbeat leaves a trial that never goes
  stale (Optuna's heartbeat has the same window); it is the one way to lose a trial.
  A worker that was only stalled past the grace period finds its trial failed and
  re-queued: its writes are refused, and it leaves the trial to the retry.
  ``JournalStorage`` has no heartbeat in Optuna 5: there a dead worker's trial stays
  RUNNING (and a worker does not wait for it).
- **Errors in a trial**: an exception in the study script fails that trial only, with
  ``failed: <error> (at file:line in function)`` in its ``budgetopt.ended`` user
  attr; the worker goes on, unless the same error (message with numbers masked) ended
  ``max_repeated_errors`` trials in a row: then it stops with that error. A script that
  breaks the protocol (``build`` returns no ``(model, optimizer)``, ...) raises
  :class:`~budgetopt.errors.ProtocolError` in its first trial: that trial fails and the
  worker stops at once with the one line (any other error, bad input that depends on a
  trial's parameters included, fails that trial only). A NaN/inf
  loss or value prunes the trial (:class:`~budgetopt.BudgetedRun`). Ctrl-C or SIGTERM
  fails the running trial and re-queues it, so it resumes elsewhere from its snapshot.
- **Disk** (rung snapshots in an Optuna artifact store, :func:`budgetopt.storage.open_snapshot_store`):
  at most one snapshot per unfinished trial (two while one is written); a trial's
  snapshot is removed when it completes, is pruned, fails by an error, or its worker
  died once more than ``max_retry`` allows. A worker killed while writing one can
  leave one unrecorded file behind: at most one per kill.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from budgetopt._messages import message_line, typed_line
from budgetopt._optuna import storage_of, study_id, trial_id
from budgetopt.attrs import (
    ATTR_COMPUTE,
    ATTR_ENDED,
    ATTR_SNAPSHOT,
    ATTR_WORKER,
    STUDY_ATTR_LADDER,
    STUDY_ATTR_SETUP,
    compute_spent,
    fresh_trial_count,
)
from budgetopt.errors import InputError, ProtocolError, UserCodeError
from budgetopt.pruners import BudgetPruner
from budgetopt.samplers import BudgetSampler
from budgetopt.storage import backend_of, lock_file_of

LAUNCH_LABEL = "BUDGETOPT_WORKER_LABEL"  # set by launch: "worker K (GPU G)"
_ADVISORY_NAMESPACE = 0x62756467  # "budg": the first key of budgetopt's PostgreSQL advisory locks


class RepeatedTrialError(RuntimeError):
    """The same error ended ``max_repeated_errors`` trials in a row: the worker stops."""


# -- the study's budget ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StudyBudget:
    """When a study has had enough, over all its workers: ``n_trials`` fresh trials, or
    ``compute`` iterations (:func:`compute_spent`); None for no limit."""

    n_trials: int | None = None
    compute: int | None = None

    def reached(self, trials: Sequence[FrozenTrial]) -> bool:
        if self.n_trials is not None and fresh_trial_count(trials) >= self.n_trials:
            return True
        return self.compute is not None and compute_spent(trials) >= self.compute

    def describe(self, trials: Sequence[FrozenTrial]) -> str:
        parts = [f"{fresh_trial_count(trials)}" + (f" of {self.n_trials}" if self.n_trials is not None else "") + " trials"]
        if self.compute is not None:
            parts.append(f"compute {compute_spent(trials)} of {self.compute}")
        return ", ".join(parts)


# -- the ask lock ---------------------------------------------------------------------------


@contextlib.contextmanager
def ask_lock(storage: optuna.storages.BaseStorage, study_id: int) -> Iterator[bool]:
    """Hold the study's ask lock (yields True), or nothing where the storage has none (False).

    PostgreSQL: a transaction-scoped advisory lock on a connection of its own, released
    at its end -- or by the server when the worker dies. SQLite and journal files:
    ``fcntl.flock`` on ``FILE.budgetopt-ask.lock``, released by the kernel likewise.
    """
    backend = backend_of(storage)
    if isinstance(backend, optuna.storages.RDBStorage) and backend.engine.dialect.name == "postgresql":
        import sqlalchemy

        with backend.engine.begin() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": _ADVISORY_NAMESPACE, "b": study_id})
            yield True
        return
    path = lock_file_of(storage)
    if path is None or path == ":memory:":
        yield False
        return
    import fcntl

    with open(f"{path}.budgetopt-ask.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# -- joining a study ------------------------------------------------------------------------


def join_study(
    storage: optuna.storages.BaseStorage,
    name: str,
    *,
    direction: str,
    pruner: BudgetPruner,
    setup: dict,
    create: bool = False,
) -> optuna.Study:
    """The study ``name``, created with a :class:`~budgetopt.BudgetSampler` and ``pruner``
    when it does not exist, else joined after checking that it was made for the same
    task: direction, ladder and brackets (``budgetopt.ladder``), and ``setup`` (script and
    mode, study user attr ``budgetopt.setup``).

    A missing study whose name is close to an existing one is taken for a typo and
    refused unless ``create`` is True.
    """
    names = [s.study_name for s in storage.get_all_studies()]
    if name not in names and not create:
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.8)
        if close:
            raise InputError(
                f"there is no study {name!r}, but there is {' and '.join(map(repr, close))}: a typo? "
                f"(pass --create to start a new study named {name!r})"
            )
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction=cast(Any, direction),
        sampler=BudgetSampler(),
        pruner=pruner,
        load_if_exists=True,
    )
    if len(study.directions) != 1 or study.direction.name.lower() != direction:
        found = ", ".join(d.name.lower() for d in study.directions)
        raise InputError(f"study {name!r} is to {found}, but the study script's direction is {direction!r}")
    attrs = study.user_attrs
    described = pruner.describe()
    if STUDY_ATTR_LADDER in attrs and attrs[STUDY_ATTR_LADDER] != described:
        raise InputError(
            f"study {name!r} was made with ladder {_ladder_text(attrs[STUDY_ATTR_LADDER])}, this worker has "
            f"{_ladder_text(described)}: use the same study script, --quick and --brackets"
        )
    if STUDY_ATTR_SETUP in attrs and attrs[STUDY_ATTR_SETUP] != setup:
        found = attrs[STUDY_ATTR_SETUP]
        raise InputError(
            f"study {name!r} is run with {', '.join(f'{k} {v!r}' for k, v in found.items())}; this worker has "
            f"{', '.join(f'{k} {v!r}' for k, v in setup.items())}"
        )
    if STUDY_ATTR_LADDER not in attrs:
        study.set_user_attr(STUDY_ATTR_LADDER, described)
    if STUDY_ATTR_SETUP not in attrs:
        study.set_user_attr(STUDY_ATTR_SETUP, setup)
    return study


def _ladder_text(described: dict) -> str:
    brackets = len(described.get("brackets", ())) or 1
    return f"rungs {described.get('rungs')} (eta {described.get('reduction_factor')}, {brackets} bracket{'s' * (brackets > 1)})"


# -- rung snapshots -------------------------------------------------------------------------


def remove_snapshot(store: Any, trial: FrozenTrial) -> None:
    """Delete ``trial``'s rung snapshot, if it has one left (a finished trial's is gone)."""
    record = trial.user_attrs.get(ATTR_SNAPSHOT)
    if store is not None and record:
        with contextlib.suppress(Exception):  # already removed: by its run, or by hand
            store.remove(record["id"])


class RetryStaleTrial:
    """The heartbeat's stale-trial callback: re-queue a trial whose worker died.

    Optuna's :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback` makes the WAITING
    copy (params, user attrs -- with the rung snapshot's id -- and ``failed_trial``);
    its retry resumes from that snapshot. After ``max_retry`` retries of one trial (None:
    no limit), the trial is not re-queued and its snapshot is deleted.
    """

    def __init__(self, max_retry: int | None = 3, snapshot_store: Any = None) -> None:
        self.max_retry = max_retry
        self.snapshot_store = snapshot_store
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.max_retry is not None and len(trial.system_attrs.get("retry_history", ())) >= self.max_retry:
            remove_snapshot(self.snapshot_store, trial)
            return
        self._retry(study, trial)


def heartbeat_options(interval: int, grace_period: int, retry: RetryStaleTrial) -> dict:
    """``RDBStorage`` keyword arguments for the heartbeat: a trial is stale after
    ``grace_period`` seconds without one (``grace_period > interval``)."""
    if grace_period <= interval:
        raise InputError(f"the grace period ({grace_period} s) must be longer than the heartbeat interval ({interval} s)")
    return {"heartbeat_interval": interval, "grace_period": grace_period, "heartbeat_stale_trial_callback": retry}


# -- the worker loop ------------------------------------------------------------------------


@dataclasses.dataclass
class WorkerReport:
    """What one worker did: trials it ran, by final state."""

    complete: int = 0
    pruned: int = 0
    failed: int = 0
    abandoned: int = 0  # failed by another worker, which found its heartbeat late

    @property
    def trials(self) -> int:
        return self.complete + self.pruned + self.failed + self.abandoned


def worker_identity(device: str | None = None) -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "device": device}


def run_worker(
    study: optuna.Study,
    objective: Callable[[optuna.trial.Trial], float],
    budget: StudyBudget,
    *,
    max_repeated_errors: int = 3,
    snapshot_store: Any = None,
    requeue: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    identity: dict | None = None,
    describe: Callable[[FrozenTrial], str] | None = None,
    next_trial: Callable[[optuna.Study, Callable[[optuna.Study], optuna.trial.Trial]], optuna.trial.Trial | None] | None = None,
    say: Callable[[str], None] = lambda message: print(message, file=sys.stderr, flush=True),
) -> WorkerReport:
    """Run trials of ``study`` until ``budget`` is reached over all its workers.

    See the module docstring for what is guaranteed. ``requeue`` re-queues the running
    trial when the worker is interrupted (default: a :class:`RetryStaleTrial`).
    Raises :class:`RepeatedTrialError` when one error ended ``max_repeated_errors``
    trials in a row; ``KeyboardInterrupt`` after re-queueing the running trial.
    ``describe(trial)``: the line said when a trial completes (default: its value,
    budget and compute). ``next_trial(study, ask)``, called inside the ask lock, replaces
    the budget's choice: it returns the trial to run (made with ``ask``, which pops a
    WAITING one first) or None when there is none; it must not read every trial of a
    large study (:mod:`budgetopt.bench.workers` hands out table units this way).
    """
    storage = storage_of(study)
    interval = getattr(storage, "get_heartbeat_interval", lambda: None)()
    requeue = requeue or RetryStaleTrial(snapshot_store=snapshot_store)
    identity = identity or worker_identity()
    report = WorkerReport()
    repeated: tuple[str, int] = ("", 0)
    idle = 0  # looks in a row that found no trial to run while others ran
    while True:
        if interval:
            _fail_stale_trials(study)
        with ask_lock(storage, study_id(study)):
            if next_trial is None:
                trials = study.get_trials(deepcopy=False)
                waiting = any(t.state == TrialState.WAITING for t in trials)
                trial = _ask(study) if waiting or not budget.reached(trials) else None
            else:
                trial = next_trial(study, _ask)
                trials = [] if trial else study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if trial is not None and interval:
                cast(Any, storage).record_heartbeat(trial_id(trial))  # from now on, its death is noticed
        if trial is None:
            if interval and _others_running(trials):
                # a retry may still come (a running trial whose worker dies): look again soon, so that the
                # last worker stops within seconds of the others' end, backing off to the heartbeat interval
                # so that many idle workers do not read the study every few seconds for a long trial
                time.sleep(min(interval, max(1.0, interval / 10) * 2**idle))
                idle += 1
                continue
            say(f"study {study.study_name!r} has its {budget.describe(trials)}: worker done")
            return report
        idle = 0
        state, error = _run_trial(study, trial, objective, interval, identity, snapshot_store, requeue)
        frozen = storage.get_trial(trial_id(trial))
        if state is None:
            report.abandoned += 1
            say(f"trial {trial.number} {error}")
            continue
        if state == TrialState.COMPLETE:
            report.complete += 1
            compute = frozen.user_attrs.get(ATTR_COMPUTE)
            say(
                describe(frozen)
                if describe
                else f"trial {trial.number} complete: {frozen.value:.6g} at budget {frozen.last_step}, compute {compute}"
            )
        elif state == TrialState.PRUNED:
            report.pruned += 1
            say(f"trial {trial.number} pruned: {frozen.user_attrs.get(ATTR_ENDED, 'by the pruner')}")
        else:
            report.failed += 1
            say(f"trial {trial.number} {frozen.user_attrs.get(ATTR_ENDED)}")
        if state != TrialState.FAIL:
            repeated = ("", 0)
            continue
        key = re.sub(r"\d+(\.\d+)?", "#", error)
        repeated = (key, repeated[1] + 1 if key == repeated[0] else 1)
        if repeated[1] >= max_repeated_errors:
            raise RepeatedTrialError(
                f"trial {trial.number} failed: {error}; the same error ended {repeated[1]} trials in a row "
                f"(--max-repeated-errors {max_repeated_errors})"
            )


def _run_trial(study, trial, objective, interval, identity, snapshot_store, requeue) -> tuple[TrialState | None, str]:
    """Run ``objective`` on ``trial`` and tell its state; the error's one-line text.

    State None: the trial was failed by another worker meanwhile -- its heartbeat was
    late by more than the grace period (a stalled process, a slow network) -- and is
    re-queued there; this worker's writes to it are refused, and it leaves it.
    """
    try:
        with _heartbeat(storage_of(study), trial_id(trial), interval):
            trial.set_user_attr(ATTR_WORKER, identity)
            return _run_objective(study, trial, objective, snapshot_store, requeue)
    except ProtocolError:  # told FAIL by _run_objective: the worker stops
        raise
    except Exception:
        if storage_of(study).get_trial(trial_id(trial)).state.is_finished():
            return None, "failed by another worker (no heartbeat within the grace period) and re-queued: left to its retry"
        raise


def _run_objective(study, trial, objective, snapshot_store, requeue) -> tuple[TrialState, str]:
    try:
        value = objective(trial)
    except optuna.TrialPruned:
        study.tell(trial, state=TrialState.PRUNED)
        return TrialState.PRUNED, ""
    except KeyboardInterrupt:
        if not storage_of(study).get_trial(trial_id(trial)).state.is_finished():
            study.tell(trial, state=TrialState.FAIL)
            requeue(study, storage_of(study).get_trial(trial_id(trial)))
            print(
                f"trial {trial.number} interrupted: re-queued, to resume from its last rung snapshot", file=sys.stderr, flush=True
            )
        raise
    except Exception as error:
        protocol = isinstance(error, ProtocolError)  # the study script breaks the protocol: every trial would fail alike
        raised = error.error if isinstance(error, UserCodeError) and error.error is not None else error  # the script's own
        text = typed_line(raised)
        trial.set_user_attr(ATTR_ENDED, f"failed: {message_line(error)}" if protocol else f"failed: {text}{_where(raised)}")
        study.tell(trial, state=TrialState.FAIL)
        remove_snapshot(snapshot_store, storage_of(study).get_trial(trial_id(trial)))
        if protocol:
            raise  # the worker stops with the one line (exit 2), trying no other trial
        if os.environ.get("BUDGETOPT_DEBUG"):
            traceback.print_exception(error)
        return TrialState.FAIL, text
    if not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
        text = f"the objective returned {value!r}, not a finite number"
        trial.set_user_attr(ATTR_ENDED, f"failed: {text}")
        study.tell(trial, state=TrialState.FAIL)
        return TrialState.FAIL, text
    study.tell(trial, value)
    return TrialState.COMPLETE, ""


def _ask(study: optuna.Study) -> optuna.trial.Trial:
    with warnings.catch_warnings():
        # Optuna warns that its heartbeat is meant for Study.optimize: run_worker beats itself.
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        return study.ask()


def _fail_stale_trials(study: optuna.Study) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _others_running(trials: Sequence[FrozenTrial]) -> bool:
    """Trials that budgetopt workers are running (they record a heartbeat)."""
    return any(t.state == TrialState.RUNNING and ATTR_WORKER in t.user_attrs for t in trials)


@contextlib.contextmanager
def _heartbeat(storage: optuna.storages.BaseStorage, trial_id: int, interval: int | None) -> Iterator[None]:
    """Record the trial's heartbeat every ``interval`` seconds while the block runs."""
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            with contextlib.suppress(Exception):  # the database is away for a moment: try again
                cast(Any, storage).record_heartbeat(trial_id)

    thread = threading.Thread(target=beat, name=f"budgetopt-heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _where(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return ""
    frame = frames[-1]
    return f" (at {Path(frame.filename).name}:{frame.lineno} in {frame.name})"


# -- launching one worker per device ---------------------------------------------------------


@dataclasses.dataclass
class LaunchResult:
    """The workers :func:`launch` started: ``(label, exit status)`` each, and whether it
    was interrupted."""

    workers: list[tuple[str, int]]
    interrupted: bool

    @property
    def failed(self) -> list[tuple[str, int]]:
        return [(label, code) for label, code in self.workers if code != 0]


def launch(
    worker_args: Sequence[str],
    gpus: Sequence[int] | None = None,
    workers: int | None = None,
    *,
    say: Callable[[str], None] = lambda message: print(message, file=sys.stderr, flush=True),
) -> LaunchResult:
    """Start ``budgetopt worker WORKER_ARGS`` once per GPU (``gpus``) or ``workers`` times
    on the CPU, and wait for all of them.

    The worker of GPU ``K`` runs with ``CUDA_VISIBLE_DEVICES=K`` and ``--device cuda``, so
    it sees that GPU only; a CPU worker runs with ``--device cpu`` and, unless set,
    ``OMP_NUM_THREADS`` = cores / workers. The first Ctrl-C (or SIGTERM) is forwarded
    to every worker, which re-queues its trial and stops; a second one kills them.
    """
    if (gpus is None) == (workers is None):
        raise InputError("give either gpus or workers")
    base = [sys.executable, "-m", "budgetopt", "worker", *worker_args]
    devices: list[int | None] = list(gpus) if gpus is not None else [None] * int(workers or 0)
    processes: list[tuple[str, subprocess.Popen]] = []
    interrupted = 0

    def forward(signum: int, frame: Any) -> None:
        nonlocal interrupted
        interrupted += 1
        for _, process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL if interrupted > 1 else signum)
        say("stopping the workers (interrupt again to kill them)" if interrupted == 1 else "killing the workers")

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for index, gpu in enumerate(devices):
            if interrupted:
                break
            env = dict(os.environ)
            if gpu is None:
                env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // len(devices))))
                label, device = f"worker {index} (cpu)", "cpu"
            else:
                env["CUDA_VISIBLE_DEVICES"] = str(gpu)
                label, device = f"worker {index} (GPU {gpu})", "cuda"
            env[LAUNCH_LABEL] = label  # prefixes the worker's status lines
            # A session of its own: a terminal's Ctrl-C reaches the workers once, through us.
            process = subprocess.Popen([*base, "--device", device], env=env, start_new_session=True)
            processes.append((label, process))
        say(f"started {len(processes)} worker(s): " + ", ".join(f"{label} pid {p.pid}" for label, p in processes))
        for _, process in processes:
            process.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return LaunchResult([(label, p.returncode) for label, p in processes], interrupted > 0)
