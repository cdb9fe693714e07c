"""The device a run asks for, checked before anything runs, and named as it actually ran.

mmengine falls back to the CPU without a word when CUDA is asked for and none is usable; a row
saying ``device=cuda`` for a CPU run would misstate every timing and cost next to it.
"""

from __future__ import annotations

import os
import platform
from functools import cache

from rsbench.errors import SpecError


def check_device(device: str, nproc: int = 1) -> None:
    """Raise :class:`SpecError` (one sentence) when ``device`` is ``cuda`` and torch sees no
    usable GPU, or fewer GPUs than ``nproc`` processes need."""
    if device != "cuda":
        return
    import torch

    hidden = os.environ.get("CUDA_VISIBLE_DEVICES") == ""
    if not torch.cuda.is_available():
        why = "CUDA_VISIBLE_DEVICES is empty" if hidden else (
            f"torch {torch.__version__} sees no usable CUDA GPU"
            + ("" if torch.version.cuda else " (it is a CPU-only build)"))
        raise SpecError(f"--device cuda: {why}; run with --device cpu or on a machine with a GPU")
    available = torch.cuda.device_count()
    if nproc > available:
        raise SpecError(f"--nproc {nproc} with --device cuda: this machine has {available} GPU(s)")


@cache
def device_name(device: str) -> str:
    """What ran: the GPU model (``cuda: NVIDIA H100 80GB HBM3``) or the CPU model."""
    if device == "cuda":
        import torch

        return f"cuda: {torch.cuda.get_device_name(torch.cuda.current_device())}"
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), model)
    except OSError:
        pass
    return f"cpu: {model or platform.machine()} ({os.cpu_count()} cores)"
