"""The comparison harness end to end on digits (seconds), its numbers, and its bad inputs."""

from __future__ import annotations

import json
import math
import textwrap

import numpy as np
import optuna
import pytest
from scipy import stats

from budgetopt import compare as compare_module
from budgetopt.compare import (
    FILES,
    METHODS,
    anytime_curve,
    bootstrap_spearman,
    compute_to_reach,
    compare,
    demo_plan,
    interval95,
    mean_curve,
    rank_fidelity,
    render_report,
    targets,
)
from budgetopt.study_script import load_study_script
from test_cli import one_line_error, run_main

RUNGS = (3, 9, 27, 81)  # digits' quick ladder
COMPUTE = 3 * 81
# The most one trial can spend: restart mode through every rung.
LARGEST_TRIAL = sum(RUNGS)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Every method, two seeds, a pool of 6, on digits' quick ladder: (results, out)."""
    out = tmp_path_factory.mktemp("compare") / "digits"
    results = compare("digits", quick=True, seeds=2, pool=6, compute=COMPUTE, out=out, progress=False)
    return results, out


# -- end to end ----------------------------------------------------------------------------


def test_compare_writes_report_json_plots_and_studies(run):
    results, out = run
    for name in FILES.values():
        assert (out / name).is_file(), name
    for name in ("accuracy_vs_compute", "rank_fidelity", "lr_traces"):
        assert (out / FILES[name]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no temporary files, no units of an unfinished run


def test_report_is_rendered_from_the_json(run):
    results, out = run
    on_disk = json.loads((out / FILES["results"]).read_text())
    report = (out / FILES["report"]).read_text()
    assert report == render_report(on_disk)
    assert report.splitlines()[3] == on_disk["command"]  # the exact command, at the top
    assert on_disk["command"].startswith("budgetopt compare digits --quick --seeds 2 --compute 243 --pool 6")
    for method, summary in on_disk["summary"]["methods"].items():
        assert f"| {method} | {summary['test_mean']:.4f}" in report


def test_refresh_recomputes_the_same_numbers_from_the_json(run):
    results, out = run
    report = (out / FILES["report"]).read_text()
    again = compare_module.refresh(out)
    assert json.dumps(again, sort_keys=True) == json.dumps(json.loads(json.dumps(results)), sort_keys=True)
    assert (out / FILES["report"]).read_text() == report


def test_every_method_spends_the_compute_within_one_trial(run):
    results, _ = run
    assert list(results["searches"]) == list(METHODS)
    for method, search in results["searches"].items():
        assert [r["seed"] for r in search["runs"]] == [0, 1]
        for r in search["runs"]:
            last = r["trial_records"][-1]["compute"]
            assert COMPUTE <= r["compute"] < COMPUTE + LARGEST_TRIAL, (method, r["compute"])
            assert r["compute"] - last < COMPUTE  # the last trial was started before C was spent
            assert r["compute"] == sum(t["compute"] for t in r["trial_records"])


def test_each_search_picks_its_best_full_budget_trial_with_its_test_score(run):
    results, _ = run
    for method, search in results["searches"].items():
        for r in search["runs"]:
            complete = [t for t in r["trial_records"] if t["state"] == "complete"]
            best = max(complete, key=lambda t: t["value"])
            assert r["picked"]["number"] == best["number"], method
            assert 0.0 <= r["picked"]["test_value"] <= 1.0
            assert r["curve"][-1][1] == r["picked"]["test_value"]
            assert all(t["rung_values"].get("81") is not None for t in complete)  # reached the full budget


def test_studies_db_holds_one_study_per_method_and_seed_with_the_dashboard_figures(run):
    results, out = run
    storage = optuna.storages.RDBStorage(f"sqlite:///{out / FILES['studies']}")
    names = sorted(s.study_name for s in storage.get_all_studies())
    assert names == sorted(f"{m}-seed{s}" for m in METHODS for s in (0, 1))
    sha = optuna.load_study(study_name="sha-seed0", storage=storage)
    assert {t.user_attrs["budgetopt.mode"] for t in sha.trials} == {"continue"}
    assert {tuple(t.user_attrs["budgetopt.plan"]) for t in sha.trials} == {RUNGS}
    assert all(t.user_attrs["budgetopt.profile"] == "step" for t in sha.trials)
    restart = optuna.load_study(study_name="restart-seed1", storage=storage)
    assert {t.user_attrs["budgetopt.mode"] for t in restart.trials} == {"restart"}
    assert len(restart.trials) == results["searches"]["restart"]["runs"][1]["trials"]
    random_search = optuna.load_study(study_name="random-seed0", storage=storage)
    assert {tuple(t.user_attrs["budgetopt.plan"]) for t in random_search.trials} == {(81,)}
    attrs = storage.get_study_system_attrs(restart._study_id)
    assert any(k.startswith("dashboard:plot_data:budgetopt-comparison") for k in attrs)
    assert any(k.startswith("dashboard:note_str") for k in attrs)
    storage.engine.dispose()


def test_rank_fidelity_reuses_restart_as_truth_seed_zero_and_stays_in_range(run):
    results, _ = run
    fidelity = results["rank_fidelity"]
    assert len(fidelity["configs"]) == 6
    for config in fidelity["configs"]:
        assert len(config["truth_values"]) == 2
        restart = config["modes"]["restart"]
        if restart["diverged"] is None:
            assert config["truth_values"][0] == restart["rung_values"]["81"]
        assert set(config["truth_runs"]) == {"1"}  # only seed 1 trained apart
    for mode in ("restart", "branch", "continue"):
        m = fidelity["modes"][mode]
        assert set(m["rungs"]) == {str(b) for b in RUNGS}
        for rung in m["rungs"].values():
            for key in ("spearman_all", "spearman_trains"):
                assert rung[key] is None or -1.0 <= rung[key] <= 1.0
            assert rung["regret_kept"] is None or 0.0 <= rung["regret_kept"] <= rung["regret_pick"]
    assert fidelity["modes"]["restart"]["compute_per_config"] == sum(RUNGS)
    assert fidelity["modes"]["continue"]["compute_per_config"] == RUNGS[-1]
    assert fidelity["modes"]["branch"]["compute_per_config"] < sum(RUNGS)
    assert {t["target"].split(" ")[0] for t in results["targets"]} >= {"restart", "branch"}


def test_lr_traces_follow_each_mode(run):
    results, _ = run
    traces = results["rank_fidelity"]["lr_traces"]
    peak = traces["peak_lr"]
    restart, cont = traces["modes"]["restart"], traces["modes"]["continue"]
    assert [r[2] for r in restart["reports"]] == list(RUNGS)
    assert all(r[1] == 0.0 for r in restart["reports"])  # linear decay reaches zero at each rung
    assert cont["reports"][0][1] == pytest.approx(peak)  # continue reports its first rung at the peak rate
    assert restart["compute"][-1] == sum(RUNGS)


def test_test_score_differences_with_sha_get_a_paired_interval_over_seeds(run):
    results, _ = run
    methods = results["summary"]["methods"]
    for row in results["targets"]:
        method = row["target"].split(":")[0]
        if "at least sha's (difference)" in row["target"]:
            diffs = [a - b for a, b in zip(methods[method]["test_values"], methods["sha"]["test_values"])]
            mean, half = interval95(diffs)
            assert row["value"] == pytest.approx(mean)
            assert row["interval"] == pytest.approx([mean - half, mean + half])


# -- the numbers ---------------------------------------------------------------------------


def records(*rows):
    return [dict(number=i, compute=c, value=v, test_value=t) for i, (c, v, t) in enumerate(rows)]


def test_anytime_curve_follows_the_best_validation_value():
    rows = records((10, None, None), (30, 0.5, 0.4), (10, None, None), (30, 0.7, 0.6), (30, 0.6, 0.9))
    assert anytime_curve(rows, "maximize") == [[40, 0.4, 0.5, 1], [50, 0.4, 0.5, 1], [80, 0.6, 0.7, 3], [110, 0.6, 0.7, 3]]
    assert anytime_curve(rows, "minimize")[-1] == [110, 0.4, 0.5, 1]


def test_mean_curve_starts_when_every_seed_has_a_pick_and_compute_to_reach_reads_it():
    curves = [[[10, 0.5, 0, 0], [30, 0.9, 0, 1]], [[20, 0.7, 0, 0]]]
    assert mean_curve(curves) == [[20, 0.6], [30, 0.8]]
    assert compute_to_reach([[20, 0.6], [30, 0.8]], 0.75, "maximize") == 30
    assert compute_to_reach([[20, 0.6], [30, 0.8]], 0.85, "maximize") is None
    assert compute_to_reach([[20, 0.6]], None, "maximize") is None


def test_interval95_uses_the_t_distribution():
    mean, half = interval95([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-6)  # t(0.975, 2) * sd / sqrt(n)
    assert interval95([0.5]) == (0.5, None)


def pool(rung_scores: dict[str, list], truth: list[list]):
    configs = []
    for i, t in enumerate(truth):
        modes = {}
        for mode, scores in rung_scores.items():
            values = {str(b): s[i] for b, s in zip((1, 3), scores) if s[i] is not None}
            modes[mode] = {"rung_values": values, "diverged": None if len(values) == 2 else "diverged", "compute": 4}
        configs.append({"params": {"lr": 0.1 * (i + 1)}, "modes": modes, "truth_values": t})
    return configs


def test_rank_fidelity_separates_configurations_that_train_from_diverged_ones():
    truth = [[0.9, 0.8], [0.7, 0.7], [0.5, 0.6], [0.3, 0.3], [None, None]]
    scores = {
        "restart": [[0.6, 0.5, 0.4, 0.3, None], [0.85, 0.7, 0.55, 0.3, None]],  # perfect order
        "branch": [[0.6, 0.5, 0.4, 0.3, None], [0.85, 0.7, 0.55, 0.3, None]],
        "continue": [[0.3, 0.4, 0.5, 0.6, None], [0.85, 0.7, 0.55, 0.3, None]],  # reversed at the first rung
    }
    f = rank_fidelity(pool(scores, truth), (1, 3), 2, "maximize", chance=0.1)
    assert f["trains"] == [True, True, True, True, False]
    assert f["threshold"] == pytest.approx(0.1 + 0.1 * (0.85 - 0.1))
    assert f["truth"][4] == pytest.approx(0.1)  # diverged: chance
    assert f["modes"]["restart"]["rungs"]["1"]["spearman_trains"] == pytest.approx(1.0)
    assert f["modes"]["continue"]["rungs"]["1"]["spearman_trains"] == pytest.approx(-1.0)
    # The diverged configuration sits at the bottom of both rankings: it helps every mode.
    assert f["modes"]["continue"]["rungs"]["1"]["spearman_all"] > -1.0
    assert f["modes"]["restart"]["rungs"]["1"]["regret_pick"] == 0.0
    assert f["modes"]["continue"]["rungs"]["1"]["regret_pick"] == pytest.approx(0.85 - 0.3)
    # It keeps its top 5 // 2 = 2 (truths 0.3 and 0.55).
    assert f["modes"]["continue"]["rungs"]["1"]["regret_kept"] == pytest.approx(0.85 - 0.55)
    assert f["modes"]["restart"]["diverged"] == 1
    assert f["truth_diverged"] == 2


def test_a_configuration_that_collapses_with_one_truth_seed_is_told_apart():
    truth = [[0.9, 0.8], [0.7, 0.7], [0.5, 0.6], [0.3, 0.3], [0.1, 0.85]]  # #4: collapsed with seed 0
    scores = {m: [[0.6, 0.5, 0.4, 0.3, 0.65], [0.85, 0.7, 0.55, 0.3, 0.8]] for m in ("restart", "branch", "continue")}
    f = rank_fidelity(pool(scores, truth), (1, 3), 2, "maximize", chance=0.1)
    assert f["trains"] == [True] * 5  # its mean, 0.475, is above the threshold
    assert f["every_seed_trains"] == [True, True, True, True, False]
    assert f["split_by_seed"] == [4]
    assert f["truth_at_chance"] == 1
    rung = f["modes"]["restart"]["rungs"]["1"]
    assert rung["spearman_every_seed_trains"] == pytest.approx(1.0)
    assert rung["spearman_trains"] < 0.9


def test_without_a_chance_level_diverged_runs_rank_last_and_do_not_train():
    truth = [[0.9, None], [0.7, 0.7], [0.5, 0.6], [0.3, 0.3]]
    scores = {m: [[0.6, 0.5, 0.4, 0.3], [0.85, 0.7, 0.55, 0.3]] for m in ("restart", "branch", "continue")}
    f = rank_fidelity(pool(scores, truth), (1, 3), 2, "maximize", chance=None)
    assert f["trains"] == [False, True, True, True]
    assert f["truth"][0] is None
    assert f["modes"]["restart"]["rungs"]["3"]["regret_pick"] is None  # picked a configuration that diverged once


def test_bootstrap_intervals_are_the_percentiles_of_scipys_spearman_on_the_same_resamples():
    rng = np.random.default_rng(7)
    truth = list(rng.normal(size=12).round(1))  # ties on purpose
    scores = {"restart": list(truth + rng.normal(scale=0.3, size=12)), "continue": list(rng.normal(size=12).round(1))}
    scores["continue"][3] = -math.inf  # a run that diverged: ties below the rest
    subset = [i for i in range(12) if i != 5]
    boot = bootstrap_spearman(scores, truth, subset, seed=3)
    idx = np.random.default_rng(3).integers(0, len(subset), size=(compare_module.BOOTSTRAP_RESAMPLES, len(subset)))

    def slow(values):
        floor = compare_module._finite_floor
        xs, ys = np.array(floor([values[i] for i in subset])), np.array(floor([truth[i] for i in subset]))
        return np.array([stats.spearmanr(xs[row], ys[row]).statistic for row in idx])

    restart, cont = slow(scores["restart"]), slow(scores["continue"])
    ok = np.isfinite(restart - cont)
    assert boot["spearman"]["restart"] == pytest.approx(np.percentile(restart[np.isfinite(restart)], [2.5, 97.5]))
    assert boot["difference"]["restart-continue"] == pytest.approx(np.percentile((restart - cont)[ok], [2.5, 97.5]))
    assert boot["configs"] == 11 and "branch-restart" not in boot["difference"]


def test_a_perfect_ranking_has_a_point_interval_and_the_targets_carry_the_intervals():
    truth = [[0.9, 0.9], [0.8, 0.8], [0.7, 0.7], [0.6, 0.6], [0.5, 0.5]]
    perfect, reversed_ = [0.5, 0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4, 0.5]
    scores = {"restart": [perfect, perfect], "branch": [perfect, perfect], "continue": [reversed_, perfect]}
    f = rank_fidelity(pool(scores, truth), (1, 3), 2, "maximize", chance=0.1)
    assert f["bootstrap"]["spearman"]["restart"] == [1.0, 1.0]
    assert f["bootstrap"]["difference"] == {"restart-continue": [2.0, 2.0], "branch-restart": [0.0, 0.0]}
    rows = targets({"rank_fidelity": f, "ladder": {"rungs": [1, 3]}, "direction": "maximize", "score": "accuracy"})
    assert [r.get("interval") for r in rows] == [[1.0, 1.0], [2.0, 2.0], [0.0, 0.0], None]  # the last: branch compute
    assert rows[1]["value"] == pytest.approx(2.0) and rows[1]["met"]


# -- resume, processes, demo ----------------------------------------------------------------


def test_resume_reuses_the_units_of_an_interrupted_run(tmp_path, monkeypatch):
    settings = dict(quick=True, seeds=1, pool=3, truth_seeds=1, compute=81, methods=["random"], out=tmp_path, progress=False)
    monkeypatch.setattr(compare_module._UnitCache, "clear", lambda self: None)  # as if interrupted after the units
    first = compare("digits", **settings)
    assert len(list((tmp_path / ".units").glob("*.pkl"))) == 3 * 3 + 1  # 3 configurations x 3 modes, 1 search

    def no_training(*args):
        raise AssertionError("a unit ran again")

    monkeypatch.setattr(compare_module, "_run_unit", no_training)
    again = compare("digits", resume=True, **settings)
    for key in ("summary", "rank_fidelity", "targets"):
        assert again[key] == first[key]


def without_times(value):
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if "seconds" not in k}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def test_worker_processes_give_the_same_numbers(tmp_path):
    settings = dict(quick=True, seeds=1, pool=3, truth_seeds=2, compute=81, methods=["sha", "restart"], progress=False)
    one = compare("digits", out=tmp_path / "one", **settings)
    two = compare("digits", out=tmp_path / "two", jobs=2, **settings)
    assert two["machine"]["jobs"] == 2
    for key in ("summary", "rank_fidelity", "targets"):
        assert without_times(two[key]) == without_times(one[key])


def test_demo_runs_its_code_path_on_a_tiny_setting(tmp_path, monkeypatch, capsys):
    tiny = dict(quick=True, seeds=2, pool=3, truth_seeds=1, compute=81, jobs=1)
    monkeypatch.setitem(compare_module.DEMO_SETTINGS, "digits", tiny)
    status, out, err = run_main(capsys, "demo", "--digits", "--out", str(tmp_path / "demo"))
    assert status == 0, err
    assert "using scikit-learn's digits" in err
    assert out.splitlines()[2].split() == ["method", "test", "accuracy", "compute", "Spearman", "@", "3", "it."]
    assert "sha " in out and "restart " in out
    assert f"dashboard: budgetopt dashboard sqlite:///{tmp_path / 'demo' / 'studies.db'}" in out
    assert (tmp_path / "demo" / "report.md").is_file()


def test_a_demo_that_fails_at_its_report_resumes_without_training_again(tmp_path, monkeypatch, capsys):
    tiny = dict(quick=True, seeds=1, pool=3, truth_seeds=1, compute=27, jobs=1, methods=["sha"])
    monkeypatch.setitem(compare_module.DEMO_SETTINGS, "digits", tiny)
    out = str(tmp_path / "demo")
    assemble = compare_module._assemble

    def broken(*args):
        raise ImportError("cannot import name 'X'")

    monkeypatch.setattr(compare_module, "_assemble", broken)
    status, _, err = run_main(capsys, "demo", "--digits", "--out", out, "--quiet")
    assert status == 1
    one_line_error(err, "no report written", "ImportError", "--resume reuses them")

    def no_training(*args):
        raise AssertionError("a unit ran again")

    monkeypatch.setattr(compare_module, "_assemble", assemble)
    monkeypatch.setattr(compare_module, "_run_unit", no_training)
    status, stdout, err = run_main(capsys, "demo", "--digits", "--out", out, "--quiet", "--resume")
    assert status == 0, err
    assert "sha " in stdout and (tmp_path / "demo" / "report.md").is_file()


def test_demo_falls_back_to_digits_without_fashion_mnist(monkeypatch, tmp_path):
    import budgetopt.data

    def missing(data_dir=None, download=True):
        raise FileNotFoundError("Fashion-MNIST not found in /nowhere and the download failed")

    monkeypatch.setattr(budgetopt.data, "find_fashion_mnist", missing)
    plan = demo_plan()
    assert plan.study == "digits"
    assert "Fashion-MNIST is not available" in plan.reason
    with pytest.raises(FileNotFoundError, match="does not exist"):
        demo_plan(tmp_path / "missing")


def test_demo_uses_fashion_mnist_when_it_is_on_the_machine():
    from budgetopt.data import DEBIAN_FASHION_MNIST

    if not DEBIAN_FASHION_MNIST.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    plan = demo_plan(download=False)
    assert plan.study == "fashion_mnist"
    assert load_study_script("fashion_mnist").ladder_for(plan.settings["quick"]).rungs == (9, 27, 81, 243)


# -- bad input -----------------------------------------------------------------------------


def test_compare_cli_prints_the_short_table(tmp_path, capsys):
    status, out, err = run_main(
        capsys, "compare", "digits", "--quick", "--seeds", "1", "--pool", "3", "--truth-seeds", "1",
        "--compute", "81", "--methods", "random", "tpe", "--out", str(tmp_path), "--quiet",
    )
    assert status == 0, err
    assert err == ""
    assert "random" in out and "tpe" in out and "sha" not in out
    assert json.loads((tmp_path / "results.json").read_text())["settings"]["methods"] == ["random", "tpe"]


def test_compare_cli_with_methods_none_measures_only_rank_fidelity(tmp_path, capsys):
    status, out, err = run_main(
        capsys, "compare", "digits", "--quick", "--pool", "3", "--truth-seeds", "1", "--methods", "none",
        "--cooldown", "0.5", "--pool-seed", "3", "--out", str(tmp_path), "--quiet",
    )
    assert status == 0, err
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["summary"] is None and results["searches"] == {}
    assert "--methods none" in results["command"] and "--cooldown 0.5" in results["command"]
    assert "--seeds" not in results["command"] and "--compute" not in results["command"]  # no searches
    # Branch runs cool down over half of each rung: the last rung plus the others' cooldowns.
    assert results["settings"]["cooldown"] == 0.5 and "--pool-seed 3" in results["command"]
    assert [c["params"] for c in results["rank_fidelity"]["configs"]] == compare_module.sample_pool(load_study_script("digits"), 3, 3)
    branch = results["rank_fidelity"]["modes"]["branch"]["compute_per_config"]
    assert branch == RUNGS[-1] + sum(max(1, round(0.5 * b)) for b in RUNGS[:-1])
    assert "mode" in out and "restart" in out
    assert "## Rank fidelity" in (tmp_path / "report.md").read_text()
    assert not (tmp_path / "studies.db").exists() and "dashboard:" not in out


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["nope"], ["unknown study 'nope'", "digits"]),
        (["digits", "--compute", "2"], ["compute 2 is smaller than one lowest rung", "10"]),
        (["digits", "--methods", "sha,asha"], ["method must be one of", "'asha'"]),
        (["digits", "--seeds", "0"], ["seeds must be an integer >= 1"]),
        (["digits", "--pool", "2"], ["pool must be 0", "at least 3"]),
        (["fashion_mnist", "--data-dir", "/no/such/dir"], ["data directory /no/such/dir does not exist"]),
        (["digits", "--device", "tpu"], ["--device must be cpu, cuda"]),
        (["digits", "--cooldown", "0"], ["cooldown must be in (0, 1]", "0.0"]),
        (["digits", "--pool-seed", "-1"], ["pool_seed must be an integer >= 0", "-1"]),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, argv, fragments):
    out = tmp_path / "out"
    status, stdout, err = run_main(capsys, "compare", *argv, "--out", str(out), "--quiet")
    assert status == 2
    one_line_error(err, *fragments)
    assert not (out / "report.md").exists()


def test_a_study_file_that_breaks_the_protocol_is_one_line(tmp_path, capsys):
    script = tmp_path / "broken.py"
    script.write_text("direction = 'maximize'\nladder = (3, 27, 3)\n")
    status, _, err = run_main(capsys, "compare", str(script), "--out", str(tmp_path / "out"))
    assert status == 2
    one_line_error(err, "does not follow the protocol", "search_space")


def test_an_output_directory_that_cannot_be_written_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    status, _, err = run_main(capsys, "compare", "digits", "--out", str(blocker / "out"), "--quiet")
    assert status == 2
    one_line_error(err, f"output directory {blocker / 'out'} cannot be written")


def test_a_run_that_fails_mid_way_leaves_no_report(tmp_path, capsys):
    script = tmp_path / "fails.py"
    script.write_text(textwrap.dedent("""
        from budgetopt.studies.digits import *  # noqa: F401,F403
        from budgetopt.studies import digits

        direction, ladder, chance = "maximize", (3, 27, 3), 0.1
        calls = []

        def train_step(model, optimizer, batch, params):
            calls.append(1)
            if len(calls) > 100:
                raise RuntimeError("the GPU fell off the bus")
            return digits.train_step(model, optimizer, batch, params)
    """))
    out = tmp_path / "out"
    status, _, err = run_main(capsys, "compare", str(script), "--pool", "3", "--truth-seeds", "1", "--seeds", "1",
                              "--compute", "27", "--out", str(out), "--quiet")
    assert status == 1
    one_line_error(err, "the comparison failed, no report written", "the GPU fell off the bus")
    assert not (out / "report.md").exists() and not (out / "results.json").exists()
