"""The schema of ``results.json``: what ``budgetopt bench simulate`` writes and every
reader (the report, the demo, the command line's summary, ``studies/results_table.py``)
reads, as typed records.

The records are ``TypedDict``s: at run time the plain JSON objects (so a file reads back
exactly as written, and the committed reports of every earlier version read back with no
migration), to the type checker a schema: a reader that names a key the schema does not
have, or uses a value as the wrong type, fails ``mypy`` (CI runs it). Keys that a version
of the simulator did not write yet are ``total=False`` (the landing and truth tables came
with 0.2.0; the pool bootstrap and thresholds exist only when asked for).

:func:`write_results` and :func:`read_results` are the one way a file is written and
read; ``format`` and ``version`` are checked on reading. Version 1 is every file written
so far; a change to a record's meaning, not only an added key, gets the next version and
a branch in :func:`read_results`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypedDict

from budgetopt.errors import InputError

FORMAT = "budgetopt-bench-simulation"
VERSION = 1
FILE = "results.json"


class Interval(TypedDict):
    """A mean with its 95% interval (None where there were too few values)."""

    mean: float | None
    low: float | None
    high: float | None


class CurvePoint(Interval):
    n: int  # searches with a pick at this compute


class _FrontierEntry(Interval):
    reached: int  # repeats whose search reported at this budget


class FrontierEntry(_FrontierEntry, total=False):
    per_repeat: list[float | None]  # null where a repeat did not reach the budget (0.2.0 on)
    minus_baseline: Interval  # paired over the repeats that both reached it


class Curve(TypedDict):
    compute_full_budgets: list[float]
    regret: list[CurvePoint]
    deployable: list[CurvePoint]


class ComputeSummary(TypedDict):
    mean: float
    max: int


class TrialsSummary(TypedDict):
    mean: float
    full_budget: float


class Landing(TypedDict):
    """Where the suggestions of a method's searches landed on the finite pool."""

    suggestions: int
    moved_fraction: float | None
    median_distance_ratio: float | None
    exhausted_in: int
    exhausted_at_full_budgets: float | None


class SignTest(TypedDict):
    lower: int
    higher: int
    p: float | None  # None when every repeat tied


class _TruthResult(TypedDict):
    regret: list[float]
    regret_summary: Interval


class TruthResult(_TruthResult, total=False):
    """Selection regret under one final schedule (a truth)."""

    regret_minus_baseline: Interval
    sign_test: SignTest


class ReachCompute(TypedDict):
    iterations: int
    full_budgets: float
    fraction_of_cap: float


class ComputeToReach(TypedDict):
    mean: ReachCompute | None
    sure: ReachCompute | None


class _MethodResult(TypedDict):
    regret: list[float]
    deployable: list[float]
    picks: list[list[int] | None]
    compute: list[int]
    trials: list[int]
    full_budget_trials: list[int]
    regret_summary: Interval
    deployable_summary: Interval
    compute_summary: ComputeSummary
    trials_summary: TrialsSummary
    frontier_regret: dict[str, FrontierEntry]  # budget (a string: a JSON key) -> entry
    curve: Curve


class MethodResult(_MethodResult, total=False):
    """One method's searches at one cap (the paired keys only for a method not the baseline)."""

    landing: Landing
    by_truth: dict[str, TruthResult]  # truth kind -> its regrets
    average_rank: float
    compute_to_reach_baseline: ComputeToReach
    regret_minus_baseline: Interval
    deployable_minus_baseline: Interval
    regret_lower_than_baseline_in: int
    regret_higher_than_baseline_in: int


class CapResult(TypedDict):
    iterations: int
    full_budgets: float
    methods: dict[str, MethodResult]


class _BootstrapMethod(TypedDict):
    mean_regret_low: float
    mean_regret_high: float


class BootstrapMethod(_BootstrapMethod, total=False):
    regret_minus_baseline_mean: float
    regret_minus_baseline_low: float
    regret_minus_baseline_high: float


class PoolBootstrap(TypedDict):
    pools: int
    repeats: int
    cap: int
    methods: dict[str, BootstrapMethod]


class _Searches(TypedDict):
    caps: dict[str, CapResult]  # cap in iterations (a string) -> its searches
    methods: dict[str, str]  # method -> what it is, in words


class Searches(_Searches, total=False):
    pool_bootstrap: PoolBootstrap


class TableData(TypedDict, total=False):
    source: str | None
    digest: str | None


class _TableInfo(TypedDict):
    directory: str
    direction: str
    study: str
    command: str | None
    ladder_name: str
    rungs: list[int]
    configs: int
    configs_complete: int
    partial: bool
    seeds: list[int]
    kinds: list[str]
    cooldown: float


class TableInfo(_TableInfo, total=False):
    commands: list[str | None]
    data: TableData | None
    chance: float | None


class _Settings(TypedDict):
    methods: list[str]
    caps: list[int]
    repeats: int
    baseline: str


class Settings(_Settings, total=False):
    rungs: list[int]
    pool: list[int] | None
    pool_bootstrap: int
    bootstrap_repeats: int
    jobs: int


class RhoPoint(TypedDict):
    rho: float | None
    low: float | None
    high: float | None


class DifferencePoint(TypedDict):
    difference: float | None
    low: float | None
    high: float | None


class _FidelitySubset(TypedDict):
    configs: int


class FidelitySubset(_FidelitySubset, total=False):
    rho: dict[str, list[RhoPoint]]  # kind -> per rung
    differences: dict[str, list[DifferencePoint]]  # "kind - kind" -> per rung


class _Fidelity(TypedDict):
    rungs: list[int]
    subsets: dict[str, FidelitySubset]  # "all", "train"


class Fidelity(_Fidelity, total=False):
    kinds: list[str]
    configs: int
    seeds: int
    edge_of_stability: list[int]


class Threshold(TypedDict):
    threshold: str
    method: str
    measured: str
    met: bool


class Machine(TypedDict, total=False):
    platform: str
    cpu_count: int | None
    optuna: str


class _SimulationResults(TypedDict):
    format: str
    version: int
    command: str
    table: TableInfo
    settings: Settings
    searches: Searches
    seconds: float


class SimulationResults(_SimulationResults, total=False):
    """All of ``results.json``."""

    fidelity: Fidelity | None
    machine: Machine
    thresholds: list[Threshold]


def write_results(results: SimulationResults, path: Path) -> None:
    """``results`` as ``path`` (JSON, one space of indent), written whole or not at all."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(results, indent=1) + "\n")
    temporary.replace(path)


def read_results(path: str | Path) -> SimulationResults:
    """The results in ``path`` (a ``results.json``, a ``.json.gz``, or a directory holding
    one), after checking its format and version (an :class:`~budgetopt.errors.InputError`
    naming the file otherwise)."""
    import gzip

    path = Path(path)
    if path.is_dir():
        candidates = [path / FILE, path / (FILE + ".gz")]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise InputError(f"no {FILE} in {path}: give a directory made by 'budgetopt bench simulate'")
        path = found
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        results = json.loads(data)
    except FileNotFoundError:
        raise InputError(f"{path} does not exist: give a results.json made by 'budgetopt bench simulate'") from None
    except (gzip.BadGzipFile, EOFError, ValueError) as error:  # another OSError (permissions): the environment's
        raise InputError(f"{path} is not a results.json of 'budgetopt bench simulate' ({error})") from None
    if not isinstance(results, dict) or results.get("format") != FORMAT:
        raise InputError(f"{path} is not a results.json of 'budgetopt bench simulate' (format {FORMAT!r})")
    if results.get("version") != VERSION:
        raise InputError(
            f"{path} is results.json version {results.get('version')!r}; this budgetopt reads version {VERSION}"
        )
    return results  # type: ignore[return-value]  # checked above: the schema is what the simulator wrote


def schema_problems(value: object, record: object = SimulationResults, where: str = "results") -> list[str]:
    """Where ``value`` departs from ``record``'s schema (a TypedDict of this module, or a
    type built from them): a missing required key, a key the schema does not have, a value
    of another JSON type. Empty when it conforms. For tests and for checking a file written
    by another version; readers rely on the type checker instead."""
    import types
    import typing

    origin, args = typing.get_origin(record), typing.get_args(record)
    if origin in (typing.Union, types.UnionType):
        attempts = [schema_problems(value, option, where) for option in args]
        return [] if any(not a for a in attempts) else min(attempts, key=len)
    if record is type(None):
        return [] if value is None else [f"{where}: {type(value).__name__}, expected null"]
    if record is float:  # JSON has one number type; NaN is written as NaN
        return [] if isinstance(value, (int, float)) and not isinstance(value, bool) else [f"{where}: not a number"]
    if record in (int, str, bool):
        ok = isinstance(value, record) and (record is bool or not isinstance(value, bool))
        return [] if ok else [f"{where}: {type(value).__name__}, expected {record.__name__}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, expected a list"]
        return [p for i, item in enumerate(value) for p in schema_problems(item, args[0], f"{where}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, expected an object"]
        return [p for key, item in value.items() for p in schema_problems(item, args[1], f"{where}[{key!r}]")]
    if isinstance(record, type) and issubclass(record, dict) and hasattr(record, "__required_keys__"):
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, expected {record.__name__}"]
        hints = typing.get_type_hints(record)
        problems = [f"{where}: no {key!r}" for key in sorted(record.__required_keys__) if key not in value]
        problems += [f"{where}: {key!r} is not in {record.__name__}" for key in value if key not in hints]
        for key, item in value.items():
            if key in hints:
                problems += schema_problems(item, hints[key], f"{where}[{key!r}]")
        return problems
    if record is object:
        return []
    raise TypeError(f"schema_problems: no rule for {record!r}")
