"""Rank fidelity of every unit kind, per value of one categorical hyperparameter.

    python studies/fidelity_by_group.py studies/tables/fashion_mlp-long --by optimizer [--rung 0]

The evidence issue asks whether horizon-scaled rungs (``restart_beta<b>``) correct the
short-horizon bias of restart for every optimizer family, or over-correct one of them.
This splits the pool by ``--by`` (e.g. ``optimizer``: SGD-momentum, AdamW) and prints,
for each group and each kind, the cross-seed Spearman at rung ``--rung`` (index into the
ladder; 0 = the lowest) over the configurations that train, with its 95% bootstrap
interval, and each kind's paired difference against ``continue_cosine``: the same
numbers as a simulation report's "Rank fidelity", on a subset of the pool
(:func:`budgetopt.bench.stats.rank_fidelity`).
"""

from __future__ import annotations

import argparse

import numpy as np

from budgetopt.bench.stats import rank_fidelity
from budgetopt.bench.table import read_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", help="a table directory made by 'budgetopt bench build'")
    parser.add_argument("--by", required=True, help="a categorical hyperparameter of the table's space")
    parser.add_argument("--rung", type=int, default=0, help="rung index (default: 0, the lowest)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default: %(default)s)")
    args = parser.parse_args()
    table = read_table(args.table)
    configs = table.complete_configs
    if args.by not in table.meta["space"]:
        parser.error(f"--by {args.by!r}: allowed are {', '.join(table.meta['space'])}")
    if not 0 <= args.rung < len(table.rungs):
        parser.error(f"--rung {args.rung}: allowed are 0 to {len(table.rungs) - 1}")
    groups: dict = {}
    for c in configs:
        groups.setdefault(table.pool[c][args.by], []).append(c)
    budget = table.rungs[args.rung]
    print(f"{args.table}: rank fidelity at rung {budget} (configurations that train), by {args.by}")
    print("| group | configurations that train | kind | Spearman (95%) | minus continue_cosine (95%) |")
    print("|---|---:|---|---:|---:|")
    for value, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        fid = rank_fidelity(table, np.array(members), resamples=args.resamples)
        train = fid["subsets"]["train"]
        if "rho" not in train:
            print(f"| {value} | {train['configs']} | (too few) | | |")
            continue
        for kind, per_rung in train["rho"].items():
            r = per_rung[args.rung]
            d = train["differences"].get(f"{kind} - continue_cosine")
            diff = f"{d[args.rung]['difference']:+.3f} ({d[args.rung]['low']:+.3f} to {d[args.rung]['high']:+.3f})" if d else ""
            print(f"| {value} | {train['configs']} | {kind} | {r['rho']:.3f} ({r['low']:.3f} to {r['high']:.3f}) | {diff} |")


if __name__ == "__main__":
    main()
