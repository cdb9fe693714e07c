"""Declarations of the MaRS backbones. Light: no torch import here."""

from __future__ import annotations

from rsbench import BackboneInfo, hookimpl

MODALITIES = {"hr": ("R", "G", "B"), "sar": ("SAR",)}
BUILDER = "rsbench_mars.model"
TYPE = "RSBMaRS"
#: The MaRS pretraining objective (``rsbench pretrain``); both presets declare it.
PRETRAINER = "rsbench_mars.pretrain:MaRSPretrainer"

#: Paper size: timm ``swinv2_base_window8_256`` at 512 x 512, as the released encoders.
PAPER = dict(encoder=dict(model_name="swinv2_base_window8_256", img_size=512),
             fusion="mma", mma_stages=(3,), mma_depth=2, mma_heads=8)
#: Same structure at CPU size: Swin-V2 of width 32, depths 2-2-2-2, window 4, at 64 x 64.
TINY = dict(encoder=dict(model_name="swinv2_tiny_window8_256", img_size=64, embed_dim=32,
                         depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=4),
            fusion="mma", mma_stages=(3,), mma_depth=2, mma_heads=8)

BACKBONES = [
    BackboneInfo(
        name="mars",
        builder=BUILDER,
        mm_type=TYPE,
        kwargs=PAPER,
        modalities=MODALITIES,
        out_channels=(128, 256, 512, 1024),
        out_strides=(4, 8, 16, 32),
        pooled_channels=1024,
        params=224_164_336,
        family="mars",
        pretrainer=PRETRAINER,
        description="MaRS (AAAI 2026): RGB and SAR Swin-V2-B encoders (window 8, 512 px) with "
                    "Meta-Modality Attention (2 intra/joint pairs, 8 heads) on the last stage; "
                    "weights via rgb_checkpoint=/sar_checkpoint= (official encoder-only files)",
        input_rule="{'hr': (B,3,H,W), 'sar': (B,1,H,W)}, equal H, W, multiples of 32; pretrained at "
                   "512x512 (multiples of 256 avoid window padding); one modality alone when declared with "
                   "in_modalities (missing_modality='intra_only'|'placeholder' decides how)",
        input_multiple=32,
        test_size=64,
    ),
    BackboneInfo(
        name="mars-tiny",
        builder=BUILDER,
        mm_type=TYPE,
        kwargs=TINY,
        modalities=MODALITIES,
        out_channels=(32, 64, 128, 256),
        out_strides=(4, 8, 16, 32),
        pooled_channels=256,
        params=7_763_452,
        family="mars",
        pretrainer=PRETRAINER,
        description="MaRS structure at CPU size (Swin-V2 width 32, depths 2-2-2-2, window 4, 64 px) "
                    "for tests and the demo",
        input_rule="{'hr': (B,3,H,W), 'sar': (B,1,H,W)}, equal H, W, multiples of 32; built for 64x64",
        tiny=True,
        input_multiple=32,
        test_size=64,
    ),
]


@hookimpl
def rsbench_register_backbones(register):
    for info in BACKBONES:
        register(info)
