"""Resuming interrupted training without unpickling arbitrary objects.

torch >= 2.6 loads with ``weights_only=True``. mmengine 0.10.7's training checkpoints hold its
message hub's ``HistoryBuffer`` objects, which pickle bound methods through ``getattr`` — and
allowing ``getattr`` would make weights-only loading unsafe. So rsbench saves checkpoints
without the logged-scalar history (only used to smooth log lines) and allow-lists just the
numpy array types left in ``meta``; the model, optimizer, scheduler and iteration resume as usual.
"""

from __future__ import annotations

import time
from typing import Any

from mmengine.hooks import CheckpointHook, Hook
from mmengine.registry import HOOKS


def allow_mmengine_checkpoint_globals() -> None:
    """Let ``weights_only`` loads read the numpy objects mmengine stores in ``meta``."""
    import numpy as np
    import torch
    from numpy._core import multiarray

    torch.serialization.add_safe_globals(
        [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar,
         *(type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool", "uint8"))]
    )


class WeightsOnlyCheckpointHook(Hook):
    """Drops the message hub's scalar history from saved checkpoints (see module docstring)."""

    priority = "VERY_LOW"

    def before_save_checkpoint(self, runner: Any, checkpoint: dict[str, Any]) -> None:
        hub = checkpoint.get("message_hub")
        if isinstance(hub, dict):
            hub["log_scalars"] = {}
            hub["resumed_keys"] = {k: v for k, v in hub.get("resumed_keys", {}).items()
                                   if k in hub.get("runtime_info", {})}


@HOOKS.register_module(name="RSBCheckpointHook")
class ThrottledCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` that skips an interval save when the previous save is less
    than ``min_seconds`` old (the final save always happens).

    A quarter-schedule interval protects hours-long runs; for a run of seconds (a linear probe
    on cached features, a smoke run) four full-model saves were most of the wall time. A run
    killed before its first minute restarts from zero and loses under a minute."""

    def __init__(self, min_seconds: float = 60.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.min_seconds = float(min_seconds)
        self._last_save = time.monotonic()
        self.saves = 0

    def before_train(self, runner: Any) -> None:
        super().before_train(runner)
        self._last_save = time.monotonic()

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        final = self.save_last and self.is_last_train_iter(runner)
        if not final and time.monotonic() - self._last_save < self.min_seconds:
            return
        super().after_train_iter(runner, batch_idx, data_batch, outputs)

    def _save_checkpoint(self, runner: Any) -> None:
        super()._save_checkpoint(runner)
        self._last_save = time.monotonic()
        self.saves += 1
