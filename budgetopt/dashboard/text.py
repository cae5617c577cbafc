"""The words of a study's summary: its dashboard note, its trial notes, and the text of
``budgetopt report`` (Markdown and plain text from a :class:`StudySummary`)."""

from __future__ import annotations

from collections.abc import Iterable

from optuna.trial import FrozenTrial

from budgetopt.attrs import ATTR_GRAD_NORMS, ATTR_LR_TRACE
from budgetopt.dashboard.summary import StudySummary, TrialRecord, rung_table
from budgetopt.modes import MODE_TYPES

NOTE_TITLE = "## budgetopt"
# Everything after this line in the study note is the user's and survives a publish.
NOTE_USER_MARKER = "_Your notes below this line are kept when budgetopt refreshes the summary above._"

# What each mode does, in one sentence (the mode objects' own words).
MODE_WORDS = {name: mode.words for name, mode in MODE_TYPES.items()}

BUDGET_AWARE = (
    "Budget-aware search: every trial is given budgets of iterations (its *plan*) and, at each "
    "budget, a learning rate that decays to zero exactly there, so every rung compares models "
    "converged for their budget."
)
BASELINE = (
    "Baseline search, not budget-aware: every trial trains one full-length schedule over the largest "
    "budget and is judged at the rungs mid-schedule, while its learning rate is still high, so a rung "
    "compares models that have not converged for that budget (Optuna's successive halving or Hyperband "
    "on a full-length schedule)."
)


def opening(summary: StudySummary) -> str:
    """What kind of search the study is, in words: budget-aware, the baseline, or both."""
    if not summary.trials:
        return "No trial has reported yet."
    if summary.is_baseline:
        return BASELINE
    baseline = len(summary.trials) - len(summary.budget_aware_trials)
    if not baseline:
        return BUDGET_AWARE
    return (
        f"{BUDGET_AWARE} Next to it, {baseline} baseline trial(s) train one full-length schedule judged "
        "mid-schedule at the rungs (not budget-aware)."
    )


def format_budgets(budgets: Iterable[int]) -> str:
    return " → ".join(str(b) for b in budgets)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.6g}"


def _params(params: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def format_share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "—"


def note_markdown(summary: StudySummary) -> str:
    """The study note: what kind of search, ladder, brackets, mode(s), schedule(s), totals,
    best trial (Markdown)."""
    lines = [f"{NOTE_TITLE}: {summary.name}", ""]
    lines += [opening(summary), ""]
    rungs = summary.rungs
    if summary.ladder:
        eta = summary.ladder["reduction_factor"]
        lines.append(
            f"- **Ladder**: rungs {format_budgets(rungs)} iterations; reduction factor {eta}: each rung keeps the top 1/{eta}."
        )
        brackets = summary.ladder.get("brackets", [])
        if len(brackets) <= 1:
            lines.append("- **Brackets**: 1 (successive halving): every trial starts at the first rung.")
        else:
            parts = "; ".join(f"bracket {b['index']}: {format_budgets(b['rungs'])} ({b['n_trials']} per cycle)" for b in brackets)
            lines.append(f"- **Brackets**: {len(brackets)} (Hyperband): {parts}.")
    else:
        lines.append(f"- **Budgets**: {format_budgets(rungs)} iterations (no BudgetPruner ladder recorded).")
    for mode, n in summary.modes.most_common():
        lines.append(f"- **Mode** `{mode}` ({n} trials): {MODE_WORDS.get(mode, 'unknown mode')}.")
    for profile, n in summary.profiles.most_common():
        lines.append(f"- **Schedule**: {profile} ({n} trials).")
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
        f"{full:,} iterations: this search used {format_share(summary.compute, full)} of that.",
        "",
    ]
    if summary.frontier is not None:
        lines += [
            "**Frontier**: for each budget, the best configuration any trial measured there (pruned ones included: "
            "train this configuration for that budget, and expect this value):",
            "",
            "| budget | trial | value | margin to the runner-up | trials measured | model kept | configuration |",
            "|---:|---:|---:|---:|---:|---|---|",
        ]
        for r in summary.frontier:
            if r.trial is not None:
                margin = "" if r.margin is None else _fmt(r.margin)
                kept = "yes" if summary.kept.get(r.budget) else "no"
                lines.append(
                    f"| {r.budget} | #{r.trial} | {_fmt(r.value)} | {margin} | {r.measured} | {kept} | {_params(r.params)} |"
                )
        lines += [
            "",
            "A kept model (`BudgetedRun(..., keep_models=k)`, `budgetopt worker --keep-models k`) is the annealed "
            "model of that budget: `budgetopt export STORAGE --study NAME --budget B --out model.pt` writes it out."
            if any(summary.kept.values())
            else "No model was kept: run with `BudgetedRun(..., keep_models=1)` or `budgetopt worker --keep-models 1` "
            "to keep each budget's annealed model.",
        ]
        if summary.fit is not None:
            lines += ["", f"**Longer training**: {summary.fit.advice()}"]
        lines.append("")
    best = summary.best(1)
    if best:
        t = best[0]
        lines.append(
            f"**Best completed trial**: #{t.number}, value {_fmt(t.value)} at {t.last_rung} iterations; plan "
            f"{format_budgets(t.plan)}; compute {t.compute:,} iterations; {_params(t.params)}."
        )
    else:
        lines.append("**Best completed trial**: none completed yet.")
    lines += [
        "",
        "Figures on the study's main page: the frontier (best value per budget, with the fit of longer training), "
        "the learning rate this study's schedules set over the ladder, rung values "
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
            f"ladder: {format_budgets(summary.rungs)} iterations, reduction factor {summary.ladder['reduction_factor']}; "
            f"{len(brackets)} bracket(s) ({kind})"
        )
        if len(brackets) > 1:
            lines += [f"  bracket {b['index']}: {format_budgets(b['rungs'])}" for b in brackets]
    else:
        lines.append(f"budgets: {format_budgets(summary.rungs)} iterations")
    lines.append("mode: " + ", ".join(f"{m} ({n} trials)" for m, n in summary.modes.most_common()))
    lines.append("schedule: " + ", ".join(f"{p} ({n} trials)" for p, n in summary.profiles.most_common()))
    if summary.is_baseline:
        lines.append("baseline: full-length schedules judged mid-schedule at the rungs (not budget-aware)")
    lines += ["", f"{'rung':>8} {'reached':>8} {'went on':>8} {'stopped':>8}"]
    lines += [f"{b:>8} {r:>8} {w:>8} {s:>8}" for b, r, w, s in rung_table(summary)]
    full = summary.full_budget_compute
    lines += [
        "",
        f"compute: {summary.compute:,} iterations; a full-budget search of the same {len(summary.trials)} trials: "
        f"{full:,} ({format_share(summary.compute, full)} of it spent)",
        "",
    ]
    if summary.frontier is not None and summary.fit is not None:
        from budgetopt.frontier import frontier_text

        lines += [frontier_text(summary.frontier, summary.fit), ""]
    best = summary.best(top)
    if not best:
        lines.append("best trials: none completed yet")
    else:
        lines.append(f"best trials ({summary.direction}):")
        lines.append(f"{'trial':>6} {'value':>12} {'compute':>8}  plan / params")
        for t in best:
            lines.append(f"{t.number:>6} {_fmt(t.value):>12} {t.compute:>8,}  {format_budgets(t.plan)}  {_params(t.params)}")
    return "\n".join(lines)


def trial_note_markdown(trial: FrozenTrial) -> str:
    """A short note for one finished trial: plan, rung values and decisions, lr and grad norms."""
    t = TrialRecord.from_trial(trial)
    lines = [f"{NOTE_TITLE}: trial {t.number}", ""]
    plan = format_budgets(t.plan)
    lines.append(f"- mode `{t.mode}`, schedule {t.schedule_words}; plan {plan} iterations; compute {t.compute:,}.")
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
