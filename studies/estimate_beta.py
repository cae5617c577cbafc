"""How far the best learning rate drifts with the budget, estimated from restart's rung values.

    python studies/estimate_beta.py studies/tables/fashion_mlp-long --by optimizer [--sample N]

Horizon-scaled rungs (``restart_beta<b>``, :class:`budgetopt.BudgetedRun`'s
``horizon_exponent``) train budget ``B`` at ``lr * (B_max / B) ** b``, assuming the best
peak rate falls as ``B ** -b``. The evidence issue asks whether ``b`` can be estimated
from a study's own trials instead of taken from the literature (0.3-0.5). This measures
the drift directly on a table's ``restart`` units: for each rung budget ``B`` it fits,
by least squares over the configurations that train (per ``--by`` group), the rung value
as a quadratic in ``log10(lr_param)`` plus a linear term in each other numeric
hyperparameter (normalised as Optuna does: log where the distribution is log); the
fitted optimum ``x*(B) = -c1 / (2 c2)`` (only where the parabola opens downwards and
the optimum lies within the learning rates the configurations span: no extrapolation); and
``b = -slope`` of ``x*`` against ``log10 B`` (least squares over the rungs that have an
optimum for the whole group, at least 3). Intervals: 95% percentile bootstrap over
configurations (both seeds' values kept together), each resample fitted over the same
rungs. "Configurations that train" are those whose full-budget truth is beyond chance
(:func:`budgetopt.bench.stats.trains_mask`, as in rank fidelity): a selection on the last
rung's outcome, which moves the estimate (``--all-configs`` shows by how much); diverged
rung values are left out, not counted at the floor.

``--sample N`` draws ``N`` configurations per group at random (the bootstrap then also
draws which) -- the size of what one study trains at a rung -- to show how well a
study of that size could know its own ``b``. Compare with the fidelity-best ``b`` of
``studies/fidelity_by_group.py``.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from optuna.distributions import CategoricalDistribution, json_to_distribution

from budgetopt.bench.stats import signed, trains_mask
from budgetopt.bench.table import read_table


def _features(table, configs: np.ndarray, lr_param: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x, covariates)``: log10 of the learning-rate parameter, and every other numeric
    hyperparameter scaled to [0, 1] (log where its distribution is log)."""
    space = {name: json_to_distribution(d) for name, d in table.meta["space"].items()}
    x = np.log10([table.pool[c][lr_param] for c in configs])
    covariates = []
    for name, dist in sorted(space.items()):
        if name == lr_param or isinstance(dist, CategoricalDistribution):
            continue
        low, high = float(dist.low), float(dist.high)
        values = np.array([float(table.pool[c][name]) for c in configs])
        if getattr(dist, "log", False):
            values, low, high = np.log(values), math.log(low), math.log(high)
        covariates.append((values - low) / (high - low))
    return x, np.array(covariates).T if covariates else np.zeros((len(configs), 0))


def optimum_drift(
    values: np.ndarray, x: np.ndarray, covariates: np.ndarray, rungs: tuple[int, ...], use: np.ndarray | None = None
) -> dict:
    """``values``: ``[config, seed, rung]`` restart values, larger is better (NaN:
    diverged, left out). The fitted optimum ``x*`` per rung (NaN where the parabola does
    not open downwards or its vertex lies outside the ``x`` spanned) and ``b``, the
    negated slope of ``x*`` against ``log10`` budget over the rungs ``use`` (a boolean
    mask; default: every rung with an optimum). ``b`` is NaN when a rung of ``use`` has no
    optimum, or fewer than 3 rungs have one: a resample is fitted over the same rungs as
    the whole group, never over whichever rungs it happens to define."""
    optima = []
    for r in range(len(rungs)):
        v = values[:, :, r]
        keep = np.isfinite(v)
        rows = np.repeat(np.arange(len(x)), v.shape[1]).reshape(v.shape)[keep]
        design = np.column_stack([np.ones(len(rows)), x[rows], x[rows] ** 2, covariates[rows]])
        coef, *_ = np.linalg.lstsq(design, v[keep], rcond=None)
        optimum = -coef[1] / (2 * coef[2]) if coef[2] < 0 else np.nan
        optima.append(optimum if x.min() <= optimum <= x.max() else np.nan)  # not extrapolated
    optima = np.array(optima)
    ok = np.isfinite(optima)
    use = ok if use is None else use
    if use.sum() < 3 or not ok[use].all():
        return {"optima": optima, "beta": np.nan, "use": use}
    slope = np.polyfit(np.log10(np.array(rungs)[use]), optima[use], 1)[0]
    return {"optima": optima, "beta": -slope, "use": use}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", help="a table directory made by 'budgetopt bench build'")
    parser.add_argument("--by", help="a categorical hyperparameter to split the pool by (e.g. optimizer)")
    parser.add_argument("--lr", default="lr_scale", help="the learning-rate parameter (default: %(default)s)")
    parser.add_argument("--sample", type=int, help="configurations per group a study would have (default: all)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default: %(default)s)")
    parser.add_argument(
        "--all-configs", action="store_true", help="every configuration, not only those that train (the estimate's sensitivity)"
    )
    args = parser.parse_args()
    table = read_table(args.table)
    for name in (args.by, args.lr):
        if name is not None and name not in table.meta["space"]:
            parser.error(f"{name!r} is not a parameter of the table's space: allowed are {', '.join(table.meta['space'])}")
    k = table.kind_index("restart")
    configs = np.flatnonzero(table.done[:, :, k].all(axis=1))  # only restart's units are read
    if not args.all_configs:  # those whose full-budget truth trains at all, as in rank fidelity
        configs = configs[trains_mask(table.truth()[configs], table.meta.get("chance"), table.maximize)]
    groups: dict = {}
    for c in configs:
        groups.setdefault(table.pool[c][args.by] if args.by else "all", []).append(c)
    rng = np.random.default_rng(0)
    size = f", {args.sample} configurations drawn per group" if args.sample else ""
    print(f"{args.table}: optimum of log10({args.lr}) per rung and b = its drift, restart units{size}")
    print(f"| group | configurations | optimum log10({args.lr}) per rung {'/'.join(map(str, table.rungs))} | b (95%) |")
    print("|---|---:|---|---:|")
    for group, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        members = np.array(members)
        x, cov = _features(table, members, args.lr)
        values = signed(table.value[members, :, k, :], table.maximize)  # larger is better
        n = min(args.sample or len(members), len(members))
        fit = optimum_drift(values, x, cov, table.rungs)
        whole = fit if n == len(members) else None
        betas = []
        for _ in range(args.resamples):
            pick = rng.choice(len(members), size=n, replace=True)
            betas.append(optimum_drift(values[pick], x[pick], cov[pick], table.rungs, use=fit["use"])["beta"])
        betas = np.array(betas)
        finite = betas[np.isfinite(betas)]
        low, high = np.percentile(finite, [2.5, 97.5]) if finite.size else (np.nan, np.nan)
        optima = " / ".join(f"{o:+.2f}" for o in whole["optima"]) if whole else "(per draw)"
        point = f"{whole['beta']:.2f}" if whole else f"median {np.median(finite):.2f}"
        undefined = f"; undefined in {len(betas) - finite.size} of {len(betas)}" if finite.size < len(betas) else ""
        print(f"| {group} | {len(members)} | {optima} | {point} ({low:.2f} to {high:.2f}{undefined}) |")


if __name__ == "__main__":
    main()
