"""``budgetopt.repair_torchvision_ops()`` makes torchvision and timm importable on a
CPU-only torch, and touches nothing where torchvision imports on its own; ``import
budgetopt`` alone has no side effect.

Each path runs in a fresh interpreter (the venv's python): what torchvision and torch's
operator registry look like depends on what was imported before.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import budgetopt._torchvision as compat

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, pythonpath: list[Path] = ()) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, pythonpath), str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is None, reason="torchvision is not installed")
def test_torchvision_timm_and_nms_work_after_the_repair():
    result = run_python(
        """
        import sys
        import budgetopt
        budgetopt.repair_torchvision_ops()
        assert "torchvision" not in sys.modules  # the repair does not import torchvision
        import torch
        import torchvision
        import timm

        boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.5]])
        scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
        print(torch.ops.torchvision.nms(boxes, scores, 0.5).tolist())
        print(torch.ops.torchvision.nms(boxes, scores, 0.99).tolist())
        """
    )
    assert result.returncode == 0, result.stderr
    # box 3 (score .95) suppresses box 0 (IoU 100/105) and box 1 (IoU 85.5/119.5); box 2
    # overlaps nothing. At threshold .99 nothing is suppressed: all, by descending score.
    assert result.stdout.split("\n")[:2] == ["[3, 2]", "[3, 0, 1, 2]"]


def test_working_torchvision_is_left_untouched(tmp_path):
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text("__version__ = 'fake, imports fine'\n")
    result = run_python(
        """
        import budgetopt
        import budgetopt._torchvision as compat
        budgetopt.repair_torchvision_ops()
        import torch
        import torchvision

        print(torchvision.__version__)
        print(compat._library is None)
        print(hasattr(torch.ops.torchvision, "nms"))
        """,
        pythonpath=[tmp_path],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["fake, imports fine", "True", "False"]


def test_other_torchvision_import_errors_are_not_swallowed(tmp_path):
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise RuntimeError('some other breakage')\n")
    result = run_python("import budgetopt; budgetopt.ensure_torchvision()", pythonpath=[tmp_path])
    assert result.returncode != 0
    assert "RuntimeError: some other breakage" in result.stderr


def test_missing_torchvision_is_not_an_error(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchvision" else find_spec(name, *a))
    assert compat.ensure_torchvision() is None


def test_importing_budgetopt_imports_no_torchvision_and_registers_nothing():
    result = run_python(
        """
        import sys
        import torch
        import budgetopt
        import budgetopt._torchvision as compat
        import budgetopt.study_script as study_script

        print("torchvision" in sys.modules, "timm" in sys.modules, "budgetopt.studies" in sys.modules)
        print(compat._library is None, study_script._NAMED == {})
        print(hasattr(torch.ops.torchvision, "nms"))
        print(",".join(budgetopt.study_script.builtin_studies()))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["False False False", "True True", "False"]
    assert result.stdout.split("\n")[3] == "cifar10,digits,fashion_mlp,fashion_mlp_fixed_lr,fashion_mnist"


@pytest.mark.skipif(importlib.util.find_spec("timm") is None, reason="timm is not installed")
def test_the_cifar10_study_and_the_lightning_integration_repair_before_they_import():
    result = run_python(
        """
        import budgetopt
        script = budgetopt.load_study_script("cifar10")  # imports timm, which imports torchvision
        print(type(script.module.resnet18_cifar()).__name__)
        import budgetopt.integration.lightning
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["ResNet", "ok"]


@pytest.mark.skipif(importlib.util.find_spec("timm") is None, reason="timm is not installed")
def test_a_study_script_given_by_path_may_import_timm(tmp_path):
    digits = Path(__file__).resolve().parents[1] / "budgetopt" / "studies" / "digits.py"
    script = tmp_path / "my_study.py"
    script.write_text(digits.read_text() + "\nimport timm  # noqa: E402  (a user's script: repaired before it is imported)\n")
    result = run_python(
        f"""
        import budgetopt
        script = budgetopt.load_study_script({str(script)!r})
        print(script.name, "timm" in __import__("sys").modules)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "my_study True"
