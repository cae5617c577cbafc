"""A table built by many workers, on many machines, through an Optuna storage.

The local build (:func:`~budgetopt.bench.build.build_table`, ``--jobs``) runs on one
machine. A build through a storage runs on Optuna's own engine instead, the one
``budgetopt worker`` already runs studies on (PostgreSQL across machines; SQLite or a
journal file on one):

- ``budgetopt bench build ... --storage URL --study NAME`` (:func:`enqueue_build`)
  checks and lays out the build exactly as a local one (:func:`~budgetopt.bench.build.plan_build`:
  the pool, seeds, kinds, ladder, cooldown, the script's SHA-256, the data's digest),
  records it in the study user attr ``budgetopt.bench_build`` and queues its units,
  configuration by configuration: ``budgetopt.bench_queue`` lists them and
  ``budgetopt.bench_next`` counts those handed out. Each unit becomes one trial (user
  attr ``budgetopt.unit``) when a worker takes it, inside the study's ask lock
  (:func:`budgetopt.workers.ask_lock`). The queue is a list rather than one WAITING
  trial per unit made up front because Optuna's ``ask`` reads every WAITING trial: at
  2,000 queued units on SQLite that is 0.22 s per unit, a fifth of a ``fashion_mlp``
  unit, growing with the table; taking the next unit reads only the study's attrs and
  its few WAITING trials (the retries of dead workers' units). Run again with
  ``--resume``, it queues again the units that are neither trained nor running nor
  waiting (so also a unit that failed), and grows the pool or the kinds as a local
  ``--resume`` does.
- ``budgetopt bench worker --storage URL --study NAME`` (:func:`run_build_worker`), on
  any machine, refuses a study script whose SHA-256 or data whose digest differs from
  the recorded ones, then takes units until none is queued, with
  :func:`budgetopt.workers.run_worker`: the study workers' loop, heartbeat and re-queueing.
  A unit is trained by :func:`~budgetopt.bench.build.train_unit`, the function the local
  build calls; its rows of ``table.csv`` go to the trial in one user attr
  (``budgetopt.unit_rows``), and only then is the trial told COMPLETE (its value: the
  unit's wall seconds). A unit is all of its rungs or nothing: rows of a trial that did
  not complete are never read.
- A worker that dies stops heartbeating; after the grace period the next worker that
  asks fails its trial and re-queues a copy (Optuna's stale-trial callback), which is
  trained again from its start (a unit is one configuration and seed trained over the
  ladder: minutes, as long as one trial of a study; a unit-level snapshot would save
  less than it costs). A worker that was only stalled finds its trial failed: its
  writes are refused and the retry's rows are the unit's. Should two trials of one unit
  still both complete, the export keeps the first and :func:`build_status` counts the
  other. ``JournalStorage`` has no heartbeat in Optuna 5: there a dead worker's unit
  stays RUNNING until ``bench build --resume`` is run after every worker has stopped.
- ``budgetopt bench export`` (:func:`export_build`) writes ``table.csv`` and
  ``meta.json`` in the local build's format, rows in the local build's order; an
  incomplete build is refused unless ``partial``. ``budgetopt bench status``
  (:func:`build_status`) counts units done, running, queued and failed, the measured
  seconds per kind and the time left.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import optuna
from optuna.trial import FrozenTrial, TrialState

from budgetopt._optuna import study_id
from budgetopt.attrs import (
    ATTR_ENDED,
    ATTR_UNIT,
    ATTR_UNIT_ROWS,
    ATTR_WORKER,
    STUDY_ATTR_BENCH_BUILD,
    STUDY_ATTR_BENCH_NEXT,
    STUDY_ATTR_BENCH_QUEUE,
)
from budgetopt.bench._process import exit_with_parent
from budgetopt.bench.build import (
    BuildPlan,
    BuildSpec,
    Unit,
    data_record,
    loaded_script,
    measured_cost,
    plan_build,
    train_unit,
    write_meta,
)
from budgetopt.bench.table import (
    META_FILE,
    TABLE_FILE,
    TableError,
    file_sha256,
    header,
    read_meta,
    writable_directory,
    write_atomic,
)
from budgetopt.storage import safe_url
from budgetopt.study_script import StudyScriptError, load_study_script
from budgetopt.workers import StudyBudget, WorkerReport, ask_lock, run_worker

# A unit trial's value is its wall seconds; the study "minimizes" them only so that
# optuna-dashboard plots the cost of every unit.
DIRECTION: Literal["minimize"] = "minimize"


def _unit_of(trial: FrozenTrial) -> Unit | None:
    record = trial.user_attrs.get(ATTR_UNIT)
    return Unit(int(record["config"]), int(record["seed"]), str(record["kind"])) if isinstance(record, dict) else None


def describe_unit(unit: Unit) -> str:
    return f"unit config {unit.config} seed {unit.seed} {unit.kind}"


def build_of(study: optuna.Study) -> dict:
    """The build recorded in ``study`` (its ``meta``), or a one-line :class:`TableError`."""
    meta = study.user_attrs.get(STUDY_ATTR_BENCH_BUILD)
    if not isinstance(meta, dict):
        raise TableError(
            f"study {study.study_name!r} holds no table build: start one with "
            f"budgetopt bench build SCRIPT ... --storage URL --study {study.study_name}"
        )
    return meta


def _all_units(meta: dict) -> list[Unit]:
    return [Unit(c, s, k) for c in range(len(meta["pool"])) for s in meta["seeds"] for k in meta["kinds"]]


def _unit_at(meta: dict, position: int) -> Unit:
    """``_all_units(meta)[position]``, without the list."""
    seeds, kinds = meta["seeds"], meta["kinds"]
    config, rest = divmod(position, len(seeds) * len(kinds))
    return Unit(config, seeds[rest // len(kinds)], kinds[rest % len(kinds)])


def _next_unit(study: optuna.Study, ask: Callable[[optuna.Study], optuna.trial.Trial]) -> optuna.trial.Trial | None:
    """The trial of the next unit (inside the ask lock): a WAITING one first (the retry
    of a unit whose worker died), else the next unit of the queue, made a trial now.
    Reads the waiting trials and the study's attrs, never every trial: the cost per
    unit does not grow with the table."""
    if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        return ask(study)
    attrs = study.user_attrs
    queue, handed = attrs.get(STUDY_ATTR_BENCH_QUEUE, []), attrs.get(STUDY_ATTR_BENCH_NEXT, 0)
    if handed >= len(queue):
        return None
    unit = _unit_at(attrs[STUDY_ATTR_BENCH_BUILD], queue[handed])
    trial = ask(study)
    # The unit first, then the count: a worker dying between the two leaves a unit that
    # is handed out again (trained twice, one kept), never one that is lost.
    trial.set_user_attr(ATTR_UNIT, dataclasses.asdict(unit))
    study.set_user_attr(STUDY_ATTR_BENCH_NEXT, handed + 1)
    return trial


def _trained(trials: Sequence[FrozenTrial]) -> dict[Unit, FrozenTrial]:
    """The first completed trial of each unit (trials come in number order)."""
    trained: dict[Unit, FrozenTrial] = {}
    for trial in trials:
        unit = _unit_of(trial)
        if unit is not None and trial.state == TrialState.COMPLETE and ATTR_UNIT_ROWS in trial.user_attrs:
            trained.setdefault(unit, trial)
    return trained


# -- enqueueing a build ---------------------------------------------------------------------


def enqueue_build(
    storage: optuna.storages.BaseStorage,
    name: str,
    script: str | Path,
    *,
    configs: int,
    seeds: int | Sequence[int] = 2,
    kinds: Sequence[str] | None = None,
    ladder: str | None = None,
    pool_seed: int = 0,
    cooldown: float | None = None,
    data_dir: str | None = None,
    quick: bool = False,
    resume: bool = False,
    command: str | None = None,
    say: Callable[[str], None] = lambda message: None,
) -> BuildPlan:
    """Record the build in study ``name`` on ``storage`` (created when missing) and queue
    every unit that is neither trained nor running nor waiting for a retry; returns the
    plan (its ``finished``: the units already trained). See the module docstring.

    Over 60 lines for its argument list: the build options are :func:`plan_build`'s,
    passed through by name."""
    exists = name in [s.study_name for s in storage.get_all_studies()]
    previous = None
    if exists:
        study = optuna.load_study(study_name=name, storage=storage)
        previous = study.user_attrs.get(STUDY_ATTR_BENCH_BUILD)
        if previous is None:
            raise TableError(f"study {name!r} exists and is not a table build: choose another --study")
        if not resume:
            raise TableError(
                f"study {name!r} already holds a build: pass --resume to complete or grow it, or choose another --study"
            )
    elif resume:
        say(f"--resume: no build in study {name!r} yet; starting it")
    trials = study.get_trials(deepcopy=False) if exists else []
    plan = plan_build(
        script,
        configs=configs,
        seeds=seeds,
        kinds=kinds,
        ladder=ladder,
        pool_seed=pool_seed,
        cooldown=cooldown,
        data_dir=data_dir,
        quick=quick,
        previous=previous,
        finished=lambda kinds: set(_trained(trials)),
        where=f"study {name!r}",
        command=command or f"budgetopt bench build {script} --configs {configs} --study {name}",
        say=say,
    )
    if not exists:
        study = optuna.create_study(storage=storage, study_name=name, direction=DIRECTION)
    with ask_lock(storage, study_id(study)):  # no worker takes a unit while the queue is rewritten
        trials = study.get_trials(deepcopy=False)
        active = {
            unit for t in trials if t.state in (TrialState.WAITING, TrialState.RUNNING) and (unit := _unit_of(t)) is not None
        }
        finished = set(_trained(trials))
        todo = [i for i, u in enumerate(plan.units) if u not in finished and u not in active]
        study.set_user_attr(STUDY_ATTR_BENCH_BUILD, plan.meta)
        study.set_user_attr(STUDY_ATTR_BENCH_QUEUE, todo)
        study.set_user_attr(STUDY_ATTR_BENCH_NEXT, 0)
    say(
        f"study {name!r}: {len(plan.units)} units, {len(finished)} trained, {len(active)} queued or running before, "
        f"{len(todo)} queued now"
    )
    return dataclasses.replace(plan, finished=finished)


# -- the worker -----------------------------------------------------------------------------


class _QueueBudget(StudyBudget):
    """A build study's budget: never a fresh trial, only the queued units."""

    def reached(self, trials: Sequence[FrozenTrial]) -> bool:
        return True

    def describe(self, trials: Sequence[FrozenTrial]) -> str:
        return "units trained (none queued)"


def checked_spec(meta: dict, *, device: str, script: str | None = None, data_dir: str | None = None) -> BuildSpec:
    """The spec a worker trains the build ``meta`` with, after checking that this
    machine's study script and data are the build's: the script's SHA-256 and the
    data's digest equal the recorded ones, else a one-line :class:`TableError`."""
    path = script or meta["script"]
    if script is None and path.endswith(".py") and not Path(path).expanduser().is_file():
        raise StudyScriptError(  # the path as `bench build` was given it, maybe relative to another directory
            f"study script {path} does not exist here: the build recorded it as {path!r} (from where `bench build` "
            "ran); give its path on this machine with --script PATH"
        )
    loaded = load_study_script(path)
    sha = file_sha256(loaded.path)
    if sha != meta["script_sha256"]:
        raise TableError(
            f"study script {loaded.path} differs from the build's (SHA-256 {sha[:12]}..., the build recorded "
            f"{meta['script_sha256'][:12]}...): run the worker with the script the build was made with (--script PATH)"
        )
    data_dir = data_dir if data_dir is not None else meta.get("data_dir")
    recorded = (meta.get("data") or {}).get("digest")
    found = data_record(loaded_script(path, data_dir, meta["quick"])[1])  # hashes the data once
    if recorded is not None and found["digest"] != recorded:
        raise TableError(
            f"the data on this machine is not the build's (digest {str(found['digest'])[:12]}..., the build recorded "
            f"{recorded[:12]}...; source here: {found['source']})"
        )
    return BuildSpec(str(path), data_dir, meta["quick"], tuple(meta["ladder"]["rungs"]), meta["cooldown"], device)


def run_build_worker(
    study: optuna.Study,
    *,
    device: str = "cpu",
    threads: int = 1,
    script: str | None = None,
    data_dir: str | None = None,
    max_repeated_errors: int = 3,
    say: Callable[[str], None] = lambda message: print(message, file=sys.stderr, flush=True),
) -> WorkerReport:
    """Train the queued units of the build in ``study`` until none is left (and none is
    running elsewhere, whose retry could still come); see the module docstring. The
    study's storage should carry the heartbeat (:func:`budgetopt.workers.heartbeat_options`)."""
    import torch

    meta = build_of(study)
    spec = checked_spec(meta, device=device, script=script, data_dir=data_dir)
    torch.set_num_threads(threads)

    def objective(trial: optuna.trial.Trial) -> float:
        nonlocal meta
        unit = _unit_of(trial)  # type: ignore[arg-type]  # a Trial has user_attrs too
        if unit is None:
            raise TableError(f"trial {trial.number} of study {study.study_name!r} is not a unit of its build")
        if unit.config >= len(meta["pool"]):  # the build grew its pool since this worker started
            meta = build_of(study)
        start = time.perf_counter()
        rows = train_unit(spec, unit, meta["pool"][unit.config])
        trial.set_user_attr(ATTR_UNIT_ROWS, rows)  # before COMPLETE: a completed unit has its rows
        return round(time.perf_counter() - start, 3)

    def describe(trial: FrozenTrial) -> str:
        unit = _unit_of(trial)
        return f"{describe_unit(unit)} trained in {trial.value:.1f} s" if unit else f"trial {trial.number} complete"

    return run_worker(
        study,
        objective,
        _QueueBudget(),
        max_repeated_errors=max_repeated_errors,
        describe=describe,
        next_trial=_next_unit,
        say=say,
    )


def _worker_process(parent: int, url: str, name: str, rdb_options: dict, quiet: bool, options: dict) -> WorkerReport:
    import warnings

    from budgetopt.storage import open_shared_storage

    exit_with_parent(parent)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the heartbeat is "experimental"
    storage = open_shared_storage(url, rdb_options)
    study = optuna.load_study(study_name=name, storage=storage)
    label = f"[worker {os.getpid()}] "
    return run_build_worker(study, say=lambda m: None if quiet else print(label + m, file=sys.stderr, flush=True), **options)


def run_build_workers(url: str, name: str, jobs: int, rdb_options: dict, *, quiet: bool = False, **options: Any) -> WorkerReport:
    """``jobs`` workers of the build in study ``name`` as processes of this machine, each
    with its own connection to the storage at ``url``; their reports added up."""
    total = WorkerReport()
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_worker_process, os.getpid(), url, name, rdb_options, quiet, options) for _ in range(jobs)]
        for future in futures:
            report = future.result()
            for field in dataclasses.fields(WorkerReport):
                setattr(total, field.name, getattr(total, field.name) + getattr(report, field.name))
    return total


# -- status and export ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BuildStatus:
    """Where a build through a storage stands. ``failed``: units whose last trial failed
    and that are not queued again (``bench build --resume`` re-queues them), with the
    first failure's reason in ``errors``; ``duplicates``: trained twice (one kept);
    ``cost_seconds``: mean wall seconds per unit of each kind so far; ``seconds_left``:
    the units not yet trained at those costs, divided among the units running now (at
    least one); None before any unit is trained."""

    units: int
    done: int
    running: int
    queued: int
    failed: int
    duplicates: int
    workers: int
    cost_seconds: dict[str, float]
    seconds_left: float | None
    errors: tuple[str, ...]

    @property
    def missing(self) -> int:
        return self.units - self.done

    def text(self, name: str) -> str:
        lines = [
            f"study {name!r}: {self.done} of {self.units} units trained, {self.running} running "
            f"({self.workers} worker(s)), {self.queued} queued, {self.failed} failed"
            + (f", {self.duplicates} trained twice (one kept)" if self.duplicates else "")
        ]
        if self.cost_seconds:
            lines.append("measured seconds per unit: " + ", ".join(f"{k} {v:g}" for k, v in self.cost_seconds.items()))
        if self.done == self.units:
            lines.append("complete: export it with budgetopt bench export")
        elif self.seconds_left is not None:
            lines.append(
                f"time left: about {_duration(self.seconds_left)} at {max(1, self.running)} unit(s) at a time"
                + ("" if self.running else " (no worker is running)")
            )
        lines += [f"failed: {e}" for e in self.errors[:5]]
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def build_status(study: optuna.Study, trials: Sequence[FrozenTrial] | None = None) -> BuildStatus:
    """Where the build in ``study`` stands; see :class:`BuildStatus`. ``trials``: the
    study's trials when the caller has read them already."""
    meta = build_of(study)
    units = _all_units(meta)
    trials = study.get_trials(deepcopy=False) if trials is None else trials
    trained = _trained(trials)
    by_unit: dict[Unit, list[FrozenTrial]] = {}
    for trial in trials:
        unit = _unit_of(trial)
        if unit is not None:
            by_unit.setdefault(unit, []).append(trial)
    unit_trials = [t for its in by_unit.values() for t in its]
    running = sum(t.state == TrialState.RUNNING for t in unit_trials)
    waiting = sum(t.state == TrialState.WAITING for t in unit_trials)
    queue = study.user_attrs.get(STUDY_ATTR_BENCH_QUEUE, [])
    queued = waiting + max(0, len(queue) - study.user_attrs.get(STUDY_ATTR_BENCH_NEXT, 0))
    failed, errors = 0, []
    for unit, its in by_unit.items():
        if unit not in trained and all(t.state == TrialState.FAIL for t in its):
            failed += 1
            reason = next((t.user_attrs.get(ATTR_ENDED) for t in its if t.user_attrs.get(ATTR_ENDED)), "its worker died")
            errors.append(f"{describe_unit(unit)}: {reason}")
    duplicates = sum(
        sum(t.state == TrialState.COMPLETE and ATTR_UNIT_ROWS in t.user_attrs for t in its) - 1
        for u, its in by_unit.items()
        if u in trained
    )
    workers = len(
        {str(t.user_attrs.get(ATTR_WORKER)) for t in trials if t.state == TrialState.RUNNING and ATTR_WORKER in t.user_attrs}
    )
    seconds: dict[str, list[float]] = {}
    for unit, trial in trained.items():
        if trial.value is not None:
            seconds.setdefault(unit.kind, []).append(trial.value)
    cost = {kind: round(sum(v) / len(v), 3) for kind in meta["kinds"] if (v := seconds.get(kind))}
    left = None
    if cost:
        mean = sum(cost.values()) / len(cost)
        left = sum(cost.get(u.kind, mean) for u in units if u not in trained) / max(1, running)
    done = sum(u in trained for u in units)
    return BuildStatus(len(units), done, running, queued, failed, duplicates, workers, cost, left, tuple(errors))


def export_build(study: optuna.Study, out: str | Path, *, partial: bool = False, url: str | None = None) -> Path:
    """Write the build in ``study`` as ``table.csv`` + ``meta.json`` in ``out`` (the local
    build's format; its units in the local build's order). An incomplete build raises a
    :class:`TableError` that counts the missing units, unless ``partial``. ``out`` may
    hold an earlier export of the same study (it is replaced), nothing else."""
    meta = dict(build_of(study))
    out = Path(out)
    source = {"storage": safe_url(url) if url else None, "study": study.study_name}
    if (out / META_FILE).is_file() or (out / TABLE_FILE).exists():
        old = read_meta(out) if (out / META_FILE).is_file() else {}
        if old.get("exported_from", {}).get("study") != study.study_name:
            raise TableError(
                f"--out {out} already holds a table that is not an export of study {study.study_name!r}: choose another --out"
            )
    trials = study.get_trials(deepcopy=False)
    status = build_status(study, trials)
    if status.missing and not partial:
        raise TableError(
            f"study {study.study_name!r}: {status.missing} of {status.units} units are not trained yet "
            f"({status.running} running, {status.queued} queued, {status.failed} failed): wait for the workers "
            f"(budgetopt bench status), or pass --partial to export the {status.done} that are"
        )
    writable_directory(out)
    trained = _trained(trials)
    units = _all_units(meta)
    rows = [trained[u].user_attrs[ATTR_UNIT_ROWS] for u in units if u in trained]
    write_atomic(out / TABLE_FILE, lambda tmp: tmp.write_text(header(list(meta["space"])) + "".join(rows)))
    workers = {str(t.user_attrs.get(ATTR_WORKER)) for t in trained.values()}
    meta["exported_from"] = source
    meta["machine"] = {"workers": len(workers), "hosts": sorted({_host(t) for t in trained.values()} - {None})}
    finished = set(u for u in units if u in trained)
    write_meta(meta, out, finished, units)
    meta["cost_seconds"] = measured_cost(out)
    write_meta(meta, out, finished, units)
    return out


def _host(trial: FrozenTrial) -> str | None:
    worker = trial.user_attrs.get(ATTR_WORKER)
    return worker.get("host") if isinstance(worker, dict) else None
