"""budgetopt.dashboard: the note and figures optuna-dashboard shows, read back through it."""

import json
import os
import shutil
import subprocess
import sys
import time
from wsgiref.util import setup_testing_defaults

import optuna
import optuna_dashboard
import pytest
import torch
from optuna.trial import TrialState

import budgetopt
from budgetopt import dashboard
from budgetopt.dashboard import (
    GRAPH_COMPARISON,
    GRAPH_COMPUTE,
    GRAPH_FRONTIER,
    GRAPH_LR_PROFILES,
    GRAPH_RUNG_VALUES,
    NOTE_USER_MARKER,
    publish,
)

from synthetic import make_study, objective

WORKER = os.path.join(os.path.dirname(__file__), "synthetic.py")
GRAPHS = {GRAPH_FRONTIER, GRAPH_LR_PROFILES, GRAPH_RUNG_VALUES, GRAPH_COMPUTE}


def journal(path) -> optuna.storages.JournalStorage:
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


@pytest.fixture(scope="module")
def study_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("dashboard") / "study.log"
    make_study(journal(path), "synthetic", seed=0).optimize(objective, n_trials=20)
    return path


@pytest.fixture
def study(study_file, tmp_path):
    """A fresh copy of a 20-trial budgetopt study (a journal file is copied, not re-run)."""
    shutil.copy(study_file, tmp_path / "study.log")
    return make_study(journal(tmp_path / "study.log"), "synthetic", seed=0)


def api(storage, path: str) -> dict:
    """GET ``path`` from optuna-dashboard's own WSGI app (its HTTP API, in process)."""
    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    status = []
    body = b"".join(optuna_dashboard.wsgi(storage)(environ, lambda s, h, *a: status.append(s)))
    assert status[0].startswith("200"), (status, body[:300])
    return json.loads(body)


def snapshot(study) -> list:
    return [
        (t.number, t.state, t.values, t.params, t.user_attrs, t.intermediate_values, t.system_attrs)
        for t in study._storage.get_all_trials(study._study_id)
    ]


def test_publish_writes_note_and_figures_that_optuna_dashboard_serves(study):
    written = publish(study, trial_notes=True)
    assert written["note"] and set(written["figures"]) == GRAPHS
    assert written["trial_notes"] == len(study.trials)

    note = optuna_dashboard.get_note(study)
    trials = study.trials
    compute = sum(t.user_attrs["budgetopt.compute"] for t in trials)
    assert "rungs 3 → 9 → 27 iterations; reduction factor 3" in note
    assert note.splitlines()[2].startswith("Budget-aware search: ")
    assert "**Mode** `restart` (20 trials)" in note and "**Schedule**: linear (20 trials)" in note
    assert f"**Compute**: {compute:,} iterations spent" in note
    assert f"would have cost 20 × 27 = {20 * 27:,} iterations" in note
    best = study.best_trial
    assert f"**Best completed trial**: #{best.number}, value {best.value:.6g} at 27 iterations; plan 3 → 9 → 27" in note
    assert "**Frontier**: for each budget" in note and f"| 27 | #{best.number} |" in note
    reached_first = sum("3" in t.user_attrs["budgetopt.rung_values"] for t in trials)
    assert f"| 3 | {reached_first} |" in note

    detail = api(study._storage, f"/api/studies/{study._study_id}")
    assert detail["note"]["body"] == note
    figures = {g["id"]: json.loads(g["graph_object"]) for g in detail["plotly_graph_objects"]}
    assert set(figures) == GRAPHS
    lr = figures[GRAPH_LR_PROFILES]
    assert {trace["name"] for trace in lr["data"] if trace.get("showlegend", True)} == {"restart: linear"}  # what it ran
    assert lr["layout"]["title"]["text"] == "Learning rate of this study's trials"
    rungs = figures[GRAPH_RUNG_VALUES]["data"]
    assert any(trace["name"].startswith("pruned") for trace in rungs)
    assert sum(figures[GRAPH_COMPUTE]["data"][0]["y"]) == compute
    trial_note = detail["trials"][0]["note"]["body"]
    assert trial_note.startswith("## budgetopt: trial 0") and "plan 3 → 9 → 27" in trial_note


def test_publish_never_modifies_trials(study):
    before = snapshot(study)
    publish(study, trial_notes=True, comparison={"restart": [(100, 0.8)]})
    publish(study, trial_notes=True)
    assert snapshot(study) == before


def test_publish_writes_nothing_when_nothing_changed(study):
    publish(study, trial_notes=True)
    attrs = study._storage.get_study_system_attrs(study._study_id)
    assert publish(study, trial_notes=True) == {"note": False, "figures": [], "trial_notes": 0}
    assert study._storage.get_study_system_attrs(study._study_id) == attrs


def test_publish_refreshes_after_more_trials_and_notes_only_new_trials(study):
    publish(study, trial_notes=True)
    study.optimize(objective, n_trials=3)
    written = publish(study, trial_notes=True)
    assert written["note"] and GRAPH_RUNG_VALUES in written["figures"]
    assert written["trial_notes"] == 3
    assert "23 trained" in optuna_dashboard.get_note(study)


def test_publish_keeps_what_the_user_wrote_in_the_study_note(study):
    optuna_dashboard.save_note(study, "my own observations")
    publish(study)
    note = optuna_dashboard.get_note(study)
    assert note.startswith("## budgetopt: synthetic") and note.endswith("my own observations")
    # The user edits below the marker in the dashboard; a later publish keeps the edit.
    optuna_dashboard.save_note(study, note + "\nlr around 0.03 wins")
    study.optimize(objective, n_trials=1)
    publish(study)
    note = optuna_dashboard.get_note(study)
    assert "21 trained" in note
    assert note.split(NOTE_USER_MARKER)[1] == "\n\nmy own observations\nlr around 0.03 wins"


@pytest.mark.long
def test_publish_while_a_worker_runs_leaves_the_worker_untouched(tmp_path):
    path = tmp_path / "shared.log"
    study = make_study(journal(path), "shared", seed=1)
    worker = subprocess.Popen(
        [sys.executable, WORKER, str(path), "shared", "40"], stderr=subprocess.PIPE, text=True
    )
    published = 0
    while worker.poll() is None:
        if dashboard.is_budgetopt_study(study):
            publish(study, trial_notes=True)
            published += 1
        time.sleep(0.2)
    assert worker.returncode == 0, worker.stderr.read()
    publish(study, trial_notes=True)
    trials = study.trials
    assert len(trials) == 40 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert "40 trained" in optuna_dashboard.get_note(study)
    detail = api(study._storage, f"/api/studies/{study._study_id}")
    assert all(t["note"]["body"] for t in detail["trials"])
    assert published >= 1


def test_comparison_figure_takes_a_mapping_or_rows_and_is_published(study):
    by_method = {"restart": [(1000, 0.71), (300, 0.62)], "continue": [(1000, 0.66)]}
    rows = [{"method": "restart", "compute": 300, "value": 0.62, "label": "seed 0"}]
    fig = dashboard.comparison_figure(by_method)
    assert [t.name for t in fig.data] == ["restart", "continue"]
    assert list(fig.data[0].x) == [300, 1000]  # sorted by compute
    assert list(dashboard.comparison_figure(rows).data[0].y) == [0.62]
    publish(study, comparison=rows, value_name="test accuracy")
    detail = api(study._storage, f"/api/studies/{study._study_id}")
    assert GRAPH_COMPARISON in {g["id"] for g in detail["plotly_graph_objects"]}
    publish(study)  # without results: the comparison figure stays
    detail = api(study._storage, f"/api/studies/{study._study_id}")
    assert GRAPH_COMPARISON in {g["id"] for g in detail["plotly_graph_objects"]}


def test_publish_comparison_stores_the_figure_in_any_study():
    study = optuna.create_study(study_name="compare")
    assert dashboard.publish_comparison(study, {"restart": [(300, 0.6)], "continue": [(300, 0.5)]})
    assert not dashboard.publish_comparison(study, {"restart": [(300, 0.6)], "continue": [(300, 0.5)]})
    detail = api(study._storage, f"/api/studies/{study._study_id}")
    figure = json.loads(detail["plotly_graph_objects"][0]["graph_object"])
    assert [t["name"] for t in figure["data"]] == ["restart", "continue"]


def test_comparison_figure_rejects_a_point_without_numbers():
    with pytest.raises(ValueError, match="'compute': 'a lot'"):
        dashboard.comparison_figure([{"method": "restart", "compute": "a lot", "value": 0.5}])
    with pytest.raises(ValueError, match="empty"):
        dashboard.comparison_figure({})


def test_publish_refuses_a_study_that_budgetopt_did_not_run():
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    with pytest.raises(ValueError, match="is not a budgetopt study"):
        publish(study)
    assert not dashboard.is_budgetopt_study(study)


# The learning-rate multiplier of each mode on the ladder 4, 8, 16 (linear profile, no
# warmup, branch cooldown 0.5, the default), written out by hand from the modes' definitions: per rung,
# (compute when its segment starts, the rate of each step of the segment, the rate at its end).
# - restart trains each budget B from scratch, 1 - t/B for t < B, ending at 0 (4 + 8 + 16 = 28);
# - branch trains one trunk at the peak and, for each budget, a cooldown of
#   max(1, round(0.5 B)) = 2, 4, 8 iterations decaying to 0 off it (4 + 6 + 12 = 22);
# - continue runs one schedule to the largest budget, 1 - t/16, and reports mid-way.
LADDER = [4, 8, 16]
EXPECTED_SEGMENTS = {
    "restart": [
        (0, [1, 0.75, 0.5, 0.25], 0),
        (4, [1 - t / 8 for t in range(8)], 0),
        (12, [1 - t / 16 for t in range(16)], 0),
    ],
    "branch": [
        (0, [1, 1] + [1, 0.5], 0),  # trunk 0-1, cooldown of 2
        (4, [1, 1] + [1, 0.75, 0.5, 0.25], 0),  # trunk 2-3, cooldown of 4
        (10, [1] * 4 + [1 - i / 8 for i in range(8)], 0),  # trunk 4-7, cooldown of 8
    ],
    "continue": [
        (0, [1 - t / 16 for t in range(4)], 0.75),
        (4, [1 - t / 16 for t in range(4, 8)], 0.5),
        (8, [1 - t / 16 for t in range(8, 16)], 0),
    ],
}


@pytest.mark.parametrize("mode", ["restart", "branch", "continue"])
def test_mode_schedules_draw_each_modes_schedule(mode):
    x, y, reports = dashboard.mode_schedules(LADDER, points=10_000)[mode]  # every step drawn
    segments = EXPECTED_SEGMENTS[mode]
    points = [(start + i, rate) for start, rates, end in segments for i, rate in enumerate([*rates, end])]
    assert x == [p[0] for p in points]
    assert y == pytest.approx([p[1] for p in points], abs=1e-12)
    ends = [(start + len(rates), pytest.approx(end, abs=1e-12)) for start, rates, end in segments]
    assert reports == [(*end, budget) for end, budget in zip(ends, LADDER)]


@pytest.mark.parametrize("mode", ["restart", "branch", "continue"])
def test_budgeted_run_executes_the_drawn_schedule(mode):
    # The same hand-written schedule, executed: the rate of every optimizer step.
    model = torch.nn.Linear(1, 1, bias=False)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    run = budgetopt.BudgetedRun(LADDER, model, opt, mode=mode)
    reported = []
    for segment in run.segments():
        for _ in segment:
            opt.step()
        reported.append((run.compute, opt.param_groups[0]["lr"]))
        segment.report(0.0)
    segments = EXPECTED_SEGMENTS[mode]
    assert run.lr_trace == pytest.approx([rate for _, rates, _ in segments for rate in rates], abs=1e-12)
    assert reported == [(start + len(rates), pytest.approx(end, abs=1e-12)) for start, rates, end in segments]


def test_mode_schedules_draw_a_large_ladder_scaled_down():
    budgets = [1000, 3000, 9000, 27000, 81000]
    curves = dashboard.mode_schedules(budgets)
    x, y, reports = curves["restart"]
    assert [r[2] for r in reports] == budgets
    assert reports[-1][0] == pytest.approx(sum(budgets), rel=0.01)
    assert len(x) < 1000 and max(y) == 1 and min(y) == 0


def test_trial_note_summarizes_lr_trace_and_grad_norms():
    study = optuna.create_study(direction="maximize", pruner=budgetopt.BudgetPruner(3, 27, 3))

    def train(trial):
        model = torch.nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        run = budgetopt.BudgetedRun(trial, model, opt, grad_norm_every=5)
        for segment in run.segments():
            for _ in segment:
                opt.zero_grad()
                model(torch.ones(4, 2)).pow(2).mean().backward()
                opt.step()
            segment.report(1.0)
        return run.value

    study.optimize(train, n_trials=1)
    note = dashboard.trial_note_markdown(study.trials[0])
    assert "- mode `restart`, schedule linear; plan 3 → 9 → 27 iterations; compute 39" in note
    assert "- ended: completed at budget 27." in note
    assert "learning rate: peak 0.1" in note and "2 rise(s) back up" in note
    assert "gradient norm:" in note and "records in `budgetopt.grad_norms`" in note


def test_report_text_lists_rungs_compute_and_best_trials(study):
    text = dashboard.report_text(dashboard.summarize(study), top=3)
    assert "ladder: 3 → 9 → 27 iterations, reduction factor 3; 1 bracket(s) (successive halving)" in text
    assert "mode: restart (20 trials)" in text
    assert f"of the same 20 trials: {20 * 27:,}" in text
    best = study.best_trial
    assert f"{best.number:>6} {best.value:>12.6g}" in text
    assert sum(line.endswith(f"width={t.params['width']}") for t in study.trials for line in text.splitlines()) >= 1


def test_hyperband_brackets_are_described(tmp_path):
    study = make_study(journal(tmp_path / "hb.log"), "hb", seed=0, brackets="hyperband")
    study.optimize(objective, n_trials=12)
    note = dashboard.note_markdown(dashboard.summarize(study))
    assert "**Brackets**: 3 (Hyperband): bracket 0: 3 → 9 → 27 (9 per cycle); bracket 1: 9 → 27" in note


def test_a_retried_attempt_is_counted_once_in_its_retry(tmp_path):
    import warnings

    study = make_study(journal(tmp_path / "retry.log"), "retry", seed=0)

    def dies_after_first_rung(trial):
        model = torch.nn.Linear(1, 1, bias=False)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for segment in budgetopt.BudgetedRun(trial, model, opt).segments():
            for _ in segment:
                opt.step()
            segment.report(-1.0)
            raise RuntimeError("the worker died")

    study.optimize(dies_after_first_rung, n_trials=1, catch=(RuntimeError,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.RetryHeartbeatStaleTrialCallback()(study, study.trials[0])
    study.optimize(objective, n_trials=1)  # runs the re-queued copy
    failed, retry = study.trials
    assert failed.state == TrialState.FAIL and retry.system_attrs["failed_trial"] == 0
    summary = dashboard.summarize(study)
    assert [t.number for t in summary.trials] == [1] and summary.retried == 1
    assert summary.compute == retry.user_attrs["budgetopt.compute"]
    assert "1 attempt(s) of dead workers retried" in dashboard.note_markdown(summary)


# -- a baseline study is described as one -----------------------------------------------------


def baseline_study(profile: str, pruner: optuna.pruners.BasePruner, n_trials: int = 6, mode: str = "continue"):
    """A study of BudgetedRun trials in ``mode`` on one full-length ``profile`` schedule over
    the ladder 3, 9, 27, judged by ``pruner`` (as ``compare`` and ``bench`` make them)."""
    study = optuna.create_study(direction="maximize", pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0))

    def train(trial):
        lr = trial.suggest_float("lr", 1e-3, 1, log=True)
        model = torch.nn.Linear(1, 1, bias=False)
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        run = budgetopt.BudgetedRun(trial, model, opt, budgets=[3, 9, 27], mode=mode, profile=profile)
        for segment in run.segments():
            for _ in segment:
                opt.step()
            segment.report(lr * segment.budget)
        return run.value

    study.optimize(train, n_trials=n_trials)
    return study


def test_a_continue_only_study_is_described_as_the_baseline_not_as_budget_aware():
    study = baseline_study("step", optuna.pruners.SuccessiveHalvingPruner(min_resource=3, reduction_factor=3))
    summary = dashboard.summarize(study)
    assert summary.is_baseline
    note = dashboard.note_markdown(summary)
    assert "Budget-aware search" not in note and "decays to zero exactly there" not in note
    opening = note.splitlines()[2]
    assert opening.startswith("Baseline search, not budget-aware:")
    assert "one full-length schedule" in opening and "judged at the rungs mid-schedule" in opening
    assert "**Mode** `continue` (6 trials)" in note and "**Schedule**: step (6 trials)" in note
    assert "baseline: full-length schedules judged mid-schedule" in dashboard.report_text(summary)


def test_a_budget_aware_study_with_baseline_trials_says_both():
    study = baseline_study("linear", budgetopt.BudgetPruner(3, 27, 3), n_trials=2)
    optuna_study = baseline_study("linear", budgetopt.BudgetPruner(3, 27, 3), n_trials=3, mode="restart")
    for trial in optuna_study.trials:
        study.add_trial(trial)
    summary = dashboard.summarize(study)
    assert not summary.is_baseline
    opening = dashboard.note_markdown(summary).splitlines()[2]
    assert opening.startswith("Budget-aware search: ") and "2 baseline trial(s) train one full-length schedule" in opening


def test_the_figure_draws_the_schedules_the_studys_trials_ran_and_defaults_only_without_any():
    study = baseline_study("step", optuna.pruners.SuccessiveHalvingPruner(min_resource=3, reduction_factor=3))
    figure = dashboard.lr_profile_figure(dashboard.summarize(study))
    lines = {t.legendgroup: t for t in figure.data if t.mode == "lines"}
    assert list(lines) == ["continue"] and lines["continue"].name == "continue: step"  # no mode it did not run
    # continue: the study's step schedule over 27 iterations (x0.1 from 50%, x0.01 from 75%)
    rate = dict(zip(lines["continue"].x, lines["continue"].y))
    assert [rate[t] for t in range(27)] == pytest.approx([1.0] * 14 + [0.1] * 7 + [0.01] * 6)
    empty = optuna.create_study(pruner=budgetopt.BudgetPruner(3, 27, 3))
    empty.pruner.plan(empty, empty.ask())  # the ladder recorded, no trial trained yet
    figure = dashboard.lr_profile_figure(dashboard.summarize(empty))
    lines = {t.legendgroup: t for t in figure.data if t.mode == "lines"}
    assert figure.layout.title.text == "Learning rate of each mode (defaults: no budgetopt trial yet)"
    # restart: linear decay to 0 at each budget
    x, y = list(lines["restart"].x), list(lines["restart"].y)
    assert y[: x.index(3) + 1] == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0])
    # branch: a constant trunk (1 step) then a linear cooldown (round(0.5 * 3) = 2 steps)
    x, y = list(lines["branch"].x), list(lines["branch"].y)
    assert y[: x.index(3) + 1] == pytest.approx([1.0, 1.0, 0.5, 0.0])


def test_the_figure_draws_a_recorded_schedule_with_its_options():
    study = optuna.create_study(direction="maximize", pruner=budgetopt.BudgetPruner(4, 16, 2))

    def train(trial):
        model = torch.nn.Linear(1, 1, bias=False)
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        run = budgetopt.BudgetedRun(trial, model, opt, mode="branch", cooldown=0.5)
        for segment in run.segments():
            for _ in segment:
                opt.step()
            segment.report(1.0)
        return run.value

    study.optimize(train, n_trials=1)
    assert study.trials[0].user_attrs["budgetopt.schedule"] == {
        "mode": "branch", "profile": "linear", "params": {}, "warmup": 0, "cooldown": 0.5, "horizon_exponent": 0.0
    }
    figure = dashboard.lr_profile_figure(dashboard.summarize(study))
    branch = next(t for t in figure.data if t.mode == "lines" and t.legendgroup == "branch")
    assert branch.name == "branch: constant trunk + linear cooldown over 0.5 of each budget"
    # budget 4 with cooldown 0.5: trunk 0-1, cooldown 1, 0.5, then 0 at the report
    assert list(branch.y[:5]) == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.0])
