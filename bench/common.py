"""What every figure shares: the run context, one result type, interleaved timing, verdicts.

Each figure is a ratio against a reference measured in the same process and the same run, so
drift (clock boost, other jobs on a shared machine) hits both sides alike. Timed calls of the
two sides are interleaved (A, B, A, B, ...) and the median of each side is reported.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Context:
    """Settings of one ``python -m bench`` run, handed to every figure."""

    quick: bool = False
    paper: bool = False
    device: str = "cpu"
    #: Scratch space of this run (fixtures, work dirs, caches); removed by the caller.
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rsbench-bench-")))
    #: Filled by figure 2, read by nobody else: the machine's measured fp32 matmul GFLOP/s.
    matmul_gflops: float | None = None

    def scratch(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass
class Figure:
    """One figure of RESULTS.md: a headline against its goal, a table, and notes.

    ``verdict`` is ``"met"``, ``"not met"`` or ``"not measured"``; ``headline`` says the number
    that decided it. Rows are plain dicts rendered in ``columns`` order."""

    number: int
    title: str
    goal: str
    headline: str = ""
    verdict: str = "not measured"
    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    method: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)  # 1-min load average at start and end


def check(value: float, op: str, goal: float) -> str:
    """``"met"``/``"not met"`` of ``value <op> goal`` (``op`` is ``"<="`` or ``">="``)."""
    ok = value <= goal if op == "<=" else value >= goal
    return "met" if ok else "not met"


def combine(verdicts: list[str]) -> str:
    """A figure is met only when every measured part is; unmeasured parts make it partial."""
    measured = [v for v in verdicts if v != "not measured"]
    if not measured:
        return "not measured"
    if all(v == "met" for v in measured):
        return "met" if len(measured) == len(verdicts) else "met (partly measured)"
    return "not met"


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def interleaved(fns: Mapping[str, Callable[[], Any]], repeats: int, warmup: int = 1,
                device: str = "cpu") -> dict[str, list[float]]:
    """Seconds per call of each function, calls interleaved round-robin after ``warmup`` rounds."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def load1() -> float:
    return os.getloadavg()[0]


def fmt_s(seconds: float) -> str:
    if seconds >= 100:
        return f"{seconds:.0f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1e3:.1f} ms"


def to_device(x: Any, device: Any) -> Any:
    """Move a nested input (tensor, dict of tensors) to ``device``."""
    import torch

    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, Mapping):
        return {k: to_device(v, device) for k, v in x.items()}
    return x
