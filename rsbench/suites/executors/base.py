"""The executor contract: what ``rsbench suite --executor NAME`` builds and calls."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from rsbench.run.spec import RunSpec

#: ``on_row(spec, row, reused)``: called once per evaluation, from the caller's thread (the
#: suite's single leaderboard writer); ``reused`` when an identical ``ok`` row already existed.
OnRow = Callable[[RunSpec, dict[str, Any], bool], None]


class Executor(ABC):
    """Runs a grid of evaluations.

    Built as ``Executor(jobs=..., address=..., results_dir=..., force=...)`` (unknown keywords
    are ignored, so the suite can pass what any executor might need). :meth:`run` calls
    ``on_row`` exactly once per spec; a crash of one evaluation becomes its ``failed`` row
    (``rsbench.run.runner.failure_row``) and never costs another's. Rows are handed back, never
    written by the executor, so the leaderboard has one writer.
    """

    @abstractmethod
    def run(self, specs: Sequence[RunSpec], on_row: OnRow) -> None:
        """Run every spec and report each row through ``on_row``."""
