"""Stop a run early, with a clear error, when training has gone wrong."""

from __future__ import annotations

import math
from typing import Any

from mmengine.hooks import Hook


class FiniteLossHook(Hook):
    """A NaN or infinite loss fails the run at once (a ``failed`` row naming the iteration)
    instead of training on and reporting a meaningless metric."""

    priority = "VERY_LOW"

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        loss = (outputs or {}).get("loss")
        loss = loss.item() if hasattr(loss, "item") else loss
        if loss is not None and not math.isfinite(float(loss)):
            raise FloatingPointError(
                f"training loss is {float(loss)} at iteration {runner.iter + 1}; the run was stopped "
                "(lower --lr, check the data normalization, or inspect the log in the work dir)"
            )
