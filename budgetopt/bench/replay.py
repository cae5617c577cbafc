"""``budgetopt bench simulate`` end to end: check the inputs, replay the searches
(:mod:`budgetopt.bench.simulate`), summarise them (:mod:`budgetopt.bench.results`), measure
rank fidelity (:mod:`budgetopt.bench.stats`) and write the report
(:mod:`budgetopt.bench.report`). Nothing is written until every number exists."""

from __future__ import annotations

import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import optuna

from budgetopt.bench import report
from budgetopt.bench.records import FORMAT, VERSION, FidelitySubset, Settings, SimulationResults, TableInfo, Threshold
from budgetopt.bench.results import summarize
from budgetopt.bench.runner import caps_from, check_methods, pool_range, run_searches, sub_ladder
from budgetopt.bench.simulate import BASELINE, DEFAULT_METHODS
from budgetopt.bench.stats import rank_fidelity
from budgetopt.bench.table import read_table, writable_directory
from budgetopt.errors import InputError

SEARCHES_FILE = "searches.jsonl"  # every finished search, one JSON line each (read back by --resume)


def simulate(
    table_dir: str | Path,
    out: str | Path,
    *,
    methods: list[str] | None = None,
    compute: str | list = "30",
    repeats: int = 200,
    baseline: str | None = None,
    rungs: str | list | None = None,
    pool: str | None = None,
    jobs: int = 1,
    pool_bootstrap: int = 20,
    bootstrap_repeats: int = 20,
    fidelity_resamples: int = 1000,
    thresholds: dict | None = None,
    command: str = "",
    progress: bool = True,
    warn=lambda message: None,
    resume: bool = False,
    isolate: bool = False,
) -> SimulationResults:
    """Replay ``repeats`` paired searches of every method at every cap of ``compute``
    (full budgets, e.g. ``"10,30,100"``) against the table in ``table_dir``; write
    report.md, results.json and plots to ``out``; return the results. ``rungs``: a
    sub-ladder every method uses (:func:`~budgetopt.bench.runner.sub_ladder`); ``pool``:
    ``"A:B"``, only the pool positions A <= c < B (:func:`~budgetopt.bench.runner.pool_range`).
    Each search is appended to ``out/searches.jsonl`` as it finishes; with ``resume`` the
    searches already there are read instead of run (:func:`~budgetopt.bench.runner.run_searches`).
    ``isolate``: run even ``jobs=1`` in a worker process (Optuna's TPE is sped up there,
    never in this process)."""
    # Over 60 lines for its signature: one keyword per option of ``bench simulate``; the body is under 60.
    table, methods, ladder, caps, span, configs, baseline = _checked(
        table_dir, methods, compute, repeats, baseline, rungs, pool, jobs, pool_bootstrap, bootstrap_repeats, warn
    )
    out = writable_directory(Path(out))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        try:
            searches, bootstrap = run_searches(
                table,
                methods,
                caps,
                repeats,
                configs=configs,
                rungs=ladder,
                jobs=jobs,
                pool_bootstrap=pool_bootstrap,
                bootstrap_repeats=bootstrap_repeats,
                progress=progress,
                journal=out / SEARCHES_FILE,
                resume=resume,
                isolate=isolate,
            )
        finally:
            optuna.logging.set_verbosity(verbosity)
    seconds = time.perf_counter() - start
    settings: Settings = {
        "methods": methods,
        "caps": caps,
        "repeats": repeats,
        "baseline": baseline,
        "rungs": list(ladder),
        "pool": list(span) if span else None,
        "pool_bootstrap": pool_bootstrap,
        "bootstrap_repeats": bootstrap_repeats,
        "jobs": jobs,
    }
    results: SimulationResults = {
        "format": FORMAT,
        "version": VERSION,
        "command": command,
        "table": _table_record(table, table_dir, configs),
        "settings": settings,
        "searches": summarize(table, searches, bootstrap, configs, baseline, ladder),
        "fidelity": rank_fidelity(table, configs, resamples=fidelity_resamples),
        "seconds": round(seconds, 1),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "optuna": optuna.__version__},
    }
    results["thresholds"] = _thresholds(results, thresholds or {})
    report.write_outputs(results, out)
    return results


def _checked(table_dir, methods, compute, repeats, baseline, rungs, pool, jobs, pool_bootstrap, bootstrap_repeats, warn):
    """:func:`simulate`'s inputs checked against the table: ``(table, methods, ladder,
    caps, span, configs, baseline)``, or an :class:`~budgetopt.errors.InputError` naming the bad one."""
    table = read_table(table_dir)
    methods = check_methods(list(methods or DEFAULT_METHODS), table)
    if baseline is None:  # Optuna's successive halving on cosine when it is simulated, else the first method
        baseline = BASELINE if BASELINE in methods else methods[0]
    if baseline not in methods:
        raise InputError(f"--baseline {baseline!r} is not one of the methods simulated ({', '.join(methods)})")
    for name, value, low in (
        ("--repeats", repeats, 1),
        ("--jobs", jobs, 1),
        ("--pool-bootstrap", pool_bootstrap, 0),
        ("--bootstrap-repeats", bootstrap_repeats, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"{name} must be an integer >= {low}, got {value!r}")
    ladder = sub_ladder(rungs, table)
    caps = caps_from(compute, table, ladder)
    span = pool_range(pool, table)
    configs = table.complete_configs
    if span is not None:
        configs = configs[(configs >= span[0]) & (configs < span[1])]
    if len(configs) < 2:
        raise InputError(
            f"the table in {table_dir} has {len(configs)} complete configuration(s)"
            + (f" at pool positions {pool}" if span else "")
            + "; a search needs at least 2"
        )
    if not np.isfinite(table.value[configs]).any():  # every unit diverged: nothing a search could pick
        raise InputError(
            f"the table in {table_dir} has no finite value: every unit of its {len(configs)} configurations diverged "
            "or scored NaN (check the study script's evaluate and the search space's ranges)"
        )
    if span is None and len(configs) < len(table.pool):
        warn(f"partial table: {len(configs)} of {len(table.pool)} configurations are complete; simulating on those")
    return table, methods, ladder, caps, span, configs, baseline


def _table_record(table, table_dir, configs) -> TableInfo:
    """What ``results.json`` says of the table a simulation ran on."""
    return {
        "directory": str(table_dir),
        "direction": table.meta["direction"],
        "study": table.meta["study"],
        "command": table.meta.get("command"),
        "commands": table.meta.get("commands") or [table.meta.get("command")],
        "data": table.meta.get("data"),
        "ladder_name": table.meta["ladder"]["name"],
        "rungs": list(table.rungs),
        "configs": len(table.pool),
        "configs_complete": int(len(configs)),
        "partial": bool(len(table.complete_configs) < len(table.pool)),
        "seeds": list(table.seeds),
        "kinds": list(table.kinds),
        "cooldown": table.meta.get("cooldown"),
        "chance": table.meta.get("chance"),
    }


def _thresholds(results: SimulationResults, thresholds: dict) -> list[Threshold]:
    """Met / not met, only for thresholds the user passed, each judged on its interval:
    ``compute_ratio`` (the 95% upper bound of a method's regret curve reaches the
    baseline's final mean regret within this fraction of the cap), ``spearman`` (the 95%
    lower bound of the lowest-rung rho over configurations that train is at least this)."""
    rows: list[Threshold] = []
    caps = results["searches"]["caps"]
    if "compute_ratio" in thresholds:
        limit = thresholds["compute_ratio"]
        for cap in caps.values():
            for method, e in cap["methods"].items():
                if method == results["settings"]["baseline"]:
                    continue
                # met only when the 95% upper bound of the regret curve reaches the target
                to_reach = e.get("compute_to_reach_baseline")
                reach = None if to_reach is None else to_reach["sure"]
                measured = None if reach is None else reach["fraction_of_cap"]
                rows.append(
                    {
                        "threshold": f"upper 95% bound reaches baseline's final regret within {limit:g}x the cap "
                        f"({cap['full_budgets']:g} FB)",
                        "method": method,
                        "measured": "never" if measured is None else f"{measured:.2f}x",
                        "met": measured is not None and measured <= limit,
                    }
                )
    if "spearman" in thresholds:
        limit = thresholds["spearman"]
        fid = results.get("fidelity")
        train: FidelitySubset = {"configs": 0} if fid is None else fid["subsets"].get("train", {"configs": 0})
        for kind, per_rung in train.get("rho", {}).items():
            rho, low = per_rung[0]["rho"], per_rung[0]["low"]
            rows.append(
                {
                    "threshold": f"lowest-rung Spearman (configurations that train), lower 95% bound >= {limit:g}",
                    "method": kind,
                    "measured": f"{rho:.3f} (low {low:.3f})" if low is not None else f"{rho:.3f}",
                    "met": low is not None and low >= limit,
                }
            )
    return rows
