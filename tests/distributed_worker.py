"""One rank of a distributed BudgetedRun (gloo, CPU), started by tests/test_distributed.py.

    python tests/distributed_worker.py RANK WORLD PORT STORAGE OUT SCENARIO MODE

Both ranks train a tiny linear model on their half of one global batch of 8 (DDP averages
the gradients, so the step equals one process on all 8), through an
``optuna_integration.TorchDistributedTrial`` whose trial rank 0 asks from the study in
STORAGE. Scenarios: ``plain`` (BudgetPruner's plan), ``prune`` (explicit budgets, a pruner
that prunes at the first rung), ``diverge`` (rank 1's loss is NaN from iteration 5 of budget
8), ``kill`` (rank 1 exits at iteration 3 of budget 8; no DDP, so the
survivor meets the run's own collectives). Writes OUT/rank{RANK}.pt.
"""

from __future__ import annotations

import datetime
import os
import sys
from pathlib import Path

import optuna
import torch
import torch.distributed as dist
from optuna_integration import TorchDistributedTrial

import budgetopt

LR = 0.1


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, generator=g)
    return x, x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1 * torch.randn(8, 1, generator=g)


def model_and_optimizer() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    return model, torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)


def main() -> None:
    rank, world, port, storage, out, scenario, mode = sys.argv[1:8]
    rank, world = int(rank), int(world)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=15))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trial = None
    if rank == 0:
        pruner = optuna.pruners.ThresholdPruner(lower=1e9) if scenario == "prune" else budgetopt.BudgetPruner(4, 16, 2)
        study = optuna.load_study(study_name="s", storage=storage, pruner=pruner)
        trial = study.ask()
    model, optimizer = model_and_optimizer()
    net = model if scenario == "kill" else torch.nn.parallel.DistributedDataParallel(model)
    budgets = [4, 8, 16] if scenario == "prune" else None
    run = budgetopt.BudgetedRun(TorchDistributedTrial(trial), model, optimizer, mode=mode, budgets=budgets,
                                loss_check_every=2)
    x, y = data()
    half = slice(4 * rank, 4 * rank + 4)
    result: dict = {"rank": rank}
    try:
        for segment in run.segments():
            for t in segment:
                if scenario == "kill" and rank == 1 and segment.budget == 8 and t == 3:
                    os._exit(3)
                optimizer.zero_grad()
                loss = torch.nn.functional.mse_loss(net(x[half]), y[half])
                loss.backward()
                optimizer.step()
                bad = scenario == "diverge" and rank == 1 and segment.budget == 8 and t >= 5
                run.record_loss(float("nan") if bad else loss.detach())
            with torch.no_grad():  # plain: only rank 0 evaluates (the others pass None), as many DDP loops do
                value = -float(torch.nn.functional.mse_loss(model(x), y))
                segment.report(None if scenario == "plain" and rank > 0 else value)
        result["outcome"] = "complete"
    except optuna.TrialPruned as pruned:
        result["outcome"] = f"pruned: {pruned}"
    except budgetopt.distributed.RankFailure as failure:
        result["outcome"] = f"RankFailure: {failure}"
    result.update(lr_trace=run.lr_trace, compute=run.compute, rung_values=run.rung_values, ended=run.ended,
                  budgets=list(run.budgets), weights={k: v.clone() for k, v in model.state_dict().items()})
    if rank == 0 and trial is not None and result["outcome"] == "complete":
        study.tell(trial, run.value)
    elif rank == 0 and trial is not None and result["outcome"].startswith("pruned"):
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    torch.save(result, Path(out) / f"rank{rank}.pt")
    if not result["outcome"].startswith("RankFailure"):
        # every rank reaches the same point before the group goes: a rank that destroys its
        # gloo group while another still works in it can abort at exit ("terminate called
        # without an active exception", seen once in CI on the prune scenario)
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
