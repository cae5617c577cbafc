"""studies/gpu_check.py runs on the CPU (``--quick``) and prints its one table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "studies" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclass resolves annotations through it
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules["gpu_check"]


def table(gpu_check, capsys, *args: str) -> list[str]:
    assert gpu_check.main(["--device", "cpu", "--quick", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("model "))
    return lines[header + 1:]


def test_the_cnn_in_fp32_and_bf16_gives_ratios_and_snapshot_times(gpu_check, capsys):
    rows = table(gpu_check, capsys, "--models", "cnn", "--variants", "fp32,bf16")
    assert [r.split()[:2] for r in rows] == [["cnn", "fp32"], ["cnn", "bf16"], ["cnn", "snapshot"]]
    for row in rows[:2]:
        ratio = float(row.split()[2])
        assert 0.2 < ratio < 5, row  # a measured ratio, not a placeholder
        assert "bare " in row and "budgeted " in row
    assert "restore" in rows[2] and "ms" in rows[2]


@pytest.mark.long
def test_every_variant_but_compile_on_both_models(gpu_check, capsys):
    rows = table(gpu_check, capsys, "--variants", "fp32,bf16,fp16,channels_last")
    checks = [tuple(r.split()[:2]) for r in rows]
    for model in ("cnn", "resnet18"):
        assert [c for m, c in checks if m == model] == ["fp32", "bf16", "fp16", "channels_last", "snapshot"]
    assert not any("skipped" in r for r in rows), rows


def test_a_bad_variant_is_one_line_naming_it(gpu_check, capsys):
    with pytest.raises(SystemExit) as exit_:
        gpu_check.main(["--device", "cpu", "--variants", "fp8"])
    assert exit_.value.code == 2
    assert "--variants: unknown fp8; allowed: fp32, bf16, fp16, channels_last, compile" in capsys.readouterr().err
