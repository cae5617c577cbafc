"""Kept models: the annealed model of each rung for the top-k trials of each budget, in an
Optuna artifact store, reproducing the reported value exactly."""

import optuna
import pytest
import torch
from optuna.artifacts import FileSystemArtifactStore

import budgetopt
from budgetopt.attrs import ATTR_KEPT_MODELS
from budgetopt.keep import sweep
from budgetopt.study_script import build_seeded, train_run


def _study(mode: str, store, k: int = 1, n_trials: int = 10) -> tuple[optuna.Study, object]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    script = budgetopt.load_study_script("digits")
    data = script.load_data()
    ladder = script.quick_ladder
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=1),
        pruner=budgetopt.BudgetPruner(ladder.min_budget, ladder.max_budget, ladder.reduction_factor),
    )

    def objective(trial):
        params = script.search_space(trial)
        model, optimizer = build_seeded(script, params, trial.number, "cpu")
        run = budgetopt.BudgetedRun(trial, model, optimizer, mode=mode, keep_models=k, model_store=store)
        train_run(script, run, params, data, trial.number, "cpu")
        return run.value

    study.optimize(objective, n_trials=n_trials)
    return study, (script, data)


@pytest.mark.parametrize("mode", ["restart", "branch"])
def test_a_kept_model_reproduces_the_value_its_trial_reported_at_that_budget(mode, tmp_path):
    store = FileSystemArtifactStore(str(tmp_path))
    study, (script, data) = _study(mode, store)
    front = budgetopt.frontier(study)
    for row in front:
        params = study.trials[row.trial].params
        model, _ = build_seeded(script, params, 12345, "cpu")  # other weights: the kept ones must replace them
        assert budgetopt.load_model(study, row.budget, model, store) == row.trial
        assert script.evaluate(model, data, "val", "cpu") == row.value
    sweep(study, store, 1)
    kept = {(t.number, b) for t in study.trials for b in (t.user_attrs.get(ATTR_KEPT_MODELS) or {})}
    on_disk = {p.name for p in tmp_path.iterdir()}
    named = {study.trials[n].user_attrs[ATTR_KEPT_MODELS][b] for n, b in kept}
    frontier_ids = {study.trials[r.trial].user_attrs[ATTR_KEPT_MODELS][str(r.budget)] for r in front}
    assert on_disk == frontier_ids  # exactly the frontier's models: none orphaned, none missing
    assert on_disk <= named


def test_top_k_keeps_at_most_k_models_per_budget(tmp_path):
    store = FileSystemArtifactStore(str(tmp_path))
    study, _ = _study("restart", store, k=2, n_trials=8)
    sweep(study, store, 2)
    per_budget = {}
    for t in study.trials:
        for b, artifact_id in (t.user_attrs.get(ATTR_KEPT_MODELS) or {}).items():
            if (tmp_path / artifact_id).exists():
                per_budget.setdefault(b, []).append(t.number)
    assert per_budget and all(len(v) <= 2 for v in per_budget.values())
    assert len(list(tmp_path.iterdir())) == sum(len(v) for v in per_budget.values())


def test_keep_models_bad_input_and_a_model_that_is_gone(tmp_path):
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="keep_models needs an Optuna trial and a model_store"):
        budgetopt.BudgetedRun([3, 9], model, optimizer, keep_models=1)
    study = optuna.create_study()
    trial = study.ask()
    trial.set_user_attr("budgetopt.plan", [3, 9])
    with pytest.raises(ValueError, match="keep_models must be an integer >= 1, got -1"):
        budgetopt.BudgetedRun(
            trial, model, optimizer, budgets=[3, 9], keep_models=-1, model_store=FileSystemArtifactStore(str(tmp_path))
        )
    with pytest.raises(ValueError, match="mode 'continue' has none"):
        budgetopt.BudgetedRun(trial, model, optimizer, budgets=[3, 9], mode="continue", keep_models=1,
                              model_store=FileSystemArtifactStore(str(tmp_path)))
    store = FileSystemArtifactStore(str(tmp_path))
    kept, (script, _) = _study("restart", store, n_trials=3)
    row = next(iter(budgetopt.frontier(kept)))
    for p in tmp_path.iterdir():
        p.unlink()
    net, _ = build_seeded(script, kept.trials[row.trial].params, 0, "cpu")
    with pytest.raises(FileNotFoundError, match="is not in the model store"):
        budgetopt.load_model(kept, row.budget, net, store)


def test_export_writes_the_kept_model_and_bad_input_is_one_line(tmp_path, capsys):
    from budgetopt.cli import main

    models = tmp_path / "models"
    models.mkdir()
    store = FileSystemArtifactStore(str(models))
    study, (script, data) = _study("restart", store, n_trials=4)
    url = f"sqlite:///{tmp_path / 's.db'}"
    persistent = optuna.create_study(study_name="s", storage=url, direction="maximize")
    for t in study.trials:
        persistent.add_trial(t)
    budget = max(r.budget for r in budgetopt.frontier(persistent) if r.value is not None)
    out = tmp_path / "model.pt"
    assert main(["export", url, "--budget", str(budget), "--models", str(models), "--out", str(out)]) == 0
    row = budgetopt.frontier(persistent).row(budget)
    model, _ = build_seeded(script, persistent.trials[row.trial].params, 0, "cpu")
    model.load_state_dict(torch.load(out, weights_only=True))
    assert script.evaluate(model, data, "val", "cpu") == row.value
    capsys.readouterr()
    assert main(["export", url, "--budget", "7", "--models", str(models), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "budget 7 is not on the study's ladder" in err[0]


def test_a_worker_keeps_models_beside_its_storage_and_export_finds_them(tmp_path, capsys, monkeypatch):
    """``budgetopt worker --keep-models 1``: the models sit in FILE.models beside the
    storage; at the worker's end exactly the frontier's are left, and ``export`` finds
    them there without ``--models``."""
    from pathlib import Path

    from budgetopt.cli import main

    monkeypatch.chdir(tmp_path)
    script = str(Path(__file__).parent / "scripts" / "synthetic_study.py")
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    assert main(["worker", script, "--storage", url, "--study", "s", "--n-trials", "12", "--keep-models", "1", "-q"]) == 0
    study = optuna.load_study(study_name="s", storage=url)
    front = budgetopt.frontier(study)
    named = {study.trials[r.trial].user_attrs[ATTR_KEPT_MODELS][str(r.budget)] for r in front if r.trial is not None}
    assert {p.name for p in (tmp_path / "studies.models").iterdir()} == named
    from budgetopt.dashboard.summary import summarize
    from budgetopt.dashboard.text import note_markdown

    note = note_markdown(summarize(study))  # the study note says, per budget, that its model is kept
    rows = [line for line in note.splitlines() if line.startswith("| ") and "#" in line]
    assert rows and all("| yes |" in line for line in rows), rows
    top = max(r.budget for r in front if r.value is not None)
    assert main(["export", url, "--budget", str(top), "--out", "m.pt"]) == 0
    assert int(torch.load(tmp_path / "m.pt", weights_only=True)["steps"]) == top  # that budget's model
    capsys.readouterr()
    assert main(["export", url, "--budget", str(top), "--models", "nowhere", "--out", "m.pt"]) == 2
    assert "--models nowhere: no such directory" in capsys.readouterr().err
    assert main(["export", url, "--budget", str(top), "--out", "no/such/dir/m.pt"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out no/such/dir/m.pt: its directory does not exist" in err[0], err
    # the Python API finds the same default store beside the study's file
    named_model = {k: v for k, v in torch.load(tmp_path / "m.pt", weights_only=True).items()}
    number = budgetopt.load_model(study, top, _Recorder())
    assert number == front.row(top).trial and _Recorder.loaded["steps"] == named_model["steps"]
    # an artifact that is gone: one line, exit 2, naming the trial and budget
    for path in (tmp_path / "studies.models").iterdir():
        path.unlink()
    assert main(["export", url, "--budget", str(top), "--out", "m.pt"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"budget {top}" in err[0], err


class _Recorder:
    """A stand-in model: records the state it is given."""

    loaded: dict = {}

    def load_state_dict(self, state):
        _Recorder.loaded = dict(state)


def test_a_retried_trial_is_ranked_by_its_retry_whose_models_it_names():
    """A dead worker's attempt and its retry carry the same values and model names: the
    retry is the one ranked (ranking the attempt, earlier on a tie, would evict the
    model the retry names)."""
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from budgetopt.keep import top_trials

    attrs = {"budgetopt.mode": "restart", "budgetopt.plan": [3, 9], "budgetopt.rung_values": {"3": 0.9},
             ATTR_KEPT_MODELS: {"3": "budgetopt-model-a"}}
    common = dict(params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)}, intermediate_values={3: 0.9})
    attempt = create_trial(state=TrialState.FAIL, user_attrs=attrs, **common)
    retry = create_trial(state=TrialState.PRUNED, user_attrs=attrs, system_attrs={"failed_trial": 0, "retry_history": [0]},
                         **common)
    other = create_trial(state=TrialState.PRUNED, user_attrs={**attrs, "budgetopt.rung_values": {"3": 0.5},
                                                             ATTR_KEPT_MODELS: {"3": "budgetopt-model-b"}}, **common)
    study = optuna.create_study(direction="maximize")
    for t in (attempt, retry, other):
        study.add_trial(t)
    assert top_trials(study.get_trials(), 3, 1, maximize=True) == {1}
