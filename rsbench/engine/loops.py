"""mmengine's ``TestLoop`` under ``torch.inference_mode``: evaluation builds no autograd state at
all (no version counters, no view tracking), a little faster than the ``no_grad`` mmengine uses.
The runner (``prepare``) swaps it in for every task's plain ``TestLoop``; ``fp16`` autocast works
as before."""

from __future__ import annotations

from typing import Any

import torch
from mmengine.registry import LOOPS
from mmengine.runner import TestLoop


@LOOPS.register_module(name="RSBTestLoop", force=True)
class InferenceModeTestLoop(TestLoop):
    def run_iter(self, idx: int, data_batch: Any) -> None:
        with torch.inference_mode():
            super().run_iter(idx, data_batch)

