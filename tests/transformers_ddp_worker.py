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

import importlib
import logging
import sys
import warnings
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).parent))
# the integration first: it repairs torchvision, which transformers imports
BudgetTrainerCallback = importlib.import_module("budgetopt.integration.transformers").BudgetTrainerCallback
transformers = importlib.import_module("transformers")
from tiny_bert import accuracy, dataset, tiny_bert  # noqa: E402
from torchrun_ranks import finish_rank, start_rank  # noqa: E402

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
    rank, study, trial, budgets, source = start_rank(storage, scenario)
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
