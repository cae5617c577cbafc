"""`budgetopt worker` processes sharing one study: PostgreSQL (with workers killed) and a journal file."""

from __future__ import annotations

import collections
import os
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from optuna.trial import TrialState

from budgetopt.attrs import ATTR_COMPUTE, ATTR_RESUMED, ATTR_SNAPSHOT, ATTR_WORKER, fresh_trial_count, retried_numbers
from budgetopt.pruners import ATTR_BRACKET, ATTR_DECISIONS

from scripts.synthetic_study import StepCounter, score
from test_multiprocess import check_study_is_consistent
from worker_processes import HEARTBEAT, load, read_log, start_worker, stderr_of, wait_all, wait_until


def check_decisions_respect_history(trials) -> None:
    """The pruner's written guarantee, checked against the storage's history: a trial's
    decision at a rung saw at least every value of a trial that had finished before the
    deciding trial started (written before its own report), and ranked its value among
    them; it saw no more values than the rung ever had."""
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    for t in finished:
        for budget, (rank, seen, _) in t.user_attrs.get(ATTR_DECISIONS, {}).items():
            key = (t.user_attrs[ATTR_BRACKET], int(budget))
            before = [
                u.intermediate_values[key[1]]
                for u in finished
                if u.number != t.number and u.datetime_complete < t.datetime_start
                and (u.user_attrs[ATTR_BRACKET], key[1]) == key and key[1] in u.intermediate_values
            ]
            everything = [u for u in trials if u.number != t.number and key[1] in u.intermediate_values
                          and u.user_attrs.get(ATTR_BRACKET) == key[0]]
            value = t.intermediate_values[key[1]]
            assert len(before) + 1 <= seen <= len(everything) + 1, (t.number, budget)
            assert rank - 1 >= sum(v > value for v in before), (t.number, budget)  # maximize


pytestmark = pytest.mark.usefixtures("no_process_left")


@pytest.mark.long
@pytest.mark.parametrize("backend", ["postgresql", "journal"])
def test_eight_workers_share_one_study_without_losing_or_duplicating_trials(request, tmp_path, backend):
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else str(tmp_path / "study.log")
    n_trials, log, gate = 40, tmp_path / "trials.log", tmp_path / "go"
    env = {"SYNTHETIC_LOG": str(log), "SYNTHETIC_GATE": str(gate), "SYNTHETIC_STEP_SECONDS": "0.005"}
    snapshots = str(tmp_path / "snapshots")
    workers = [
        start_worker(url, "shared", "--n-trials", str(n_trials), *HEARTBEAT, "--snapshots", snapshots, cwd=tmp_path, env=env)
        for _ in range(8)
    ]
    # Hold each worker at its first trial until all eight have one: from then on they race.
    assert wait_until(lambda: len({pid for _, pid in read_log(log)}) == 8, timeout=240), [stderr_of(w) for w in workers]
    gate.touch()
    assert wait_all(workers, timeout=180) == [0] * 8, [stderr_of(w)[-300:] for w in workers]

    study = load(url, "shared")
    check_study_is_consistent(study, n_trials)
    trials = study.get_trials()
    check_decisions_respect_history(trials)
    ran = collections.Counter(number for number, _ in read_log(log))
    assert ran == collections.Counter(range(n_trials))  # every trial run once, by one worker
    pids = dict(read_log(log))
    assert all(t.user_attrs[ATTR_WORKER]["pid"] == pids[t.number] for t in trials)
    assert len({t.user_attrs[ATTR_WORKER]["pid"] for t in trials}) == 8
    assert os.listdir(tmp_path / "snapshots") == []  # every finished trial's snapshot removed


@pytest.mark.long
def test_killed_workers_trials_resume_from_their_last_rung_snapshot(postgres_url, tmp_path):
    """SIGKILL workers in the middle of segments; restart them; the study still ends with
    every trial it asked for, and each killed trial went on from its last rung."""
    n_trials, kills_wanted, log = 30, 7, tmp_path / "trials.log"
    snapshots = tmp_path / "snapshots"
    options = ("--n-trials", str(n_trials), *HEARTBEAT, "--snapshots", str(snapshots))
    env = {"SYNTHETIC_LOG": str(log), "SYNTHETIC_STEP_SECONDS": "0.1"}
    workers = [start_worker(postgres_url, "kills", *options, cwd=tmp_path, env=env) for _ in range(4)]
    study = None
    rng = random.Random(0)
    kills = []  # (trial number, pid)
    deadline = time.monotonic() + 150
    while len(kills) < kills_wanted and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.2, 0.8))
        if study is None:
            try:
                study = load(postgres_url, "kills")
            except KeyError:  # not created yet
                continue
        alive = {w.pid: w for w in workers if w.poll() is None}
        running = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                   if t.user_attrs.get(ATTR_WORKER, {}).get("pid") in alive]
        if not running:
            continue
        # Mostly a trial past its first rung, so that most retries have a snapshot to resume;
        # the first three kills wait for one (on a loaded machine most running trials can
        # be fresh starts, and the test must see resumes from snapshots).
        past_a_rung = [t for t in running if ATTR_SNAPSHOT in t.user_attrs]
        if not past_a_rung and len(kills) < 3:
            continue
        victim = rng.choice(past_a_rung if past_a_rung and rng.random() < 0.8 else running)
        pid = victim.user_attrs[ATTR_WORKER]["pid"]
        os.kill(pid, signal.SIGKILL)
        kills.append((victim.number, pid))
        workers.append(start_worker(postgres_url, "kills", *options, cwd=tmp_path, env=env))
    assert len(kills) == kills_wanted, f"the study ended after {len(kills)} kills"
    statuses = wait_all(workers, timeout=180)
    killed_pids = {pid for _, pid in kills}
    survivors = [code for w, code in zip(workers, statuses) if w.pid not in killed_pids]
    assert all(code == 0 for code in survivors), [stderr_of(w)[-300:] for w in workers]

    trials = study.get_trials()
    by_number = {t.number: t for t in trials}
    failed = {t.number for t in trials if t.state == TrialState.FAIL}
    retried = retried_numbers(trials)
    killed = failed & {number for number, _ in kills}  # kills that hit a running trial, not one just ending
    late = failed - killed  # failed by a worker that found their heartbeat late: a stalled, living worker
    assert len(killed) >= 5, (kills, sorted(failed))
    assert failed == retried  # every killed trial was retried ...
    assert fresh_trial_count(trials) == n_trials  # ... and the retries are not new trials
    assert len(trials) == n_trials + len(failed)
    finals = [t for t in trials if t.number not in retried]
    assert len(finals) == n_trials and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in finals)

    resumed_from_snapshot = 0
    for final in finals:
        # Every completed rung value is there once, and is the value of that budget.
        plan = final.user_attrs["budgetopt.plan"]
        reached = sorted(final.intermediate_values)
        assert reached == plan[: len(reached)]
        assert final.intermediate_values == {b: score(final.params, b) for b in reached}
        assert final.user_attrs["budgetopt.rung_values"] == {str(b): v for b, v in final.intermediate_values.items()}
        chain = [by_number[n] for n in final.system_attrs.get("retry_history", [])]
        compute = final.user_attrs[ATTR_COMPUTE]
        if not chain:  # not a retry
            assert ATTR_RESUMED not in final.user_attrs and compute == sum(reached)
            continue
        if not any("budgetopt.plan" in attempt.user_attrs for attempt in chain):  # no attempt began training
            # a retry all the same: it says so, with nothing lost and nothing to resume from
            assert final.user_attrs[ATTR_RESUMED] == {"from_trial": chain[0].number, "budget": None, "lost_compute": 0}
            assert compute == sum(reached)
            continue
        # The retry went on from the last attempt's last rung snapshot, counting the lost work.
        resumed, snapshot = final.user_attrs[ATTR_RESUMED], chain[-1].user_attrs.get(ATTR_SNAPSHOT)
        assert resumed["from_trial"] == chain[0].number and resumed["lost_compute"] >= 0
        if snapshot is None:
            assert resumed["budget"] is None and compute == resumed["lost_compute"] + sum(reached)
            continue
        resumed_from_snapshot += 1
        done = [b for b in plan if b <= snapshot["budget"]]
        assert resumed["budget"] == snapshot["budget"] and snapshot["compute"] >= sum(done)
        # Restart mode: only the budgets after the snapshot's were trained again.
        assert compute == snapshot["compute"] + resumed["lost_compute"] + sum(b for b in reached if b > snapshot["budget"])
    assert resumed_from_snapshot >= 1
    # Keep-last: no snapshot outlives its trial, except one a kill cut short while writing.
    assert len(os.listdir(snapshots)) <= len(kills)
    print(f"kills: {len(kills)}, trials failed by a kill: {len(killed)}, by a late heartbeat: {len(late)}, "
          f"retried: {len(retried)}, resumed from a rung snapshot: {resumed_from_snapshot}, "
          f"trials lost: {n_trials - len(finals)}, snapshots left: {len(os.listdir(snapshots))}")


@pytest.mark.long
def test_kept_models_are_exactly_the_frontiers_after_workers_are_killed_mid_upload(postgres_url, tmp_path):
    """Four workers with --keep-models 1 on PostgreSQL; workers SIGKILLed after a kept
    model was named and before it was written. At the end the model store holds exactly
    the frontier's models (none orphaned, none missing), each that budget's annealed model."""
    from optuna.artifacts import FileSystemArtifactStore

    import budgetopt
    from budgetopt.attrs import ATTR_KEPT_MODELS

    models = tmp_path / "models"
    options = ("--n-trials", "16", *HEARTBEAT, "--snapshots", str(tmp_path / "snapshots"),
               "--keep-models", "1", "--models", str(models))
    env = {"SYNTHETIC_STEP_SECONDS": "0.02", "SYNTHETIC_SAVE_SECONDS": "0.4"}
    workers = [start_worker(postgres_url, "keep", *options, cwd=tmp_path, env=env) for _ in range(4)]
    study, kills, deadline = None, [], time.monotonic() + 120
    while len(kills) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        if study is None:
            try:
                study = load(postgres_url, "keep")
            except KeyError:  # not created yet
                continue
        alive = {w.pid for w in workers if w.poll() is None}
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            pid = t.user_attrs.get(ATTR_WORKER, {}).get("pid")
            named = (t.user_attrs.get(ATTR_KEPT_MODELS) or {}).values()
            if pid in alive and any(not (models / name).exists() for name in named):  # named, not yet written
                os.kill(pid, signal.SIGKILL)
                kills.append((t.number, pid))
                workers.append(start_worker(postgres_url, "keep", *options, cwd=tmp_path, env=env))
                break
    assert len(kills) == 2, f"the study ended after {len(kills)} kills mid-upload"
    wait_all(workers, timeout=180)
    trials = study.get_trials()
    assert retried_numbers(trials) >= {number for number, _ in kills}  # the killed trials were retried
    front = budgetopt.frontier(study)
    by_number = {t.number: t for t in trials}
    named = {
        row.budget: by_number[row.trial].user_attrs[ATTR_KEPT_MODELS][str(row.budget)] for row in front if row.trial is not None
    }
    assert set(os.listdir(models)) == set(named.values())  # none orphaned, none missing
    store = FileSystemArtifactStore(str(models))
    for budget in named:
        row = front.row(budget)
        model = StepCounter(row.params)
        assert budgetopt.load_model(study, budget, model, store) == row.trial
        assert int(model.steps) == budget  # the model of that budget (restart: trained from the start to it)
        assert score(row.params, int(model.steps)) == row.value  # reproduces the reported value exactly
    print(f"kills mid-upload: {len(kills)}, kept models: {len(named)}")


def test_workers_opening_a_fresh_database_at_once_all_get_in(postgres_url):
    """Optuna creates its tables when a storage is opened: on a fresh database, workers
    starting at the same instant collide there ("relation ... already exists")."""
    from budgetopt.storage import open_shared_storage

    barrier = threading.Barrier(6)

    def open_at_once(_):
        barrier.wait()
        return open_shared_storage(postgres_url, {})

    with ThreadPoolExecutor(6) as pool:
        storages = list(pool.map(open_at_once, range(6)))
    assert all(s.get_all_studies() == [] for s in storages)
