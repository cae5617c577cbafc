"""Stage a consistent snapshot of a benchmark table that is still being built, for a commit.

A build appends to ``table.csv`` and rewrites ``meta.json`` as it goes; ``git add`` at a
random moment could catch a unit half-written. This stages (``git update-index``, the
working files untouched) the table cut after its last complete unit, and its
``meta.json`` with the counts of that snapshot (``units_complete``, ``configs_complete``,
``complete``), so that every commit holds a readable partial table.

Run::

    python studies/stage_table.py studies/tables/fashion_mlp-short [more tables ...]
    git commit -m "tables: ..."
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def snapshot(directory: Path) -> tuple[str, dict]:
    meta = json.loads((directory / "meta.json").read_text())
    text = (directory / "table.csv").read_text()
    text = text[: text.rfind("\n") + 1]  # a cut-off last line
    lines = text.splitlines(keepends=True)
    rungs = len(meta["ladder"]["rungs"])
    counts: dict[tuple, int] = {}
    for line in lines[1:]:
        key = tuple(line.split(",", 3)[:3])
        counts[key] = counts.get(key, 0) + 1
    partial = {k for k, n in counts.items() if n != rungs}
    lines = [lines[0], *(line for line in lines[1:] if tuple(line.split(",", 3)[:3]) not in partial)]
    units = {k for k in counts if k not in partial}
    per_config = len(meta["seeds"]) * len(meta["kinds"])
    by_config: dict[str, int] = {}
    for config, _, _ in units:
        by_config[config] = by_config.get(config, 0) + 1
    meta["units_complete"] = len(units)
    meta["configs_complete"] = sum(n == per_config for n in by_config.values())
    meta["complete"] = len(units) == len(meta["pool"]) * per_config
    return "".join(lines), meta


def stage(path: Path, content: str) -> None:
    command = ["git", "hash-object", "-w", "--stdin"]
    sha = subprocess.run(command, input=content, text=True, capture_output=True, check=True).stdout.strip()
    subprocess.run(["git", "update-index", "--add", "--cacheinfo", f"100644,{sha},{path.as_posix()}"], check=True)


def main() -> None:
    for name in sys.argv[1:]:
        directory = Path(name)
        table, meta = snapshot(directory)
        stage(directory / "table.csv", table)
        stage(directory / "meta.json", json.dumps(meta, indent=1) + "\n")
        configs = f"{meta['configs_complete']} of {len(meta['pool'])} configurations complete"
        print(f"{directory}: staged {meta['units_complete']} units, {configs}")


if __name__ == "__main__":
    main()
