"""One rank of a Hugging Face Trainer trial under DDP (gloo, CPU), started by
tests/test_transformers_ddp.py through torchrun:

    python -m torch.distributed.run --nproc-per-node 2 tests/transformers_ddp_worker.py STORAGE OUT SCENARIO MODE

Every rank builds the same Trainer (``use_cpu=True``, ``ddp_backend="gloo"``) with a
:class:`~budgetopt.integration.transformers.BudgetTrainerCallback` given an
``optuna_integration.TorchDistributedTrial``; rank 0's trial is asked from the study in
STORAGE (its BudgetPruner gives the plan). Scenarios: ``plain`` (the plan to its end),
``prune`` (a pruner that prunes at the first rung), ``ladder`` (budgets instead of a
TorchDistributedTrial: refused). Writes OUT/rank{R}.pt.
"""

from __future__ import annotations

import datetime
import importlib
import logging
import sys
import warnings
from pathlib import Path

import optuna
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
# the integration first: it repairs torchvision, which transformers imports
BudgetTrainerCallback = importlib.import_module("budgetopt.integration.transformers").BudgetTrainerCallback
transformers = importlib.import_module("transformers")
TorchDistributedTrial = importlib.import_module("optuna_integration").TorchDistributedTrial
from tiny_bert import accuracy, dataset, tiny_bert  # noqa: E402
from torchrun_ranks import finish_rank  # noqa: E402

LR = 3e-3


class Rates(transformers.TrainerCallback):
    def __init__(self):
        self.rates = []

    def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        self.rates.append(optimizer.param_groups[0]["lr"])  # the rate this optimizer step uses


def main() -> None:
    storage, out, scenario, mode = sys.argv[1:5]
    warnings.simplefilter("ignore")
    transformers.logging.set_verbosity_error()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=30))  # torchrun's env://
    rank = dist.get_rank()
    trial = study = None
    if rank == 0:
        import budgetopt

        pruner = optuna.pruners.ThresholdPruner(lower=1e9) if scenario == "prune" else budgetopt.BudgetPruner(4, 16, 2)
        study = optuna.load_study(study_name="s", storage=storage, pruner=pruner)
        trial = study.ask()
    budgets = [4, 8, 16] if scenario == "prune" else None
    source = [4, 8, 16] if scenario == "ladder" else TorchDistributedTrial(trial)
    result: dict = {"rank": rank}
    rates = Rates()
    try:
        callback = BudgetTrainerCallback(source, "eval_accuracy", mode=mode, budgets=budgets)
        args = transformers.TrainingArguments(
            output_dir=str(Path(out) / f"trainer{rank}"), learning_rate=LR, lr_scheduler_type="constant",
            max_steps=callback.max_steps, eval_strategy="no", save_strategy="no", report_to="none", logging_steps=1,
            per_device_train_batch_size=8, per_device_eval_batch_size=32, use_cpu=True, ddp_backend="gloo",
            disable_tqdm=True, seed=0, dataloader_num_workers=0,
        )
        trainer = transformers.Trainer(model=tiny_bert(), args=args, train_dataset=dataset(256, 0),
                                       eval_dataset=dataset(64, 1), compute_metrics=accuracy, callbacks=[callback, rates])
        trainer.train()
        result["outcome"] = "complete"
    except optuna.TrialPruned as pruned:
        result["outcome"] = f"pruned: {pruned}"
    except ValueError as error:  # budgetopt's InputError: bad input, the same on every rank
        result["outcome"] = f"{type(error).__name__}: {error}"
    run = callback.run if "callback" in locals() else None
    if run is not None:
        result.update(rates=rates.rates, lr_trace=run.lr_trace, compute=run.compute, rung_values=run.rung_values,
                      ended=run.ended, budgets=list(run.budgets),
                      weights={k: v.detach().clone() for k, v in trainer.model.state_dict().items()})
    finish_rank(rank, study, trial, run, result, out)


if __name__ == "__main__":
    main()
