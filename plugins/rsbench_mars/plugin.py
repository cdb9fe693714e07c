"""Declarations of the MaRS backbones. Light: no torch import here."""

from __future__ import annotations

from rsbench import BackboneInfo, hookimpl

MODALITIES = {"hr": ("R", "G", "B"), "sar": ("SAR",)}
BUILDER = "rsbench_mars.model"
TYPE = "RSBMaRS"
#: The MaRS pretraining objective (``rsbench pretrain``, always with MMA); every preset declares it.
PRETRAINER = "rsbench_mars.pretrain:MaRSPretrainer"

#: Paper size: timm ``swinv2_base_window8_256`` at 512 x 512, as the released encoders.
PAPER_ENCODER = dict(model_name="swinv2_base_window8_256", img_size=512)
#: Same structure at CPU size: Swin-V2 of width 32, depths 2-2-2-2, window 4, at 64 x 64.
TINY_ENCODER = dict(model_name="swinv2_tiny_window8_256", img_size=64, embed_dim=32,
                    depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=4)
#: What the released downstream code evaluates: the two encoders' maps summed per stage.
SUM = dict(fusion="sum")
#: The pretraining graph: MMA (2 intra/joint pairs, 8 heads) on the last stage, released blocks.
MMA = dict(fusion="mma", mma_stages=(3,), mma_depth=2, mma_heads=8, mma_style="released")
PAPER = dict(encoder=PAPER_ENCODER, **SUM)
PAPER_MMA = dict(encoder=PAPER_ENCODER, **MMA)
TINY = dict(encoder=TINY_ENCODER, **SUM)
TINY_MMA = dict(encoder=TINY_ENCODER, **MMA)

INPUT_RULE = ("{'hr': (B,3,H,W), 'sar': (B,1,H,W)}, equal H, W, multiples of 32; pretrained at 512x512 "
              "(multiples of 256 avoid window padding); one modality alone when declared with in_modalities "
              "(missing_modality='intra_only'|'placeholder' decides how)")
TINY_RULE = "{'hr': (B,3,H,W), 'sar': (B,1,H,W)}, equal H, W, multiples of 32; built for 64x64"
WEIGHTS = ("weights: --checkpoint rgb=mars_base_rgb_encoder_only.pth --checkpoint sar=mars_base_sar_encoder_only.pth "
           "(encoder_checkpoints=), or a full MaRS pretraining checkpoint (--checkpoint FILE)")
MMA_TEXT = ("Meta-Modality Attention (2 intra/joint pairs, 8 heads, the released pretraining blocks after each "
            "encoder's final norm) on the last stage, then the per-stage sum; MMA weights exist only in full "
            "pretraining checkpoints: a run that loads weights without them is refused (accept_initialised_mma=True "
            "to train MMA from scratch)")
COMMON = dict(module=BUILDER, mm_type=TYPE, modalities=MODALITIES, out_strides=(4, 8, 16, 32), family="mars",
              pretrainer=PRETRAINER, input_multiple=32, test_size=64)
PAPER_SHAPE = dict(out_channels=(128, 256, 512, 1024), pooled_channels=1024, input_rule=INPUT_RULE)
TINY_SHAPE = dict(out_channels=(32, 64, 128, 256), pooled_channels=256, input_rule=TINY_RULE, tiny=True)

BACKBONES = [
    BackboneInfo(
        name="mars", kwargs=PAPER, params=173_779_440, **COMMON, **PAPER_SHAPE,
        description="MaRS (AAAI 2026) as its released downstream code evaluates it: RGB and SAR Swin-V2-B encoders "
                    "(window 8, 512 px), their maps summed per stage, no MMA; " + WEIGHTS,
    ),
    BackboneInfo(
        name="mars-mma", kwargs=PAPER_MMA, params=224_160_240, **COMMON, **PAPER_SHAPE,
        description="MaRS with its pretraining fusion: RGB and SAR Swin-V2-B encoders (window 8, 512 px) and "
                    + MMA_TEXT,
    ),
    BackboneInfo(
        name="mars-tiny", kwargs=TINY, params=4_604_412, **COMMON, **TINY_SHAPE,
        description="mars at CPU size (Swin-V2 width 32, depths 2-2-2-2, window 4, 64 px; per-stage sum) "
                    "for tests and the demo",
    ),
    BackboneInfo(
        name="mars-mma-tiny", kwargs=TINY_MMA, params=7_762_428, **COMMON, **TINY_SHAPE,
        description="mars-mma at CPU size (Swin-V2 width 32, depths 2-2-2-2, window 4, 64 px; MMA on the last "
                    "stage) for tests",
    ),
]


@hookimpl
def rsbench_register_backbones(register):
    for info in BACKBONES:
        register(info)
