"""SkySense benchmark (a script, not a test): wrapper overhead and per-modality cost.

1. Forward time of ``skysense-hr`` over mmpretrain's ``SwinTransformerV2`` built with the same
   (official) arguments and the same weights, measured interleaved in one run; goal <= 1.05.
2. Forward time and peak memory of every modality combination for ``skysense-tiny`` and, with
   ``--paper`` (a GPU with ~40 GB), the paper-size ``skysense``.

    python bench/bench_skysense.py                   # CUDA when available, else CPU
    python bench/bench_skysense.py --arch small      # a small Swin for a quick CPU check
    python bench/bench_skysense.py --paper --json out.json

Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA; on the CPU it is the growth of the
process's resident high-water mark during the measurement (0 when an earlier step was larger).
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

SMALL_SWIN = dict(embed_dims=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], extra_norm_every_n_blocks=6)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _to(x: Any, device: torch.device) -> Any:
    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, dict):
        return {k: _to(v, device) for k, v in x.items()}
    return x


def _time(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def _peak(fn: Callable[[], Any], device: torch.device) -> float:
    """Peak memory in MiB of one call (see the module docstring)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        _sync(device)
        return torch.cuda.max_memory_allocated(device) / 2**20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


def wrapper_ratio(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    from mmengine.registry import MODELS
    from mmpretrain.models.backbones import SwinTransformerV2

    import rsbench_skysense.model  # noqa: F401  (registers RSBSkySense)
    from rsbench_skysense.presets import OFFICIAL_HR

    hr = {**OFFICIAL_HR, **({"arch": SMALL_SWIN} if args.arch == "small" else {})}
    reference = SwinTransformerV2(**hr, out_indices=(0, 1, 2, 3)).to(device)
    reference.eval()  # mmpretrain's Swin.train() returns None: no chaining
    ours = MODELS.build(dict(type="RSBSkySense", hr=hr)).to(device).eval()
    # strict=False: mmpretrain's own pre-hook drops the recomputed window-index buffers on load
    ours.encoders.hr.load_state_dict(reference.state_dict(), strict=False)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    with torch.inference_mode():
        for a, b in zip(reference(x), ours(x)):
            assert torch.equal(a, b), "skysense-hr and mmpretrain disagree"
        ref_t, our_t = [], []
        for _ in range(args.warmup):
            reference(x), ours(x)
        for _ in range(args.repeats):  # interleaved, so drift (clocks, other jobs) hits both
            ref_t += _time(lambda: reference(x), device, 1, 0)
            our_t += _time(lambda: ours(x), device, 1, 0)
    ref_s, our_s = statistics.median(ref_t), statistics.median(our_t)
    return dict(arch=args.arch, size=args.size, batch=args.batch, mmpretrain_s=ref_s, skysense_hr_s=our_s,
                ratio=our_s / ref_s)


def modality_table(name: str, args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    from mmengine.registry import MODELS

    import rsbench_skysense.model  # noqa: F401
    from rsbench_skysense.plugin import BACKBONES

    info = next(b for b in BACKBONES if b.name == name)
    torch.manual_seed(0)
    model = MODELS.build(info.config()).to(device).eval()
    size = args.size if not info.tiny else info.test_size
    full = _to(model.example_inputs(args.batch, size), device)
    rows = []
    for r in (1, 2, 3):
        for subset in itertools.combinations(model.modalities, r):
            x = {m: full[m] for m in subset}
            x["dates"] = {m: full["dates"][m] for m in subset}
            x["latlon"] = full["latlon"]
            with torch.inference_mode():
                times = _time(lambda: model(x), device, args.repeats, args.warmup)
                peak = _peak(lambda: model(x), device)
            rows.append(dict(model=name, modalities="+".join(subset), forward_s=statistics.median(times),
                             peak_mib=peak))
    del model
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--arch", choices=("huge", "small"), default="huge", help="Swin arch of the ratio run")
    parser.add_argument("--size", type=int, default=256, help="HR input size (>= 256 for window 8)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--paper", action="store_true", help="also time the paper-size model per combination")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)

    result: dict[str, Any] = {"device": str(device)}
    if device.type == "cuda":
        result["device_name"] = torch.cuda.get_device_name(device)
    ratio = wrapper_ratio(args, device)
    result["ratio"] = ratio
    print(f"skysense-hr / mmpretrain SwinTransformerV2 ({ratio['arch']}, {args.batch}x3x{args.size}^2, "
          f"{device}): {ratio['skysense_hr_s'] * 1e3:.1f} ms / {ratio['mmpretrain_s'] * 1e3:.1f} ms "
          f"= {ratio['ratio']:.3f} (goal <= 1.05)")
    names = ["skysense-tiny"] + (["skysense"] if args.paper else [])
    result["modalities"] = [row for name in names for row in modality_table(name, args, device)]
    print(f"{'model':<15}{'modalities':<12}{'forward ms':>12}{'peak MiB':>12}")
    for row in result["modalities"]:
        print(f"{row['model']:<15}{row['modalities']:<12}{row['forward_s'] * 1e3:>12.1f}{row['peak_mib']:>12.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
