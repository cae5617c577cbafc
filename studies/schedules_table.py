"""The paper's Table 3 on a study script: learning-rate profiles at fractions of a full budget.

Li, Yumer & Ramanan ("Budgeted Training", ICLR 2020), Table 3: for budgets of 1, 5, 10,
25, 50 and 100% of a full budget, each *budget-aware* profile (linear, step, cosine,
exp, poly, htd, rex, wsd) is run to its own budget -- an independent run that reaches
the profile's end at that budget (``BudgetedRun`` in ``restart`` mode, which restarts
the weights and the batch order at each budget) -- next to the *budget-unaware* step
schedule: one run of the full budget with step decay (x0.1 at 50% and 75% of it),
evaluated when it is cut off at each budget (``continue`` mode). Every row uses the same
seeds, so the initial weights and batch order are paired across rows; at 100% the two
step rows are the same run. The score is validation accuracy (held out from the
training set), mean and sample standard deviation over the seeds. The hyperparameters
are fixed (default: lr 0.1, momentum 0.9, weight decay 5e-4, width 16, no label smoothing).

Expected (the paper's finding): linear well above truncated step at small budgets,
the gap closing at 100%.

    python studies/schedules_table.py --threads 1       # Fashion-MNIST, full budget 729, 3 seeds
    python studies/schedules_table.py --quick          # digits, seconds: a smoke test

Writes ``schedules_table.md`` (the command at its top) and ``schedules_table.json``
(every run) under ``--out`` (default ``studies/results``; ``--quick`` adds ``_quick``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

import budgetopt  # noqa: F401
from budgetopt.schedules import budget_from_fraction
from budgetopt.study_script import StudyScript, StudyScriptError, load_study_script, train_config

PROFILES = ("linear", "step", "cosine", "exp", "poly", "htd", "rex", "wsd")
TRUNCATED_STEP = "step, budget-unaware (truncated)"
FRACTIONS = (0.01, 0.05, 0.10, 0.25, 0.50, 1.0)
PARAMS = {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "width": 16, "label_smoothing": 0.0}
RESULTS = Path(__file__).resolve().parent / "results"


def schedules_table(
    script: StudyScript,
    params: dict,
    full_budget: int,
    fractions: tuple[float, ...] = FRACTIONS,
    seeds: tuple[int, ...] = (0, 1, 2),
    device: str = "cpu",
    data: object = None,
    log=print,
) -> dict:
    """Every run of the table and each cell's mean and spread, as a JSON-ready dict."""
    budgets = sorted({budget_from_fraction(f, full_budget) for f in fractions})
    if len(budgets) != len(fractions):
        raise ValueError(f"fractions {fractions} of {full_budget} iterations give repeated budgets {budgets}")
    data = script.load_data() if data is None else data
    rows = {p: dict(profile=p, mode="restart") for p in PROFILES}
    rows[TRUNCATED_STEP] = dict(profile="step", mode="continue")
    runs = []
    start = time.perf_counter()
    for seed in seeds:
        for row, setting in rows.items():
            result = train_config(script, params, budgets, seed=seed, device=device, data=data, test=False, **setting)
            runs.append(
                {
                    "row": row,
                    **setting,
                    "seed": seed,
                    "values": {str(b): result.rung_values.get(b) for b in budgets},
                    "compute": result.compute,
                    "seconds": round(result.seconds, 2),
                    "diverged": result.diverged,
                }
            )
            cells = " ".join(f"{v:.4f}" if v is not None else "nan" for v in runs[-1]["values"].values())
            log(f"[{time.perf_counter() - start:7.0f}s] seed {seed} {row:34s} {cells}  ({result.seconds:.0f}s)")
    cells = {}
    for row in rows:
        cells[row] = {}
        for b in budgets:
            values = [r["values"][str(b)] for r in runs if r["row"] == row]
            finite = [v for v in values if v is not None]
            cells[row][str(b)] = {
                "values": values,
                "mean": statistics.fmean(finite) if finite else None,
                "std": statistics.stdev(finite) if len(finite) > 1 else None,
                "diverged": len(values) - len(finite),
            }
    return {
        "study": script.name,
        "data": getattr(data, "source", None),
        "params": params,
        "full_budget": full_budget,
        "fractions": list(fractions),
        "budgets": budgets,
        "seeds": list(seeds),
        "score": "validation accuracy",
        "rows": list(rows),
        "cells": cells,
        "runs": runs,
        "seconds": round(time.perf_counter() - start, 1),
        "torch_threads": torch.get_num_threads(),
    }


def to_markdown(table: dict, command: str) -> str:
    budgets = table["budgets"]
    header = [f"{f:.0%} ({b})" for f, b in zip(table["fractions"], budgets)]
    lines = [
        "# Budget-aware schedules vs truncated step decay (Li et al., ICLR 2020, Table 3)",
        "",
        f"Command: `{command}`",
        "",
        f"Study `{table['study']}` ({table['data']}); fixed hyperparameters {table['params']}; "
        f"full budget {table['full_budget']} iterations; seeds {table['seeds']}; "
        f"{table['seconds'] / 60:.0f} minutes on {table['torch_threads']} CPU thread(s).",
        "",
        f"{table['score'].capitalize()}, mean ± standard deviation over {len(table['seeds'])} seeds, at each "
        "fraction of the full budget (iterations in parentheses). Each budget-aware row is an "
        "independent run per budget whose profile ends at that budget; the last row is one "
        "full-budget step-decay run cut off at each budget.",
        "",
        "| profile | " + " | ".join(header) + " |",
        "|---|" + "---:|" * len(budgets),
    ]
    for row in table["rows"]:
        cells = []
        for b in budgets:
            cell = table["cells"][row][str(b)]
            text = "diverged" if cell["mean"] is None else f"{cell['mean']:.4f}"
            if cell["std"] is not None:
                text += f" ± {cell['std']:.4f}"
            if cell["mean"] is not None and cell["diverged"]:
                text += f" ({cell['diverged']} diverged)"
            cells.append(text)
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    linear, truncated = table["cells"]["linear"], table["cells"][TRUNCATED_STEP]
    gaps = [
        f"{f:.0%}: {linear[str(b)]['mean'] - truncated[str(b)]['mean']:+.4f}"
        for f, b in zip(table["fractions"], budgets)
        if linear[str(b)]["mean"] is not None and truncated[str(b)]["mean"] is not None
    ]
    lines += ["", "Linear minus truncated step (mean): " + ", ".join(gaps) + ".", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", default=None, help="study script name or path (default fashion_mnist; --quick: digits)")
    parser.add_argument("--full-budget", type=int, default=None, help="iterations of 100%% (default 729; --quick: 90)")
    parser.add_argument("--fractions", type=float, nargs="+", default=None, help="fractions of the full budget")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 3; --quick: 2)")
    parser.add_argument("--lr", type=float, default=PARAMS["lr"], help="peak learning rate (default 0.1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory of the .md and .json (default studies/results)")
    parser.add_argument("--quick", action="store_true", help="digits, 3 budgets, 2 seeds: seconds")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    study = args.study or ("digits" if args.quick else "fashion_mnist")
    full_budget = args.full_budget or (90 if args.quick else 729)
    fractions = tuple(args.fractions or ((0.1, 0.5, 1.0) if args.quick else FRACTIONS))
    seeds = tuple(range(args.seeds or (2 if args.quick else 3)))
    command = shlex.join(["python", "studies/schedules_table.py", *(sys.argv[1:] if argv is None else argv)])
    try:
        script = load_study_script(study)
        data = script.load_data(data_dir=args.data_dir, quick=args.quick)
        if any(not 0 < f <= 1 for f in fractions):
            raise ValueError(f"fractions must be in (0, 1], got {list(fractions)}")
        table = schedules_table(script, {**PARAMS, "lr": args.lr}, full_budget, fractions, seeds, args.device, data)
    except (StudyScriptError, FileNotFoundError, ValueError, TypeError) as error:
        print(f"schedules_table: error: {error}", file=sys.stderr)
        return 2
    table["command"] = command
    name = "schedules_table_quick" if args.quick else "schedules_table"
    args.out.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(table, command)
    # Written under temporary names and renamed: an interrupted run leaves no report.
    for suffix, text in ((".json", json.dumps(table, indent=1) + "\n"), (".md", markdown)):
        partial = args.out / f"{name}{suffix}.partial"
        partial.write_text(text)
        partial.replace(args.out / f"{name}{suffix}")
    print(markdown)
    print(f"wrote {args.out / name}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
