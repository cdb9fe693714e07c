"""Figure 1: backbone forward time of rsbench's wrappers over the library model they wrap.

* ``skysense-hr`` (the ``RSBSkySense`` wrapper with its HR encoder only) over mmpretrain's
  ``SwinTransformerV2`` built with the same (official) arguments and loaded with the same
  weights; the outputs must be bit-identical.
* One MaRS encoder (``RSBMaRS.encode``, which adds the NHWC -> NCHW permute) over timm's
  ``swinv2_base_window8_256`` (``features_only``) with the same weights and input.

Goal: wrapper / library <= 1.05 for each. Extra (no goal): MaRS' full forward (both encoders,
Meta-Modality Attention, per-stage sum) over its two encoders alone, the cost of fusion.
"""

from __future__ import annotations

from typing import Any

from bench.common import Context, Figure, check, combine, fmt_s, interleaved, median, to_device

GOAL = 1.05
#: mmpretrain Swin-V2 of SMALL width, same structure flags as the official HR encoder (quick mode).
SMALL_SWIN = dict(embed_dims=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], extra_norm_every_n_blocks=6)


def sizes(ctx: Context) -> dict[str, Any]:
    """Per mode: SkySense HR arch, batch, size; MaRS preset, batch, size; repeats."""
    if ctx.quick:
        return dict(sky_arch="small", sky_batch=1, sky_size=256, mars="mars-tiny", mars_batch=1, mars_size=64,
                    repeats=10, big_repeats=5)
    if ctx.paper:
        return dict(sky_arch="huge", sky_batch=2, sky_size=512, mars="mars", mars_batch=2, mars_size=512,
                    repeats=10, big_repeats=10)
    # 2 CPU cores: the official HR Swin-V2-H at its smallest valid input (256 px: one 8-token window
    # at stride 32) and MaRS' Swin-V2-B at the same 256 px instead of its 512 px pretraining size.
    return dict(sky_arch="huge", sky_batch=1, sky_size=256, mars="mars", mars_batch=1, mars_size=256,
                repeats=5, big_repeats=5)


def skysense_ratio(ctx: Context, s: dict[str, Any]) -> dict[str, Any]:
    import torch
    from mmengine.registry import MODELS
    from mmpretrain.models.backbones import SwinTransformerV2

    import rsbench_skysense.model  # noqa: F401  (registers RSBSkySense)
    from rsbench_skysense.presets import OFFICIAL_HR

    torch.manual_seed(0)
    hr = {**OFFICIAL_HR, **({"arch": SMALL_SWIN} if s["sky_arch"] == "small" else {})}
    reference = SwinTransformerV2(**hr, out_indices=(0, 1, 2, 3)).to(ctx.device)
    reference.eval()  # mmpretrain's Swin.train() returns None: no chaining
    ours = MODELS.build(dict(type="RSBSkySense", hr=hr)).to(ctx.device).eval()
    # strict=False: mmpretrain's own pre-hook drops the recomputed window-index buffers on load
    ours.encoders.hr.load_state_dict(reference.state_dict(), strict=False)
    x = torch.randn(s["sky_batch"], 3, s["sky_size"], s["sky_size"], device=ctx.device)
    with torch.inference_mode():
        same = all(torch.equal(a, b) for a, b in zip(reference(x), ours(x)))
        t = interleaved({"ref": lambda: reference(x), "ours": lambda: ours(x)}, s["big_repeats"], 1, ctx.device)
    del reference, ours
    ref, our = median(t["ref"]), median(t["ours"])
    return dict(
        backbone=f"skysense-hr ({'Swin-V2-H official args' if s['sky_arch'] == 'huge' else 'Swin-V2 small width'})",
        reference="mmpretrain SwinTransformerV2, same args and weights",
        input=f"{s['sky_batch']}x3x{s['sky_size']}x{s['sky_size']}", repeats=len(t["ours"]),
        ours=fmt_s(our), library=fmt_s(ref), ratio=round(our / ref, 3),
        ratio_of_minima=round(min(t["ours"]) / min(t["ref"]), 3), outputs_equal=same,
        verdict=check(our / ref, "<=", GOAL))


def mars_ratio(ctx: Context, s: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    import timm
    import torch
    from mmengine.registry import MODELS

    from rsbench import get_catalog
    torch.manual_seed(0)
    info = get_catalog().backbone(s["mars"])
    info.register_type()
    mars = MODELS.build(info.config()).to(ctx.device).eval()
    enc = dict(info.kwargs["encoder"])
    baseline = timm.create_model(enc.pop("model_name"), pretrained=False, features_only=True, in_chans=3,
                                 **dict(enc, strict_img_size=False)).to(ctx.device).eval()
    baseline.load_state_dict(mars.encoders["hr"].state_dict())
    x = to_device(mars.example_inputs(s["mars_batch"], s["mars_size"]), ctx.device)
    hr = x["hr"]

    def library() -> Any:
        return [f.permute(0, 3, 1, 2) for f in baseline(hr)] if mars._nhwc else baseline(hr)

    with torch.inference_mode():
        same = all(torch.equal(a, b) for a, b in zip(library(), mars.encode(hr, "hr")))
        t = interleaved({"ref": lambda: baseline(hr), "ours": lambda: mars.encode(hr, "hr")}, s["repeats"], 1,
                        ctx.device)
        fusion = interleaved({"two": lambda: (mars.encode(x["hr"], "hr"), mars.encode(x["sar"], "sar")),
                              "full": lambda: mars(x)}, max(2, s["repeats"] // 2), 0, ctx.device)
    ref, our = median(t["ref"]), median(t["ours"])
    enc_row = dict(
        backbone=f"{s['mars']}: one encoder (RSBMaRS.encode, 'hr')",
        reference=f"timm {info.kwargs['encoder']['model_name']} features_only, same weights",
        input=f"{s['mars_batch']}x3x{s['mars_size']}x{s['mars_size']}", repeats=len(t["ours"]),
        ours=fmt_s(our), library=fmt_s(ref), ratio=round(our / ref, 3),
        ratio_of_minima=round(min(t["ours"]) / min(t["ref"]), 3), outputs_equal=same,
        verdict=check(our / ref, "<=", GOAL))
    two, full = median(fusion["two"]), median(fusion["full"])
    fusion_row = dict(
        backbone=f"{s['mars']}: full forward (2 encoders + MMA + sum)", reference="its two encoders alone",
        input=f"hr {s['mars_batch']}x3 + sar {s['mars_batch']}x1 at {s['mars_size']}", repeats=len(fusion["full"]),
        ours=fmt_s(full), library=fmt_s(two), ratio=round(full / two, 3),
        ratio_of_minima=round(min(fusion["full"]) / min(fusion["two"]), 3), outputs_equal="n/a",
        verdict="no goal (cost of fusion)")
    return enc_row, fusion_row


def run(ctx: Context) -> Figure:
    s = sizes(ctx)
    fig = Figure(1, "Backbone forward: rsbench wrapper vs the library model", "wrapper / library <= 1.05x",
                 columns=["backbone", "reference", "input", "repeats", "ours", "library", "ratio", "ratio_of_minima",
                          "outputs_equal",
                          "verdict"])
    fig.method = ("Median of interleaved forward calls under `torch.inference_mode` after one warm-up call each, "
                  f"device {ctx.device}, fp32. Both models hold the same weights; `outputs_equal` is "
                  "`torch.equal` on every output map. `ratio` (medians) decides the verdict; "
                  "`ratio_of_minima` (fastest call of each side) shows how much of a gap is contention.")
    sky = skysense_ratio(ctx, s)
    enc, fusion = mars_ratio(ctx, s)
    fig.rows = [sky, enc, fusion]
    fig.verdict = combine([sky["verdict"], enc["verdict"]])
    fig.headline = f"skysense-hr {sky['ratio']:.3f}x, MaRS encoder {enc['ratio']:.3f}x"
    if not (sky["outputs_equal"] and enc["outputs_equal"]):
        fig.verdict = "not met"
        fig.notes.append("outputs differ from the library model's: the comparison is not like for like")
    if not ctx.quick and not ctx.paper:
        fig.notes.append("CPU sizes: SkySense HR at 256 px (the smallest input the official window 8 accepts with "
                         "pad_small_map=False), MaRS at 256 px instead of its 512 px pretraining size; `--paper` "
                         "uses 2x512 px for both (meant for a GPU).")
    return fig
