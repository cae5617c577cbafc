"""The statistics of benchmark tables and simulated searches: plain numpy and scipy.

- :func:`interval95`: mean and 95% Student-t interval over repeats (paired differences
  are intervals of the per-repeat differences).
- :func:`rank_fidelity`: how well each unit kind's rung values rank the pool's
  configurations by their truth, as Spearman's rho, *across seeds*: the rung values of
  seed ``s`` against the truth of the other seeds (with one seed in the table, its
  own), averaged over ``s``, so that a rung run and the full-budget run sharing one
  initialisation cannot inflate the figure. Percentile bootstrap over configurations
  (the same seed-averaged statistic in every resample), and paired differences between
  kinds on the same resamples.
- :func:`trains_mask` / :func:`edge_of_stability`: which configurations train at all
  (truth above chance by 10% of the way to the best truth), and those whose truth seeds
  disagree about it.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from scipy import stats

from budgetopt.bench.records import Fidelity

TRAIN_FRACTION = 0.1  # of the way from chance to the best truth: "trains at all"
BOOTSTRAP_RESAMPLES = 1000


def interval95(values) -> tuple[float | None, float | None, float | None]:
    """(mean, low, high): the mean and its 95% Student-t interval (None where undefined)."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if x.size == 0:
        return None, None, None
    mean = float(x.mean())
    if x.size < 2:
        return mean, None, None
    half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return mean, mean - half, mean + half


def percentile95(values) -> tuple[float | None, float | None]:
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if x.size < 2:
        return None, None
    return float(np.percentile(x, 2.5)), float(np.percentile(x, 97.5))


def signed(values: np.ndarray, maximize: bool) -> np.ndarray:
    """Scores with larger = better, whatever the direction."""
    return values if maximize else -values


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row of ``x`` with the same row of ``y`` (average ranks for ties)."""
    rx = stats.rankdata(x, axis=-1)
    ry = stats.rankdata(y, axis=-1)
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((rx**2).sum(axis=-1) * (ry**2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (rx * ry).sum(axis=-1) / denominator, np.nan)


def trains_mask(truth: np.ndarray, chance: float | None, maximize: bool) -> np.ndarray:
    """Configurations that train at all: truth beyond chance by :data:`TRAIN_FRACTION` of
    the way to the best truth (every configuration when the script gives no chance)."""
    if chance is None:
        return np.isfinite(truth)
    t = signed(truth, maximize)
    c = chance if maximize else -chance
    best = np.nanmax(t)
    return np.isfinite(t) & (t > c + TRAIN_FRACTION * (best - c))


def edge_of_stability(table, configs: np.ndarray) -> list[int]:
    """Configurations whose truth seeds disagree about training at all (one trains, one does not)."""
    per_seed = table.full_budget_scores("restart")[configs]
    flat = per_seed.reshape(-1)
    mask = trains_mask(flat, table.meta.get("chance"), table.maximize).reshape(per_seed.shape)
    return [int(c) for c, m in zip(configs, mask) if m.any() and not m.all()]


def rank_fidelity(table, configs: np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> Fidelity:
    """Cross-seed Spearman of every kind's rung values against truth (see the module
    docstring), over ``configs`` ("all") and over those that train ("train"), with 95%
    bootstrap intervals, and paired differences of every kind against ``continue_*`` kinds
    and of ``branch`` against ``restart``."""
    # Over 60 lines on purpose: one bootstrap over configurations and seeds that every kind, rung and
    # difference shares (the same resamples), so the intervals are paired.
    truth_seeds = table.full_budget_scores("restart")[configs]  # [n, S]
    n, n_seeds = truth_seeds.shape
    truth = truth_seeds.mean(axis=1)
    floor = table.floor()
    maximize = table.maximize
    # truth of "the other seeds" for each rung seed s
    if n_seeds > 1:
        other = (truth_seeds.sum(axis=1, keepdims=True) - truth_seeds) / (n_seeds - 1)
    else:
        other = truth_seeds
    values = table.value[configs]  # [n, S, K, R]
    values = np.where(np.isfinite(values), values, floor)
    values = signed(values, maximize)
    other = signed(other, maximize)
    subsets = {"all": np.arange(n), "train": np.flatnonzero(trains_mask(truth, table.meta.get("chance"), maximize))}
    rng = np.random.default_rng(seed)
    out: dict = {"rungs": list(table.rungs), "kinds": list(table.kinds), "configs": int(n), "seeds": int(n_seeds), "subsets": {}}
    for name, subset in subsets.items():
        m = len(subset)
        if m < 3:
            out["subsets"][name] = {"configs": m}
            continue
        # point estimate: mean over rung seeds of rho(values of seed s, truth of the others)
        v = values[subset]  # [m, S, K, R]
        o = other[subset]  # [m, S]
        x = np.moveaxis(v, 0, -1)  # [S, K, R, m]
        y = np.moveaxis(o, 0, -1)[:, None, None, :]  # [S, 1, 1, m]
        rho = _spearman_rows(x, np.broadcast_to(y, x.shape)).mean(axis=0)  # [K, R]
        # bootstrap: configurations with replacement; in each resample the same statistic
        # as the point estimate (the mean over rung seeds of rho against the other seeds)
        idx = rng.integers(m, size=(resamples, m))
        xb = np.moveaxis(v[idx], 1, -1)  # [B, S, K, R, m]
        yb = np.moveaxis(o[idx], 1, -1)[:, :, None, None, :]  # [B, S, 1, 1, m]
        rho_b = _spearman_rows(xb, np.broadcast_to(yb, xb.shape)).mean(axis=1)  # [B, K, R]
        kinds = list(table.kinds)
        entry: dict[str, Any] = {"configs": m, "rho": {}, "differences": {}}
        for ki, kind in enumerate(kinds):
            entry["rho"][kind] = [
                {"rho": float(rho[ki, r]), "low": percentile95(rho_b[:, ki, r])[0], "high": percentile95(rho_b[:, ki, r])[1]}
                for r in range(len(table.rungs))
            ]
        pairs = [(a, b) for a in kinds for b in kinds if b.startswith("continue") and not a.startswith("continue")]
        if "branch" in kinds and "restart" in kinds:
            pairs.append(("branch", "restart"))
        for a, b in pairs:
            ia, ib = kinds.index(a), kinds.index(b)
            diff_b = rho_b[:, ia] - rho_b[:, ib]
            entry["differences"][f"{a} - {b}"] = [
                {
                    "difference": float(rho[ia, r] - rho[ib, r]),
                    "low": percentile95(diff_b[:, r])[0],
                    "high": percentile95(diff_b[:, r])[1],
                }
                for r in range(len(table.rungs))
            ]
        out["subsets"][name] = entry
    out["edge_of_stability"] = edge_of_stability(table, configs)
    return cast(Fidelity, out)  # its keys: records.Fidelity (tests/test_bench.py checks every record against it)


def average_ranks(regrets: dict[str, list[float]]) -> dict[str, float]:
    """Mean rank of each method over paired repeats (1 = lowest regret; ties share ranks)."""
    names = list(regrets)
    matrix = np.array([regrets[m] for m in names], dtype=float)  # [M, R]
    ranks = stats.rankdata(matrix, axis=0)
    return {m: float(r) for m, r in zip(names, ranks.mean(axis=1))}
