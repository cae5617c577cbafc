"""budgetopt in other training loops.

- :mod:`budgetopt.integration.dataloader`: a DataLoader read as one stream of batches
  across epochs, positioned by the step of a budget's schedule; what
  :meth:`budgetopt.Segment.batches` draws from.
- :mod:`budgetopt.integration.lightning`: :class:`BudgetPruningCallback`, budget-aware
  training and pruning inside PyTorch Lightning's ``Trainer.fit`` (needs the
  ``lightning`` extra: ``pip install 'budgetopt[lightning]'``).

Both drive the same :class:`~budgetopt.BudgetedRun` and :class:`~budgetopt.Segment` as
a plain loop: one copy of the schedules, modes and snapshots.
"""
