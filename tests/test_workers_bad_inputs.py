"""Bad inputs to `budgetopt worker` / `launch` and the workers API: each gives a one-line
error and a non-zero exit (no traceback, nothing hanging), and no study is changed."""

from __future__ import annotations

import re
import sys

import optuna
import pytest

from budgetopt import BudgetPruner
from budgetopt.cli import main
from budgetopt.storage import open_snapshot_store
from budgetopt.workers import RetryStaleTrial, heartbeat_options, join_study, launch

from postgres import free_port
from worker_processes import HEARTBEAT, SCRIPT, start, stderr_of, wait_all

SETUP = {"script": "synthetic_study", "mode": "restart"}


def fingerprint(storage) -> list:
    """Everything of every study in ``storage`` that a bad worker could have changed."""
    return [
        (s.study_name, s.user_attrs, s.directions,
         [(t.number, t.state, t.values, t.params, t.intermediate_values, t.user_attrs) for t in
          optuna.load_study(study_name=s.study_name, storage=storage).get_trials()])
        for s in storage.get_all_studies()
    ]


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    """A bad input must not leave anything in the working directory either."""
    monkeypatch.chdir(tmp_path)
    yield
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith("process-")] == []  # (stderr files)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A SQLite storage with a study of 3 trials (``digits-search``) and a minimizing one."""
    tmp = tmp_path_factory.mktemp("reference")
    url = f"sqlite:///{tmp}/studies.db"
    assert main(["worker", SCRIPT, "--storage", url, "--study", "digits-search", "--n-trials", "3", *HEARTBEAT, "-q"]) == 0
    assert main(["worker", SCRIPT, "--storage", url, "--study", "branch-search", "--n-trials", "1", "--mode", "branch", *HEARTBEAT, "-q"]) == 0
    optuna.create_study(storage=url, study_name="min-study", direction="minimize")
    (tmp / "file.txt").write_text("a regular file")
    (tmp / "broken_import.py").write_text("direction = 'maximize'\nladder = (3, 27, 3)\n1 / 0\n")
    (tmp / "not_a_study.py").write_text("direction = 'maximize'\n")
    return {"url": url, "tmp": tmp, "closed": free_port()}


# (id, command line after the command name with {url}, {tmp}, {script}, {closed} filled in,
#  the message it must give). Exit status: 2 for bad input, 1 for a storage that fails.
COMMAND_LINE = [
    ("url-scheme-unknown", "worker {script} --storage foo://host/db --study s", r"unknown database scheme 'foo'; give sqlite:///FILE.db"),
    ("url-not-a-url", "worker {script} --storage studies.db --study s", r"storage must be sqlite:///FILE.db"),
    ("url-in-memory", "worker {script} --storage sqlite:///:memory: --study s", r"in-memory database"),
    ("url-mysql", "worker {script} --storage mysql://me:pw@127.0.0.1:{closed}/db --study s", r"needs the Python module 'MySQLdb'|cannot be opened"),
    ("database-unreachable", "worker {script} --storage postgresql+psycopg2://me:pw@127.0.0.1:{closed}/db --study s",
     r"cannot be opened as an Optuna storage: .*Connection refused"),
    ("study-typo", "worker {script} --storage {url} --study digits-serach", r"no study 'digits-serach', but there is 'digits-search': a typo\?"),
    ("study-direction", "worker {script} --storage {url} --study min-study", r"study 'min-study' is to minimize, but the study script's direction is 'maximize'"),
    ("study-ladder", "worker {script} --storage {url} --study digits-search --brackets hyperband", r"was made with ladder rungs \[3, 9, 27\] \(eta 3, 1 bracket\)"),
    ("study-mode", "worker {script} --storage {url} --study digits-search --mode branch", r"is run with script 'synthetic_study', mode 'restart'"),
    ("study-cooldown", "worker {script} --storage {url} --study branch-search --mode branch --cooldown 0.1",
     r"is run with script 'synthetic_study', mode 'branch', cooldown 0.5"),
    ("cooldown-zero", "worker {script} --storage {url} --study s --mode branch --cooldown 0", r"--cooldown must be in \(0, 1\], got 0.0"),
    ("cooldown-text", "worker {script} --storage {url} --study s --cooldown half", r"argument --cooldown: invalid float value: 'half'"),
    ("n-trials-zero", "worker {script} --storage {url} --study s --n-trials 0", r"--n-trials must be an integer >= 1, got 0"),
    ("n-trials-negative", "worker {script} --storage {url} --study s --n-trials -5", r"--n-trials must be an integer >= 1, got -5"),
    ("n-trials-text", "worker {script} --storage {url} --study s --n-trials ten", r"argument --n-trials: invalid int value: 'ten'"),
    ("n-trials-and-compute", "worker {script} --storage {url} --study s --n-trials 5 --compute 100", r"not allowed with argument"),
    ("compute-zero", "worker {script} --storage {url} --study s --compute 0",
     r"--compute '0': give a number of full budgets with 'fb' \(30fb, 2.5fb\) or of iterations with 'it' \(50000it\); "
     r"a bare number is iterations"),
    ("compute-fraction", "worker {script} --storage {url} --study s --compute 2.5", r"--compute '2.5': iterations are a whole number"),
    ("brackets-too-many", "worker {script} --storage {url} --study s --brackets 7", r"brackets"),
    ("brackets-text", "worker {script} --storage {url} --study s --brackets many", r"brackets"),
    ("heartbeat-zero", "worker {script} --storage {url} --study s --heartbeat 0", r"--heartbeat \(seconds\) must be an integer >= 1"),
    ("grace-shorter", "worker {script} --storage {url} --study s --heartbeat 5 --grace-period 5", r"grace period \(5 s\) must be longer than the heartbeat interval"),
    ("repeated-errors-zero", "worker {script} --storage {url} --study s --max-repeated-errors 0", r"--max-repeated-errors must be an integer >= 1"),
    ("max-retry-negative", "worker {script} --storage {url} --study s --max-retry -1", r"--max-retry must be an integer >= 0"),
    ("script-raises-on-import", "worker {tmp}/broken_import.py --storage {url} --study s", r"failed to import: ZeroDivisionError: division by zero"),
    ("script-missing", "worker {tmp}/no_such_study.py --storage {url} --study s", r"study script .*no_such_study.py does not exist"),
    ("script-unknown-name", "worker fashion-mnsit --storage {url} --study s", r"unknown study 'fashion-mnsit'"),
    ("script-not-a-study", "worker {tmp}/not_a_study.py --storage {url} --study s", r"does not follow the protocol: it lacks ladder"),
    ("data-dir-missing", "worker {script} --storage {url} --study s --data-dir {tmp}/no/such/dir", r"--data-dir .*no/such/dir does not exist"),
    ("snapshots-not-writable", "worker {script} --storage {url} --study s --snapshots {tmp}/file.txt/snapshots", r"snapshot directory .*file.txt/snapshots cannot be created"),
    ("snapshots-scheme", "worker {script} --storage {url} --study s --snapshots ftp://host/dir", r"snapshots must be a directory, file://DIR, s3://BUCKET or gs://BUCKET"),
    ("snapshots-bucket-prefix", "worker {script} --storage {url} --study s --snapshots s3://bucket/prefix", r"give a bucket, s3://BUCKET \(no prefix\)"),
    ("keep-models-negative", "worker {script} --storage {url} --study s --keep-models -1", r"--keep-models must be an integer >= 0, got -1"),
    ("keep-models-continue", "worker {script} --storage {url} --study s --keep-models 1 --mode continue", r"--keep-models 1 keeps annealed rung models: --mode continue has none"),
    ("models-without-keep", "worker {script} --storage {url} --study s --models {tmp}/models", r"--models .*models is where --keep-models keeps models: give --keep-models K too"),
    ("models-not-writable", "worker {script} --storage {url} --study s --keep-models 1 --models {tmp}/file.txt/models", r"model directory .*file.txt/models cannot be created"),
    ("models-scheme", "worker {script} --storage {url} --study s --keep-models 1 --models ftp://host/dir", r"models must be a directory, file://DIR, s3://BUCKET or gs://BUCKET"),
    ("snapshot-device-gpu", "worker {script} --storage {url} --study s --snapshot-device cuda:1", r"argument --snapshot-device: invalid choice: 'cuda:1' \(choose from '?cpu'?\)"),
    ("device-missing-gpu", "worker {script} --storage {url} --study s --device cuda:7", r"--device cuda:7: (no CUDA GPU is visible|this machine has)"),
    ("device-unknown", "worker {script} --storage {url} --study s --device tpu", r"--device must be cpu, cuda, cuda:K or mps, got 'tpu'"),
    ("mode-unknown", "worker {script} --storage {url} --study s --mode sideways", r"argument --mode: invalid choice: 'sideways'"),
    ("study-missing", "worker {script} --storage {url}", r"the following arguments are required: --study"),
    ("launch-gpus-text", "launch {script} --storage {url} --study s --gpus a,b", r"--gpus must be comma-separated GPU indices"),
    ("launch-workers-zero", "launch {script} --storage {url} --study s --workers 0", r"--workers must be an integer >= 1, got 0"),
    ("launch-no-devices", "launch {script} --storage {url} --study s", r"one of the arguments --gpus --workers is required"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case, command, message", COMMAND_LINE, ids=[c[0] for c in COMMAND_LINE])
def test_bad_command_line_gives_a_one_line_error(reference, capsys, case, command, message):
    storage = optuna.storages.RDBStorage(reference["url"])
    before = fingerprint(storage)
    argv = command.format(script=SCRIPT, **reference).split() + ["-q"]
    status = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert status in (1, 2), err
    assert len(lines) == 1 and lines[0].startswith("budgetopt: error: ") and "Traceback" not in err, err
    assert re.search(message, lines[0]), lines[0]
    assert fingerprint(storage) == before


POSTGRES = [
    ("password-wrong", lambda c, db: c.url(db, password="wrong"), "digits-search", r"password authentication failed for user \"budgetopt\""),
    ("role-unknown", lambda c, db: c.url(db, user="nobody_here"), "digits-search", r"password authentication failed for user \"nobody_here\""),
    ("database-unknown", lambda c, db: c.url("no_such_db"), "digits-search", r"database \"no_such_db\" does not exist"),
    ("study-typo", lambda c, db: c.url(db), "digits-serch", r"a typo\?"),
]


@pytest.fixture(scope="module")
def postgres_reference(postgres_cluster, tmp_path_factory):
    """A database of the test cluster with a study of 3 trials, ``digits-search``."""
    url = postgres_cluster.create_database()
    snapshots = str(tmp_path_factory.mktemp("snapshots"))
    assert main(["worker", SCRIPT, "--storage", url, "--study", "digits-search", "--n-trials", "3", *HEARTBEAT,
                 "--snapshots", snapshots, "-q"]) == 0
    return url


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case, url, study, message", POSTGRES, ids=[c[0] for c in POSTGRES])
def test_bad_postgres_access_gives_a_one_line_error(postgres_cluster, postgres_reference, capsys, case, url, study, message):
    storage = optuna.storages.RDBStorage(postgres_reference)
    before = fingerprint(storage)
    bad = url(postgres_cluster, postgres_reference.rsplit("/", 1)[1])
    status = main(["worker", SCRIPT, "--storage", bad, "--study", study, *HEARTBEAT, "-q"])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert status in (1, 2) and len(lines) == 1 and "Traceback" not in err, err
    assert re.search(message, lines[0]), lines[0]
    assert fingerprint(storage) == before


API = [
    ("store-scheme", lambda r: open_snapshot_store("ftp://host/dir"), r"snapshots must be a directory"),
    ("store-under-a-file", lambda r: open_snapshot_store(f"{r['tmp']}/file.txt/snapshots"), r"cannot be created"),
    ("heartbeat-grace", lambda r: heartbeat_options(10, 5, RetryStaleTrial()), r"must be longer than the heartbeat interval"),
    ("join-typo", lambda r: join_study(optuna.storages.RDBStorage(r["url"]), "digits-searhc", direction="maximize",
                                       pruner=BudgetPruner(3, 27), setup=SETUP), r"a typo\?"),
    ("join-direction", lambda r: join_study(optuna.storages.RDBStorage(r["url"]), "digits-search", direction="minimize",
                                            pruner=BudgetPruner(3, 27), setup=SETUP), r"is to maximize"),
    ("join-ladder", lambda r: join_study(optuna.storages.RDBStorage(r["url"]), "digits-search", direction="maximize",
                                         pruner=BudgetPruner(3, 81), setup=SETUP), r"was made with ladder"),
    ("launch-nothing", lambda r: launch([], gpus=None, workers=None), r"give either gpus or workers"),
]


@pytest.mark.parametrize("case, call, message", API, ids=[c[0] for c in API])
def test_bad_api_arguments_raise_a_value_error(reference, case, call, message):
    storage = optuna.storages.RDBStorage(reference["url"])
    before = fingerprint(storage)
    with pytest.raises(ValueError, match=message):
        call(reference)
    assert fingerprint(storage) == before


@pytest.mark.usefixtures("no_process_left")
@pytest.mark.parametrize(
    "case, command, status, message",
    [
        ("database-unreachable", "--storage postgresql+psycopg2://me:pw@127.0.0.1:{closed}/db", 1, r"Connection refused"),
        ("script-raises-on-import", "--storage {url} {tmp}/broken_import.py", 2, r"failed to import: ZeroDivisionError"),
    ],
    ids=["database-unreachable", "script-raises-on-import"],
)
def test_a_worker_process_with_bad_input_exits_at_once_with_one_line(reference, tmp_path, case, command, status, message):
    argv = command.format(**reference).split()
    script = [a for a in argv if a.endswith(".py")] or [SCRIPT]
    options = [a for a in argv if not a.endswith(".py")]
    process = start([sys.executable, "-m", "budgetopt", "worker", script[0], *options, "--study", "s", "-q"], tmp_path)
    assert wait_all([process], timeout=60) == [status]
    err = stderr_of(process).strip().splitlines()
    assert len(err) == 1 and err[0].startswith("budgetopt: error: ") and re.search(message, err[0]), err
