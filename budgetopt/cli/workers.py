"""``budgetopt worker`` and ``budgetopt launch``: processes that share one study."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import optuna

if TYPE_CHECKING:
    from budgetopt.modes import Mode

from budgetopt._messages import message_line
from budgetopt.cli._common import add_command, say
from budgetopt.cli.errors import classify
from budgetopt.errors import InputError, ResourceError
from budgetopt.storage import (
    default_model_location,
    default_snapshot_location,
    open_shared_storage,
    open_snapshot_store,
    safe_url,
)
from budgetopt.study_script import builtin_studies, check_device


def _add_worker_options(options: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options ``worker`` and ``launch`` share (``launch`` hands them to each worker)."""
    from budgetopt.modes import COOLDOWN, MODES

    options.add_argument("script", help=f"a built-in study script ({', '.join(builtin_studies())}) or a .py file")
    options.add_argument(
        "--storage", required=True, help="sqlite:///FILE.db, postgresql://USER:PASSWORD@HOST/DB, or FILE.log"
    )
    options.add_argument("--study", required=True, help="the study to join; created when missing")
    options.add_argument(
        "--create", action="store_true", help="create the study even when its name is close to an existing one's"
    )
    budget = options.add_mutually_exclusive_group()
    budget.add_argument(
        "--n-trials", type=int, metavar="N", help="trials of the whole study, all workers together (default: no limit)"
    )
    budget.add_argument(
        "--compute",
        metavar="C",
        help="compute of the whole study, all workers together: 50000 or 50000it iterations, or 30fb full budgets of "
        "the script's ladder (default: no limit)",
    )
    options.add_argument(
        "--mode", choices=MODES, default="restart", help="how a trial goes from rung to rung (default: %(default)s)"
    )
    options.add_argument("--cooldown", type=float, metavar="F",
                         help="with --mode branch: the cooldown, a fraction of each rung in (0, 1] (default: the "
                         f"study's when it exists, else {COOLDOWN})")
    options.add_argument(
        "--brackets", default="1", metavar="B", help="1 for successive halving, N brackets, or 'hyperband' (default: %(default)s)"
    )
    options.add_argument(
        "--seed", type=int, default=0, metavar="S", help="trial n trains with seed SEED + n (default: %(default)s)"
    )
    options.add_argument("--quick", action="store_true", help="the study script's quick ladder and data")
    options.add_argument("--data-dir", metavar="DIR", help="where the study script finds its data")
    options.add_argument(
        "--snapshots",
        metavar="DIR_OR_URL",
        help="directory, s3://BUCKET or gs://BUCKET for rung snapshots "
        "(default: FILE.snapshots beside a file storage, else ./budgetopt-snapshots)",
    )
    options.add_argument(
        "--snapshot-device",
        choices=("cpu",),
        help="keep the in-memory state snapshots (restart's initial state, branch's trunk) on the CPU, through "
        "pinned memory, to spare GPU memory (default: on the model's device)",
    )
    options.add_argument(
        "--keep-models",
        type=int,
        default=0,
        metavar="K",
        help="keep the annealed model of every rung for the K best trials of each budget (restart and branch; "
        "'budgetopt export' writes one out; default: none)",
    )
    options.add_argument(
        "--models",
        metavar="DIR_OR_URL",
        help="directory, s3://BUCKET or gs://BUCKET for --keep-models "
        "(default: FILE.models beside a file storage, else ./budgetopt-models)",
    )
    options.add_argument(
        "--max-repeated-errors",
        type=int,
        default=3,
        metavar="N",
        help="stop when one error ended this many trials in a row (default: %(default)s)",
    )
    options.add_argument(
        "--max-retry", type=int, default=3, metavar="N", help="retries of a trial whose worker died (default: %(default)s)"
    )
    options.add_argument(
        "--heartbeat",
        type=int,
        default=60,
        metavar="SECONDS",
        help="seconds between heartbeats of a running trial, SQL storages (default: %(default)s)",
    )
    options.add_argument(
        "--grace-period",
        type=int,
        metavar="SECONDS",
        help="seconds without a heartbeat before a trial is retried (default: 2 x --heartbeat)",
    )
    return options


def add_worker(commands: argparse._SubParsersAction) -> None:
    parser = add_command(
        commands,
        "worker",
        "run trials of a shared study until the study has its trials or compute",
        """
        budgetopt worker digits --storage sqlite:///studies.db --study digits --n-trials 50
        budgetopt worker my_study.py --storage postgresql://me:secret@db-host/studies --study s1 \\
            --n-trials 200 --device cuda:0 --snapshots /shared/snapshots
        """,
        description=(
            "One worker process: join the study (or create it, with budgetopt's sampler and pruner on the study "
            "script's ladder) and run trials until the study -- all its workers together -- has --n-trials trials "
            "or --compute iterations. Start one per GPU, on as many machines as you like, against one storage. "
            "A trial whose worker died is retried from its last rung snapshot (SQL storages)."
        ),
    )
    _add_worker_options(parser)
    parser.add_argument("--device", default="cpu", metavar="DEVICE", help="cpu, cuda, cuda:K or mps (default: %(default)s)")
    parser.set_defaults(handler=_run_worker)


def add_launch(commands: argparse._SubParsersAction) -> None:
    parser = add_command(
        commands,
        "launch",
        "start one worker per GPU (or N on the CPU) on this machine and wait for them",
        """
        budgetopt launch cifar10 --storage postgresql://me:secret@db-host/studies --study c10 --n-trials 200 --gpus 0,1,2,3
        budgetopt launch digits --storage studies.log --study digits --n-trials 40 --workers 4
        """,
        description=(
            "Start 'budgetopt worker' once per GPU of --gpus (each sees only its GPU) or --workers times on the CPU, "
            "with the same options, and wait for them. Ctrl-C stops every worker (their trials are re-queued); a "
            "second Ctrl-C kills them. Exits non-zero when a worker failed."
        ),
    )
    _add_worker_options(parser)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--gpus", metavar="K,K,...", help="comma-separated GPU indices, one worker each (e.g. 0,1,2,3)")
    where.add_argument("--workers", type=int, metavar="N", help="this many CPU workers")
    parser.set_defaults(handler=_run_launch)


def _worker_setup(args: argparse.Namespace, load_data: bool) -> dict:
    """Check a worker's options and open what it needs -- script, data (``load_data``),
    snapshot store, storage with the heartbeat, study -- in that order, so that nothing
    is written to the storage when an input is bad (an InputError)."""
    from budgetopt import workers
    from budgetopt._validation import check_fraction, check_iterations, parse_compute
    from budgetopt.pruners import BudgetPruner
    from budgetopt.study_script import load_study_script

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the heartbeat is "experimental"
    if args.compute is not None:  # checked now, converted once the script's full budget is known
        parse_compute(args.compute, 1, "--compute", "it")
    n_trials = None if args.n_trials is None else check_iterations(args.n_trials, "--n-trials")
    check_iterations(args.max_repeated_errors, "--max-repeated-errors")
    check_iterations(args.max_retry, "--max-retry", minimum=0)
    heartbeat = check_iterations(args.heartbeat, "--heartbeat (seconds)")
    grace = 2 * heartbeat if args.grace_period is None else check_iterations(args.grace_period, "--grace-period (seconds)")
    brackets = int(args.brackets) if args.brackets.isdigit() else args.brackets
    if args.cooldown is not None:
        check_fraction(args.cooldown, "--cooldown")
    mode = _mode(args)  # checked here; a branch study's own cooldown is read once the storage is open
    check_iterations(args.keep_models, "--keep-models", minimum=0)
    if args.keep_models and args.mode == "continue":
        raise InputError(
            f"--keep-models {args.keep_models} keeps annealed rung models: --mode continue has none (restart or branch)"
        )
    if args.models is not None and not args.keep_models:
        raise InputError(f"--models {args.models} is where --keep-models keeps models: give --keep-models K too")
    script = load_study_script(args.script)
    full_budget = script.ladder_for(args.quick).max_budget
    budget = workers.StudyBudget(
        n_trials=n_trials,
        compute=None if args.compute is None else parse_compute(args.compute, full_budget, "--compute", "it"),
    )
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise InputError(f"--data-dir {args.data_dir} does not exist (or is not a directory)")
    data = None
    if load_data:
        try:
            data = script.load_data(data_dir=args.data_dir, quick=args.quick)
        except Exception as error:
            if classify(error) is not None:  # bad input, the user's code, the environment: main says which
                raise
            # What a built-in study's download or files raise: unclassified, but the data's.
            raise ResourceError(f"{script.name}: loading its data failed: {message_line(error)}") from error
    ladder = script.ladder_for(args.quick)
    pruner = BudgetPruner(ladder.min_budget, ladder.max_budget, ladder.reduction_factor, brackets=brackets)
    retry = workers.RetryStaleTrial(args.max_retry)
    rdb_options = workers.heartbeat_options(heartbeat, grace, retry)
    if args.storage.startswith("postgresql"):  # a host that does not answer: an error, not a hang
        rdb_options["engine_kwargs"] = {"connect_args": {"connect_timeout": 10}}
    storage = open_shared_storage(args.storage, rdb_options)
    # After the storage, and removed again when the study is refused: a bad input leaves
    # no empty snapshot or model directory behind.
    snapshots = args.snapshots or default_snapshot_location(args.storage)
    models = (args.models or default_model_location(args.storage)) if args.keep_models else None
    new_directories = [d for d in (snapshots, models) if d is not None and "://" not in d and not Path(d).exists()]
    store = retry.snapshot_store = open_snapshot_store(snapshots)
    model_store = None if models is None else open_snapshot_store(models, "model")
    mode = _mode(args, _recorded_setup(storage, args.study))
    try:
        study = workers.join_study(
            storage, args.study, direction=script.direction, pruner=pruner,
            setup=_worker_study_setup(script.name, mode), create=args.create,
        )
    except Exception:
        for directory in new_directories:
            with contextlib.suppress(OSError):
                Path(directory).rmdir()
        raise
    return {"script": script, "mode": mode, "data": data, "budget": budget, "store": store, "snapshots": snapshots,
            "retry": retry, "heartbeat": heartbeat, "study": study, "models": models, "model_store": model_store}


def _mode(args: argparse.Namespace, recorded: dict | None = None) -> Mode:
    """The workers' mode; ``--cooldown`` is branch mode's (the others have none). Without
    ``--cooldown``, a branch worker takes the cooldown of the study's ``recorded`` setup
    (a study made before the default changed keeps its own), else the default."""
    from budgetopt.modes import mode_with

    cooldown = args.cooldown
    if cooldown is None and recorded and recorded.get("mode") == args.mode:
        cooldown = recorded.get("cooldown")
    return mode_with(args.mode, cooldown=cooldown)


def _recorded_setup(storage: optuna.storages.BaseStorage, name: str) -> dict | None:
    """The setup (script, mode, its option) recorded by the study ``name``'s first worker,
    or None when there is no such study yet."""
    from budgetopt.attrs import STUDY_ATTR_SETUP

    for study in storage.get_all_studies():
        if study.study_name == name:
            return study.user_attrs.get(STUDY_ATTR_SETUP)
    return None


def _worker_study_setup(script: str, mode: Mode) -> dict:
    """What every worker of a study must share: the script and mode, and the mode's
    option (branch: the cooldown)."""
    return {"script": script, "mode": mode.name} | mode.options()


def _run_worker(args: argparse.Namespace) -> int:
    import signal

    from budgetopt import workers
    from budgetopt.study_script import make_objective

    device = check_device(args.device)
    setup = _worker_setup(args, load_data=True)
    script, study = setup["script"], setup["study"]
    mode = setup["mode"]
    keep = {"keep_models": args.keep_models, "model_store": setup["model_store"]} if args.keep_models else {}
    objective = make_objective(
        script, mode=mode.name, device=device, seed=args.seed, data=setup["data"],
        snapshot_store=setup["store"], progress_seconds=setup["heartbeat"], snapshot_device=args.snapshot_device,
        **mode.options(), **keep,
    )
    identity = workers.worker_identity(device)
    label = os.environ.get(workers.LAUNCH_LABEL)
    status = (lambda m: say(args, f"[{label}] {m}")) if label else (lambda m: say(args, m))
    status(f"worker {identity['host']}:{identity['pid']} on {device} joined study {study.study_name!r} "
           f"({args.mode} mode); rung snapshots in {setup['snapshots']}"
           + (f"; the {args.keep_models} best models of each budget in {setup['models']}" if args.keep_models else ""))
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # preempted: re-queue the trial
    try:
        report = workers.run_worker(
            study, objective, setup["budget"], max_repeated_errors=args.max_repeated_errors,
            snapshot_store=setup["store"], requeue=setup["retry"], identity=identity, say=status,
        )
    except workers.RepeatedTrialError as error:
        raise ResourceError(str(error)) from error
    except optuna.exceptions.StorageInternalError as error:
        raise ResourceError(f"lost the storage {safe_url(args.storage)!r}: {message_line(error)}") from error
    finally:
        signal.signal(signal.SIGTERM, previous)
    if args.keep_models:  # the leftovers of stale views: whichever worker ends last leaves exactly the top k
        from budgetopt.keep import sweep

        sweep(study, setup["model_store"], args.keep_models)
    print(f"worker {identity['host']}:{identity['pid']}: {report.trials} trials "
          f"({report.complete} complete, {report.pruned} pruned, {report.failed} failed"
          + (f", {report.abandoned} left to a retry after a late heartbeat" if report.abandoned else "") + ")")
    return 0


def _worker_argv(args: argparse.Namespace) -> list[str]:
    """The command line of ``budgetopt worker`` with the shared options of ``args``."""
    argv = [args.script]
    for action in _add_worker_options(argparse.ArgumentParser(add_help=False))._actions:
        if not action.option_strings:
            continue
        value = getattr(args, action.dest)
        if isinstance(action, argparse._StoreTrueAction):
            argv += [action.option_strings[0]] if value else []
        elif value is not None and value != action.default:
            argv += [action.option_strings[0], str(value)]
    return argv + (["--quiet"] if args.quiet else [])


def _run_launch(args: argparse.Namespace) -> int:
    from budgetopt import workers

    gpus = None
    if args.gpus is not None:
        try:
            gpus = [int(g) for g in args.gpus.split(",")]
        except ValueError:
            raise InputError(f"--gpus must be comma-separated GPU indices like 0,1,2,3, got {args.gpus!r}") from None
        if any(g < 0 for g in gpus):
            raise InputError(f"--gpus must be GPU indices >= 0, got {args.gpus!r}")
        for gpu in sorted(set(gpus)):
            check_device(f"cuda:{gpu}")
    elif args.workers < 1:
        raise InputError(f"--workers must be an integer >= 1, got {args.workers}")
    # Check everything once here (and create the study once) rather than in every worker.
    setup = _worker_setup(args, load_data=False)
    say(args, f"study {setup['study'].study_name!r}: rung snapshots in {setup['snapshots']}"
        + (f", kept models in {setup['models']}" if args.keep_models else ""))
    result = workers.launch(_worker_argv(args), gpus=gpus, workers=args.workers, say=lambda m: say(args, m))
    if result.interrupted:
        print("budgetopt: interrupted", file=sys.stderr)
        return 130
    if result.failed and all(code == 2 for _, code in result.failed):
        return 2  # bad input (the study script breaks the protocol, ...): each worker said it in one line
    if result.failed:
        raise ResourceError(
            f"{len(result.failed)} of {len(result.workers)} workers failed: "
            + ", ".join(f"{label} exited with {code}" for label, code in result.failed)
        )
    return 0
