"""The bench engine on digits: a real table built in seconds, read back with the csv
module, resumed after SIGKILL, and replayed with every method."""

import csv
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

from budgetopt.attrs import ATTR_COMPUTE, ATTR_PLAN, ATTR_SCHEDULE
from budgetopt.bench.build import build_table
from budgetopt.bench.records import FORMAT, Interval, read_results, schema_problems
from budgetopt.bench.replay import simulate
from budgetopt.bench.report import render
from budgetopt.bench.results import Scorer, truth_kinds
from budgetopt.bench.simulate import BUILTIN, PoolLookup, resolve_method, run_search
from budgetopt.bench.table import COLUMNS, TableError, read_meta, read_table
from budgetopt.cli import main
from budgetopt.errors import InputError
from budgetopt.modes import COOLDOWN
from budgetopt.modes import compute as mode_compute
from budgetopt.pruners import BudgetPruner

from test_cli import one_line_error, run_main

ROOT = Path(__file__).resolve().parents[1]
KINDS = ["restart", "branch", "continue_step", "continue_cosine", "restart_beta0.5", "cosine_cooldown0.5"]
CONFIGS, SEEDS = 5, 2


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "digits"
    build_table("digits", out, configs=CONFIGS, seeds=SEEDS, kinds=KINDS, ladder="quick", jobs=2, progress=False)
    return out


def _rows(path: Path) -> list[dict]:
    with (path / "table.csv").open(newline="") as f:
        return list(csv.DictReader(f))


# -- the table ----------------------------------------------------------------------------------


def test_table_reads_back_with_the_csv_module_one_row_per_config_seed_kind_rung(table_dir):
    meta = json.loads((table_dir / "meta.json").read_text())
    rows = _rows(table_dir)
    rungs = meta["ladder"]["rungs"]
    assert rungs == [3, 9, 27, 81]
    assert len(rows) == CONFIGS * SEEDS * len(KINDS) * len(rungs)
    assert list(rows[0])[: len(COLUMNS)] == list(COLUMNS)
    assert {(int(r["config"]), int(r["seed"]), r["kind"], int(r["budget"])) for r in rows} == {
        (c, s, k, b) for c in range(CONFIGS) for s in range(SEEDS) for k in KINDS for b in rungs
    }
    assert meta["complete"] is True and meta["configs_complete"] == CONFIGS
    assert meta["seeds"] == [0, 1] and meta["kinds"] == KINDS
    assert set(meta["cost_seconds"]) == {*KINDS, "all_kinds"} and all(v > 0 for v in meta["cost_seconds"].values())
    for key in ("budgetopt", "torch", "optuna", "python"):
        assert meta["versions"][key]
    # every parameter column holds the pool's configuration
    for r in rows:
        params = meta["pool"][int(r["config"])]
        assert {k[len("param_") :]: v for k, v in r.items() if k.startswith("param_")} == {
            k: repr(v) if isinstance(v, float) else str(v) for k, v in params.items()
        }


def test_table_compute_is_what_each_mode_executes(table_dir):
    meta = json.loads((table_dir / "meta.json").read_text())
    rungs = meta["ladder"]["rungs"]
    for r in _rows(table_dir):
        if r["diverged"]:
            continue
        k = rungs.index(int(r["budget"]))
        if r["kind"].startswith("cosine_cooldown"):  # the cosine run plus the cooldowns branched before this rung
            cooldowns = sum(max(1, round(0.5 * b)) for b in rungs[:-1] if b - max(1, round(0.5 * b)) < rungs[k])
            assert int(r["compute"]) == rungs[k] + cooldowns, r
            continue
        mode = "continue" if r["kind"].startswith("continue") else "restart" if r["kind"].startswith("restart") else "branch"
        assert int(r["compute"]) == mode_compute(mode, rungs, k, meta["cooldown"]), r


def test_test_value_only_on_the_last_rung_and_truth_is_restart_mean_over_seeds(table_dir):
    rows = _rows(table_dir)
    assert all(r["test_value"] == "" for r in rows if r["budget"] != "81")
    table = read_table(table_dir)
    truth = table.truth()
    for c in range(CONFIGS):
        tests = [
            float(r["test_value"]) if r["test_value"] else 0.1
            for r in rows
            if r["kind"] == "restart" and r["budget"] == "81" and int(r["config"]) == c
        ]
        assert truth[c] == pytest.approx(np.mean(tests))


def test_restart_rung_equals_a_fresh_run_of_that_budget(table_dir):
    from budgetopt.study_script import train_config

    table = read_table(table_dir)
    params = table.pool[1]
    fresh = train_config("digits", params, [27], "restart", 1, test=False)
    k = table.kind_index("restart")
    assert fresh.rung_values[27] == table.value[1, 1, k, 2]


def test_horizon_scaled_kind_differs_from_restart_below_the_full_budget_only(table_dir):
    table = read_table(table_dir)
    r, b = table.kind_index("restart"), table.kind_index("restart_beta0.5")
    np.testing.assert_array_equal(table.value[:, :, r, -1], table.value[:, :, b, -1])
    assert not np.array_equal(table.value[:, :, r, 0], table.value[:, :, b, 0])


def test_pool_is_quasi_random_reproducible_and_a_prefix_of_a_larger_draw(table_dir):
    from budgetopt.bench.table import sample_pool
    from budgetopt.study_script import load_study_script

    script = load_study_script("digits")
    small, _ = sample_pool(script, 5, seed=0)
    large, _ = sample_pool(script, 9, seed=0)
    assert small == large[:5] == read_table(table_dir).pool
    assert sample_pool(script, 5, seed=1)[0] != small


def _build_command(out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "budgetopt",
        "bench",
        "build",
        "digits",
        "--configs",
        "3",
        "--seeds",
        "2",
        "--ladder",
        "quick",
        "--kinds",
        "restart,continue_step",
        "--out",
        str(out),
        "-q",
    ]


@pytest.mark.long  # worker processes, killed: over ten seconds
def test_build_killed_with_sigkill_and_resumed_equals_an_uninterrupted_build(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert main(_build_command(whole)[3:]) == 0
    process = subprocess.Popen(_build_command(killed), cwd=ROOT)
    deadline = time.monotonic() + 240
    table = killed / "table.csv"
    while time.monotonic() < deadline:  # wait until some, not all, units are written
        if table.is_file() and table.read_text().count("\n") >= 1 + 2 * 4:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = table.read_text().count("\n") - 1
    assert 0 < written < 12 * 4, written
    # a SIGKILL inside a write leaves a cut line: simulate the worst case too
    with table.open("a") as f:
        f.write("2,0,restart,3,0.5")
    subprocess.run([*_build_command(killed), "--resume"], check=True, cwd=ROOT, timeout=300)

    def key(rows):
        return sorted(tuple(v for k, v in r.items() if k != "seconds") for r in rows)

    assert key(_rows(killed)) == key(_rows(whole))
    assert json.loads((killed / "meta.json").read_text())["complete"] is True


def test_resume_grows_the_pool_and_keeps_the_units(tmp_path):
    out = tmp_path / "t"
    common = dict(seeds=1, kinds=["restart"], ladder="quick", progress=False)
    build_table("digits", out, configs=2, **common)
    before = (out / "table.csv").read_text()
    build_table("digits", out, configs=3, resume=True, **common)
    after = (out / "table.csv").read_text()
    assert after.startswith(before)
    assert read_table(out).done.all() and len(read_table(out).pool) == 3


def test_a_branch_kind_with_a_sqrt_cooldown_is_its_own_truth_at_branchs_compute(tmp_path):
    out = tmp_path / "t"
    build_table(
        "digits",
        out,
        configs=2,
        seeds=1,
        ladder="quick",
        progress=False,
        cooldown=0.5,
        kinds=["restart", "branch", "branch_cooldown0.5_sqrt"],
    )
    table = read_table(out)
    b, s = table.kind_index("branch"), table.kind_index("branch_cooldown0.5_sqrt")
    np.testing.assert_array_equal(table.compute[:, :, s], table.compute[:, :, b])  # the shape costs nothing
    assert not np.array_equal(table.value[:, :, s], table.value[:, :, b])  # but trains another model
    assert truth_kinds(table) == ["restart", "branch", "branch_cooldown0.5_sqrt"]


def test_resume_grows_the_kinds_with_a_branch_of_another_cooldown(tmp_path, capsys, monkeypatch):
    out = tmp_path / "t"
    common = dict(configs=2, seeds=1, ladder="quick", progress=False)
    build_table("digits", out, kinds=["restart", "branch"], cooldown=0.2, **common)
    before = (out / "table.csv").read_text()
    # without a cooldown, the resume keeps the table's (0.2), not the library's default
    build_table("digits", out, kinds=["branch_cooldown0.5", "restart", "branch"], resume=True, **common)
    after = (out / "table.csv").read_text()
    assert (out / "table.csv").read_text().startswith(before)  # the first build's rows untouched
    table = read_table(out)  # checks every rung's compute against its kind's cooldown
    assert list(table.kinds) == ["restart", "branch", "branch_cooldown0.5"] and table.done.all()
    assert table.meta["cooldown"] == 0.2 and table.meta["complete"] is True
    b, c = table.kind_index("branch"), table.kind_index("branch_cooldown0.5")
    assert list(table.compute[0, 0, c]) == [mode_compute("branch", table.rungs, r, 0.5) for r in range(len(table.rungs))]
    assert (table.compute[0, 0, c, 1:] > table.compute[0, 0, b, 1:]).all()  # a longer cooldown costs more
    assert not np.array_equal(table.value[:, :, b], table.value[:, :, c])
    # a simulated search charges the kind's own cooldown
    # a choice per configuration deploys each configuration's own kind
    width = table.pool[0]["width"]
    chosen = table.full_budget_scores(f"branch_cooldown0.5[width={width}]", split="val")
    for config in range(2):
        own = "branch_cooldown0.5" if table.pool[config]["width"] == width else "branch"
        np.testing.assert_array_equal(chosen[config], table.full_budget_scores(own, split="val")[config])
    studies = _capture_studies(monkeypatch)
    run_search(table, resolve_method("branch_cooldown0.5@random", table), 0, 10**6, PoolLookup(table, np.arange(2)))
    first = studies[0].trials[0]
    assert first.user_attrs[ATTR_SCHEDULE]["cooldown"] == 0.5
    reached = sorted(first.intermediate_values)
    plan = first.user_attrs[ATTR_PLAN]
    assert first.user_attrs[ATTR_COMPUTE] == mode_compute("branch", plan, plan.index(reached[-1]), 0.5)
    # a resume without --kinds keeps the table's kinds and trains nothing; it keeps the cost and finish time
    meta = json.loads((out / "meta.json").read_text())
    status, _, err = run_main(
        capsys, "bench", "build", "digits", "--configs", "2", "--seeds", "1", "--ladder", "quick", "--out", str(out),
        "--resume", "-q",
    )
    assert status == 0 and (out / "table.csv").read_text() == after
    again = json.loads((out / "meta.json").read_text())
    assert again["kinds"] == meta["kinds"] and again["cost_seconds"] == meta["cost_seconds"]
    assert again["finished"] == meta["finished"] and again["complete"] is True
    # a resume cannot drop a kind
    status, _, err = run_main(
        capsys, "bench", "build", "digits", "--configs", "2", "--seeds", "1", "--ladder", "quick",
        "--kinds", "restart,branch", "--out", str(out), "--resume", "-q",
    )
    assert status == 2
    one_line_error(err, "branch_cooldown0.5", "lacks")


def test_a_kind_for_some_configurations_reads_it_there_and_the_plain_kind_elsewhere(table_dir, monkeypatch):
    table = read_table(table_dir)
    method = resolve_method("restart_beta0.5[width=8]@random", table)
    assert method.sampler == "random" and method.kind == "restart_beta0.5[width=8]"
    studies = _capture_studies(monkeypatch)
    lookup = PoolLookup(table, table.complete_configs)
    result = run_search(table, method, 3, 10**6, lookup)
    beta, plain = table.kind_index("restart_beta0.5"), table.kind_index("restart")
    read = set()
    for trial, (config, seed) in zip(studies[0].trials, result.landed, strict=True):
        assert trial.params == table.pool[config]
        k = beta if table.pool[config]["width"] == 8 else plain
        assert trial.intermediate_values == {
            b: table.value[config, seed, k, table.rungs.index(b)] for b in trial.intermediate_values
        }
        assert trial.user_attrs[ATTR_SCHEDULE]["horizon_exponent"] == (0.5 if k == beta else 0.0)
        read.add(k)
    assert read == {beta, plain}  # both kinds were read in this search
    # the full budget is unchanged by horizon scaling: deployed like restart
    np.testing.assert_array_equal(table.full_budget_scores(method.deploy_kind), table.full_budget_scores("restart"))


@pytest.mark.parametrize(
    "name, fragments",
    [
        ("restart_beta0.5[depth=3]", ["no parameter 'depth'", "width"]),
        ("restart_beta0.5[width=64]", ["no configuration has width=64", "8, 16, 32"]),
        ("continue_cosine[width=8]", ["needs a restart_beta<b> or branch_cooldown<f> kind"]),
        ("restart_beta0.9[width=8]", ["no unit kind 'restart_beta0.9'"]),
        ("restart_beta0.5[width]", ["expected KIND[param=value]"]),
        ("restart_beta0.5[]", ["expected KIND[param=value]"]),
    ],
)
def test_a_bad_kind_choice_is_one_line_exit_2(capsys, table_dir, tmp_path, name, fragments):
    status, _, err = run_main(
        capsys, "bench", "simulate", str(table_dir), "--methods", name, "--out", str(tmp_path / "s"), "-q"
    )
    assert status == 2
    one_line_error(err, *fragments)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("name", ["branch_cooldown0", "branch_cooldown1.5", "branch_cooldown", "branch_c0.1"])
def test_a_bad_cooldown_kind_names_what_is_allowed(name):
    from budgetopt.bench.table import parse_kind

    with pytest.raises(ValueError, match=r"branch_cooldown<f> \(0 < f <= 1"):
        parse_kind(name)


@pytest.mark.parametrize(
    "name, canonical",
    [
        ("branch_cooldown0.50", "branch_cooldown0.5"),
        ("branch_cooldown1.0", "branch_cooldown1"),
        ("restart_beta0.30", "restart_beta0.3"),
    ],
)
def test_a_kind_has_one_spelling(name, canonical):
    from budgetopt.bench.table import parse_kind

    with pytest.raises(ValueError, match=f"write it {canonical}$"):
        parse_kind(name)
    assert parse_kind(canonical).name == canonical


# -- the simulator ------------------------------------------------------------------------------


def _quiet():
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def _capture_studies(monkeypatch) -> list:
    """The studies the simulator creates, in order (optuna.create_study wrapped)."""
    from budgetopt.bench import simulate as sim

    studies: list = []
    original = optuna.create_study
    monkeypatch.setattr(sim.optuna, "create_study", lambda **kw: studies.append(original(**kw)) or studies[-1])
    return studies


def test_every_method_regret_nonnegative_and_compute_never_above_the_cap(table_dir):
    _quiet()
    table = read_table(table_dir)
    lookup = PoolLookup(table, table.complete_configs)
    scorer = Scorer(table)
    names = [*BUILTIN, "restart_beta0.5", "restart@random", "sha_cosine@random", "sha_cosine@budget", "restart@tpe",
             "budgetopt.pruners:BudgetPruner@branch",
             "optuna.pruners:MedianPruner@continue_step"]
    for cap in (3, 81 * 4 + 7):
        for name in names:
            result = run_search(table, resolve_method(name, table), 0, cap, lookup)
            assert result.compute <= cap, (name, cap, result.compute)
            assert result.pick is not None or cap < 81
            if result.pick is not None:
                assert scorer.regret(result.pick, table.complete_configs) >= 0
            # the search goes on while the cheapest work a new trial can start still fits
            smallest = 81 if name in ("random", "tpe") else 3
            # ... or until the pool is used up (every configuration trained at every seed)
            assert cap - result.compute < smallest or result.exhausted_at == result.compute, (name, cap, result.compute)


def test_paired_repeats_identical_across_two_runs_and_seeds_paired_across_methods(table_dir):
    _quiet()
    table = read_table(table_dir)
    lookup = PoolLookup(table, table.complete_configs)
    for name in ("restart", "hyperband_step", "restart_hb"):
        a = run_search(table, resolve_method(name), 3, 800, lookup)
        b = run_search(table, resolve_method(name), 3, 800, lookup)
        assert (a.events, a.pick, a.compute, a.trials) == (b.events, b.pick, b.compute, b.trials), name
    c = run_search(table, resolve_method("restart"), 4, 800, lookup)
    assert (c.events, c.trials) != (a.events, a.trials)


def test_simulated_trials_train_pool_configurations_and_budget_sampler_fits_one_budget(table_dir, monkeypatch):
    """Every trial's parameters are a pool configuration's (the sampler's proposal moved
    there), and BudgetSampler sees the rung values a live BudgetedRun records."""
    _quiet()

    table = read_table(table_dir)
    lookup = PoolLookup(table, table.complete_configs)
    studies = _capture_studies(monkeypatch)
    run_search(table, resolve_method("restart"), 0, 81 * 30, lookup)
    trials = studies[0].get_trials()
    assert len(trials) == CONFIGS * SEEDS  # every (configuration, seed) once: then the pool is exhausted
    assert len({tuple(sorted(t.params.items())) for t in trials}) > 1
    assert all(t.params in table.pool for t in trials)
    fitted = [t.user_attrs.get("budgetopt.fit_budget") for t in trials]
    assert set(fitted) - {None} <= set(table.rungs) and any(fitted)
    assert all("budgetopt.rung_values" in t.user_attrs for t in trials if t.intermediate_values)


def test_sampler_suffix_swaps_only_the_sampler(table_dir, monkeypatch):
    """``sha_cosine@budget``: Optuna's successive halving on cosine values, with BudgetSampler,
    which fits one budget of those values; ``restart@tpe``: BudgetPruner with Optuna's TPE."""
    _quiet()
    from budgetopt.samplers import BudgetSampler

    table = read_table(table_dir)
    lookup = PoolLookup(table, table.complete_configs)
    studies = _capture_studies(monkeypatch)
    plain, swapped = resolve_method("sha_cosine"), resolve_method("sha_cosine@budget")
    assert (swapped.kind, swapped.pruner, swapped.deploy_kind) == (plain.kind, plain.pruner, plain.deploy_kind)
    assert swapped.sampler == "budget"
    run_search(table, swapped, 0, 81 * 20, lookup)
    assert isinstance(studies[-1].sampler.base, BudgetSampler)
    assert isinstance(studies[-1].pruner, optuna.pruners.SuccessiveHalvingPruner)
    fitted = {t.user_attrs.get("budgetopt.fit_budget") for t in studies[-1].get_trials()} - {None}
    assert fitted and fitted <= set(table.rungs)
    run_search(table, resolve_method("restart@tpe"), 0, 81 * 20, lookup)
    assert type(studies[-1].sampler.base) is optuna.samplers.TPESampler and isinstance(studies[-1].pruner, BudgetPruner)


def test_budget_pruner_decides_as_optunas_successive_halving_on_the_same_values():
    """The promotion rule of BudgetPruner (one bracket) is Optuna's SuccessiveHalvingPruner's,
    so a simulated budget-aware search differs from the baseline only in its values."""
    _quiet()
    rungs = (3, 9, 27, 81)
    rng = np.random.default_rng(0)
    values = rng.random((120, len(rungs)))
    decisions = {}
    for name, pruner in (
        ("optuna", optuna.pruners.SuccessiveHalvingPruner(min_resource=3, reduction_factor=3, min_early_stopping_rate=0)),
        ("budgetopt", BudgetPruner(3, 81, 3)),
    ):
        study = optuna.create_study(direction="maximize", pruner=pruner)
        made = []
        for n in range(len(values)):
            trial = study.ask()
            for k, budget in enumerate(rungs):
                trial.report(float(values[n, k]), budget)
                if budget == rungs[-1]:
                    study.tell(trial, float(values[n, k]))
                    made.append(budget)
                    break
                if trial.should_prune():
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    made.append(budget)
                    break
        decisions[name] = made
    assert decisions["optuna"] == decisions["budgetopt"]
    assert len(set(decisions["optuna"])) == len(rungs)  # every rung pruned some trials


def test_simulate_writes_report_results_and_plots_and_is_reproducible(table_dir, tmp_path):
    kwargs = dict(
        methods=["sha_step", "restart", "branch", "random"],
        compute="2,6",
        repeats=6,
        pool_bootstrap=2,
        bootstrap_repeats=3,
        fidelity_resamples=50,
        progress=False,
    )
    first = simulate(table_dir, tmp_path / "a", **kwargs)
    second = simulate(table_dir, tmp_path / "b", jobs=2, **kwargs)
    assert first["searches"] == second["searches"]
    assert schema_problems(first) == []  # every key and value as records.SimulationResults declares
    assert read_results(tmp_path / "a") == json.loads(json.dumps(first))  # written and read back through records
    for name in ("report.md", "results.json", "anytime.png", "rank_fidelity.png", "regret_distribution.png"):
        assert (tmp_path / "a" / name).stat().st_size > 0
    caps = first["searches"]["caps"]
    assert [c["iterations"] for c in caps.values()] == [162, 486]
    for cap in caps.values():
        for e in cap["methods"].values():
            assert len(e["regret"]) == 6 and all(r >= 0 for r in e["regret"])
            assert e["compute_summary"]["max"] <= cap["iterations"]
        assert "regret_minus_baseline" in cap["methods"]["restart"]
    fid = first["fidelity"]["subsets"]["all"]
    # restart's last rung against the other seed's truth: the seed-to-seed agreement of the truth itself
    assert -1 <= fid["rho"]["restart"][-1]["rho"] <= 1
    assert "restart - continue_step" in fid["differences"]
    report = (tmp_path / "a" / "report.md").read_text()
    assert report.startswith("# Simulated searches on `digits`")
    assert "## Rank fidelity" in report and "selection regret" in report


def test_the_default_methods_compare_like_with_like_against_successive_halving_on_cosine(table_dir, tmp_path):
    """By default every method has the same random sampler and the baseline is Optuna's successive
    halving on cosine; given methods without it, the baseline is the first of them."""
    results = simulate(table_dir, tmp_path / "d", compute="3", repeats=2, pool_bootstrap=0, fidelity_resamples=10,
                       progress=False)
    methods = results["searches"]["methods"]
    assert results["settings"]["baseline"] == "sha_cosine@random"
    for name in methods:
        assert resolve_method(name).sampler == "random", name
    assert set(methods) >= {"sha_cosine@random", "restart@random", "branch@random"}
    results = simulate(table_dir, tmp_path / "e", methods=["restart", "branch"], compute="3", repeats=2,
                       pool_bootstrap=0, fidelity_resamples=10, progress=False)
    assert results["settings"]["baseline"] == "restart"
    results = simulate(table_dir, tmp_path / "f", methods=["restart@random", "sha_cosine@random"], compute="3",
                       repeats=2, pool_bootstrap=0, fidelity_resamples=10, progress=False)
    assert results["settings"]["baseline"] == "sha_cosine@random"  # when listed, wherever


def test_a_resumed_simulation_runs_only_the_missing_searches_and_equals_an_uninterrupted_one(table_dir, tmp_path, monkeypatch):
    import budgetopt.bench.runner as runner

    kwargs = dict(methods=["sha_cosine", "restart"], compute="2", baseline="sha_cosine", pool_bootstrap=1,
                  bootstrap_repeats=2, fidelity_resamples=20, progress=False)
    whole = simulate(table_dir, tmp_path / "whole", repeats=4, **kwargs)
    journal = (tmp_path / "whole" / "searches.jsonl").read_text().splitlines()
    assert len(journal) == 1 + 2 * 4 + 2 * 2  # the header, then every search: 2 methods x 4 repeats, 2 x 2 bootstrap
    # a run killed after 5 searches, in the middle of writing its sixth, then resumed with more repeats
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "searches.jsonl").write_text("\n".join(journal[:6]) + "\n" + journal[6][:40])
    ran = []
    original = runner._search_task
    monkeypatch.setattr(runner, "_search_task", lambda *task: ran.append(task[:3]) or original(*task))
    resumed = simulate(table_dir, tmp_path / "cut", repeats=4, resume=True, **kwargs)
    assert len(ran) == 2 * 4 + 2 * 2 - 5  # the five finished searches were read, the cut-off one ran again
    assert resumed["searches"] == whole["searches"]
    assert (tmp_path / "cut" / "searches.jsonl").read_text().splitlines() == journal  # the cut-off line replaced
    ran.clear()
    grown = simulate(table_dir, tmp_path / "cut", repeats=6, resume=True, **kwargs)  # a resume may add repeats
    assert sorted(task[1] for task in ran) == [4, 4, 5, 5]
    assert grown["searches"]["caps"]["162"]["methods"]["restart"]["regret"][:4] == (
        whole["searches"]["caps"]["162"]["methods"]["restart"]["regret"]
    )
    with pytest.raises(ValueError, match="other configs than this run's"):
        simulate(table_dir, tmp_path / "cut", repeats=4, resume=True, pool="0:4", **kwargs)
    other = tmp_path / "other-table"  # the same pool, ladder and seeds, one value changed: another table
    shutil.copytree(table_dir, other)
    rows = (other / "table.csv").read_text().splitlines(keepends=True)
    rows[1] = rows[1].replace(",0.", ",0.0", 1)
    (other / "table.csv").write_text("".join(rows))
    with pytest.raises(ValueError, match=r"made on a table whose table.csv differs from this one's"):
        simulate(other, tmp_path / "cut", repeats=4, resume=True, **kwargs)
    ran.clear()
    simulate(table_dir, tmp_path / "cut", repeats=2, **kwargs)  # without --resume: a fresh journal
    assert len(ran) == 2 * 2 + 2 * 2


def test_every_committed_results_json_reads_back_conforms_to_the_schema_and_renders():
    files = sorted((ROOT / "studies" / "results").rglob("results.json"))
    simulations = [f for f in files if json.loads(f.read_text()).get("format") == FORMAT]
    assert len(simulations) >= 50
    for path in simulations:
        results = read_results(path)
        assert schema_problems(results) == [], path
        assert render(results).startswith("# Simulated searches on"), path


def test_read_results_refuses_another_format_or_version_in_one_line(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(InputError, match="is not a results.json of 'budgetopt bench simulate'"):
        read_results(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps({"format": FORMAT, "version": 2}))
    with pytest.raises(InputError, match="results.json version 2; this budgetopt reads version 1"):
        read_results(tmp_path / "results.json")
    with pytest.raises(InputError, match="nothing-here does not exist: give a results.json"):
        read_results(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no results.json in"):
        read_results(tmp_path / "empty")
    # the checker finds what a reader would trip on
    good = {"mean": 0.1, "low": None, "high": None}
    assert schema_problems(good, Interval) == []
    assert schema_problems({"mean": "0.1", "low": None}, Interval) == [
        "results: no 'high'", "results['mean']: not a number"
    ]
    assert schema_problems({**good, "median": 0.1}, Interval) == ["results: 'median' is not in Interval"]


@pytest.mark.parametrize(
    "text, bare, iterations",
    [("30", "fb", 30 * 81), ("30fb", "it", 30 * 81), ("2.5 FB", "fb", 202), ("50000", "it", 50000), ("50000it", "fb", 50000),
     ("1e3it", "fb", 1000)],
)
def test_compute_is_full_budgets_with_fb_iterations_with_it_and_a_bare_number_the_commands_unit(text, bare, iterations):
    from budgetopt._validation import parse_compute

    assert parse_compute(text, 81, "--compute", bare) == iterations


@pytest.mark.parametrize("text", ["0", "-3fb", "tenfb", "nan", "inf", "2.5it", "", "3 0", "1e307fb", "0.001fb", "9e18it"])
def test_compute_that_is_no_compute_is_one_line_naming_the_forms(text):
    from budgetopt._validation import parse_compute

    with pytest.raises(InputError, match=rf"--compute '{re.escape(text)}'[: ].*(give a number of full budgets)"):
        parse_compute(text, 81, "--compute", "fb")


def test_a_simulation_capped_in_iterations_equals_one_capped_in_full_budgets(table_dir, tmp_path):
    kwargs = dict(methods=["sha_cosine", "restart"], repeats=2, baseline="sha_cosine", pool_bootstrap=0,
                  fidelity_resamples=20, progress=False)
    in_iterations = simulate(table_dir, tmp_path / "it", compute="162it", **kwargs)
    in_full_budgets = simulate(table_dir, tmp_path / "fb", compute="2", **kwargs)
    assert in_iterations["searches"] == in_full_budgets["searches"]


def test_sub_ladder_searches_report_only_its_budgets_at_its_reduction_factor_within_the_cap(table_dir, monkeypatch):
    """``--rungs 9,81``: every method's trials report at 9 and 81 only, the values the table
    holds there; Optuna's pruners get reduction factor 9; the cap holds and the search goes
    on while a sub-ladder's lowest rung still fits."""
    _quiet()

    table = read_table(table_dir)
    lookup = PoolLookup(table, table.complete_configs)
    studies = _capture_studies(monkeypatch)
    cap = 81 * 6 + 5
    for name in ("sha_step", "restart", "branch", "hyperband_cosine", "restart_hb"):
        result = run_search(table, resolve_method(name), 0, cap, lookup, (9, 81))
        assert result.compute <= cap and (cap - result.compute < 9 or result.exhausted_at == result.compute), name
        study = studies[-1]
        kind = table.kind_index(resolve_method(name).kind)
        reported = [t for t in study.get_trials() if t.intermediate_values]
        assert reported, name
        for trial in reported:
            assert set(trial.intermediate_values) <= {9, 81}, (name, trial.intermediate_values)
            config = table.pool.index(trial.params)
            for budget, value in trial.intermediate_values.items():
                assert value in table.value[config, :, kind, table.rungs.index(budget)], (name, budget)
        assert set(result.frontier) <= {9, 81}
    assert studies[0].pruner._reduction_factor == 9 and studies[0].pruner._min_resource == 9
    # the whole ladder given explicitly is the default search
    a = run_search(table, resolve_method("restart"), 1, cap, lookup, table.rungs)
    b = run_search(table, resolve_method("restart"), 1, cap, lookup)
    assert (a.events, a.compute) == (b.events, b.compute)


def test_pool_range_draws_only_those_configurations(table_dir, tmp_path):
    results = simulate(
        table_dir, tmp_path / "s", methods=["sha_step", "restart@random"], compute="3", repeats=4, pool="1:3",
        rungs="9,27,81", pool_bootstrap=0, fidelity_resamples=20, progress=False,
    )
    assert results["settings"]["pool"] == [1, 3] and results["settings"]["rungs"] == [9, 27, 81]
    assert results["table"]["configs_complete"] == 2 and not results["table"]["partial"]
    for e in results["searches"]["caps"][str(243)]["methods"].values():
        assert {tuple(p)[0] for p in e["picks"] if p} <= {1, 2}
        assert set(e["frontier_regret"]) == {"9", "27", "81"}
    report = (tmp_path / "s" / "report.md").read_text()
    assert "pool positions 1 to 2 only" in report and "sub-ladder 9/27/81 (reduction factor 3)" in report


def test_partial_table_simulates_with_a_one_line_warning(table_dir, tmp_path, capsys):
    partial = tmp_path / "partial"
    shutil.copytree(table_dir, partial)
    lines = (partial / "table.csv").read_text().splitlines(keepends=True)
    kept = [lines[0], *(line for line in lines[1:] if int(line.split(",")[0]) < 3)]
    (partial / "table.csv").write_text("".join(kept))
    status, out, err = run_main(
        capsys,
        "bench",
        "simulate",
        str(partial),
        "--repeats",
        "2",
        "--compute",
        "2",
        "--methods",
        "sha_step,restart",
        "--pool-bootstrap",
        "0",
        "--out",
        str(tmp_path / "s"),
        "-q",
    )
    assert status == 0, err
    assert err == "budgetopt: warning: partial table: 3 of 5 configurations are complete; simulating on those\n"
    assert "on 3 configurations" in out


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["--configs", "0"], ["--configs must be an integer >= 1, got 0"]),
        (["--configs", "2", "--seeds", "0"], ["--seeds must be an integer >= 1, got 0"]),
        (["--configs", "2", "--kinds", "restart,bogus"], ["unknown unit kind 'bogus'", "continue_<profile>"]),
        (["--configs", "2", "--kinds", "branch"], ["--kinds must include restart"]),
        (["--configs", "2", "--ladder", "huge"], ["unknown ladder 'huge'", "MIN,MAX,ETA"]),
    ],
)
def test_build_bad_input_one_line_exit_2(capsys, tmp_path, argv, fragments):
    status, _, err = run_main(capsys, "bench", "build", "digits", "--out", str(tmp_path / "t"), *argv, "-q")
    assert status == 2
    one_line_error(err, *fragments)
    assert not (tmp_path / "t" / "table.csv").exists()


def test_build_into_an_existing_table_needs_resume_and_resume_needs_the_same_build(capsys, table_dir, tmp_path):
    status, _, err = run_main(capsys, "bench", "build", "digits", "--configs", str(CONFIGS), "--out", str(table_dir), "-q")
    assert status == 2
    one_line_error(err, "already holds a table", "--resume")
    status, _, err = run_main(
        capsys,
        "bench",
        "build",
        "digits",
        "--configs",
        str(CONFIGS),
        "--ladder",
        "quick",
        "--kinds",
        ",".join(KINDS),
        "--seeds",
        "3",
        "--out",
        str(table_dir),
        "--resume",
        "-q",
    )
    assert status == 2
    one_line_error(err, "holds a different build", "seeds")


@pytest.mark.parametrize("cooldown", ["0", "1.5", "nan"])
def test_build_a_bad_cooldown_names_what_is_allowed(capsys, tmp_path, cooldown):
    out = tmp_path / "t"
    args = ("bench", "build", "digits", "--configs", "2", "--cooldown", cooldown, "--out", str(out), "-q")
    status, _, err = run_main(capsys, *args)
    assert status == 2
    one_line_error(err, f"--cooldown must be in (0, 1], got {float(cooldown)}")
    assert not out.exists()  # nothing half-written


def test_build_records_the_default_cooldown_and_a_resume_keeps_the_tables(capsys, tmp_path):
    build = ["bench", "build", "digits", "--seeds", "1", "--ladder", "quick", "--kinds", "restart,branch", "-q"]
    status, _, err = run_main(capsys, *build, "--configs", "1", "--out", str(tmp_path / "new"))
    assert status == 0, err
    assert read_meta(tmp_path / "new")["cooldown"] == COOLDOWN
    status, _, err = run_main(capsys, *build, "--configs", "1", "--cooldown", "0.2", "--out", str(tmp_path / "old"))
    assert status == 0, err
    # a resume without --cooldown grows the table with its own cooldown, not the default
    status, _, err = run_main(capsys, *build, "--configs", "2", "--resume", "--out", str(tmp_path / "old"))
    assert status == 0, err
    table = read_table(tmp_path / "old")  # checks every branch rung's compute against cooldown 0.2
    assert table.meta["cooldown"] == 0.2 and table.done.all() and len(table.pool) == 2


def test_build_unwritable_out(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    status, _, err = run_main(capsys, "bench", "build", "digits", "--configs", "2", "--out", str(blocker), "-q")
    assert status == 2
    one_line_error(err, str(blocker), "not a directory")


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["--repeats", "0"], ["--repeats must be an integer >= 1, got 0"]),
        (["--compute", "0.02"], ["--compute 0.02 is 2 iterations", "below one lowest rung (3 iterations"]),
        (["--compute", "0.001"], ["--compute '0.001' is under one iteration (a full budget is 81)"]),
        (["--compute", "ten"], ["--compute 'ten': give a number of full budgets with 'fb'", "a bare number is full budgets"]),
        (["--methods", "sha_step,nonsense"], ["unknown method 'nonsense'", "sha_cosine"]),
        (["--methods", "restart", "--baseline", "sha_step"], ["--baseline 'sha_step' is not one of the methods"]),
        (["--methods", "sha_step,no_such_module:Pruner"], ["cannot import no_such_module:Pruner"]),
        (["--methods", "sha_step,continue_exp"], ["no unit kind 'continue_exp'"]),
        (["--methods", "restart,branch@rando"], ["method 'branch@rando': unknown sampler 'rando'", "@random, @tpe, @budget"]),
        (["--methods", "restart@"], ["method 'restart@': nothing after @: allowed are @random, @tpe, @budget"]),
        (["--target-spearman", "2"], ["--target-spearman must be a Spearman correlation in [-1, 1], got 2"]),
        (["--target-compute-ratio", "0"], ["--target-compute-ratio must be a ratio above 0, got 0"]),
        (["--rungs", "9,80"], ["--rungs '9,80'", "allowed are budgets of the table's ladder 3/9/27/81"]),
        (["--rungs", "9,27"], ["--rungs '9,27'", "ending at 81"]),
        (["--rungs", "3,27,81"], ["--rungs '3,27,81'", "constant integer ratio"]),
        (["--rungs", "81"], ["--rungs '81'"]),
        (["--rungs", "9,x"], ["--rungs '9,x'"]),
        (["--pool", "4:2"], ["--pool '4:2'", "0 <= A < B <= 5"]),
        (["--pool", "3"], ["--pool '3'", "A:B"]),
        (["--pool", "4:5"], ["1 complete configuration", "at least 2"]),
    ],
)
def test_simulate_bad_input_one_line_exit_2(capsys, table_dir, tmp_path, argv, fragments):
    status, _, err = run_main(capsys, "bench", "simulate", str(table_dir), "--out", str(tmp_path / "s"), *argv, "-q")
    assert status == 2
    one_line_error(err, *fragments)
    assert not (tmp_path / "s" / "report.md").exists()


def _edit_meta(directory: Path, **fields) -> None:
    meta = json.loads((directory / "meta.json").read_text())
    (directory / "meta.json").write_text(json.dumps({**meta, **fields}))


def _all_diverged(directory: Path) -> None:
    """Every unit of the table diverged: its values NaN, with the reason a build records."""
    with open(directory / "table.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["value"], row["diverged"] = "nan", "training loss is nan"
    with open(directory / "table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _damaged(table_dir: Path, tmp_path: Path, edit) -> Path:
    copy = tmp_path / "damaged"
    shutil.copytree(table_dir, copy)
    edit(copy)
    return copy


@pytest.mark.parametrize(
    "edit, fragments",
    [
        (lambda d: (d / "table.csv").unlink(), ["holds no benchmark table"]),
        (
            lambda d: (d / "table.csv").write_text((d / "table.csv").read_text()[:-30]),
            ["is not a row of this table", "truncated or hand-edited"],
        ),
        (
            lambda d: (d / "table.csv").write_text((d / "table.csv").read_text().replace(",restart,27,", ",restart,28,", 1)),
            ["is not a row of this table"],
        ),
        (
            lambda d: (d / "meta.json").write_text((d / "meta.json").read_text().replace('"version": 1', '"version": 99')),
            ["version 99", "reads version 1"],
        ),
        (lambda d: (d / "meta.json").write_text("{"), ["not valid JSON"]),
        (lambda d: _edit_meta(d, cooldown=None), ["records no branch cooldown in (0, 1] (got None)"]),
        (
            lambda d: (d / "table.csv").write_text("\n".join((d / "table.csv").read_text().splitlines()[:-1]) + "\n"),
            ["lacks rungs"],
        ),
        (_all_diverged, ["has no finite value: every unit of its 5 configurations diverged or scored NaN"]),
    ],
)
def test_simulate_on_a_missing_truncated_or_edited_table(capsys, table_dir, tmp_path, edit, fragments):
    damaged = _damaged(table_dir, tmp_path, edit)
    status, _, err = run_main(capsys, "bench", "simulate", str(damaged), "--out", str(tmp_path / "s"), "-q")
    assert status == 2
    one_line_error(err, *fragments)


def test_read_table_checks_what_the_caller_expects(table_dir):
    with pytest.raises(TableError, match="was built for study 'digits', not 'fashion_mlp'"):
        read_table(table_dir, expect={"study": "fashion_mlp"})


@pytest.mark.long  # worker processes, killed: over ten seconds
def test_worker_processes_end_when_the_build_is_killed(tmp_path):
    """A SIGKILLed build leaves no worker training units nobody will write."""
    process = subprocess.Popen([*_build_command(tmp_path / "t"), "--jobs", "2"], cwd=ROOT)
    deadline = time.monotonic() + 120
    children: list[int] = []
    while time.monotonic() < deadline and len(children) < 2:
        children = _children(process.pid)
        time.sleep(0.2)
    assert len(children) >= 2, children  # the pool's workers (and spawn's resource tracker)
    table = tmp_path / "t" / "table.csv"
    while time.monotonic() < deadline and not (table.exists() and len(table.read_text().splitlines()) > 1):
        time.sleep(0.1)  # polled until a unit is written: the workers are training the next ones
    assert table.exists() and len(table.read_text().splitlines()) > 1, "no unit was trained"
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 30
    alive = children
    while alive and time.monotonic() < deadline:
        time.sleep(0.5)
        alive = [p for p in alive if Path(f"/proc/{p}").exists() and "zombie" not in _state(p)]
    assert not alive, alive


def test_a_worker_that_starts_after_its_parent_died_exits_at_once():
    """Under load a spawned worker can finish importing after its parent was killed: it
    has been re-parented by then, so it checks the pid its parent passed."""
    code = "from budgetopt.bench._process import exit_with_parent; import os, time; exit_with_parent({}); time.sleep(60)"
    gone = subprocess.run([sys.executable, "-c", code.format("os.getppid() + 10**7")], timeout=50)
    assert gone.returncode == 1
    alive = subprocess.Popen([sys.executable, "-c", code.format("os.getppid()")])
    with pytest.raises(subprocess.TimeoutExpired):
        alive.wait(timeout=2)  # its parent (this test) is alive: it keeps working
    alive.kill()
    alive.wait()


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid``, from /proc (no procps needed)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "gone"


# -- landing, truths, live searches -------------------------------------------------------------


def test_a_search_never_trains_a_configuration_twice_at_a_seed_and_reports_exhaustion(table_dir):
    _quiet()
    table = read_table(table_dir)
    lookup = PoolLookup(table, table.complete_configs)
    pairs = len(table.complete_configs) * len(table.seeds)
    for name in ("sha_cosine", "restart", "sha_cosine@random", "tpe"):
        result = run_search(table, resolve_method(name), 0, 81 * 1000, lookup)
        assert len(result.landed) == len(set(result.landed)) == pairs, name  # each pair once, then the pool is used up
        assert result.exhausted_at == result.compute <= 81 * 1000, name
        assert result.suggestions == pairs and 0 <= result.moved < pairs
        assert all(r >= 0 for r in result.distance_ratios)
    # a cap too small to train every pair even at the lowest rung: no exhaustion, still no pair twice
    small = run_search(table, resolve_method("sha_cosine"), 0, table.rungs[0] * pairs - 1, lookup)
    assert small.exhausted_at is None and len(small.landed) == len(set(small.landed)) < pairs


def test_the_report_gives_landing_and_exhaustion_per_method(table_dir, tmp_path):
    results = simulate(table_dir, tmp_path, methods=["sha_cosine", "restart"], compute="1000", repeats=2,
                       baseline="sha_cosine", pool_bootstrap=0, fidelity_resamples=20, progress=False)
    landing = results["searches"]["caps"]["81000"]["methods"]["restart"]["landing"]
    assert landing["exhausted_in"] == 2 and landing["exhausted_at_full_budgets"] <= 1000
    assert landing["suggestions"] == 2 * CONFIGS * SEEDS
    report = (tmp_path / "report.md").read_text()
    assert "Where the suggestions landed" in report and "exhausted in" in report


def test_regret_under_each_truth_equals_a_hand_computation_from_the_csv(table_dir, tmp_path):
    """The linear truth is restart's full-budget test score, the cosine truth
    continue_cosine's; a pick (c, s) is scored on the other seed against the pool's best there."""
    table = read_table(table_dir)
    scorer = Scorer(table)
    test = {}
    for row in _rows(table_dir):
        if row["test_value"]:
            test[(row["kind"], int(row["config"]), int(row["seed"]))] = float(row["test_value"])
    configs = table.complete_configs
    for kind in ("restart", "continue_cosine", "branch"):
        for config in configs:
            for seed in (0, 1):
                other = 1 - seed
                best = max(test[(kind, c, other)] for c in configs)
                expected = best - test[(kind, int(config), other)]
                assert scorer.regret((int(config), seed), configs, kind) == pytest.approx(expected, abs=1e-12)
    results = simulate(table_dir, tmp_path, methods=["sha_cosine", "restart"], compute="3", repeats=3,
                       baseline="sha_cosine", pool_bootstrap=0, fidelity_resamples=20, progress=False)
    entry = results["searches"]["caps"]["243"]["methods"]["restart"]
    assert list(entry["by_truth"]) == ["restart", "branch", "continue_cosine", "continue_step"]
    picks = entry["picks"]
    for truth, x in entry["by_truth"].items():
        assert x["regret"] == [pytest.approx(scorer.regret(tuple(p), configs, truth), abs=1e-5) for p in picks]
        base = results["searches"]["caps"]["243"]["methods"]["sha_cosine"]["by_truth"][truth]["regret"]
        diffs = [a - b for a, b in zip(x["regret"], base)]
        assert x["sign_test"]["lower"] == sum(d < 0 for d in diffs)
        assert x["regret_minus_baseline"]["mean"] == pytest.approx(np.mean(diffs), abs=1e-5)
    assert entry["by_truth"]["restart"]["regret"] == entry["regret"]
    assert len(entry["frontier_regret"]["3"]["per_repeat"]) == 3


@pytest.mark.long  # real training end to end, 9 s: run by CI with -m long
def test_live_searches_end_to_end_resume_and_compare_with_the_simulator(table_dir, tmp_path):
    """Two live searches per method on digits (a real study, real training, truths on
    unseen seeds), resumed without new work, then set against the simulator on a table."""
    out = tmp_path / "live"
    argv = ["bench", "live", "digits", "--ladder", "quick", "--methods", "sha_cosine@random,restart@random,sha_cosine",
            "--repeats", "2", "--compute", "2", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    lines = (out / "searches.jsonl").read_text().splitlines()
    assert len(lines) == 6
    for record in map(json.loads, lines):
        assert record["compute"] <= record["cap"] == 162
        assert record["compute"] == sum(t["compute"] for t in record["trials"])
        assert all(t["seed"] >= 1000 for t in record["trials"])  # never a truth seed
        assert set(record["truth"]) == {"linear", "cosine"} and all(len(v) == 2 for v in record["truth"].values())
        assert all(0 <= v <= 1 for v in record["truth"]["linear"])
        picked = next(t for t in record["trials"] if t["number"] == record["pick"])
        assert max(map(int, picked["values"])) == max(max(map(int, t["values"]), default=0) for t in record["trials"])
    assert main([*argv, "--resume"]) == 0
    assert len((out / "searches.jsonl").read_text().splitlines()) == 6
    assert len(json.loads((out / "meta.json").read_text())["commands"]) == 2
    simulate(table_dir, tmp_path / "sim", methods=["sha_cosine@random", "restart@random", "sha_cosine"], compute="2",
             repeats=4, baseline="sha_cosine", pool_bootstrap=0, fidelity_resamples=20, progress=False)
    compared = subprocess.run(
        [sys.executable, str(ROOT / "studies" / "live_vs_simulation.py"), str(out), str(table_dir), str(tmp_path / "sim")],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "| `restart@random` | cosine |" in compared and "live minus simulated" in compared


def test_live_into_an_existing_directory_needs_resume(capsys, tmp_path):
    (tmp_path / "meta.json").write_text('{"spec": {}}')
    code = main(["bench", "live", "digits", "--repeats", "1", "--out", str(tmp_path), "--quiet"])
    assert code == 2
    assert "--resume" in capsys.readouterr().err


def test_cosine_cooldown_trunk_is_continue_cosine_and_its_rungs_cost_the_cooldowns(table_dir):
    table = read_table(table_dir)
    cosine, cooled = table.kind_index("continue_cosine"), table.kind_index("cosine_cooldown0.5")
    # the last rung is the cosine run's own value and test score, the same run as continue_cosine's
    np.testing.assert_array_equal(table.value[:, :, cooled, -1], table.value[:, :, cosine, -1])
    np.testing.assert_array_equal(table.test[:, :, cooled], table.test[:, :, cosine])
    extra = [0]
    for b in table.rungs[:-1]:
        extra.append(extra[-1] + max(1, round(0.5 * b)))
    assert list(table.compute[0, 0, cooled]) == [b + e for b, e in zip(table.rungs, extra[1:] + extra[-1:])]


def test_sha_cooldown_picks_as_sha_cosine_and_pays_a_cooldown_per_survivor(table_dir):
    """Promotion on the cosine values, exactly successive halving's; each rung's survivors
    cooled down (charged), the frontier's lower rungs from their cooled values."""
    _quiet()
    table = read_table(table_dir)
    lookup = PoolLookup(table, table.complete_configs)
    cooled_k = table.kind_index("cosine_cooldown0.5")
    for repeat in range(3):
        plain = run_search(table, resolve_method("sha_cosine@random", table), repeat, 10**6, lookup)
        cooled = run_search(table, resolve_method("sha_cooldown0.5@random", table), repeat, 10**6, lookup)
        assert cooled.landed == plain.landed and cooled.pick == plain.pick  # the same trials, the same decisions
        assert cooled.compute > plain.compute
        for budget, (config, seed) in cooled.frontier.items():
            if budget != table.rungs[-1]:
                r = table.rungs.index(budget)
                value = table.value[config, seed, cooled_k, r]
                assert np.isfinite(value)
        assert cooled.frontier[table.rungs[-1]] == plain.frontier[table.rungs[-1]]
    with pytest.raises(ValueError, match="read by sha_cooldown0.5"):
        resolve_method("cosine_cooldown0.5", table)


def test_rung_i_trains_every_trial_to_rung_i_then_continues_the_best_to_the_full_budget(table_dir):
    """Egele et al.'s baseline: half the cap to rung i on the cosine values, the rest
    continuing the best of those trials, best first; the pick is a full-budget value."""
    _quiet()
    table = read_table(table_dir)
    lookup = PoolLookup(table, table.complete_configs)
    k, full = table.kind_index("continue_cosine"), table.rungs[-1]
    cap = 6 * full
    for repeat in range(3):
        result = run_search(table, resolve_method("rung1@random", table), repeat, cap, lookup)
        assert result.compute <= cap and result.full_budget_trials >= 1
        explored = result.trials * table.rungs[0]
        assert explored <= cap // 2  # the first half: rung 1 only, as many as fit or the pool holds
        assert cap // 2 < explored + table.rungs[0] or result.trials == len(lookup.configs) * len(table.seeds)
        continued = (result.compute - explored) // (full - table.rungs[0])
        assert continued == result.full_budget_trials and result.compute - explored == continued * (full - table.rungs[0])
        first = [table.value[c, s, k, 0] for c, s in result.landed]
        order = np.argsort(first)[::-1][:continued]  # the best at rung 1 are the ones continued
        full_values = {result.landed[i]: table.value[result.landed[i][0], result.landed[i][1], k, -1] for i in order}
        assert result.pick == max(full_values, key=full_values.get) == result.frontier[full]
    with pytest.raises(ValueError, match="rung every trial trains to"):
        resolve_method(f"rung{len(table.rungs)}", table)


def test_a_table_records_its_data_and_the_report_names_every_command(table_dir, tmp_path):
    meta = read_meta(table_dir)
    assert meta["data"]["source"] and len(meta["data"]["digest"]) == 64
    from budgetopt.bench.build import data_record
    from budgetopt.data import load_digits

    assert data_record(load_digits())["digest"] == meta["data"]["digest"]  # the same data, the same digest
    grown = tmp_path / "grown"
    shutil.copytree(table_dir, grown)
    build_table("digits", grown, configs=CONFIGS, seeds=SEEDS, kinds=KINDS, ladder="quick", resume=True, progress=False,
                command="budgetopt bench build digits --resume (second)")
    simulate(grown, tmp_path / "sim", methods=["sha_cosine", "restart"], compute="2", repeats=2, baseline="sha_cosine",
             pool_bootstrap=0, fidelity_resamples=20, progress=False)
    header = next(line for line in (tmp_path / "sim" / "report.md").read_text().splitlines() if line.startswith("Table `"))
    assert "then `budgetopt bench build digits --resume (second)`" in header and "data:" in header


def test_a_simulation_leaves_optunas_tpe_in_this_process_as_it_was(table_dir, tmp_path):
    # issue 21: no process-wide replacement of a library function in a user's process; the
    # simulator's worker processes (jobs > 1, or the command line's isolate) speed TPE up there
    import optuna.samplers._tpe._truncnorm as truncnorm

    original = truncnorm._log_ndtr
    kwargs = dict(methods=["sha_cosine", "restart"], compute="2", repeats=2, baseline="sha_cosine", pool_bootstrap=0,
                  fidelity_resamples=20, progress=False)
    here = simulate(table_dir, tmp_path / "here", **kwargs)
    assert truncnorm._log_ndtr is original
    isolated = simulate(table_dir, tmp_path / "isolated", isolate=True, **kwargs)
    assert truncnorm._log_ndtr is original
    assert here["searches"] == isolated["searches"]  # scipy's log_ndtr agrees to 3e-13: the same picks here
