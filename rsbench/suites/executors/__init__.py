"""Executors run a grid of evaluations; each is declared through ``rsbench_register_executors``
and subclasses :class:`rsbench.suites.executors.base.Executor`, whose docstring is the contract."""
