"""From simulated searches to ``results.json``: every number a report shows.

Per compute cap and method, over the paired repeats:

- *selection regret*: the pool's best truth minus the truth of the pick (truth: the
  full-budget linear test score, mean over the table's seeds; the same final schedule
  for every method, so this measures selection alone);
- *deployable score*: the test score of the pick trained in the method's own final
  schedule (its deploy kind's full-budget unit, mean over seeds): what a user gets;
- mean and 95% interval of each, paired differences against the baseline (the same
  repeat seeds), average rank, compute actually spent (never above the cap), trials;
- *regret per budget* (the frontier): for every budget of the ladder, the best
  configuration the search saw reported at that budget, scored against the best the
  pool can do *for that budget* (restart's validation score there: see
  :meth:`Scorer.regret_at`);
- anytime curves of regret and deployable score against compute (in full budgets),
  and the compute at which the mean regret curve first reaches the baseline's final
  mean regret;
- a bootstrap over the pool (resampled pools, the same methods and paired repeats on
  each): the interval of the mean paired difference against the baseline that comes
  from which configurations were drawn.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from budgetopt.bench.records import Searches
from budgetopt.bench.runner import bootstrap_cap
from budgetopt.bench.simulate import GRID_POINTS, SearchResult, resolve_method
from budgetopt.bench.stats import average_ranks, interval95, percentile95, signed
from budgetopt.bench.table import parse_kind


def _pick_at(result: SearchResult, grid: np.ndarray) -> list[tuple[int, int] | None]:
    picks: list[tuple[int, int] | None] = []
    i, current = 0, None
    for g in grid:
        while i < len(result.events) and result.events[i][0] <= g:
            current = result.events[i][1]
            i += 1
        picks.append(current)
    return picks


class Scorer:
    """Regret and deployable score of a pick ``(config, seed)`` for one table.

    Every score of a pick is taken on the seeds *other* than the one its search saw
    (all seeds when the table has only one): a trial's validation value and the test
    value of a unit with the same seed share that seed's initialisation and batch
    order, so scoring on the seed a search selected with would reward the methods that
    observe that very unit (restart, random and TPE at the full budget) for the noise
    they selected on. The pool's best is taken on the same seeds, so that regret is
    never negative by construction.
    """

    def __init__(self, table) -> None:
        self.table = table
        self.maximize = table.maximize
        self.n_seeds = len(table.seeds)
        self._scores: dict[tuple[str, int], np.ndarray] = {}  # (kind or rung key, seed left out) -> per config

    def _others(self, seed: int) -> list[int]:
        return [i for i in range(self.n_seeds) if i != seed] or [seed]

    def _truth(self, key, seed: int, scores) -> np.ndarray:
        if (key, seed) not in self._scores:
            self._scores[(key, seed)] = signed(scores()[:, self._others(seed)].mean(axis=1), self.maximize)
        return self._scores[(key, seed)]

    def regret(self, pick: tuple[int, int] | None, configs: np.ndarray, truth: str = "restart") -> float:
        """Selection regret: the pool's best truth minus the pick's (truth: the full-budget
        test score of kind ``truth``, by default restart's linear decay, mean over the seeds
        its search did not see)."""
        if pick is None:
            return float("nan")
        config, seed = pick
        t = self._truth(("truth", truth), seed, lambda: self.table.full_budget_scores(truth))
        return float(np.max(t[configs]) - t[config])

    def regret_at(self, budget_index: int, pick: tuple[int, int] | None, configs: np.ndarray) -> float:
        """Regret of ``pick`` as the best configuration for the ladder's budget
        ``budget_index``: truth there is restart's validation score at that budget (a
        fresh linear-decay run of that length)."""
        if pick is None:
            return float("nan")
        config, seed = pick

        def scores():
            values = self.table.value[:, :, self.table.kind_index("restart"), budget_index]
            return np.where(np.isfinite(values), values, self.table.floor())

        t = self._truth(("rung", budget_index), seed, scores)
        return float(np.max(t[configs]) - t[config])

    def deployable(self, pick: tuple[int, int] | None, kind: str) -> float:
        """The test score of the pick trained in ``kind``'s final schedule, mean over the
        seeds its search did not see (in the study's own direction, not signed)."""
        if pick is None:
            return float("nan")
        config, seed = pick
        return float(self.table.full_budget_scores(kind)[config, self._others(seed)].mean())


def _r(x: float | None, digits: int = 5) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), digits)


def _interval(values) -> dict:
    mean, low, high = interval95(values)
    return {"mean": _r(mean), "low": _r(low), "high": _r(high)}


def paired_interval(values, baseline_values) -> dict:
    """Mean and 95% interval of the paired differences ``values - baseline_values`` (None pairs skipped)."""
    return _interval([a - b for a, b in zip(values, baseline_values) if a is not None and b is not None])


def _same_as_branch(kind, cooldown) -> bool:
    return kind.cooldown == cooldown and kind.profile == "linear"


def truth_kinds(table) -> list[str]:
    """The table's kinds whose full-budget unit is a complete final schedule, each a
    *truth*: ``restart`` (linear decay) first, then ``continue_<profile>`` (that profile
    over the full budget: ``continue_cosine`` is the cosine truth) and ``branch`` kinds
    (trunk and cooldown; ``branch_cooldown<f>`` at the table's own cooldown is ``branch``).
    ``restart_beta<b>`` is restart at the full budget: not another truth."""
    cooldown = table.meta.get("cooldown")
    kinds = [
        k
        for k in table.kinds
        if (k == "restart" or k.startswith(("continue_", "branch")))
        and not (k.startswith("branch_cooldown") and "branch" in table.kinds and _same_as_branch(parse_kind(k), cooldown))
    ]
    return sorted(kinds, key=lambda k: (k != "restart", k))


def sign_test(differences) -> dict:
    """Repeats with a lower / higher value than the baseline (ties dropped) and the exact
    two-sided sign test's p-value (:func:`scipy.stats.binomtest`)."""
    from scipy.stats import binomtest

    lower = int(sum(d < 0 for d in differences))
    higher = int(sum(d > 0 for d in differences))
    return {"lower": lower, "higher": higher, "p": _r(binomtest(lower, lower + higher).pvalue, 4) if lower + higher else None}


def landing_summary(runs: list[SearchResult], max_budget: int) -> dict:
    """Where the suggestions of ``runs`` landed (:class:`~budgetopt.bench.simulate.Landing`):
    the fraction moved to another configuration than their nearest (it was trained at
    that seed already), the median suggestion-to-landing distance in units of the pool's
    nearest-neighbour spacing, and the searches that exhausted the pool, with the
    compute (in full budgets) at which they did."""
    suggestions = sum(r.suggestions for r in runs)
    ratios = [x for r in runs for x in r.distance_ratios]
    exhausted = [r.exhausted_at for r in runs if r.exhausted_at is not None]
    return {
        "suggestions": int(suggestions),
        "moved_fraction": _r(sum(r.moved for r in runs) / suggestions, 4) if suggestions else None,
        "median_distance_ratio": _r(float(np.median(ratios)), 3) if ratios else None,
        "exhausted_in": len(exhausted),
        "exhausted_at_full_budgets": _r(float(np.median(exhausted)) / max_budget, 2) if exhausted else None,
    }


def _frontier_entry(per_repeat: list[float]) -> dict:
    """Regret at one budget: its interval over the repeats that reached it, how many did,
    and every repeat's value (None where it did not reach the budget) for paired intervals."""
    reached = [x for x in per_repeat if np.isfinite(x)]
    return {**_interval(reached), "reached": len(reached), "per_repeat": [_r(x) for x in per_repeat]}


def _by_truth(scorer, searches, cap, method, baseline, configs, truths) -> dict:
    """Selection regret of ``method`` under every truth, with paired differences against
    the baseline and the sign test: a conclusion stands only where the truths agree."""
    out = {}
    for truth in truths:
        regret = [scorer.regret(r.pick, configs, truth) for r in searches[(method, cap)]]
        entry: dict = {"regret": [_r(x) for x in regret], "regret_summary": _interval(regret)}
        if method != baseline and (baseline, cap) in searches:
            base = [scorer.regret(r.pick, configs, truth) for r in searches[(baseline, cap)]]
            entry["regret_minus_baseline"] = paired_interval(regret, base)
            entry["sign_test"] = sign_test([a - b for a, b in zip(regret, base) if np.isfinite(a - b)])
        out[truth] = entry
    return out


def summarize(table, searches: dict, bootstrap: dict, configs: np.ndarray, baseline: str, rungs=None) -> Searches:
    """The ``"searches"`` and ``"pool_bootstrap"`` parts of results.json (``rungs``: the
    ladder the searches ran, the table's by default)."""
    rungs = tuple(rungs or table.rungs)
    scorer = Scorer(table)
    max_budget = table.rungs[-1]
    caps = sorted({cap for _, cap in searches})
    methods = list(dict.fromkeys(m for m, _ in searches))
    out: dict = {"caps": {}, "methods": {m: resolve_method(m).words for m in methods}}
    for cap in caps:
        grid = np.linspace(0, cap, GRID_POINTS)
        per_method = {
            method: _method_record(scorer, searches[(method, cap)], method, configs, grid, table.rungs, rungs, max_budget)
            for method in methods
        }
        for method in methods:
            per_method[method]["by_truth"] = _by_truth(scorer, searches, cap, method, baseline, configs, truth_kinds(table))
        regrets = {method: [scorer.regret(r.pick, configs) for r in searches[(method, cap)]] for method in methods}
        ranks = average_ranks(regrets)
        for method, entry in per_method.items():
            entry["average_rank"] = _r(ranks[method], 3)
        if baseline in per_method:
            _paired_with_baseline(per_method, regrets, baseline, grid, cap, max_budget)
        out["caps"][str(cap)] = {"iterations": cap, "full_budgets": _r(cap / max_budget, 3), "methods": per_method}
    if bootstrap["pools"]:
        out["pool_bootstrap"] = _bootstrap_record(scorer, bootstrap, methods, baseline, caps)
    return cast(Searches, out)  # its keys: records.Searches (tests/test_bench.py checks every record against it)


def _method_record(scorer, runs, method: str, configs, grid, table_rungs, rungs, max_budget: int) -> dict[str, Any]:
    """One method's searches at one cap (records.MethodResult, less what needs the others)."""
    deploy_kind = resolve_method(method).deploy_kind
    regret = [scorer.regret(r.pick, configs) for r in runs]
    deployable = [scorer.deployable(r.pick, deploy_kind) for r in runs]
    curve_r, curve_d = [], []
    picks = [_pick_at(r, grid) for r in runs]
    for g in range(len(grid)):
        rg = [scorer.regret(p[g], configs) for p in picks if p[g] is not None]
        dg = [scorer.deployable(p[g], deploy_kind) for p in picks if p[g] is not None]
        curve_r.append({**_interval(rg), "n": len(rg)})
        curve_d.append({**_interval(dg), "n": len(dg)})
    return {
        "regret": [_r(x) for x in regret],
        "deployable": [_r(x) for x in deployable],
        "picks": [list(r.pick) if r.pick is not None else None for r in runs],
        "compute": [r.compute for r in runs],
        "trials": [r.trials for r in runs],
        "full_budget_trials": [r.full_budget_trials for r in runs],
        "regret_summary": _interval(regret),
        "deployable_summary": _interval(deployable),
        "compute_summary": {"mean": _r(np.mean([r.compute for r in runs]), 1), "max": int(max(r.compute for r in runs))},
        "trials_summary": {
            "mean": _r(np.mean([r.trials for r in runs]), 2),
            "full_budget": _r(np.mean([r.full_budget_trials for r in runs]), 2),
        },
        "landing": landing_summary(runs, max_budget),
        "frontier_regret": {
            str(b): _frontier_entry([scorer.regret_at(i, r.frontier.get(b), configs) for r in runs])
            for i, b in enumerate(table_rungs)
            if b in rungs
        },
        "curve": {"compute_full_budgets": [_r(g / max_budget, 4) for g in grid], "regret": curve_r, "deployable": curve_d},
    }


def _paired_with_baseline(per_method: dict, regrets: dict, baseline: str, grid, cap: int, max_budget: int) -> None:
    """Each method's paired differences from the baseline, and the compute at which its
    mean curve (and its 95% upper bound: the sure one) reaches the baseline's final mean."""
    base = per_method[baseline]
    target = base["regret_summary"]["mean"]
    for method, entry in per_method.items():
        if method == baseline:
            continue
        d_regret = [a - b for a, b in zip(regrets[method], regrets[baseline])]
        entry["regret_minus_baseline"] = paired_interval(regrets[method], regrets[baseline])
        # the raw difference, in the study's direction (negative is better when minimizing)
        entry["deployable_minus_baseline"] = paired_interval(entry["deployable"], base["deployable"])
        for b, f in entry["frontier_regret"].items():
            f["minus_baseline"] = paired_interval(f["per_repeat"], base["frontier_regret"][b]["per_repeat"])
        entry["regret_lower_than_baseline_in"] = int(sum(d < 0 for d in d_regret))
        entry["regret_higher_than_baseline_in"] = int(sum(d > 0 for d in d_regret))
    for entry in per_method.values():
        reach = {}
        for name, key in (("mean", "mean"), ("sure", "high")):
            reach[name] = next(
                (
                    g
                    for point, g in zip(entry["curve"]["regret"], grid)
                    if target is not None and point[key] is not None and point["n"] == len(entry["regret"])
                    and point[key] <= target
                ),
                None,
            )
        entry["compute_to_reach_baseline"] = {
            name: None
            if g is None
            else {"iterations": int(g), "full_budgets": _r(g / max_budget, 3), "fraction_of_cap": _r(g / cap, 3)}
            for name, g in reach.items()
        }


def _bootstrap_record(scorer, bootstrap: dict, methods: list[str], baseline: str, caps: list[int]) -> dict:
    """records.PoolBootstrap: each method's mean regret over resampled pools, and its mean
    difference from the baseline, with percentile intervals over the pools."""
    boot: dict = {"pools": len(bootstrap["pools"]), "repeats": None, "cap": bootstrap_cap(caps), "methods": {}}
    for method in methods:
        diffs, means = [], []
        for pool, runs_by_method in zip(bootstrap["pools"], bootstrap["searches"]):
            pool = np.asarray(pool)
            runs = runs_by_method[method]
            boot["repeats"] = len(runs)
            pool_regret = [scorer.regret(r.pick, pool) for r in runs]
            means.append(float(np.mean(pool_regret)))
            if baseline in runs_by_method and method != baseline:
                base_regret = [scorer.regret(r.pick, pool) for r in runs_by_method[baseline]]
                diffs.append(float(np.mean(np.subtract(pool_regret, base_regret))))
        low, high = percentile95(means)
        entry = {"mean_regret_low": _r(low), "mean_regret_high": _r(high)}
        if diffs:
            low, high = percentile95(diffs)
            entry.update(
                regret_minus_baseline_low=_r(low),
                regret_minus_baseline_high=_r(high),
                regret_minus_baseline_mean=_r(float(np.mean(diffs))),
            )
        boot["methods"][method] = entry
    return boot
