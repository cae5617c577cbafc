"""studies/results_table.py --tail: failed searches, the mean without them, the sign test."""

import importlib.util
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "studies" / "results_table.py"
spec = importlib.util.spec_from_file_location("results_table", SCRIPT)
results_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(results_table)


def _results() -> dict:
    # Ten paired repeats: the method is lower than the baseline in 8, higher in 1 (one
    # failed search at 0.8), tied in 1; the baseline fails in two repeats.
    base = [0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.8, 0.8]
    other = [0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.8, 0.01, 0.8]
    counts = {"regret_lower_than_baseline_in": 8, "regret_higher_than_baseline_in": 1}  # as the simulator stores them
    return {
        "settings": {"baseline": "base"},
        "searches": {
            "methods": {"base": {}, "other": {}},
            "caps": {"729": {"full_budgets": 1.0, "methods": {"base": {"regret": base}, "other": {"regret": other, **counts}}}},
        },
    }


def test_tail_rows_count_failed_searches_and_apply_the_sign_test():
    rows = results_table.tail_rows(_results(), 0.3)
    base, other = rows[2], rows[3]
    assert base.split(" | ")[2:4] == ["2 of 10", "0.0200"]
    cells = other.strip("| ").split(" | ")
    assert cells[2:5] == ["2 of 10", "0.0100", "8 / 1"]
    # exact two-sided binomial test of 8 of 9: p = 2 * (9 + 1) / 2**9
    assert float(cells[5]) == round(20 / 512, 3)


def test_a_tail_that_is_not_a_positive_regret_is_one_line_and_exit_2(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--tail", "0"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "--tail must be a regret above 0, got 0.0" in out.stderr
    assert "Traceback" not in out.stderr


def test_truth_gives_every_regret_column_under_another_final_schedule():
    results = _results()
    cap = results["searches"]["caps"]["729"]
    cap["methods"]["base"] |= {"regret_summary": {"mean": 0.176}}
    cap["methods"]["other"] |= {"regret_summary": {"mean": 0.168}}
    cosine_base, cosine_other = [0.03] * 10, [0.01] * 10
    cap["methods"]["base"]["by_truth"] = {"continue_cosine": {"regret": cosine_base, "regret_summary": {"mean": 0.03}}}
    cap["methods"]["other"]["by_truth"] = {
        "continue_cosine": {"regret": cosine_other, "regret_summary": {"mean": 0.01},
                            "regret_minus_baseline": {"mean": -0.02, "low": -0.02, "high": -0.02}},
    }
    results["settings"]["rungs"] = [729]
    results["table"] = {"configs_complete": 2}
    linear = results_table.rows(results, False, against="base")[1]
    cosine = results_table.rows(results, False, against="base", truth="continue_cosine")[1]
    assert "0.1680" in linear and "-0.0080" in linear  # the paired mean of other - base, linear truth
    assert cosine.split(" | ")[3:] == ["0.0100", "-0.0200 (-0.0200 to -0.0200)", "-0.0200 (-0.0200 to -0.0200) |"]
