"""``budgetopt frontier``: for every budget, the best configuration, its value, and what
longer training is worth."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from budgetopt.cli._common import add_command
from budgetopt.errors import InputError, ResourceError
from budgetopt.storage import load_study, open_storage


def add_frontier(commands: argparse._SubParsersAction) -> None:
    parser = add_command(
        commands,
        "frontier",
        "for every budget: the best configuration, its value, and what longer training is worth",
        """
        budgetopt frontier sqlite:///studies.db --study fashion_mnist
        budgetopt frontier sqlite:///studies.db --study fashion_mnist --min-gain 0.002
        budgetopt frontier studies.log --json > frontier.json
        budgetopt frontier sqlite:///studies.db --study fashion_mnist --plot frontier.html
        """,
        description=(
            "Read every trial of a budget-aware study (pruned and running ones included: most rung values are theirs) and "
            "print, for each budget of its ladder, the best trial measured there, its value, the runner-up's margin, how "
            "many trials were measured and the compute spent there; then a saturating fit of the value against budget "
            "with a bootstrap interval, and one sentence on what training 2x longer is predicted to gain. continue-mode "
            "values are read mid-schedule and left out unless --include-continue."
        ),
    )
    parser.add_argument("storage", help="sqlite:///FILE.db, postgresql://..., or FILE.log")
    parser.add_argument("--study", help="the study (default: the storage's only study)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="the frontier and the fit as JSON on stdout")
    output.add_argument("--csv", action="store_true", help="the frontier as CSV on stdout (one row per budget)")
    parser.add_argument(
        "--min-gain", type=float, metavar="G", help="also name the budget from which one more doubling gains less than G"
    )
    parser.add_argument("--include-continue", action="store_true", help="also read continue-mode values (labelled)")
    parser.add_argument(
        "--plot", metavar="FILE.html", help="also write the frontier and its fit as an interactive plotly figure (offline HTML)"
    )
    parser.set_defaults(handler=_run_frontier)


def add_export(commands: argparse._SubParsersAction) -> None:
    parser = add_command(
        commands,
        "export",
        "write the annealed model kept for a budget to a file",
        """
        budgetopt export sqlite:///studies.db --study fashion_mnist --budget 243 --out model.pt
        budgetopt export postgresql://me@db/studies --study s1 --budget 243 --models s3://my-models --out model.pt
        """,
        description=(
            "Write the state_dict of the model kept for --budget (the frontier's best trial there, or --trial) by a study "
            "run with BudgetedRun(..., keep_models=k, model_store=...) to --out, for torch.load and model.load_state_dict."
        ),
    )
    parser.add_argument("storage", help="sqlite:///FILE.db, postgresql://..., or FILE.log")
    parser.add_argument("--study", help="the study (default: the storage's only study)")
    parser.add_argument("--budget", type=int, required=True, metavar="B", help="a budget of the study's ladder")
    parser.add_argument(
        "--models",
        metavar="DIR_OR_URL",
        help="the model store: a directory, s3://BUCKET or gs://BUCKET (default: the workers' --keep-models default, "
        "FILE.models beside a file storage, else ./budgetopt-models)",
    )
    parser.add_argument("--trial", type=int, metavar="N", help="this trial's model instead of the frontier's best")
    parser.add_argument("--out", required=True, metavar="FILE", help="where to write the state_dict (torch.save)")
    parser.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    import torch

    from budgetopt.frontier import kept_state_dict
    from budgetopt.storage import default_model_location, open_snapshot_store

    if not Path(args.out).resolve().parent.is_dir():
        raise InputError(f"--out {args.out}: its directory does not exist")
    storage = open_storage(args.storage)
    study = load_study(storage, args.storage, args.study)
    models = args.models or default_model_location(args.storage)
    if "://" not in models and not Path(models).is_dir():
        raise InputError(f"--models {models}: no such directory (where the study's workers kept models: --models)")
    number, value, state = kept_state_dict(study, args.budget, open_snapshot_store(models, "model"), trial=args.trial)
    torch.save(state, args.out)
    print(f"{args.out}: trial {number}'s model at budget {args.budget} (value {'-' if value is None else value})")
    return 0


def _run_frontier(args: argparse.Namespace) -> int:
    from budgetopt.frontier import fit_frontier, frontier, frontier_text

    if args.min_gain is not None and not args.min_gain > 0:
        raise InputError(f"--min-gain must be a number > 0, got {args.min_gain:g}")
    if args.plot is not None:
        if not args.plot.endswith(".html"):
            raise InputError(f"--plot must name an .html file, got {args.plot!r}")
        if not Path(args.plot).resolve().parent.is_dir():
            raise InputError(f"--plot {args.plot}: its directory does not exist")
        try:
            from budgetopt.dashboard.figures import frontier_figure
        except ImportError as error:
            raise ResourceError(f"--plot needs plotly: pip install 'budgetopt[dashboard]' ({error})") from None
    storage = open_storage(args.storage)
    study = load_study(storage, args.storage, args.study)
    front = frontier(study, include_continue=args.include_continue)
    fit = fit_frontier(front, min_gain=args.min_gain)
    if args.plot is not None:
        frontier_figure(front, fit).write_html(args.plot, include_plotlyjs=True)  # plotly.js inside: opens offline
        print(f"budgetopt: frontier figure written to {args.plot}", file=sys.stderr)
    if args.json:
        data = front.to_dict()
        data["fit"] = {
            "trusted": fit.trusted,
            "reason": fit.reason,
            "form": fit.form,
            "parameters": fit.parameters,
            "predictions": {str(b): list(p) for b, p in fit.predictions.items()},
            "min_gain": fit.min_gain,
            "enough_at": fit.enough_at,
            "advice": fit.advice(),
        }
        json.dump(data, sys.stdout, indent=1)
        print()
        return 0
    if args.csv:
        names = sorted({k for r in front for k in r.params})
        writer = csv.writer(sys.stdout)
        writer.writerow(["budget", "trial", "value", "measured", "runner_up", "margin", "compute", "gain", "mid_schedule"]
                        + [f"param_{n}" for n in names])
        for r in front:
            writer.writerow([r.budget, r.trial, r.value, r.measured, r.runner_up, r.margin, r.compute, r.gain, r.mid_schedule]
                            + [r.params.get(n, "") for n in names])
        return 0
    print(frontier_text(front, fit))
    return 0
