"""Rich progress bars for mmengine's train and test loops."""

from __future__ import annotations

import math
from typing import Any

from mmengine.hooks import Hook
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def make_progress(console: Console | None = None) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=False,
    )


class RichProgressHook(Hook):
    """Advances one bar per loop; shows the running loss while training."""

    priority = "VERY_LOW"

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress = progress
        self.label = label
        self._train: Any = None
        self._test: Any = None

    def before_train(self, runner: Any) -> None:
        self._train = self.progress.add_task(f"{self.label} train", total=runner.max_iters,
                                             completed=runner.iter, status="")

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        loss = (outputs or {}).get("loss")
        loss = loss.item() if hasattr(loss, "item") else loss
        status = f"loss {float(loss):.4f}" if loss is not None and math.isfinite(float(loss)) else ""
        self.progress.update(self._train, completed=runner.iter + 1, status=status)

    def before_test_epoch(self, runner: Any) -> None:
        self._test = self.progress.add_task(f"{self.label} test", total=len(runner.test_dataloader), status="")

    def after_test_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self.progress.advance(self._test)
