"""The study's figures (plotly): the learning rate of each mode over the ladder, rung
values against the budget, compute per rung, and a comparison of methods."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
import torch
from optuna.trial import TrialState

from budgetopt.dashboard.summary import StudySummary, TrialRecord
from budgetopt.dashboard.text import format_budgets, format_share
from budgetopt.errors import InputError
from budgetopt.frontier import Frontier, FrontierFit
from budgetopt.modes import COOLDOWN, MODES, describe_schedule, get_mode, mode_of_schedule, mode_with
from budgetopt.run import BudgetedRun

GRAPH_LR_PROFILES = "budgetopt-lr-profiles"
GRAPH_RUNG_VALUES = "budgetopt-rung-values"
GRAPH_COMPUTE = "budgetopt-compute-per-rung"
GRAPH_COMPARISON = "budgetopt-comparison"
GRAPH_FRONTIER = "budgetopt-frontier"

_SCHEDULE_POINTS = 400  # points per mode in the learning-rate figure
_SCHEDULE_MAX_BUDGET = 5000  # larger ladders are drawn scaled down to this

Curve = tuple[list[float], list[float], list[tuple[float, float, int]]]


# -- learning rate of each mode -----------------------------------------------------------


def mode_schedules(
    budgets: Sequence[int],
    profile: str = "linear",
    *,
    warmup: int = 0,
    cooldown: float = COOLDOWN,
    points: int = _SCHEDULE_POINTS,
    schedules: Mapping[str, Mapping[str, Any]] | None = None,
    **profile_params: object,
) -> dict[str, Curve]:
    """The learning-rate multiplier of each mode over ``budgets``, against compute.

    Each mode is drawn with its own schedule: ``schedules[mode]`` (a
    :meth:`~budgetopt.modes.Mode.schedule` dict, e.g. what the study's trials of that
    mode recorded) or else ``profile``, ``warmup`` and ``profile_params`` (and branch's
    ``cooldown``). Each is run for real -- a :class:`~budgetopt.BudgetedRun` on a
    one-weight model with peak rate 1 -- so the curves are exactly what a trial executes,
    with no second copy of the schedule math. Returns ``{mode: (x, y, reports)}``: ``x``
    the iteration (compute so far, re-done iterations included), ``y`` the multiplier of
    the peak rate, at most about ``points`` points per mode (each segment keeps its first
    and last step, then its end value); ``reports`` the ``(x, y, budget)`` of each rung
    report. A ladder whose largest budget exceeds 5000 iterations is run scaled down by
    an integer factor and its ``x`` scaled back up (exact to that factor).
    """
    schedules = schedules or {}
    curves = {}
    for mode in MODES:
        schedule = schedules.get(mode)
        if schedule is None:
            schedule = mode_with(mode, cooldown=cooldown).schedule(profile, profile_params, warmup)
        curves[mode] = mode_schedule(budgets, schedule, points)
    return curves


def mode_schedule(budgets: Sequence[int], schedule: Mapping[str, Any], points: int = _SCHEDULE_POINTS) -> Curve:
    """One mode's curve (see :func:`mode_schedules`) for ``schedule``, a
    :meth:`~budgetopt.modes.Mode.schedule` dict that names its mode."""
    mode = mode_of_schedule(schedule)
    warmup = int(schedule.get("warmup") or 0)
    scale = max(1, budgets[-1] // _SCHEDULE_MAX_BUDGET)
    scaled = [b // scale for b in budgets]
    if scale > 1 and (scaled[0] < 1 or any(a >= b for a, b in zip(scaled, scaled[1:])) or warmup // scale >= scaled[0]):
        scale, scaled = 1, list(budgets)
    model = torch.nn.Linear(1, 1, bias=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    run = BudgetedRun(
        scaled, model, optimizer, mode=mode.name, profile=schedule["profile"], warmup=warmup // scale,
        **mode.options(), **(schedule.get("params") or {}),
    )
    total = mode.compute(scaled)
    x: list[float] = []
    y: list[float] = []
    reports: list[tuple[float, float, int]] = []
    for segment in run.segments():
        start = run.compute
        for _ in segment:
            optimizer.step()  # no gradients: only keeps torch's scheduler-order check quiet
        trace = run.lr_trace[start:]
        n = len(trace)
        k = max(2, round(points * n / total))
        keep = sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})
        x += [(start + i) * scale for i in keep]
        y += [trace[i] for i in keep]
        end = optimizer.param_groups[0]["lr"]
        x.append(run.compute * scale)
        y.append(end)
        reports.append((run.compute * scale, end, budgets[segment.index]))
        segment.report(0.0)
    return x, y, reports


# -- figures ------------------------------------------------------------------------------

_LAYOUT = dict(
    template="none",
    height=500,
    # The legend below the x axis's title, growing downwards into a margin kept for it
    # (anchored at its bottom it grew up over the axis title and tick labels).
    margin=dict(l=60, r=20, t=60, b=130),
    legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
    font=dict(size=12),
    modebar=dict(orientation="v"),  # keeps the dashboard's toolbar off the title
)
_MODE_COLORS = {"restart": "#1f77b4", "branch": "#2ca02c", "continue": "#d62728"}
_STATE_STYLE = {
    "complete": dict(color="#1f77b4", width=1.8, opacity=0.9),
    "pruned": dict(color="#7f7f7f", width=1.2, opacity=0.35),
    "other": dict(color="#ff7f0e", width=1.2, opacity=0.6),
}


def _figure(title: str, xaxis: dict, yaxis: dict) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(
        title=dict(text=title, x=0.01, font=dict(size=15)),
        xaxis=dict(gridcolor="#e5e5e5", **xaxis),
        yaxis=dict(gridcolor="#e5e5e5", **yaxis),
        **_LAYOUT,
    )
    return fig


def lr_profile_figure(summary: StudySummary) -> go.Figure:
    """The learning-rate multiplier over the study's ladder of the schedule(s) its trials
    ran: for each mode the study used, the schedule most of its trials of that mode ran.
    A study with no budgetopt trial yet shows the three modes' defaults (linear; branch's
    cooldown :data:`~budgetopt.modes.COOLDOWN`), and its title says so."""
    rungs = summary.rungs
    used = [m for m in MODES if m in set(summary.modes)]
    drawn = used or list(MODES)
    schedules, curves = {}, {}
    for mode in drawn:
        schedules[mode] = summary.schedule_of(mode) or get_mode(mode).schedule()
        try:
            curves[mode] = mode_schedule(rungs, schedules[mode])
        except (TypeError, ValueError, KeyError):  # e.g. a warmup longer than the ladder's first rung
            schedules[mode] = get_mode(mode).schedule()
            curves[mode] = mode_schedule(rungs, schedules[mode])
    top = max((max(y) for _, y, _ in curves.values() if y), default=1.0)
    title = (
        "Learning rate of this study's trials" if used else "Learning rate of each mode (defaults: no budgetopt trial yet)"
    )
    fig = _figure(
        title,
        dict(title=f"iterations executed (compute) over the ladder {format_budgets(rungs)}"),
        dict(title="multiplier of the peak learning rate", range=[-0.03, max(1.05, 1.05 * top)]),
    )
    for mode, (x, y, reports) in curves.items():
        mine = mode in used
        name = f"{mode}: {describe_schedule(schedules[mode])}"
        fig.add_trace(
            go.Scatter(
                x=x, y=y, mode="lines", name=name, legendgroup=mode,
                line=dict(color=_MODE_COLORS[mode], width=3 if mine else 1.5, dash="solid" if mine else "dot"),
                hovertemplate=f"{mode}<br>iteration %{{x}}<br>multiplier %{{y:.3f}}<extra></extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[r[0] for r in reports], y=[r[1] for r in reports], mode="markers", legendgroup=mode,
                showlegend=False, marker=dict(color=_MODE_COLORS[mode], size=8 if mine else 5, symbol="circle-open"),
                text=[f"report at budget {r[2]}" for r in reports],
                hovertemplate=f"{mode}: %{{text}}<br>compute so far %{{x}}<extra></extra>",
            )
        )
    return fig


def _lines(records: Sequence[TrialRecord]) -> tuple[list, list, list]:
    """One x/y list for many trials, each trial a line, separated by None."""
    x: list = []
    y: list = []
    text: list = []
    for t in records:
        for budget, value in t.rung_values.items():
            x.append(budget)
            y.append(value if math.isfinite(value) else None)
            text.append(f"trial {t.number}")
        x.append(None)
        y.append(None)
        text.append(None)
    return x, y, text


def rung_values_figure(summary: StudySummary) -> go.Figure:
    """Every trial's budget-converged rung values against the budget; pruned trials dimmed."""
    rungs = summary.rungs
    fig = _figure(
        f"Rung values against the budget ({len(summary.trials)} trials; pruned dimmed)",
        dict(title="budget (iterations)", type="log", tickvals=list(rungs), ticktext=[str(b) for b in rungs]),
        dict(title=f"value at the rung ({summary.direction})"),
    )
    groups = {
        "complete": [t for t in summary.trials if t.state == TrialState.COMPLETE],
        "pruned": [t for t in summary.trials if t.state == TrialState.PRUNED],
        "other": [t for t in summary.trials if t.state not in (TrialState.COMPLETE, TrialState.PRUNED)],
    }
    names = {"complete": "completed", "pruned": "pruned", "other": "running or failed"}
    for state in ("pruned", "other", "complete"):
        records = [t for t in groups[state] if t.rung_values]
        if not records:
            continue
        x, y, text = _lines(records)
        style = _STATE_STYLE[state]
        fig.add_trace(
            go.Scatter(
                x=x, y=y, text=text, mode="lines+markers", name=f"{names[state]} ({len(records)})", opacity=style["opacity"],
                line=dict(color=style["color"], width=style["width"]), marker=dict(size=5),
                hovertemplate="%{text}<br>budget %{x}<br>value %{y:.4g}<extra></extra>",
            )
        )
    best = summary.best(1)
    if best:
        x, y, text = _lines(best)
        fig.add_trace(
            go.Scatter(
                x=x, y=y, text=text, mode="lines+markers", name=f"best: trial {best[0].number}",
                line=dict(color="#000000", width=3), marker=dict(size=7),
                hovertemplate="%{text} (best)<br>budget %{x}<br>value %{y:.4g}<extra></extra>",
            )
        )
    return fig


def compute_figure(summary: StudySummary) -> go.Figure:
    """Compute spent by the trials that stopped at each rung (the bars add up to the total)."""
    rungs = summary.rungs
    spent = {b: 0 for b in rungs}
    stopped = {b: 0 for b in rungs}
    for t in summary.trials:
        last = t.last_rung
        if last in spent:
            spent[last] += t.compute
            stopped[last] += 1
    reached = [len(summary.reached(b)) for b in rungs]
    full = summary.full_budget_compute
    fig = _figure(
        f"Compute per rung: {summary.compute:,} iterations ({format_share(summary.compute, full)} of a full-budget search)",
        dict(title="rung where the trial stopped (iterations)", type="category"),
        dict(title="iterations executed (compute)"),
    )
    fig.add_trace(
        go.Bar(
            x=[str(b) for b in rungs], y=[spent[b] for b in rungs], name="compute of the trials that stopped there",
            marker_color="#1f77b4", text=[f"{stopped[b]} stopped / {n} reached" for b, n in zip(rungs, reached)],
            textposition="outside", cliponaxis=False,
            hovertemplate="rung %{x}<br>%{y:,} iterations<br>%{text}<extra></extra>",
        )
    )
    return fig


def comparison_figure(results: Mapping[str, Iterable] | Iterable[Mapping], value_name: str = "accuracy") -> go.Figure:
    """Value (e.g. test accuracy) against compute, one line per method.

    ``results`` is either ``{method: [(compute, value), ...]}`` or rows
    ``[{"method": ..., "compute": ..., "value": ...}, ...]`` (a row may also carry a
    ``"label"`` shown on hover). Raises ValueError when a point lacks a number.
    """
    points: dict[str, list[tuple[float, float, str]]] = {}
    if isinstance(results, Mapping):
        rows = [{"method": m, "compute": p[0], "value": p[1]} for m, pts in results.items() for p in pts]
    else:
        rows = [dict(row) for row in results]
    for row in rows:
        try:
            method, compute, value = str(row["method"]), float(row["compute"]), float(row["value"])
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise InputError(f"a comparison point needs a method, a numeric compute and value; got {row!r}") from error
        points.setdefault(method, []).append((compute, value, str(row.get("label", ""))))
    if not points:
        raise InputError("comparison results are empty: give at least one (method, compute, value) point")
    fig = _figure(
        f"{value_name.capitalize()} against compute, per method",
        dict(title="compute (iterations executed)", type="log"),
        dict(title=value_name),
    )
    for method, pts in points.items():
        pts.sort()
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in pts], y=[p[1] for p in pts], text=[p[2] for p in pts], mode="lines+markers", name=method,
                hovertemplate=f"{method}<br>compute %{{x:,}}<br>{value_name} %{{y:.4g}}<br>%{{text}}<extra></extra>",
            )
        )
    return fig


def frontier_figure(front: Frontier | None, fit: FrontierFit | None = None) -> go.Figure:
    """The frontier: the best value measured at each budget (hover: the trial and its
    configuration), and the fit of longer training with its intervals at 2x and 4x the
    largest budget when the fit is trusted (the title says why when it is not)."""
    fig = _figure(
        "Frontier: the best value measured at each budget",
        dict(title="budget (iterations)", type="log"),
        dict(title="best value at that budget"),
    )
    if front is None:
        fig.update_layout(title=dict(text="Frontier: no budget-converged value yet"))
        return fig
    rows = [r for r in front if r.value is not None]
    fig.add_trace(
        go.Scatter(
            x=[r.budget for r in rows],
            y=[r.value for r in rows],
            mode="lines+markers",
            name="frontier",
            text=[
                f"trial {r.trial}, {r.measured} measured<br>" + ", ".join(f"{k}={v}" for k, v in r.params.items()) for r in rows
            ],
            hovertemplate="%{x} iterations: %{y:.4f}<br>%{text}<extra></extra>",
        )
    )
    if fit is not None and fit.trusted and fit.parameters is not None:
        top = fit.budgets[-1]
        xs = [top * 2 ** (k / 8) for k in range(0, 17)]
        fig.add_trace(go.Scatter(x=xs, y=[fit._at(int(x)) for x in xs], mode="lines", name="fit", line=dict(dash="dash")))
        targets = sorted(fit.predictions)
        fig.add_trace(
            go.Scatter(
                x=targets,
                y=[fit.predictions[t][0] for t in targets],
                mode="markers",
                name="predicted (95%)",
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=[fit.predictions[t][2] - fit.predictions[t][0] for t in targets],
                    arrayminus=[fit.predictions[t][0] - fit.predictions[t][1] for t in targets],
                ),
            )
        )
    elif fit is not None:
        fig.update_layout(title=dict(text=f"Frontier (no prediction: {fit.reason})"))
    return fig


def study_figures(summary: StudySummary) -> dict[str, go.Figure]:
    """The study's figures by graph id (the ids under which :func:`publish` stores them)."""
    return {
        GRAPH_FRONTIER: frontier_figure(summary.frontier, summary.fit),
        GRAPH_LR_PROFILES: lr_profile_figure(summary),
        GRAPH_RUNG_VALUES: rung_values_figure(summary),
        GRAPH_COMPUTE: compute_figure(summary),
    }
