"""Figure 9 (GPU): one paper-size fine-tuning step of each backbone against the library model it wraps.

A step is what fine-tuning repeats: the backbone's forward at the task's official input size and
per-GPU batch, one head (global average pool of the deepest map + a linear layer, the same on
both sides), cross-entropy, backward and an AdamW update. It runs in fp32 and in bf16 autocast
(parameters stay fp32, as under mmengine's AmpOptimWrapper), with and without activation
checkpointing (ours: ``RSBackbone.set_grad_checkpointing``; the library's: its own switch, mmpretrain's
``with_cp`` or timm's ``set_grad_checkpointing``, "n/a" where it has none).

The two sides run one after the other (not interleaved as in figures 1-7), so that each one's
peak memory is its own: ``torch.cuda.max_memory_allocated`` from just before its first step,
parameters, gradients and AdamW state included. A side that runs out of memory is reported as
``OOM``. ``--tiny`` runs the same code on the tiny presets at 64 px (a CPU check of the plumbing).

    python -m bench.gpu_step --out /tmp/steps.json [--tiny --device cpu] [--budget-s 240]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: backbone -> (task whose protocol card gives the input size and per-GPU batch, fallback size and
#: batch from that card, whether wrapper/library <= 1.05 is a goal, what the reference is).
CASES: dict[str, tuple[str, int, int, bool, str]] = {
    "skysense-hr": ("isaid", 896, 2, True, "mmpretrain SwinTransformerV2, the same (official) args and weights"),
    "skysense": ("isaid", 896, 2, False, "mmpretrain SwinTransformerV2 of its HR encoder alone (no goal: "
                 "the ratio is the cost of the S2/S1 encoders and the fusion)"),
    "mars": ("deepglobe-road", 512, 6, False, "timm Swin-V2-B of its optical encoder alone (no goal: the ratio "
             "is the cost of the SAR encoder and the fusion)"),
    "swin-b": ("isaid", 896, 2, True, "mmpretrain SwinTransformer base, the same args and weights"),
    "vit-b": ("isaid", 896, 2, True, "mmpretrain VisionTransformer base, the same args and weights"),
    "vit-l": ("", 64, 40, False, "mmpretrain VisionTransformer large with SkySense's Sentinel-encoder args "
              "(patch 4, 64 px tiles, 10 bands, 2 x 20 frames): library only, for the bf16 goal"),
}
TINY = {"skysense-hr": "skysense-tiny", "skysense": "skysense-tiny", "mars": "mars-tiny", "swin-b": "swin-tiny",
        "vit-b": "vit-tiny", "vit-l": "vit-tiny"}
NUM_CLASSES = 16


@dataclass
class StepRow:
    """One side of one setting: ms per step, images per second and peak memory, or why not."""

    backbone: str
    side: str  # "ours" or "library"
    precision: str
    checkpointing: bool
    input: str = ""
    batch: int = 0
    status: str = "ok"  # ok | OOM | n/a | failed: ... | not measured: ...
    ms: float | None = None
    images_per_s: float | None = None
    peak_gib: float | None = None
    steps: list[float] = field(default_factory=list)


def official_size(backbone: str) -> tuple[int, int, str]:
    """(input px, per-GPU batch, where from) of a case: its task's protocol card, else the fallback
    copied from that card (the card may not be wired to its task yet)."""
    task, size, batch, _, _ = CASES[backbone]
    if not task:
        return size, batch, "SkySense's Sentinel pretraining tiles"
    try:
        from rsbench import get_catalog
        from rsbench.protocol.protocol_card import task_card

        card = task_card(get_catalog().tasks.get(task))
    except Exception:  # noqa: BLE001  (an unwired or unloadable card: the fallback says where it is from)
        card = None
    if card is not None and isinstance(card.crop.value, int) and isinstance(card.effective_batch.value, dict):
        return card.crop.value, int(card.effective_batch.value["per_process"]), f"{card.id} protocol card"
    return size, batch, f"{task}'s official config (as in its protocol card)"


# -- the models -----------------------------------------------------------------------------------
def _build_ours(backbone: str, tiny: bool) -> Any:
    from mmengine.registry import MODELS

    from rsbench import get_catalog
    info = get_catalog().backbone(TINY[backbone] if tiny else backbone)
    info.register_type()
    cfg = info.config()
    if backbone == "skysense-hr" and tiny:  # the tiny preset's HR encoder alone, like skysense-hr
        cfg = {"type": cfg["type"], "hr": cfg["hr"]}
    return MODELS.build(cfg), info


def _build_library(backbone: str, ours: Any, info: Any) -> tuple[Any, Callable[[Any], Any]]:
    """The library model ours wraps, holding the same weights, and how it takes our input."""
    if backbone in ("skysense-hr", "skysense"):
        from mmpretrain.models.backbones import SwinTransformerV2

        ref = SwinTransformerV2(**info.kwargs["hr"], out_indices=(0, 1, 2, 3))
        ref.load_state_dict(ours.encoders.hr.state_dict(), strict=False)  # window indices are recomputed
        return ref, lambda x: x["hr"]
    if backbone == "mars":
        import timm

        enc = dict(info.kwargs["encoder"])
        ref = timm.create_model(enc.pop("model_name"), pretrained=False, features_only=True, in_chans=3,
                                **dict(enc, strict_img_size=False))
        ref.load_state_dict(ours.encoders["hr"].state_dict())
        return ref, lambda x: x["hr"]
    from mmpretrain.registry import MODELS as MMPRETRAIN

    ref = MMPRETRAIN.build(dict(info.kwargs["net"], _scope_="mmpretrain"))
    ref.load_state_dict(ours.net.state_dict())
    return ref, lambda x: x


def _build_vit_l(tiny: bool) -> Any:
    from mmpretrain.models.backbones import VisionTransformer

    from rsbench_skysense.presets import VIT_LARGE

    if tiny:
        return VisionTransformer(arch=dict(embed_dims=64, num_layers=2, num_heads=2, feedforward_channels=128),
                                 img_size=16, patch_size=4, in_channels=10, out_type="featmap")
    return VisionTransformer(**VIT_LARGE, in_channels=10, out_type="featmap")


def _library_checkpointing(model: Any, enable: bool) -> bool:
    """The library's own activation checkpointing switch; False when it has none."""
    if hasattr(model, "set_grad_checkpointing") and not hasattr(model, "checkpoint_blocks"):
        model.set_grad_checkpointing(enable)  # timm
        return True
    switches = [m for m in model.modules() if hasattr(m, "with_cp")]
    for m in switches:
        m.with_cp = enable
    return bool(switches)


def _pool(feature: Any, channels: int) -> Any:
    """Global average pool of an NCHW or NHWC map (timm's Swin-V2 returns NHWC)."""
    return feature.mean((2, 3)) if feature.shape[1] == channels else feature.mean((1, 2))


# -- one step ---------------------------------------------------------------------------------------
def measure(model: Any, take: Callable[[Any], Any], x: Any, channels: int, precision: str, steps: int,
            device: str) -> tuple[list[float], float | None]:
    """Seconds of each of ``steps`` timed steps after one warm-up step, and the peak GiB."""
    import torch

    from bench.common import sync, to_device

    head = torch.nn.Linear(channels, NUM_CLASSES).to(device)
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-5)
    inputs = to_device(take(x), device)
    batch = next(t for t in ([inputs] if torch.is_tensor(inputs) else inputs.values()) if torch.is_tensor(t)).shape[0]
    target = torch.randint(0, NUM_CLASSES, (batch,), device=device)
    amp = (torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16) if precision == "bf16"
           else contextlib.nullcontext())

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with amp:
            feats = model(inputs)
            logits = head(_pool(feats[-1], channels))
        torch.nn.functional.cross_entropy(logits.float(), target).backward()
        opt.step()

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    try:
        times = []
        for i in range(steps + 1):
            sync(device)
            start = time.perf_counter()
            step()
            sync(device)
            if i:
                times.append(time.perf_counter() - start)
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    finally:
        opt.zero_grad(set_to_none=True)
        del opt, head
        if cuda:
            torch.cuda.empty_cache()
    return times, peak


def _row(backbone: str, side: str, precision: str, ckpt: bool, x_desc: str, batch: int, run: Callable[[], Any],
         ) -> StepRow:
    import torch

    row = StepRow(backbone, side, precision, ckpt, x_desc, batch)
    try:
        times, peak = run()
    except torch.cuda.OutOfMemoryError:
        row.status = "OOM"
        torch.cuda.empty_cache()
        return row
    except Exception as exc:  # noqa: BLE001  (the other settings still run; the row says what failed)
        row.status = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
        return row
    med = sorted(times)[len(times) // 2]
    row.ms, row.images_per_s, row.steps = med * 1e3, batch / med, [round(t * 1e3, 2) for t in times]
    row.peak_gib = round(peak, 2) if peak is not None else None
    return row


def run_case(backbone: str, device: str, precisions: list[str], steps: int, tiny: bool,
             deadline: float) -> list[StepRow]:
    """Both sides of one backbone in every precision x checkpointing setting."""
    import torch

    from bench.figure_7_memory import describe

    size, batch, _ = official_size(backbone)
    if tiny:
        size, batch = 64, 2
    settings = [(p, c) for p in precisions for c in (False, True)]
    rows: list[StepRow] = []
    torch.manual_seed(0)
    with torch.device(device):  # initialised where it runs: a 2 B-parameter model builds in seconds
        if backbone == "vit-l":
            ours, x = None, torch.randn(batch, 10, 16 if tiny else size, 16 if tiny else size)
            lib, take = _build_vit_l(tiny), (lambda t: t)
            channels = lib.embed_dims
        else:
            ours, info = _build_ours(backbone, tiny)
            x = ours.example_inputs(batch, size)
            channels = ours.out_channels[-1]
            lib, take = _build_library(backbone, ours, info)
    if ours is not None:
        lib.to("cpu")  # off the GPU while ours is measured: each side's peak is its own
    sides = [(n, m, k) for n, m, k in (("ours", ours, lambda t: t), ("library", lib, take)) if m is not None]
    del ours, lib
    while sides:
        side, model, pick = sides.pop(0)
        model = model.to(device)
        model.train()  # mmpretrain's Swin.train() returns None: no chaining
        for precision, ckpt in settings:
            desc = describe(pick(x))
            if time.monotonic() > deadline:
                rows.append(StepRow(backbone, side, precision, ckpt, desc, batch, "not measured: time budget"))
                continue
            if side == "ours":
                model.set_grad_checkpointing(ckpt)
            elif not _library_checkpointing(model, ckpt) and ckpt:
                rows.append(StepRow(backbone, side, precision, ckpt, desc, batch, "n/a"))
                continue
            rows.append(_row(backbone, side, precision, ckpt, desc, batch,
                             lambda m=model, p=precision, k=pick: measure(m, k, x, channels, p, steps, device)))
            print(f"[gpu_step] {backbone} {side} {precision} ckpt={ckpt}: {rows[-1].status} "
                  f"{rows[-1].ms and round(rows[-1].ms, 1)} ms {rows[-1].peak_gib} GiB", file=sys.stderr, flush=True)
        del model
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_step", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file for the rows")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--backbones", default=",".join(CASES))
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per setting (after one warm-up)")
    parser.add_argument("--tiny", action="store_true", help="tiny presets at 64 px: a CPU check of the plumbing")
    parser.add_argument("--budget-s", type=float, default=300.0, help="settings left after this are not measured")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.budget_s
    names = [b.strip() for b in args.backbones.split(",") if b.strip()]
    unknown = [b for b in names if b not in CASES]
    if unknown:
        raise SystemExit(f"--backbones: {', '.join(unknown)} unknown; expected some of {', '.join(CASES)}")
    rows: list[StepRow] = []
    for name in names:
        try:
            rows += run_case(name, args.device, args.precisions.split(","), args.steps, args.tiny, deadline)
        except Exception as exc:  # noqa: BLE001  (a backbone that cannot be built: say so, go on)
            rows.append(StepRow(name, "ours", "-", False, status=f"failed: {type(exc).__name__}: {exc}"[:200]))
    sizes = {name: official_size(name) for name in names}
    Path(args.out).write_text(json.dumps({"device": args.device, "tiny": args.tiny, "steps": args.steps,
                                          "sizes": sizes, "rows": [asdict(r) for r in rows]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
