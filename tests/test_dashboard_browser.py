"""optuna-dashboard in a real browser: headless Chromium shows the budgetopt note and figures.

``budgetopt dashboard`` serves a study made by budgetopt on a free loopback port;
Chromium (Debian's ``chromium``) loads the study page and its note page, runs the
dashboard's JavaScript for a few seconds of virtual time, and dumps the DOM and a
screenshot. The screenshots are kept in ``test-artifacts/`` at the repository root.
Without Chromium the test skips locally and fails under CI=true.
"""

import os
import re
import shutil
import subprocess
import sys

import optuna

from conftest import require
from synthetic import make_study, objective

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTIFACTS = os.path.join(ROOT, "test-artifacts")
CHROMIUM = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else shutil.which("chromium")
FIGURES = ("budgetopt-lr-profiles", "budgetopt-rung-values", "budgetopt-compute-per-rung")


def chromium(url: str, profile_dir: str, screenshot: str, height: int) -> str:
    """The DOM of ``url`` after its scripts ran; a screenshot of the window on the side."""
    result = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
            f"--user-data-dir={profile_dir}", "--virtual-time-budget=15000", f"--window-size=1400,{height}",
            f"--screenshot={screenshot}", "--dump-dom", url,
        ],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_study_page_shows_the_budgetopt_note_and_figures(tmp_path):
    require(CHROMIUM is not None, "Chromium is not installed (apt-get install chromium)")
    path = str(tmp_path / "study.log")
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    make_study(storage, "browser", seed=0).optimize(objective, n_trials=20)

    server = subprocess.Popen(
        [sys.executable, "-m", "budgetopt", "dashboard", path, "--study", "browser", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        line = server.stdout.readline()  # printed once the server listens
        assert line.startswith("optuna-dashboard: http://127.0.0.1:"), (line, server.stderr.read() if not line else "")
        url = line.split(": ", 1)[1].strip()
        os.makedirs(ARTIFACTS, exist_ok=True)
        study_png = os.path.join(ARTIFACTS, "dashboard-study.png")
        note_png = os.path.join(ARTIFACTS, "dashboard-note.png")

        # The study page: our figures below the dashboard's own (tall window to see them).
        dom = chromium(url, str(tmp_path / "profile-study"), study_png, height=2600)
        for figure in FIGURES:
            div = re.search(rf'<div [^>]*id="user-defined-plot:{figure}"[^>]*>', dom)
            assert div is not None, f"no div for {figure}"
            assert "js-plotly-plot" in div.group(0), f"plotly did not render {figure}: {div.group(0)}"
        assert 'data-unformatted="Rung values against the budget (20 trials; pruned dimmed)"' in dom
        assert 'data-unformatted="Learning rate of this study\'s trials"' in dom
        assert ">restart: linear<" in dom  # a legend entry drawn by plotly: the schedule the trials ran
        assert ">continue: linear<" not in dom  # no mode the study did not run

        # The note page.
        dom = chromium(url + "/note", str(tmp_path / "profile-note"), note_png, height=1000)
        text = re.sub(r"<[^>]+>", "", dom)
        assert "budgetopt: browser" in text
        assert "Ladder: rungs 3 → 9 → 27 iterations; reduction factor 3" in text
        assert "Compute: " in text and "A full-budget search of the same 20 trials would have cost 20 × 27 = 540" in text
        assert "Best completed trial: #" in text and "Frontier" in text

        for png in (study_png, note_png):
            with open(png, "rb") as f:
                assert f.read(8) == b"\x89PNG\r\n\x1a\n"
            assert os.path.getsize(png) > 20_000
            print(f"screenshot: {png}")
    finally:
        server.terminate()
        server.wait(timeout=30)
