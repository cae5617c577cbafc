"""The comparison harness: budget-aware search against successive halving on a full-length schedule.

:func:`compare` runs, on one study script (:mod:`budgetopt.study_script`) and at the same
total **compute** per search (iterations executed, re-done ones included: the sum of the
trials' ``budgetopt.compute`` user attrs; trials are started until the compute is spent,
so a search overshoots by less than one trial, and the actual compute is reported):

=============  ===================================================================================
``sha``        the baseline: Optuna's own ``SuccessiveHalvingPruner(min_resource=min_budget,
               reduction_factor=eta, min_early_stopping_rate=0)`` with ``TPESampler(seed)``;
               every trial runs ``continue`` mode: one full-length schedule (``baseline_profile``,
               default ``step``: x0.1 at 50% and 75%, budget-unaware) reported at the ladder's
               rungs while its learning rate is still high.
``hyperband``  Optuna's ``HyperbandPruner(min_budget, max_budget, eta)`` + TPE, the same trials.
``restart``    budgetopt: :class:`~budgetopt.BudgetSampler` + :class:`~budgetopt.BudgetPruner`,
               each rung retrained from the initial weights with linear decay to its budget.
``branch``     the same with a constant-rate trunk and a linear cooldown branched off at each rung
               (over ``cooldown`` of the rung, default 0.2).
``random``     ``RandomSampler``, no pruning: every trial trains the full budget (linear decay).
``tpe``        ``TPESampler``, no pruning, every trial at the full budget.
=============  ===================================================================================

for several seeds. Each search picks the configuration with the best validation value
among its trials that reached the full budget; the test score of that configuration was
recorded when it finished (``make_objective(record_test=True)``), so nothing is retrained.
Per method: the picked configuration's test score (mean and 95% t-interval over seeds),
compute, wall time, trials; and the *anytime curve*, the incumbent's test score against the
compute spent, from which the compute each method needs to reach the ``sha`` baseline's
final mean score is read.

**Rank fidelity** (DESIGN.md, "How we measure the claim"): a fixed pool of ``pool``
configurations (``RandomSampler(pool_seed)`` over the script's search space) is trained over
the ladder's rungs in each mode with seed 0 (``continue`` with ``baseline_profile``). A
configuration's *truth* is its full-budget score with linear decay, averaged over
``truth_seeds`` seeds; seed 0's is ``restart`` mode's last rung, not trained again. Per mode
and rung: the Spearman correlation between rung scores and truth over the whole pool and
over the configurations that *train* (see below); the selection regret, truth of the pool's
best minus truth of the best configuration among the rung's top ``1/eta`` and of its top
pick; and how many configurations diverged. A pool of a few dozen configurations gives a
Spearman correlation with a wide spread, so the lowest rung's figures (and the paired
differences restart - continue and branch - restart) also get a 95% percentile-bootstrap
interval over the configurations that train (:func:`bootstrap_spearman`).

A run that diverged (NaN/inf loss or parameters) scores the script's ``chance`` at every
rung it did not reach, or ranks below every other run when the script has no ``chance``.
A configuration *trains* when its truth is better than ``chance + 0.1 * (best truth - chance)``
(it got at least a tenth of the way from chance to the pool's best), or, without
``chance``, when none of its truth runs diverged.

Outputs (in ``out``, each written to a temporary name and renamed when complete, the
report last, so an interrupted run never leaves a report passed off as complete):
``report.md`` (the command at its top; rendered from the JSON by :func:`render_report`),
``results.json`` (every number), ``accuracy_vs_compute.png``, ``rank_fidelity.png``,
``lr_traces.png`` and ``studies.db``, a SQLite storage with one Optuna study per method
and seed (``sha-seed0``, ...), its budgetopt note and figures (including accuracy against
compute for every method) published for optuna-dashboard::

    results = compare("fashion_mnist", seeds=2, pool=16, out="compare-fashion-mnist")
    # budgetopt dashboard sqlite:///compare-fashion-mnist/studies.db

Work is split into units (one search, or one pool configuration in one mode) that run in
this process (``jobs=1``) or in ``jobs`` spawned worker processes, each with ``threads``
torch threads. With ``resume=True`` units finished by an interrupted run with the same
settings (kept in ``out/.units``) are not run again. Every derived number is computed by
:func:`derive` from the raw runs that ``results.json`` keeps (trial records, rung and
truth values), so :func:`refresh` brings an earlier run's outputs up to a changed analysis
without training again.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import hashlib
import json
import math
import multiprocessing
import numbers
import os
import pickle
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from budgetopt._validation import check_choice, check_fraction, check_iterations
from budgetopt.ladder import Ladder
from budgetopt.pruners import BudgetPruner
from budgetopt.run import ATTR_COMPUTE, ATTR_ENDED, ATTR_RUNG_VALUES, COOLDOWN, MODES
from budgetopt.samplers import BudgetSampler
from budgetopt.schedules import PROFILES
from budgetopt.study_script import ATTR_TEST_VALUE, StudyScript, load_study_script, make_objective, train_config

METHODS = ("sha", "hyperband", "restart", "branch", "random", "tpe")
BASELINE = "sha"
METHOD_WORDS = {
    "sha": "Optuna SuccessiveHalvingPruner + TPE, full-length {profile} schedule (continue)",
    "hyperband": "Optuna HyperbandPruner + TPE, full-length {profile} schedule (continue)",
    "restart": "budgetopt BudgetPruner + BudgetSampler, restart mode (linear decay to each rung)",
    "branch": "budgetopt BudgetPruner + BudgetSampler, branch mode (constant trunk + linear cooldowns over {cooldown:g} of each rung)",
    "random": "random search, no pruning, every trial at the full budget (linear decay)",
    "tpe": "TPE, no pruning, every trial at the full budget (linear decay)",
}
RESULTS_FORMAT = 1
TRAIN_FRACTION = 0.1  # of the way from chance to the best truth: "trains at all"
TRIAL_SEED_STRIDE = 10_000  # search seed s: trial n trains with seed 10,000 * (s + 1) + n
FILES = {
    "report": "report.md",
    "results": "results.json",
    "accuracy_vs_compute": "accuracy_vs_compute.png",
    "rank_fidelity": "rank_fidelity.png",
    "lr_traces": "lr_traces.png",
    "studies": "studies.db",
}


# -- settings and units ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Setting:
    """What a worker process needs to rebuild the script, its data and the ladder."""

    script: str  # a built-in name or a path
    script_digest: str
    quick: bool
    data_dir: str | None
    device: str
    rungs: tuple[int, ...]
    reduction_factor: int
    baseline_profile: str
    threads: int
    cooldown: float = COOLDOWN

    @property
    def ladder(self) -> Ladder:
        return Ladder(self.rungs[0], self.rungs[-1], self.reduction_factor)


# Per process: (script, quick, data_dir) -> (StudyScript, data), loaded once.
_LOADED: dict[tuple, tuple[StudyScript, Any]] = {}


def _prepared(setting: _Setting) -> tuple[StudyScript, Any]:
    key = (setting.script, setting.quick, setting.data_dir)
    if key not in _LOADED:
        script = load_study_script(setting.script)
        _LOADED[key] = script, script.load_data(data_dir=setting.data_dir, quick=setting.quick)
    return _LOADED[key]


def _init_worker(threads: int) -> None:
    # One thread per job: on a small CPU more threads than cores make training ~10x slower.
    torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _run_unit(setting: _Setting, unit: tuple) -> dict:
    """One unit of work: ``("search", method, seed, compute)`` or
    ``("pool", index, mode, seed, params, budgets)``."""
    script, data = _prepared(setting)
    if unit[0] == "search":
        return _search(script, data, setting, *unit[1:])
    _, index, mode, seed, params, budgets = unit
    profile = setting.baseline_profile if mode == "continue" else "linear"
    result = train_config(
        script, params, budgets, mode, seed, setting.device, data=data, test=False, profile=profile, cooldown=setting.cooldown
    )
    return {
        "kind": "pool",
        "index": index,
        "mode": mode,
        "seed": seed,
        "budgets": list(budgets),
        "rung_values": {str(b): v for b, v in result.rung_values.items()},
        "compute": result.compute,
        "diverged": result.diverged,
        "seconds": round(result.seconds, 2),
    }


class _StopAtCompute:
    """Optuna callback: stop the study once its trials have spent ``compute`` iterations."""

    def __init__(self, compute: int) -> None:
        self.compute = compute
        self.spent = 0

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.spent += int(trial.user_attrs.get(ATTR_COMPUTE, 0))
        if self.spent >= self.compute:
            study.stop()


def search_study(method: str, seed: int, ladder: Ladder, direction: str, study_name: str | None = None) -> optuna.Study:
    """An in-memory study with the sampler and pruner of ``method`` (see the module doc)."""
    check_choice(method, "method", METHODS)
    if method == "sha":
        sampler: optuna.samplers.BaseSampler = optuna.samplers.TPESampler(seed=seed)
        pruner: optuna.pruners.BasePruner = optuna.pruners.SuccessiveHalvingPruner(
            min_resource=ladder.min_budget, reduction_factor=ladder.reduction_factor, min_early_stopping_rate=0
        )
    elif method == "hyperband":
        sampler = optuna.samplers.TPESampler(seed=seed)
        pruner = optuna.pruners.HyperbandPruner(
            min_resource=ladder.min_budget, max_resource=ladder.max_budget, reduction_factor=ladder.reduction_factor
        )
    elif method in ("restart", "branch"):
        sampler = BudgetSampler(seed=seed)
        pruner = BudgetPruner(ladder.min_budget, ladder.max_budget, ladder.reduction_factor)
    else:
        sampler = optuna.samplers.RandomSampler(seed=seed) if method == "random" else optuna.samplers.TPESampler(seed=seed)
        pruner = optuna.pruners.NopPruner()
    return optuna.create_study(direction=direction, sampler=sampler, pruner=pruner, study_name=study_name or f"{method}-seed{seed}")


def method_objective(script: StudyScript, data: Any, method: str, seed: int, setting: _Setting):
    """The objective of ``method``'s trials (see the module doc), test score recorded."""
    ladder = setting.ladder
    # cooldown: branch mode's; BudgetedRun ignores it in the other modes.
    common = dict(device=setting.device, seed=TRIAL_SEED_STRIDE * (seed + 1), data=data, record_test=True, cooldown=setting.cooldown)
    if method in ("sha", "hyperband"):
        return make_objective(script, mode="continue", budgets=ladder.rungs, profile=setting.baseline_profile, **common)
    if method in ("restart", "branch"):
        return make_objective(script, mode=method, **common)
    return make_objective(script, mode="restart", budgets=[ladder.max_budget], **common)


def _search(script: StudyScript, data: Any, setting: _Setting, method: str, seed: int, compute: int) -> dict:
    ladder = setting.ladder
    study = search_study(method, seed, ladder, script.direction)
    objective = method_objective(script, data, method, seed, setting)
    stop = _StopAtCompute(compute)
    start = time.perf_counter()
    study.optimize(objective, callbacks=[stop], gc_after_trial=False)
    return {
        "kind": "search",
        "method": method,
        "seed": seed,
        "trials": study.get_trials(deepcopy=True),
        "user_attrs": dict(study.user_attrs),
        "seconds": round(time.perf_counter() - start, 2),
    }


# -- running units ---------------------------------------------------------------------------


class _InProcess(concurrent.futures.Executor):
    """Runs each unit at submit time, in this process (``jobs=1``)."""

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.set_result(fn(*args, **kwargs))  # an exception propagates at once
        return future


class _UnitCache:
    """Finished units of a run, one pickle each in ``out/.units`` (for ``resume``)."""

    def __init__(self, directory: Path, setting: _Setting, enabled: bool) -> None:
        self.directory = directory
        self.setting = setting
        self.enabled = enabled

    def _path(self, unit: tuple) -> Path:
        key = repr((asdict(self.setting) | {"threads": None}, unit)).encode()
        return self.directory / (hashlib.sha1(key).hexdigest()[:20] + ".pkl")

    def get(self, unit: tuple) -> dict | None:
        path = self._path(unit)
        if not (self.enabled and path.is_file()):
            return None
        try:
            return pickle.loads(path.read_bytes())
        except Exception:  # a unit written by another version, or cut short: run it again
            return None

    def put(self, unit: tuple, result: dict) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        _write_atomic(self._path(unit), pickle.dumps(result))

    def clear(self) -> None:
        if self.directory.is_dir():
            for path in self.directory.glob("*.pkl"):
                path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.directory.rmdir()


def _unit_cost(unit: tuple) -> int:
    """The compute a unit will spend (for the progress bar)."""
    if unit[0] == "search":
        return unit[3]
    budgets, mode = unit[5], unit[2]
    if mode == "restart":
        return sum(budgets)
    return budgets[-1]


def _unit_line(unit: tuple, result: dict) -> str:
    if result["kind"] == "search":
        trials = result["trials"]
        compute = sum(int(t.user_attrs.get(ATTR_COMPUTE, 0)) for t in trials)
        return f"search {result['method']} seed {result['seed']}: {len(trials)} trials, compute {compute:,} ({result['seconds']:.0f} s)"
    values = " ".join(f"{v:.4f}" for v in result["rung_values"].values())
    ended = f" ({result['diverged']})" if result["diverged"] else ""
    return f"pool #{result['index']} {result['mode']} seed {result['seed']}: {values}{ended} ({result['seconds']:.0f} s)"


# -- compare ---------------------------------------------------------------------------------


def compare(
    script: StudyScript | str | Path,
    *,
    seeds: int | Sequence[int] = 2,
    compute: int | None = None,
    pool: int = 16,
    truth_seeds: int = 2,
    methods: Sequence[str] = METHODS,
    out: str | Path | None = None,
    quick: bool = False,
    device: str = "cpu",
    data_dir: str | Path | None = None,
    baseline_profile: str = "step",
    cooldown: float = COOLDOWN,
    pool_seed: int = 0,
    jobs: int = 1,
    threads: int = 1,
    resume: bool = False,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """Compare the methods on ``script`` at equal compute and measure rank fidelity.

    Args:
        script: a :class:`~budgetopt.study_script.StudyScript`, a built-in study name or a
            ``.py`` study script.
        seeds: searches per method: a count (seeds 0..N-1) or the seeds themselves.
        compute: iterations each search may spend (default: 6 full budgets); at least
            the ladder's lowest rung.
        pool: configurations of the rank-fidelity pool (0: no rank fidelity; else >= 3).
        truth_seeds: seeds each pool configuration's truth is averaged over (>= 1;
            DESIGN.md asks for at least 2).
        methods: a subset of :data:`METHODS`.
        out: output directory (default ``compare-<study>``), created when missing.
        quick: the script's quick ladder and data.
        device: where models train (``"cpu"``, ``"cuda"``, ...).
        data_dir: where the script finds its data; must exist when given.
        baseline_profile: the full-length schedule of ``sha``/``hyperband`` and of the
            pool's ``continue`` runs (:data:`budgetopt.schedules.PROFILES`; default
            ``step``, budget-unaware x0.1 at 50% and 75%).
        cooldown: branch mode's cooldown fraction of each rung (default 0.2), for the
            ``branch`` searches and the pool's branch runs. A one-configuration pass
            through the ladder costs ``B_max + cooldown * (sum of the other rungs)``.
        pool_seed: seed of the random sampler that draws the pool.
        jobs: worker processes (1: this process).
        threads: torch threads per job.
        resume: reuse units an interrupted run with the same settings left in ``out``.
        progress: a tqdm progress bar and one line per finished unit on stderr.
        command: the command line shown at the top of the report (default: the
            equivalent ``budgetopt compare`` command).

    Returns the results (what ``results.json`` holds). Raises ValueError, TypeError or
    FileNotFoundError, with a one-line message, for bad input, before any training.
    """
    script = script if isinstance(script, StudyScript) else load_study_script(script)
    ladder = script.ladder_for(quick)
    seed_list = _seeds(seeds)
    methods = _methods(methods)
    compute = 6 * ladder.max_budget if compute is None else check_iterations(compute, "compute")
    if compute < ladder.min_budget:
        raise ValueError(
            f"compute {compute} is smaller than one lowest rung ({ladder.min_budget} iterations of the ladder "
            f"{'/'.join(map(str, ladder.rungs))}): give at least {ladder.min_budget}, better several full budgets "
            f"({ladder.max_budget} each)"
        )
    pool = check_iterations(pool, "pool", minimum=0)
    if 0 < pool < 3:
        raise ValueError(f"pool must be 0 (no rank fidelity) or at least 3 configurations for a rank correlation, got {pool}")
    truth_seeds = check_iterations(truth_seeds, "truth_seeds")
    check_choice(baseline_profile, "baseline_profile", tuple(PROFILES))
    cooldown = check_fraction(cooldown, "cooldown")
    pool_seed = check_iterations(pool_seed, "pool_seed", minimum=0)
    jobs = check_iterations(jobs, "jobs")
    threads = check_iterations(threads, "threads")
    chance = script_chance(script)
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise FileNotFoundError(f"data directory {data_dir} does not exist")
    if not methods and not pool:
        raise ValueError("nothing to do: no methods and pool=0")
    out = Path(out if out is not None else f"compare-{script.name}").expanduser()
    _check_writable(out)
    command = command or canonical_command(
        script, quick, seed_list, compute, pool, truth_seeds, methods, out, device, data_dir, baseline_profile, jobs, threads, cooldown, pool_seed
    )

    setting = _Setting(
        script=script.name if script.module.__name__.startswith("budgetopt.studies.") else str(script.path.resolve()),
        script_digest=hashlib.sha1(script.path.read_bytes()).hexdigest(),
        quick=quick,
        data_dir=None if data_dir is None else str(Path(data_dir).expanduser().resolve()),
        device=str(device),
        rungs=ladder.rungs,
        reduction_factor=ladder.reduction_factor,
        baseline_profile=baseline_profile,
        threads=threads,
        cooldown=cooldown,
    )
    previous_threads = torch.get_num_threads()
    previous_verbosity = optuna.logging.get_verbosity()
    started = datetime.datetime.now(datetime.timezone.utc)
    start = time.perf_counter()
    try:
        _init_worker(threads)
        data = script.load_data(data_dir=setting.data_dir, quick=quick)  # fails here, before any training
        _LOADED[(setting.script, quick, setting.data_dir)] = (script, data)
        pool_params = sample_pool(script, pool, pool_seed)
        # The pool first, one configuration after another (partial results in out/.units
        # can be read while the searches run), then the searches.
        units = []
        for i, params in enumerate(pool_params):
            units += [("pool", i, mode, 0, params, ladder.rungs) for mode in MODES]
            units += [("pool", i, "restart", s, params, (ladder.max_budget,)) for s in range(1, truth_seeds)]
        units += [("search", m, s, compute) for s in seed_list for m in methods]
        cache = _UnitCache(out / ".units", setting, enabled=True)
        if not resume:
            cache.clear()
        finished = _run_units(setting, units, cache, jobs, threads, progress)
        results = _assemble(
            script, data, ladder, setting, finished, methods, seed_list, compute, pool_params, truth_seeds, chance, pool_seed
        )
        results.update(
            command=command,
            started=started.isoformat(timespec="seconds"),
            wall_seconds=round(time.perf_counter() - start, 1),
            machine=_machine(jobs, threads, device),
        )
        _write_outputs(results, out, [r for _, r in finished if r["kind"] == "search"])
    finally:
        _LOADED.pop((setting.script, quick, setting.data_dir), None)  # the data of a long-lived process
        torch.set_num_threads(previous_threads)
        optuna.logging.set_verbosity(previous_verbosity)
    cache.clear()
    return results


def _seeds(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        return list(range(check_iterations(seeds, "seeds")))
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
        raise TypeError(f"seeds must be a count >= 1 or a non-empty list of integer seeds, got {seeds!r}")
    checked = [check_iterations(s, "seed", minimum=0) for s in seeds]
    if len(set(checked)) != len(checked):
        raise ValueError(f"seeds must be distinct, got {list(seeds)}")
    return checked


def _methods(methods: Sequence[str]) -> list[str]:
    if isinstance(methods, str):
        methods = [methods]
    chosen = []
    for method in methods:
        check_choice(method, "method", METHODS)
        if method not in chosen:
            chosen.append(method)
    return [m for m in METHODS if m in chosen]  # a fixed order in every table


def script_chance(script: StudyScript) -> float | None:
    """The script's optional ``chance``: the score of a model that learned nothing."""
    chance = getattr(script.module, "chance", None)
    if chance is not None and (isinstance(chance, bool) or not isinstance(chance, numbers.Real) or not math.isfinite(chance)):
        raise ValueError(f"study script {script.path}: chance must be a finite number (the score of a model that learned nothing), got {chance!r}")
    return None if chance is None else float(chance)


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".probe-"):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ValueError(f"output directory {out} cannot be written: {reason}") from None


def canonical_command(
    script, quick, seeds, compute, pool, truth_seeds, methods, out, device, data_dir, baseline_profile, jobs, threads, cooldown=COOLDOWN, pool_seed=0
) -> str:
    """The ``budgetopt compare`` command line with these settings (``--seeds N`` runs
    seeds 0..N-1; other seed lists exist only in the library call)."""
    argv = ["budgetopt", "compare", script.name if script.module.__name__.startswith("budgetopt.studies.") else str(script.path)]
    argv += ["--quick"] if quick else []
    argv += ["--seeds", str(len(seeds)), "--compute", str(compute)] if methods else []  # searches only
    argv += ["--pool", str(pool), "--truth-seeds", str(truth_seeds)]
    argv += ["--methods", ",".join(methods) or "none", "--baseline-profile", baseline_profile, "--out", str(out)]
    argv += [] if device == "cpu" else ["--device", str(device)]
    argv += [] if data_dir is None else ["--data-dir", str(data_dir)]
    argv += [] if jobs == 1 else ["--jobs", str(jobs)]
    argv += [] if threads == 1 else ["--threads", str(threads)]
    argv += [] if cooldown == COOLDOWN else ["--cooldown", f"{cooldown:g}"]
    argv += [] if pool_seed == 0 else ["--pool-seed", str(pool_seed)]
    return shlex.join(argv)


def sample_pool(script: StudyScript, size: int, seed: int = 0) -> list[dict]:
    """``size`` configurations drawn by ``RandomSampler(seed)`` from the script's search space."""
    study = optuna.create_study(direction=script.direction, sampler=optuna.samplers.RandomSampler(seed=seed))
    return [script.search_space(study.ask()) for _ in range(size)]


def _run_units(setting: _Setting, units: list[tuple], cache: _UnitCache, jobs: int, threads: int, show: bool) -> list[tuple[tuple, dict]]:
    """Run every unit (and the truth runs that restart pool runs could not supply)."""
    from tqdm.auto import tqdm

    pending = list(units)
    finished: list[tuple[tuple, dict]] = []
    bar = tqdm(total=sum(map(_unit_cost, units)), unit="it", desc="compare", file=sys.stderr, disable=not show, dynamic_ncols=True, smoothing=0.05)
    if jobs == 1:
        executor: concurrent.futures.Executor = _InProcess()
    else:
        executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker, initargs=(threads,)
        )
    running: dict[concurrent.futures.Future, tuple] = {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                unit = pending.pop(0)
                cached = cache.get(unit)
                if cached is not None:
                    future: concurrent.futures.Future = concurrent.futures.Future()
                    future.set_result(cached)
                else:
                    future = executor.submit(_run_unit, setting, unit)
                running[future] = unit
            done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                unit = running.pop(future)
                result = future.result()
                cache.put(unit, result)
                finished.append((unit, result))
                bar.update(_unit_cost(unit))
                if show:
                    bar.write(_unit_line(unit, result), file=sys.stderr)
                truth = _missing_truth(unit, result)
                if truth is not None:
                    pending.append(truth)
                    bar.total += _unit_cost(truth)
    except BaseException:
        for future in running:
            future.cancel()
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return finished


def _missing_truth(unit: tuple, result: dict) -> tuple | None:
    """A restart pool run that diverged before the full budget did not train seed 0's
    truth: the full-budget run of that seed, to run on its own."""
    if unit[0] != "pool" or unit[2] != "restart" or unit[3] != 0 or len(unit[5]) == 1:
        return None
    if str(unit[5][-1]) in result["rung_values"]:
        return None
    return ("pool", unit[1], "restart", 0, unit[4], (unit[5][-1],))


# -- assembling the numbers -------------------------------------------------------------------


def _signed(direction: str) -> float:
    return 1.0 if direction == "maximize" else -1.0


def trial_records(trials: list[FrozenTrial]) -> list[dict]:
    """What the report keeps of each trial of a search."""
    records = []
    for t in sorted(trials, key=lambda t: t.number):
        records.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "params": t.params,
                "compute": int(t.user_attrs.get(ATTR_COMPUTE, 0)),
                "rung_values": t.user_attrs.get(ATTR_RUNG_VALUES, {}),
                "value": t.value if t.state == TrialState.COMPLETE else None,
                "test_value": t.user_attrs.get(ATTR_TEST_VALUE),
                "ended": t.user_attrs.get(ATTR_ENDED),
                "seconds": round(t.duration.total_seconds(), 2) if t.duration is not None else None,
            }
        )
    return records


def anytime_curve(records: list[dict], direction: str) -> list[list]:
    """``[compute spent, incumbent test value, incumbent validation value, incumbent
    trial number]`` after each trial, once some trial has reached the full budget. The
    incumbent is the completed trial with the best validation value so far."""
    sign = _signed(direction)
    spent, incumbent, curve = 0, None, []
    for r in records:
        spent += r["compute"]
        value = r["value"]
        if value is not None and math.isfinite(value) and (incumbent is None or sign * value > sign * incumbent["value"]):
            incumbent = r
        if incumbent is not None:
            curve.append([spent, incumbent["test_value"], incumbent["value"], incumbent["number"]])
    return curve


def interval95(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and half-width of the 95% t-interval (None with fewer than two values)."""
    if not values:
        return None, None
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None
    from scipy import stats

    return mean, float(stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values)))


def mean_curve(curves: list[list[list]]) -> list[list[float]]:
    """The mean over seeds of step-function anytime curves, ``[compute, mean test value]``,
    at every compute where some curve changes, from the first compute at which every
    seed has an incumbent."""
    if not curves or any(not c for c in curves):
        return []
    grid = sorted({point[0] for c in curves for point in c})
    mean = []
    for x in grid:
        values = []
        for c in curves:
            current = [p[1] for p in c if p[0] <= x]
            if not current or current[-1] is None:
                break
            values.append(current[-1])
        else:
            mean.append([x, statistics.fmean(values)])
    return mean


def compute_to_reach(curve: list[list[float]], target: float | None, direction: str) -> int | None:
    """The first compute at which ``curve`` is at least as good as ``target``."""
    if target is None:
        return None
    sign = _signed(direction)
    for x, y in curve:
        if sign * y >= sign * target - 1e-12:
            return int(x)
    return None


def summarize_searches(runs: dict[str, list[dict]], direction: str, baseline: str = BASELINE) -> dict:
    """Per method: the picked configurations' test values over seeds (mean, 95%
    interval), compute, wall time, trials, the mean anytime curve, and the compute it
    needs to reach the baseline's final mean test value."""
    summary = {}
    for method, method_runs in runs.items():
        tests = [r["picked"]["test_value"] for r in method_runs if r["picked"] and r["picked"]["test_value"] is not None]
        mean, half = interval95(tests)
        summary[method] = {
            "test_mean": mean,
            "test_ci95": half,
            "test_values": [r["picked"]["test_value"] if r["picked"] else None for r in method_runs],
            "val_values": [r["picked"]["value"] if r["picked"] else None for r in method_runs],
            "compute_mean": statistics.fmean(r["compute"] for r in method_runs),
            "compute_values": [r["compute"] for r in method_runs],
            "seconds_mean": statistics.fmean(r["seconds"] for r in method_runs),
            "trials_mean": statistics.fmean(r["trials"] for r in method_runs),
            "full_budget_trials_mean": statistics.fmean(r["complete"] for r in method_runs),
            "diverged": sum(r["diverged"] for r in method_runs),
            "curve": mean_curve([r["curve"] for r in method_runs]),
        }
    target = summary.get(baseline, {}).get("test_mean")
    for method, s in summary.items():
        s["compute_to_reach_baseline"] = compute_to_reach(s["curve"], target, direction)
        base_compute = summary[baseline]["compute_mean"] if baseline in summary else None
        reach = s["compute_to_reach_baseline"]
        s["reach_fraction_of_baseline_compute"] = None if reach is None or not base_compute else reach / base_compute
    return {"baseline": baseline if baseline in summary else None, "baseline_test_mean": target, "methods": summary}


def _search_run(result: dict) -> dict:
    return {"seed": result["seed"], "seconds": result["seconds"], "trial_records": trial_records(result["trials"])}


def _search_numbers(records: list[dict], direction: str) -> dict:
    """One search's compute, trial counts, anytime curve and pick, from its trials."""
    curve = anytime_curve(records, direction)
    picked = None
    if curve:
        number = curve[-1][3]
        picked = next({k: r[k] for k in ("number", "params", "value", "test_value", "compute")} for r in records if r["number"] == number)
    return {
        "compute": sum(r["compute"] for r in records),
        "trials": len(records),
        "complete": sum(r["state"] == "complete" for r in records),
        "pruned": sum(r["state"] == "pruned" for r in records),
        "diverged": sum(bool(r["ended"]) and r["ended"].startswith("diverged") for r in records),
        "picked": picked,
        "curve": curve,
    }


def rank_fidelity(configs: list[dict], rungs: Sequence[int], reduction_factor: int, direction: str, chance: float | None) -> dict:
    """Spearman, selection regret and divergence per mode and rung over a pool (see the
    module doc). ``configs[i]`` has ``"modes": {mode: {"rung_values": {str(budget): value},
    "diverged": reason or None, "compute": int}}`` and ``"truth_values"`` (one value per
    truth seed, None for a diverged run)."""
    from scipy import stats

    sign = _signed(direction)
    worst = -math.inf if chance is None else sign * chance

    def signed(value: float | None) -> float:
        return worst if value is None or not math.isfinite(value) else sign * value

    truth = [statistics.fmean(signed(v) for v in c["truth_values"]) for c in configs]
    best = max(truth)
    threshold = None if chance is None else sign * chance + TRAIN_FRACTION * (best - sign * chance)

    def trained(score: float) -> bool:
        return math.isfinite(score) and (threshold is None or score > threshold)

    trains = [trained(t) for t in truth]
    # Near the edge of stability one seed may train and another collapse to chance: such a
    # configuration's truth is the mean of a good and a chance score.
    every_seed = [all(trained(signed(v)) for v in c["truth_values"]) for c in configs]

    def spearman(scores: list[float], subset: list[int]) -> float | None:
        if len(subset) < 3:
            return None
        xs, ys = _finite_floor([scores[i] for i in subset]), _finite_floor([truth[i] for i in subset])
        if len(set(xs)) < 2 or len(set(ys)) < 2:
            return None
        r = float(stats.spearmanr(xs, ys).statistic)
        return None if math.isnan(r) else r

    everyone = list(range(len(configs)))
    training = [i for i in everyone if trains[i]]
    stable = [i for i in everyone if every_seed[i]]
    keep = max(1, len(configs) // reduction_factor)
    modes = {}
    at_lowest = {}  # mode -> signed scores at the lowest rung, for the bootstrap
    for mode in MODES:
        runs = [c["modes"].get(mode) for c in configs]
        if any(r is None for r in runs):
            continue
        per_rung = {}
        for budget in rungs:
            scores = [signed(r["rung_values"].get(str(budget))) for r in runs]
            at_lowest.setdefault(mode, scores)
            order = sorted(everyone, key=lambda i: (-scores[i], i))
            kept = max(truth[i] for i in order[:keep])
            reached = [sign * s for i, s in enumerate(scores) if trains[i] and math.isfinite(s)]
            per_rung[str(budget)] = {
                "spearman_all": spearman(scores, everyone),
                "spearman_trains": spearman(scores, training),
                "spearman_every_seed_trains": spearman(scores, stable),
                "regret_kept": _finite_or_none(best - kept),
                "regret_pick": _finite_or_none(best - truth[order[0]]),
                "pick": order[0],
                "mean_score_trains": statistics.fmean(reached) if reached else None,
            }
        computes = [r["compute"] for r in runs if r["diverged"] is None]
        last = str(rungs[-1])
        modes[mode] = {
            "rungs": per_rung,
            "diverged": sum(r["diverged"] is not None for r in runs),
            # Runs that ended at chance level without a NaN: collapsed, not diverged.
            "ended_at_chance": sum(r["diverged"] is None and not trained(signed(r["rung_values"].get(last))) for r in runs),
            "compute_per_config": statistics.fmean(computes) if computes else None,
        }
    return {
        "bootstrap": bootstrap_spearman(at_lowest, truth, training) | {"rung": rungs[0]},
        "truth": [_finite_or_none(sign * t) for t in truth],
        "trains": trains,
        "n_trains": len(training),
        "every_seed_trains": every_seed,
        "n_every_seed_trains": len(stable),
        "split_by_seed": [i for i in training if not every_seed[i]],
        "threshold": None if threshold is None else sign * threshold,
        "chance": chance,
        "best": everyone[truth.index(best)],
        "truth_diverged": sum(v is None for c in configs for v in c["truth_values"]),
        "truth_at_chance": sum(v is not None and not trained(signed(v)) for c in configs for v in c["truth_values"]),
        "kept_per_rung": keep,
        "modes": modes,
    }


BOOTSTRAP_RESAMPLES = 2000
# Paired differences of Spearman the targets name: (mode, minus this mode).
BOOTSTRAP_DIFFERENCES = (("restart", "continue"), ("branch", "restart"))


def bootstrap_spearman(scores: dict[str, list[float]], truth: list[float], subset: list[int], seed: int = 0) -> dict:
    """95% percentile-bootstrap intervals of each mode's Spearman over the configurations
    ``subset`` and of the paired differences in :data:`BOOTSTRAP_DIFFERENCES`: the pool is
    resampled with replacement (the same resamples for every mode), so an interval says
    how much the figure owes to which configurations happened to be drawn. Scores and
    truth are signed (larger is better); -inf ties below the rest."""
    from scipy import stats

    if len(subset) < 3:
        return {"configs": len(subset), "resamples": 0, "spearman": {}, "difference": {}}
    ys = np.array(_finite_floor([truth[i] for i in subset]))
    idx = np.random.default_rng(seed).integers(0, len(subset), size=(BOOTSTRAP_RESAMPLES, len(subset)))

    def rho(values: np.ndarray) -> np.ndarray:  # Spearman of each resample (row); NaN where a row is constant
        rx, ry = stats.rankdata(values[idx], axis=1), stats.rankdata(ys[idx], axis=1)
        rx, ry = rx - rx.mean(axis=1, keepdims=True), ry - ry.mean(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (rx * ry).sum(axis=1) / np.sqrt((rx**2).sum(axis=1) * (ry**2).sum(axis=1))

    def interval(values: np.ndarray) -> list[float] | None:
        values = values[np.isfinite(values)]
        return [float(v) for v in np.percentile(values, [2.5, 97.5])] if values.size >= BOOTSTRAP_RESAMPLES // 2 else None

    rhos = {mode: rho(np.array(_finite_floor([v[i] for i in subset]))) for mode, v in scores.items()}
    return {
        "configs": len(subset),
        "resamples": BOOTSTRAP_RESAMPLES,
        "spearman": {mode: interval(r) for mode, r in rhos.items()},
        "difference": {f"{a}-{b}": interval(rhos[a] - rhos[b]) for a, b in BOOTSTRAP_DIFFERENCES if a in rhos and b in rhos},
    }


def _finite_floor(values: list[float]) -> list[float]:
    """``values`` with -inf (a diverged run, no chance level) tied just below the rest."""
    finite = [v for v in values if math.isfinite(v)]
    floor = (min(finite) - 1.0) if finite else 0.0
    return [v if math.isfinite(v) else floor for v in values]


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def lr_traces(params: dict, rungs: Sequence[int], baseline_profile: str, cooldown: float = COOLDOWN) -> dict:
    """The learning rate each mode executes over the ladder for ``params`` (its ``lr``
    is the peak; without one, the multiplier), against compute."""
    from budgetopt.dashboard import mode_schedules

    peak = float(params.get("lr", 1.0))
    traces = {}
    for mode in MODES:
        profile = baseline_profile if mode == "continue" else "linear"
        x, y, reports = mode_schedules(list(rungs), profile, cooldown=cooldown)[mode]
        traces[mode] = {
            "profile": profile,
            "compute": x,
            "lr": [peak * v for v in y],
            "reports": [[rx, peak * ry, budget] for rx, ry, budget in reports],
        }
    return {"peak_lr": peak, "modes": traces}


def _assemble(script, data, ladder, setting, finished, methods, seeds, compute, pool_params, truth_seeds, chance, pool_seed) -> dict:
    direction = script.direction
    searches = {m: [] for m in methods}
    for unit, result in finished:
        if result["kind"] == "search":
            searches[result["method"]].append(_search_run(result))
    for runs in searches.values():
        runs.sort(key=lambda r: r["seed"])

    configs = [{"params": p, "modes": {}, "truth_values": [None] * truth_seeds, "seconds": 0.0} for p in pool_params]
    for unit, result in finished:
        if result["kind"] != "pool":
            continue
        config = configs[result["index"]]
        config["seconds"] += result["seconds"]
        full = str(ladder.max_budget)
        if len(result["budgets"]) == 1:  # a truth run
            config["truth_values"][result["seed"]] = result["rung_values"].get(full)
            config.setdefault("truth_runs", {})[str(result["seed"])] = {k: result[k] for k in ("compute", "diverged", "seconds")}
        else:
            config["modes"][result["mode"]] = {k: result[k] for k in ("rung_values", "compute", "diverged", "seconds")}
            if result["mode"] == "restart" and full in result["rung_values"]:
                config["truth_values"][0] = result["rung_values"][full]

    results = {
        "format": RESULTS_FORMAT,
        "study": script.name,
        "data": getattr(data, "source", None),
        "direction": direction,
        "score": "accuracy" if chance is not None and direction == "maximize" else "score",
        "ladder": {"rungs": list(ladder.rungs), "reduction_factor": ladder.reduction_factor},
        "settings": {
            "seeds": seeds,
            "compute": compute,
            "pool": len(pool_params),
            "truth_seeds": truth_seeds,
            "methods": methods,
            "baseline_profile": setting.baseline_profile,
            "cooldown": setting.cooldown,
            "quick": setting.quick,
            "device": setting.device,
            "chance": chance,
            "pool_seed": pool_seed,
        },
        "methods": {m: METHOD_WORDS[m].format(profile=setting.baseline_profile, cooldown=setting.cooldown) for m in methods},
        "searches": {m: {"runs": runs} for m, runs in searches.items()},
        "rank_fidelity": {"configs": configs} if configs else None,
    }
    return derive(results)


def derive(results: dict) -> dict:
    """Fill in every number computed from the runs that ``results`` holds (its searches'
    trial records and the pool's rung and truth values): the searches' picks, curves and
    summary, the rank fidelity, the learning-rate traces and the targets. ``results``
    from an older run is brought up to this version's analysis by calling it again."""
    direction, s = results["direction"], results["settings"]
    rungs = results["ladder"]["rungs"]
    for method, search in results["searches"].items():
        for run in search["runs"]:
            run.update(_search_numbers(run["trial_records"], direction))
    searches = {m: search["runs"] for m, search in results["searches"].items()}
    results["summary"] = summarize_searches(searches, direction) if searches else None
    fidelity = results.get("rank_fidelity")
    if fidelity:
        configs = fidelity["configs"]
        fidelity.clear()
        fidelity.update(rank_fidelity(configs, rungs, results["ladder"]["reduction_factor"], direction, s["chance"]))
        fidelity["pool_seed"] = s["pool_seed"]
        fidelity["configs"] = configs
        fidelity["lr_traces"] = lr_traces(configs[fidelity["best"]]["params"], rungs, s["baseline_profile"], s.get("cooldown", COOLDOWN))
    results["targets"] = targets(results)
    return results


def targets(results: dict) -> list[dict]:
    """Issue 4's targets, each measured: ``{"target", "value", "met"}`` (met None when
    what it needs was not run)."""
    rows = []
    fidelity = results.get("rank_fidelity")
    lowest = str(results["ladder"]["rungs"][0])

    def rho(mode: str) -> float | None:
        if not fidelity or mode not in fidelity["modes"]:
            return None
        return fidelity["modes"][mode]["rungs"][lowest]["spearman_trains"]

    restart, branch, cont = rho("restart"), rho("branch"), rho("continue")
    boot = (fidelity or {}).get("bootstrap") or {"spearman": {}, "difference": {}}
    rows.append({"target": f"restart Spearman at the lowest rung ({lowest}), configurations that train, >= 0.8",
                 "value": restart, "met": None if restart is None else restart >= 0.8, "interval": boot["spearman"].get("restart")})
    gap = None if restart is None or cont is None else restart - cont
    rows.append({"target": "restart at least 0.2 above continue there", "value": gap, "met": None if gap is None else gap >= 0.2,
                 "interval": boot["difference"].get("restart-continue")})
    diff = None if restart is None or branch is None else branch - restart
    rows.append({"target": "branch within 0.05 of restart there (branch minus restart)", "value": diff,
                 "met": None if diff is None else abs(diff) <= 0.05, "interval": boot["difference"].get("branch-restart")})

    summary = (results.get("summary") or {}).get("methods", {})
    base = summary.get(BASELINE)
    sign = _signed(results["direction"])
    for method in ("restart", "branch"):
        s = summary.get(method)
        if base is None or s is None or base["test_mean"] is None or s["test_mean"] is None:
            continue
        delta = s["test_mean"] - base["test_mean"]
        # Searches with the same seed share the sampler's seed: a paired t-interval over seeds.
        paired = [a - b for a, b in zip(s["test_values"], base["test_values"]) if a is not None and b is not None]
        mean, half = interval95(paired)
        rows.append({"target": f"{method}: test {results['score']} at equal compute at least sha's (difference)",
                     "value": delta, "met": sign * delta >= 0, "interval": None if half is None else [mean - half, mean + half]})
        fraction = s["reach_fraction_of_baseline_compute"]
        rows.append({"target": f"{method}: reaches sha's final mean test {results['score']} with <= half of sha's compute (fraction)",
                     "value": fraction, "met": fraction is not None and fraction <= 0.5})
    if fidelity and "restart" in fidelity["modes"] and "branch" in fidelity["modes"]:
        r, b = fidelity["modes"]["restart"]["compute_per_config"], fidelity["modes"]["branch"]["compute_per_config"]
        ratio = None if not r or b is None else b / r
        rows.append({"target": "branch compute <= 0.7x restart's for the same ladder (one configuration through every rung)",
                     "value": ratio, "met": None if ratio is None else ratio <= 0.7})
    return rows


def _machine(jobs: int, threads: int, device: str) -> dict:
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "jobs": jobs,
        "torch_threads": threads,
        "device": str(device),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "optuna": optuna.__version__,
    }


# -- outputs ---------------------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def refresh(out: str | Path) -> dict:
    """Recompute every derived number of the run in ``out`` from its ``results.json``
    (:func:`derive`) and write the JSON, plots and report again (the studies database is
    left as it is): how a long run's outputs follow a change of the analysis."""
    out = Path(out)
    results = derive(json.loads((out / FILES["results"]).read_text()))
    _write_outputs(results, out, None)
    return results


def _write_outputs(results: dict, out: Path, searches: list[dict] | None) -> None:
    """Every output under a temporary name first; renamed into place, the report last.
    ``searches`` (the search units' results, trials included) make ``studies.db``; None
    keeps the one in ``out``."""
    results["files"] = dict(FILES)
    staged: list[tuple[Path, Path]] = []
    try:
        for name, writer in (("accuracy_vs_compute", plot_accuracy_vs_compute), ("rank_fidelity", plot_rank_fidelity), ("lr_traces", plot_lr_traces)):
            tmp = out / f".{FILES[name]}.tmp"
            if writer(results, tmp):
                staged.append((tmp, out / FILES[name]))
            else:
                results["files"].pop(name)
        if searches:
            tmp = out / f".{FILES['studies']}.tmp"
            write_studies(tmp, searches, results, results["direction"])
            staged.append((tmp, out / FILES["studies"]))
        elif searches is not None or not (out / FILES["studies"]).is_file():
            results["files"].pop("studies")
        text = json.dumps(results, indent=1, allow_nan=False) + "\n"
        tmp = out / f".{FILES['results']}.tmp"
        tmp.write_text(text)
        staged.append((tmp, out / FILES["results"]))
        tmp = out / f".{FILES['report']}.tmp"
        tmp.write_text(render_report(json.loads(text)))
        staged.append((tmp, out / FILES["report"]))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, final in staged:
        os.replace(tmp, final)


def write_studies(path: Path, searches: list[dict], results: dict, direction: str) -> None:
    """A SQLite storage at ``path`` with one study per search and the budgetopt note and
    figures (accuracy against compute of every method included) for optuna-dashboard."""
    from budgetopt import dashboard

    path.unlink(missing_ok=True)
    storage = optuna.storages.RDBStorage(f"sqlite:///{path}")
    curves = {m: [tuple(p) for p in s["curve"]] for m, s in results["summary"]["methods"].items() if s["curve"]}
    try:
        for result in sorted(searches, key=lambda r: (METHODS.index(r["method"]), r["seed"])):
            study = optuna.create_study(storage=storage, study_name=f"{result['method']}-seed{result['seed']}", direction=direction)
            for key, value in result["user_attrs"].items():
                study.set_user_attr(key, value)
            study.set_user_attr("budgetopt.compare", {"method": result["method"], "seed": result["seed"], "command": results["command"] if "command" in results else None})
            study.add_trials(result["trials"])
            if result["trials"]:
                dashboard.publish(study, comparison=curves or None, value_name=f"test {results['score']}")
    finally:
        storage.engine.dispose()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_accuracy_vs_compute(results: dict, path: Path) -> bool:
    summary = results.get("summary")
    if not summary:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for method, s in summary["methods"].items():
        if s["curve"]:
            xs, ys = zip(*s["curve"])
            line = ax.step(xs, ys, where="post", label=method, linewidth=2 if method in ("restart", "branch") else 1.2)[0]
            # Each seed's final pick at its own compute: the spread the mean hides.
            finals = [(c, v) for c, v in zip(s["compute_values"], s["test_values"]) if v is not None]
            if finals:
                ax.plot(*zip(*finals), "o", color=line.get_color(), alpha=0.5, markersize=4)
    if summary["baseline_test_mean"] is not None:
        ax.axhline(summary["baseline_test_mean"], color="gray", linestyle=":", linewidth=1, label="sha's final mean")
    n = len(results["settings"]["seeds"])
    ax.set(
        title=f"{results['study']}: test {results['score']} of the incumbent against compute\n(mean of {n} seeds; dots: each seed's final pick)",
        xlabel="compute (iterations executed, re-done ones included)",
        ylabel=f"test {results['score']} of the configuration picked so far",
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return True


_MODE_STYLES = {  # distinguishable where two modes' lines coincide
    "restart": dict(marker="o", linestyle="-", color="C0"),
    "branch": dict(marker="s", linestyle="--", color="C2", markerfacecolor="none"),
    "continue": dict(marker="^", linestyle=":", color="C3"),
}


def plot_rank_fidelity(results: dict, path: Path) -> bool:
    fidelity = results.get("rank_fidelity")
    if not fidelity:
        return False
    plt = _pyplot()
    rungs = results["ladder"]["rungs"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), dpi=120, sharey=True)
    for ax, key, title in (
        (axes[0], "spearman_trains", f"configurations that train ({fidelity['n_trains']})"),
        (axes[1], "spearman_all", f"whole pool ({len(fidelity['configs'])})"),
    ):
        for mode, m in fidelity["modes"].items():
            ys = [m["rungs"][str(b)][key] for b in rungs]
            style = _MODE_STYLES.get(mode, {})
            ax.plot(rungs, [float("nan") if y is None else y for y in ys], label=mode, **style)
        ax.set_xscale("log")
        ax.set_xticks(rungs, [str(b) for b in rungs])
        ax.minorticks_off()
        ax.set(title=title, xlabel="rung (iterations)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Spearman of rung scores vs full-budget truth")
    axes[0].legend()
    fig.suptitle(f"{results['study']}: rank fidelity per rung")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return True


def plot_lr_traces(results: dict, path: Path) -> bool:
    fidelity = results.get("rank_fidelity")
    if not fidelity:
        return False
    traces = fidelity["lr_traces"]
    plt = _pyplot()
    fig, axes = plt.subplots(len(traces["modes"]), 1, figsize=(9, 6.5), dpi=120, sharex=True)
    for ax, (mode, t) in zip(axes, traces["modes"].items()):
        ax.plot(t["compute"], t["lr"], linewidth=1.2)
        rx = [r[0] for r in t["reports"]]
        ry = [r[1] for r in t["reports"]]
        ax.plot(rx, ry, "o", color="C3", markersize=4, label="rung report")
        ax.set_ylabel("learning rate")
        ax.set_title(f"{mode} ({t['profile']})", fontsize=10, loc="left")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right")
    axes[-1].set_xlabel("compute (iterations executed, re-done ones included)")
    fig.suptitle(f"Learning rate of each mode over the ladder {'/'.join(map(str, results['ladder']['rungs']))}, peak lr {traces['peak_lr']:.3g} (pool's best configuration)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return True


# -- the report ------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _int(value: float | None) -> str:
    return "—" if value is None else f"{round(value):,}"


def _met(met: bool | None) -> str:
    return "not measured" if met is None else ("**met**" if met else "**not met**")


def render_report(results: dict) -> str:
    """The Markdown report of ``results`` (what ``results.json`` holds): every number in it
    comes from there."""
    s = results["settings"]
    rungs = results["ladder"]["rungs"]
    lines = [
        f"# budgetopt compare: {results['study']}",
        "",
        "```",
        results.get("command", ""),
        "```",
        "",
        f"Data: {results['data']}. Ladder {'/'.join(map(str, rungs))} iterations (eta {results['ladder']['reduction_factor']}); "
        + (f"each search may spend **{s['compute']:,} iterations** ({s['compute'] / rungs[-1]:.3g} full budgets); "
           f"{len(s['seeds'])} seed(s) per method; " if s["methods"] else "no searches (the rank-fidelity pool only); ")
        + f"baseline schedule `{s['baseline_profile']}` over the full budget; "
        f"branch cooldown {s.get('cooldown', COOLDOWN):g} of each rung. "
        f"Started {results.get('started', '—')}, wall time {_duration(results.get('wall_seconds'))} "
        f"({results.get('machine', {}).get('jobs', 1)} job(s) x {results.get('machine', {}).get('torch_threads', 1)} thread(s) on {results.get('machine', {}).get('device', 'cpu')}).",
        "",
    ]
    summary = results.get("summary")
    if summary:
        lines += _search_section(results, summary)
    fidelity = results.get("rank_fidelity")
    if fidelity:
        lines += _fidelity_section(results, fidelity)
    if results.get("targets"):
        lines += ["## Against the targets of issue 4", "",
                  "The interval of a rank-fidelity figure is a 95% bootstrap interval over the pool's configurations that "
                  "train (paired: the same resamples for every mode): how much the figure owes to which configurations were drawn. "
                  "The interval of a test-score difference is a 95% t-interval of the per-seed differences (a search and "
                  "sha's with the same seed share their sampler's seed).",
                  "", "| target | measured | 95% interval | |", "|---|---:|---:|---|"]
        for t in results["targets"]:
            interval = t.get("interval")
            shown = f"{interval[0]:.3f} to {interval[1]:.3f}" if interval else ""
            lines.append(f"| {t['target']} | {_f(t['value'], 3)} | {shown} | {_met(t['met'])} |")
        lines.append("")
    files = results.get("files", {})
    if files:
        lines += ["## Files", ""]
        if "studies" in files:
            lines.append(f"- `{files['studies']}`: one Optuna study per method and seed; open it with "
                         f"`budgetopt dashboard sqlite:///{files['studies']}` (or `optuna-dashboard sqlite:///{files['studies']}`) from this directory.")
        for key in ("accuracy_vs_compute", "rank_fidelity", "lr_traces"):
            if key in files:
                lines.append(f"- `{files[key]}`")
        lines.append(f"- `{files.get('results', 'results.json')}`: every number of this report, every trial and pool run.")
        lines.append("")
    return "\n".join(lines)


def _params(params: dict) -> str:
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in params.items())


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else (f"{minutes} min {secs:02d} s" if minutes else f"{secs} s")


def _search_section(results: dict, summary: dict) -> list[str]:
    score = results["score"]
    n = len(results["settings"]["seeds"])
    base = summary["baseline"]
    lines = [
        "## Search at equal compute",
        "",
        f"Test {score} of the configuration each search picked (best validation value among its trials that reached "
        f"the full budget), mean and 95% t-interval over {n} seed(s); compute actually spent; trials started "
        f"(of which reached the full budget); wall time per search. "
        + (f"\"Compute to reach sha\": the first compute at which the method's mean anytime curve (incumbent's test "
           f"{score}) reaches sha's final mean, {_f(summary['baseline_test_mean'])}, and that compute as a fraction of sha's."
           if base else ""),
        "",
        f"| method | test {score} | per seed | compute | trials (full budget) | diverged | wall time | compute to reach sha |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for method, m in summary["methods"].items():
        ci = f" ± {m['test_ci95']:.4f}" if m["test_ci95"] is not None else ""
        per_seed = ", ".join(_f(v) for v in m["test_values"])
        reach = m["compute_to_reach_baseline"]
        reach_text = "not reached" if reach is None and base else (f"{reach:,} ({m['reach_fraction_of_baseline_compute']:.2f}x)" if reach is not None else "—")
        lines.append(
            f"| {method} | {_f(m['test_mean'])}{ci} | {per_seed} | {_int(m['compute_mean'])} | {m['trials_mean']:.1f} ({m['full_budget_trials_mean']:.1f}) "
            f"| {m['diverged']} | {_duration(m['seconds_mean'])} | {reach_text} |"
        )
    lines += ["", "Methods:", ""]
    lines += [f"- `{m}`: {words}" for m, words in results["methods"].items()]
    tpe = summary["methods"].get("tpe")
    if tpe is not None and tpe["trials_mean"] <= 10:
        lines += ["", f"`tpe` ran {tpe['trials_mean']:.1f} trials per search on average: TPE samples at random for its first "
                  "10 trials (Optuna's `n_startup_trials`), so at this compute it is random search, and with the same seed it "
                  "draws what `random` draws."]
    lines.append("")
    return lines


def _fidelity_section(results: dict, fidelity: dict) -> list[str]:
    s = results["settings"]
    rungs = results["ladder"]["rungs"]
    n = len(fidelity["configs"])

    def table(cell: Callable[[dict], str]) -> list[str]:
        """A mode x rung table; ``cell`` formats one mode's numbers at one rung."""
        head = ["| mode | " + " | ".join(str(b) for b in rungs) + " |", "|---|" + "---:|" * len(rungs)]
        return head + [f"| {mode} | " + " | ".join(cell(m["rungs"][str(b)]) for b in rungs) + " |"
                       for mode, m in fidelity["modes"].items()]

    chance = fidelity["chance"]
    trains_rule = (
        f"truth better than {_f(fidelity['threshold'])} (chance {chance:g} plus a tenth of the way to the best truth)"
        if chance is not None else "no truth run diverged (the script defines no chance level)"
    )
    split = fidelity["split_by_seed"]
    lines = [
        "## Rank fidelity",
        "",
        f"A pool of {n} configurations drawn at random (seed {fidelity['pool_seed']}) from the search space, each trained "
        f"over the ladder in every mode with seed 0 (`continue` on the `{s['baseline_profile']}` schedule). Truth: the "
        f"full-budget score with linear decay, averaged over {s['truth_seeds']} seed(s). "
        f"**{fidelity['n_trains']} of {n} train** ({trains_rule}). Of the {n * s['truth_seeds']} truth runs, "
        f"{fidelity['truth_diverged']} diverged (NaN/inf) and {fidelity['truth_at_chance']} ended at chance level without a NaN.",
        "",
        f"### Spearman of rung scores vs truth, configurations that train ({fidelity['n_trains']})",
        "",
        *table(lambda r: _f(r["spearman_trains"], 3)),
        "",
        f"### Spearman of rung scores vs truth, whole pool ({n})",
        "",
        *table(lambda r: _f(r["spearman_all"], 3)),
    ]
    if split:
        configs = fidelity["configs"]
        described = "; ".join(
            f"#{i} ({_params(configs[i]['params'])}): truth runs {', '.join(_f(v, 3) for v in configs[i]['truth_values'])}"
            for i in split
        )
        lines += [
            "",
            f"### Spearman of rung scores vs truth, configurations whose every truth run trains ({fidelity['n_every_seed_trains']})",
            "",
            f"A diagnostic beside the two figures above, not a replacement: {len(split)} configuration(s) that train on "
            f"average have a truth run that ended at chance (edge of stability: one seed trains, another collapses), so "
            f"their truth is the mean of a good and a chance score. {described}.",
            "",
            *table(lambda r: _f(r["spearman_every_seed_trains"], 3)),
        ]
    lines += [
        "",
        f"### Selection regret: truth of the pool's best ({_f(fidelity['truth'][fidelity['best']])}) minus truth of the best "
        f"configuration a rung keeps (its top {fidelity['kept_per_rung']}) / of its top pick",
        "",
        *table(lambda r: f"{_f(r['regret_kept'])} / {_f(r['regret_pick'])}"),
        "",
        "### Mean rung score of the configurations that train",
        "",
        *table(lambda r: _f(r["mean_score_trains"])),
    ]
    lines += ["", "| mode | diverged (NaN/inf) | ended at chance at the full budget | compute per configuration (whole ladder) |",
              "|---|---:|---:|---:|"]
    for mode, m in fidelity["modes"].items():
        lines.append(f"| {mode} | {m['diverged']} of {n} | {m['ended_at_chance']} of {n} | {_int(m['compute_per_config'])} |")
    lines.append("")
    return lines


# -- the demo --------------------------------------------------------------------------------

# Chosen so that the demo takes a few minutes on two CPU cores (measured: see the
# compare tests and studies/results/compare_fashion_mnist/).
DEMO_METHODS = ("sha", "restart", "branch", "random")
DEMO_SETTINGS = {
    "fashion_mnist": dict(quick=True, seeds=2, pool=6, truth_seeds=2, compute=2 * 243, methods=DEMO_METHODS, jobs=2),
    "digits": dict(quick=False, seeds=2, pool=12, truth_seeds=2, compute=6 * 270, methods=DEMO_METHODS, jobs=2),
}


@dataclass(frozen=True)
class DemoPlan:
    """What ``budgetopt demo`` runs, and why that data."""

    study: str
    reason: str
    settings: dict


def demo_plan(data_dir: str | Path | None = None, *, digits: bool = False, download: bool = True) -> DemoPlan:
    """Fashion-MNIST when it is on this machine or can be downloaded, else digits
    (``digits=True``: digits whatever is available)."""
    from budgetopt.data import find_fashion_mnist

    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise FileNotFoundError(f"data directory {data_dir} does not exist")
    if digits:
        return DemoPlan("digits", "using scikit-learn's digits, as asked", DEMO_SETTINGS["digits"])
    try:
        where = find_fashion_mnist(data_dir, download=download)
    except FileNotFoundError as error:
        return DemoPlan("digits", f"Fashion-MNIST is not available ({error}); using scikit-learn's digits instead", DEMO_SETTINGS["digits"])
    return DemoPlan("fashion_mnist", f"using Fashion-MNIST from {where}", DEMO_SETTINGS["fashion_mnist"])


def run_demo(
    out: str | Path = "budgetopt-demo",
    *,
    data_dir: str | Path | None = None,
    digits: bool = False,
    jobs: int | None = None,
    resume: bool = False,
    progress: bool = True,
    say: Callable[[str], None] = lambda message: None,
) -> tuple[DemoPlan, dict]:
    """The README's first command: :func:`compare` on Fashion-MNIST (or digits) with
    the small settings of :data:`DEMO_SETTINGS`; ``say`` gets a status line saying
    which data and why. Returns the plan and the results."""
    plan = demo_plan(data_dir, digits=digits)
    say(plan.reason)
    settings = dict(plan.settings)
    if jobs is not None:
        settings["jobs"] = jobs
    data = data_dir if plan.study == "fashion_mnist" else None
    results = compare(plan.study, out=out, data_dir=data, resume=resume, progress=progress, **settings)
    return plan, results


def demo_summary(results: dict, out: str | Path) -> str:
    """What the demo prints at the end: the short table, where the report is, and the
    command that opens the dashboard."""
    s = results["settings"]
    rungs = results["ladder"]["rungs"]
    searched = f"{len(s['seeds'])} searches per method, each spending about {s['compute']:,} iterations; " if s["methods"] else ""
    pooled = f"; rank fidelity over {s['pool']} configurations" if s["pool"] else ""
    legend = []  # what each column of the table means
    if s["methods"]:
        legend.append(f"test {results['score']}: of the configuration each search picked (mean ± 95% interval over seeds). "
                      "compute: iterations trained.")
    if s["pool"]:
        legend.append(f"Spearman @ {rungs[0]} it.: how well the scores after {rungs[0]} iterations rank the configurations "
                      "that train by their full-budget score (1 = perfectly), in the mode the method uses.")
    lines = [
        f"{results['study']} ({results['data']}): {searched}ladder {'/'.join(map(str, rungs))}{pooled}.",
        "",
        demo_table(results),
        "",
        " ".join(legend),
        "",
        f"report:    {Path(out) / FILES['report']}",
    ]
    if "studies" in results.get("files", {}):
        lines.append(f"dashboard: budgetopt dashboard sqlite:///{Path(out) / FILES['studies']}")
    return "\n".join(lines)


def demo_table(results: dict) -> str:
    """A short table a new user reads: method, test score, compute, lowest-rung Spearman."""
    summary = (results.get("summary") or {}).get("methods", {})
    fidelity = results.get("rank_fidelity")
    lowest = str(results["ladder"]["rungs"][0])
    rho = {}
    if fidelity:
        for mode, m in fidelity["modes"].items():
            rho[mode] = m["rungs"][lowest]["spearman_trains"]
    mode_of = {"sha": "continue", "hyperband": "continue", "restart": "restart", "branch": "branch"}
    if summary:
        rows = [("method", f"test {results['score']}", "compute", f"Spearman @ {lowest} it.")]
        for method, m in summary.items():
            ci = f" ± {m['test_ci95']:.3f}" if m["test_ci95"] is not None else ""
            mode = mode_of.get(method)
            rows.append((method, f"{_f(m['test_mean'], 3)}{ci}", _int(m["compute_mean"]), _f(rho.get(mode), 2) if mode else "—"))
        if not rho:  # no pool: no Spearman column
            rows = [r[:3] for r in rows]
    else:  # only the pool: its modes
        rows = [("mode", f"Spearman @ {lowest} it.")] + [(mode, _f(r, 2)) for mode, r in rho.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows)
