"""`budgetopt worker` in this process: the study's budget over workers, the failure policy,
retries; and `budgetopt launch` with real processes."""

from __future__ import annotations

import io
import os
import signal
import sys

import optuna
import pytest
import torch
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState
from test_cli_errors import SCRIPT as STUDY_SCRIPT

from budgetopt.attrs import ATTR_COMPUTE, ATTR_ENDED, ATTR_MODE, ATTR_RESUMED, ATTR_SCHEDULE, ATTR_SEED, ATTR_SNAPSHOT
from budgetopt.cli import build_parser, main
from budgetopt.cli.workers import _worker_argv
from budgetopt.modes import COOLDOWN
from budgetopt.storage import default_snapshot_location, open_snapshot_store
from budgetopt.workers import (
    ATTR_WORKER,
    RetryStaleTrial,
    compute_spent,
    fresh_trial_count,
)

from test_multiprocess import check_study_is_consistent
from worker_processes import HEARTBEAT, SCRIPT, load, start, stderr_of, wait_all, wait_until

pytestmark = pytest.mark.timeout(240)


def worker(tmp_path, *options: str, study: str = "s", storage: str | None = None) -> int:
    storage = storage or f"sqlite:///{tmp_path}/study.db"
    return main(["worker", SCRIPT, "--storage", storage, "--study", study, *HEARTBEAT, "-q", *options])


def enqueue(tmp_path, *lrs: float, study: str = "s") -> None:
    """Trials with these learning rates first (the sampler alone might not try them)."""
    s = optuna.create_study(storage=f"sqlite:///{tmp_path}/study.db", study_name=study, direction="maximize", load_if_exists=True)
    for lr in lrs:
        s.enqueue_trial({"lr": lr, "width": 16})


def test_n_trials_counts_the_study_not_the_worker(tmp_path):
    assert worker(tmp_path, "--n-trials", "5") == 0
    assert worker(tmp_path, "--n-trials", "5") == 0  # a second worker finds the study done
    assert worker(tmp_path, "--n-trials", "7") == 0  # a larger count: two more trials
    study = load(f"sqlite:///{tmp_path}/study.db", "s")
    check_study_is_consistent(study, 7)
    assert all(t.user_attrs[ATTR_WORKER]["pid"] == os.getpid() for t in study.trials)
    assert os.listdir(tmp_path / "study.snapshots") == []  # beside the storage; all cleaned up


def test_compute_budget_is_the_studys_and_no_trial_starts_past_it(tmp_path):
    assert worker(tmp_path, "--compute", "100") == 0
    trials = load(f"sqlite:///{tmp_path}/study.db", "s").trials
    spent = compute_spent(trials)
    assert spent >= 100
    assert spent - trials[-1].user_attrs[ATTR_COMPUTE] < 100  # the last trial started below the budget
    assert worker(tmp_path, "--compute", "100") == 0
    assert len(load(f"sqlite:///{tmp_path}/study.db", "s").trials) == len(trials)


def test_compute_in_full_budgets_is_that_many_full_budgets_of_the_scripts_ladder(tmp_path):
    assert worker(tmp_path, "--compute", "4fb") == 0  # the script's full budget is 27: 108 iterations
    trials = load(f"sqlite:///{tmp_path}/study.db", "s").trials
    spent = compute_spent(trials)
    assert spent >= 4 * 27 and spent - trials[-1].user_attrs[ATTR_COMPUTE] < 4 * 27


def test_branch_workers_train_with_their_cooldown_and_launch_forwards_it(tmp_path):
    assert worker(tmp_path, "--n-trials", "2", "--mode", "branch", "--cooldown", "0.3") == 0
    study = load(f"sqlite:///{tmp_path}/study.db", "s")
    assert study.user_attrs["budgetopt.setup"] == {"script": "synthetic_study", "mode": "branch", "cooldown": 0.3}
    assert all(t.user_attrs[ATTR_SCHEDULE]["cooldown"] == 0.3 for t in study.trials)
    assert all(t.user_attrs[ATTR_MODE] == "branch" for t in study.trials)
    args = build_parser().parse_args(
        ["launch", SCRIPT, "--storage", "x.log", "--study", "s", "--workers", "2", "--mode", "branch", "--cooldown", "0.3"]
    )
    assert _worker_argv(args)[-4:] == ["--mode", "branch", "--cooldown", "0.3"]


def test_snapshot_device_reaches_every_run_and_launch_forwards_it(tmp_path, monkeypatch):
    import budgetopt.run

    devices = []
    real = budgetopt.run._snapshot
    monkeypatch.setattr(budgetopt.run, "_snapshot", lambda obj, device: devices.append(device) or real(obj, device))
    assert worker(tmp_path, "--n-trials", "2", "--mode", "branch", "--snapshot-device", "cpu") == 0
    assert devices and set(devices) == {torch.device("cpu")}  # every trunk snapshot
    args = build_parser().parse_args(
        ["launch", SCRIPT, "--storage", "x.log", "--study", "s", "--workers", "2", "--snapshot-device", "cpu"]
    )
    assert _worker_argv(args)[-2:] == ["--snapshot-device", "cpu"]


def test_a_branch_worker_without_cooldown_takes_the_studys_own(tmp_path):
    # a study made with another cooldown (e.g. the default before 0.5) keeps it
    assert worker(tmp_path, "--n-trials", "1", "--mode", "branch", "--cooldown", "0.2") == 0
    assert worker(tmp_path, "--n-trials", "2", "--mode", "branch") == 0
    study = load(f"sqlite:///{tmp_path}/study.db", "s")
    assert study.user_attrs["budgetopt.setup"]["cooldown"] == 0.2
    assert [t.user_attrs[ATTR_SCHEDULE]["cooldown"] for t in study.trials] == [0.2, 0.2]
    # a new study without --cooldown: the library's default
    assert worker(tmp_path, "--n-trials", "1", "--mode", "branch", study="new") == 0
    assert load(f"sqlite:///{tmp_path}/study.db", "new").user_attrs["budgetopt.setup"]["cooldown"] == COOLDOWN
    # an explicit --cooldown that differs from the study's is still refused
    assert worker(tmp_path, "--n-trials", "3", "--mode", "branch", "--cooldown", "0.3") == 2


def test_an_error_in_a_step_fails_that_trial_and_the_worker_goes_on(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SYNTHETIC_RAISE", "boom")
    monkeypatch.setenv("SYNTHETIC_RAISE_ABOVE", "0.05")
    enqueue(tmp_path, 0.5, 0.01, 0.2)
    assert worker(tmp_path, "--n-trials", "12", "--max-repeated-errors", "12") == 0
    trials = load(f"sqlite:///{tmp_path}/study.db", "s").trials
    assert len(trials) == 12
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed and all(t.params["lr"] > 0.05 for t in failed)
    assert all(t.user_attrs[ATTR_ENDED].startswith("failed: RuntimeError: boom (at synthetic_study.py:") for t in failed)
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials if t.params["lr"] <= 0.05)
    assert os.listdir(tmp_path / "study.snapshots") == []  # a failed trial's snapshot is removed too


def test_the_same_error_in_a_row_stops_the_worker_with_that_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SYNTHETIC_RAISE", "CUDA out of memory. Tried to allocate 2.00 GiB")
    assert worker(tmp_path, "--n-trials", "10") == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "Traceback" not in error[0]
    assert error[0].startswith("budgetopt: error: trial 2 failed: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB")
    assert "the same error ended 3 trials in a row" in error[0]
    trials = load(f"sqlite:///{tmp_path}/study.db", "s").trials
    assert [t.state for t in trials] == [TrialState.FAIL] * 3


def test_nan_loss_prunes_the_trial_with_its_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHETIC_NAN_ABOVE", "0.05")
    enqueue(tmp_path, 0.5, 0.01)
    assert worker(tmp_path, "--n-trials", "10") == 0
    trials = load(f"sqlite:///{tmp_path}/study.db", "s").trials
    diverged = [t for t in trials if t.params["lr"] > 0.05]
    assert diverged and all(t.state == TrialState.PRUNED for t in diverged)
    assert all(t.user_attrs[ATTR_ENDED].startswith("diverged: training loss is nan") for t in diverged)
    assert all(t.state != TrialState.FAIL for t in trials)


def _requeue_first_trial(tmp_path, user_attrs: dict) -> str:
    """Run one trial, then add a WAITING retry of it (as Optuna's retry callbacks do) with
    ``user_attrs``; the storage URL."""
    url = f"sqlite:///{tmp_path}/study.db"
    assert worker(tmp_path, "--n-trials", "1") == 0
    study = load(url, "s")
    first = study.trials[0]
    study.add_trial(optuna.create_trial(
        state=TrialState.WAITING, params=first.params, distributions=first.distributions,
        user_attrs=user_attrs, system_attrs={"failed_trial": 0, "retry_history": [0]},
    ))
    return url


def test_a_retried_trial_keeps_its_seed_and_counts_its_lost_work(tmp_path):
    # What the heartbeat's callback makes of a trial whose worker died before its first rung.
    url = _requeue_first_trial(tmp_path, {ATTR_SEED: 7, "budgetopt.plan": [3, 9, 27], ATTR_COMPUTE: 2})
    assert worker(tmp_path, "--n-trials", "1") == 0  # the retry is run although the count is reached
    retry = load(url, "s").trials[1]
    assert retry.state != TrialState.WAITING and retry.user_attrs[ATTR_SEED] == 7
    assert retry.user_attrs[ATTR_RESUMED] == {"from_trial": 0, "budget": None, "lost_compute": 2}
    assert retry.user_attrs[ATTR_COMPUTE] == 2 + sum(retry.intermediate_values)
    assert fresh_trial_count(load(url, "s").trials) == 1


def test_a_retry_of_an_attempt_interrupted_before_its_plan_says_it_resumed(tmp_path):
    # Ctrl-C between the trial's creation and its plan: the re-queued copy has no budgetopt attrs.
    url = _requeue_first_trial(tmp_path, {})
    assert worker(tmp_path, "--n-trials", "1") == 0
    retry = load(url, "s").trials[1]
    assert retry.user_attrs[ATTR_RESUMED] == {"from_trial": 0, "budget": None, "lost_compute": 0}
    assert retry.user_attrs[ATTR_COMPUTE] == sum(retry.intermediate_values)


def test_a_corrupted_snapshot_retrains_from_zero_and_says_why(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/study.db"
    assert worker(tmp_path, "--n-trials", "1") == 0
    study = load(url, "s")
    first = study.trials[0]
    (tmp_path / "study.snapshots" / "budgetopt-broken").write_bytes(b"\x00 not a torch file")
    study.add_trial(optuna.create_trial(
        state=TrialState.WAITING, params=first.params, distributions=first.distributions,
        user_attrs={"budgetopt.plan": [3, 9, 27], ATTR_COMPUTE: 12,
                    ATTR_SNAPSHOT: {"id": "budgetopt-broken", "budget": 9, "compute": 12}},
        system_attrs={"failed_trial": 0, "retry_history": [0]},
    ))
    assert worker(tmp_path, "--n-trials", "1") == 0
    retry = load(url, "s").trials[1]
    assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert "unusable" in retry.user_attrs[ATTR_RESUMED] and "trained from zero" in retry.user_attrs[ATTR_RESUMED]
    assert retry.user_attrs[ATTR_COMPUTE] == 12 + sum(retry.intermediate_values)


def test_retries_exhausted_remove_the_snapshot(tmp_path):
    store = FileSystemArtifactStore(str(tmp_path))
    store.write("budgetopt-x", io.BytesIO(b"snapshot"))
    study = optuna.create_study()
    trial = optuna.create_trial(
        state=TrialState.FAIL, user_attrs={ATTR_SNAPSHOT: {"id": "budgetopt-x", "budget": 3, "compute": 3}},
        system_attrs={"failed_trial": 0, "retry_history": [0, 1]},
    )
    RetryStaleTrial(max_retry=3, snapshot_store=store)(study, trial)
    assert len(study.trials) == 1 and os.listdir(tmp_path) == ["budgetopt-x"]  # retried: kept
    RetryStaleTrial(max_retry=2, snapshot_store=store)(study, trial)
    assert len(study.trials) == 1 and os.listdir(tmp_path) == []  # not retried: removed


@pytest.mark.parametrize(
    "storage, expected",
    [("sqlite:///runs/studies.db", "runs/studies.snapshots"), ("runs/studies.log", "runs/studies.snapshots"),
     ("postgresql://me@db/studies", "budgetopt-snapshots")],
)
def test_default_snapshot_location_is_beside_a_file_storage(storage, expected):
    assert default_snapshot_location(storage) == expected


def test_snapshot_store_is_checked_by_writing(tmp_path):
    location = tmp_path / "a" / "b"  # missing: created
    store = open_snapshot_store(str(location))
    assert isinstance(store, FileSystemArtifactStore)
    assert location.is_dir() and list(location.iterdir()) == []  # the probe is removed
    payload = os.urandom(4096)
    store.write("snap", io.BytesIO(payload))
    assert list(location.iterdir()) == [location / "snap"]  # written where it was asked
    with store.open_reader("snap") as reader:
        assert reader.read() == payload
    # another worker opening the same place (file:// form) reads the same bytes
    with open_snapshot_store(f"file://{location}").open_reader("snap") as reader:
        assert reader.read() == payload

    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError) as error:
        open_snapshot_store(str(tmp_path / "file.txt" / "snapshots"))
    assert str(error.value) == f"snapshot directory {tmp_path}/file.txt/snapshots cannot be created: Not a directory"

    readonly = tmp_path / "readonly"
    readonly.mkdir(mode=0o500)
    if os.access(readonly, os.W_OK):  # root ignores the mode: a directory nobody can write into
        readonly = "/proc"
    with pytest.raises(ValueError) as error:
        open_snapshot_store(str(readonly))
    message = str(error.value)
    assert message.startswith(f"snapshot directory {readonly} is not writable: ") and "\n" not in message
    assert message.split(": ", 1)[1] in ("Permission denied", "No such file or directory", "Read-only file system")


@pytest.mark.long
@pytest.mark.usefixtures("no_process_left")
def test_launch_forwards_ctrl_c_and_the_interrupted_trials_resume(tmp_path):
    url = str(tmp_path / "study.log")
    launch = start([sys.executable, "-m", "budgetopt", "launch", SCRIPT, "--storage", url, "--study", "s",
                    "--n-trials", "12", "--workers", "2", "--snapshots", str(tmp_path / "snapshots")],
                   tmp_path, env={"SYNTHETIC_STEP_SECONDS": "0.2"})

    def both_running_one_past_a_rung():
        try:
            trials = load(url, "s").get_trials(states=(TrialState.RUNNING,))
        except KeyError:  # not created yet
            return False
        return len(trials) == 2 and any(ATTR_SNAPSHOT in t.user_attrs for t in trials)

    assert wait_until(both_running_one_past_a_rung, timeout=180, interval=0.2), stderr_of(launch)
    launch.send_signal(signal.SIGINT)  # what Ctrl-C in its terminal does
    assert wait_all([launch], timeout=60) == [130], stderr_of(launch)
    assert stderr_of(launch).count("interrupted: re-queued") == 2
    study = load(url, "s")
    assert sorted(t.state for t in study.trials).count(TrialState.WAITING) == 2
    assert any(ATTR_SNAPSHOT in t.user_attrs for t in study.trials if t.state == TrialState.WAITING)

    assert worker(tmp_path, "--n-trials", "12", "--snapshots", str(tmp_path / "snapshots"), storage=url) == 0
    trials = load(url, "s").trials
    retries = [t for t in trials if "failed_trial" in t.system_attrs]
    assert len(retries) == 2 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in retries)
    assert all(ATTR_RESUMED in t.user_attrs for t in retries)  # also one interrupted before its plan
    assert any(t.user_attrs[ATTR_RESUMED]["budget"] is not None for t in retries)  # from its rung snapshot
    assert fresh_trial_count(trials) == 12


@pytest.mark.usefixtures("no_process_left")
def test_launch_fails_when_a_worker_fails(tmp_path):
    launch = start([sys.executable, "-m", "budgetopt", "launch", SCRIPT, "--storage", str(tmp_path / "study.log"),
                    "--study", "s", "--n-trials", "6", "--workers", "1"], tmp_path, env={"SYNTHETIC_RAISE": "broken step"})
    assert wait_all([launch], timeout=180) == [1]
    lines = stderr_of(launch).strip().splitlines()
    assert lines[-2].startswith("budgetopt: error: trial 2 failed: RuntimeError: broken step")  # the worker's
    assert lines[-1] == "budgetopt: error: 1 of 1 workers failed: worker 0 (cpu) exited with 1"


def test_a_worker_whose_trial_was_declared_dead_leaves_it_to_the_retry(tmp_path):
    """A stalled worker (heartbeat later than the grace period) finds its trial failed and
    re-queued by another worker: it stops writing to it and goes on with the study."""
    from budgetopt import BudgetPruner, BudgetSampler
    from budgetopt.workers import StudyBudget, run_worker

    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/study.db", direction="maximize",
                                sampler=BudgetSampler(seed=0), pruner=BudgetPruner(3, 27))

    def objective(trial):
        x = trial.suggest_float("x", 0, 1)
        if trial.number == 0:  # what another worker's fail_stale_trials does to a late trial
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            RetryStaleTrial()(study, study._storage.get_trial(trial._trial_id))
            trial.report(x, step=3)  # refused: the trial is finished
        return x

    said = []
    report = run_worker(study, objective, StudyBudget(n_trials=3), say=said.append)
    assert (report.abandoned, report.complete) == (1, 3)  # trials 1, 2 and the retry of 0
    assert "failed by another worker" in said[0]
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE, TrialState.COMPLETE]
    assert study.trials[1].system_attrs["failed_trial"] == 0


# The study_script docstring's example on a tiny ladder (3/9), as the CLI error tests use it.
MINIMAL = STUDY_SCRIPT.format(error="return loss")


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("    return model, torch.optim", "    return model\n    torch.optim",
         "build(params, device) must return (model, optimizer), got Sequential"),
        ('    return {"lr"', '    return [trial.suggest_float("lr", 1e-3, 1.0, log=True)]\n    {"lr"',
         "search_space(trial) must return a dict of params, got list"),
        ("    return loss", "    return None",
         "train_step(model, optimizer, batch, params) must return the step's loss (a tensor or a number), got NoneType"),
        ("    return tensor_batches(*data.train, batch_size=32, seed=seed, device=device)",
         "    return (b for _, b in zip(range(5), tensor_batches(*data.train, batch_size=32, seed=seed, device=device)))",
         "batches(data, seed, device) ran out after 5 batches: it must yield batches without end"),
    ],
    ids=["build-returns-the-model", "space-is-a-list", "train-step-returns-none", "batches-run-out"],
)
def test_a_script_breaking_the_protocol_in_a_trial_stops_the_worker_in_one_line(tmp_path, capsys, old, new, message):
    """Found only when a trial runs it, a broken protocol is still bad input: that trial fails with the
    reason, and the worker stops at once (exit 2, one line), trying no other trial."""
    assert old in MINIMAL
    script = tmp_path / "mine.py"
    script.write_text(MINIMAL.replace(old, new))
    url = f"sqlite:///{tmp_path}/study.db"
    assert main(["worker", str(script), "--storage", url, "--study", "s", "--n-trials", "4", *HEARTBEAT, "-q"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0] == f"budgetopt: error: mine: {message}" + error[0].split(message, 1)[1]
    trials = load(url, "s").trials
    assert [t.state for t in trials] == [TrialState.FAIL]
    assert trials[0].user_attrs[ATTR_ENDED].startswith(f"failed: mine: {message}")


def test_launch_exits_2_when_every_worker_met_bad_input(tmp_path, capsys):
    script = tmp_path / "mine.py"
    script.write_text(MINIMAL.replace("    return loss", "    return None"))
    url = f"sqlite:///{tmp_path}/study.db"
    assert main(["launch", str(script), "--storage", url, "--study", "s", "--n-trials", "4", "--workers", "2",
                 *HEARTBEAT, "-q"]) == 2
    assert "workers failed" not in capsys.readouterr().err


def test_a_warning_is_one_line_said_once(tmp_path, capsys):
    script = tmp_path / "uneven.py"
    script.write_text(MINIMAL.replace("ladder = (3, 9, 3)", "ladder = (3, 10, 3)"))
    url = f"sqlite:///{tmp_path}/study.db"
    assert main(["worker", str(script), "--storage", url, "--study", "s", "--n-trials", "1", *HEARTBEAT, "-q"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [line for line in err if line.startswith("budgetopt: warning: Ladder(3, 10, 3) has rungs 3, 9, 10")]
    assert len(err) == 1


def test_bad_input_that_depends_on_a_trials_parameters_fails_that_trial_only(tmp_path):
    """Not a protocol break: BudgetedRun(warmup=...) refusing one drawn warmup fails that trial,
    and the worker goes on to the next (the repeated-error rule decides, as for any error)."""
    from budgetopt.errors import InputError
    from budgetopt.workers import StudyBudget, run_worker

    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/study.db", study_name="s", direction="maximize")

    def objective(trial):
        if trial.number == 0:
            raise InputError("warmup must be smaller than the first budget, got 20")
        return 0.5

    report = run_worker(study, objective, StudyBudget(n_trials=3), say=lambda message: None)
    assert (report.failed, report.complete) == (1, 2)
    assert study.trials[0].user_attrs[ATTR_ENDED].startswith("failed: InputError: warmup must be smaller")
