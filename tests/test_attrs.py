"""budgetopt.attrs: the one home of every ``budgetopt.*`` attr key, and docs/concepts.md lists them."""

from __future__ import annotations

import re
from pathlib import Path

import budgetopt.attrs as attrs

ROOT = Path(__file__).resolve().parent.parent
KEYS = attrs.TRIAL_ATTRS + attrs.STUDY_ATTRS


def test_every_attr_constant_is_listed_once():
    constants = {v for k, v in vars(attrs).items() if k.startswith(("ATTR_", "STUDY_ATTR_"))}
    assert constants == set(KEYS) and len(KEYS) == len(set(KEYS)) == 25
    assert all(key.startswith("budgetopt.") for key in KEYS)


def test_no_module_spells_a_key_of_its_own():
    for path in (ROOT / "budgetopt").rglob("*.py"):
        if path.name == "attrs.py" and path.parent.name == "budgetopt":
            continue
        found = re.findall(r"[\"']budgetopt\.[a-z_]+[\"']", path.read_text())
        assert not found, f"{path}: {found} (attr keys live in budgetopt/attrs.py)"


def test_attrs_docstring_and_the_concepts_page_list_every_key():
    documented = attrs.__doc__ or ""
    readme = (ROOT / "docs" / "concepts.md").read_text()
    bullet = readme[readme.index("- Everything a user needs to see") :].split("\n\n", 1)[0]
    shown = set(re.findall(r"`(?:budgetopt)?\.?([a-z_]+)`", bullet))
    for key in KEYS:
        assert f"``{key}``" in documented, f"{key} is not documented in budgetopt/attrs.py"
        assert key.split(".", 1)[1] in shown, f"{key} is not in docs/concepts.md's user-attrs bullet"


def test_the_lr_trace_attr_is_the_schedules_corners_within_half_a_percent():
    """Short enough for the dashboard's attribute table, and every step's rate within 0.5%
    of the peak of the lines between the kept points; each rise back up kept."""
    import math

    import numpy as np

    from budgetopt.trial_io import trace_summary

    restart = [0.3 * (1 - t / 9) for t in range(9)] + [0.3 * (1 - t / 27) for t in range(27)]
    assert trace_summary(restart) == [[0, 0.3], [8, 0.03333], [9, 0.3], [35, 0.01111]]
    cosine = [0.5 * (1 + math.cos(math.pi * t / 5000)) for t in range(5000)]
    kept = trace_summary(cosine)
    assert len(kept) < 40
    x, y = zip(*kept)
    assert np.max(np.abs(np.interp(np.arange(5000), x, y) - cosine)) <= 0.005 + 1e-4
    assert len(trace_summary(list(np.random.default_rng(0).random(10_000)))) <= 201  # noise: thinned to the cap
    assert trace_summary([]) == []
