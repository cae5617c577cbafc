"""Render the README's result tables from simulation reports (results.json, or its gzip).

    python studies/results_table.py studies/results/holdout_fashion_mlp-long_factor9_random [DIR ...] [--deployable]

One markdown row per (report, method): selection regret at every cap of the report, and
the paired difference against the report's baseline with its 95% interval (with
``--deployable``, the deployable score's difference too; where the report resampled its
pool, the difference's mean and 95% percentile interval over the resampled pools). Nothing is recomputed: the
numbers are those of each report's results.json, so a README table and its report agree.

    python studies/results_table.py DIR --against restart@random

adds, per cap, the paired difference against another method of the same report: the
per-repeat regrets in results.json differenced repeat by repeat (the repeats are paired:
the same seeds in every method), with the report's own 95% t-interval
(:func:`budgetopt.bench.stats.interval95`).

    python studies/results_table.py DIR --against restart@random --truth continue_cosine

gives every regret column under another final schedule the table holds (``by_truth`` of
results.json: ``continue_cosine``, ``branch``, ...), the per-repeat regrets differenced
likewise: a conclusion stands where the truths agree.

    python studies/results_table.py DIR --tail 0.3

prints, instead, how much of each paired difference against the baseline a few failed
searches carry: per method and cap, the repeats with regret above ``--tail`` (a pick that
does not train on the seeds its search did not see), the mean regret without them, the
repeats lower / higher than the baseline (the report's counts) and the exact two-sided sign test on those
counts (ties dropped; :func:`scipy.stats.binomtest`), which a handful of large regrets
cannot carry the way they carry a mean.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from budgetopt.bench.records import BootstrapMethod, Interval, MethodResult, SimulationResults, read_results
from budgetopt.bench.report import format_interval
from budgetopt.bench.stats import interval95
from budgetopt.errors import InputError


def load(directory: Path) -> SimulationResults:
    try:
        return read_results(directory)
    except InputError as error:
        bad_input(str(error))


def bad_input(message: str) -> NoReturn:
    """Bad input: one line naming the value and what is allowed, exit 2 (argparse's
    ``parser.error`` would print the usage lines too)."""
    print(f"results_table: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def interval(e: Mapping[str, Any] | None) -> str:
    return format_interval(e, sign=True) if e and e.get("mean") is not None else ""


def paired(a: list, b: list) -> Interval:
    """Mean and 95% t-interval of ``a - b``, repeat by repeat."""
    mean, low, high = interval95(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))
    return {"mean": mean, "low": low, "high": high}


def under(e: MethodResult, truth: str | None) -> MethodResult:
    """A method's record under ``truth`` (a full-schedule kind of the table, e.g.
    ``continue_cosine``; None: the report's own, restart's linear decay)."""
    if truth is None or truth == "restart":
        return e
    by_truth = e.get("by_truth") or {}
    if truth not in by_truth:
        bad_input(f"--truth {truth!r}: this report's truths are {', '.join(by_truth) or 'restart only'}")
    t = by_truth[truth]
    merged: MethodResult = {**e, "regret": t["regret"], "regret_summary": t["regret_summary"]}
    if "regret_minus_baseline" in t:
        merged["regret_minus_baseline"] = t["regret_minus_baseline"]
    return merged


def rows(results: SimulationResults, deployable: bool, against: str | None = None, truth: str | None = None) -> list[str]:
    s = results["settings"]
    ladder = "/".join(map(str, s.get("rungs") or results["table"]["rungs"]))
    span = s.get("pool")
    pool = f"{span[0]}-{span[1] - 1}" if span else f"all {results['table']['configs_complete']}"
    out = []
    caps = results["searches"]["caps"]
    for method in results["searches"]["methods"]:
        cells = [f"`{method}`", ladder, pool]
        for cap in caps.values():
            e = under(cap["methods"][method], truth)
            cells.append(f"{e['regret_summary']['mean']:.4f}")
            cells.append(interval(e.get("regret_minus_baseline")))
            if deployable:
                cells.append(interval(e.get("deployable_minus_baseline")))
            if against:
                other = under(cap["methods"][against], truth)
                cells.append("" if method == against else interval(paired(e["regret"], other["regret"])))
        boot = results["searches"].get("pool_bootstrap")
        if boot:
            b: BootstrapMethod = boot["methods"].get(method, {"mean_regret_low": 0.0, "mean_regret_high": 0.0})
            mean = b.get("regret_minus_baseline_mean")
            low, high = b.get("regret_minus_baseline_low"), b.get("regret_minus_baseline_high")
            cells.append("" if mean is None else f"{mean:+.4f} ({low:+.4f} to {high:+.4f})")
        out.append("| " + " | ".join(cells) + " |")
    return out


def tail_rows(results: SimulationResults, tail: float) -> list[str]:
    """Per method and cap: failed searches, the mean without them, and the sign test."""
    from scipy.stats import binomtest

    baseline = results["settings"]["baseline"]
    out = [
        f"| method | compute | repeats with regret > {tail:g} | mean regret without them | "
        f"lower / higher than {baseline} | sign test p |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for method in results["searches"]["methods"]:
        for cap in results["searches"]["caps"].values():
            e = cap["methods"][method]
            regret = np.asarray(e["regret"], dtype=float)
            kept = regret[regret <= tail]
            cells = [f"`{method}`", f"{cap['full_budgets']:g} FB", f"{int((regret > tail).sum())} of {regret.size}"]
            cells.append(f"{kept.mean():.4f}" if kept.size else "")
            if method == baseline:
                cells += ["", ""]
            else:  # the report's own paired counts (budgetopt.bench.results)
                lower, higher = e["regret_lower_than_baseline_in"], e["regret_higher_than_baseline_in"]
                cells.append(f"{lower} / {higher}")
                cells.append(f"{binomtest(lower, lower + higher).pvalue:.3f}" if lower + higher else "")
            out.append("| " + " | ".join(cells) + " |")
    return out


def header(results: SimulationResults, deployable: bool, against: str | None = None) -> list[str]:
    baseline = results["settings"]["baseline"]
    cols = ["method", "ladder", "pool"]
    for cap in results["searches"]["caps"].values():
        fb = f"{cap['full_budgets']:g} FB"
        cols += [f"regret, {fb}", f"minus {baseline}"]
        if deployable:
            cols.append(f"deployable minus {baseline}")
        if against:
            cols.append(f"minus {against}")
    boot = results["searches"].get("pool_bootstrap")
    if boot:
        cols.append(f"minus {baseline}, {boot['pools']} resampled pools, {boot['cap'] / results['table']['rungs'][-1]:g} FB")
    return ["| " + " | ".join(cols) + " |", "|" + "---|" * 3 + "---:|" * (len(cols) - 3)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="simulation output directories")
    parser.add_argument("--deployable", action="store_true", help="add the deployable score's paired difference")
    parser.add_argument("--against", metavar="M", help="add the paired regret difference against method M of each report")
    parser.add_argument(
        "--tail", type=float, metavar="T", help="print the failed searches (regret above T) and the sign test instead"
    )
    parser.add_argument(
        "--truth", metavar="KIND",
        help="regret under this final schedule of the table (continue_cosine, branch, ...; default restart's linear decay)",
    )
    args = parser.parse_args()
    if args.tail is not None and not args.tail > 0:
        bad_input(f"--tail must be a regret above 0, got {args.tail}")
    for i, directory in enumerate(args.reports):
        results = load(directory)
        if args.tail is not None:
            print(f"{directory}:")
            print("\n".join(tail_rows(results, args.tail)))
            continue
        if args.against and args.against not in results["searches"]["methods"]:
            bad_input(f"--against {args.against!r}: {directory} has {', '.join(results['searches']['methods'])}")
        if args.truth:  # checked before anything is printed
            first = next(iter(results["searches"]["caps"].values()))
            under(first["methods"][next(iter(results["searches"]["methods"]))], args.truth)
        # against the report's own baseline, the column would repeat the baseline's
        against = None if args.against == results["settings"]["baseline"] else args.against
        if i == 0:
            print("\n".join(header(results, args.deployable, against)))
        print("\n".join(rows(results, args.deployable, against, args.truth)))


if __name__ == "__main__":
    main()
