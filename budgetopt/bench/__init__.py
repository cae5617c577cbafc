"""Benchmark tables and the equal-compute search simulator: how budgetopt decides its claim.

One job per module, data flowing down the list:

- :mod:`~budgetopt.bench.table`: the table's format (``table.csv`` + ``meta.json``), unit
  kinds, the quasi-random pool, reading with every check;
- :mod:`~budgetopt.bench.build`: ``bench build``, training units in worker processes,
  crash-safe appends, resume;
- :mod:`~budgetopt.bench.simulate`: methods (sampler x pruner x kind) and one replayed
  search, a real Optuna study whose training is a table lookup;
- :mod:`~budgetopt.bench.runner`: many searches (every method, cap and repeat, and the
  pool resampling) in worker processes;
- :mod:`~budgetopt.bench.stats`: intervals, rank fidelity, ranks (numpy / scipy only);
- :mod:`~budgetopt.bench.records`: the schema of ``results.json`` (typed records, a
  version), and the one function that writes it and the one that reads it;
- :mod:`~budgetopt.bench.results`: from searches to every number of ``results.json``;
- :mod:`~budgetopt.bench.report`: ``report.md`` and plots, from ``results.json`` alone;
- :mod:`~budgetopt.bench.replay`: ``bench simulate`` end to end;
- :mod:`~budgetopt.bench.compare`: ``budgetopt compare`` = a small table, then ``replay``;
- :mod:`~budgetopt.bench.demo`: ``budgetopt demo``;
- :mod:`~budgetopt.bench.cli`: the commands' arguments.
"""
