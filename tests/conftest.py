import os
import sys

import optuna
import pytest
import torch

# Tests train tiny models: one thread each avoids oversubscribing a small CPU.
torch.set_num_threads(1)
optuna.logging.set_verbosity(optuna.logging.WARNING)
sys.path.insert(0, os.path.dirname(__file__))

IN_CI = os.environ.get("CI") == "true"


def require(condition: bool, reason: str) -> None:
    """Skip locally when a real component is missing; under CI=true, fail instead."""
    if not condition:
        if IN_CI:
            pytest.fail(f"required in CI: {reason}")
        pytest.skip(reason)
