"""``budgetopt bench simulate``: replay searches against a benchmark table at equal compute.

A simulated search is a real Optuna study (in memory) with a real sampler and a real
pruner; only the training is replaced by a table lookup:

1. ``study.ask(space)`` draws a configuration from the table's search space; the
   trial trains the *nearest configuration of the pool not yet trained at its seed* in
   the normalised space (Optuna's own transform: log-scaled where the distribution is
   log, categoricals one-hot, every coordinate in [0, 1]; :class:`Landing`). A real
   search in a continuous space never trains the same configuration twice, so neither
   does a simulated one: until 0.2.0 two suggestions in one cell trained the same
   configuration again at full cost, and on a finite pool that decided the sampler
   comparisons (TPE spent 64% of its compute on repeats on table B at 10 full budgets).
   When every (configuration, seed) pair was trained the pool is *exhausted*: the search
   stops and records the compute at which that happened. How far suggestions moved is
   recorded (the fraction landing elsewhere than their nearest configuration, and the
   distance relative to the pool's nearest-neighbour spacing): the price of the finite
   pool, which the report states.
2. The trial's seed is drawn from the table's seeds, trial ``n`` of repeat ``k``
   drawing the same seed in every method (paired repeats), before its configuration
   lands.
3. The trial's plan (its rung budgets: the ladder for Optuna's pruners, the bracket's
   rungs for :class:`~budgetopt.BudgetPruner`, the full budget alone for searches
   without pruning) is walked rung by rung: ``trial.report(value, budget)`` with the
   value the table holds for that configuration, seed and unit kind, then
   ``trial.should_prune()``. A unit that diverged at a rung ends the trial as pruned
   there, as a live :class:`~budgetopt.BudgetedRun` does.
4. Compute is charged per rung before the rung runs, with the mode's formula
   (:func:`budgetopt.modes.compute`, restart's re-done iterations included; a
   diverged rung charges only the iterations its unit executed). **A search never
   starts a rung it cannot finish within the cap**: it stops at the first that does
   not fit, so every search's compute is at most the cap.

``rung<i>`` (Egele et al. 2023's "train every trial for i epochs, then pick") spends
the first half of the cap training every trial to rung ``i`` of a full-length cosine
schedule and the second half continuing the best of them, best value first, to the
full budget; its pick is the best full-budget value.

The search's *pick* is, in every method alike, the trial with the best validation
value at the largest budget any of its trials reported. Metrics (see
:mod:`budgetopt.bench.stats`): selection regret against the pool's best truth
(the full-budget linear test score, mean over the table's seeds: one final schedule for
every method), deployable score (the test score of the pick trained in the method's own
final schedule, mean over seeds), anytime curves of both.
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import optuna
from optuna.distributions import json_to_distribution
from optuna.trial import TrialState

from budgetopt._optuna import search_space_transform
from budgetopt.bench.table import Table, parse_kind, parse_kind_choice
from budgetopt.errors import InputError
from budgetopt.modes import compute as mode_compute
from budgetopt.modes import cooldown_iterations, mode_with
from budgetopt.pruners import BudgetPruner
from budgetopt.samplers import BudgetSampler
from budgetopt.trial_io import trial_attrs_for_plan, trial_attrs_for_rung

GRID_POINTS = 61  # anytime curves: compute from 0 to the cap in 60 steps


@dataclass(frozen=True)
class Method:
    """A named combination of sampler, pruner and unit kind.

    ``pruner``: ``"sha"`` / ``"hyperband"`` (Optuna's ``SuccessiveHalvingPruner`` /
    ``HyperbandPruner`` on the table's ladder), ``"budget"`` / ``"budget_hyperband"``
    (:class:`~budgetopt.BudgetPruner`, one bracket / all brackets), ``"none"`` (every
    trial at the full budget), or ``"module:Class"`` (any ``optuna.pruners.BasePruner``,
    built as ``Class(min_budget=..., max_budget=..., reduction_factor=...)``; one with a
    ``plan(study, trial)`` method, as ``BudgetPruner``, gives each trial its budgets).
    ``sampler``: ``"tpe"``, ``"random"`` or ``"budget"`` (:class:`~budgetopt.BudgetSampler`
    over TPE). ``kind``: the table's unit kind whose values the trials see;
    ``deploy_kind``: whose full-budget test score the user gets for the pick.
    """

    name: str
    kind: str
    pruner: str
    sampler: str
    deploy_kind: str
    words: str = ""
    frontier_kind: str | None = None  # cosine_cooldown<f>: each rung's survivors cooled down, the frontier from them


BUILTIN = {
    "sha_step": Method(
        "sha_step",
        "continue_step",
        "sha",
        "tpe",
        "continue_step",
        "Optuna SuccessiveHalvingPruner + TPE, full-length step schedule read at the rungs",
    ),
    "sha_cosine": Method(
        "sha_cosine",
        "continue_cosine",
        "sha",
        "tpe",
        "continue_cosine",
        "Optuna SuccessiveHalvingPruner + TPE, full-length cosine schedule read at the rungs",
    ),
    "hyperband_step": Method(
        "hyperband_step",
        "continue_step",
        "hyperband",
        "tpe",
        "continue_step",
        "Optuna HyperbandPruner + TPE, full-length step schedule",
    ),
    "hyperband_cosine": Method(
        "hyperband_cosine",
        "continue_cosine",
        "hyperband",
        "tpe",
        "continue_cosine",
        "Optuna HyperbandPruner + TPE, full-length cosine schedule",
    ),
    "restart": Method(
        "restart",
        "restart",
        "budget",
        "budget",
        "restart",
        "budgetopt BudgetPruner + BudgetSampler, restart (linear decay to each rung)",
    ),
    "branch": Method(
        "branch",
        "branch",
        "budget",
        "budget",
        "branch",
        "budgetopt BudgetPruner + BudgetSampler, branch (constant trunk, linear cooldown per rung)",
    ),
    "restart_hb": Method(
        "restart_hb",
        "restart",
        "budget_hyperband",
        "budget",
        "restart",
        "budgetopt BudgetPruner (Hyperband brackets) + BudgetSampler, restart",
    ),
    "branch_hb": Method(
        "branch_hb",
        "branch",
        "budget_hyperband",
        "budget",
        "branch",
        "budgetopt BudgetPruner (Hyperband brackets) + BudgetSampler, branch",
    ),
    "restart_model": Method(
        "restart_model",
        "restart",
        "budgetopt.promotion:ModelPromotionPruner",
        "budget",
        "restart",
        "budgetopt ModelPromotionPruner (random-forest prediction at the full budget) + BudgetSampler, restart",
    ),
    "cosine_model": Method(
        "cosine_model",
        "continue_cosine",
        "budgetopt.promotion:ModelPromotionPruner",
        "tpe",
        "continue_cosine",
        "the same model-based promotion + TPE on a full-length cosine schedule (the baseline given the same rule)",
    ),
    "random": Method(
        "random", "restart", "none", "random", "restart", "random search, every trial at the full budget (linear decay)"
    ),
    "tpe": Method("tpe", "restart", "none", "tpe", "restart", "TPE, every trial at the full budget (linear decay)"),
}
SAMPLERS = {"random": "random sampler", "tpe": "Optuna's TPESampler", "budget": "BudgetSampler"}  # method@sampler
# Like with like by default: every method with the same random sampler, so a paired difference is the
# promotion rule's and the schedule's, never the sampler's (a table of a finite pool cannot say what a
# sampler such as TPE is worth: most of its suggestions land elsewhere than where it sampled). A method's
# own sampler is one suffix away (``sha_cosine`` is TPE, ``restart`` BudgetSampler).
DEFAULT_METHODS = (
    "sha_cosine@random", "sha_step@random", "hyperband_step@random", "restart@random", "branch@random", "random"
)
BASELINE = "sha_cosine@random"  # Optuna's SuccessiveHalvingPruner on a full-length cosine schedule


def resolve_method(name: str, table: Table | None = None) -> Method:
    """The method called ``name``: a built-in (:data:`BUILTIN`), a table kind run with
    ``BudgetPruner`` (``restart_beta0.3``, or ``restart_beta0.3[optimizer=sgd]`` for some
    configurations only: :class:`~budgetopt.bench.table.KindChoice`),
    ``module:Class[@kind]`` (a user's pruner), each
    with an optional sampler suffix (:data:`SAMPLERS`): ``@random``, ``@tpe`` or
    ``@budget`` (``sha_cosine@budget``: Optuna's successive halving on the cosine values
    with BudgetSampler, which separates the sampler's share of a difference from the
    schedule's)."""
    # Over 60 lines on purpose: the one parser of the method grammar (built-in, table kind, kind choice, user
    # pruner, sampler suffix), each branch a few lines, so every error names what is allowed in one place.
    base, _, suffix = name.partition("@")
    sampler_override = suffix if suffix in SAMPLERS else None
    kind_override = suffix if suffix and sampler_override is None else None
    if "@" in name and not suffix:
        raise InputError(f"method {name!r}: nothing after @: allowed are {', '.join('@' + s for s in SAMPLERS)}")
    if kind_override is not None and ":" not in base:  # a kind after @ only follows a user's module:Class
        raise InputError(
            f"method {name!r}: unknown sampler {suffix!r}: allowed are {', '.join('@' + s for s in SAMPLERS)} "
            "(an @kind follows only module:Class, your own pruner)"
        )
    cooled = re.fullmatch(r"sha_cooldown(\d+(?:\.\d+)?)", base)
    first = re.fullmatch(r"rung(\d+)", base)
    if base in BUILTIN and kind_override is None:
        method = BUILTIN[base]
    elif first and kind_override is None:
        i = int(first.group(1))
        if i < 1 or (table is not None and i >= len(table.rungs)):
            allowed = f"1 to {len(table.rungs) - 1}" if table is not None else "1 or more"
            raise InputError(f"method {name!r}: i in rung<i> is the rung every trial trains to, {allowed}")
        method = Method(
            base,
            "continue_cosine",
            base,
            "tpe",
            "continue_cosine",
            f"every trial trained to rung {i} of a full-length cosine schedule (half the cap), then the best of "
            "them continued to the full budget until the cap is spent (Egele et al. 2023), TPE",
        )
    elif cooled and kind_override is None:
        frontier_kind = f"cosine_cooldown{cooled.group(1)}"
        parse_kind(frontier_kind)  # the fraction's spelling and range
        method = Method(
            base,
            "continue_cosine",
            "sha",
            "tpe",
            "continue_cosine",
            f"Optuna SuccessiveHalvingPruner + TPE on the cosine values; each rung's survivors cooled down "
            f"(last {cooled.group(1)} of the rung, branched off the cosine run) for the frontier",
            frontier_kind,
        )
    elif ":" in base:
        module_name, _, class_name = base.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as error:
            raise InputError(f"method {name!r}: cannot import {base} ({error})") from None
        if not (isinstance(cls, type) and issubclass(cls, optuna.pruners.BasePruner)):
            raise InputError(f"method {name!r}: {base} is not an optuna.pruners.BasePruner subclass")
        kind = kind_override or "restart"
        mode = parse_kind_choice(kind).kind.mode
        method = Method(base, kind, base, "budget" if mode != "continue" else "tpe", kind, f"{base} on {kind} values")
    else:
        try:
            parsed = parse_kind_choice(base).kind
        except ValueError as error:
            if "[" in base:
                raise InputError(f"method {name!r}: {error}") from None
            raise InputError(
                f"unknown method {name!r}: allowed are {', '.join(BUILTIN)}, a table kind (e.g. restart_beta0.3, "
                "or restart_beta0.3[optimizer=sgd] for some configurations only), sha_cooldown<f> (a table with "
                "cosine_cooldown<f>), rung<i> (every trial to rung i, then the best to the full budget), "
                "or module:Class[@kind] for your own pruner; add @random, @tpe or @budget for that sampler"
            ) from None
        if parsed.cooled:
            raise InputError(
                f"method {name!r}: {base} values are read by sha_cooldown{parsed.cooldown:g} (successive halving on the "
                "cosine values, cooldowns for each rung's survivors), not promoted on"
            )
        pruner = "sha" if parsed.mode == "continue" else "budget"
        sampler = "tpe" if parsed.mode == "continue" else "budget"
        method = Method(base, base, pruner, sampler, base, f"{pruner} on {base} values")
    if sampler_override:
        words = f"{method.words}, {SAMPLERS[sampler_override]}"
        method = Method(name, method.kind, method.pruner, sampler_override, method.deploy_kind, words, method.frontier_kind)
    if table is not None:
        for kind in (method.kind, method.deploy_kind, *([method.frontier_kind] if method.frontier_kind else [])):
            parse_kind_choice(kind).indices(table)  # a TableError naming the kinds the table has
    return method


# -- one search ------------------------------------------------------------------------------


@dataclass
class SearchResult:
    method: str
    repeat: int
    cap: int
    compute: int
    trials: int  # trials that trained at least one rung
    full_budget_trials: int
    pick: tuple[int, int] | None  # (pool index, seed index) of the trial picked
    events: list = field(default_factory=list)  # (compute, pick) after each report
    frontier: dict = field(default_factory=dict)  # budget -> (pool index, seed index) of the best value reported at it
    suggestions: int = 0  # configurations the sampler proposed
    moved: int = 0  # of them, landed on another configuration than their nearest (it was trained at that seed)
    distance_ratios: list = field(default_factory=list)  # suggestion-to-landing distance / the pool's nearest-neighbour spacing
    exhausted_at: int | None = None  # compute when every (configuration, seed) had been trained, None if never
    landed: list = field(default_factory=list)  # (pool index, seed index) of every trial, in order

    def to_record(self) -> dict:
        """This search as JSON values (a line of a simulation's ``searches.jsonl``)."""
        cell = _cell_record
        return {
            "method": self.method, "repeat": self.repeat, "cap": self.cap, "compute": int(self.compute),
            "trials": self.trials, "full_budget_trials": self.full_budget_trials, "pick": cell(self.pick),
            "events": [[int(spent), cell(pick)] for spent, pick in self.events],
            "frontier": {str(budget): cell(at) for budget, at in self.frontier.items()},
            "suggestions": self.suggestions, "moved": self.moved,
            "distance_ratios": [float(x) for x in self.distance_ratios],
            "exhausted_at": None if self.exhausted_at is None else int(self.exhausted_at),
            "landed": [cell(at) for at in self.landed],
        }

    @classmethod
    def from_record(cls, record: Mapping) -> SearchResult:
        """The search :meth:`to_record` wrote."""
        cell = _cell_of
        return cls(
            method=record["method"], repeat=record["repeat"], cap=record["cap"], compute=record["compute"],
            trials=record["trials"], full_budget_trials=record["full_budget_trials"], pick=cell(record["pick"]),
            events=[(spent, cell(pick)) for spent, pick in record["events"]],
            frontier={int(budget): cell(at) for budget, at in record["frontier"].items()},
            suggestions=record["suggestions"], moved=record["moved"], distance_ratios=list(record["distance_ratios"]),
            exhausted_at=record["exhausted_at"], landed=[cell(at) for at in record["landed"]],
        )


def _cell_record(cell: tuple[int, int] | None) -> list[int] | None:
    return None if cell is None else [int(cell[0]), int(cell[1])]


def _cell_of(record: list[int] | None) -> tuple[int, int] | None:
    return None if record is None else (int(record[0]), int(record[1]))


class PoolLookup:
    """Nearest pool configuration of a suggestion, in Optuna's normalised space (a
    parameter a configuration lacks, in a conditional space, sits at the middle of its
    range)."""

    def __init__(self, table: Table, configs: np.ndarray) -> None:
        from scipy.spatial import cKDTree

        self.space = {name: json_to_distribution(d) for name, d in table.meta["space"].items()}
        self.transform = search_space_transform(self.space, transform_0_1=True)
        self.configs = configs
        self.pool = table.pool
        points = np.array([self._point(table.pool[c]) for c in configs])
        self.tree = cKDTree(points)
        # The pool's spacing: median distance from a configuration to its nearest other one.
        distinct = np.unique(points, axis=0)
        self.spacing = float(np.median(cKDTree(distinct).query(distinct, k=2)[0][:, 1])) if len(distinct) > 1 else 1.0

    def _point(self, params: dict) -> np.ndarray:
        full = {}
        for name, d in self.space.items():
            if name in params:
                full[name] = params[name]
            elif isinstance(d, optuna.distributions.CategoricalDistribution):
                full[name] = d.choices[0]
            elif isinstance(d, (optuna.distributions.FloatDistribution, optuna.distributions.IntDistribution)):
                full[name] = d.to_external_repr((d.low + d.high) / 2) if not d.log else float(np.sqrt(d.low * d.high))
                if isinstance(d, optuna.distributions.IntDistribution):
                    full[name] = int(round(full[name]))
        return self.transform.transform(full)

    def nearest(self, params: dict) -> int:
        _, i = self.tree.query(self._point(params))
        return int(self.configs[i])

    def by_distance(self, params: dict, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` pool configurations nearest to ``params`` and their distances, nearest first."""
        k = min(k, len(self.configs))
        distance, i = self.tree.query(self._point(params), k=k)
        return np.atleast_1d(self.configs[i]), np.atleast_1d(distance)


class Landing:
    """Where the suggestions of one search land: a real search in a continuous space never
    trains the same configuration at the same seed twice, so neither does a simulated one.

    Trial ``n`` is given the seed ``seed_of(n)``; its suggestion lands on the nearest pool
    configuration not yet trained at that seed (at the next seed that has one when that
    seed's configurations are all used). :attr:`exhausted` once every (configuration,
    seed) pair was trained: the pool can no longer stand for the continuous space.
    """

    def __init__(self, lookup: PoolLookup, n_seeds: int, seed_of) -> None:
        self.lookup = lookup
        self.n_seeds = n_seeds
        self.seed_of = seed_of
        self.used: set[tuple[int, int]] = set()
        self.used_at = [0] * n_seeds  # configurations trained at each seed
        self.total = len(set(lookup.configs.tolist())) * n_seeds
        self.placed: dict[int, tuple[int, int]] = {}  # trial number -> (configuration, seed)
        self.suggestions = 0
        self.moved = 0
        self.distance_ratios: list[float] = []

    @property
    def exhausted(self) -> bool:
        return len(self.used) >= self.total

    def land(self, params: dict, trial_number: int) -> int:
        """The configuration trial ``trial_number`` trains (its seed in :attr:`placed`)."""
        first = self.seed_of(trial_number)
        n_configs = self.total // self.n_seeds
        configs, distances = self.lookup.by_distance(params, 1)
        nearest = int(configs[0])
        for seed in [first] + [s for s in range(self.n_seeds) if s != first]:
            if self.used_at[seed] >= n_configs:
                continue
            while True:  # the nearest configurations, more of them until one is free at this seed
                free = [(c, d) for c, d in zip(configs.tolist(), distances.tolist()) if (c, seed) not in self.used]
                if free:
                    config, distance = free[0]
                    self.used.add((config, seed))
                    self.used_at[seed] += 1
                    self.placed[trial_number] = (config, seed)
                    self.suggestions += 1
                    self.moved += config != nearest
                    self.distance_ratios.append(distance / self.lookup.spacing if self.lookup.spacing > 0 else 0.0)
                    return config
                if len(configs) >= len(self.lookup.configs):
                    break
                configs, distances = self.lookup.by_distance(params, 4 * len(configs) + 4)
        raise RuntimeError("Landing.land called on an exhausted pool")


class _Snapping(optuna.samplers.BaseSampler):
    """A sampler that proposes what ``base`` proposes, moved to the nearest pool
    configuration: every trial's parameters are those of a configuration the table
    trained, so the model of a model-based sampler (and of a model-based pruner) learns
    on points that were trained. All parameters are sampled together (relative), each
    from ``base``'s relative proposal or, where it has none, its independent one."""

    def __init__(self, base: optuna.samplers.BaseSampler, lookup: PoolLookup, landing: Landing | None = None) -> None:
        self.base = base
        self.lookup = lookup
        self.landing = landing

    def reseed_rng(self) -> None:
        self.base.reseed_rng()

    def before_trial(self, study, trial) -> None:
        self.base.before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        self.base.after_trial(study, trial, state, values)

    def infer_relative_search_space(self, study, trial):
        return dict(self.lookup.space)

    def sample_relative(self, study, trial, search_space):
        relative = self.base.sample_relative(study, trial, self.base.infer_relative_search_space(study, trial))
        proposal = {
            name: relative[name] if name in relative else self.base.sample_independent(study, trial, name, d)
            for name, d in self.lookup.space.items()
        }
        config = self.lookup.nearest(proposal) if self.landing is None else self.landing.land(proposal, trial.number)
        return dict(self.lookup.pool[config])

    def sample_independent(self, study, trial, param_name, param_distribution):  # a parameter outside the table's space
        return self.base.sample_independent(study, trial, param_name, param_distribution)


def method_sampler(method: Method, seed: int) -> optuna.samplers.BaseSampler:
    if method.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if method.sampler == "budget":
        return BudgetSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def user_pruner(spec: str, rungs: tuple[int, ...], eta: int) -> optuna.pruners.BasePruner:
    """``module:Class`` built with the ladder's arguments it accepts (``min_budget``,
    ``max_budget``, ``reduction_factor``, or Optuna's ``min_resource``, ``max_resource``),
    else with none (Optuna's ``MedianPruner()``, ...)."""
    module_name, _, class_name = spec.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    offered = {
        "min_budget": rungs[0],
        "max_budget": rungs[-1],
        "reduction_factor": eta,
        "min_resource": rungs[0],
        "max_resource": rungs[-1],
    }
    try:
        accepted: Mapping[str, object] = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        accepted = {}
    return cls(**{k: v for k, v in offered.items() if k in accepted})


def method_pruner(method: Method, rungs: tuple[int, ...], eta: int) -> optuna.pruners.BasePruner:
    if method.pruner == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=rungs[0], reduction_factor=eta, min_early_stopping_rate=0)
    if method.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=rungs[0], max_resource=rungs[-1], reduction_factor=eta)
    if method.pruner in ("budget", "budget_hyperband"):
        return BudgetPruner(rungs[0], rungs[-1], eta, brackets="hyperband" if method.pruner == "budget_hyperband" else 1)
    if method.pruner == "none" or _first_rungs(method):
        return optuna.pruners.NopPruner()
    return user_pruner(method.pruner, rungs, eta)


def _first_rungs(method: Method) -> int:
    """``i`` of a ``rung<i>`` method (every trial trained to rung ``i``, then the best
    continued to the full budget), else 0."""
    match = re.fullmatch(r"rung(\d+)", method.pruner)
    return int(match.group(1)) if match else 0


def _better(a: float, b: float, maximize: bool) -> bool:
    return a > b if maximize else a < b


def ladder_eta(rungs: tuple[int, ...], table: Table) -> int:
    """The reduction factor of ``rungs``: the table's own for its ladder, the ratio of
    consecutive rungs for a sub-ladder (see :func:`~budgetopt.bench.runner.sub_ladder`)."""
    if tuple(rungs) == table.rungs or len(rungs) < 2:
        return int(table.meta["ladder"]["reduction_factor"])
    return rungs[1] // rungs[0]


def _continue_the_best(table: Table, study, result: SearchResult, rungs, first: int, kind_of, spent: int, cap: int, best) -> int:
    """``rung<i>``'s second phase: the trials that reached rung ``i``, best value first,
    continued to the full budget (the full schedule's remaining iterations each) while
    the cap allows; the pick is the best full-budget value. Returns the compute spent."""
    last = table.rungs.index(rungs[-1])
    cost = int(rungs[-1] - rungs[first - 1])  # one full-length schedule: the rest of it
    reached = [t for t in study.trials if t.state == TrialState.COMPLETE]
    reached.sort(key=lambda t: t.value, reverse=table.maximize)
    for trial in reached:
        if spent + cost > cap:
            break
        config, seed = result.landed[trial.number]
        value = table.value[config, seed, kind_of[config], last]
        spent += cost
        if math.isfinite(value):
            result.full_budget_trials += 1
            if best is None or best[0] < rungs[-1] or _better(value, best[1], table.maximize):
                best = (rungs[-1], float(value))
                result.pick = result.frontier[rungs[-1]] = (config, seed)
        result.events.append((spent, result.pick))
    return spent


def run_search(
    table: Table, method: Method, repeat: int, cap: int, lookup: PoolLookup, rungs: tuple[int, ...] | None = None
) -> SearchResult:
    """One search of ``method`` with sampler seed ``repeat`` and compute cap ``cap``
    (iterations) against ``table`` (see the module docstring), on the table's ladder or
    on ``rungs``, a sub-ladder of it (a larger reduction factor or a higher minimum
    rung: every value and compute of a sub-ladder is one the table holds exactly)."""
    # Over 60 lines on purpose: one search's loop (ask, land, plan, walk the rungs charging, reporting,
    # pruning and cooling down, tell) reads top to bottom as the module docstring's steps 1-4; split, the
    # state it updates (spent, best, best_at, result) would travel through every piece.
    rungs = tuple(rungs or table.rungs)
    eta = ladder_eta(rungs, table)
    kind_of = parse_kind_choice(method.kind).indices(table)  # the kind each configuration's units are read from
    mode = parse_kind(table.kinds[kind_of[0]]).mode
    cooldowns, schedules = {}, {}
    for k in set(kind_of.tolist()):
        kind = parse_kind(table.kinds[k])
        cooldowns[k] = kind.cooldown_in(table.meta["cooldown"])
        schedules[k] = mode_with(mode, cooldown=cooldowns[k], horizon_exponent=kind.horizon_exponent).schedule(kind.profile)
    n_seeds = len(table.seeds)
    landing = Landing(lookup, n_seeds, lambda number: int(np.random.default_rng([repeat, number]).integers(n_seeds)))
    study = optuna.create_study(
        study_name=f"{method.name}-{repeat}",  # HyperbandPruner's brackets hash the study name: fixed, reproducible
        direction=table.meta["direction"],
        sampler=_Snapping(method_sampler(method, repeat), lookup, landing),
        pruner=method_pruner(method, rungs, eta),
    )
    pruner = study.pruner
    maximize = table.maximize
    spent = 0
    result = SearchResult(method.name, repeat, cap, 0, 0, 0, None)
    best: tuple[int, float] | None = None  # (budget, value) of the pick so far
    best_at: dict[int, float] = {}  # budget -> best value reported at it
    smallest = rungs[-1] if method.pruner == "none" else rungs[0]  # the cheapest work a new trial can start
    first = _first_rungs(method)  # rung<i>: the first half of the cap trains every trial to rung i
    explore = cap // 2 if first else cap
    if first:
        smallest = mode_compute(mode, rungs, first - 1)
    cooled_k = None if method.frontier_kind is None else table.kind_index(method.frontier_kind)
    cooled_fraction = 0.0 if method.frontier_kind is None else parse_kind(method.frontier_kind).cooldown or 0.0
    idle = 0
    while explore - spent >= smallest and idle < 100:
        if landing.exhausted:
            result.exhausted_at = spent
            break
        trial = study.ask(lookup.space)
        config, seed = landing.placed.pop(trial.number)  # the trial's parameters are this configuration's (see _Snapping)
        result.landed.append((config, seed))
        k_index = kind_of[config]
        cooldown, schedule = cooldowns[k_index], schedules[k_index]
        if method.pruner == "none":
            plan: tuple[int, ...] = (rungs[-1],)
        elif first:
            plan = rungs[:first]
        elif hasattr(pruner, "plan"):
            plan = tuple(pruner.plan(study, trial))
        else:
            plan = rungs
        for key, value in trial_attrs_for_plan(mode, plan, schedule).items():
            trial.set_user_attr(key, value)
        state, last_value, rung_values, trial_compute = TrialState.PRUNED, None, {}, 0
        for k, budget in enumerate(plan):
            r = table.rungs.index(budget)
            cost = mode_compute(mode, plan, k, cooldown) - (mode_compute(mode, plan, k - 1, cooldown) if k else 0)
            value = table.value[config, seed, k_index, r]
            diverged = not math.isfinite(value)
            if diverged:
                # Charge only what the unit executed before it stopped.
                executed = table.compute[config, seed, k_index, r]
                full = mode_compute(mode, table.rungs, r, cooldown)  # the unit ran the table's whole ladder
                if math.isfinite(executed):
                    cost = max(1, cost - int(full - executed))
            if spent + cost > explore:  # a rung that does not fit is not started; the trial ends here
                break
            spent += cost
            trial_compute += cost
            if diverged:
                break
            trial.report(float(value), budget)
            rung_values[budget] = float(value)
            for key, attr in trial_attrs_for_rung(rung_values, trial_compute).items():  # the trial's, as live
                trial.set_user_attr(key, attr)
            last_value = float(value)
            if best is None or budget > best[0] or (budget == best[0] and _better(value, best[1], maximize)):
                best = (budget, float(value))
                result.pick = (config, seed)
            if (cooled_k is None or budget == rungs[-1]) and (budget not in best_at or _better(value, best_at[budget], maximize)):
                best_at[budget] = float(value)
                result.frontier[budget] = (config, seed)
            result.events.append((spent, result.pick))
            if budget == plan[-1]:
                state = TrialState.COMPLETE
                break
            if trial.should_prune():
                break
            if cooled_k is not None:  # a survivor of this rung: its cooldown gives the rung's annealed value
                cost = cooldown_iterations(budget, cooled_fraction)
                if spent + cost > cap:
                    break
                spent += cost
                trial_compute += cost
                cooled = table.value[config, seed, cooled_k, r]
                if math.isfinite(cooled) and (budget not in best_at or _better(cooled, best_at[budget], maximize)):
                    best_at[budget] = float(cooled)
                    result.frontier[budget] = (config, seed)
        if rung_values:
            result.trials += 1
            idle = 0
        else:
            idle += 1  # a Hyperband trial whose first rung no longer fits
        if state == TrialState.COMPLETE:
            result.full_budget_trials += plan[-1] == rungs[-1]
            study.tell(trial, last_value)
        else:
            study.tell(trial, state=TrialState.PRUNED)
    if first:
        spent = _continue_the_best(table, study, result, rungs, first, kind_of, spent, cap, best)
    result.compute = spent
    result.suggestions, result.moved, result.distance_ratios = landing.suggestions, landing.moved, landing.distance_ratios
    return result
