"""``bench/RESULTS-gpu.md`` from the GPU check's JSON files: the smoke suite on CUDA, figure 9
(paper-size fine-tuning steps against the library models, with its three goals) and the cost
table. Nothing here measures; every number comes from the files, and a missing file or row is
shown as not measured, never filled in.

    python -m bench.gpu_report --dir /tmp/gpu-check --out bench/RESULTS-gpu.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.gpu_step import CASES

RATIO_GOAL = 1.05
BF16_GOAL = 1.5
GPU_GIB = 80.0
#: The goal's SwinV2-H and ViT-L: skysense-hr's library model and SkySense's Sentinel ViT-L.
BF16_CASES = {"SwinV2-H": ("skysense-hr", "library"), "ViT-L": ("vit-l", "library")}


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _fmt(value: Any, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _find(rows: list[dict[str, Any]], backbone: str, side: str, precision: str, ckpt: bool) -> dict[str, Any] | None:
    return next((r for r in rows if r["backbone"] == backbone and r["side"] == side and r["precision"] == precision
                 and r["checkpointing"] == ckpt), None)


def figure9(steps: dict[str, Any] | None) -> tuple[list[str], list[tuple[str, str, str]]]:
    """The table's markdown lines and (goal, verdict, evidence) for each of the three goals."""
    if not steps:
        return ["Not measured: no step file."], [(g, "not measured", "no step file") for g in
                                                  ("wrapper/library <= 1.05x", "bf16 >= 1.5x fp32",
                                                   "skysense fits one 80 GB GPU")]
    rows = steps["rows"]
    lines = ["| backbone | input | precision | act. ckpt | ours ms | ours img/s | ours peak GiB | library ms | "
             "library peak GiB | ours / library |", "|" + "---|" * 10]
    ratios = []
    for name in dict.fromkeys(r["backbone"] for r in rows):
        for broken in (r for r in rows if r["backbone"] == name and r["precision"] == "-"):
            lines.append(f"| {name} | | | | {broken['status']} | | | | | |")  # could not be built
        for precision in ("fp32", "bf16"):
            for ckpt in (False, True):
                ours, lib = _find(rows, name, "ours", precision, ckpt), _find(rows, name, "library", precision, ckpt)
                if ours is None and lib is None:
                    continue
                ratio = ""
                if ours and lib and ours["status"] == lib["status"] == "ok":
                    r = ours["ms"] / lib["ms"]
                    ratio = f"{r:.3f}"
                    if CASES.get(name, (0, 0, 0, False))[3]:
                        ratios.append((name, precision, ckpt, r))
                cell = lambda row, key, d=1: (_fmt(row[key], d) if row and row["status"] == "ok"  # noqa: E731
                                              else (row["status"] if row else ""))
                first = ours or lib
                lines.append(f"| {name} | {first['input']} | {precision} | {'on' if ckpt else 'off'} | "
                             f"{cell(ours, 'ms')} | {cell(ours, 'images_per_s', 2)} | {cell(ours, 'peak_gib', 2)} | "
                             f"{cell(lib, 'ms')} | {cell(lib, 'peak_gib', 2)} | {ratio} |")
    goals = []
    if ratios:
        worst = max(ratios, key=lambda t: t[3])
        goals.append(("wrapper/library step time <= 1.05x (skysense-hr, swin-b, vit-b)",
                      "met" if worst[3] <= RATIO_GOAL else "not met",
                      f"worst {worst[3]:.3f}x: {worst[0]} {worst[1]} ckpt {'on' if worst[2] else 'off'}"))
    else:
        goals.append(("wrapper/library step time <= 1.05x", "not measured", "no pair of ok rows"))
    for label, (name, side) in BF16_CASES.items():
        fp32, bf16 = _find(rows, name, side, "fp32", False), _find(rows, name, side, "bf16", False)
        if fp32 and bf16 and fp32["status"] == bf16["status"] == "ok":
            gain = bf16["images_per_s"] / fp32["images_per_s"]
            goals.append((f"bf16 >= 1.5x fp32 step throughput, {label}", "met" if gain >= BF16_GOAL else "not met",
                          f"{gain:.2f}x ({name} {side}, no checkpointing)"))
        else:
            goals.append((f"bf16 >= 1.5x fp32 step throughput, {label}", "not measured", "no fp32/bf16 pair"))
    sky = [r for r in rows if r["backbone"] == "skysense" and r["side"] == "ours"]
    fits = [r for r in sky if r["status"] == "ok" and r["peak_gib"] is not None and r["peak_gib"] <= GPU_GIB]
    if fits:
        best = min(fits, key=lambda r: r["peak_gib"])
        goals.append(("paper-size skysense fine-tuning fits one 80 GB GPU at the official per-GPU batch", "met",
                      f"{len(fits)} of {len(sky)} settings fit; least {best['peak_gib']:.1f} GiB "
                      f"({best['precision']}, ckpt {'on' if best['checkpointing'] else 'off'})"))
    else:
        sized = [r for r in sky if r["status"] == "OOM" or (r["status"] == "ok" and r["peak_gib"] is not None)]
        goals.append(("paper-size skysense fine-tuning fits one 80 GB GPU at the official per-GPU batch",
                      "not met" if sized else "not measured",
                      "every setting ran out of memory or over 80 GiB" if sized else
                      "no skysense row with a GPU memory figure"))
    return lines, goals


def cost_table(cost: dict[str, Any] | None) -> list[str]:
    if not cost:
        return ["Not measured: no cost file."]
    lines = ["| task | backbone | card | input | batch (total) | schedule | step s | act. ckpt | GPU-hours |",
             "|" + "---|" * 9]
    for r in cost["rows"]:
        schedule = f"{r['iters']} it" if r.get("iters") else (f"{r['epochs']} ep" if r.get("epochs") else "")
        if "gpu_hours" in r:
            hours = f"{r['gpu_hours']}"
        elif "gpu_hours_per_1k_samples" in r:
            hours = f"{r['gpu_hours_per_1k_samples']} per 1k training samples"
        else:
            hours = r.get("status", "")
        card = r.get("card", "")
        card = "none (task options)" if card == "none" else card
        lines.append(f"| {r.get('task', '')} | {r['backbone']} | {card} | {r.get('size') or ''} | "
                     f"{r.get('batch') or ''} ({r.get('total_batch') or ''}) | {schedule} | "
                     f"{_fmt(r.get('step_s'), 3)} | {'on' if r.get('checkpointing') else ''} | {hours} |")
    total = {}
    for r in cost["rows"]:
        if "gpu_hours" in r:
            total[r["backbone"]] = total.get(r["backbone"], 0.0) + r["gpu_hours"]
    if total:
        lines.append("")
        lines.append("Sum over the iteration-based evaluations: " + ", ".join(f"{b} {h:.1f} GPU-h"
                                                                         for b, h in total.items()) + ".")
    return lines


def render(d: Path, gpu: str, header: dict[str, Any]) -> str:
    smoke, steps, cost = _load(d / "smoke.json"), _load(d / "steps.json"), _load(d / "cost.json")
    nproc = (d / "nproc.txt").read_text().strip() if (d / "nproc.txt").exists() else "not run"
    doctor = (d / "doctor.txt").read_text().strip() if (d / "doctor.txt").exists() else "not run"
    out = [f"# rsbench on a GPU: {gpu}", "",
           f"Written by `bench/gpu_check.sh` on {header.get('date', '')} at revision {header.get('revision', '')}; "
           f"torch {header.get('torch', '')}, CUDA {header.get('cuda', '')}, Python {header.get('python', '')}.", "",
           "## mmcv's CUDA ops", "", "```", doctor, "```", "",
           "## (a) Smoke suite on CUDA", ""]
    if smoke:
        out.append(f"Backbone `{smoke['backbone']}`, every evaluation of the smoke suite on `{smoke['device']}`.")
        out.append("")
        out += ["| precision | evaluations | rows | ok | devices recorded | minutes | not ok |", "|" + "---|" * 7]
        for p, s in smoke["precisions"].items():
            bad = "; ".join(f"{b['task']}: {b['status']} {b['error'][:80]}" for b in s["not_ok"]) or "none"
            out.append(f"| {p} | {s['evaluations']} | {s['rows']} | {s['ok']} | {', '.join(s['devices'])} | "
                       f"{s['minutes']} | {bad} |")
    else:
        out.append("Not measured: no smoke file.")
    lines, goals = figure9(steps)
    out += ["", "## Figure 9 (GPU): paper-size fine-tuning step, wrapper vs library", "",
            "| goal | verdict | evidence |", "|---|---|---|"]
    out += [f"| {g} | **{v}** | {e} |" for g, v, e in goals]
    out += ["", *lines, ""]
    if steps:
        sizes = "; ".join(f"{b}: {s[0]} px, batch {s[1]} ({s[2]})" for b, s in steps.get("sizes", {}).items())
        out += [f"Method: {(Path(__file__).parent / 'gpu_step.py').name}: one warm-up step then the median of "
                f"{steps['steps']} timed steps per setting; peak = `torch.cuda.max_memory_allocated` of that side "
                "alone (parameters, gradients and AdamW state included). References: "
                + "; ".join(f"{b}: {CASES[b][4]}" for b in dict.fromkeys(r["backbone"] for r in steps["rows"])
                            if b in CASES) + f". Inputs: {sizes}."]
    out += ["", "## Cost of the benchmark (estimate)", "",
            "GPU-hours on this GPU for each evaluation at its protocol card's schedule. **An estimate**: "
            "optimiser steps x accumulation x the measured step time of the backbone with a pooled linear head "
            "(bf16, activation checkpointing only where needed) at the card's input and per-GPU batch. The "
            "task's own head/neck, data loading and evaluation are not included, so these are lower bounds; "
            "epoch-based schedules are given per 1,000 training samples (the card does not state the "
            "training-set size).", "", *cost_table(cost), "",
            "## (c) Two processes", "", nproc, ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_report", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="folder of the check's JSON files")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "RESULTS-gpu.md"))
    args = parser.parse_args(argv)
    header = _load(Path(args.dir) / "header.json") or {}
    gpu = header.get("gpu", "unknown GPU")
    Path(args.out).write_text(render(Path(args.dir), gpu, header))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
