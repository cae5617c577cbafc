"""The documentation: the site builds with warnings as errors (mkdocs --strict: broken
links, docstrings the API reference cannot render), every page is in its navigation,
the README stays short and links only to what exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _nav_pages(nav) -> list[str]:
    pages = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_the_site_builds_strict_with_the_cli_reference(tmp_path):
    pytest.importorskip("mkdocs")
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={"NO_MKDOCS_2_WARNING": "1", **__import__("os").environ},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    cli = (site / "cli" / "index.html").read_text()
    for command in ("budgetopt bench worker", "budgetopt frontier", "budgetopt worker"):
        assert command in cli, command  # generated from the parsers by docs/hooks.py
    assert "BudgetedRun" in (site / "api" / "index.html").read_text()


def test_every_page_is_in_the_navigation():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text().split("hooks:")[0])
    listed = set(_nav_pages(config["nav"]))
    pages = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert pages == listed, (pages - listed, listed - pages)


def test_the_readme_is_short_and_its_links_exist():
    readme = (ROOT / "README.md").read_text()
    assert readme.count("\n") <= 150
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    assert links and all((ROOT / link).exists() for link in links), [link for link in links if not (ROOT / link).exists()]
    assert readme.count("```bash") == 2  # the two commands
