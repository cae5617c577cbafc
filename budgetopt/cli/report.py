"""``budgetopt report``: a study's summary on stdout, its note and figures as files."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from budgetopt.cli._common import add_command, say
from budgetopt.errors import InputError
from budgetopt.storage import load_study, open_storage


def add_report(commands: argparse._SubParsersAction) -> None:
    parser = add_command(
        commands,
        "report",
        "summarize a study and write its figures as HTML",
        """
        budgetopt report sqlite:///studies.db --study fashion_mnist
        budgetopt report studies.log --out reports/run1 --top 10
        budgetopt report sqlite:///studies.db --study cifar10 --publish   # also refresh optuna-dashboard
        """,
        description=(
            "Print the ladder, trials per rung and survivors, compute spent against a full-budget "
            "search, and the best trials with their plan and compute; write the study note (note.md) "
            "and the figures (one .html each) to --out."
        ),
    )
    parser.add_argument("storage", help="sqlite:///FILE.db, postgresql://..., or FILE.log")
    parser.add_argument("--study", help="the study (default: the storage's only study)")
    parser.add_argument("--out", help="directory for note.md and the figures (default: report-STUDY)")
    parser.add_argument("--top", type=int, default=5, help="best trials to list (default: %(default)s)")
    parser.add_argument(
        "--publish", action="store_true", help="also write the note and figures into the storage (optuna-dashboard)"
    )
    parser.add_argument("--trial-notes", action="store_true", help="with --publish, also write a note to each finished trial")
    parser.set_defaults(handler=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from budgetopt import dashboard

    if args.top < 1:
        raise InputError(f"--top must be an integer >= 1, got {args.top}")
    storage = open_storage(args.storage)
    study = load_study(storage, args.storage, args.study)
    summary = dashboard.summarize(study)
    print(dashboard.report_text(summary, top=args.top))

    out = Path(args.out) if args.out else Path("report-" + re.sub(r"[^\w.-]+", "_", study.study_name))
    out.mkdir(parents=True, exist_ok=True)
    (out / "note.md").write_text(dashboard.note_markdown(summary) + "\n")
    figures = dashboard.study_figures(summary)
    for graph_id, figure in figures.items():
        figure.write_html(out / f"{graph_id}.html", include_plotlyjs="directory")
    say(args, f"wrote {out / 'note.md'} and {len(figures)} figures ({', '.join(f'{g}.html' for g in figures)}) in {out}")
    if args.publish:
        written = dashboard.publish(study, trial_notes=args.trial_notes)
        say(args, f"published to the storage: {len(written['figures'])} figure(s) updated")
    return 0
