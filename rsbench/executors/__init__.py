"""Executors run a grid of evaluations; each is declared through ``rsbench_register_executors``.

Contract: ``Executor(jobs=..., address=..., results_dir=..., force=...)`` and
``executor.run(specs, on_row)`` calling ``on_row(spec, row)`` once per evaluation from the
caller's thread (the suite's single leaderboard writer). A crash of one evaluation becomes its
``failed`` row; it never costs another's.
"""
