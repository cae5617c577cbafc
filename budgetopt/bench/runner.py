"""Many replayed searches: every (method, cap, repeat) and the pool resampling, in worker
processes (``--jobs``), each process holding the table and its lookups once; each
finished search appended to a journal (``searches.jsonl``) that a resumed run reads
instead of searching again."""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import re
import warnings
from pathlib import Path
from typing import IO, Any

import numpy as np
import optuna

from budgetopt._optuna import fast_tpe_patch
from budgetopt._validation import parse_compute
from budgetopt.bench._process import exit_with_parent
from budgetopt.bench.simulate import BUILTIN, PoolLookup, SearchResult, resolve_method, run_search
from budgetopt.bench.table import TABLE_FILE, Table
from budgetopt.errors import InputError

_WORKER: dict[str, Any] = {}


def _init_pool_worker(parent: int, table_dir: str, configs: list[int], rungs: list[int]) -> None:
    exit_with_parent(parent)
    _init_worker(table_dir, configs, rungs)
    fast_tpe_patch()  # this process runs simulated searches only: Optuna's TPE with scipy's log_ndtr, 2.8x faster


def _init_worker(table_dir: str, configs: list[int], rungs: list[int]) -> None:
    from budgetopt.bench.table import read_table

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
    table = read_table(table_dir)
    _WORKER["table"] = table
    _WORKER["lookups"] = {}
    _WORKER["default"] = tuple(configs)
    _WORKER["rungs"] = tuple(rungs)


def _search_task(method_name: str, repeat: int, cap: int, configs: tuple[int, ...] | None) -> SearchResult:
    table = _WORKER["table"]
    configs = configs or _WORKER["default"]
    lookup = _WORKER["lookups"].get(configs)
    if lookup is None:
        lookup = _WORKER["lookups"][configs] = PoolLookup(table, np.array(configs))
    return run_search(table, resolve_method(method_name), repeat, cap, lookup, _WORKER["rungs"])


def run_searches(
    table: Table,
    methods: list[str],
    caps: list[int],
    repeats: int,
    *,
    configs: np.ndarray,
    rungs: tuple[int, ...] | None = None,
    jobs: int = 1,
    pool_bootstrap: int = 0,
    bootstrap_repeats: int = 20,
    progress: bool = True,
    journal: Path | None = None,
    resume: bool = False,
    isolate: bool = False,
) -> tuple[dict, dict]:
    """Every (method, cap, repeat) search, and the pool-bootstrap searches: ``pool_bootstrap``
    resampled pools x ``bootstrap_repeats`` repeats x methods at :func:`bootstrap_cap`.
    Returns ``(searches, bootstrap)``: ``searches[(method, cap)]`` a list of
    :class:`SearchResult` by repeat, ``bootstrap[b][method]`` the same for pool ``b``.

    ``journal``: a file each finished search is appended to as one JSON line (a fresh one,
    or with ``resume`` the one a run cut short left: its searches are read, not run again,
    after checking that it was made on the same configurations, rungs and seeds). A search
    is a pure function of its method, repeat, cap and pool, so a resumed run's results
    equal an uninterrupted one's, and a resume may add methods, caps or repeats.

    ``jobs`` worker processes run the searches with Optuna's TPE sped up
    (:func:`budgetopt._optuna.fast_tpe_patch`, in those processes only); ``jobs=1`` runs
    them in this process with Optuna's TPE untouched, unless ``isolate`` (the command
    line's choice: one worker process, the fast TPE, this process untouched either way)."""
    # Over 60 lines for its signature and its two ways to run (in this process, or in a pool); the body is one
    # pass over the tasks.
    from tqdm.auto import tqdm

    tasks: list[tuple[str, int, int, tuple | None]] = [(m, r, cap, None) for cap in caps for m in methods for r in range(repeats)]
    owners: list[int | None] = [None] * len(tasks)  # the resampled pool a task belongs to
    pools = []
    rng = np.random.default_rng(12345)
    for b in range(pool_bootstrap):
        resampled = tuple(sorted(set(rng.choice(configs, size=len(configs), replace=True).tolist())))
        pools.append(resampled)
        tasks += [(m, 10_000 + r, bootstrap_cap(caps), resampled) for m in methods for r in range(bootstrap_repeats)]
        owners += [b] * (len(methods) * bootstrap_repeats)
    keys = [(task[0], task[1], task[2], owner) for task, owner in zip(tasks, owners)]
    header = {"format": JOURNAL_FORMAT, "version": 1, "table": table_digest(table), "optuna": optuna.__version__,
              "configs": configs.tolist(), "rungs": list(rungs or table.rungs), "seeds": list(table.seeds),
              "bootstrap_seed": 12345}
    done = read_journal(journal, header) if journal is not None and resume and journal.is_file() else {}
    results: list[SearchResult | None] = [done.get(key) for key in keys]
    todo = [i for i, result in enumerate(results) if result is None]
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), unit="search", desc="bench simulate",
               disable=not progress, dynamic_ncols=True, smoothing=0.05)
    args = (str(table.directory), configs.tolist(), list(rungs or table.rungs))
    with _journal_writer(journal, header, done) as write:
        if jobs == 1 and not isolate:
            _init_worker(*args)
            _WORKER["table"] = table
            finished = (_search_task(*tasks[i]) for i in todo)
            for i, result in zip(todo, finished):
                results[i] = result
                write(keys[i], result)
                bar.update(1)
        elif todo:
            with concurrent.futures.ProcessPoolExecutor(
                max_workers=jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_init_pool_worker,
                initargs=(os.getpid(), *args),
            ) as executor:
                chunk = max(1, len(todo) // (jobs * 8))
                for i, result in zip(todo, executor.map(_search_task_star, [tasks[i] for i in todo], chunksize=chunk)):
                    results[i] = result
                    write(keys[i], result)
                    bar.update(1)
    bar.close()
    searches: dict[tuple[str, int], list[SearchResult]] = {}
    bootstrap: list[dict[str, list[SearchResult]]] = [dict() for _ in pools]
    for task, owner, found in zip(tasks, owners, results):
        method, _, cap, _ = task
        assert found is not None  # every task ran
        if owner is None:
            searches.setdefault((method, cap), []).append(found)
        else:
            bootstrap[owner].setdefault(method, []).append(found)
    return searches, {"pools": [list(p) for p in pools], "searches": bootstrap}


JOURNAL_FORMAT = "budgetopt-bench-searches"


def table_digest(table: Table) -> str:
    """SHA-256 of the table's ``table.csv``: a journal is resumed only on the very table
    it was made on (a rebuilt or grown table, another pool seed: searches run again)."""
    import hashlib

    digest = hashlib.sha256()
    with open(table.directory / TABLE_FILE, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


SearchKey = tuple[str, int, int, "int | None"]  # method, repeat, cap, resampled pool (None: the table's)


def read_journal(path: Path, header: dict) -> dict[SearchKey, SearchResult]:
    """The searches a journal holds, by key, after checking that its header matches
    ``header`` (a run on other configurations, rungs or seeds is refused with the key that
    differs). A last line cut off by a killed run is ignored (it is written again)."""
    lines = path.read_text().splitlines()
    try:
        first = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError:
        first = None
    if not isinstance(first, dict) or first.get("format") != JOURNAL_FORMAT:
        raise InputError(f"--resume: {path} is not a journal of simulated searches; remove it or choose another --out")
    for key, value in header.items():
        if first.get(key) != value:
            what = {"table": "a table whose table.csv differs from this one's (rebuilt, grown, another pool)",
                    "optuna": f"Optuna {first.get('optuna')} (this run: {value})"}.get(key, f"other {key} than this run's")
            raise InputError(
                f"--resume: the searches in {path} were made on {what}; remove the file or choose another --out"
            )
    done: dict[SearchKey, SearchResult] = {}
    for number, line in enumerate(lines[1:], start=2):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break  # the line a killed run was writing
            raise InputError(f"--resume: line {number} of {path} is not JSON (the file was edited?)") from None
        owner = record.get("pool")
        result = SearchResult.from_record(record["search"])
        done[(result.method, result.repeat, result.cap, owner)] = result
    return done


class _journal_writer:
    """A context whose value appends one finished search to the journal (a fresh file
    holding ``header`` and the searches ``done``; nothing when ``path`` is None)."""

    def __init__(self, path: Path | None, header: dict, done: dict[SearchKey, SearchResult]) -> None:
        self.path, self.header, self.done = path, header, done
        self.handle: IO[str] | None = None

    def __enter__(self):
        if self.path is not None:
            fresh = self.path.with_name(self.path.name + ".tmp")
            with fresh.open("w") as handle:  # the readable lines of a resumed journal, without a cut-off one
                handle.write(json.dumps(self.header) + "\n")
                for key, result in self.done.items():
                    handle.write(_journal_line(key, result))
            os.replace(fresh, self.path)
            self.handle = self.path.open("a")
        return self.write

    def write(self, key: SearchKey, result: SearchResult) -> None:
        if self.handle is not None:
            self.handle.write(_journal_line(key, result))
            self.handle.flush()  # in the file once written: a killed run keeps every search it finished

    def __exit__(self, *exc) -> None:
        if self.handle is not None:
            self.handle.close()


def _journal_line(key: SearchKey, result: SearchResult) -> str:
    return json.dumps({"pool": key[3], "search": result.to_record()}) + "\n"


def bootstrap_cap(caps: list[int]) -> int:
    """The cap the pool bootstrap runs at: the middle one of the sorted caps (30 of
    10,30,100), where searches are long enough to differ and short enough to repeat."""
    return sorted(caps)[len(caps) // 2]


def _search_task_star(task: tuple) -> SearchResult:
    return _search_task(*task)


def check_methods(names: list[str], table: Table) -> list[str]:
    if not names:
        raise InputError(f"--methods is empty: name at least one of {', '.join(BUILTIN)}")
    for name in names:
        resolve_method(name, table)
    return list(dict.fromkeys(names))


def sub_ladder(spec: str | list | None, table: Table) -> tuple[int, ...]:
    """The rungs every method of a simulation uses: the table's ladder (``spec`` None or
    empty), or a sub-ladder of it given as comma-separated budgets (``90,270,810,2430``,
    ``30,270,2430``): budgets of the table's ladder, at least two, ending at its full
    budget, each an integer multiple >= 2 of the one before, the same multiple throughout
    (the reduction factor). A larger reduction factor or a higher minimum rung is thereby
    measured on the same table: every value and compute it needs is one the table holds."""
    if not spec:
        return table.rungs
    items = spec if isinstance(spec, list) else [s for s in re.split(r"[,\s]+", str(spec)) if s]
    allowed = (
        f"budgets of the table's ladder {'/'.join(map(str, table.rungs))}, ascending, ending at {table.rungs[-1]}, "
        "at a constant integer ratio >= 2"
    )
    try:
        rungs = tuple(int(item) for item in items)
    except ValueError:
        raise InputError(f"--rungs {','.join(map(str, items))!r}: allowed are {allowed}") from None
    ratios = {b // a if a and b % a == 0 else 0 for a, b in zip(rungs, rungs[1:])}
    if (
        len(rungs) < 2
        or any(b not in table.rungs for b in rungs)
        or rungs[-1] != table.rungs[-1]
        or len(ratios) != 1
        or min(ratios) < 2
    ):
        raise InputError(f"--rungs {','.join(map(str, rungs))!r}: allowed are {allowed}")
    return rungs


def pool_range(spec: str | None, table: Table) -> tuple[int, int] | None:
    """``A:B`` -> the pool positions ``A <= c < B`` a simulation draws from (``:B``, ``A:``
    allowed): tune on one part of a pool and report on another it never saw."""
    if not spec:
        return None
    n = len(table.pool)
    first, sep, last = str(spec).partition(":")
    try:
        low, high = int(first or 0), int(last or n)
    except ValueError:
        low = high = -1
    if not sep or not 0 <= low < high <= n:
        raise InputError(f"--pool {spec!r}: allowed is A:B with 0 <= A < B <= {n} (the table's pool positions)")
    return low, high


def caps_from(spec: str | list, table: Table, rungs: tuple[int, ...] | None = None) -> list[int]:
    """Compute caps in iterations from ``spec``, comma-separated: full budgets (``10,30,100``,
    or ``10fb``) or iterations (``24300it``) (:func:`budgetopt._validation.parse_compute`)."""
    items = spec if isinstance(spec, list) else [s for s in re.split(r"[,\s]+", str(spec)) if s]
    caps = []
    rungs = rungs or table.rungs
    max_budget, min_budget = rungs[-1], rungs[0]
    for item in items:
        cap = parse_compute(item, max_budget, "--compute", "fb")
        if not cap >= min_budget:
            raise InputError(
                f"--compute {item} is {cap} iterations, below one lowest rung ({min_budget} iterations = "
                f"{min_budget / max_budget:.4g} full budgets): no search could run"
            )
        caps.append(cap)
    if not caps:
        raise InputError("--compute needs at least one number of full budgets")
    return sorted(set(caps))
