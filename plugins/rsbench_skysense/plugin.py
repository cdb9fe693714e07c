"""Declarations of the SkySense presets. Light: no torch import here."""

from __future__ import annotations

from rsbench import BackboneInfo, hookimpl
from rsbench_skysense.presets import HR_ONLY, PAPER, RGB, S1_BANDS, S2_BANDS, TINY

BUILDER = "rsbench_skysense.model"
TYPE = "RSBSkySense"
#: The SkySense pretraining objective (``rsbench pretrain``); every preset declares it.
PRETRAINER = "rsbench_skysense.pretrain:SkySensePretrainer"
ALL = {"hr": RGB, "s2": S2_BANDS, "s1": S1_BANDS}
STRIDES = (4, 8, 16, 32)
HUGE = (352, 704, 1408, 2816)
RULE = ("hr: H, W >= {m} (at least one {w}-token window at stride 32), multiples of 32 advised; "
        "s2/s1: (B, T, C, h, w) any size, dates (B, T) required when T > 1; latlon (B, 2) optional")

BACKBONES = [
    BackboneInfo(
        name="skysense",
        module=BUILDER,
        mm_type=TYPE,
        kwargs=PAPER,
        modalities=ALL,
        out_channels=HUGE,
        out_strides=STRIDES,
        pooled_channels=HUGE[-1],
        params=2_004_114_544,
        family="skysense",
        pretrainer=PRETRAINER,
        description=(
            "SkySense paper size (2.00B; paper 2.06B): Swin-V2-H HR 655M + ViT-L S2 303M + ViT-L S1 303M "
            "+ fusion 24x1024 308M + geo prototypes 4096x100x1024 419M + inject/pyramid 17M; a run builds "
            "only the task's path: one modality, one date = that encoder alone (HR tasks: the released "
            "Swin-V2-H, 655M); fusion and prototypes for several modalities or a time series"
        ),
        input_rule=RULE.format(m=225, w=8),
        min_input_size=225,
        input_multiple=32,
        temporal=True,
        test_size=256,
    ),
    BackboneInfo(
        name="skysense-hr",
        module=BUILDER,
        mm_type=TYPE,
        kwargs=HR_ONLY,
        modalities={"hr": RGB},
        out_channels=HUGE,
        out_strides=STRIDES,
        pooled_channels=HUGE[-1],
        params=655_079_632,
        family="skysense",
        pretrainer=PRETRAINER,
        description="SkySense HR branch alone (Swin-V2-H, 655M): what the official iSAID/DIOR configs use and "
                    "what `skysense` builds for an HR-only, single-date task; the released "
                    "skysense_model_backbone_hr.pth loads strictly (--checkpoint hr=FILE or FILE)",
        input_rule="H, W >= 225 (at least one 8-token window at stride 32), multiples of 32 advised",
        min_input_size=225,
        input_multiple=32,
        test_size=256,
    ),
    BackboneInfo(
        name="skysense-tiny",
        module=BUILDER,
        mm_type=TYPE,
        kwargs=TINY,
        modalities=ALL,
        out_channels=(16, 32, 64, 128),
        out_strides=STRIDES,
        pooled_channels=128,
        params=1_125_934,
        family="skysense",
        pretrainer=PRETRAINER,
        description="SkySense structure at toy width (all three encoders, fusion, prototypes) for CPU tests; "
                    "built per run like `skysense`",
        input_rule=RULE.format(m=33, w=2),
        min_input_size=33,
        input_multiple=32,
        temporal=True,
        tiny=True,
        test_size=64,
    ),
]


@hookimpl
def rsbench_register_backbones(register):
    for info in BACKBONES:
        register(info)
