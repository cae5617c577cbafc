"""One rank of a Lightning DDP trial (gloo, CPU), started by tests/test_lightning_ddp.py
through torchrun:

    python -m torch.distributed.run --nproc-per-node 2 tests/lightning_ddp_worker.py STORAGE OUT SCENARIO MODE

Every rank builds the same Trainer (``strategy="ddp"``, two CPU devices) with a
:class:`~budgetopt.integration.lightning.BudgetPruningCallback` given an
``optuna_integration.TorchDistributedTrial``; rank 0's trial is asked from the study in
STORAGE (its BudgetPruner gives the plan). Each rank reads its half of the data through a
DistributedSampler without shuffling, so a step of the two ranks' batches of 4 is one step
on the global batch of 8: the run equals one process training on batches of 8.
Scenarios: ``plain`` (the plan to its end), ``prune`` (a pruner that prunes at the first
rung), ``diverge`` (rank 1's training loss is NaN from its 5th step), ``ladder`` (the
callback given budgets instead of a TorchDistributedTrial: refused), ``rank0`` (the metric
logged on rank 0 only). Writes OUT/rank{R}.pt.
"""

from __future__ import annotations

import importlib
import logging
import sys
import warnings
from pathlib import Path

import optuna
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

sys.path.insert(0, str(Path(__file__).parent))
from torchrun_ranks import finish_rank, start_rank  # noqa: E402

# the integration first: it repairs torchvision, which lightning imports through torchmetrics
BudgetPruningCallback = importlib.import_module("budgetopt.integration.lightning").BudgetPruningCallback
L = importlib.import_module("lightning.pytorch")

LR = 0.05


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 3, generator=g)
    return x, x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1 * torch.randn(48, 1, generator=g)


def loaders(batch_size: int, rank: int | None = None) -> tuple[DataLoader, DataLoader]:
    """The training batches, in order (with ``rank``: that rank's half of each global batch
    of ``2 * batch_size``, a DistributedSampler without shuffling), and the whole validation set."""
    x, y = data()
    train = TensorDataset(x, y)
    sampler = None if rank is None else DistributedSampler(train, num_replicas=2, rank=rank, shuffle=False)
    return DataLoader(train, batch_size=batch_size, sampler=sampler), DataLoader(TensorDataset(x, y), batch_size=24)


class LitLinear(L.LightningModule):
    """A linear model, SGD with momentum; records the rate each training step sees."""

    def __init__(self, nan_from: int | None = None, rank_zero_only: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Linear(3, 1)
        self.step_lrs: list = []
        self.nan_from = nan_from
        self.rank_zero_only = rank_zero_only

    def training_step(self, batch, batch_idx):
        self.step_lrs.append(self.trainer.optimizers[0].param_groups[0]["lr"])
        x, y = batch
        loss = F.mse_loss(self.net(x), y)
        if self.nan_from is not None and len(self.step_lrs) >= self.nan_from:
            return loss * float("nan")
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        if self.rank_zero_only:  # the metric on rank 0 only: the others have none to report
            self.log("val_neg_mse", -F.mse_loss(self.net(x), y), rank_zero_only=True)
        else:
            self.log("val_neg_mse", -F.mse_loss(self.net(x), y), sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=LR, momentum=0.9)


def trainer(callback, devices: int, strategy: str = "ddp"):
    return L.Trainer(
        accelerator="cpu", devices=devices, strategy=strategy, max_epochs=-1, callbacks=[callback],
        enable_checkpointing=False, logger=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, use_distributed_sampler=False,  # the loaders' own samplers (Lightning's would shuffle)
    )


def main() -> None:
    storage, out, scenario, mode = sys.argv[1:5]
    warnings.simplefilter("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rank, study, trial, budgets, source = start_rank(storage, scenario)
    callback = BudgetPruningCallback(source, "val_neg_mse", mode=mode, budgets=budgets, loss_check_every=2)
    model = LitLinear(nan_from=5 if scenario == "diverge" and rank == 1 else None, rank_zero_only=scenario == "rank0")
    train, val = loaders(batch_size=4, rank=rank)
    result: dict = {"rank": rank}
    try:
        trainer(callback, devices=2).fit(model, train, val)
        result["outcome"] = "complete"
    except optuna.TrialPruned as pruned:
        result["outcome"] = f"pruned: {pruned}"
    except ValueError as error:  # budgetopt's InputError: bad input, the same on every rank
        result["outcome"] = f"{type(error).__name__}: {error}"
    run = callback.run
    if run is not None:
        result.update(step_lrs=model.step_lrs, lr_trace=run.lr_trace, compute=run.compute, rung_values=run.rung_values,
                      ended=run.ended, budgets=list(run.budgets),
                      weights={k: v.detach().clone() for k, v in model.state_dict().items()})
    finish_rank(rank, study, trial, run, result, out)


if __name__ == "__main__":
    main()
