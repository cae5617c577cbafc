"""studies/schedules_table.py in --quick mode: the table, its Markdown and its JSON agree."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "studies" / "schedules_table.py"


@pytest.fixture(scope="module")
def schedules_table():
    spec = importlib.util.spec_from_file_location("schedules_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_run(schedules_table, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    assert schedules_table.main(["--quick", "--out", str(out)]) == 0
    table = json.loads((out / "schedules_table_quick.json").read_text())
    markdown = (out / "schedules_table_quick.md").read_text()
    return table, markdown


def test_quick_table_has_every_profile_at_every_budget(schedules_table, quick_run):
    table, _ = quick_run
    assert table["study"] == "digits" and table["budgets"] == [9, 45, 90] and table["seeds"] == [0, 1]
    assert table["rows"] == [*schedules_table.PROFILES, schedules_table.TRUNCATED_STEP]
    assert len(table["runs"]) == len(table["rows"]) * len(table["seeds"])
    for row in table["rows"]:
        for budget in table["budgets"]:
            cell = table["cells"][row][str(budget)]
            assert len(cell["values"]) == 2 and cell["std"] is not None
            assert 0 <= cell["mean"] <= 1


def test_budget_aware_rows_pay_every_budget_and_the_truncated_row_one(quick_run):
    table, _ = quick_run
    for run in table["runs"]:
        assert run["compute"] == (90 if run["mode"] == "continue" else 9 + 45 + 90)


def test_truncated_step_at_full_budget_is_the_step_run(schedules_table, quick_run):
    # Restart mode restarts weights and batch order, so the step row's full-budget run and
    # the truncated row's single run are the same run.
    table, _ = quick_run
    cells = table["cells"]
    assert cells["step"]["90"]["values"] == cells[schedules_table.TRUNCATED_STEP]["90"]["values"]


def test_markdown_starts_with_the_command_and_shows_the_json_means(quick_run):
    table, markdown = quick_run
    assert markdown.splitlines()[2] == f"Command: `{table['command']}`"
    assert table["command"].startswith("python studies/schedules_table.py --quick")
    for row in table["rows"]:
        line = next(line for line in markdown.splitlines() if line.startswith(f"| {row} |"))
        for budget in table["budgets"]:
            cell = table["cells"][row][str(budget)]
            assert f"{cell['mean']:.4f} ± {cell['std']:.4f}" in line


def test_bad_study_is_one_line_error_and_no_report(schedules_table, tmp_path, capsys):
    assert schedules_table.main(["--study", "nope", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("schedules_table: error: unknown study 'nope'") and error.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
