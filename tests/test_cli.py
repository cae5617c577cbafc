"""The budgetopt command line: dashboard, schedules, report -- good and bad arguments."""

import json
import os
import socket
import subprocess
import sys
import urllib.request

import optuna
import optuna_dashboard
import pytest

from budgetopt.cli import main

from synthetic import make_study, objective

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def journal_url(tmp_path_factory):
    """A budgetopt study (synthetic objective, 15 trials) in a journal file: its URL."""
    path = str(tmp_path_factory.mktemp("cli") / "study.log")
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    make_study(storage, "synthetic", seed=0).optimize(objective, n_trials=15)
    return path


def run_main(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def one_line_error(err: str, *fragments: str) -> None:
    """``err`` is exactly one ``budgetopt: error: ...`` line naming every fragment."""
    assert err.count("\n") == 1 and err.startswith("budgetopt: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


# -- help -----------------------------------------------------------------------------------


def test_help_lists_the_commands(capsys):
    status, out, _ = run_main(capsys, "--help")
    assert status == 0
    for command in ("dashboard", "schedules", "report"):
        assert command in out


@pytest.mark.parametrize("command", ["dashboard", "schedules", "report"])
def test_each_command_has_help_with_examples(capsys, command):
    status, out, _ = run_main(capsys, command, "--help")
    assert status == 0
    assert f"usage: budgetopt {command}" in out
    assert "examples:\n  budgetopt " + command in out
    assert "--quiet" in out


def test_python_dash_m_budgetopt_exits_2_with_one_line_on_bad_input():
    result = subprocess.run(
        [sys.executable, "-m", "budgetopt", "schedules", "--budget", "0"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 2
    one_line_error(result.stderr, "--budget must be an integer >= 1, got 0")
    assert result.stdout == ""


def test_unknown_command_and_malformed_option_are_usage_errors(capsys):
    status, _, err = run_main(capsys, "frobnicate")
    assert status == 2
    one_line_error(err, "invalid choice: 'frobnicate'")
    status, _, err = run_main(capsys, "schedules", "--budget", "many")
    assert status == 2
    one_line_error(err, "--budget", "'many'", "budgetopt schedules --help")


# -- schedules ------------------------------------------------------------------------------


def test_schedules_prints_the_multipliers_at_fractions_of_the_budget(capsys):
    status, out, _ = run_main(capsys, "schedules", "--budget", "100", "--profiles", "linear,step,constant")
    assert status == 0
    lines = out.splitlines()
    assert "100-iteration budget" in lines[0]
    assert lines[1].split() == ["profile", "0%", "25%", "50%", "75%", "100%"]
    assert lines[2].split() == ["linear", "1.000", "0.750", "0.500", "0.250", "0.000"]
    assert lines[3].split() == ["step", "1.000", "1.000", "0.100", "0.010", "0.010"]
    assert lines[4].split() == ["constant"] + ["1.000"] * 5


def test_schedules_writes_an_html_and_a_png_plot(capsys, tmp_path):
    html, png = tmp_path / "profiles.html", tmp_path / "profiles.png"
    assert run_main(capsys, "schedules", "--budget", "300", "--warmup", "30", "--out", str(html))[0] == 0
    text = html.read_text()
    assert "plotly" in text and '"name":"linear"' in text and "warmup 30" in text
    status, _, err = run_main(capsys, "schedules", "--profiles", "linear,cosine", "--out", str(png))
    assert status == 0 and f"wrote {png}" in err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_schedules_quiet_writes_no_status_line(capsys, tmp_path):
    status, _, err = run_main(capsys, "schedules", "--quiet", "--out", str(tmp_path / "p.html"))
    assert status == 0 and err == ""


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["--budget", "0"], ["--budget must be an integer >= 1, got 0"]),
        (["--budget", "-5"], ["got -5"]),
        (["--profiles", "linear,sawtooth"], ["--profiles", "'sawtooth'", "linear, step, cosine"]),
        (["--profiles", ","], ["--profiles needs at least one profile name"]),
        (["--budget", "100", "--warmup", "100"], ["--warmup must be smaller than the budget (100 iterations), got 100"]),
        (["--out", "profiles.pdf"], ["--out must end in .html or .png, got 'profiles.pdf'"]),
    ],
)
def test_schedules_bad_arguments(capsys, argv, fragments):
    status, out, err = run_main(capsys, "schedules", *argv)
    assert status == 2 and out == ""
    one_line_error(err, *fragments)


# -- report ---------------------------------------------------------------------------------


def test_report_summarizes_the_study_and_writes_its_figures(capsys, journal_url, tmp_path):
    out_dir = tmp_path / "report"
    status, out, err = run_main(capsys, "report", journal_url, "--out", str(out_dir), "--top", "3")
    assert status == 0
    assert out.startswith("study 'synthetic': maximize")
    assert "ladder: 3 → 9 → 27 iterations, reduction factor 3; 1 bracket(s) (successive halving)" in out
    assert "rung  reached  went on  stopped" in out
    assert "a full-budget search of the same 15 trials: 405" in out
    assert "best trials (maximize):" in out and "3 → 9 → 27" in out
    written = sorted(p.name for p in out_dir.iterdir())
    assert written == [
        "budgetopt-compute-per-rung.html", "budgetopt-frontier.html", "budgetopt-lr-profiles.html", "budgetopt-rung-values.html",
        "note.md", "plotly.min.js",
    ]
    assert "## budgetopt: synthetic" in (out_dir / "note.md").read_text()
    assert f"wrote {out_dir / 'note.md'}" in err


def test_report_reads_the_study_without_writing_to_the_storage(capsys, journal_url, tmp_path):
    before = os.path.getsize(journal_url)
    assert run_main(capsys, "report", journal_url, "--study", "synthetic", "--out", str(tmp_path), "-q")[0] == 0
    assert os.path.getsize(journal_url) == before


def test_report_on_sqlite_and_publish(capsys, tmp_path):
    url = f"sqlite:///{tmp_path}/study.db"
    study = make_study(url, "small", seed=0)
    study.optimize(objective, n_trials=4)
    status, out, _ = run_main(capsys, "report", url, "--out", str(tmp_path / "r"), "--publish", "-q")
    assert status == 0 and "study 'small'" in out
    assert optuna_dashboard.get_note(optuna.load_study(study_name="small", storage=url)).startswith("## budgetopt: small")


def test_report_on_a_storage_that_does_not_exist_creates_nothing(capsys, tmp_path):
    path = tmp_path / "missing.db"
    status, _, err = run_main(capsys, "report", f"sqlite:///{path}")
    assert status == 2
    one_line_error(err, f"sqlite:///{path}", "does not exist")
    assert not path.exists()
    status, _, err = run_main(capsys, "report", str(tmp_path / "missing.log"))
    assert status == 2
    one_line_error(err, "missing.log", "does not exist")


@pytest.mark.parametrize(
    "url, status, fragments",
    [
        ("studies.db", 2, ["storage must be sqlite:///FILE.db", "'studies.db'"]),
        ("sqlite://", 2, ["in-memory database"]),
        ("postgresql://me:secret@127.0.0.1:1/studies", 1, ["postgresql://me:***@127.0.0.1:1/studies"]),
    ],
)
def test_report_on_a_malformed_or_unreachable_storage(capsys, url, status, fragments):
    got, _, err = run_main(capsys, "report", url)
    assert got == status
    one_line_error(err, *fragments)
    assert "secret" not in err


def test_report_on_a_file_that_is_not_an_optuna_storage(capsys, tmp_path):
    (tmp_path / "notes.db").write_text("not a database")
    status, _, err = run_main(capsys, "report", f"sqlite:///{tmp_path}/notes.db")
    assert status == 1
    one_line_error(err, "cannot be opened as an Optuna storage", "file is not a database")


def test_report_names_the_available_studies(capsys, tmp_path, journal_url):
    status, _, err = run_main(capsys, "report", journal_url, "--study", "nonesuch")
    assert status == 2
    one_line_error(err, "no study 'nonesuch'", "its studies: synthetic")

    path = str(tmp_path / "two.log")
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    optuna.create_study(storage=storage, study_name="first")
    optuna.create_study(storage=storage, study_name="second")
    status, _, err = run_main(capsys, "report", path)
    assert status == 2
    one_line_error(err, "has 2 studies, choose one with --study: first, second")


def test_report_on_a_study_budgetopt_did_not_run(capsys, tmp_path):
    path = str(tmp_path / "plain.log")
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    optuna.create_study(storage=storage, study_name="plain").optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    status, _, err = run_main(capsys, "report", path)
    assert status == 2
    one_line_error(err, "study 'plain' is not a budgetopt study")


def test_report_bad_top(capsys, journal_url):
    status, _, err = run_main(capsys, "report", journal_url, "--top", "0")
    assert status == 2
    one_line_error(err, "--top must be an integer >= 1, got 0")


# -- dashboard ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_dashboard(*argv: str) -> tuple[subprocess.Popen, str]:
    """``budgetopt dashboard ... --port 0`` in a process; returns it and the URL it prints."""
    server = subprocess.Popen(
        [sys.executable, "-m", "budgetopt", "dashboard", *argv, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    line = server.stdout.readline()  # blocks until the server listens (or the process ends)
    if not line.startswith("optuna-dashboard: "):
        server.kill()
        raise AssertionError(f"no URL from budgetopt dashboard: {line!r} {server.stderr.read()}")
    return server, line.split(": ", 1)[1].strip()


def test_dashboard_publishes_then_serves_the_study(journal_url):
    server, url = start_dashboard(journal_url, "--study", "synthetic")
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/dashboard/studies/0")
        base = url.split("/dashboard/")[0]
        with urllib.request.urlopen(f"{base}/api/studies/0", timeout=60) as response:
            detail = json.load(response)
        assert detail["note"]["body"].startswith("## budgetopt: synthetic")
        assert {g["id"] for g in detail["plotly_graph_objects"]} >= {
            "budgetopt-lr-profiles", "budgetopt-rung-values", "budgetopt-compute-per-rung"
        }
        with urllib.request.urlopen(url, timeout=60) as response:
            assert response.status == 200 and b"<script" in response.read()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_dashboard_on_a_port_in_use_fails_before_writing(capsys, tmp_path):
    path = str(tmp_path / "busy.log")
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    make_study(storage, "busy", seed=0).optimize(objective, n_trials=2)
    size = os.path.getsize(path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, _, err = run_main(capsys, "dashboard", path, "--port", str(port))
    assert status == 1
    one_line_error(err, f"port {port} on 127.0.0.1 is in use", "--port")
    assert os.path.getsize(path) == size  # nothing published


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["--study", "nonesuch"], ["no study 'nonesuch'", "its studies: synthetic"]),
        (["--port", "70000"], ["--port must be in [0, 65535], got 70000"]),
        (["--host", "192.0.2.1"], ["cannot listen on host '192.0.2.1'"]),  # an address of no machine here
    ],
)
def test_dashboard_bad_arguments(capsys, journal_url, argv, fragments):
    status, _, err = run_main(capsys, "dashboard", journal_url, *argv)
    assert status == 2
    one_line_error(err, *fragments)


def test_dashboard_on_a_storage_that_does_not_exist(capsys, tmp_path):
    status, _, err = run_main(capsys, "dashboard", f"sqlite:///{tmp_path}/nope.db", "--port", str(free_port()))
    assert status == 2
    one_line_error(err, f"sqlite:///{tmp_path}/nope.db", "does not exist")
    assert not (tmp_path / "nope.db").exists()


def test_a_bug_still_shows_its_traceback(monkeypatch, capsys):
    import budgetopt.cli as cli
    import budgetopt.cli.schedules

    def broken(args):
        raise RuntimeError("a bug, not bad input")

    monkeypatch.setattr(budgetopt.cli.schedules, "_run_schedules", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["schedules"])  # the parser is rebuilt with the handler looked up again



def test_progress_bar_works_without_a_terminal_and_is_silent_with_quiet(capsys):
    import argparse

    from budgetopt.cli import progress

    assert list(progress(range(3), argparse.Namespace(quiet=False), desc="trials")) == [0, 1, 2]
    assert "trials" in capsys.readouterr().err  # stderr is a pipe here, not a terminal
    assert list(progress(range(3), argparse.Namespace(quiet=True), desc="trials")) == [0, 1, 2]
    assert capsys.readouterr().err == ""
