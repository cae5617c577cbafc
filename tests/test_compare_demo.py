"""``budgetopt compare`` (a small table, then simulated searches) and ``budgetopt demo``."""

import json
import sqlite3

import optuna
import pytest

from budgetopt.bench.demo import STUDY_NAME, committed_table
from budgetopt.bench.table import read_meta, read_table
from budgetopt.frontier import frontier

from conftest import require
from test_cli import one_line_error, run_main

COMPARE = [
    "compare",
    "digits",
    "--configs",
    "4",
    "--ladder",
    "quick",
    "--repeats",
    "5",
    "--compute",
    "3",
    "--methods",
    "sha_step,restart,branch",
    "--pool-bootstrap",
    "0",
    "-q",
]


@pytest.mark.long  # builds and simulates a table end to end, 10 s: run by CI with -m long
def test_compare_builds_a_table_then_simulates_and_resume_reuses_every_unit(capsys, tmp_path):
    out = tmp_path / "cmp"
    status, stdout, err = run_main(capsys, *COMPARE, "--out", str(out))
    assert status == 0, err
    assert "5 paired searches per method of 3 full budgets on 4 configurations" in stdout
    table = read_table(out / "table")
    assert table.done.all() and len(table.pool) == 4
    results = json.loads((out / "results.json").read_text())
    assert results["command"].startswith("budgetopt compare digits --configs 4")
    assert set(results["searches"]["caps"]["243"]["methods"]) == {"sha_step", "restart", "branch"}
    before = (out / "table" / "table.csv").read_text()
    status, again, err = run_main(capsys, *COMPARE, "--out", str(out), "--resume")
    assert status == 0, err
    assert (out / "table" / "table.csv").read_text() == before  # nothing trained twice
    assert json.loads((out / "results.json").read_text())["searches"] == results["searches"]


def test_compare_bad_input(capsys, tmp_path):
    status, _, err = run_main(capsys, "compare", "nonexistent_study", "--out", str(tmp_path / "x"), "-q")
    assert status == 2
    one_line_error(err, "unknown study 'nonexistent_study'")
    status, _, err = run_main(capsys, *COMPARE[:-1], "--compute", "0.02", "--out", str(tmp_path / "y"), "-q")
    assert status == 2
    one_line_error(err, "below one lowest rung")
    assert not (tmp_path / "y" / "table" / "table.csv").exists()  # refused before any unit was trained


def test_demo_runs_a_live_study_and_replays_the_committed_table(capsys, tmp_path):
    require(committed_table().joinpath("meta.json").is_file(), f"the committed table {committed_table()} is missing")
    out = tmp_path / "demo"
    status, stdout, err = run_main(capsys, "demo", "--digits", "--repeats", "6", "--jobs", "1", "--out", str(out), "-q")
    assert status == 0, err
    assert f"Live study '{STUDY_NAME}' (digits)" in stdout
    assert "Replayed on the committed table" in stdout
    assert "Frontier of study" in stdout and ("training 2x longer than" in stdout or "no prediction for longer" in stdout)
    methods = ["sha_cosine@random", "restart@random", "branch_cooldown0.5@random", "sha_cosine", "restart"]
    if "cosine_cooldown0.5" in read_meta(committed_table())["kinds"]:
        methods.append("sha_cooldown0.5@random")
    for method in methods:
        assert f"\n{method} " in stdout
    like = stdout.index("Like with like")
    assert "at 10 full budgets (selection regret: linear truth" in stdout[like:]  # a sentence per method, every truth
    assert stdout.index("`restart@random`", like) < stdout.index("What the sampler changes")
    assert "- `sha_cosine` against `sha_cosine@random` (the sampler alone" in stdout
    assert "- `restart` against `restart@random` (the sampler alone" in stdout
    assert "Regret per budget" in stdout
    assert "Not a verdict on samplers" in stdout
    assert f"dashboard: budgetopt dashboard sqlite:///{out / 'studies.db'}" in stdout
    study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{out / 'studies.db'}")
    rows = frontier(study)
    assert rows.budgets == tuple(sorted(rows.budgets)) and len(rows)
    assert all(0 <= r.value <= 1 for r in rows if r.value is not None)
    assert (out / "simulation" / "report.md").is_file()
    with sqlite3.connect(out / "studies.db") as db:  # budgetopt's user attrs are there for the dashboard
        keys = {k for (k,) in db.execute("select distinct key from trial_user_attributes")}
    assert {"budgetopt.plan", "budgetopt.rung_values", "budgetopt.compute"} <= keys


def test_demo_names_a_table_that_is_not_there(capsys, tmp_path):
    status, _, err = run_main(capsys, "demo", "--table", str(tmp_path / "none"), "--out", str(tmp_path / "d"), "-q")
    assert status == 2
    one_line_error(err, "holds no benchmark table")


def test_the_demo_replays_branch_with_the_default_cooldown():
    from budgetopt.bench.demo import BRANCH, COOLED, DEMO_METHODS, demo_methods
    from budgetopt.modes import COOLDOWN

    assert BRANCH == f"branch_cooldown{COOLDOWN:g}" and f"{BRANCH}@random" in DEMO_METHODS
    # a table built with cooldown 0.2 that has a kind with the default and the cooled kind: every method
    meta = {"cooldown": 0.2, "kinds": ["restart", "branch", BRANCH, f"cosine_cooldown{COOLDOWN:g}"]}
    assert demo_methods(meta) == list(DEMO_METHODS)
    # a table built with the default cooldown: its own branch kind; one without that kind: branch; no cooled kind: no sha_cooldown
    for meta in ({"cooldown": COOLDOWN, "kinds": ["restart", "branch"]}, {"cooldown": 0.2, "kinds": ["restart", "branch"]}):
        assert demo_methods(meta) == [m.replace(BRANCH, "branch") for m in DEMO_METHODS if not m.startswith(COOLED)]
