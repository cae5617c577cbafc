"""``budgetopt dashboard``: publish budgetopt's note and figures, then serve optuna-dashboard."""

from __future__ import annotations

import argparse
import errno
import socket
from typing import Any

import optuna

from budgetopt._messages import message_line
from budgetopt._optuna import study_id
from budgetopt.cli._common import add_command, say
from budgetopt.errors import InputError, ResourceError
from budgetopt.storage import load_study, open_storage, study_names


def add_dashboard(commands: argparse._SubParsersAction) -> None:
    parser = add_command(
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
        raise InputError(f"--port must be in [0, 65535], got {args.port}")
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
            raise ResourceError(f"port {args.port} on {args.host} is in use: choose another with --port") from error
        if isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL:
            raise InputError(f"cannot listen on host {args.host!r}: {message_line(error)}") from error
        raise ResourceError(f"cannot listen on {args.host}:{args.port}: {message_line(error)}") from error

    with server:
        if not args.no_publish:
            for study in studies:
                if is_budgetopt_study(study):
                    written = publish(study, trial_notes=args.trial_notes)
                    say(args, f"published study {study.study_name!r}: note {'updated' if written['note'] else 'unchanged'}, "
                        f"{len(written['figures'])} figure(s) updated, {written['trial_notes']} trial note(s) written")
                elif args.study is not None:
                    raise InputError(f"study {study.study_name!r} is not a budgetopt study (no trial ran with BudgetedRun)")
                else:
                    say(args, f"skipped study {study.study_name!r}: not a budgetopt study")
        host, port = str(server.server_address[0]), server.server_address[1]
        url = f"http://{host}:{port}/dashboard/"
        if args.study is not None:
            url += f"studies/{study_id(studies[0])}"
        print(f"optuna-dashboard: {url}", flush=True)
        say(args, "serving until Ctrl-C")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0
