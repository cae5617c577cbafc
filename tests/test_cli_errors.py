"""How a failed command ends (budgetopt/cli/errors.py): bad input, the environment, the
user's study script, a bug in budgetopt -- each told apart, with its own exit status."""

import concurrent.futures
import multiprocessing
import os
import subprocess
import sys
import traceback

import pytest

import budgetopt.schedules
from budgetopt._validation import check_iterations
from budgetopt.cli import main
from budgetopt.cli.errors import BAD_INPUT, ENVIRONMENT, STUDY_SCRIPT, classify
from budgetopt.errors import InputError, MissingPathError, ResourceError, UserCodeError
from budgetopt.study_script import load_study_script

from synthetic import make_study, objective
from test_cli import ROOT, one_line_error, run_main

# The example of budgetopt/study_script.py's docstring on a tiny ladder; {error} is the
# last line of train_step.
SCRIPT = '''\
import torch
from torch import nn
from budgetopt.data import load_digits, tensor_batches
from budgetopt.study_script import accuracy

direction = "maximize"
ladder = (3, 9, 3)

def load_data(data_dir=None, quick=False):
    return load_digits()

def search_space(trial):
    return {{"lr": trial.suggest_float("lr", 1e-3, 1.0, log=True)}}

def build(params, device):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).to(device)
    return model, torch.optim.SGD(model.parameters(), lr=params["lr"], momentum=0.9)

def batches(data, seed, device):
    return tensor_batches(*data.train, batch_size=32, seed=seed, device=device)

def train_step(model, optimizer, batch, params):
    x, y = batch
    optimizer.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    {error}

def evaluate(model, data, split, device):
    x, y = getattr(data, split)
    return accuracy(model, [(x, y)], device)
'''


def study_script(tmp_path, error: str):
    """``that_script.py`` in ``tmp_path`` whose train_step ends with ``error``; its path
    and the line of ``error``."""
    path = tmp_path / "that_script.py"
    text = SCRIPT.format(error=error)
    path.write_text(text)
    return path, text.splitlines().index(f"    {error}") + 1


def build(tmp_path, script, jobs: int) -> list[str]:
    return ["bench", "build", str(script), "--configs", "1", "--seeds", "1", "--kinds", "restart",
            "--jobs", str(jobs), "--out", str(tmp_path / f"table-{jobs}"), "-q"]


# -- bad input: one line, exit 2 ------------------------------------------------------------------


def test_a_value_error_budgetopt_raises_is_bad_input(capsys):
    status, out, err = run_main(capsys, "schedules", "--budget", "100", "--warmup", "100")
    assert status == 2 and out == ""
    one_line_error(err, "--warmup must be smaller than the budget (100 iterations), got 100")


def test_a_study_script_that_breaks_the_protocol_is_bad_input(capsys, tmp_path):
    (tmp_path / "half.py").write_text("direction = 'maximize'\n")
    status, _, err = run_main(capsys, "bench", "build", str(tmp_path / "half.py"), "--configs", "1", "--out", str(tmp_path / "t"))
    assert status == 2
    one_line_error(err, "half.py does not follow the protocol: it lacks ladder")


# -- the environment: one line naming the thing, exit 1 ------------------------------------------


def test_a_sqlite_storage_in_a_missing_directory_names_the_directory(capsys, tmp_path):
    script, _ = study_script(tmp_path, "return loss")
    url = f"sqlite:///{tmp_path}/no/such/dir/studies.db"
    status, _, err = run_main(capsys, "worker", str(script), "--storage", url, "--study", "s", "--n-trials", "1", "-q")
    assert status == 1
    one_line_error(err, url, f"its directory '{tmp_path}/no/such/dir' does not exist")
    assert not (tmp_path / "no").exists()


def test_a_journal_in_a_missing_directory_names_the_directory(capsys, tmp_path):
    script, _ = study_script(tmp_path, "return loss")
    path = f"{tmp_path}/gone/studies.log"
    status, _, err = run_main(capsys, "worker", str(script), "--storage", path, "--study", "s", "--n-trials", "1", "-q")
    assert status == 1
    one_line_error(err, f"its directory '{tmp_path}/gone' does not exist")


def test_a_mysql_url_names_the_mysql_driver(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "MySQLdb", None)  # not installed, wherever the test runs
    status, _, err = run_main(capsys, "report", "mysql://me:secret@127.0.0.1:1/studies")
    assert status == 1
    one_line_error(err, "mysql://me:***@127.0.0.1:1/studies", "'MySQLdb' (the MySQL driver)", "pip install mysqlclient")
    assert "secret" not in err and "PostgreSQL" not in err


def test_schedules_out_in_a_missing_directory_names_out_before_printing(capsys, tmp_path):
    target = tmp_path / "missing" / "profiles.png"
    status, out, err = run_main(capsys, "schedules", "--out", str(target))
    assert status == 1 and out == ""
    one_line_error(err, f"--out {target}", f"the directory '{tmp_path / 'missing'}' does not exist")


def test_schedules_out_that_cannot_be_written_names_out(capsys, tmp_path):
    blocked = tmp_path / ("x" * 300 + ".html")  # its directory exists; the write fails (name too long)
    status, _, err = run_main(capsys, "schedules", "--out", str(blocked))
    assert status == 1
    one_line_error(err, f"--out {blocked} cannot be written")


def test_an_unknown_storage_scheme_is_bad_input_naming_the_forms(capsys):
    for url in ("notadb://x", "bogus://host/db"):
        status, _, err = run_main(capsys, "report", url)
        assert status == 2
        one_line_error(err, f"unknown database scheme {url.split(':')[0]!r}", "sqlite:///FILE.db", "FILE.log journal")


def test_a_missing_extra_names_the_package_for_any_install(capsys, monkeypatch, tmp_path):
    for name in ("plotly", "plotly.graph_objects"):  # as if plotly were not installed
        monkeypatch.setitem(sys.modules, name, None)
    status, out, err = run_main(capsys, "schedules", "--out", str(tmp_path / "p.html"))
    assert status == 1 and out == ""  # before the table is printed
    one_line_error(err, "the Python module 'plotly", "is not installed: pip install plotly")
    # ``pip install 'budgetopt[...]'`` would fetch budgetopt from PyPI in a source checkout.
    assert "budgetopt[" not in err


def test_a_file_system_failure_names_the_file(capsys, tmp_path):
    make_study(f"sqlite:///{tmp_path}/s.db", "small", seed=0).optimize(objective, n_trials=2)
    (tmp_path / "file.txt").write_text("")
    status, _, err = run_main(capsys, "report", f"sqlite:///{tmp_path}/s.db", "--out", str(tmp_path / "file.txt" / "r"), "-q")
    assert status == 1
    one_line_error(err, str(tmp_path / "file.txt"))


# -- the user's study script: type, message and the user's file:line, exit 1 ---------------------


@pytest.mark.parametrize(
    "error, jobs, shown",
    [
        ('return params["nonexistent_key"]', 1, "KeyError: 'nonexistent_key'"),
        ('return params["nonexistent_key"]', 2, "KeyError: 'nonexistent_key'"),  # raised in a worker process
        ('raise ValueError("my own check")', 2, "ValueError: my own check"),  # the user's raise is not budgetopt's
    ],
    ids=["keyerror-in-process", "keyerror-in-a-worker-process", "valueerror-in-a-worker-process"],
)
def test_an_exception_in_the_users_train_step_names_its_type_and_line(capsys, tmp_path, error, jobs, shown):
    script, line = study_script(tmp_path, error)
    status, _, err = run_main(capsys, *build(tmp_path, script, jobs))
    assert status == 1
    one_line_error(err, shown, f"that_script.py:{line} in train_step")


def test_debug_shows_the_traceback_of_the_users_exception(capsys, tmp_path, monkeypatch):
    script, _ = study_script(tmp_path, 'return params["nonexistent_key"]')
    monkeypatch.setenv("BUDGETOPT_DEBUG", "1")
    with pytest.raises(UserCodeError, match="nonexistent_key") as raised:
        main(build(tmp_path, script, 1))
    assert isinstance(raised.value.error, KeyError) and raised.value.__cause__ is raised.value.error
    assert any(frame.name == "train_step" for frame in traceback.extract_tb(raised.value.error.__traceback__))


def test_an_error_in_torch_under_the_users_code_is_shown_at_the_users_line(tmp_path):
    script, line = study_script(tmp_path, "return nn.functional.cross_entropy(model(x), y[:3])")
    loaded = load_study_script(script)
    model, optimizer = loaded.build({"lr": 0.1}, "cpu")
    batch = next(loaded.batches(loaded.load_data(), 0, "cpu"))
    with pytest.raises(UserCodeError) as raised:  # torch's batch-size mismatch, raised inside torch
        loaded.train_step(model, optimizer, batch, {})
    assert isinstance(raised.value.error, ValueError)  # torch's own exception, kept
    failure = classify(raised.value)
    assert (failure.kind, failure.status) == (STUDY_SCRIPT, 1)
    assert failure.message.startswith("ValueError: Expected input batch_size")
    assert f"that_script.py:{line} in train_step" in failure.message


# -- a bug in budgetopt: its traceback ------------------------------------------------------------


def test_a_type_error_inside_budgetopt_shows_its_traceback(capsys, monkeypatch):
    # A library function that returns the wrong type: the TypeError comes from an
    # expression in budgetopt, not from a raise statement -- a bug, not bad input.
    monkeypatch.setattr(budgetopt.schedules, "budget_multiplier", lambda *args, **kwargs: None)
    with pytest.raises(TypeError, match="NoneType"):
        main(["schedules", "--profiles", "linear"])


def test_a_key_error_inside_budgetopt_shows_its_traceback(monkeypatch):
    # A check that lets a bad name through: the KeyError of a dict lookup in budgetopt.
    monkeypatch.setattr(budgetopt.schedules, "check_choice", lambda *args, **kwargs: None)
    with pytest.raises(KeyError, match="sawtooth"):
        main(["schedules", "--profiles", "sawtooth"])


def test_a_bug_exits_1_with_the_traceback_from_the_console():
    code = (
        "import sys, budgetopt.schedules as s; s.budget_multiplier = lambda *a, **k: None\n"
        "from budgetopt.cli import main; sys.exit(main(['schedules']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr and "budgetopt/cli/schedules.py" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("TypeError: ")
    assert "budgetopt: error:" not in result.stderr


# -- the classification itself ---------------------------------------------------------------


def test_a_failure_is_its_type():
    assert classify(InputError("--x must be 1")) == classify(MissingPathError("--x must be 1"))
    assert (classify(InputError("--x must be 1")).kind, classify(InputError("--x must be 1")).status) == (BAD_INPUT, 2)
    assert (classify(ResourceError("port 80 is in use")).kind, classify(ResourceError("p")).status) == (ENVIRONMENT, 1)
    assert classify(UserCodeError("boom", "s.py:3 in build", "KeyError")).message == "KeyError: boom (at s.py:3 in build)"
    # what budgetopt did not raise as bad input is not bad input, whatever its type
    for bug in (ValueError("from numpy"), TypeError("'NoneType' object is not callable"), KeyError("k")):
        assert classify(bug) is None
    assert classify(FileNotFoundError(2, "No such file or directory", "x.csv")).kind == ENVIRONMENT


def test_in_a_worker_process_an_input_error_is_bad_input_and_a_type_error_a_bug():
    context = multiprocessing.get_context("spawn" if os.name != "posix" else "fork")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        with pytest.raises(InputError) as raised:  # the type crosses the process boundary
            pool.submit(check_iterations, 0, "--n").result()
        with pytest.raises(TypeError) as bug:
            pool.submit(budgetopt.schedules.budget_multiplier, 1, 10, None).result()  # calls None
    assert type(raised.value.__cause__).__name__ == "_RemoteTraceback"
    failure = classify(raised.value)
    assert (failure.kind, failure.status, failure.message) == (BAD_INPUT, 2, "--n must be an integer >= 1, got 0")
    assert classify(bug.value) is None



def test_a_reader_that_goes_away_stops_the_command_quietly(tmp_path):
    """`budgetopt frontier ... | head -1`: no 'Broken pipe' error, exit 0."""
    script = tmp_path / "many_lines.py"
    script.write_text(
        "import argparse, sys\n"
        "import budgetopt.cli as cli\n"
        "build = cli.build_parser\n"
        "def parser():\n"
        "    p = build()\n"
        "    p.parse_args = lambda argv=None: argparse.Namespace(\n"
        "        handler=lambda args: [print('x' * 100) for _ in range(10**5)] and 0)\n"
        "    return p\n"
        "cli.build_parser = parser\n"
        "sys.exit(cli.main([]))\n"
    )
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout.readline().startswith(b"xxx")
    process.stdout.close()  # as head does after its line
    assert process.wait(timeout=60) == 0
    assert process.stderr.read() == b""


def test_a_broken_pipe_elsewhere_is_still_an_error(tmp_path):
    """Only standard output's reader going away is quiet: another broken pipe is the environment's."""
    script = tmp_path / "other_pipe.py"
    script.write_text(
        "import argparse, sys\n"
        "import budgetopt.cli as cli\n"
        "build = cli.build_parser\n"
        "def fail(args):\n"
        "    raise BrokenPipeError(32, 'Broken pipe')\n"
        "def parser():\n"
        "    p = build()\n"
        "    p.parse_args = lambda argv=None: argparse.Namespace(handler=fail)\n"
        "    return p\n"
        "cli.build_parser = parser\n"
        "sys.exit(cli.main([]))\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=60)
    assert done.returncode == 1 and b"Broken pipe" in done.stderr
