"""Imports point down the layers of docs/architecture.md (its layer table is read here),
and no private name crosses modules.

Every ``import`` of every module of the package is read with ``ast`` (those inside
functions and under ``if TYPE_CHECKING`` included: a lazy import is still an arrow).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "budgetopt"

DOC = PACKAGE.parent / "docs" / "architecture.md"


def documented_layers() -> list[tuple[str, ...]]:
    """The layer table of docs/architecture.md, lowest first: each row ``| N | `a.py`,
    `pkg/` | job |`` as module patterns (``a``, ``pkg.*``; ``__init__.py`` is the package)."""
    rows = {}
    for line in DOC.read_text().splitlines():
        match = re.match(r"^\|\s*(\d+)\s*\|(.*?)\|", line)
        if match:
            names = re.findall(r"`([^`]+)`", match[2])
            patterns = []
            for name in names:
                if name.endswith("/"):
                    patterns.append(name[:-1].replace("/", ".") + ".*")
                else:
                    dotted = name.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
                    patterns.append("" if dotted == "__init__" else dotted)
            rows[int(match[1])] = tuple(patterns)
    assert sorted(rows) == list(range(len(rows))) and len(rows) >= 10, f"no layer table in {DOC}"
    return [rows[i] for i in range(len(rows))]


# Lowest first. A module may import a module of a lower layer, or one of its own
# subpackage (budgetopt.dashboard.*, budgetopt.bench.*, ...); nothing else.
LAYERS = documented_layers()

# Private names one module of the benchmark engine takes from another: that package is
# left to its own issue (the bench engine issue), the rest of the package has none.
PRIVATE_EXEMPT: set[tuple[str, str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    best = None
    for index, patterns in enumerate(LAYERS):
        for pattern in patterns:
            exact = pattern == module
            under = pattern.endswith(".*") and (module == pattern[:-2] or module.startswith(pattern[:-1]))
            if exact or under:
                # an exact name wins over a package pattern (bench.cli over bench.*)
                if best is None or exact:
                    best = index
    if best is None:
        raise AssertionError(f"budgetopt.{module} is in no layer of docs/architecture.md's layer table")
    return best


def package_of(module: str) -> str:
    return module.rsplit(".", 1)[0] if "." in module else ""


def imports_of(module: str) -> list[tuple[str, list[str], int]]:
    """``(imported budgetopt module, names taken from it, line)`` for every import."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package_of(module) if not MODULES[module].name == "__init__.py" else module
                for _ in range(node.level - 1):
                    base = package_of(base)
                target = "budgetopt" + (f".{base}" if base else "") + (f".{node.module}" if node.module else "")
            else:
                target = node.module or ""
            found.append((target, [a.name for a in node.names], node.lineno))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.args[0].value, [], node.lineno))
    result = []
    for target, names, line in found:
        if target != "budgetopt" and not target.startswith("budgetopt."):
            continue
        target = target[len("budgetopt.") :] if target != "budgetopt" else ""
        if target == "" and names:
            # ``from budgetopt import dashboard``: a submodule, or a public name of the package
            for name in names:
                if name in MODULES:
                    result.append((name, [], line))
                else:
                    result.append(("", [name], line))
            continue
        result.append((target, names, line))
    return result


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    mine = layer_of(module)
    wrong = []
    for target, _, line in imports_of(module):
        if target == module or target not in MODULES:
            continue
        same_package = package_of(module) != "" and (
            target == package_of(module) or target.startswith(package_of(module) + ".")
        )
        if target.startswith(module + "."):  # a package importing its own submodule
            continue
        if layer_of(target) >= mine and not same_package:
            wrong.append(f"budgetopt/{MODULES[module].relative_to(PACKAGE)}:{line} imports budgetopt.{target}"
                         f" (layer {layer_of(target)} >= {mine})")
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(wrong)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_is_imported_from_another_module(module):
    wrong = []
    for target, names, line in imports_of(module):
        for name in names:
            if name.startswith("_") and not name.startswith("__") and target != module:
                if (module, target, name) not in PRIVATE_EXEMPT:
                    wrong.append(f"budgetopt/{MODULES[module].relative_to(PACKAGE)}:{line}: {name} from budgetopt.{target}")
    assert not wrong, "private names imported across modules:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    "module, forbidden",
    [
        ("study_script", "studies"),  # the registry lives with the studies
        ("pruners", "run"),  # attr keys come from budgetopt.attrs
        ("dashboard", "workers"),  # retried trials are read in budgetopt.attrs
        ("modes", "run"),
        ("schedules", "run"),
    ],
)
def test_named_arrows_do_not_exist(module, forbidden):
    modules = [m for m in MODULES if m == module or m.startswith(module + ".")]
    for m in modules:
        targets = {t for t, _, _ in imports_of(m)}
        assert not any(t == forbidden or t.startswith(forbidden + ".") for t in targets), (m, targets)


def test_pure_modules_import_neither_optuna_nor_torch():
    for module in ("modes", "ladder", "attrs", "_validation", "_messages"):
        tree = ast.parse(MODULES[module].read_text())
        type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                     for n in ast.walk(node)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in type_only:
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in ("optuna", "torch") for n in names), (module, names)


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    # A module of the lowest layer that imports the run driver is reported.
    fake = tmp_path / "budgetopt"
    fake.mkdir()
    (fake / "attrs.py").write_text("def f():\n    from budgetopt.run import BudgetedRun\n")
    (fake / "run.py").write_text("from budgetopt.schedules import _private\n")
    (fake / "schedules.py").write_text("")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    monkeypatch.setattr(__import__(__name__), "MODULES", {"attrs": fake / "attrs.py", "run": fake / "run.py",
                                                          "schedules": fake / "schedules.py"})
    with pytest.raises(AssertionError, match=r"attrs.py:2 imports budgetopt.run"):
        test_imports_point_down("attrs")
    with pytest.raises(AssertionError, match=r"_private from budgetopt.schedules"):
        test_no_private_name_is_imported_from_another_module("run")


def test_no_function_in_bench_over_60_lines_without_its_reason():
    # issue 21: a long function says why it is long ("Over 60 lines ..."), or it is split
    unexplained = []
    for path in sorted((PACKAGE / "bench").glob("*.py")):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60:
                body = "\n".join(source.splitlines()[node.lineno - 1 : node.end_lineno])
                if "Over 60 lines" not in body:
                    unexplained.append(f"{path.name}:{node.lineno} {node.name}")
    assert not unexplained, unexplained
