"""One trial trained by several processes (``torch.distributed``): what their runs agree on.

A :class:`~budgetopt.BudgetedRun` given an ``optuna_integration.TorchDistributedTrial``
runs on every rank of the default process group. Rank 0 owns the Optuna trial; every
decision that ends or shapes a run is taken once and made the same on every rank, at the
same step, by the collectives here:

- the plan (rank 0 asks the study's BudgetPruner; an error there is raised on every rank);
- each rung's value (rank 0's, the one reported to the trial) and the prune decision;
- divergence: each rank checks its own training loss at the same steps (every
  ``loss_check_every`` iterations and the end of each budget, whether or not it recorded a
  loss) and its own parameters at each rung; one rank's NaN ends the run on all;
- a retried trial's rung snapshot: rank 0 reads it and sends it to the others.

State snapshots (restart's initial state, branch's trunk) are taken by each rank of its
own replica at the same step, so they stay consistent without communication.

A rank that dies: the others fail in their next collective (gloo at once, NCCL after the
process group's ``timeout``: pass ``timeout=`` to ``torch.distributed.init_process_group``);
the error is re-raised as one line naming the step (:class:`RankFailure`), the process
exits and the trial, never told, is failed and re-queued by the workers' heartbeat (or
ends as Optuna's ``objective`` raised).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch

from budgetopt.errors import ResourceError

__all__ = ["Collective", "RankFailure", "collective_of"]

T = TypeVar("T")


class RankFailure(ResourceError, RuntimeError):
    """A collective of a distributed run failed: another rank stopped (or the group broke)."""


def _is_distributed_trial(source: object) -> bool:
    cls = type(source)
    return cls.__name__ == "TorchDistributedTrial" and cls.__module__.startswith("optuna_integration")


def collective_of(source: object) -> Collective | None:
    """A :class:`Collective` when ``source`` is a ``TorchDistributedTrial`` (the default
    process group must be initialised), else None."""
    if not _is_distributed_trial(source):
        return None
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("a TorchDistributedTrial needs torch.distributed.init_process_group() first")
    return Collective()


class Collective:
    """The default process group, seen by one rank of a distributed run."""

    def __init__(self) -> None:
        import torch.distributed as dist

        self.rank = dist.get_rank()
        self.size = dist.get_world_size()
        # NCCL reduces tensors on the rank's GPU; gloo (and the others) on the CPU
        self._device = (
            torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
        )

    def _guard(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except RankFailure:
            raise
        except Exception as error:  # the backend's error: a peer is gone, a timeout
            first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            raise RankFailure(
                f"rank {self.rank} of {self.size}: the collective for {what} failed, another rank stopped ({first})"
            ) from error

    def broadcast(self, value: T, what: str) -> T:
        """Rank 0's ``value`` on every rank."""
        import torch.distributed as dist

        box = [value]
        self._guard(what, lambda: dist.broadcast_object_list(box, src=0))
        return box[0]

    def any(self, flag: bool, what: str) -> bool:
        """True on every rank when ``flag`` is True on any."""
        import torch.distributed as dist

        tensor = torch.tensor([1 if flag else 0], dtype=torch.int32, device=self._device)
        self._guard(what, lambda: dist.all_reduce(tensor, op=dist.ReduceOp.MAX))
        return bool(tensor.item())

    def on_zero(self, call: Callable[[], T], what: str) -> T:
        """``call()`` on rank 0 and its result on every rank; rank 0's exception raised on
        every rank (the others get the same type when it is a built-in or budgetopt's, else
        a RuntimeError naming it: an exception is sent as its type's name and message, as
        not every exception pickles)."""
        result: Any = None
        error: BaseException | None = None
        if self.rank == 0:
            try:
                result = ("ok", call())
            except Exception as raised:
                error = raised
                result = ("error", type(raised).__module__, type(raised).__qualname__, str(raised))
        sent = self.broadcast(result, what)
        if error is not None:
            raise error
        if sent[0] == "error":
            raise _rebuilt(*sent[1:])
        return sent[1]


def _rebuilt(module: str, name: str, message: str) -> Exception:
    """Rank 0's exception on another rank: the same type when it is a built-in or one of
    budgetopt's or Optuna's taking a message, else a RuntimeError that names it."""
    import importlib

    if module == "builtins" or module.split(".")[0] in ("budgetopt", "optuna"):
        try:
            cls = getattr(importlib.import_module(module), name)
            if isinstance(cls, type) and issubclass(cls, Exception):
                return cls(message)
        except Exception:  # not importable or not constructible from a message: say what it was
            pass
    return RuntimeError(f"on rank 0: {module}.{name}: {message}")

def owned_trial(source: object) -> Any:
    """The Optuna trial a ``TorchDistributedTrial`` wraps: on rank 0 the study's trial, on
    the others None.

    Private use, named here and nowhere else: optuna_integration keeps the trial in
    ``TorchDistributedTrial._delegate`` and has no public accessor, and budgetopt needs
    the trial itself on rank 0 (its study's BudgetPruner gives the plan; its storage holds
    the user attrs, rung snapshots and kept models). ``tests/test_distributed.py`` fails
    when optuna_integration changes it.
    """
    return source._delegate  # type: ignore[attr-defined]
