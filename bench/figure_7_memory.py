"""Figure 7: peak memory of each paper-size backbone for inference at batch 1 at its paper input.

Two ways, both reported where both ran:

* **counted** (always): the model is built on the meta device (no memory), and its forward runs
  under :class:`LiveBytes`, a ``TorchDispatchMode`` that adds the bytes of every storage an op
  creates and subtracts them when the storage is freed. Peak = parameters + buffers + inputs +
  the highest live activation total. This is what the forward needs, exactly, without
  allocator overhead, and works for models that do not fit in this machine's memory.
* **measured** (where the counted peak is under 35% of the memory available at the start): in a
  fresh subprocess, the growth of the resident set from before the model is built to its
  high-water mark during the forward (the kernel's ``VmHWM``, reset after the build through
  ``/proc/self/clear_refs``), plus the inputs. It includes allocator and library overhead.

Data-dependent Python branches on meta tensors cannot be evaluated; the counter answers such a
read of a boolean with ``False`` (the input-validation checks, ``if bad: raise``) and counts
how many it answered, so a row says when that happened. A non-boolean read is an error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any

from bench.common import Context, Figure

#: Paper input side per backbone (HR / single image); others use their declared test size.
PAPER_SIZES = {"mars": 512, "skysense": 256, "skysense-hr": 256, "resnet50": 224, "vit-b": 224, "swin-b": 224}
#: SkySense's pretraining sequence lengths (S2 20 frames, S1 10 frames, 64 x 64 px each).
SKYSENSE_FRAMES = {"s2": 20, "s1": 10}
SKYSENSE_TS_SIZE = 64
MEASURE_SHARE = 0.35


def _live_bytes_mode() -> Any:
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    scalar_reads = (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default,
                    torch.ops.aten.item.default)

    class LiveBytes(TorchDispatchMode):
        """Live and peak bytes of the storages ops create while the mode is active."""

        def __init__(self) -> None:
            super().__init__()
            self.live = 0
            self.peak = 0
            self.answered = 0
            self._keys: set[int] = set()

        def known(self, tensors: Any) -> None:
            """Storages that exist already (parameters, buffers, inputs): views of them are free."""
            for t in tensors:
                self._keys.add(t.untyped_storage()._cdata)

        def _free(self, key: int, nbytes: int) -> None:
            self._keys.discard(key)
            self.live -= nbytes

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
            if func in scalar_reads and args and getattr(args[0], "is_meta", False):
                if args[0].dtype != torch.bool:
                    raise RuntimeError(f"{func} reads a {args[0].dtype} value of a meta tensor: the forward branches "
                                       "on data, and its memory cannot be counted")
                self.answered += 1
                return False
            out = func(*args, **(kwargs or {}))
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    storage = t.untyped_storage()
                    key = storage._cdata
                    if key in self._keys:  # a view or an in-place result: no new memory
                        continue
                    nbytes = storage.nbytes()
                    self._keys.add(key)
                    self.live += nbytes
                    weakref.finalize(storage, self._free, key, nbytes)
                    self.peak = max(self.peak, self.live)
            return out

    return LiveBytes()


def paper_inputs(name: str, model: Any, size: int) -> Any:
    """Batch-1 inputs at the paper size (CPU tensors); SkySense gets its pretraining sequences."""
    import torch

    x = model.example_inputs(1, size)
    if isinstance(x, dict) and "dates" in x:  # SkySense: full-length S2/S1 time series
        for m, t in SKYSENSE_FRAMES.items():
            if m in x:
                bands = x[m].shape[-3]
                x[m] = torch.randn(1, t, bands, SKYSENSE_TS_SIZE, SKYSENSE_TS_SIZE)
                x["dates"][m] = torch.randint(1, 366, (1, t))
    return x


def describe(x: Any) -> str:
    import torch

    if isinstance(x, torch.Tensor):
        return "x".join(map(str, x.shape))
    return ", ".join(f"{k} {describe(v)}" for k, v in x.items() if k not in ("dates", "latlon"))


def _tensors(x: Any) -> list[Any]:
    import torch

    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, dict):
        return [t for v in x.values() for t in _tensors(v)]
    return []


def _nbytes(x: Any) -> int:
    import torch

    if isinstance(x, torch.Tensor):
        return x.numel() * x.element_size()
    if isinstance(x, dict):
        return sum(_nbytes(v) for v in x.values())
    return 0


def build_on_meta(name: str) -> Any:
    """The backbone with every parameter and buffer on the meta device (nothing allocated)."""
    import torch
    from mmengine.registry import MODELS

    from rsbench import get_catalog
    from rsbench.plugin_api.backbone import _parameters_on_meta

    info = get_catalog().backbone(name)
    module = info.register_type()
    safe = getattr(module, "_meta_safe", contextlib.nullcontext)  # SkySense: linspace on the CPU
    try:
        with torch.device("meta"), safe():
            model = MODELS.build(info.config())
    except (RuntimeError, NotImplementedError):  # constructors that call .item(): meta parameters only
        with _parameters_on_meta():
            model = MODELS.build(info.config())
    model = model.to("meta")
    model.eval()
    return model


def count(name: str, size: int) -> dict[str, Any]:
    import torch

    from bench.common import to_device

    model = build_on_meta(name)
    static = sum(p.numel() * p.element_size() for p in model.parameters())
    static += sum(b.numel() * b.element_size() for b in model.buffers())
    x = paper_inputs(name, model, size)
    shape = describe(x)
    inputs = _nbytes(x)
    x = to_device(x, "meta")
    mode = _live_bytes_mode()
    mode.known([*model.parameters(), *model.buffers(), *_tensors(x)])
    with torch.inference_mode(), mode:
        out = model(x)
        del out
    return dict(input=shape, params_mib=static / 2**20, activations_mib=mode.peak / 2**20,
                counted_mib=(static + inputs + mode.peak) / 2**20, answered=mode.answered)


# -- measured, in a subprocess ------------------------------------------------------------------
def _status_kib(key: str) -> int:
    return int(re.search(rf"^{key}:\s+(\d+)", Path("/proc/self/status").read_text(), re.M).group(1))


def measure_here(name: str, size: int) -> dict[str, Any]:
    """Run in a fresh process: resident growth from before the build to the forward's peak."""
    import torch
    from mmengine.registry import MODELS

    from rsbench import get_catalog
    info = get_catalog().backbone(name)
    info.register_type()
    x = paper_inputs(name, build_on_meta(name), size)
    baseline = _status_kib("VmRSS")
    torch.manual_seed(0)
    model = MODELS.build(info.config())
    model.eval()
    after_build = _status_kib("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current resident size
        how = "VmHWM after clear_refs"
    except OSError:
        how = "ru_maxrss (not reset: includes the build's peak)"
    with torch.inference_mode():
        model(x)
    peak = _status_kib("VmHWM")
    return dict(measured_mib=(peak - baseline) / 1024 + _nbytes(x) / 2**20,
                model_resident_mib=(after_build - baseline) / 1024, how=how)


def measure(name: str, size: int, timeout: float = 900) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "bench.figure_7_memory", "--measure", name, "--size", str(size)],
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, CUDA_VISIBLE_DEVICES=""),
                          cwd=str(Path(__file__).resolve().parent.parent))
    if proc.returncode != 0:
        raise RuntimeError(f"measuring {name} failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


def backbones() -> list[str]:
    from rsbench import get_catalog
    return [b.name for b in get_catalog().backbones if not b.tiny]


def run(ctx: Context) -> Figure:
    from rsbench import get_catalog
    names = ["resnet50", "vit-b"] if ctx.quick else backbones()
    available = _available_mib()
    fig = Figure(7, "Peak memory of each paper-size backbone, inference at batch 1", "reported per backbone "
                 "(counted where it cannot be allocated)",
                 columns=["backbone", "params", "input", "params_mib", "activations_mib", "counted_mib", "measured_mib",
                          "used"])
    for name in names:
        size = PAPER_SIZES.get(name, get_catalog().backbone(name).test_size)
        row: dict[str, Any] = dict(backbone=name, params=f"{get_catalog().backbone(name).params / 1e6:.1f} M")
        try:
            row.update(count(name, size))
        except Exception as exc:  # noqa: BLE001  (one backbone's failure is a row, not the end of the figure)
            row.update(input=f"{size} px", used=f"count failed: {type(exc).__name__}: {str(exc)[:160]}")
            fig.rows.append(row)
            continue
        if row["counted_mib"] < MEASURE_SHARE * available:
            try:
                row.update(measure(name, size))
                row["used"] = "measured (counted shown beside)"
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                row["used"] = f"counted (measuring failed: {str(exc)[:120]})"
        else:
            row["used"] = (f"counted ({row['counted_mib'] / 1024:.1f} GiB > {MEASURE_SHARE:.0%} of the "
                           f"{available / 1024:.1f} GiB available)")
        if row.get("answered"):
            row["used"] += f"; {row['answered']} boolean data checks answered False"
        for key in ("params_mib", "activations_mib", "counted_mib", "measured_mib"):
            if isinstance(row.get(key), float):
                row[key] = round(row[key], 1)
        fig.rows.append(row)
    fig.verdict = "met" if all("failed" not in str(r.get("used")) for r in fig.rows) else "not met"
    fig.headline = ", ".join(f"{r['backbone']} {r.get('measured_mib', r.get('counted_mib', '?'))} MiB"
                             for r in fig.rows)
    fig.method = ("fp32, `torch.inference_mode`, batch 1. Paper inputs: MaRS 512 px (RGB + SAR), SkySense HR 256 px "
                  f"(the smallest the official window accepts; its downstream crops are larger) with S2 "
                  f"{SKYSENSE_FRAMES['s2']} and S1 {SKYSENSE_FRAMES['s1']} frames of {SKYSENSE_TS_SIZE} px (its "
                  "pretraining sequences), ResNet-50 / ViT-B / Swin-B 224 px. `counted_mib` = parameters + buffers + "
                  "inputs + peak live activations (meta device, no allocation); `measured_mib` = resident growth "
                  "in a fresh process (model build to the forward's peak, plus the inputs). The goal is that every "
                  "backbone has a number: met when none failed.")
    if ctx.quick:
        fig.notes.append("Quick mode: two backbones only.")
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description="Measure one backbone's inference peak (used by figure 7).")
    parser.add_argument("--measure", required=True)
    parser.add_argument("--size", type=int, required=True)
    args = parser.parse_args()
    print(json.dumps(measure_here(args.measure, args.size)))


if __name__ == "__main__":
    main()
