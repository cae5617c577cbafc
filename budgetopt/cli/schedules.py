"""``budgetopt schedules``: the learning-rate profiles at a budget, printed and plotted."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from budgetopt.cli._common import add_command, say
from budgetopt.errors import InputError, ResourceError

_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)


def add_schedules(commands: argparse._SubParsersAction) -> None:
    from budgetopt.schedules import PROFILES

    parser = add_command(
        commands,
        "schedules",
        "show the learning-rate profiles at a budget",
        """
        budgetopt schedules                                  # every profile at 1000 iterations
        budgetopt schedules --budget 2700 --profiles linear,cosine,step --out profiles.html
        budgetopt schedules --budget 500 --warmup 50 --out profiles.png
        """,
        description=(
            "Print the multiplier of the peak learning rate at 0/25/50/75/100% of a budget for each "
            "profile, and with --out plot the profiles over the budget (.html: plotly, .png: matplotlib). "
            "Profiles: " + ", ".join(PROFILES) + "."
        ),
    )
    parser.add_argument("--budget", type=int, default=1000, help="iterations (default: %(default)s)")
    parser.add_argument("--profiles", default=",".join(PROFILES), help="comma-separated profile names (default: all)")
    parser.add_argument("--warmup", type=int, default=0, help="linear warmup iterations (default: %(default)s)")
    parser.add_argument("--out", help="write the plot to FILE.html or FILE.png")
    parser.set_defaults(handler=_run_schedules)


def _run_schedules(args: argparse.Namespace) -> int:
    from budgetopt._validation import check_iterations
    from budgetopt.schedules import budget_multiplier, check_warmup, get_profile

    budget = check_iterations(args.budget, "--budget")
    warmup = check_warmup(args.warmup, budget, "--warmup")
    names = [n.strip() for n in args.profiles.split(",") if n.strip()]
    if not names:
        raise InputError(f"--profiles needs at least one profile name, got {args.profiles!r}")
    try:
        profiles = {name: get_profile(name) for name in names}
    except ValueError as error:
        raise InputError(f"--profiles: {error}") from error
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in (".html", ".png"):
        raise InputError(f"--out must end in .html or .png, got {args.out!r}")
    if out is not None and not out.parent.is_dir():  # before anything is printed
        raise ResourceError(f"--out {args.out}: the directory {str(out.parent)!r} does not exist")
    if out is not None:  # a missing plotly or matplotlib, too, before anything is printed
        importlib.import_module("plotly.graph_objects" if out.suffix.lower() == ".html" else "matplotlib")

    print(f"multiplier of the peak learning rate at each fraction of a {budget}-iteration budget (warmup {warmup}):")
    width = max(7, *map(len, names))
    print("profile".ljust(width) + "".join(f"{f:>8.0%}" for f in _FRACTIONS))
    for name, profile in profiles.items():
        row = (budget_multiplier(f * budget, budget, profile, warmup) for f in _FRACTIONS)  # type: ignore[arg-type]
        print(name.ljust(width) + "".join(f"{m:8.3f}" for m in row))

    if out is not None:
        steps = sorted({round(i * budget / 1000) for i in range(1001)}) if budget > 1000 else list(range(budget + 1))
        curves = {name: [budget_multiplier(t, budget, p, warmup) for t in steps] for name, p in profiles.items()}
        title = f"Learning-rate profiles over a budget of {budget} iterations" + (f", warmup {warmup}" if warmup else "")
        try:
            _plot_profiles(out, steps, curves, title)
        except OSError as error:
            raise ResourceError(f"--out {args.out} cannot be written: {error.strerror or error}") from None
        say(args, f"wrote {out}")
    return 0


def _plot_profiles(out: Path, steps: list[int], curves: dict[str, list[float]], title: str) -> None:
    if out.suffix.lower() == ".html":
        import plotly.graph_objects as go

        fig = go.Figure([go.Scatter(x=steps, y=y, mode="lines", name=name) for name, y in curves.items()])
        fig.update_layout(
            title=title, xaxis_title="iteration", yaxis_title="multiplier of the peak learning rate", template="plotly_white"
        )
        fig.write_html(out, include_plotlyjs=True)
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for name, y in curves.items():
        ax.plot(steps, y, label=name)
    ax.set(title=title, xlabel="iteration", ylabel="multiplier of the peak learning rate")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
