"""A table built by many workers through an Optuna storage (budgetopt.bench.workers):
the same rows as a local build, a worker SIGKILLed mid-unit loses nothing and
duplicates nothing, a changed study script is refused, an incomplete export says what
is missing. PostgreSQL where the issue asks for many workers; SQLite elsewhere."""

from __future__ import annotations

import csv
import io
import json
import shutil
import signal
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from budgetopt.attrs import ATTR_UNIT, ATTR_UNIT_ROWS, ATTR_WORKER
from budgetopt.bench.build import build_table
from budgetopt.bench.workers import build_status, enqueue_build, export_build, run_build_worker
from budgetopt.cli import main

from worker_processes import no_process_left, start  # noqa: F401  (a fixture)

BUILD = dict(configs=3, seeds=1, kinds=["restart", "branch"], ladder="quick")
HEARTBEAT = ["--heartbeat", "1", "--grace-period", "3"]


def _rows(directory: Path) -> list[list[str]]:
    """table.csv's header and rows without the wall seconds, the rows sorted (a local
    build writes units as they finish)."""
    rows = list(csv.reader(io.StringIO((directory / "table.csv").read_text())))
    seconds = rows[0].index("seconds")
    cut = [row[:seconds] + row[seconds + 1 :] for row in rows]
    return [cut[0], *sorted(cut[1:])]


@pytest.fixture(scope="module")
def local_table(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "table"
    build_table("digits", out, **BUILD, jobs=1, progress=False)
    return out


def _worker(url: str, study: str, cwd: Path, *options: str):
    return start(
        [sys.executable, "-m", "budgetopt", "bench", "worker", "--storage", url, "--study", study, *HEARTBEAT, *options], cwd
    )


def _wait(processes, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    for process in processes:
        process.wait(timeout=max(1, deadline - time.monotonic()))
        assert process.returncode == 0, Path(process.stderr_path).read_text()


@pytest.mark.long
@pytest.mark.usefixtures("no_process_left")
def test_three_workers_on_postgresql_build_the_local_table_row_for_row(postgres_url, local_table, tmp_path):
    storage = optuna.storages.RDBStorage(postgres_url)
    plan = enqueue_build(storage, "t", "digits", **BUILD)
    assert len(plan.units) == 6 and not plan.finished
    _wait([_worker(postgres_url, "t", tmp_path) for _ in range(3)])
    study = optuna.load_study(study_name="t", storage=storage)
    status = build_status(study)
    assert (status.done, status.running, status.queued, status.failed, status.duplicates) == (6, 0, 0, 0, 0)
    assert all(t.state == TrialState.COMPLETE and ATTR_WORKER in t.user_attrs for t in study.trials)
    out = export_build(study, tmp_path / "exported", url=postgres_url)
    assert _rows(out) == _rows(local_table)
    meta, local_meta = json.loads((out / "meta.json").read_text()), json.loads((local_table / "meta.json").read_text())
    for key in ("study", "script_sha256", "ladder", "space", "pool", "seeds", "kinds", "cooldown", "data", "complete"):
        assert meta[key] == local_meta[key], key
    assert meta["exported_from"] == {"storage": postgres_url.replace("budgetopt-secret", "***"), "study": "t"}
    # the exported table is a table: simulate reads it
    assert (
        main(
            [
                "bench",
                "simulate",
                str(out),
                "--methods",
                "restart,branch",
                "--baseline",
                "restart",
                "--compute",
                "2",
                "--repeats",
                "2",
                "--pool-bootstrap",
                "0",
                "--out",
                str(tmp_path / "sim"),
                "-q",
            ]
        )
        == 0
    )


@pytest.mark.long
@pytest.mark.usefixtures("no_process_left")
def test_a_worker_sigkilled_mid_unit_loses_nothing_and_duplicates_nothing(postgres_url, local_table, tmp_path):
    storage = optuna.storages.RDBStorage(postgres_url)
    enqueue_build(storage, "t", "digits", **BUILD)
    study = optuna.load_study(study_name="t", storage=storage)
    victim = _worker(postgres_url, "t", tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # its first unit is running, its heartbeat recorded
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if any(ATTR_WORKER in t.user_attrs for t in running):
            break
        time.sleep(0.02)
    else:
        pytest.fail("the worker never started a unit: " + Path(victim.stderr_path).read_text())
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    killed = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    assert len(killed) == 1  # it died mid-unit
    _wait([_worker(postgres_url, "t", tmp_path)])
    trials = study.get_trials(deepcopy=False)
    assert trials[killed[0].number].state == TrialState.FAIL  # failed as stale, then retried
    status = build_status(study)
    assert (status.done, status.missing, status.duplicates, status.running, status.queued) == (6, 0, 0, 0, 0)
    units = [json.dumps(t.user_attrs[ATTR_UNIT], sort_keys=True) for t in trials if t.state == TrialState.COMPLETE]
    assert len(units) == len(set(units)) == 6
    assert _rows(export_build(study, tmp_path / "exported")) == _rows(local_table)


def test_a_worker_with_an_edited_study_script_is_refused_in_one_line(tmp_path, capsys):
    script = tmp_path / "my_digits.py"
    shutil.copy(Path(__import__("budgetopt.studies.digits").studies.digits.__file__), script)
    url = f"sqlite:///{tmp_path / 'b.db'}"
    assert (
        main(
            [
                "bench",
                "build",
                str(script),
                "--configs",
                "2",
                "--seeds",
                "1",
                "--kinds",
                "restart",
                "--ladder",
                "quick",
                "--storage",
                url,
                "--study",
                "t",
                "-q",
            ]
        )
        == 0
    )
    script.write_text(script.read_text() + "\n# edited after the build\n")
    capsys.readouterr()
    assert main(["bench", "worker", "--storage", url, "--study", "t", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "differs from the build's" in err[0] and "SHA-256" in err[0], err
    study = optuna.load_study(study_name="t", storage=url)
    assert study.trials == [] and build_status(study).queued == 2  # nothing was taken


def test_an_incomplete_export_refuses_without_partial_and_counts_the_missing_units(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'b.db'}"
    common = ["--seeds", "1", "--kinds", "restart,branch", "--ladder", "quick", "--storage", url, "--study", "t", "-q"]
    assert main(["bench", "build", "digits", "--configs", "2", *common]) == 0
    study = optuna.load_study(study_name="t", storage=url)
    run_build_worker(study, say=lambda m: None)
    assert main(["bench", "build", "digits", "--configs", "3", *common, "--resume"]) == 0  # the pool grows: 2 more units
    capsys.readouterr()
    out = tmp_path / "table"
    assert main(["bench", "export", "--storage", url, "--study", "t", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 of 6 units are not trained yet" in err[0] and "--partial" in err[0], err
    assert not out.exists()
    assert main(["bench", "export", "--storage", url, "--study", "t", "--out", str(out), "--partial"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert (meta["units_complete"], meta["configs_complete"], meta["complete"]) == (4, 2, False)
    assert main(["bench", "status", "--storage", url, "--study", "t"]) == 0
    assert "4 of 6 units trained, 0 running (0 worker(s)), 2 queued, 0 failed" in capsys.readouterr().out
    run_build_worker(study, say=lambda m: None)
    assert main(["bench", "export", "--storage", url, "--study", "t", "--out", str(out)]) == 0  # replaces its own export
    assert json.loads((out / "meta.json").read_text())["complete"] is True


def test_a_failed_unit_is_reported_and_queued_again_by_resume(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'b.db'}"
    storage = optuna.storages.RDBStorage(url)
    enqueue_build(storage, "t", "digits", configs=1, seeds=1, kinds=["restart"], ladder="quick")
    study = optuna.load_study(study_name="t", storage=storage)
    import budgetopt.bench.workers as bench_workers

    def broken(spec, unit, params):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(bench_workers, "train_unit", broken)
    run_build_worker(study, say=lambda m: None)
    status = build_status(study)
    assert (status.done, status.failed, status.queued) == (0, 1, 0)
    assert "out of memory" in status.errors[0]
    monkeypatch.undo()
    plan = enqueue_build(storage, "t", "digits", configs=1, seeds=1, kinds=["restart"], ladder="quick", resume=True)
    assert not plan.finished and build_status(study).queued == 1
    run_build_worker(study, say=lambda m: None)
    assert build_status(study).done == 1


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--configs", "2", "--storage", "sqlite:///{db}"], "both --storage URL and --study NAME"),
        (["--configs", "2", "--storage", "sqlite:///{db}", "--study", "t", "--out", "x"], "choose one"),
        (["--configs", "2", "--storage", "sqlite:///{db}", "--study", "t", "--jobs", "2"], "--jobs 2: with --storage"),
        (["--configs", "2"], "needs --out DIR"),
    ],
)
def test_build_by_workers_bad_input_is_one_line_exit_2(tmp_path, capsys, argv, fragment):
    argv = [a.replace("{db}", str(tmp_path / "b.db")) for a in argv]
    assert main(["bench", "build", "digits", "--ladder", "quick", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err


def test_a_second_build_into_the_same_study_needs_resume_and_the_same_build(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'b.db'}"
    common = ["--seeds", "1", "--kinds", "restart", "--ladder", "quick", "--storage", url, "--study", "t", "-q"]
    assert main(["bench", "build", "digits", "--configs", "2", *common]) == 0
    capsys.readouterr()
    assert main(["bench", "build", "digits", "--configs", "2", *common]) == 2
    assert "already holds a build: pass --resume" in capsys.readouterr().err
    assert main(["bench", "build", "digits", "--configs", "2", *common, "--resume", "--pool-seed", "1"]) == 2
    assert "holds a different build (pool_seed" in capsys.readouterr().err
    assert main(["bench", "build", "digits", "--configs", "2", *common, "--resume"]) == 0  # the same queue again
    study = optuna.load_study(study_name="t", storage=url)
    assert study.trials == [] and build_status(study).queued == 2
    assert main(["bench", "worker", "--storage", url, "--study", "nope", "-q"]) == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.long
def test_a_worker_with_two_processes_trains_every_unit_once(tmp_path, local_table, capsys):
    url = f"sqlite:///{tmp_path / 'b.db'}"
    storage = optuna.storages.RDBStorage(url)
    enqueue_build(storage, "t", "digits", **BUILD)
    assert main(["bench", "worker", "--storage", url, "--study", "t", "--jobs", "2", *HEARTBEAT, "-q"]) == 0
    assert "worker done: 6 unit(s) trained, 0 failed" in capsys.readouterr().out
    study = optuna.load_study(study_name="t", storage=storage)
    assert _rows(export_build(study, tmp_path / "exported")) == _rows(local_table)


def test_a_unit_trained_twice_is_exported_once_and_counted(tmp_path):
    """A worker that died after recording its unit but before counting it hands the
    unit out again: the export keeps the first trial's rows, the status counts the other."""
    url = f"sqlite:///{tmp_path / 'b.db'}"
    storage = optuna.storages.RDBStorage(url)
    enqueue_build(storage, "t", "digits", configs=1, seeds=1, kinds=["restart"], ladder="quick")
    study = optuna.load_study(study_name="t", storage=storage)
    run_build_worker(study, say=lambda m: None)
    first = study.trials[0]
    twin = optuna.trial.create_trial(
        state=TrialState.COMPLETE, value=1.0, user_attrs={**first.user_attrs, ATTR_UNIT_ROWS: "garbage\n"}
    )
    study.add_trial(twin)
    status = build_status(study)
    assert (status.done, status.duplicates) == (1, 1) and "trained twice" in status.text("t")
    out = export_build(study, tmp_path / "exported")
    assert "garbage" not in (out / "table.csv").read_text()


def test_a_worker_elsewhere_is_told_to_give_the_recorded_relative_script_with_script(tmp_path, monkeypatch):
    from budgetopt.bench.workers import checked_spec
    from budgetopt.study_script import StudyScriptError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(StudyScriptError, match=r"recorded it as 'my_study\.py' .*--script PATH"):
        checked_spec({"script": "my_study.py"}, device="cpu")
