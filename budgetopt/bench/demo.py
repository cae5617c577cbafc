"""``budgetopt demo``: the README's first command, a few minutes on two CPU cores.

1. A real budget-aware study, live: Optuna with :class:`~budgetopt.BudgetPruner` and
   :class:`~budgetopt.BudgetSampler` on the cheap Fashion-MNIST MLP study
   (``fashion_mlp``, ladder 15/45/135/405; scikit-learn's digits when Fashion-MNIST is
   neither on the machine nor downloadable), restart mode, until it has spent
   :data:`LIVE_COMPUTE` full budgets, stored in ``OUT/studies.db`` for optuna-dashboard.
   It prints the study's *frontier* (:func:`budgetopt.frontier`): for every budget of
   the ladder, the best configuration found and its budget-converged score, and what
   training longer is predicted to gain.
2. Paired searches replayed on the committed benchmark table of the same task
   (``studies/tables/fashion_mlp-short``), at exactly equal compute, like with like
   first: Optuna's successive halving on a cosine schedule, budgetopt's restart and
   branch, and successive halving with each rung's survivors cooled down, all with one
   random sampler; then what each rule's own model-based sampler changes. It says in
   words which differences are significant, under every final schedule the table holds.
3. The command that opens the dashboard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import optuna

from budgetopt.bench.records import CapResult, SimulationResults
from budgetopt.bench.table import read_meta
from budgetopt.errors import MissingPathError
from budgetopt.modes import COOLDOWN

LIVE_COMPUTE = 8  # full budgets of the live study
# branch mode with the library's default cooldown: the committed table's `branch` kind
# has 0.2, its `branch_cooldown0.5` the default (see demo_methods)
BRANCH = f"branch_cooldown{COOLDOWN:g}"
COOLED = f"sha_cooldown{COOLDOWN:g}"  # successive halving's picks, each rung's survivors cooled down
# Like with like first: every promotion rule with the same random sampler against Optuna's
# successive halving on a cosine schedule (what the rule and the schedule do, apart from
# the sampler). Then each rule with its own model-based sampler against itself with the
# random one (what the sampler does). docs/results.md.
DEMO_METHODS = ("sha_cosine@random", "restart@random", f"{BRANCH}@random", f"{COOLED}@random", "sha_cosine", "restart")
CONTRASTS = (
    ("sha_cosine", "sha_cosine@random", "the sampler alone under Optuna's successive halving: TPE instead of random"),
    ("restart", "restart@random", "the sampler alone under budgetopt's restart: BudgetSampler instead of random"),
)
DEMO_BASELINE = "sha_cosine@random"
DEMO_COMPUTE = "10"  # full budgets per replayed search: TPE at 30, with no duplicates, takes minutes more
DEMO_REPEATS = 200
STUDY_NAME = "budget-aware-demo"


def committed_table() -> Path:
    """The benchmark table the demo replays: ``studies/tables/fashion_mlp-short`` of the
    source tree budgetopt runs from."""
    return Path(__file__).resolve().parents[2] / "studies" / "tables" / "fashion_mlp-short"


def choose_study(data_dir: str | None, digits: bool) -> tuple[str, str]:
    """(study, reason): fashion_mlp when Fashion-MNIST is found or downloadable, else digits."""
    from budgetopt.data import find_fashion_mnist

    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise MissingPathError(f"--data-dir {data_dir} does not exist")
    if digits:
        return "digits", "live study on scikit-learn's digits, as asked"
    try:
        where = find_fashion_mnist(data_dir)
    except FileNotFoundError as error:
        return "digits", f"Fashion-MNIST is not available ({error}); the live study uses scikit-learn's digits"
    return "fashion_mlp", f"live study on Fashion-MNIST from {where}"


class _StopAtCompute:
    """Optuna callback: stop the study once its trials have spent ``compute`` iterations."""

    def __init__(self, compute: int) -> None:
        self.compute = compute
        self.spent = 0

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        from budgetopt.attrs import ATTR_COMPUTE

        self.spent += int(trial.user_attrs.get(ATTR_COMPUTE, 0))
        if self.spent >= self.compute:
            study.stop()


def live_study(study: str, out: Path, data_dir: str | None, compute_full_budgets: int = LIVE_COMPUTE) -> tuple[optuna.Study, str]:
    """Run the live budget-aware study; returns it and its storage URL."""
    import torch

    from budgetopt import BudgetPruner, BudgetSampler
    from budgetopt.study_script import load_study_script, make_objective

    torch.set_num_threads(1)  # one core trains; more threads than cores make small steps ten times slower
    script = load_study_script(study)
    ladder = script.ladder
    db = out / "studies.db"
    db.unlink(missing_ok=True)  # the demo's own output: a fresh study every time
    url = f"sqlite:///{db}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per trial would bury the result
    optuna_study = optuna.create_study(
        study_name=STUDY_NAME,
        storage=url,
        direction=cast(Any, script.direction),
        sampler=BudgetSampler(seed=0),
        pruner=BudgetPruner(ladder.min_budget, ladder.max_budget, ladder.reduction_factor),
    )
    data = script.load_data(data_dir=data_dir)
    objective = make_objective(script, mode="restart", data=data, record_test=True)
    stop = _StopAtCompute(compute_full_budgets * ladder.max_budget)
    optuna_study.optimize(objective, callbacks=[stop], gc_after_trial=False)
    return optuna_study, url


def contrasts(results: SimulationResults, pairs: tuple = CONTRASTS) -> list[str]:
    """The comparisons that separate the sampler's share from the promotion rule's."""
    from budgetopt.bench.report import format_interval
    from budgetopt.bench.results import paired_interval

    lines = []
    for cap in results["searches"]["caps"].values():
        for method, baseline, what in pairs:
            if method not in cap["methods"] or baseline not in cap["methods"]:
                continue
            m, b = cap["methods"].get(method), cap["methods"].get(baseline)
            if m is None or b is None:
                continue
            regret = paired_interval(m["regret"], b["regret"])
            deploy = paired_interval(m["deployable"], b["deployable"])
            lines.append(
                f"- `{method}` against `{baseline}` ({what}): selection regret {format_interval(regret, sign=True)}, "
                f"deployable score {format_interval(deploy, sign=True)}."
            )
    return lines


def _pool_caveat(cap: CapResult) -> list[str]:
    """Why the sampler contrasts are not a verdict on samplers: how far a model-based
    sampler's suggestions had to move on the finite pool."""
    tpe = cap["methods"].get("sha_cosine")
    landing = None if tpe is None else tpe.get("landing")
    moved = None if landing is None else landing["moved_fraction"]
    if moved is None:
        return []
    return [
        f"- Not a verdict on samplers: on a finite pool {moved:.0%} of TPE's suggestions landed on another configuration "
        "than their nearest (it was trained already), so a table cannot follow where TPE samples; live searches on this "
        "task found TPE and a random sampler level (docs/results.md)."
    ]


def demo_methods(meta: dict) -> list[str]:
    """:data:`DEMO_METHODS` for a table: branch with the library's default cooldown is the
    table's ``branch`` kind when the table was built with it, else its ``branch_cooldown``
    kind of that fraction, else (a table without one) its ``branch`` kind;
    ``sha_cooldown`` only where the table has its ``cosine_cooldown`` kind."""
    kinds = meta.get("kinds", ())
    methods = list(DEMO_METHODS)
    if meta.get("cooldown") == COOLDOWN or BRANCH not in kinds:
        methods = [m.replace(BRANCH, "branch") for m in methods]
    if f"cosine_cooldown{COOLDOWN:g}" not in kinds:
        methods = [m for m in methods if not m.startswith(COOLED)]
    return methods


def run_demo(
    out: str | Path = "budgetopt-demo",
    *,
    data_dir: str | None = None,
    digits: bool = False,
    table: str | Path | None = None,
    jobs: int = 2,
    repeats: int = DEMO_REPEATS,
    progress: bool = True,
    say=lambda message: None,
) -> str:
    """Run the demo; returns the text it prints at the end (:func:`demo_text`)."""
    from budgetopt.bench.replay import simulate  # scipy and matplotlib: the bench extra

    table_dir = Path(table) if table is not None else committed_table()
    meta = read_meta(table_dir, expect={"study": "fashion_mlp"})  # checked before any training
    study, reason = choose_study(data_dir, digits)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say(reason)
    methods = demo_methods(meta)
    if not any(m.partition("@")[0] == BRANCH for m in methods) and meta["cooldown"] != COOLDOWN:
        say(f"{table_dir} has no {BRANCH} kind: branch is replayed with the table's cooldown {meta['cooldown']:g}")
    say(f"1/2 live budget-aware study ({LIVE_COMPUTE} full budgets of compute) into {out / 'studies.db'}")
    live, url = live_study(study, out, data_dir if study == "fashion_mlp" else None)
    say(f"2/2 {repeats} paired searches per method replayed on {table_dir}")
    results = simulate(
        table_dir,
        out / "simulation",
        methods=methods,
        compute=DEMO_COMPUTE,
        repeats=repeats,
        baseline=DEMO_BASELINE,
        jobs=jobs,
        pool_bootstrap=0,
        fidelity_resamples=200,
        command=f"budgetopt demo --out {out}",
        progress=progress,
        warn=say,
        isolate=True,  # Optuna's TPE sped up in worker processes only (the live study above ran the real one)
    )
    return demo_text(study, live, url, results, repeats, out)


def demo_text(study: str, live: optuna.Study, url: str, results: SimulationResults, repeats: int, out: Path) -> str:
    """What the demo prints at its end: the live study's frontier, the replayed searches
    (regret and deployable score, regret per budget), the like-with-like verdict and
    what the sampler changes."""
    from budgetopt.bench.report import verdict_sentences
    from budgetopt.frontier import fit_frontier, frontier, frontier_text

    trials = live.get_trials(deepcopy=False)
    complete = sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    front = frontier(live)
    lines = [
        f"Live study {STUDY_NAME!r} ({study}): {len(trials)} trials, {complete} reached the full budget. Its frontier "
        "(budget-converged validation score: which configuration to train for each budget, and what it scores):",
        "",
        frontier_text(front, fit_frontier(front)),
    ]
    cap = next(iter(results["searches"]["caps"].values()))
    lines += [
        "",
        f"Replayed on the committed table ({results['table']['configs_complete']} configurations x "
        f"{len(results['table']['seeds'])} "
        f"seeds, ladder {'/'.join(map(str, results['table']['rungs']))}): {repeats} paired searches per method, each spending "
        f"at most {cap['iterations']:,} iterations ({cap['full_budgets']:g} full budgets).",
        "Selection regret: the best configuration's test score minus the pick's, both trained with linear decay "
        "(lower is better).",
        "",
        f"{'method':<26} {'regret (mean, 95%)':>28} {'deployable test score':>28}",
    ]
    for method, e in cap["methods"].items():
        r, d = e["regret_summary"], e["deployable_summary"]
        lines.append(
            f"{method:<26} {r['mean']:>10.4f} ({r['low']:.4f} to {r['high']:.4f}) "
            f"{d['mean']:>10.4f} ({d['low']:.4f} to {d['high']:.4f})"
        )
    rungs = results["settings"]["rungs"]
    lines += [
        "",
        "Regret per budget (the best configuration each search found for that budget, scored against the best the pool "
        "can do there; the frontier's quality):",
        "",
        f"{'method':<26} " + " ".join(f"{b:>9}" for b in rungs),
    ]
    for method, e in cap["methods"].items():
        cells = [e["frontier_regret"][str(b)]["mean"] for b in rungs]
        lines.append(f"{method:<26} " + " ".join(f"{'-' if c is None else format(c, '.4f'):>9}" for c in cells))
    same = [m for m in cap["methods"] if m.endswith("@random")]
    lines += [
        "",
        "Like with like (every method with the same random sampler, against Optuna's successive halving on a cosine "
        "schedule):",
        *verdict_sentences(results, methods=same),
        "",
        "What the sampler changes, apart from the promotion rule:",
        *contrasts(results),
        *_pool_caveat(cap),
        "",
        f"report:    {out / 'simulation' / 'report.md'}",
        f"dashboard: budgetopt dashboard {url}",
    ]
    return "\n".join(lines)
