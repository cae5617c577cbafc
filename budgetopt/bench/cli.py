"""``budgetopt bench``: ``build`` (locally, or through a storage with ``worker``, ``status``
and ``export``), ``simulate``, ``live``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from budgetopt.bench.records import SimulationResults
from budgetopt.errors import InputError


def add_bench(commands: argparse._SubParsersAction, command) -> None:
    """Add ``budgetopt bench`` (``command`` builds a subparser with the common options)."""
    bench = commands.add_parser(
        "bench",
        help="benchmark tables: train a pool once in every mode, then replay searches against it",
        description="Benchmark tables (every configuration x seed x mode x rung) and an equal-compute search simulator.",
    )
    group = bench.add_subparsers(title="bench commands", metavar="COMMAND", required=True, parser_class=type(bench))
    _add_build(group, command)
    _add_worker(group, command)
    _add_status(group, command)
    _add_export(group, command)
    _add_simulate(group, command)
    _add_live(group, command)


def _add_build(group, command) -> None:
    parser = command(
        group,
        "build",
        "train a pool of configurations at every rung, seed and mode into a table",
        """
        budgetopt bench build digits --configs 8 --seeds 2 --out digits-table            # a minute
        budgetopt bench build fashion_mlp --configs 300 --seeds 2 --jobs 2 --out table-a
        budgetopt bench build fashion_mlp --ladder long --configs 200 --jobs 2 --out table-b --resume
        budgetopt bench build fashion_mnist --configs 100 --storage postgresql://u:p@db/optuna --study cnn-table
        """,
        description=(
            "Draw --configs configurations from the study script's search space (Optuna's scrambled Sobol QMCSampler, "
            "--pool-seed), train each with every seed and unit kind on the ladder, and write table.csv (one row per "
            "configuration, seed, kind and rung) and meta.json to --out. Units run in --jobs processes; an interrupted "
            "build keeps every finished unit and --resume completes it (or grows its pool or its kinds). With --storage "
            "and --study instead of --out, the build is recorded in an Optuna study and its units queued there: "
            "'budgetopt bench worker' on any machine trains them, 'bench status' follows them, 'bench export' writes "
            "the table."
        ),
    )
    parser.add_argument("script", help="a built-in study (fashion_mlp, fashion_mlp_fixed_lr, digits, ...) or a .py study script")
    parser.add_argument("--out", metavar="DIR", help="the table's directory (a local build)")
    _add_storage_options(parser, required=False, what="record the build and queue its units in this Optuna storage")
    _add_table_options(parser, configs_default=None)
    parser.set_defaults(handler=_run_build)


def _add_storage_options(parser: argparse.ArgumentParser, *, required: bool, what: str) -> None:
    parser.add_argument(
        "--storage", required=required, metavar="URL", help=f"{what} (postgresql://..., sqlite:///FILE, FILE.log)"
    )
    parser.add_argument("--study", required=required, metavar="NAME", help="the build's study in --storage")


def _run_build(args: argparse.Namespace) -> int:
    from budgetopt.bench.build import build_table, measured_cost

    if args.storage is not None or args.study is not None:
        return _enqueue(args)
    if args.out is None:
        raise InputError("bench build needs --out DIR (a local build) or --storage URL --study NAME (a build by workers)")
    out = build_table(args.script, args.out, **_table_options(args), command=_command_line(args), say=_say(args))
    cost = measured_cost(Path(out))
    print(f"table: {out}")
    print("measured seconds per unit: " + ", ".join(f"{k} {v:g}" for k, v in cost.items()))
    return 0


def _enqueue(args: argparse.Namespace) -> int:
    from budgetopt.bench.workers import enqueue_build
    from budgetopt.storage import open_shared_storage, safe_url

    if args.storage is None or args.study is None:
        raise InputError("a build by workers needs both --storage URL and --study NAME")
    if args.out is not None:
        raise InputError(
            f"--out {args.out} and --storage: choose one (a build by workers is written out by 'bench export --out')"
        )
    local = {"--jobs": (args.jobs, 1), "--threads": (args.threads, 1), "--device": (args.device, "cpu")}
    given = [f"{name} {value}" for name, (value, default) in local.items() if value != default]
    if given:
        raise InputError(f"{', '.join(given)}: with --storage, give these to each 'budgetopt bench worker'")
    options = _table_options(args)
    for key in ("jobs", "threads", "device", "progress"):
        options.pop(key)
    storage = open_shared_storage(args.storage, {})
    plan = enqueue_build(storage, args.study, args.script, **options, command=_command_line(args), say=_say(args))
    left = len(plan.units) - len(plan.finished)
    print(f"build: study {args.study!r}, {len(plan.units)} units, {left} to train")
    if left:
        print(
            f"start workers: budgetopt bench worker --storage {safe_url(args.storage)} --study {args.study} "
            "[--jobs N] [--device cuda:K]"
        )
    return 0


def _add_worker(group, command) -> None:
    parser = command(
        group,
        "worker",
        "train the queued units of a build recorded in an Optuna storage (any machine, many at once)",
        """
        budgetopt bench worker --storage postgresql://u:p@db/optuna --study cnn-table --device cuda:0
        budgetopt bench worker --storage sqlite:///tables.db --study digits-table --jobs 2
        """,
        description=(
            "Take units of the build in --study (made by 'bench build --storage') until none is queued, train each as "
            "a local build does and write its rows to the storage, all its rungs or nothing. The study script and its "
            "data must be the build's (SHA-256 and digest checked). A worker that dies stops heartbeating: its unit is "
            "queued again after --grace-period and trained from its start."
        ),
    )
    _add_storage_options(parser, required=True, what="the storage the build is recorded in")
    parser.add_argument(
        "--jobs", type=int, default=1, metavar="N", help="worker processes on this machine (default: %(default)s)"
    )
    parser.add_argument("--threads", type=int, default=1, metavar="N", help="torch threads per process (default: %(default)s)")
    parser.add_argument("--device", default="cpu", metavar="DEVICE", help="cpu, cuda, cuda:K, mps (default: %(default)s)")
    parser.add_argument("--script", metavar="PATH", help="the study script here, when not at the path the build recorded")
    parser.add_argument("--data-dir", metavar="DIR", help="where the study script finds its data here (default: the build's)")
    parser.add_argument(
        "--max-repeated-errors", type=int, default=3, metavar="N",
        help="stop when one error ended this many units in a row (default: %(default)s)",
    )
    parser.add_argument(
        "--max-retry", type=int, default=3, metavar="N", help="retries of a unit whose worker died (default: %(default)s)"
    )
    parser.add_argument(
        "--heartbeat", type=int, default=60, metavar="SECONDS",
        help="seconds between heartbeats of a running unit, SQL storages (default: %(default)s)",
    )
    parser.add_argument(
        "--grace-period", type=int, metavar="SECONDS",
        help="seconds without a heartbeat before a unit is queued again (default: 2 x --heartbeat)",
    )
    parser.set_defaults(handler=_run_worker)


def _run_worker(args: argparse.Namespace) -> int:
    import warnings

    import optuna

    from budgetopt import workers
    from budgetopt._validation import check_iterations
    from budgetopt.bench.workers import build_of, checked_spec, run_build_worker, run_build_workers
    from budgetopt.storage import load_study, open_shared_storage
    from budgetopt.study_script import check_device

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the heartbeat is "experimental"
    jobs = check_iterations(args.jobs, "--jobs")
    threads = check_iterations(args.threads, "--threads")
    check_iterations(args.max_repeated_errors, "--max-repeated-errors")
    check_iterations(args.max_retry, "--max-retry", minimum=0)
    heartbeat = check_iterations(args.heartbeat, "--heartbeat (seconds)")
    grace = 2 * heartbeat if args.grace_period is None else check_iterations(args.grace_period, "--grace-period (seconds)")
    device = check_device(args.device)
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise InputError(f"--data-dir {args.data_dir} does not exist (or is not a directory)")
    rdb_options = workers.heartbeat_options(heartbeat, grace, workers.RetryStaleTrial(args.max_retry))
    if args.storage.startswith("postgresql"):  # a host that does not answer: an error, not a hang
        rdb_options["engine_kwargs"] = {"connect_args": {"connect_timeout": 10}}
    storage = open_shared_storage(args.storage, rdb_options)
    study = load_study(storage, args.storage, args.study)
    options = dict(
        device=device, threads=threads, script=args.script, data_dir=args.data_dir, max_repeated_errors=args.max_repeated_errors
    )
    checked_spec(build_of(study), device=device, script=args.script, data_dir=args.data_dir)  # once, before any process
    if jobs == 1:
        report = run_build_worker(study, say=_say(args), **options)
    else:
        report = run_build_workers(args.storage, args.study, jobs, rdb_options, quiet=args.quiet, **options)
    print(
        f"worker done: {report.complete} unit(s) trained, {report.failed} failed"
        + (f", {report.abandoned} left to a retry after a late heartbeat" if report.abandoned else "")
    )
    return 0


def _add_status(group, command) -> None:
    parser = command(
        group,
        "status",
        "units trained, running, queued and failed of a build in an Optuna storage, and the time left",
        """
        budgetopt bench status --storage postgresql://u:p@db/optuna --study cnn-table
        """,
    )
    _add_storage_options(parser, required=True, what="the storage the build is recorded in")
    parser.set_defaults(handler=_run_status)


def _run_status(args: argparse.Namespace) -> int:
    from budgetopt.bench.workers import build_status
    from budgetopt.storage import load_study, open_storage

    study = load_study(open_storage(args.storage), args.storage, args.study)
    print(build_status(study).text(args.study))
    return 0


def _add_export(group, command) -> None:
    parser = command(
        group,
        "export",
        "write a build made by workers as table.csv and meta.json, the local build's format",
        """
        budgetopt bench export --storage postgresql://u:p@db/optuna --study cnn-table --out cnn-table
        budgetopt bench export --storage sqlite:///tables.db --study digits-table --out digits-table --partial
        """,
    )
    _add_storage_options(parser, required=True, what="the storage the build is recorded in")
    parser.add_argument("--out", required=True, metavar="DIR", help="the table's directory (an earlier export of it is replaced)")
    parser.add_argument("--partial", action="store_true", help="export the units trained so far of an incomplete build")
    parser.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from budgetopt.bench.table import read_meta
    from budgetopt.bench.workers import export_build
    from budgetopt.storage import load_study, open_storage

    study = load_study(open_storage(args.storage), args.storage, args.study)
    out = export_build(study, args.out, partial=args.partial, url=args.storage)
    meta = read_meta(out)
    units = len(meta["pool"]) * len(meta["seeds"]) * len(meta["kinds"])
    print(f"table: {out} ({meta['units_complete']} of {units} units)")
    return 0


def _add_simulate(group, command) -> None:
    parser = command(
        group,
        "simulate",
        "replay searches against a table at exactly equal compute",
        """
        budgetopt bench simulate table-a --compute 10,30,100 --repeats 200 --jobs 2 --out sim-a
        budgetopt bench simulate table-a --methods sha_cosine,restart,restart@random,restart_beta0.3 --baseline sha_cosine
        budgetopt bench simulate table-a --methods sha_step,my_rules:ModelPruner@restart --out sim-mine
        """,
        description=(
            "Replay --repeats paired searches per method and compute cap against a table made by 'budgetopt bench build': "
            "real Optuna studies (samplers and pruners) whose training is a table lookup. Writes report.md, results.json "
            "and PNG plots to --out: selection regret under every final schedule the table holds and deployable score with "
            "95% intervals, paired differences against --baseline, anytime curves, a bootstrap over the pool, and rank "
            "fidelity of every unit kind. No search trains a configuration twice at one seed; a pool used up is reported."
        ),
    )
    parser.add_argument("table", help="a table directory made by 'budgetopt bench build'")
    _add_search_options(parser, compute_default="30")
    parser.add_argument(
        "--bootstrap-repeats", type=int, default=20, metavar="K", help="paired repeats per resampled pool (default: %(default)s)"
    )
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="worker processes (default: %(default)s)")
    parser.add_argument(
        "--target-compute-ratio",
        type=float,
        metavar="R",
        help="report met/not met: a method reaches the baseline's final mean regret within R x the cap",
    )
    parser.add_argument(
        "--target-spearman",
        type=float,
        metavar="S",
        help="report met/not met: lowest-rung Spearman over configurations that train >= S",
    )
    parser.add_argument(
        "--rungs",
        metavar="B,B",
        help="a sub-ladder of the table's every method uses, e.g. 90,270,810,2430 (a higher minimum rung) or 30,270,2430 "
        "(reduction factor 9) (default: the table's ladder)",
    )
    parser.add_argument(
        "--pool", metavar="A:B", help="draw only pool positions A <= c < B, e.g. to report on configurations not tuned on"
    )
    parser.add_argument("--out", metavar="DIR", help="output directory (default: TABLE/simulation)")
    parser.add_argument(
        "--resume", action="store_true",
        help="read the searches a run cut short left in DIR/searches.jsonl instead of running them again (a resume may "
        "add methods, caps or repeats)",
    )
    parser.set_defaults(handler=_run_simulate)


def _run_simulate(args: argparse.Namespace) -> int:
    from budgetopt.bench.replay import simulate

    thresholds = {}
    if args.target_compute_ratio is not None:
        if not args.target_compute_ratio > 0:
            raise InputError(f"--target-compute-ratio must be a ratio above 0, got {args.target_compute_ratio:g}")
        thresholds["compute_ratio"] = args.target_compute_ratio
    if args.target_spearman is not None:
        if not -1 <= args.target_spearman <= 1:
            raise InputError(f"--target-spearman must be a Spearman correlation in [-1, 1], got {args.target_spearman:g}")
        thresholds["spearman"] = args.target_spearman
    out = Path(args.out) if args.out else Path(args.table) / "simulation"
    results = simulate(
        args.table,
        out,
        methods=[m for m in args.methods.split(",") if m],
        compute=args.compute,
        repeats=args.repeats,
        baseline=args.baseline,
        rungs=args.rungs,
        pool=args.pool,
        jobs=args.jobs,
        pool_bootstrap=args.pool_bootstrap,
        bootstrap_repeats=args.bootstrap_repeats,
        thresholds=thresholds,
        command=_command_line(args),
        progress=not args.quiet,
        warn=lambda m: print(f"budgetopt: warning: {m}", file=sys.stderr),
        resume=args.resume,
        isolate=True,  # the command line's: Optuna's TPE sped up in worker processes only
    )
    print(summary_text(results, out))
    return 0


def _add_live(group, command) -> None:
    parser = command(
        group,
        "live",
        "real searches that train real models, each pick's truth on unseen seeds: the simulator's check",
        """
        budgetopt bench live fashion_mlp --methods sha_cosine@random,restart@random,sha_cosine --repeats 50 --jobs 2 --out live-a
        budgetopt bench live digits --methods sha_cosine,restart --repeats 2 --compute 3 --out live-digits
        """,
        description=(
            "Run --repeats live searches per method: a real Optuna study with the method's sampler and pruner over the "
            "script's continuous space, every trial a real BudgetedRun, stopped at --compute full budgets (a rung that does "
            "not fit is not started). Each search's pick is trained again at the full budget on --truth-seeds, with linear "
            "decay and with a cosine schedule. One JSON line per search in DIR/searches.jsonl, written as it finishes; "
            "--resume runs only the searches not there yet."
        ),
    )
    parser.add_argument("script", help="a built-in study (fashion_mlp, digits, ...) or a .py study script")
    parser.add_argument("--out", required=True, metavar="DIR", help="where searches.jsonl and meta.json go")
    parser.add_argument(
        "--methods", default="sha_cosine@random,restart@random,sha_cosine", metavar="M,M",
        help="pruned methods of 'bench simulate' on one plain kind (default: %(default)s)",
    )
    parser.add_argument("--repeats", type=int, default=50, metavar="K", help="searches per method (default: %(default)s)")
    parser.add_argument(
        "--compute", default="10", metavar="C",
        help="cap per search: full budgets (10 or 10fb) or iterations (4050it) (default: %(default)s)"
    )
    parser.add_argument("--ladder", metavar="NAME", help="a ladder of the script (default: its default ladder)")
    parser.add_argument(
        "--truth-seeds", default="0,1", metavar="S,S",
        help="seeds each pick is trained again on for its truth (default: %(default)s)",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, metavar="N", help="worker processes, one thread each (default: %(default)s)"
    )
    parser.add_argument("--device", default="cpu", metavar="DEVICE", help="cpu, cuda, cuda:K (default: %(default)s)")
    parser.add_argument("--data-dir", metavar="DIR", help="where the study script finds its data")
    parser.add_argument("--quick", action="store_true", help="the script's quick data setting")
    parser.add_argument("--resume", action="store_true", help="complete the searches already in --out")
    parser.set_defaults(handler=_run_live)


def _run_live(args: argparse.Namespace) -> int:
    from budgetopt._validation import compute_parts, parse_compute
    from budgetopt.bench.live import LiveSpec, run_live
    from budgetopt.study_script import load_study_script

    try:
        seeds = tuple(int(s) for s in args.truth_seeds.split(",") if s.strip())
    except ValueError:
        raise InputError(f"--truth-seeds {args.truth_seeds!r}: expected integers separated by commas, e.g. 0,1") from None
    if not seeds or args.repeats < 1 or args.jobs < 1:
        raise InputError(
            f"--truth-seeds {args.truth_seeds!r}, --repeats {args.repeats}, --jobs {args.jobs}: "
            "need at least one seed, repeats >= 1 and jobs >= 1"
        )
    number, unit = compute_parts(args.compute, "--compute", "fb")
    if unit == "it":  # the spec keeps full budgets (what a campaign's meta.json has always held)
        full_budget = load_study_script(args.script).named_ladder(args.ladder)[1].max_budget
        number = parse_compute(args.compute, full_budget, "--compute", "fb") / full_budget
    spec = LiveSpec(args.script, args.ladder, number, seeds, args.device, args.data_dir, args.quick)
    out = run_live(
        spec, [m for m in args.methods.split(",") if m], args.repeats, args.out, jobs=args.jobs, resume=args.resume,
        command=_command_line(args), say=_say(args),
    )
    print(f"live searches: {out}")
    return 0


def summary_text(results: SimulationResults, out: Path) -> str:
    """A short table of the largest cap, and the verdict in words (:func:`~budgetopt.bench.report.verdict_sentences`)."""
    from budgetopt.bench.report import format_interval, format_number, verdict_sentences

    caps = results["searches"]["caps"]
    cap = caps[max(caps, key=int)]
    baseline = results["settings"]["baseline"]
    width = max(len(m) for m in cap["methods"])
    lines = [
        f"{results['settings']['repeats']} paired searches per method of {cap['full_budgets']:g} full budgets on "
        f"{results['table']['configs_complete']} configurations ({results['seconds']:.0f} s); baseline {baseline}",
        f"{'method':<{width}}  {'regret':>8}  {'minus baseline (95%)':>28}  {'deployable':>10}  {'minus baseline (95%)':>28}",
    ]
    for method, e in cap["methods"].items():
        d = format_interval(e["regret_minus_baseline"], sign=True) if "regret_minus_baseline" in e else ""
        p = format_interval(e["deployable_minus_baseline"], sign=True) if "deployable_minus_baseline" in e else ""
        lines.append(
            f"{method:<{width}}  {format_number(e['regret_summary']['mean']):>8}  {d:>28}  "
            f"{format_number(e['deployable_summary']['mean']):>10}  {p:>28}"
        )
    lines += ["", *verdict_sentences(results), "", f"report: {out / 'report.md'}"]
    return "\n".join(lines)


def _add_table_options(parser: argparse.ArgumentParser, configs_default: int | None) -> None:
    """The options of a table build, shared by ``bench build`` and ``compare``."""
    from budgetopt.bench.table import DEFAULT_KINDS
    from budgetopt.modes import COOLDOWN

    if configs_default is None:
        parser.add_argument("--configs", type=int, required=True, metavar="N", help="configurations in the pool")
    else:
        parser.add_argument(
            "--configs", type=int, default=configs_default, metavar="N", help="configurations in the pool (default: %(default)s)"
        )
    parser.add_argument(
        "--seeds", type=int, default=2, metavar="S", help="training seeds 0..S-1 per configuration (default: %(default)s)"
    )
    parser.add_argument(
        "--ladder",
        metavar="NAME",
        help="a ladder of the script (default, quick, or its named ones such as short/long) or MIN,MAX,ETA",
    )
    parser.add_argument(
        "--kinds",
        metavar="K,K",
        help="unit kinds: restart, branch, continue_<profile>, restart_beta<b>, branch_cooldown<f> (default: "
        f"{','.join(DEFAULT_KINDS)}; with --resume, the table's; kinds given with --resume are added to it)",
    )
    parser.add_argument("--pool-seed", type=int, default=0, metavar="S", help="seed of the pool's draw (default: %(default)s)")
    parser.add_argument(
        "--cooldown",
        type=float,
        metavar="F",
        help=f"branch mode's cooldown fraction (default: {COOLDOWN}; with --resume, the table's)",
    )
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="worker processes (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, metavar="N", help="torch threads per process (default: %(default)s)")
    parser.add_argument("--device", default="cpu", metavar="DEVICE", help="cpu, cuda, cuda:K (default: %(default)s)")
    parser.add_argument("--data-dir", metavar="DIR", help="where the study script finds its data")
    parser.add_argument("--quick", action="store_true", help="the script's quick data setting")
    parser.add_argument(
        "--resume", action="store_true", help="complete the table already there, or grow its pool (--configs) or kinds (--kinds)"
    )


def _add_search_options(parser: argparse.ArgumentParser, compute_default: str) -> None:
    """The options of a simulation, shared by ``bench simulate`` and ``compare``."""
    from budgetopt.bench.simulate import BASELINE, BUILTIN, DEFAULT_METHODS

    parser.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        metavar="M,M",
        help=f"methods: {', '.join(BUILTIN)}; a table kind (restart_beta0.3), or one for some configurations "
        "only (restart_beta0.3[optimizer=sgd]); module:Class[@kind] for your own optuna pruner; add @random, @tpe "
        "or @budget to choose the sampler (default: %(default)s)",
    )
    parser.add_argument(
        "--compute",
        default=compute_default,
        metavar="C[,C]",
        help="compute cap(s) per search: full budgets (10,30 or 10fb,30fb) or iterations (4050it) "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--repeats", type=int, default=200, metavar="K", help="paired repeats per method and cap (default: %(default)s)"
    )
    parser.add_argument(
        "--baseline",
        metavar="M",
        help=f"method the paired differences are taken against (default: {BASELINE} when simulated, else the first "
        "method)",
    )
    parser.add_argument(
        "--pool-bootstrap",
        type=int,
        default=20,
        metavar="B",
        help="resampled pools for the pool bootstrap, 0 for none (default: %(default)s)",
    )


def _table_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`~budgetopt.bench.build.build_table` that
    :func:`_add_table_options` defines (``bench build`` and ``compare``)."""
    return dict(
        configs=args.configs,
        seeds=args.seeds,
        kinds=None if args.kinds is None else [k for k in args.kinds.split(",") if k],
        ladder=args.ladder,
        pool_seed=args.pool_seed, cooldown=args.cooldown, jobs=args.jobs, threads=args.threads, device=args.device,
        data_dir=args.data_dir, quick=args.quick, resume=args.resume, progress=not args.quiet,
    )


def _say(args: argparse.Namespace):
    """Status lines on stderr, unless ``--quiet``."""
    return lambda message: None if args.quiet else print(f"budgetopt: {message}", file=sys.stderr)


def _command_line(args: argparse.Namespace) -> str:
    import shlex

    return "budgetopt " + " ".join(shlex.quote(a) for a in args.argv)


def add_compare(commands: argparse._SubParsersAction, command) -> None:
    parser = command(
        commands,
        "compare",
        "budget-aware search vs Optuna's successive halving on your study script: a small table, then simulated searches",
        """
        budgetopt compare digits --configs 16 --jobs 2                        # a few minutes
        budgetopt compare my_study.py --configs 40 --compute 10,30 --jobs 2 --out compare-mine
        budgetopt compare fashion_mlp --ladder long --configs 60 --jobs 2 --resume
        """,
        description=(
            "Train a pool of --configs configurations of the study script in every mode, every seed and every rung "
            "(OUT/table, as 'budgetopt bench build'), then replay --repeats paired searches per method at exactly equal "
            "compute against it (as 'budgetopt bench simulate'): selection regret, deployable score, rank fidelity. "
            "Writes OUT/report.md, OUT/results.json and PNG plots."
        ),
    )
    parser.add_argument(
        "script", help="a built-in study (fashion_mlp, digits, fashion_mnist, cifar10, ...) or a .py study script"
    )
    _add_table_options(parser, configs_default=24)
    _add_search_options(parser, compute_default="10,30")
    parser.add_argument("--out", metavar="DIR", help="output directory (default: compare-STUDY)")
    parser.set_defaults(handler=_run_compare)


def _run_compare(args: argparse.Namespace) -> int:
    from budgetopt.bench.compare import compare

    out = Path(args.out or f"compare-{Path(args.script).stem}")
    results = compare(
        args.script,
        out,
        **_table_options(args),
        methods=[m for m in args.methods.split(",") if m],
        compute=args.compute,
        repeats=args.repeats,
        baseline=args.baseline,
        pool_bootstrap=args.pool_bootstrap,
        command=_command_line(args),
        say=_say(args),
    )
    print(summary_text(results, out))
    return 0


def add_demo(commands: argparse._SubParsersAction, command) -> None:
    from budgetopt.bench import demo

    parser = command(
        commands,
        "demo",
        "a live budget-aware study, then paired searches replayed on a committed table: a verdict in a few minutes",
        """
        budgetopt demo
        budgetopt demo --out my-demo --data-dir ~/data     # Fashion-MNIST's IDX files in ~/data
        budgetopt demo --digits                             # the live study on scikit-learn's digits
        """,
        description=(
            f"Runs a budget-aware Optuna study live (BudgetPruner + BudgetSampler, restart mode, {demo.LIVE_COMPUTE} full "
            "budgets of compute) on the cheap Fashion-MNIST MLP study (scikit-learn's digits when Fashion-MNIST is not "
            "available) into OUT/studies.db, prints the best configuration for every budget, then replays "
            f"{demo.DEMO_REPEATS} paired searches per method ({', '.join(demo.DEMO_METHODS)}) on the committed table "
            "studies/tables/fashion_mlp-short at exactly equal compute and says which differences are significant."
        ),
    )
    parser.add_argument("--out", default="budgetopt-demo", metavar="DIR", help="output directory (default: %(default)s)")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where Fashion-MNIST's IDX files are (default: torchvision's root, Debian's package, else download)",
    )
    parser.add_argument("--digits", action="store_true", help="run the live study on scikit-learn's digits")
    parser.add_argument(
        "--table", metavar="DIR", help="the table to replay (default: the committed studies/tables/fashion_mlp-short)"
    )
    parser.add_argument("--jobs", type=int, default=2, metavar="N", help="worker processes of the replay (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=200, metavar="K", help="paired searches per method (default: %(default)s)")
    parser.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from budgetopt.bench.demo import run_demo

    text = run_demo(
        args.out,
        data_dir=args.data_dir,
        digits=args.digits,
        table=args.table,
        jobs=args.jobs,
        repeats=args.repeats,
        progress=not args.quiet,
        say=_say(args),
    )
    print(text)
    return 0
