"""The ``budgetopt`` command line (also ``python -m budgetopt``).

Conventions, the same for every command:

- a storage is a URL as Optuna writes it: ``sqlite:///studies.db``,
  ``postgresql://user:password@host/db``, or a path ending in ``.log`` for a
  ``JournalFileBackend`` journal (:func:`open_storage`);
- ``--study NAME`` picks a study; left out, the storage's only study is used, and with
  several the error lists their names (:func:`load_study`);
- exit status 0 on success, 2 on bad usage or bad input (a one-line
  ``budgetopt: error: ...`` on stderr, no traceback), 1 when a well-formed command
  fails (a port in use, a database that does not answer); set ``BUDGETOPT_DEBUG=1``
  to see the traceback behind such a line;
- results go to stdout, progress and status lines to stderr; ``--quiet`` silences
  the latter; progress bars (tqdm, :func:`progress`) never break when the output is
  not a terminal.

Adding a command is one function that builds its subparser and one handler, with the
builder listed in ``COMMANDS``::

    def _add_compare(commands) -> None:
        parser = _command(commands, "compare", "compare modes at equal compute", '''
            budgetopt compare fashion_mnist --storage sqlite:///compare.db
        ''')
        parser.add_argument("script", help="a built-in study script or a .py file")
        parser.set_defaults(handler=_run_compare)

    def _run_compare(args: argparse.Namespace) -> int:
        storage = open_storage(args.storage, create=True)
        ...                                  # call the library; raise CommandError or
        return 0                             # ValueError for bad input

    COMMANDS = (..., _add_compare)
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import re
import socket
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import optuna

T = TypeVar("T")


class CommandError(Exception):
    """A one-line error for the user; ``status`` is the exit status (2: bad input)."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


# -- helpers every command uses -------------------------------------------------------------


def say(args: argparse.Namespace, message: str) -> None:
    """A status line on stderr, unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr, flush=True)


def progress(iterable: Iterable[T], args: argparse.Namespace, **tqdm_kwargs: Any) -> Iterable[T]:
    """``iterable`` with a tqdm progress bar on stderr, none with ``--quiet``.

    tqdm writes plain lines, not a live bar, when stderr is not a terminal.
    """
    from tqdm.auto import tqdm

    return tqdm(iterable, file=sys.stderr, disable=getattr(args, "quiet", False), dynamic_ncols=True, **tqdm_kwargs)


def _safe_url(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def open_storage(url: str, *, create: bool = False, rdb_options: dict | None = None) -> optuna.storages.BaseStorage:
    """The Optuna storage at ``url``, or a :class:`CommandError` that says why not.

    ``url`` is ``sqlite:///FILE``, any other SQLAlchemy URL Optuna accepts
    (``postgresql://...``, ``mysql://...``), or a path ending in ``.log`` (a journal
    file). With ``create=False`` (commands that read a study) a SQLite or journal file
    must exist already and nothing is created in it; with ``create=True`` (commands
    that run a study) it is created when missing. ``rdb_options`` go to
    ``RDBStorage`` (e.g. the heartbeat of ``budgetopt worker``); a journal ignores them.
    """
    shown = _safe_url(url)
    if "://" not in url:
        if not url.endswith(".log"):
            raise CommandError(
                f"storage must be sqlite:///FILE.db, postgresql://USER@HOST/DB or a FILE.log journal, got {shown!r}"
            )
        if not create and not Path(url).is_file():
            raise CommandError(f"storage {shown!r} does not exist (no such journal file)")
        try:
            return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url))
        except OSError as error:
            raise CommandError(f"storage {shown!r} cannot be opened: {_one_line(error)}", status=1) from error
    if url.startswith("sqlite:"):
        path = url.split(":///", 1)[1].split("?", 1)[0] if ":///" in url else ""
        if path in ("", ":memory:"):
            raise CommandError(f"storage {shown!r} is an in-memory database: give a file, sqlite:///FILE.db")
        if not create and not Path(path).is_file():
            raise CommandError(f"storage {shown!r} does not exist (no such file: {path})")
    try:
        storage = optuna.storages.RDBStorage(url, skip_table_creation=not create, **(rdb_options or {}))
        storage.get_all_studies()  # fails here when the database holds no Optuna tables
    except Exception as error:  # any failure to open is the storage's, whatever raised it
        cause = _root_cause(error)  # Optuna and SQLAlchemy wrap the telling exception
        if isinstance(cause, ModuleNotFoundError):
            raise CommandError(
                f"storage {shown!r} needs the Python module {cause.name!r}, which is not installed "
                "(PostgreSQL: pip install 'budgetopt[postgres]')",
                status=1,
            ) from error
        raise CommandError(f"storage {shown!r} cannot be opened as an Optuna storage: {_one_line(cause)}", status=1) from error
    return storage


def _root_cause(error: BaseException) -> BaseException:
    """The innermost exception of a chain of ``raise ... from`` / ``during handling``."""
    while (error.__cause__ or error.__context__) is not None:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return error


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return [s.study_name for s in storage.get_all_studies()]


def _listing(names: list[str], most: int = 20) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def load_study(storage: optuna.storages.BaseStorage, url: str, name: str | None) -> optuna.Study:
    """The study ``name`` in ``storage`` (opened from ``url``), or its only study when
    ``name`` is None; a :class:`CommandError` listing the names otherwise."""
    names = study_names(storage)
    shown = _safe_url(url)
    if name is None:
        if not names:
            raise CommandError(f"storage {shown!r} has no studies")
        if len(names) > 1:
            raise CommandError(f"storage {shown!r} has {len(names)} studies, choose one with --study: {_listing(names)}")
        name = names[0]
    elif name not in names:
        raise CommandError(f"no study {name!r} in {shown!r}; its studies: {_listing(names) or 'none'}")
    return optuna.load_study(study_name=name, storage=storage)


def _one_line(error: BaseException) -> str:
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(str(text).split()) or type(error).__name__


def _command(
    commands: argparse._SubParsersAction, name: str, summary: str, examples: str, description: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand with the common options (``--quiet``) and an examples epilog."""
    return commands.add_parser(
        name,
        help=summary,
        description=textwrap.fill(description or summary, 80),
        epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common()],
    )


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no status lines or progress bars on stderr")
    return common


# -- budgetopt dashboard --------------------------------------------------------------------


def _add_dashboard(commands: argparse._SubParsersAction) -> None:
    parser = _command(
        commands,
        "dashboard",
        "publish the note and figures, then serve optuna-dashboard",
        """
        budgetopt dashboard sqlite:///studies.db
        budgetopt dashboard sqlite:///studies.db --study cifar10 --port 8081
        budgetopt dashboard studies.log --host 0.0.0.0     # reachable from other machines
        """,
        description=(
            "Write the budgetopt note and figures (ladder, brackets, modes, compute, rung values, "
            "learning rate of each mode) into the study, then start optuna-dashboard on the storage. "
            "Without --study, every budgetopt study in the storage is published."
        ),
    )
    parser.add_argument("storage", help="sqlite:///FILE.db, postgresql://..., or FILE.log")
    parser.add_argument("--study", help="publish only this study (default: every budgetopt study)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on, 0 for any free one (default: %(default)s)")
    parser.add_argument("--no-publish", action="store_true", help="serve the storage as it is, write nothing")
    parser.add_argument("--trial-notes", action="store_true", help="also write a short note to each finished trial")
    parser.set_defaults(handler=_run_dashboard)


def _run_dashboard(args: argparse.Namespace) -> int:
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    import optuna_dashboard

    from budgetopt.dashboard import is_budgetopt_study, publish

    if not 0 <= args.port <= 65535:
        raise CommandError(f"--port must be in [0, 65535], got {args.port}")
    storage = open_storage(args.storage)
    if args.study is not None:
        studies = [load_study(storage, args.storage, args.study)]
    else:
        studies = [optuna.load_study(study_name=n, storage=storage) for n in study_names(storage)]

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *log_args: Any) -> None:  # the dashboard polls: no line per request
            pass

    # Listen first: a port in use fails before anything is written.
    try:
        server = make_server(args.host, args.port, optuna_dashboard.wsgi(storage), WSGIServer, QuietHandler)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise CommandError(f"port {args.port} on {args.host} is in use: choose another with --port", status=1) from error
        if isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL:
            raise CommandError(f"cannot listen on host {args.host!r}: {_one_line(error)}") from error
        raise CommandError(f"cannot listen on {args.host}:{args.port}: {_one_line(error)}", status=1) from error

    with server:
        if not args.no_publish:
            for study in studies:
                if is_budgetopt_study(study):
                    written = publish(study, trial_notes=args.trial_notes)
                    say(args, f"published study {study.study_name!r}: note {'updated' if written['note'] else 'unchanged'}, "
                        f"{len(written['figures'])} figure(s) updated, {written['trial_notes']} trial note(s) written")
                elif args.study is not None:
                    raise CommandError(f"study {study.study_name!r} is not a budgetopt study (no trial ran with BudgetedRun)")
                else:
                    say(args, f"skipped study {study.study_name!r}: not a budgetopt study")
        host, port = server.server_address[:2]
        url = f"http://{host}:{port}/dashboard/"
        if args.study is not None:
            url += f"studies/{studies[0]._study_id}"
        print(f"optuna-dashboard: {url}", flush=True)
        say(args, "serving until Ctrl-C")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


# -- budgetopt schedules --------------------------------------------------------------------

_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _add_schedules(commands: argparse._SubParsersAction) -> None:
    from budgetopt.schedules import PROFILES

    parser = _command(
        commands,
        "schedules",
        "show the learning-rate profiles at a budget",
        """
        budgetopt schedules                                  # every profile at 1000 iterations
        budgetopt schedules --budget 2700 --profiles linear,cosine,step --out profiles.html
        budgetopt schedules --budget 500 --warmup 50 --out profiles.png
        """,
        description=(
            "Print the multiplier of the peak learning rate at 0/25/50/75/100% of a budget for each "
            "profile, and with --out plot the profiles over the budget (.html: plotly, .png: matplotlib). "
            "Profiles: " + ", ".join(PROFILES) + "."
        ),
    )
    parser.add_argument("--budget", type=int, default=1000, help="iterations (default: %(default)s)")
    parser.add_argument("--profiles", default=",".join(PROFILES), help="comma-separated profile names (default: all)")
    parser.add_argument("--warmup", type=int, default=0, help="linear warmup iterations (default: %(default)s)")
    parser.add_argument("--out", help="write the plot to FILE.html or FILE.png")
    parser.set_defaults(handler=_run_schedules)


def _run_schedules(args: argparse.Namespace) -> int:
    from budgetopt._validation import check_iterations
    from budgetopt.schedules import budget_multiplier, check_warmup, get_profile

    budget = check_iterations(args.budget, "--budget")
    warmup = check_warmup(args.warmup, budget, "--warmup")
    names = [n.strip() for n in args.profiles.split(",") if n.strip()]
    if not names:
        raise CommandError(f"--profiles needs at least one profile name, got {args.profiles!r}")
    try:
        profiles = {name: get_profile(name) for name in names}
    except ValueError as error:
        raise CommandError(f"--profiles: {error}") from error
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in (".html", ".png"):
        raise CommandError(f"--out must end in .html or .png, got {args.out!r}")

    print(f"multiplier of the peak learning rate at each fraction of a {budget}-iteration budget (warmup {warmup}):")
    width = max(7, *map(len, names))
    print("profile".ljust(width) + "".join(f"{f:>8.0%}" for f in _FRACTIONS))
    for name, profile in profiles.items():
        row = (budget_multiplier(f * budget, budget, profile, warmup) for f in _FRACTIONS)  # type: ignore[arg-type]
        print(name.ljust(width) + "".join(f"{m:8.3f}" for m in row))

    if out is not None:
        steps = sorted({round(i * budget / 1000) for i in range(1001)}) if budget > 1000 else list(range(budget + 1))
        curves = {name: [budget_multiplier(t, budget, p, warmup) for t in steps] for name, p in profiles.items()}
        title = f"Learning-rate profiles over a budget of {budget} iterations" + (f", warmup {warmup}" if warmup else "")
        _plot_profiles(out, steps, curves, title)
        say(args, f"wrote {out}")
    return 0


def _plot_profiles(out: Path, steps: list[int], curves: dict[str, list[float]], title: str) -> None:
    if out.suffix.lower() == ".html":
        import plotly.graph_objects as go

        fig = go.Figure([go.Scatter(x=steps, y=y, mode="lines", name=name) for name, y in curves.items()])
        fig.update_layout(
            title=title, xaxis_title="iteration", yaxis_title="multiplier of the peak learning rate", template="plotly_white"
        )
        fig.write_html(out, include_plotlyjs=True)
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for name, y in curves.items():
        ax.plot(steps, y, label=name)
    ax.set(title=title, xlabel="iteration", ylabel="multiplier of the peak learning rate")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


# -- budgetopt report -----------------------------------------------------------------------


def _add_report(commands: argparse._SubParsersAction) -> None:
    parser = _command(
        commands,
        "report",
        "summarize a study and write its figures as HTML",
        """
        budgetopt report sqlite:///studies.db --study fashion_mnist
        budgetopt report studies.log --out reports/run1 --top 10
        budgetopt report sqlite:///studies.db --study cifar10 --publish   # also refresh optuna-dashboard
        """,
        description=(
            "Print the ladder, trials per rung and survivors, compute spent against a full-budget "
            "search, and the best trials with their plan and compute; write the study note (note.md) "
            "and the figures (one .html each) to --out."
        ),
    )
    parser.add_argument("storage", help="sqlite:///FILE.db, postgresql://..., or FILE.log")
    parser.add_argument("--study", help="the study (default: the storage's only study)")
    parser.add_argument("--out", help="directory for note.md and the figures (default: report-STUDY)")
    parser.add_argument("--top", type=int, default=5, help="best trials to list (default: %(default)s)")
    parser.add_argument("--publish", action="store_true", help="also write the note and figures into the storage (optuna-dashboard)")
    parser.add_argument("--trial-notes", action="store_true", help="with --publish, also write a note to each finished trial")
    parser.set_defaults(handler=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from budgetopt import dashboard

    if args.top < 1:
        raise CommandError(f"--top must be an integer >= 1, got {args.top}")
    storage = open_storage(args.storage)
    study = load_study(storage, args.storage, args.study)
    summary = dashboard.summarize(study)
    print(dashboard.report_text(summary, top=args.top))

    out = Path(args.out) if args.out else Path("report-" + re.sub(r"[^\w.-]+", "_", study.study_name))
    out.mkdir(parents=True, exist_ok=True)
    (out / "note.md").write_text(dashboard.note_markdown(summary) + "\n")
    figures = dashboard.study_figures(summary)
    for graph_id, figure in figures.items():
        figure.write_html(out / f"{graph_id}.html", include_plotlyjs="directory")
    say(args, f"wrote {out / 'note.md'} and {len(figures)} figures ({', '.join(f'{g}.html' for g in figures)}) in {out}")
    if args.publish:
        written = dashboard.publish(study, trial_notes=args.trial_notes)
        say(args, f"published to the storage: {len(written['figures'])} figure(s) updated")
    return 0


# -- budgetopt worker / budgetopt launch ----------------------------------------------------


def _add_worker_options(options: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options ``worker`` and ``launch`` share (``launch`` hands them to each worker)."""
    from budgetopt.run import COOLDOWN, MODES

    options.add_argument("script", help="a built-in study script (digits, fashion_mnist, cifar10) or a .py file")
    options.add_argument("--storage", required=True, help="sqlite:///FILE.db, postgresql://USER:PASSWORD@HOST/DB, or FILE.log")
    options.add_argument("--study", required=True, help="the study to join; created when missing")
    options.add_argument("--create", action="store_true", help="create the study even when its name is close to an existing one's")
    budget = options.add_mutually_exclusive_group()
    budget.add_argument("--n-trials", type=int, metavar="N", help="trials of the whole study, all workers together (default: no limit)")
    budget.add_argument("--compute", type=int, metavar="ITERATIONS", help="iterations of the whole study, all workers together (default: no limit)")
    options.add_argument("--mode", choices=MODES, default="restart", help="how a trial goes from rung to rung (default: %(default)s)")
    options.add_argument("--cooldown", type=float, default=COOLDOWN, metavar="F",
                         help="with --mode branch: the cooldown, a fraction of each rung in (0, 1] (default: %(default)s)")
    options.add_argument("--brackets", default="1", metavar="B", help="1 for successive halving, N brackets, or 'hyperband' (default: %(default)s)")
    options.add_argument("--seed", type=int, default=0, metavar="S", help="trial n trains with seed SEED + n (default: %(default)s)")
    options.add_argument("--quick", action="store_true", help="the study script's quick ladder and data")
    options.add_argument("--data-dir", metavar="DIR", help="where the study script finds its data")
    options.add_argument("--snapshots", metavar="DIR_OR_URL", help="directory, s3://BUCKET or gs://BUCKET for rung snapshots (default: FILE.snapshots beside a file storage, else ./budgetopt-snapshots)")
    options.add_argument("--max-repeated-errors", type=int, default=3, metavar="N", help="stop when one error ended this many trials in a row (default: %(default)s)")
    options.add_argument("--max-retry", type=int, default=3, metavar="N", help="retries of a trial whose worker died (default: %(default)s)")
    options.add_argument("--heartbeat", type=int, default=60, metavar="SECONDS", help="seconds between heartbeats of a running trial, SQL storages (default: %(default)s)")
    options.add_argument("--grace-period", type=int, metavar="SECONDS", help="seconds without a heartbeat before a trial is retried (default: 2 x --heartbeat)")
    return options


def _add_worker(commands: argparse._SubParsersAction) -> None:
    parser = _command(
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


def _add_launch(commands: argparse._SubParsersAction) -> None:
    parser = _command(
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
    is written to the storage when an input is bad (ValueError or CommandError)."""
    from budgetopt import workers
    from budgetopt._validation import check_fraction, check_iterations
    from budgetopt.pruners import BudgetPruner
    from budgetopt.study_script import load_study_script

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the heartbeat is "experimental"
    budget = workers.StudyBudget(
        n_trials=None if args.n_trials is None else check_iterations(args.n_trials, "--n-trials"),
        compute=None if args.compute is None else check_iterations(args.compute, "--compute"),
    )
    check_iterations(args.max_repeated_errors, "--max-repeated-errors")
    check_iterations(args.max_retry, "--max-retry", minimum=0)
    heartbeat = check_iterations(args.heartbeat, "--heartbeat (seconds)")
    grace = 2 * heartbeat if args.grace_period is None else check_iterations(args.grace_period, "--grace-period (seconds)")
    brackets = int(args.brackets) if args.brackets.isdigit() else args.brackets
    check_fraction(args.cooldown, "--cooldown")
    script = load_study_script(args.script)
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise CommandError(f"--data-dir {args.data_dir} does not exist (or is not a directory)")
    data = None
    if load_data:
        try:
            data = script.load_data(data_dir=args.data_dir, quick=args.quick)
        except (ValueError, TypeError, FileNotFoundError, NotADirectoryError, PermissionError):
            raise
        except Exception as error:
            raise CommandError(f"{script.name}: loading its data failed: {_one_line(error)}", status=1) from error
    ladder = script.ladder_for(args.quick)
    pruner = BudgetPruner(ladder.min_budget, ladder.max_budget, ladder.reduction_factor, brackets=brackets)
    retry = workers.RetryStaleTrial(args.max_retry)
    rdb_options = workers.heartbeat_options(heartbeat, grace, retry)
    if args.storage.startswith("postgresql"):  # a host that does not answer: an error, not a hang
        rdb_options["engine_kwargs"] = {"connect_args": {"connect_timeout": 10}}
    storage = _open_shared_storage(args.storage, rdb_options)
    # After the storage, and removed again when the study is refused: a bad input leaves
    # no empty snapshot directory behind.
    snapshots = args.snapshots or workers.default_snapshot_location(args.storage)
    new_directory = "://" not in snapshots and not Path(snapshots).exists()
    store = retry.snapshot_store = workers.open_snapshot_store(snapshots)
    try:
        study = workers.join_study(
            storage, args.study, direction=script.direction, pruner=pruner,
            setup=_worker_study_setup(script.name, args.mode, args.cooldown), create=args.create,
        )
    except Exception:
        if new_directory:
            with contextlib.suppress(OSError):
                Path(snapshots).rmdir()
        raise
    return {"script": script, "data": data, "budget": budget, "store": store, "snapshots": snapshots,
            "retry": retry, "heartbeat": heartbeat, "study": study}


def _worker_study_setup(script: str, mode: str, cooldown: float) -> dict:
    """What every worker of a study must share: the script and mode, and in branch mode
    the cooldown."""
    return {"script": script, "mode": mode} | ({"cooldown": cooldown} if mode == "branch" else {})


def _open_shared_storage(url: str, rdb_options: dict) -> optuna.storages.BaseStorage:
    """:func:`open_storage` for workers that start together: on a fresh database they all
    create Optuna's tables at once, and all but one fail on a table or type that the
    other just made ("already exists", "duplicate key"). Those try again."""
    import random
    import time

    for attempt in range(5):
        try:
            return open_storage(url, create=True, rdb_options=rdb_options)
        except CommandError as error:
            text = str(error.__cause__ or "")
            if attempt == 4 or not ("already exists" in text or "duplicate key" in text):
                raise
            time.sleep(random.uniform(0.2, 1.0))
    raise AssertionError("unreachable")


def _check_device(spec: str) -> str:
    import torch

    try:
        device = torch.device(spec)
    except RuntimeError:
        raise CommandError(f"--device must be cpu, cuda, cuda:K or mps, got {spec!r}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            raise CommandError(f"--device {spec}: no CUDA GPU is visible on this machine")
        if device.index is not None and device.index >= count:
            raise CommandError(f"--device {spec}: this machine has {count} GPU(s), cuda:0 to cuda:{count - 1}")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise CommandError(f"--device {spec}: MPS is not available on this machine")
    elif device.type != "cpu":
        raise CommandError(f"--device must be cpu, cuda, cuda:K or mps, got {spec!r}")
    return str(device)


def _run_worker(args: argparse.Namespace) -> int:
    import signal

    from budgetopt import workers
    from budgetopt.study_script import make_objective

    device = _check_device(args.device)
    setup = _worker_setup(args, load_data=True)
    script, study = setup["script"], setup["study"]
    objective = make_objective(
        script, mode=args.mode, device=device, seed=args.seed, data=setup["data"],
        snapshot_store=setup["store"], progress_seconds=setup["heartbeat"], cooldown=args.cooldown,
    )
    identity = workers.worker_identity(device)
    label = os.environ.get(workers.LAUNCH_LABEL)
    status = (lambda m: say(args, f"[{label}] {m}")) if label else (lambda m: say(args, m))
    status(f"worker {identity['host']}:{identity['pid']} on {device} joined study {study.study_name!r} "
           f"({args.mode} mode); rung snapshots in {setup['snapshots']}")
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # preempted: re-queue the trial
    try:
        report = workers.run_worker(
            study, objective, setup["budget"], max_repeated_errors=args.max_repeated_errors,
            snapshot_store=setup["store"], requeue=setup["retry"], identity=identity, say=status,
        )
    except workers.RepeatedTrialError as error:
        raise CommandError(str(error), status=1) from error
    except optuna.exceptions.StorageInternalError as error:
        raise CommandError(f"lost the storage {_safe_url(args.storage)!r}: {_one_line(error)}", status=1) from error
    finally:
        signal.signal(signal.SIGTERM, previous)
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
            raise CommandError(f"--gpus must be comma-separated GPU indices like 0,1,2,3, got {args.gpus!r}") from None
        if any(g < 0 for g in gpus):
            raise CommandError(f"--gpus must be GPU indices >= 0, got {args.gpus!r}")
        for gpu in sorted(set(gpus)):
            _check_device(f"cuda:{gpu}")
    elif args.workers < 1:
        raise CommandError(f"--workers must be an integer >= 1, got {args.workers}")
    # Check everything once here (and create the study once) rather than in every worker.
    setup = _worker_setup(args, load_data=False)
    say(args, f"study {setup['study'].study_name!r}: rung snapshots in {setup['snapshots']}")
    result = workers.launch(_worker_argv(args), gpus=gpus, workers=args.workers, say=lambda m: say(args, m))
    if result.interrupted:
        print("budgetopt: interrupted", file=sys.stderr)
        return 130
    if result.failed:
        raise CommandError(
            f"{len(result.failed)} of {len(result.workers)} workers failed: "
            + ", ".join(f"{label} exited with {code}" for label, code in result.failed),
            status=1,
        )
    return 0


# -- budgetopt compare / demo / bench: budgetopt/bench/cli.py --------------------------------


def _add_compare(commands: argparse._SubParsersAction) -> None:
    from budgetopt.bench.cli import add_compare

    add_compare(commands, _command)


def _add_demo(commands: argparse._SubParsersAction) -> None:
    from budgetopt.bench.cli import add_demo

    add_demo(commands, _command)


def _add_bench(commands: argparse._SubParsersAction) -> None:
    from budgetopt.bench.cli import add_bench

    add_bench(commands, _command)


# -- main -----------------------------------------------------------------------------------

# One builder per command: it adds a subparser and sets its handler (see the module docstring).
COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    _add_dashboard, _add_schedules, _add_report, _add_worker, _add_launch, _add_compare, _add_demo, _add_bench
)


class _Parser(argparse.ArgumentParser):
    """argparse with the one-line error of every budgetopt command (exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"budgetopt: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="budgetopt",
        description="Budget-aware hyperparameter search for Optuna: every trial's learning rate decays to zero at its budget.",
        epilog="Run 'budgetopt COMMAND --help' for a command's options and examples.",
    )
    from budgetopt import __version__

    parser.add_argument("--version", action="version", version=f"budgetopt {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True, parser_class=_Parser)
    for add in COMMANDS:
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input, 1 failure)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors
        return exit_.code if isinstance(exit_.code, int) else 2
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the exact command, for reports
    try:
        return args.handler(args) or 0
    except CommandError as error:
        return _fail(error, error.status)
    except (ValueError, TypeError, KeyError, FileNotFoundError, NotADirectoryError, PermissionError) as error:
        return _fail(error, 2)  # bad input reported by the library
    except KeyboardInterrupt:
        print("budgetopt: interrupted", file=sys.stderr)
        return 130


def _fail(error: BaseException, status: int) -> int:
    if os.environ.get("BUDGETOPT_DEBUG"):
        raise error
    print(f"budgetopt: error: {_one_line(error)}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
