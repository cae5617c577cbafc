"""``budgetopt bench live``: real searches that train real models, to check the simulator.

The simulator (:mod:`budgetopt.bench.simulate`) is a model of a search: suggestions land
on a finite pool, values come from a table. A *live search* is the thing it models: an
Optuna study with the method's real sampler and pruner over the study script's
continuous search space, every trial a real :class:`~budgetopt.BudgetedRun` on the
script's data, stopped at the same compute cap with the same rule (a rung that does not
fit under the cap is not started). Its pick (the trial with the best validation value at
the largest budget any trial reported, the simulator's rule) is then trained again at
the full budget on *truth seeds* the search never used, once per final schedule:

- ``linear``: restart, linear decay to the full budget (the table's ``restart`` truth);
- ``cosine``: one cosine schedule over the full budget (the table's ``continue_cosine``).

With truth seeds equal to a table's seeds (0 and 1 by default) a pick that is a pool
configuration gets exactly its table truth, so regrets share the table's reference.

Each finished search is one JSON line of ``searches.jsonl`` in the output directory,
appended and synced as it arrives; ``--resume`` skips the (method, repeat) pairs already
there, so an interrupted campaign keeps everything it measured.
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from budgetopt.bench._process import exit_with_parent
from budgetopt.bench.build import loaded_script
from budgetopt.bench.simulate import Method, method_pruner, method_sampler, resolve_method
from budgetopt.bench.table import file_sha256, parse_kind, write_json_atomic
from budgetopt.errors import InputError
from budgetopt.frontier import frontier
from budgetopt.run import BudgetedRun
from budgetopt.study_script import build_seeded, load_study_script, train_config, train_run

SEARCHES_FILE = "searches.jsonl"
META_FILE = "meta.json"
TRUTHS = {"linear": ("restart", "linear"), "cosine": ("continue", "cosine")}  # truth -> (mode, profile)
SEARCH_SEED_OFFSET = 1_000  # search trials train on seeds from here on: never a truth seed below it


@dataclass(frozen=True)
class LiveSpec:
    """What a campaign of live searches is: a study, a ladder, a cap, truth seeds."""

    script: str
    ladder: str | None
    cap_full_budgets: float
    truth_seeds: tuple[int, ...] = (0, 1)
    device: str = "cpu"
    data_dir: str | None = None
    quick: bool = False
    cooldown: float = 0.5


def _live_method(name: str) -> Method:
    """The method called ``name``, if a live search can run it: a pruned method on one plain kind."""
    method = resolve_method(name)
    if method.pruner == "none" or parse_kind(method.kind).name != method.kind:
        raise InputError(f"method {name!r}: live searches take a pruned method on one plain kind (sha_cosine, restart, ...)")
    return method


def _search_seed(repeat: int, trial_number: int) -> int:
    return SEARCH_SEED_OFFSET + 100_000 * repeat + trial_number


def live_search(spec: LiveSpec, method_name: str, repeat: int) -> dict:
    """One live search of ``method_name`` with sampler seed ``repeat``; the JSON-able record
    of its trials, its pick, the pick's truths, its compute and its wall time."""
    script, data = loaded_script(spec.script, spec.data_dir, spec.quick)
    method = _live_method(method_name)
    kind = parse_kind(method.kind)
    _, ladder = script.named_ladder(spec.ladder)
    rungs = tuple(ladder)
    cap = int(round(spec.cap_full_budgets * rungs[-1]))  # as parse_compute rounds (408it stays 408)
    start = time.perf_counter()
    study = optuna.create_study(
        study_name=f"{method.name}-{repeat}",
        direction="maximize" if script.direction == "maximize" else "minimize",
        sampler=method_sampler(method, repeat),
        pruner=method_pruner(method, rungs, ladder.reduction_factor),
    )
    options = kind.run_options(spec.cooldown)
    maximize = script.direction == "maximize"
    spent = 0
    trials: list[dict[str, Any]] = []  # one JSON-able record per trial
    while cap - spent >= rungs[0]:
        trial = study.ask()
        params = script.search_space(trial)
        seed = _search_seed(repeat, trial.number)
        model, optimizer = build_seeded(script, params, seed, spec.device)
        budgets = None if hasattr(study.pruner, "plan") else rungs  # BudgetPruner gives each trial its plan
        run = BudgetedRun(trial, model, optimizer, budgets=budgets, mode=kind.mode, **options)
        try:
            train_run(script, run, params, data, seed, spec.device, max_compute=cap - spent)
        except optuna.TrialPruned:
            pass
        spent += run.compute
        trials.append(
            {"number": trial.number, "params": params, "seed": seed, "plan": list(run.budgets),
             "values": {str(b): v for b, v in run.rung_values.items()}, "compute": run.compute, "ended": run.ended}
        )
        if run.ended is not None and run.ended.startswith("completed"):
            study.tell(trial, run.value)
        else:
            study.tell(trial, state=TrialState.PRUNED)
        if run.compute == 0:  # nothing fitted under the cap any more
            break
    pick = _pick(trials, maximize)
    record: dict[str, Any] = {
        "method": method.name, "repeat": repeat, "cap": cap, "compute": spent, "trials": trials,
        "pick": None if pick is None else trials[pick]["number"], "truth": {}, "frontier": _frontier(study),
    }
    if pick is not None:
        picked = trials[pick]["params"]
        for truth, (mode, profile) in TRUTHS.items():
            record["truth"][truth] = [
                train_config(script, picked, [rungs[-1]], mode, s, spec.device, data=data, profile=profile).test_value
                for s in spec.truth_seeds
            ]
    record["seconds"] = round(time.perf_counter() - start, 2)
    return record


def _pick(trials: list[dict], maximize: bool) -> int | None:
    """The index of the trial with the best value at the largest budget any trial reported."""
    best = None
    for i, t in enumerate(trials):
        if not t["values"]:
            continue
        budget = max(int(b) for b in t["values"])
        key = (budget, t["values"][str(budget)] * (1 if maximize else -1))
        if best is None or key > best[0]:
            best = (key, i)
    return None if best is None else best[1]


def _frontier(study: optuna.Study) -> dict:
    """budget -> the number and value of the trial with the best value reported at it
    (:func:`budgetopt.frontier`, continue values included: they are what the search saw)."""
    try:
        rows = frontier(study, include_continue=True)
    except ValueError:  # no trial reported a value
        return {}
    return {str(r.budget): {"trial": r.trial, "value": r.value} for r in rows if r.trial is not None}


def read_searches(out: str | Path) -> list[dict]:
    """The searches of ``out/searches.jsonl``; a line cut off by a killed writer is skipped."""
    path = Path(out) / SEARCHES_FILE
    records = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def _init_worker(parent: int) -> None:
    exit_with_parent(parent)
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def run_live(
    spec: LiveSpec,
    methods: Sequence[str],
    repeats: int,
    out: str | Path,
    *,
    jobs: int = 1,
    resume: bool = False,
    command: str = "",
    say: Callable[[str], None] = lambda _: None,
) -> Path:
    """Run ``repeats`` live searches of each of ``methods`` into ``out`` (see the module
    docstring); ``jobs`` processes, one thread each."""
    names = [_live_method(name).name for name in methods]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / META_FILE
    meta = {"format": "budgetopt-live-searches", "spec": asdict(spec), "methods": list(methods)}
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if not resume:
            raise InputError(f"--out {out} already holds live searches: add --resume to complete them, or choose another --out")
        if old["spec"] != json.loads(json.dumps(meta["spec"])):
            raise InputError(f"--resume: {out} holds searches of another spec ({old['spec']})")
        meta["commands"] = old.get("commands", []) + [command]
    else:
        meta["commands"] = [command]
    script = load_study_script(spec.script)
    meta["script_sha256"] = file_sha256(script.path)
    write_json_atomic(meta_path, meta)
    done = {(r["method"], r["repeat"]) for r in read_searches(out)}
    # Interleaved (repeat by repeat, method by method): an interrupted campaign stays paired.
    todo = [(m, k) for k in range(repeats) for m in names if (m, k) not in done]
    say(f"{len(done)} searches already in {out}; {len(todo)} to run in {jobs} process(es)")
    if jobs == 1:
        torch.set_num_threads(1)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    executor: concurrent.futures.Executor = (
        concurrent.futures.ProcessPoolExecutor(
            max_workers=jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker, initargs=(os.getpid(),)
        )
        if jobs > 1
        else concurrent.futures.ThreadPoolExecutor(max_workers=1)
    )
    with executor, (out / SEARCHES_FILE).open("a") as sink:
        futures = {executor.submit(live_search, spec, m, k): (m, k) for m, k in todo}
        for future in concurrent.futures.as_completed(futures):
            record = future.result()
            sink.write(json.dumps(record, separators=(",", ":")) + "\n")
            sink.flush()
            os.fsync(sink.fileno())
            say(f"{record['method']} repeat {record['repeat']}: {len(record['trials'])} trials, compute {record['compute']}, "
                f"truth {record['truth']}, {record['seconds']:.0f} s")
    return out
