"""``budgetopt compare STUDY``: budget-aware search against Optuna's successive halving on
your own study script, as *a small table, then simulated searches*.

Why not live searches (what this command did before 0.2): a live comparison trains a
handful of searches per method, each its own configurations and seeds, so its answer
is a difference of a few noisy picks, scored with each method's own final schedule, at
a compute that the last trial overshoots. The same training spent on a table (every
configuration of a quasi-random pool, every seed, every mode, every rung) answers more:
hundreds of paired searches per method at exactly equal compute replay against it in
seconds, selection regret and deployable score are told apart, and rank fidelity comes
with the same data. The price is that a sampler cannot reach configurations between the
pool's points (see :mod:`budgetopt.bench.simulate`).

So ``compare`` = :func:`budgetopt.bench.build.build_table` into ``OUT/table`` +
:func:`budgetopt.bench.replay.simulate` into ``OUT``, with the defaults sized for a study
script a user brings; ``--resume`` continues an interrupted table.
"""

from __future__ import annotations

from pathlib import Path

from budgetopt.bench.build import build_table
from budgetopt.bench.records import SimulationResults
from budgetopt.bench.replay import simulate
from budgetopt.bench.simulate import DEFAULT_METHODS


def compare(
    script: str | Path,
    out: str | Path,
    *,
    configs: int = 24,
    seeds: int = 2,
    kinds=None,
    ladder: str | None = None,
    pool_seed: int = 0,
    cooldown: float | None = None,
    methods=DEFAULT_METHODS,
    compute: str = "10,30",
    repeats: int = 200,
    baseline: str | None = None,
    pool_bootstrap: int = 20,
    jobs: int = 1,
    threads: int = 1,
    device: str = "cpu",
    data_dir: str | None = None,
    quick: bool = False,
    resume: bool = False,
    command: str = "",
    progress: bool = True,
    say=lambda message: None,
) -> SimulationResults:
    """Build the table of ``script`` in ``out/table`` and simulate ``methods`` on it into
    ``out``; returns the simulation's results (see :func:`budgetopt.bench.replay.simulate`)."""
    # Over 60 lines for its signature: one keyword per option of ``budgetopt compare``; the body is under 45.
    from budgetopt.bench.runner import caps_from
    from budgetopt.study_script import load_study_script

    out = Path(out)
    _, the_ladder = load_study_script(script).named_ladder(ladder)
    caps_from(compute, None, tuple(the_ladder.rungs))  # type: ignore[arg-type]  # a bad --compute before any training
    table = build_table(
        script,
        out / "table",
        configs=configs,
        seeds=seeds,
        kinds=kinds,
        ladder=ladder,
        pool_seed=pool_seed,
        cooldown=cooldown,
        jobs=jobs,
        threads=threads,
        device=device,
        data_dir=data_dir,
        quick=quick,
        resume=resume,
        progress=progress,
        command=command or None,
        say=say,
    )
    return simulate(
        table,
        out,
        methods=list(methods),
        compute=compute,
        repeats=repeats,
        baseline=baseline,
        jobs=jobs,
        pool_bootstrap=pool_bootstrap,
        command=command,
        progress=progress,
        warn=say,
        isolate=True,  # a command's simulation: Optuna's TPE sped up in a worker process, never in this one
    )
