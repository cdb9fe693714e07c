"""Resuming interrupted training without unpickling arbitrary objects.

torch >= 2.6 loads with ``weights_only=True``. mmengine 0.10.7's training checkpoints hold its
message hub's ``HistoryBuffer`` objects, which pickle bound methods through ``getattr`` — and
allowing ``getattr`` would make weights-only loading unsafe. So rsbench saves checkpoints
without the logged-scalar history (only used to smooth log lines) and allow-lists just the
numpy array types left in ``meta``; the model, optimizer, scheduler and iteration resume as usual.
"""

from __future__ import annotations

from typing import Any

from mmengine.hooks import Hook


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
