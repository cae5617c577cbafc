"""Benchmark tables: a pool of configurations trained at every rung, seed and unit kind.

A table is a directory with two files that any dataframe library reads without
budgetopt (``pandas.read_csv``, ``polars.read_csv``, duckdb's ``read_csv_auto``):

``table.csv``
    one row per (configuration, seed, unit kind, rung budget), in this column order:

    ============  ================================================================
    config        index of the configuration in the pool (0, 1, ...)
    seed          training seed (initial weights and batch order)
    kind          unit kind: how the rungs were trained (see :class:`Kind`)
    budget        the rung budget, in iterations
    value         validation score at that budget (empty: diverged before it)
    test_value    test score of the unit's model at its last budget, on that row
                  only (empty elsewhere, and when the unit diverged)
    compute       iterations the unit had executed, re-done ones included, when it
                  reported this budget (empty: it never got there)
    seconds       wall seconds of the whole unit (every row of the unit)
    diverged      why the unit stopped early (empty: it did not)
    param_<name>  the configuration's hyperparameters, one column each
    ============  ================================================================

``meta.json``
    what built it: table format and version, study script (name, path, SHA-256),
    ladder, direction, chance score, search space (Optuna's distribution JSON), pool
    seed and the pool itself, seeds, unit kinds, branch cooldown, versions of budgetopt,
    torch, optuna and Python, the exact command, the machine, the measured cost per
    unit kind, and whether the build is complete (``complete``, ``configs_complete``).

Why CSV: it is the one format that pandas, polars and duckdb all read with no extra
package (Parquet needs pyarrow; SQLite needs an extension in duckdb and a connection in
the others), rows are appended by one process in one ``write`` per unit, and a table
cut off by a crash is repaired by dropping its incomplete last unit. A table of 600
configuration-seeds x 4 kinds x 5 rungs is about 2 MB.

A *unit* is one configuration, one seed, one kind: all rungs of the ladder trained as
:class:`~budgetopt.BudgetedRun` trains them in that kind's mode. Its rows are written
together; a unit is in the table entirely or not at all.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from budgetopt._validation import check_fraction
from budgetopt.errors import InputError, PathInputError
from budgetopt.modes import compute as mode_compute
from budgetopt.modes import cooldown_iterations
from budgetopt.schedules import PROFILES

TABLE_FORMAT = "budgetopt-bench-table"
TABLE_VERSION = 1
TABLE_FILE = "table.csv"
META_FILE = "meta.json"
COLUMNS = ("config", "seed", "kind", "budget", "value", "test_value", "compute", "seconds", "diverged")
PARAM_PREFIX = "param_"
DEFAULT_KINDS = ("restart", "branch", "continue_step", "continue_cosine")


class TableError(InputError):
    """A table that is missing, truncated, hand-edited, or built for something else."""


@dataclass(frozen=True)
class Kind:
    """How a unit trains the rungs of the ladder, by name:

    - ``restart``: restart mode, linear decay to each budget (its last rung is the
      configuration's *truth*: the full-budget score with linear decay);
    - ``branch``: branch mode with the table's cooldown; ``branch_cooldown<f>`` with
      cooldown fraction ``f`` (0 < f <= 1) instead, so one table compares cooldowns;
      ``branch_cooldown<f>_<profile>`` with that profile as the cooldown's shape
      (``branch_cooldown0.2_sqrt``: the ``1 - sqrt`` cooldown) instead of linear;
    - ``continue_<profile>``: one ``<profile>`` schedule (``step``, ``cosine``, ...) over
      the full budget, read at the rungs: what Optuna's pruners see today;
    - ``restart_beta<b>``: restart mode with horizon-scaled peak rates, budget ``B`` at
      ``lr * (B_max / B) ** b`` (:class:`~budgetopt.BudgetedRun`'s ``horizon_exponent``);
    - ``cosine_cooldown<f>``: ``continue_cosine``'s run with a linear cooldown over the
      last fraction ``f`` of each lower rung branched off it
      (:func:`~budgetopt.study_script.train_cosine_cooldown`): each lower rung's value is
      annealed, the last is the cosine run's own.
    """

    name: str
    mode: str
    profile: str = "linear"
    horizon_exponent: float = 0.0
    cooldown: float | None = None  # branch: None is the table's cooldown
    cooled: bool = False  # cosine_cooldown<f>: lower rungs cooled down off a cosine run

    def cooldown_in(self, table_cooldown: float) -> float:
        """The cooldown this kind's units train with in a table built with ``table_cooldown``."""
        return table_cooldown if self.cooldown is None else self.cooldown

    def compute(self, rungs: Sequence[int], r: int, table_cooldown: float) -> int:
        """Iterations a unit of this kind has executed once rung ``r`` is reported."""
        if not self.cooled:
            return int(mode_compute(self.mode, rungs, r, self.cooldown_in(table_cooldown)))
        assert self.cooldown is not None
        branched = [cooldown_iterations(b, self.cooldown) for b in rungs[:-1]]
        return int(rungs[r]) + sum(c for b, c in zip(rungs, branched) if b - c < rungs[r])

    def run_options(self, cooldown: float) -> dict:
        """Keyword arguments of :func:`~budgetopt.study_script.train_config` for this kind
        in a table built with ``cooldown``."""
        options: dict = {"profile": self.profile}
        if self.mode == "branch":
            options["cooldown"] = self.cooldown_in(cooldown)
        if self.horizon_exponent:
            options["horizon_exponent"] = self.horizon_exponent
        return options


def parse_kind(name: str) -> Kind:
    """The :class:`Kind` called ``name``; a ValueError names what is allowed."""
    if name in ("restart", "branch"):
        return Kind(name, name)
    match = re.fullmatch(r"continue_(\w+)", name)
    if match and match.group(1) in PROFILES:
        return Kind(name, "continue", match.group(1))
    match = re.fullmatch(r"cosine_cooldown(\d+(?:\.\d+)?)", name)
    if match:
        number = float(match.group(1))
        if f"cosine_cooldown{number:g}" != name:
            raise InputError(f"unit kind {name!r}: write it cosine_cooldown{number:g}")
        if 0 < number < 1:
            return Kind(name, "continue", "cosine", cooldown=number, cooled=True)
    match = re.fullmatch(r"(restart_beta|branch_cooldown)(\d+(?:\.\d+)?)(?:_(\w+))?", name)
    shape = match and match.group(3)
    if match and (shape is None or (match.group(1) == "branch_cooldown" and shape in PROFILES and shape != "linear")):
        number = float(match.group(2))
        spelling = f"{match.group(1)}{number:g}" + (f"_{shape}" if shape else "")
        if spelling != name:  # one spelling per kind: a table must not hold two
            raise InputError(f"unit kind {name!r}: write it {spelling}")
        if match.group(1) == "restart_beta" and number > 0:
            return Kind(name, "restart", horizon_exponent=number)
        if match.group(1) == "branch_cooldown" and 0 < number <= 1:
            return Kind(name, "branch", shape or "linear", cooldown=number)
    raise InputError(
        f"unknown unit kind {name!r}: allowed are restart, branch, continue_<profile> "
        f"(profile one of {', '.join(PROFILES)}), restart_beta<b> (b > 0, e.g. restart_beta0.3), "
        "branch_cooldown<f> (0 < f <= 1, e.g. branch_cooldown0.1), branch_cooldown<f>_<profile> (that cooldown "
        "shape, e.g. branch_cooldown0.2_sqrt) and cosine_cooldown<f> (0 < f < 1, e.g. cosine_cooldown0.5)"
    )


@dataclass(frozen=True)
class KindChoice:
    """Which table kind a method's trials read, per configuration: a kind name (every
    configuration alike), or ``KIND[param=value]``: ``KIND``'s units for configurations
    whose ``param`` is ``value``, the plain kind of its mode (``restart``, ``branch``) for
    the others. ``restart_beta0.3[optimizer=sgd]`` is a study that scales the rungs'
    peak rates for SGD only (what a user does with ``horizon_exponent=0.3 if
    params["optimizer"] == "sgd" else 0``): simulated from two kinds, no new training."""

    name: str
    kind: Kind
    other: Kind | None = None  # for configurations the condition does not hold on
    param: str | None = None
    value: str | None = None

    def indices(self, table: Table) -> np.ndarray:
        """The kind index of every pool configuration; a :class:`TableError` when the
        table lacks a kind or the parameter."""
        k = table.kind_index(self.kind.name)
        if self.other is None:
            return np.full(len(table.pool), k)
        j = table.kind_index(self.other.name)
        if self.param not in table.meta["space"]:
            raise TableError(
                f"kind {self.name!r}: the table's space has no parameter {self.param!r}; it has {', '.join(table.meta['space'])}"
            )
        held = np.array([_cell(c.get(self.param, "")) == self.value for c in table.pool])
        if not held.any():
            from optuna.distributions import json_to_distribution

            space = json_to_distribution(table.meta["space"][self.param])
            values = [_cell(v) for v in getattr(space, "choices", sorted({str(c.get(self.param)) for c in table.pool}))]
            raise TableError(f"kind {self.name!r}: no configuration has {self.param}={self.value}; it takes {', '.join(values)}")
        return np.where(held, k, j)


def parse_kind_choice(name: str) -> KindChoice:
    """The :class:`KindChoice` called ``name``; a ValueError names what is allowed."""
    match = re.fullmatch(r"([\w.]+)\[(\w+)=([^\]]+)\]", name)
    if match is None:
        if "[" in name or "]" in name:
            raise InputError(f"kind {name!r}: expected KIND[param=value], e.g. restart_beta0.3[optimizer=sgd]")
        return KindChoice(name, parse_kind(name))
    kind = parse_kind(match.group(1))
    if kind.mode == "continue" or kind.name in ("restart", "branch"):
        raise InputError(
            f"kind {name!r}: a condition needs a restart_beta<b> or branch_cooldown<f> kind "
            "(the others read the plain restart or branch kind)"
        )
    return KindChoice(name, kind, Kind(kind.mode, kind.mode), match.group(2), match.group(3))


# -- the pool ------------------------------------------------------------------------------


def sample_pool(script, size: int, seed: int = 0) -> tuple[list[dict], dict]:
    """``size`` configurations from the script's search space, quasi-random (Optuna's
    scrambled Sobol ``QMCSampler`` with ``seed``), and the space's distributions.

    Reproducible, and a prefix of a larger draw with the same seed, so a table can grow.
    The first point is the sampler's independent (random) draw that lets it learn the
    space; the rest follow the Sobol sequence.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.QMCSampler(
            seed=seed,
            scramble=True,
            independent_sampler=optuna.samplers.RandomSampler(seed=seed),
            warn_independent_sampling=False,
            warn_asynchronous_seeding=False,
        )
    study = optuna.create_study(sampler=sampler)
    pool, space = [], {}
    for _ in range(size):
        trial = study.ask()
        script.search_space(trial)
        pool.append(dict(trial.params))
        space.update(trial.distributions)
        study.tell(trial, 0.0)
    return pool, space


# -- reading and writing -------------------------------------------------------------------


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def unit_rows(config: int, seed: int, kind: str, rungs: Sequence[int], params: dict, result) -> str:
    """The CSV text of one unit: one row per rung (``result`` a :class:`TrainResult`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    last = max(result.rung_values) if result.rung_values else None
    for budget in rungs:
        value = result.rung_values.get(budget)
        test = result.test_value if budget == rungs[-1] and last == budget else None
        writer.writerow(
            [
                config,
                seed,
                kind,
                budget,
                _cell(value),
                _cell(test),
                _cell(result.rung_compute.get(budget)),
                f"{result.seconds:.3f}",
                result.diverged or "",
                *(_cell(params[name]) for name in sorted(params)),
            ]
        )
    return buffer.getvalue()


def header(param_names: Sequence[str]) -> str:
    return ",".join([*COLUMNS, *(PARAM_PREFIX + name for name in sorted(param_names))]) + "\n"


def write_atomic(path: Path, write) -> None:
    """Write ``path`` through a temporary file in its directory (``write(tmp_path)``),
    fsynced, then renamed over it: a reader sees the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: dict) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1) + "\n"))


def writable_directory(out: Path, option: str = "--out") -> Path:
    """``out``, created if missing, after checking that a file can be written in it; a
    one-line error naming ``option`` otherwise."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PathInputError(f"{option} {out} is a file, not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise PathInputError(f"{option} {out} is not writable ({error.strerror or error})") from None
    return out


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass
class Table:
    """A benchmark table in memory, as arrays indexed ``[config, seed, kind, rung]``.

    ``value`` (validation) and ``compute`` are NaN where a unit never reported a rung;
    ``test`` ``[config, seed, kind]`` is the test score of each unit's full-budget model
    (NaN: diverged, or not yet built); ``done`` ``[config, seed, kind]`` says which
    units are in the table.
    """

    directory: Path
    meta: dict
    value: np.ndarray
    compute: np.ndarray
    test: np.ndarray
    seconds: np.ndarray
    done: np.ndarray
    diverged: dict = field(default_factory=dict)  # (config, seed, kind) -> reason

    @property
    def rungs(self) -> tuple[int, ...]:
        return tuple(self.meta["ladder"]["rungs"])

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self.meta["kinds"])

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(self.meta["seeds"])

    @property
    def pool(self) -> list[dict]:
        return self.meta["pool"]

    @property
    def maximize(self) -> bool:
        return self.meta["direction"] == "maximize"

    @property
    def complete_configs(self) -> np.ndarray:
        """Indexes of the configurations whose every seed and kind is in the table."""
        return np.flatnonzero(self.done.all(axis=(1, 2)))

    def kind_index(self, kind: str) -> int:
        try:
            return self.kinds.index(kind)
        except ValueError:
            raise TableError(f"the table in {self.directory} has no unit kind {kind!r}; it has {', '.join(self.kinds)}") from None

    def floor(self) -> float:
        """The score a diverged run counts as: just worse than every finite value of the table
        and than the script's ``chance``, in the study's direction. (Chance alone would let a
        NaN run of a minimize study, whose chance is a loss, beat a finite blow-up.)"""
        chance = self.meta.get("chance")
        finite = self.value[np.isfinite(self.value)]
        test = self.test[np.isfinite(self.test)]
        candidates = [float(chance)] if chance is not None else []
        if finite.size:
            candidates.append(float(finite.min() if self.maximize else finite.max()))
        if test.size:
            candidates.append(float(test.min() if self.maximize else test.max()))
        if not candidates:
            return 0.0
        worst = min(candidates) if self.maximize else max(candidates)
        return float(np.nextafter(worst, -np.inf if self.maximize else np.inf))

    def full_budget_scores(self, kind: str, split: str = "test") -> np.ndarray:
        """``[config, seed]`` scores of ``kind``'s model at the full budget on ``split``
        (``"test"`` or ``"val"``), a diverged run counted at :meth:`floor`; NaN where the
        unit is not in the table. ``kind`` may choose per configuration (:class:`KindChoice`)."""
        k, rows = parse_kind_choice(kind).indices(self), np.arange(len(self.pool))
        scores = self.test[rows, :, k] if split == "test" else self.value[rows, :, k, -1]
        return np.where(self.done[rows, :, k], np.where(np.isfinite(scores), scores, self.floor()), np.nan)

    def truth(self, split: str = "test") -> np.ndarray:
        """Each configuration's truth: its full-budget score with linear decay (the
        ``restart`` kind's last rung), mean over the seeds, on ``split`` (default
        ``"test"``: never seen by a search). NaN where a seed is missing."""
        return self.full_budget_scores("restart", split).mean(axis=1)


def read_meta(directory: str | Path, *, expect: dict | None = None) -> dict:
    """The checked ``meta.json`` of the table in ``directory`` (see :func:`read_table`)."""
    directory = Path(directory)
    meta_path, table_path = directory / META_FILE, directory / TABLE_FILE
    if not meta_path.is_file() or not table_path.is_file():
        raise TableError(
            f"{directory} holds no benchmark table ({META_FILE} and {TABLE_FILE}); build one with 'budgetopt bench build'"
        )
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise TableError(
            f"{meta_path} is not valid JSON ({error.msg if hasattr(error, 'msg') else error}): the table's metadata is damaged"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != TABLE_FORMAT:
        raise TableError(f"{meta_path} is not a budgetopt benchmark table's metadata (format {TABLE_FORMAT!r} expected)")
    if meta.get("version") != TABLE_VERSION:
        raise TableError(
            f"{directory} holds a table of version {meta.get('version')!r}; this budgetopt reads version {TABLE_VERSION}"
        )
    try:  # what the branch kind trained with: never assumed
        check_fraction(meta.get("cooldown"), "cooldown")
    except (TypeError, ValueError):
        raise TableError(
            f"{meta_path} records no branch cooldown in (0, 1] (got {meta.get('cooldown')!r}): the table's metadata is damaged"
        ) from None
    for key, wanted in (expect or {}).items():
        if meta.get(key) != wanted:
            raise TableError(f"{directory} was built for {key} {meta.get(key)!r}, not {wanted!r}")
    return meta


def read_table(directory: str | Path, *, expect: dict | None = None) -> Table:
    """The table in ``directory``; a :class:`TableError` (one line) when it is missing,
    of another format or version, truncated or hand-edited. ``expect`` (optional):
    meta fields that must match (``study``, ``ladder``, ...)."""
    # Over 60 lines on purpose: the table's every check (format, version, shape, each row's keys and values,
    # truncation) beside the arrays they fill, so a damaged table is refused in one line naming what is wrong.
    directory = Path(directory)
    meta = read_meta(directory, expect=expect)
    table_path = directory / TABLE_FILE
    rungs, kinds, seeds = meta["ladder"]["rungs"], meta["kinds"], meta["seeds"]
    n = len(meta["pool"])
    shape = (n, len(seeds), len(kinds))
    value = np.full((*shape, len(rungs)), np.nan)
    compute = np.full((*shape, len(rungs)), np.nan)
    test = np.full(shape, np.nan)
    seconds = np.full(shape, np.nan)
    rows = np.zeros((*shape, len(rungs)), dtype=bool)
    diverged = {}
    params = sorted(meta["space"])
    expected_header = [*COLUMNS, *(PARAM_PREFIX + p for p in params)]
    seed_index = {s: i for i, s in enumerate(seeds)}
    kind_index = {k: i for i, k in enumerate(kinds)}
    rung_index = {b: i for i, b in enumerate(rungs)}
    with table_path.open(newline="") as f:
        reader = csv.reader(f)
        head = next(reader, None)
        if head != expected_header:
            raise TableError(
                f"{table_path}: the header is not this table's ({','.join(expected_header[:6])},...): "
                "hand-edited or from another build"
            )
        for line, row in enumerate(reader, start=2):
            try:
                if len(row) != len(expected_header):
                    raise InputError(f"{len(row)} cells, {len(expected_header)} expected")
                c, s, k, b = int(row[0]), seed_index[int(row[1])], kind_index[row[2]], rung_index[int(row[3])]
                if not 0 <= c < n:
                    raise InputError(f"config {c} is not in the pool of {n}")
                if rows[c, s, k, b]:
                    raise InputError("a duplicate row")
                if [row[len(COLUMNS) + i] for i in range(len(params))] != [_cell(meta["pool"][c][p]) for p in params]:
                    raise InputError(f"its parameters are not those of configuration {c} in {META_FILE}")
                rows[c, s, k, b] = True
                value[c, s, k, b] = float(row[4]) if row[4] else np.nan
                compute[c, s, k, b] = float(row[6]) if row[6] else np.nan
                if row[5]:
                    test[c, s, k] = float(row[5])
                seconds[c, s, k] = float(row[7])
                if row[8]:
                    diverged[(c, s, k)] = row[8]
            except (ValueError, KeyError, IndexError) as error:
                raise TableError(
                    f"{table_path} line {line} is not a row of this table ({error}): truncated or hand-edited"
                ) from None
    # every rung a unit reported cost what its mode executes (a diverged rung: less)
    for k, kind in enumerate(kinds):
        parsed = parse_kind(kind)
        expected = np.array([parsed.compute(rungs, r, meta["cooldown"]) for r in range(len(rungs))])
        wrong = np.isfinite(value[:, :, k]) & (compute[:, :, k] != expected)
        if wrong.any():
            c, s, r = np.argwhere(wrong)[0]
            raise TableError(
                f"{table_path}: config {c}, seed {seeds[s]}, kind {kind}, budget {rungs[r]} records compute "
                f"{compute[c, s, k, r]:g}, but that kind executes {expected[r]}: hand-edited or from another build"
            )
    done = np.asarray(rows.all(axis=3))
    if (rows.any(axis=3) & ~done).any():
        c, s, k = np.argwhere(rows.any(axis=3) & ~done)[0]
        raise TableError(
            f"{table_path}: the unit of config {c}, seed {seeds[s]}, kind {kinds[k]} lacks rungs: truncated or hand-edited"
        )
    return Table(directory, meta, value, compute, test, seconds, done, diverged)
