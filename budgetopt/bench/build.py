"""``budgetopt bench build``: train a pool of configurations into a benchmark table.

Every configuration of the pool (:func:`~budgetopt.bench.table.sample_pool`), every
seed and every unit kind (:class:`~budgetopt.bench.table.Kind`) is one *unit*, trained
by :func:`~budgetopt.study_script.train_config` exactly as a live trial of that mode
trains. Units run in ``jobs`` worker processes (one torch thread each); only this
process writes the table, one ``write`` + ``fsync`` per unit, so a crash or a SIGKILL
loses at most the units in flight. ``resume`` repairs a cut-off last line, checks that
the directory holds the same build (study script, ladder, pool seed, seeds, cooldown;
the pool may grow, and so may the kinds) and runs the units that are missing. Units are ordered
configuration by configuration, so a partial table holds complete configurations.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import multiprocessing
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from budgetopt._validation import check_fraction
from budgetopt.bench._process import exit_with_parent
from budgetopt.bench.table import (
    DEFAULT_KINDS,
    META_FILE,
    TABLE_FILE,
    TABLE_FORMAT,
    TABLE_VERSION,
    TableError,
    file_sha256,
    header,
    parse_kind,
    read_meta,
    read_table,
    sample_pool,
    unit_rows,
    writable_directory,
    write_atomic,
    write_json_atomic,
)
from budgetopt.errors import InputError, PathInputError
from budgetopt.modes import COOLDOWN
from budgetopt.study_script import StudyScript, load_study_script, train_config, train_cosine_cooldown


@dataclass(frozen=True)
class BuildSpec:
    """What a worker process needs to train units: the script, its data, the ladder."""

    script: str
    data_dir: str | None
    quick: bool
    rungs: tuple[int, ...]
    cooldown: float
    device: str


@dataclass(frozen=True)
class Unit:
    config: int
    seed: int
    kind: str


_LOADED: dict[tuple, tuple[StudyScript, Any]] = {}


def loaded_script(script: str, data_dir: str | None, quick: bool) -> tuple[StudyScript, Any]:
    """The study script and its data, loaded once per worker process."""
    key = (script, data_dir, quick)
    if key not in _LOADED:
        loaded = load_study_script(script)
        _LOADED[key] = loaded, loaded.load_data(data_dir=data_dir, quick=quick)
    return _LOADED[key]


def _prepared(spec: BuildSpec) -> tuple[StudyScript, Any]:
    return loaded_script(spec.script, spec.data_dir, spec.quick)


def _init_worker(parent: int, threads: int) -> None:
    exit_with_parent(parent)
    torch.set_num_threads(threads)


def train_unit(spec: BuildSpec, unit: Unit, params: dict) -> str:
    """Train one unit; its rows of ``table.csv``."""
    script, data = _prepared(spec)
    kind = parse_kind(unit.kind)
    if kind.cooled:
        assert kind.cooldown is not None
        result = train_cosine_cooldown(script, params, spec.rungs, kind.cooldown, unit.seed, spec.device, data=data)
        return unit_rows(unit.config, unit.seed, unit.kind, spec.rungs, params, result)
    result = train_config(
        script, params, spec.rungs, kind.mode, unit.seed, spec.device, data=data, test=True, **kind.run_options(spec.cooldown)
    )
    return unit_rows(unit.config, unit.seed, unit.kind, spec.rungs, params, result)


def data_record(data: Any) -> dict:
    """What the table was trained on: the data's own ``source`` in words (a
    :class:`~budgetopt.data.Splits` has one), and a SHA-256 of its tensors (the script's
    own ``digest`` attribute where it gives one)."""
    import hashlib

    digest = getattr(data, "digest", None)
    if digest is None and all(hasattr(data, split) for split in ("train", "val", "test")):
        h = hashlib.sha256()
        for split in ("train", "val", "test"):
            for tensor in getattr(data, split):
                if isinstance(tensor, torch.Tensor):
                    h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        digest = h.hexdigest()
    return {"source": getattr(data, "source", None if data is None else type(data).__name__), "digest": digest}


def _versions() -> dict:
    from budgetopt import __version__

    return {
        "budgetopt": __version__,
        "torch": torch.__version__,
        "optuna": optuna.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _repair(table_path: Path) -> None:
    """Drop a cut-off last line (a write that a crash interrupted)."""
    with table_path.open("rb+") as f:
        data = f.read()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            f.truncate(end)


def _drop_partial_units(table_path: Path, rungs: int) -> None:
    """Rewrite the table without units that have fewer rows than rungs (a unit is one
    write, so only a crash inside that write leaves one, at the end)."""
    lines = table_path.read_text().splitlines(keepends=True)
    counts: dict[tuple[str, str, str], int] = {}
    for line in lines[1:]:
        config, seed, kind = line.split(",", 3)[:3]
        counts[(config, seed, kind)] = counts.get((config, seed, kind), 0) + 1
    partial = {k for k, n in counts.items() if n != rungs}
    if partial:
        kept = [lines[0], *(line for line in lines[1:] if tuple(line.split(",", 3)[:3]) not in partial)]
        write_atomic(table_path, lambda tmp: tmp.write_text("".join(kept)))


@dataclass(frozen=True)
class BuildPlan:
    """A build checked and laid out: its ``meta`` (what ``meta.json`` records), the
    ``spec`` a worker trains with, every unit in build order (configuration by
    configuration), and the units already trained."""

    meta: dict
    spec: BuildSpec
    units: list[Unit]
    finished: set[Unit]

    @property
    def pending(self) -> list[Unit]:
        return [u for u in self.units if u not in self.finished]


def plan_build(
    script: str | Path,
    *,
    configs: int,
    seeds: int | Sequence[int] = 2,
    kinds: Sequence[str] | None = None,
    ladder: str | None = None,
    pool_seed: int = 0,
    cooldown: float | None = None,
    device: str = "cpu",
    data_dir: str | None = None,
    quick: bool = False,
    previous: dict | None = None,
    finished: Callable[[list[str]], set[Unit]] = lambda kinds: set(),
    where: str = "--out",
    command: str,
    say=lambda message: None,
) -> BuildPlan:
    """Check a build's arguments, draw its pool, and lay out its units. ``previous``:
    the meta of the build this one resumes (it must be the same build; its pool and
    kinds may grow); ``finished(kinds)`` the units it already holds, given the merged
    kinds. ``where`` names the build's place in errors. Shared by the local build
    (:func:`build_table`) and the build through an Optuna storage
    (:mod:`budgetopt.bench.workers`).

    Over 60 lines on purpose: it is the one list of what makes two builds the same build
    (the checks a resume makes, key by key, beside the meta they compare), which split
    across functions would be two lists to keep in step."""
    if isinstance(configs, bool) or not isinstance(configs, int) or configs < 1:
        raise InputError(f"--configs must be an integer >= 1, got {configs!r}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if isinstance(seeds, int) and seeds < 1 or not seed_list:
        raise InputError(f"--seeds must be an integer >= 1, got {seeds!r}")
    if kinds is None:
        kinds = previous["kinds"] if previous else list(DEFAULT_KINDS)
    kinds = list(dict.fromkeys(kinds))
    for kind in kinds:
        parse_kind(kind)
    if "restart" not in kinds:
        raise InputError(f"--kinds must include restart (its last rung is every configuration's truth), got {','.join(kinds)}")
    if cooldown is None:  # a new table: the library's; a resumed one: its own
        cooldown = previous["cooldown"] if previous else COOLDOWN
    check_fraction(cooldown, "--cooldown")
    loaded = load_study_script(script)
    ladder_name, the_ladder = loaded.named_ladder(ladder)
    pool, space = sample_pool(loaded, configs, pool_seed)
    data = data_record(loaded.load_data(data_dir=data_dir, quick=quick))
    meta = {
        "format": TABLE_FORMAT,
        "version": TABLE_VERSION,
        "study": loaded.name,
        "script": str(script),
        "script_sha256": file_sha256(loaded.path),
        "direction": loaded.direction,
        "chance": getattr(loaded.module, "chance", None),
        "ladder": {"name": ladder_name, "rungs": list(the_ladder.rungs), "reduction_factor": the_ladder.reduction_factor},
        "quick": quick,
        "space": {name: optuna.distributions.distribution_to_json(d) for name, d in sorted(space.items())},
        "pool_seed": pool_seed,
        "pool": pool,
        "seeds": seed_list,
        "kinds": kinds,
        "cooldown": cooldown,
        "data": data,
    }
    done: set[Unit] = set()
    if previous:
        for key in ("study", "script_sha256", "direction", "ladder", "quick", "space", "pool_seed", "seeds", "cooldown"):
            if previous.get(key) != meta[key]:
                raise TableError(
                    f"--resume: {where} holds a different build ({key} {previous.get(key)!r}, this command {meta[key]!r}); "
                    f"use another {where.split()[0]}, or the first build's options"
                )
        old_digest = (previous.get("data") or {}).get("digest")
        if old_digest is not None and old_digest != data["digest"]:
            raise TableError(
                f"--resume: {where} was trained on other data (digest {old_digest[:12]}..., now "
                f"{str(data['digest'])[:12]}...; source now {data['source']})"
            )
        missing = [k for k in previous["kinds"] if k not in kinds]
        if missing:
            raise TableError(
                f"--resume: {where} holds kinds {','.join(previous['kinds'])}; --kinds {','.join(kinds)} lacks "
                f"{','.join(missing)} (a table grows by kinds, it does not lose them)"
            )
        added = [k for k in kinds if k not in previous["kinds"]]
        if added:
            say(f"--resume: adding kind(s) {','.join(added)} to the table's {','.join(previous['kinds'])}")
        kinds = [*previous["kinds"], *added]  # the table's order first
        meta["kinds"] = kinds
        if previous["pool"] != pool[: len(previous["pool"])]:
            raise TableError(f"--resume: the pool in {where} is not this command's (another budgetopt or study script version)")
        done = finished(kinds)
        meta["started"] = previous.get("started")
        meta["commands"] = [*previous.get("commands", [previous.get("command")]), command]
        meta["command"] = previous.get("command")  # the first build's; "commands" has every run
        for key in ("cost_seconds", "finished"):  # kept when this resume trains nothing
            if key in previous:
                meta[key] = previous[key]
    else:
        meta["started"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        meta["command"] = command
        meta["commands"] = [command]
    meta["versions"] = _versions()
    meta["data_dir"] = data_dir
    units = [Unit(c, s, k) for c in range(configs) for s in seed_list for k in kinds]
    spec = BuildSpec(str(script), data_dir, quick, tuple(the_ladder.rungs), cooldown, device)
    return BuildPlan(meta, spec, units, done)


def build_table(
    script: str | Path,
    out: str | Path,
    *,
    configs: int,
    seeds: int | Sequence[int] = 2,
    kinds: Sequence[str] | None = None,
    ladder: str | None = None,
    pool_seed: int = 0,
    cooldown: float | None = None,
    jobs: int = 1,
    threads: int = 1,
    device: str = "cpu",
    data_dir: str | None = None,
    quick: bool = False,
    resume: bool = False,
    progress: bool = True,
    command: str | None = None,
    say=lambda message: None,
) -> Path:
    """Build (or, with ``resume``, complete or grow) the table of ``configs`` x ``seeds``
    x ``kinds`` in ``out``; returns ``out``. ``kinds``: default :data:`DEFAULT_KINDS`, or
    with ``resume`` the table's own; kinds given with ``resume`` are added to the table's.
    See the module docstring."""
    # Over 60 lines for its signature: one keyword per option of ``bench build``; the body is under 50.
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InputError(f"--jobs must be an integer >= 1, got {jobs!r}")
    out = Path(out)
    table_path, meta_path = out / TABLE_FILE, out / META_FILE
    if out.exists() and not out.is_dir():
        raise PathInputError(f"--out {out} is a file, not a directory")
    previous = read_meta(out) if resume and meta_path.is_file() else None

    def finished(kinds: list[str]) -> set[Unit]:
        _repair(table_path)
        _drop_partial_units(table_path, len(previous["ladder"]["rungs"]) if previous else 0)
        done = read_table(out.resolve()).done  # checked row by row
        seed_list = previous["seeds"] if previous else []
        return {Unit(int(c), seed_list[s], kinds[k]) for c, s, k in np.argwhere(done)}

    plan = plan_build(
        script, configs=configs, seeds=seeds, kinds=kinds, ladder=ladder, pool_seed=pool_seed, cooldown=cooldown,
        device=device, data_dir=data_dir, quick=quick, previous=previous, finished=finished, where=f"--out {out}",
        command=command or f"budgetopt bench build {shlex.quote(str(script))} --configs {configs} --out {shlex.quote(str(out))}",
        say=say,
    )
    meta = plan.meta
    if previous is None:
        if resume:
            say(f"--resume: no table in {out} yet; building it")
        elif table_path.exists() or meta_path.exists():
            raise TableError(f"--out {out} already holds a table: pass --resume to complete or grow it, or choose another --out")
        writable_directory(out)
        table_path.write_text(header(list(meta["space"])))
    meta["machine"] = {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "jobs": jobs,
        "torch_threads": threads,
        "device": device,
    }
    finished_units = set(plan.finished)
    write_meta(meta, out, finished_units, plan.units)
    pending = plan.pending
    if pending:
        say(f"{len(finished_units)} of {len(plan.units)} units in {out} already; training {len(pending)} on {jobs} process(es)")
        _run(plan.spec, pending, meta["pool"], out, meta, finished_units, plan.units, jobs, threads, progress)
    return out


def write_meta(meta: dict, out: Path, finished: set[Unit], units: list[Unit]) -> None:
    configs = len(meta["pool"])
    per_config = len(meta["seeds"]) * len(meta["kinds"])
    counts = np.zeros(configs, dtype=int)
    for u in finished:
        counts[u.config] += 1
    meta["units_complete"] = len(finished)
    meta["configs_complete"] = int((counts == per_config).sum())
    meta["complete"] = len(finished) == len(units)
    meta["updated"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    if meta.get("complete"):
        meta.setdefault("finished", meta["updated"])
    else:
        meta.pop("finished", None)  # a table grown after it was finished
    write_json_atomic(out / META_FILE, meta)


def measured_cost(out: Path) -> dict:
    """Mean wall seconds per unit of each kind, and per configuration and seed for all
    kinds together, over the units in the table at ``out`` (as this machine ran them)."""
    table = read_table(out)
    cost = {}
    for k, kind in enumerate(table.kinds):
        seconds = table.seconds[:, :, k][table.done[:, :, k]]
        if seconds.size:
            cost[kind] = round(float(seconds.mean()), 3)
    complete = table.done.all(axis=2)
    if complete.any():
        cost["all_kinds"] = round(float(table.seconds.sum(axis=2)[complete].mean()), 3)
    return cost


class _InProcess(concurrent.futures.Executor):
    """Runs each unit when it is submitted, in this process (``jobs=1``)."""

    def submit(self, fn, /, *args, **kwargs):
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.set_result(fn(*args, **kwargs))  # an exception propagates at once
        return future


def _run(spec, pending, pool, out, meta, finished, units, jobs, threads, progress) -> None:
    from tqdm.auto import tqdm

    table_path = out / TABLE_FILE
    bar = tqdm(
        total=len(units),
        initial=len(finished),
        unit="unit",
        desc="bench build",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
        smoothing=0.05,
    )
    if jobs == 1:  # in this process: no start-up cost, a SIGKILL of this process stops the training
        torch.set_num_threads(threads)
        executor: concurrent.futures.Executor = _InProcess()
    else:
        executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(os.getpid(), threads),
        )
    last_meta = time.monotonic()
    running: dict[concurrent.futures.Future, Unit] = {}
    queue = list(pending)
    try:
        with table_path.open("a") as table:
            while queue or running:
                while queue and len(running) < 2 * jobs:
                    unit = queue.pop(0)
                    running[executor.submit(train_unit, spec, unit, pool[unit.config])] = unit
                done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    unit = running.pop(future)
                    rows = future.result()
                    table.write(rows)
                    table.flush()
                    os.fsync(table.fileno())
                    finished.add(unit)
                    bar.update(1)
                if time.monotonic() - last_meta > 30 or not (queue or running):
                    meta["cost_seconds"] = measured_cost(out)
                    write_meta(meta, out, finished, units)
                    last_meta = time.monotonic()
    except BaseException:
        for future in running:
            future.cancel()
        meta["cost_seconds"] = measured_cost(out)
        write_meta(meta, out, finished, units)
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        bar.close()
