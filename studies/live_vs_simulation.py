"""The simulator against reality: live searches (``budgetopt bench live``) against the
simulator's searches of the same methods and cap on a table of the same study and ladder.

    python studies/live_vs_simulation.py studies/results/live_fashion_mlp-short \\
        studies/tables/fashion_mlp-short studies/results/sim_fashion_mlp-short_vs_live

Regret in both is taken against one fixed reference per truth: the table's best
configuration, its full-budget test score of that final schedule averaged over the
table's seeds (restart: the linear truth; continue_cosine: the cosine truth). A live
pick is scored by its own retraining on the truth seeds (the table's seeds, which no
live trial trained on), so its regret may be negative (a configuration outside the pool
can beat the pool's best). A simulated pick ``(configuration, seed)`` is scored on the
table's seeds other than the one its search saw, against the same reference, or, with
``--retrain-seeds``, trained again on fresh seeds: the table's seeds also chose the
reference, so a pick near the top scored on them carries the winner's curse (its score
there is biased up, its regret down). Printed:
per method and truth, the mean regret with its 95% interval live and simulated, their
gap (Welch); the paired difference between each pair of methods, live and simulated.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats

from budgetopt.bench.live import read_searches
from budgetopt.bench.records import read_results
from budgetopt.bench.table import read_table

TRUTHS = {"linear": "restart", "cosine": "continue_cosine"}


def interval(values) -> tuple[float, float, float]:
    values = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, mean - half, mean + half


def welch(a, b) -> tuple[float, float, float]:
    """Mean of ``a`` minus mean of ``b`` with a 95% Welch interval."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    diff, half = float(a.mean() - b.mean()), float(stats.t.ppf(0.975, df) * np.sqrt(va + vb))
    return diff, diff - half, diff + half


def fmt(x: tuple[float, float, float], sign: bool = False) -> str:
    f = "{:+.4f}" if sign else "{:.4f}"
    return f"{f.format(x[0])} ({f.format(x[1])} to {f.format(x[2])})"


def live_regrets(searches: list[dict], reference: dict[str, float], maximize: bool) -> dict:
    """method -> truth -> {repeat: regret}."""
    out: dict = {}
    for s in searches:
        for truth, values in s["truth"].items():
            if truth in reference and values and all(v is not None for v in values):
                score = float(np.mean(values))
                regret = reference[truth] - score if maximize else score - reference[truth]
                out.setdefault(s["method"], {}).setdefault(truth, {})[s["repeat"]] = regret
    return out


def simulated_regrets(results: dict, table, reference: dict[str, float], cap: str, retrained: dict | None = None) -> dict:
    """method -> truth -> {repeat: regret}: each pick scored on the table's seeds its search
    did not see, or (``retrained``: ``{truth: {config: [scores]}}``) on fresh seeds."""
    out: dict = {}
    seeds = range(len(table.seeds))
    for method, entry in results["searches"]["caps"][cap]["methods"].items():
        if retrained is not None and any(str(p[0]) not in retrained["linear"] for p in entry["picks"] if p):
            continue  # a method whose picks were not retrained (not among the live ones)
        for truth, kind in TRUTHS.items():
            scores = table.full_budget_scores(kind)
            per = {}
            for repeat, pick in enumerate(entry["picks"]):
                if pick is None:
                    continue
                config, seed = pick
                if retrained is not None:
                    score = float(np.mean(retrained[truth][str(config)]))
                else:
                    others = [s for s in seeds if s != seed] or [seed]
                    score = float(scores[config, others].mean())
                per[repeat] = reference[truth] - score if table.maximize else score - reference[truth]
            out.setdefault(method, {})[truth] = per
    return out


def retrain_picks(results: dict, table, cap: str, seeds: list[int], path: Path, methods: list[str]) -> dict:
    """Every configuration the simulated searches picked, trained again at the full budget
    on ``seeds`` under each truth (cached in ``path``): scores free of the winner's curse
    of the table's own seeds, which also chose the reference."""
    import torch

    from budgetopt.study_script import load_study_script, train_config

    cached = json.loads(path.read_text()) if path.is_file() else {}
    if cached.get("seeds") != seeds:
        cached = {"seeds": seeds, "scores": {}}
    entries = results["searches"]["caps"][cap]["methods"]
    picks = sorted({p[0] for m in methods for p in entries[m]["picks"] if p})
    todo = [(t, c) for t in TRUTHS for c in picks if str(c) not in cached["scores"].get(t, {})]
    if todo:
        torch.set_num_threads(1)
        script = load_study_script(table.meta["script"])
        data = script.load_data()
        ladder = list(table.rungs)
        for truth, config in todo:
            mode, profile = ("restart", "linear") if truth == "linear" else ("continue", "cosine")
            cached["scores"].setdefault(truth, {})[str(config)] = [
                train_config(script, table.pool[config], [ladder[-1]], mode, s, data=data, profile=profile).test_value
                for s in seeds
            ]
            path.write_text(json.dumps(cached))
    return cached["scores"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("live", type=Path, help="a directory of 'budgetopt bench live'")
    parser.add_argument("table", type=Path, help="the table of the same study and ladder")
    parser.add_argument("simulation", type=Path, help="a 'budgetopt bench simulate' output directory of the same methods")
    parser.add_argument(
        "--retrain-seeds", metavar="S,S",
        help="score each simulated pick by training it again on these seeds (cached in SIMULATION/retrained_picks.json) "
        "instead of on the table's other seed",
    )
    args = parser.parse_args()
    searches = read_searches(args.live)
    if not searches:
        print(f"live_vs_simulation: error: no live searches in {args.live}", file=sys.stderr)
        raise SystemExit(2)
    table = read_table(args.table)
    results = read_results(args.simulation)
    live_meta = json.loads((args.live / "meta.json").read_text())
    rungs = table.rungs
    cap_fb = live_meta["spec"]["cap_full_budgets"]
    cap = str(int(cap_fb * rungs[-1]))
    if cap not in results["searches"]["caps"]:
        message = f"the simulation has no cap of {cap} iterations ({cap_fb:g} full budgets)"
        print(f"live_vs_simulation: error: {message}", file=sys.stderr)
        raise SystemExit(2)
    configs = table.complete_configs
    reference = {}
    for truth, kind in TRUTHS.items():
        truth_scores = table.full_budget_scores(kind).mean(axis=1)[configs]
        reference[truth] = float(truth_scores.max() if table.maximize else truth_scores.min())
    live = live_regrets(searches, reference, table.maximize)
    retrained = None
    if args.retrain_seeds:
        seeds = [int(x) for x in args.retrain_seeds.split(",")]
        both = [m for m in live if m in results["searches"]["caps"][cap]["methods"]]
        retrained = retrain_picks(results, table, cap, seeds, args.simulation / "retrained_picks.json", both)
    sim = simulated_regrets(results, table, reference, cap, retrained)
    methods = [m for m in live if m in sim]
    print(f"# Live searches against the simulator: {live_meta['spec']['script']}, {cap_fb:g} full budgets\n")
    print(f"Live: `{' ; '.join(live_meta['commands'])}`  ")
    print(f"Simulated: `{results['command']}`  ")
    scored = f"retrained on seeds {args.retrain_seeds}" if retrained else "on the table's seed its search did not see"
    print(f"Simulated picks scored {scored}; live picks on their truth seeds {live_meta['spec']['truth_seeds']}.  ")
    print(f"Reference (table's best truth, mean over seeds {list(table.seeds)}): "
          + ", ".join(f"{t} {v:.4f}" for t, v in reference.items()) + "\n")
    print("| method | truth | live regret (n) | simulated regret (n) | live minus simulated (Welch 95%) |")
    print("|---|---|---:|---:|---:|")
    for method in methods:
        for truth in TRUTHS:
            a, b = list(live[method].get(truth, {}).values()), list(sim[method][truth].values())
            if len(a) < 2:
                continue
            print(
                f"| `{method}` | {truth} | {fmt(interval(a))} ({len(a)}) | {fmt(interval(b))} ({len(b)}) | "
                f"{fmt(welch(a, b), True)} |"
            )
    print("\nPaired differences between methods (the same repeat: the same sampler seed):\n")
    print("| difference | truth | live (n) | simulated (n) | live minus simulated (Welch 95%) |")
    print("|---|---|---:|---:|---:|")
    for m1, m2 in itertools.combinations(methods, 2):
        for truth in TRUTHS:
            one, two = live[m1].get(truth, {}), live[m2].get(truth, {})
            pairs_live = [one[k] - two[k] for k in one if k in two]
            pairs_sim = [sim[m1][truth][k] - sim[m2][truth][k] for k in sim[m1][truth] if k in sim[m2][truth]]
            if len(pairs_live) < 2:
                continue
            print(
                f"| `{m1}` - `{m2}` | {truth} | {fmt(interval(pairs_live), True)} ({len(pairs_live)}) | "
                f"{fmt(interval(pairs_sim), True)} ({len(pairs_sim)}) | {fmt(welch(pairs_live, pairs_sim), True)} |"
            )
    compute = {m: np.mean([s["compute"] for s in searches if s["method"] == m]) for m in methods}
    trials = {m: np.mean([sum(1 for t in s["trials"] if t["values"]) for s in searches if s["method"] == m]) for m in methods}
    sim = results["searches"]["caps"][cap]["methods"]
    top = str(rungs[-1])

    def per_search(method: str, count) -> float:
        return float(np.mean([sum(1 for t in s["trials"] if count(t)) for s in searches if s["method"] == method]))

    full = {m: per_search(m, lambda t: top in t["values"]) for m in methods}
    ended = {m: per_search(m, lambda t: (t["ended"] or "").startswith("diverged")) for m in methods}
    print("\n| method | live compute mean | trials: live / simulated | full-budget trials: live / simulated | "
          "diverged trials, live |")
    print("|---|---:|---:|---:|---:|")
    for m in methods:
        print(
            f"| `{m}` | {compute[m]:.0f} | {trials[m]:.1f} / {np.mean(sim[m]['trials']):.1f} | "
            f"{full[m]:.1f} / {np.mean(sim[m]['full_budget_trials']):.1f} | {ended[m]:.1f} |"
        )


if __name__ == "__main__":
    main()
