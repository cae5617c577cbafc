"""What optuna-dashboard shows of a budgetopt study: a note and plotly figures.

:func:`publish` makes a study self-explaining in optuna-dashboard, with the
dashboard's own ``save_note`` and ``save_plotly_graph_object``::

    study.optimize(objective, n_trials=100)
    budgetopt.dashboard.publish(study)      # then: budgetopt dashboard sqlite:///studies.db

It writes, into the study's storage:

- a **study note**: the ladder, brackets, mode(s), profile(s), trials per rung, the
  compute spent next to what a full-budget search of the same trials would have
  cost, and the best trial with its plan and compute;
- **figures** on the study page: the learning rate of each mode over the ladder
  (:func:`mode_schedules`), the rung values of every trial against the budget (pruned
  trials dimmed), the compute per rung, and, when given comparison results,
  accuracy against compute per method (:func:`comparison_figure`; a comparison
  harness can also store that figure alone with :func:`publish_comparison`);
- optionally (``trial_notes=True``), a short **trial note** for every finished trial
  that has none yet: its plan, rung values, decisions, learning-rate and gradient-norm
  summary.

The trial table already shows the ``budgetopt.*`` user attrs that
:class:`~budgetopt.BudgetedRun` and :class:`~budgetopt.BudgetPruner` write.

Safe while workers run: ``publish`` reads the trials once and writes only the
dashboard's study system attrs (notes and figures). It never touches a trial's
values, state, params or user attrs, skips a note or figure whose content has not
changed, and writes a trial note once per trial. Call it on demand or at the end of a
study, not from every trial. The text a user writes in the study note below the
budgetopt summary is kept. Two ``publish`` calls on one study at the same moment may
interleave their chunks of one figure; the next ``publish`` repairs it.

Storage format (optuna-dashboard 0.21): notes and figures are study system attrs,
split into chunks of 2045 characters (``dashboard:note_str:*``,
``dashboard:plot_data:<id>:*``); a figure is stored as its plotly JSON, so figures
here use a bare template to stay small.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
import plotly.graph_objects as go
import torch
from optuna.trial import FrozenTrial, TrialState
from optuna_dashboard import get_note, save_note, save_plotly_graph_object
from optuna_dashboard._custom_plot_data import get_plotly_graph_objects
from optuna_dashboard._note import note_ver_key, split_body

from budgetopt.attrs import (
    ATTR_BRACKET,
    ATTR_COMPUTE,
    ATTR_DECISIONS,
    ATTR_ENDED,
    ATTR_GRAD_NORMS,
    ATTR_LR_TRACE,
    ATTR_MODE,
    ATTR_PLAN,
    ATTR_PROFILE,
    ATTR_RUNG_VALUES,
    STUDY_ATTR_LADDER,
    retried_numbers,
)
from budgetopt.modes import COOLDOWN, MODES, mode_with
from budgetopt.run import BudgetedRun
from budgetopt.schedules import PROFILES

GRAPH_LR_PROFILES = "budgetopt-lr-profiles"
GRAPH_RUNG_VALUES = "budgetopt-rung-values"
GRAPH_COMPUTE = "budgetopt-compute-per-rung"
GRAPH_COMPARISON = "budgetopt-comparison"

NOTE_TITLE = "## budgetopt"
# Everything after this line in the study note is the user's and survives a publish.
NOTE_USER_MARKER = "_Your notes below this line are kept when budgetopt refreshes the summary above._"

MODE_WORDS = {
    "restart": "each rung is trained again from the initial weights with the learning rate decaying to 0 "
    "at its budget (Li et al., 2020)",
    "branch": "one constant-rate trunk; at each rung a linear cooldown to 0 is branched off and the trunk "
    "restored (warmup-stable-decay)",
    "continue": "one full-length schedule over the largest budget, reported at the rungs while the rate is "
    "still high (the baseline)",
}

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
_SCHEDULE_POINTS = 400  # points per mode in the learning-rate figure
_SCHEDULE_MAX_BUDGET = 5000  # larger ladders are drawn scaled down to this


# -- reading a study ---------------------------------------------------------------------


@dataclass
class TrialRecord:
    """The budgetopt user attrs of one trial, parsed (rung budgets as ints)."""

    number: int
    trial_id: int
    state: TrialState
    value: float | None
    params: dict[str, Any]
    mode: str | None
    plan: tuple[int, ...]
    profile: str | None
    rung_values: dict[int, float]
    compute: int
    ended: str | None
    bracket: int | None
    decisions: dict[int, list]

    @classmethod
    def from_trial(cls, trial: FrozenTrial) -> TrialRecord:
        attrs = trial.user_attrs
        values = attrs.get(ATTR_RUNG_VALUES)
        rung_values = {int(b): float(v) for b, v in values.items()} if values else dict(trial.intermediate_values)
        return cls(
            number=trial.number,
            trial_id=trial._trial_id,
            state=trial.state,
            value=trial.value if trial.state == TrialState.COMPLETE and len(trial.values or ()) == 1 else None,
            params=dict(trial.params),
            mode=attrs.get(ATTR_MODE),
            plan=tuple(int(b) for b in attrs.get(ATTR_PLAN, ())),
            profile=attrs.get(ATTR_PROFILE),
            rung_values=dict(sorted(rung_values.items())),
            compute=int(attrs.get(ATTR_COMPUTE, 0)),
            ended=attrs.get(ATTR_ENDED),
            bracket=attrs.get(ATTR_BRACKET),
            decisions={int(b): d for b, d in attrs.get(ATTR_DECISIONS, {}).items()},
        )

    @property
    def last_rung(self) -> int | None:
        """The largest budget this trial reported (or, with no report, its first budget)."""
        if self.rung_values:
            return max(self.rung_values)
        return self.plan[0] if self.plan else None


@dataclass
class StudySummary:
    """Everything the note, the figures and ``budgetopt report`` say about a study."""

    name: str
    direction: str
    ladder: dict | None
    trials: list[TrialRecord]  # a retried attempt is left out: its retry carries its work
    states: Counter = field(default_factory=Counter)
    retried: int = 0  # attempts of a dead worker that were retried

    @property
    def rungs(self) -> tuple[int, ...]:
        if self.ladder:
            return tuple(self.ladder["rungs"])
        return tuple(sorted({b for t in self.trials for b in (*t.plan, *t.rung_values)}))

    @property
    def max_budget(self) -> int:
        return self.rungs[-1] if self.rungs else 0

    @property
    def modes(self) -> Counter:
        return Counter(t.mode for t in self.trials if t.mode)

    @property
    def profiles(self) -> Counter:
        return Counter(t.profile for t in self.trials if t.profile)

    @property
    def compute(self) -> int:
        """Iterations executed by all trials, re-done ones included."""
        return sum(t.compute for t in self.trials)

    @property
    def full_budget_compute(self) -> int:
        """What training the same trials for the full budget each would have cost."""
        return len(self.trials) * self.max_budget

    def reached(self, budget: int) -> list[TrialRecord]:
        return [t for t in self.trials if budget in t.rung_values]

    def went_on(self, budget: int) -> list[TrialRecord]:
        """Trials that reached ``budget`` and were promoted past it (reached a larger
        budget, or were promoted and are still training)."""
        return [
            t
            for t in self.reached(budget)
            if any(b > budget for b in t.rung_values) or (t.decisions.get(budget) or [None] * 3)[2] is True
        ]

    def best(self, n: int = 1) -> list[TrialRecord]:
        """The ``n`` best completed trials by value, best first."""
        done = [t for t in self.trials if t.value is not None and math.isfinite(t.value)]
        return sorted(done, key=lambda t: t.value, reverse=self.direction == "maximize")[:n]


def summarize(study: optuna.Study) -> StudySummary:
    """Read ``study`` once: its ladder and the budgetopt user attrs of its trials.

    Raises ValueError when the study has no budgetopt trial and no ladder.
    """
    trials = study.get_trials(deepcopy=False)
    ladder = study.user_attrs.get(STUDY_ATTR_LADDER)
    # A retry of a dead worker's trial carries the work of the attempts before it.
    retried = retried_numbers(trials)
    records = [TrialRecord.from_trial(t) for t in trials if ATTR_PLAN in t.user_attrs and t.number not in retried]
    if not records and ladder is None:
        raise ValueError(
            f"study {study.study_name!r} is not a budgetopt study: no trial has a {ATTR_PLAN!r} user attr "
            "(trials are written by budgetopt.BudgetedRun)"
        )
    direction = "maximize" if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else "minimize"
    states = Counter(t.state.name.lower() for t in trials if t.number not in retried)
    return StudySummary(study.study_name, direction, ladder, records, states, len(retried))


def is_budgetopt_study(study: optuna.Study) -> bool:
    """True when the study has a budgetopt ladder or a trial run by BudgetedRun."""
    if STUDY_ATTR_LADDER in study.user_attrs:
        return True
    return any(ATTR_PLAN in t.user_attrs for t in study.get_trials(deepcopy=False))


# -- words --------------------------------------------------------------------------------


def _budgets(budgets: Iterable[int]) -> str:
    return " → ".join(str(b) for b in budgets)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.6g}"


def _params(params: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "—"


def rung_table(summary: StudySummary) -> list[tuple[int, int, int, int]]:
    """``(budget, reached, went on, stopped there)`` for each rung of the ladder."""
    rows = []
    for budget in summary.rungs:
        reached = len(summary.reached(budget))
        went_on = len(summary.went_on(budget))
        rows.append((budget, reached, went_on, reached - went_on))
    return rows


def note_markdown(summary: StudySummary) -> str:
    """The study note: ladder, brackets, mode(s), profile(s), totals, best trial (Markdown)."""
    lines = [f"{NOTE_TITLE}: {summary.name}", ""]
    lines.append(
        "Budget-aware search: every trial is given budgets of iterations (its *plan*) and, at each "
        "budget, a learning rate that decays to zero exactly there, so every rung compares models "
        "converged for their budget."
    )
    lines.append("")
    rungs = summary.rungs
    if summary.ladder:
        eta = summary.ladder["reduction_factor"]
        lines.append(
            f"- **Ladder**: rungs {_budgets(rungs)} iterations; reduction factor {eta}: each rung keeps the top 1/{eta}."
        )
        brackets = summary.ladder.get("brackets", [])
        if len(brackets) <= 1:
            lines.append("- **Brackets**: 1 (successive halving): every trial starts at the first rung.")
        else:
            parts = "; ".join(f"bracket {b['index']}: {_budgets(b['rungs'])} ({b['n_trials']} per cycle)" for b in brackets)
            lines.append(f"- **Brackets**: {len(brackets)} (Hyperband): {parts}.")
    else:
        lines.append(f"- **Budgets**: {_budgets(rungs)} iterations (no BudgetPruner ladder recorded).")
    for mode, n in summary.modes.most_common():
        lines.append(f"- **Mode** `{mode}` ({n} trials): {MODE_WORDS.get(mode, 'unknown mode')}.")
    for profile, n in summary.profiles.most_common():
        lines.append(f"- **Profile**: {profile} ({n} trials).")
    states = ", ".join(f"{n} {s}" for s, n in sorted(summary.states.items()))
    retried = f"; {summary.retried} attempt(s) of dead workers retried, each counted in its retry" if summary.retried else ""
    lines.append(f"- **Trials**: {len(summary.trials)} trained ({states}){retried}.")
    lines += ["", "| rung (iterations) | trials reached | went on | stopped there |", "|---:|---:|---:|---:|"]
    for budget, reached, went_on, stopped in rung_table(summary):
        lines.append(f"| {budget} | {reached} | {went_on} | {stopped} |")
    full = summary.full_budget_compute
    lines += [
        "",
        f"**Compute**: {summary.compute:,} iterations spent (re-done ones included). A full-budget search "
        f"of the same {len(summary.trials)} trials would have cost {len(summary.trials)} × {summary.max_budget:,} = "
        f"{full:,} iterations: this search used {_share(summary.compute, full)} of that.",
        "",
    ]
    best = summary.best(1)
    if best:
        t = best[0]
        lines.append(
            f"**Best trial**: #{t.number}, value {_fmt(t.value)} at {t.last_rung} iterations; plan "
            f"{_budgets(t.plan)}; compute {t.compute:,} iterations; {_params(t.params)}."
        )
    else:
        lines.append("**Best trial**: none completed yet.")
    lines += [
        "",
        "Figures on the study's main page: learning rate of each mode over the ladder, rung values "
        "against the budget (pruned trials dimmed), compute per rung. Each trial's `budgetopt.*` user "
        "attrs (trial table) hold its plan, rung values, compute, mode and why it ended.",
        "",
        "---",
        NOTE_USER_MARKER,
    ]
    return "\n".join(lines)


def report_text(summary: StudySummary, top: int = 5) -> str:
    """The terminal summary of ``budgetopt report``: ladder, rungs, compute, best trials."""
    lines = [f"study {summary.name!r}: {summary.direction}, " + ", ".join(f"{n} {s}" for s, n in sorted(summary.states.items()))]
    if summary.ladder:
        brackets = summary.ladder.get("brackets", [])
        kind = "successive halving" if len(brackets) <= 1 else "Hyperband"
        lines.append(
            f"ladder: {_budgets(summary.rungs)} iterations, reduction factor {summary.ladder['reduction_factor']}; "
            f"{len(brackets)} bracket(s) ({kind})"
        )
        if len(brackets) > 1:
            lines += [f"  bracket {b['index']}: {_budgets(b['rungs'])}" for b in brackets]
    else:
        lines.append(f"budgets: {_budgets(summary.rungs)} iterations")
    lines.append("mode: " + ", ".join(f"{m} ({n} trials)" for m, n in summary.modes.most_common()))
    lines.append("profile: " + ", ".join(f"{p} ({n} trials)" for p, n in summary.profiles.most_common()))
    lines += ["", f"{'rung':>8} {'reached':>8} {'went on':>8} {'stopped':>8}"]
    lines += [f"{b:>8} {r:>8} {w:>8} {s:>8}" for b, r, w, s in rung_table(summary)]
    full = summary.full_budget_compute
    lines += [
        "",
        f"compute: {summary.compute:,} iterations; a full-budget search of the same {len(summary.trials)} trials: "
        f"{full:,} ({_share(summary.compute, full)} of it spent)",
        "",
    ]
    best = summary.best(top)
    if not best:
        lines.append("best trials: none completed yet")
    else:
        lines.append(f"best trials ({summary.direction}):")
        lines.append(f"{'trial':>6} {'value':>12} {'compute':>8}  plan / params")
        for t in best:
            lines.append(f"{t.number:>6} {_fmt(t.value):>12} {t.compute:>8,}  {_budgets(t.plan)}  {_params(t.params)}")
    return "\n".join(lines)


def trial_note_markdown(trial: FrozenTrial) -> str:
    """A short note for one finished trial: plan, rung values and decisions, lr and grad norms."""
    t = TrialRecord.from_trial(trial)
    lines = [f"{NOTE_TITLE}: trial {t.number}", ""]
    lines.append(f"- mode `{t.mode}`, profile {t.profile}; plan {_budgets(t.plan)} iterations; compute {t.compute:,}.")
    if t.ended:
        lines.append(f"- ended: {t.ended}.")
    if t.rung_values:
        lines += ["", "| budget | value | decision |", "|---:|---:|---|"]
        for budget, value in t.rung_values.items():
            decision = t.decisions.get(budget)
            said = f"rank {decision[0]} of {decision[1]}: {'promoted' if decision[2] else 'pruned'}" if decision else ""
            lines.append(f"| {budget} | {_fmt(value)} | {said} |")
        lines.append("")
    trace = trial.user_attrs.get(ATTR_LR_TRACE)
    if trace:
        lrs = [lr for _, lr in trace]
        rises = sum(1 for a, b in zip(lrs, lrs[1:]) if b > a * 1.5 + 1e-12)
        lines.append(
            f"- learning rate: peak {max(lrs):.4g}, last step {lrs[-1]:.4g} (iteration {trace[-1][0]}); "
            f"{rises} rise(s) back up (restarts/branches); {len(trace)} points in `{ATTR_LR_TRACE}`."
        )
    norms = trial.user_attrs.get(ATTR_GRAD_NORMS)
    if norms:
        first, last = norms[0], norms[-1]
        lines.append(
            f"- gradient norm: {first[3]:.4g} (budget {first[0]}, iteration {first[1]}) → {last[3]:.4g} "
            f"(budget {last[0]}, iteration {last[1]}); {len(norms)} records in `{ATTR_GRAD_NORMS}`."
        )
    return "\n".join(lines)


# -- learning rate of each mode -----------------------------------------------------------


_LABEL = re.compile(
    r"^(?:constant trunk \+ )?(?P<name>\w+)(?:\((?P<params>[^()]*)\))?"
    r"(?: cooldown over (?P<cooldown>[0-9.e+-]+) of each budget)?(?:, warmup (?P<warmup>\d+))?$"
)


def schedule_of_label(label: str | None) -> dict | None:
    """``BudgetedRun``'s ``budgetopt.profile`` label back as keyword arguments
    (``profile``, ``warmup``, ``cooldown`` and numeric profile parameters), or None
    when it cannot be read."""
    match = _LABEL.match(label or "")
    if match is None or match["name"] not in PROFILES:
        return None
    schedule: dict[str, Any] = {"profile": match["name"]}
    for item in filter(None, (match["params"] or "").split(", ")):
        key, _, value = item.partition("=")
        try:
            schedule[key] = float(value)
        except ValueError:
            return None
    if match["cooldown"]:
        schedule["cooldown"] = float(match["cooldown"])
    if match["warmup"]:
        schedule["warmup"] = int(match["warmup"])
    return schedule


def mode_schedules(
    budgets: Sequence[int],
    profile: str = "linear",
    *,
    warmup: int = 0,
    cooldown: float = COOLDOWN,
    points: int = _SCHEDULE_POINTS,
    **profile_params: object,
) -> dict[str, tuple[list[float], list[float], list[tuple[float, float, int]]]]:
    """The learning-rate multiplier of each mode over ``budgets``, against compute.

    Each mode is run for real -- a :class:`~budgetopt.BudgetedRun` on a one-weight
    model with peak rate 1 -- so the curves are exactly what a trial executes, with no
    second copy of the schedule math. Returns ``{mode: (x, y, reports)}``: ``x`` the
    iteration (compute so far, re-done iterations included), ``y`` the multiplier of
    the peak rate, at most about ``points`` points per mode (each segment keeps its first
    and last step, then its end value); ``reports`` the ``(x, y, budget)`` of each rung
    report. A ladder whose largest budget exceeds 5000 iterations is run scaled down
    by an integer factor and its ``x`` scaled back up (exact to that factor).
    """
    scale = max(1, budgets[-1] // _SCHEDULE_MAX_BUDGET)
    scaled = [b // scale for b in budgets]
    if scale > 1 and (scaled[0] < 1 or any(a >= b for a, b in zip(scaled, scaled[1:])) or warmup // scale >= scaled[0]):
        scale, scaled = 1, list(budgets)
    curves = {}
    for mode in MODES:
        model = torch.nn.Linear(1, 1, bias=False)
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        run = BudgetedRun(
            scaled, model, optimizer, mode=mode, profile=profile, warmup=warmup // scale,
            **mode_with(mode, cooldown=cooldown).options(), **profile_params,
        )
        total = sum(scaled)
        x: list[float] = []
        y: list[float] = []
        reports = []
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
        curves[mode] = (x, y, reports)
    return curves


# -- figures ------------------------------------------------------------------------------

_LAYOUT = dict(
    template="none",
    height=450,
    margin=dict(l=60, r=20, t=60, b=50),
    legend=dict(orientation="h", yanchor="bottom", y=-0.32, x=0),
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
    """The learning-rate multiplier of restart, branch and continue over the study's
    ladder, with its profile; the study's own mode(s) drawn bold."""
    labels = list(summary.profiles)
    parsed = [s for s in map(schedule_of_label, labels) if s is not None]
    shapes = {tuple((k, v) for k, v in sorted(s.items()) if k not in ("cooldown", "warmup")) for s in parsed}
    if parsed and len(parsed) == len(labels) and len(shapes) == 1:
        schedule = {k: v for s in parsed for k, v in s.items()}  # a branch label adds its cooldown
        caption = "; ".join(labels)
    else:
        schedule = {"profile": "linear"}
        caption = "linear" + (" (the study's profile could not be read)" if labels else "")
    rungs = summary.rungs
    fig = _figure(
        f"Learning rate of each mode ({caption})",
        dict(title=f"iterations executed (compute) over the ladder {_budgets(rungs)}"),
        dict(title="multiplier of the peak learning rate", range=[-0.03, 1.05]),
    )
    used = set(summary.modes)
    for mode, (x, y, reports) in mode_schedules(rungs, **schedule).items():
        mine = mode in used
        name = f"{mode} (this study)" if mine else mode
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
        f"Compute per rung: {summary.compute:,} iterations ({_share(summary.compute, full)} of a full-budget search)",
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
        rows = list(results)
    for row in rows:
        try:
            method, compute, value = str(row["method"]), float(row["compute"]), float(row["value"])
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise ValueError(f"a comparison point needs a method, a numeric compute and value; got {row!r}") from error
        points.setdefault(method, []).append((compute, value, str(row.get("label", ""))))
    if not points:
        raise ValueError("comparison results are empty: give at least one (method, compute, value) point")
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


def study_figures(summary: StudySummary) -> dict[str, go.Figure]:
    """The study's figures by graph id (the ids under which :func:`publish` stores them)."""
    return {
        GRAPH_LR_PROFILES: lr_profile_figure(summary),
        GRAPH_RUNG_VALUES: rung_values_figure(summary),
        GRAPH_COMPUTE: compute_figure(summary),
    }


# -- publishing ---------------------------------------------------------------------------


def _merge_user_text(old: str, new: str) -> str:
    """``new`` followed by what the user wrote under the marker of ``old`` (or all of
    ``old`` when it is a note that budgetopt did not write)."""
    if NOTE_USER_MARKER in old:
        kept = old.split(NOTE_USER_MARKER, 1)[1]
    elif old.strip() and not old.startswith(NOTE_TITLE):
        kept = "\n\n" + old
    else:
        kept = ""
    return new + kept


def publish(
    study: optuna.Study,
    *,
    comparison: Mapping[str, Iterable] | Iterable[Mapping] | None = None,
    value_name: str = "accuracy",
    trial_notes: bool = False,
) -> dict[str, Any]:
    """Write the study note, the figures and missing trial notes for optuna-dashboard.

    Args:
        study: a study whose trials ran with :class:`~budgetopt.BudgetedRun`.
        comparison: results of a comparison of methods, as :func:`comparison_figure`
            takes them; stored as one more figure. None leaves an earlier one as it is.
        value_name: what the comparison's values are (axis title).
        trial_notes: also write a short note to every finished budgetopt trial that has
            none yet (two writes per trial, once; off by default, as the first call on a
            large study then costs a few milliseconds per trial).

    Returns ``{"note": written?, "figures": [graph ids written], "trial_notes": count}``;
    unchanged content is not written again. Raises ValueError for a study that is not a
    budgetopt study.
    """
    summary = summarize(study)
    storage, study_id = study._storage, study._study_id
    system_attrs = storage.get_study_system_attrs(study_id)
    written: dict[str, Any] = {"note": False, "figures": [], "trial_notes": 0}

    old_note = get_note(study)
    note = _merge_user_text(old_note, note_markdown(summary))
    if note != old_note:
        save_note(study, note)
        written["note"] = True

    figures = study_figures(summary)
    if comparison is not None:
        figures[GRAPH_COMPARISON] = comparison_figure(comparison, value_name)
    written["figures"] = _save_figures(study, figures, system_attrs)

    if trial_notes:
        for trial in study.get_trials(deepcopy=False, states=_FINISHED):
            if ATTR_PLAN in trial.user_attrs and note_ver_key(trial._trial_id) not in system_attrs:
                _save_new_trial_note(storage, study_id, trial._trial_id, trial_note_markdown(trial))
                written["trial_notes"] += 1
    return written


def publish_comparison(
    study: optuna.Study, results: Mapping[str, Iterable] | Iterable[Mapping], value_name: str = "accuracy"
) -> bool:
    """Store only the accuracy-against-compute figure (:func:`comparison_figure`) in any
    study, e.g. one that holds a comparison's results; True when it was (re)written."""
    figure = comparison_figure(results, value_name)
    return bool(_save_figures(study, {GRAPH_COMPARISON: figure}, study._storage.get_study_system_attrs(study._study_id)))


def _save_figures(study: optuna.Study, figures: dict[str, go.Figure], system_attrs: dict) -> list[str]:
    """Save the figures whose JSON differs from the stored one; their graph ids."""
    stored = get_plotly_graph_objects(system_attrs)
    saved = []
    for graph_id, figure in figures.items():
        if stored.get(graph_id) != figure.to_json():
            save_plotly_graph_object(study, figure, graph_object_id=graph_id)
            saved.append(graph_id)
    return saved


def _save_new_trial_note(storage: optuna.storages.BaseStorage, study_id: int, trial_id: int, body: str) -> None:
    """A first note (version 1) for a trial, in optuna-dashboard's storage format.

    ``optuna_dashboard.save_note`` needs a live ``optuna.Trial``, and building one for a
    finished trial runs the sampler's ``before_trial``; this writes the same system
    attrs directly: the body's chunks first, the version last, so a reader never sees
    a version without its body.
    """
    for key, chunk in split_body(body, trial_id).items():
        storage.set_study_system_attr(study_id, key, chunk)
    storage.set_study_system_attr(study_id, note_ver_key(trial_id), 1)


__all__ = [
    "GRAPH_COMPARISON",
    "GRAPH_COMPUTE",
    "GRAPH_LR_PROFILES",
    "GRAPH_RUNG_VALUES",
    "StudySummary",
    "TrialRecord",
    "comparison_figure",
    "compute_figure",
    "is_budgetopt_study",
    "lr_profile_figure",
    "mode_schedules",
    "note_markdown",
    "publish",
    "publish_comparison",
    "report_text",
    "rung_table",
    "rung_values_figure",
    "schedule_of_label",
    "study_figures",
    "summarize",
    "trial_note_markdown",
]
