"""Figure 2: achieved GFLOP/s of encoder forwards over the machine's own matmul GFLOP/s.

The peak is measured here, in the same run: the median GFLOP/s of a square fp32 matmul
(2048^3, repeated for about two seconds). The bf16 matmul is measured the same way and
reported as measured: on some CPUs it is far slower than fp32, on others (AVX512-BF16, AMX)
faster; it is never assumed.

FLOPs of a forward are those ``torch.utils.flop_counter.FlopCounterMode`` counts (matmuls,
convolutions, attention; 2 per multiply-add; elementwise ops are not counted), taken on a
batch-1 forward and multiplied by the batch (every op of these encoders is per sample).
Goal: >= 50% of the fp32 matmul peak for the ViT-L (SkySense S2/S1 encoder) and the Swin-V2
encoders (SkySense HR Swin-V2-H, MaRS Swin-V2-B) at batch >= 8.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench.common import Context, Figure, check, combine, fmt_s, median, sync

GOAL = 0.5


def matmul_gflops(dtype_name: str = "float32", n: int = 2048, seconds: float = 2.0, device: str = "cpu",
                  min_calls: int = 3) -> dict[str, Any]:
    """Median GFLOP/s of ``n x n @ n x n`` in ``dtype_name``, calls repeated for ``seconds``.

    A slow dtype (bf16 on CPUs without native support) is probed at 512 first and measured
    at that size when 2048 would take more than ``seconds`` per call."""
    import torch

    dtype = getattr(torch, dtype_name)

    def once(size: int) -> float:
        a = torch.randn(size, size, device=device).to(dtype)
        b = torch.randn(size, size, device=device).to(dtype)
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        return time.perf_counter() - start

    once(512)
    probe = once(512)  # the second call: the first one pays the library's start-up
    if probe * (n / 512) ** 3 > 5 * seconds:
        n = min(n, 512)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b  # warm-up
    times: list[float] = []
    begin = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - begin < seconds:
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - start)
    flops = 2 * n**3
    return dict(dtype=dtype_name, n=n, calls=len(times), gflops=flops / median(times) / 1e9,
                best_gflops=flops / min(times) / 1e9)


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call of ``fn`` as ``FlopCounterMode`` counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


def encoders(ctx: Context) -> list[dict[str, Any]]:
    """(name, builder of the module as the plugin builds it, input shape) per encoder and mode."""
    tiny_fusion = dict(embed_dims=64, num_layers=1, num_heads=2, mlp_ratio=2.0, num_days=365)

    def skysense(modality: str, preset: str) -> Callable[[], Any]:
        def build() -> Any:
            from mmengine.registry import MODELS

            from rsbench_skysense import presets

            if modality == "hr":
                cfg = dict(type="RSBSkySense", hr=presets.TINY["hr"] if preset == "tiny" else presets.OFFICIAL_HR)
            else:  # a time-series encoder exists only with a fusion; a tiny one keeps the build cheap
                cfg = dict(type="RSBSkySense", fusion=tiny_fusion,
                           **{modality: presets.TINY[modality] if preset == "tiny" else presets.VIT_LARGE})
            import rsbench_skysense.model  # noqa: F401

            return MODELS.build(cfg).encoders[modality]
        return build

    def mars(preset: str) -> Callable[[], Any]:
        def build() -> Any:
            from mmengine.registry import MODELS

            from rsbench import get_catalog
            info = get_catalog().backbone(preset)
            info.register_type()
            return MODELS.build(info.config()).encoders["hr"]
        return build

    if ctx.quick:
        return [dict(name="ViT (skysense-tiny S2 encoder, toy width)", build=skysense("s2", "tiny"),
                     shape=(8, 10, 32, 32)),
                dict(name="Swin-V2 (skysense-tiny HR encoder, toy width)", build=skysense("hr", "tiny"),
                     shape=(8, 3, 64, 64)),
                dict(name="Swin-V2 (mars-tiny encoder, toy width)", build=mars("mars-tiny"), shape=(8, 3, 64, 64))]
    big = 512 if ctx.paper else 256
    ts = 64 if ctx.paper else 32
    return [dict(name="ViT-L/4 (SkySense S2 encoder, 10 bands)", build=skysense("s2", "paper"), shape=(8, 10, ts, ts)),
            dict(name="Swin-V2-B (MaRS encoder, timm)", build=mars("mars"), shape=(8, 3, big, big)),
            dict(name="Swin-V2-H (SkySense HR encoder, mmpretrain)", build=skysense("hr", "paper"),
                 shape=(8, 3, big, big))]


class MatmulProbe:
    """One fp32 ``n^3`` matmul per call, timed: the peak measured *alongside* an encoder.

    Calls go between the encoder's timed forwards, so the ratio compares both under the same
    load (this machine's cores are shared; a peak taken minutes earlier may see another load)."""

    def __init__(self, device: str, n: int = 2048) -> None:
        import torch

        self.device, self.n = device, n
        self.a = torch.randn(n, n, device=device)
        self.b = torch.randn(n, n, device=device)
        self.times: list[float] = []

    def __call__(self, calls: int = 3) -> None:
        for _ in range(calls):
            sync(self.device)
            start = time.perf_counter()
            self.a @ self.b
            sync(self.device)
            self.times.append(time.perf_counter() - start)

    def gflops(self) -> float:
        return 2 * self.n**3 / median(self.times) / 1e9


def measure_encoder(spec: dict[str, Any], device: str, budget_s: float) -> dict[str, Any]:
    """FLOPs (batch 1 x batch), then timed full-batch forwards until ``budget_s`` is spent
    (at least two calls, one when a call takes over a minute; at most five), with fp32 matmul
    probes before and after each."""
    import torch

    torch.manual_seed(0)
    model = spec["build"]().to(device)
    model.eval()  # mmpretrain's Swin returns None from train(): no chaining
    shape = spec["shape"]
    x1 = torch.randn(1, *shape[1:], device=device)
    x = torch.randn(*shape, device=device)
    probe = MatmulProbe(device)
    with torch.inference_mode():
        flops = count_flops(lambda: model(x1)) * shape[0]
        start = time.perf_counter()
        model(x1)
        if time.perf_counter() - start < 2.0:
            model(x)  # full-batch warm-up where it is cheap
        times: list[float] = []
        probe()
        while True:
            sync(device)
            start = time.perf_counter()
            model(x)
            sync(device)
            times.append(time.perf_counter() - start)
            probe()
            spent = sum(times)
            if len(times) >= 5 or (spent >= budget_s and (len(times) >= 2 or times[0] > 60)):
                break
    del model
    t = median(times)
    return dict(encoder=spec["name"], input="x".join(map(str, shape)), gflop=round(flops / 1e9, 1), calls=len(times),
                time=fmt_s(t), gflops=round(flops / t / 1e9, 1), matmul_alongside=round(probe.gflops(), 1))


def run(ctx: Context) -> Figure:
    fig = Figure(2, "Achieved GFLOP/s of encoder forwards over measured fp32 matmul GFLOP/s",
                 ">= 50% for ViT-L and Swin-V2 encoders at batch >= 8",
                 columns=["encoder", "input", "gflop", "calls", "time", "gflops", "matmul_alongside", "of_matmul_peak",
                          "verdict"])
    seconds = 1.0 if ctx.quick else 2.0
    fp32 = matmul_gflops("float32", seconds=seconds, device=ctx.device)
    bf16 = matmul_gflops("bfloat16", seconds=seconds, device=ctx.device)
    ctx.matmul_gflops = fp32["gflops"]
    verdicts = []
    for spec in encoders(ctx):
        row = measure_encoder(spec, ctx.device, budget_s=5.0 if ctx.quick else 30.0)
        share = row["gflops"] / row["matmul_alongside"]
        row["of_matmul_peak"] = f"{100 * share:.1f}%" if share < 0.1 else f"{100 * share:.0f}%"
        row["verdict"] = check(share, ">=", GOAL)
        verdicts.append(row["verdict"])
        fig.rows.append(row)
    fig.verdict = combine(verdicts)
    fig.headline = ", ".join(f"{r['encoder'].split(' (')[0]} {r['of_matmul_peak']}" for r in fig.rows)
    fig.method = (
        f"Peak: fp32 matmul {fp32['n']}^3 on {ctx.device}, median of {fp32['calls']} calls = "
        f"**{fp32['gflops']:.1f} GFLOP/s** (best call {fp32['best_gflops']:.1f}). bf16 matmul {bf16['n']}^3, "
        f"median of {bf16['calls']} calls = **{bf16['gflops']:.1f} GFLOP/s** (best {bf16['best_gflops']:.1f}), "
        f"{bf16['gflops'] / fp32['gflops']:.2f}x fp32. Encoders in fp32 under `torch.inference_mode`, FLOPs counted "
        "by `FlopCounterMode` on a batch-1 forward times the batch; `time` is the median full-batch forward. "
        "`of_matmul_peak` divides by `matmul_alongside`: the median of fp32 2048^3 matmuls run between that "
        "encoder's timed forwards (three before the first and three after each), so both sides see the same load."
    )
    fig.notes.append("The encoders are built exactly as the plugins build them (the `encoders` modules of "
                     "`RSBSkySense` and `RSBMaRS`), with random weights (speed does not depend on them).")
    if not ctx.quick and not ctx.paper:
        fig.notes.append("CPU sizes: ViT-L at 32x32 px (64 tokens of patch 4; its paper tile is 64 px = 256 tokens), "
                         "Swin-V2 encoders at 256 px (Swin-V2-H needs >= 256 with window 8); `--paper` uses 64 px "
                         "and 512 px.")
    return fig
