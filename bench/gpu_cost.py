"""The cost table of figure 9: GPU-hours of each of the 25 evaluations at its protocol card's
schedule, for ``skysense`` and ``mars``, estimated from measured step times.

Estimate = optimiser steps x gradient-accumulation steps x seconds of one fine-tuning step at the
card's input size and per-GPU batch, on one GPU. The step is the one of :mod:`bench.gpu_step`
(backbone forward + pooled linear head + backward + AdamW, bf16 autocast; with activation
checkpointing only where it does not fit without), measured on this GPU for each distinct
(input, images per step, modalities), the backbone built with the modalities a run of that task
gives it (``in_modalities``); a change task's step holds two images per sample. Where a task has
no card yet, its default options give the input size, batch and schedule. Left out, so the
figures are lower bounds: the task's real head and neck (UPerNet, Faster/Oriented R-CNN, ...),
data loading and augmentation, validation and testing.
An epoch-based schedule needs the training-set size, which the card does not state: its row gives
GPU-hours per 1,000 training samples per epoch times the epochs instead.

    python -m bench.gpu_cost --out /tmp/cost.json [--tiny --device cpu] [--budget-s 120]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

BACKBONES = ("skysense", "mars")
SIZE_OPTIONS = ("crop_size", "max_size", "img_size", "image_size", "patch_size", "size")


def plan(task: str) -> dict[str, Any]:
    """What the card (else the task's default options) says about one evaluation's training."""
    from rsbench import get_catalog
    from rsbench.protocol.protocol_card import task_card

    info = get_catalog().tasks.get(task)
    try:
        card = task_card(info)
    except Exception as exc:  # noqa: BLE001  (an unloadable card: the row says so)
        return {"task": task, "card": f"unloadable: {exc}"}
    options = dict(info.options)
    out: dict[str, Any] = {"task": task, "card": card.id if card else "none"}
    crop = card.crop.value if card else None
    out["size"] = crop if isinstance(crop, int) else next(
        (int(options[k]) for k in SIZE_OPTIONS if isinstance(options.get(k), int) and options[k] > 0), None)
    eb = card.effective_batch.value if card else None
    per_process = eb.get("per_process") if isinstance(eb, dict) else options.get("batch_size")
    total = eb.get("total") if isinstance(eb, dict) else per_process
    out["batch"], out["total_batch"] = per_process, total
    sched = card.schedule.value if card else None
    if not isinstance(sched, dict):
        sched = {k: options[k] for k in ("iters", "max_iters", "epochs") if isinstance(options.get(k), int)}
    out["iters"] = sched.get("iters") or sched.get("max_iters")
    out["epochs"] = sched.get("epochs")
    return out


def estimate(plans: list[dict[str, Any]], backbone: str, device: str, tiny: bool, steps: int,
             deadline: float) -> list[dict[str, Any]]:
    """Each plan with its measured step time and GPU-hours for ``backbone``, built as a run of
    that task builds it (the modalities both sides share, ``in_modalities``)."""
    import torch
    from mmengine.registry import MODELS

    from bench.gpu_step import TINY, measure
    from rsbench import get_catalog
    from rsbench.run.runner import modality_fit

    catalog = get_catalog()
    info = catalog.backbone(TINY[backbone] if tiny else backbone)
    info.register_type()
    rows = [{"backbone": backbone, **p} for p in plans]
    for row in rows:
        row["modalities"] = modality_fit(info, catalog.tasks.get(row["task"]))
    measured: dict[tuple[Any, ...], dict[str, Any]] = {}
    model, built_for = None, None
    for row in sorted(rows, key=lambda r: r["modalities"]):
        if not row["modalities"]:
            row["status"] = "skipped: the backbone takes none of the task's modalities"
            continue
        if not row.get("size") or not row.get("batch"):
            row["status"] = "no input size or batch in the card or the task's options"
            continue
        batch = int(row["batch"])
        # a change pair runs the shared backbone on both dates: twice the images per sample
        images = batch * (2 if catalog.tasks.get(row["task"]).family == "change" else 1)
        size, micro = (64, 2) if tiny else (int(row["size"]), images)
        key = (size, micro, tuple(row["modalities"]))
        if key not in measured:
            if time.monotonic() > deadline:
                measured[key] = {"status": "not measured: time budget"}
            else:
                if built_for != key[2]:
                    del model
                    if device.startswith("cuda"):
                        torch.cuda.empty_cache()
                    torch.manual_seed(0)
                    with torch.device(device):  # initialised where it runs
                        model = MODELS.build(info.config(in_modalities=list(key[2])))
                    model.train()
                    built_for = key[2]
                measured[key] = _measure_fitting(model, model.example_inputs(micro, size),
                                                 model.out_channels[-1], steps, device, measure)
                print(f"[gpu_cost] {backbone} {key}: {measured[key]}", file=sys.stderr, flush=True)
        row.update(measured[key])
        if row.get("status") != "ok":
            continue
        accumulation = max(1, math.ceil(int(row["total_batch"] or batch) / batch))
        step_s = row["step_s"] * accumulation
        if row.get("iters"):
            row["gpu_hours"] = round(int(row["iters"]) * step_s / 3600, 2)
            row["how"] = f"{row['iters']} iterations x {accumulation} micro-step(s) x {row['step_s']:.3f} s"
        elif row.get("epochs"):
            per_1k = 1000 / (batch * accumulation) * step_s / 3600
            row["gpu_hours_per_1k_samples"] = round(int(row["epochs"]) * per_1k, 3)
            row["how"] = (f"{row['epochs']} epochs x (N_train / {batch * accumulation}) steps x {step_s:.3f} s")
        else:
            row["status"] = "no schedule (iterations or epochs) in the card or the task's options"
    del model
    return rows


def _measure_fitting(model: Any, x: Any, channels: int, steps: int, device: str, measure: Any) -> dict[str, Any]:
    """bf16 step time (fp32 off CUDA), with activation checkpointing only if it does not fit without."""
    import torch

    precision = "bf16" if device.startswith("cuda") else "fp32"
    for ckpt in (False, True):
        model.set_grad_checkpointing(ckpt)
        try:
            times, peak = measure(model, lambda t: t, x, channels, precision, steps, device)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            continue
        except Exception as exc:  # noqa: BLE001
            return {"status": f"failed: {type(exc).__name__}: {exc}"[:200]}
        finally:
            model.set_grad_checkpointing(False)
        return {"status": "ok", "precision": precision, "checkpointing": ckpt,
                "step_s": sorted(times)[len(times) // 2], "peak_gib": peak and round(peak, 2)}
    return {"status": "OOM even with activation checkpointing"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--suite", default="all")
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--budget-s", type=float, default=150.0)
    args = parser.parse_args(argv)
    from rsbench.suites.suite import load_suite

    deadline = time.monotonic() + args.budget_s
    tasks = list(dict.fromkeys(e.task for e in load_suite(args.suite).evaluations))
    plans = [plan(t) for t in tasks]
    rows = []
    for backbone in [b for b in args.backbones.split(",") if b]:
        try:
            rows += estimate(plans, backbone, args.device, args.tiny, args.steps, deadline)
        except Exception as exc:  # noqa: BLE001
            rows.append({"backbone": backbone, "status": f"failed: {type(exc).__name__}: {exc}"[:200]})
    Path(args.out).write_text(json.dumps({"device": args.device, "tiny": args.tiny, "rows": rows}, indent=1,
                                         default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
