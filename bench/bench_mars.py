"""MaRS forward-time benchmark (not part of pytest).

Reports, in one run and on one device:

1. MaRS' two encoders (RGB 3-band + SAR 1-band Swin-V2-B at 512) over one timm
   ``swinv2_base_window8_256`` (``features_only``, same input size, 3 bands): the cost of the
   second modality, expected near 2x.
2. The full MaRS forward (encoders + MMA + fusion) over the two encoders alone: MMA's overhead.

    python bench/bench_mars.py                      # paper size, 512 px, GPU if present
    python bench/bench_mars.py --preset mars-tiny --size 64 --device cpu
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch


def timed(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    """Median wall time of ``fn`` in milliseconds (synchronising the GPU around each call)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mars")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast (GPU)")
    args = parser.parse_args(argv)

    import timm
    from mmengine.registry import MODELS

    from rsbench import get_catalog

    device = torch.device(args.device)
    info = get_catalog().backbone(args.preset)
    info.import_builder()
    mars = MODELS.build(info.config()).to(device).eval()
    enc = dict(info.kwargs["encoder"])
    baseline = timm.create_model(enc.pop("model_name"), pretrained=False, features_only=True, in_chans=3,
                                 **dict(enc, strict_img_size=False)).to(device).eval()
    x = {k: v.to(device) for k, v in mars.example_inputs(args.batch, args.size).items()}

    def amp(fn: Callable[[], object]) -> Callable[[], object]:
        def wrapped() -> object:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
                return fn()
        return wrapped

    t_timm = timed(amp(lambda: baseline(x["hr"])), device, args.warmup, args.repeats)
    t_encoders = timed(amp(lambda: (mars.encode(x["hr"], "hr"), mars.encode(x["sar"], "sar"))),
                       device, args.warmup, args.repeats)
    t_full = timed(amp(lambda: mars(x)), device, args.warmup, args.repeats)
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "preset": args.preset, "size": args.size, "batch": args.batch, "amp": args.amp,
        "timm_single_encoder_ms": round(t_timm, 2),
        "mars_two_encoders_ms": round(t_encoders, 2),
        "mars_full_ms": round(t_full, 2),
        "encoders_over_timm": round(t_encoders / t_timm, 3),
        "mma_and_fusion_overhead": round(t_full / t_encoders - 1, 4),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
