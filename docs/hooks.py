"""mkdocs hook: the command-line reference, generated from the argparse parsers at build
time (the ``<!-- cli-reference -->`` marker of ``cli.md``), so it cannot go stale."""

from __future__ import annotations

import argparse
import os

MARKER = "<!-- cli-reference -->"


def _walk(parser: argparse.ArgumentParser, path: list[str]):
    yield path, parser
    for action in parser._actions:  # argparse has no public accessor for subcommands
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, [*path, name])


def reference() -> str:
    from budgetopt.cli import build_parser

    os.environ.setdefault("COLUMNS", "100")
    parts = []
    for path, parser in _walk(build_parser(), ["budgetopt"]):
        if len(path) == 1:
            continue
        parts.append(f"### `{' '.join(path)}`\n\n```\n{parser.format_help().rstrip()}\n```\n")
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:
    return markdown.replace(MARKER, reference()) if MARKER in markdown else markdown
