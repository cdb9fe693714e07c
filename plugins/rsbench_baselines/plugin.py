"""Declarations of the baseline backbones. Light: no torch import here."""

from __future__ import annotations

from rsbench import BackboneInfo, BackbonePrefix, hookimpl

RGB = {"hr": ("R", "G", "B")}
BUILDER = "rsbench_baselines.mmpretrain_backbones"
TYPE = "RSBMMPretrainBackbone"


def _mmpretrain(name: str, net: dict, channels: tuple[int, ...], strides: tuple[int, ...],
                params: int, description: str, tiny: bool = False, test_size: int = 64) -> BackboneInfo:
    """An mmpretrain baseline. None has a minimum input size (their patch embeddings, patch
    merging and Swin windows pad; checked by tests/test_input_rules.py); ``input_multiple`` is
    the size their maps tile exactly: the deepest stride (ViT: the patch)."""
    return BackboneInfo(
        name=name,
        module=BUILDER,
        mm_type=TYPE,
        kwargs=dict(net=net, modalities=RGB, out_channels=channels, out_strides=strides),
        modalities=RGB,
        out_channels=channels,
        out_strides=strides,
        pooled_channels=channels[-1],
        params=params,
        description=description,
        input_rule=f"any H, W; multiples of {max(strides)} tile the maps exactly",
        min_input_size=0,
        input_multiple=max(strides),
        tiny=tiny,
        test_size=test_size,
    )


def _resnet50(base: int) -> dict:
    return dict(type="ResNet", depth=50, stem_channels=base, base_channels=base, out_indices=(0, 1, 2, 3))


def _vit(arch: str | dict, patch: int, img: int) -> dict:
    return dict(type="VisionTransformer", arch=arch, patch_size=patch, img_size=img,
                out_type="featmap", out_indices=(2, 5, 8, 11) if arch == "b" else (0, 1, 2, 3),
                final_norm=True, with_cls_token=True)


def _swin(arch: str | dict, img: int) -> dict:
    return dict(type="SwinTransformer", arch=arch, img_size=img, out_indices=(0, 1, 2, 3), pad_small_map=True)


VIT_TINY = dict(embed_dims=96, num_layers=4, num_heads=3, feedforward_channels=192)
SWIN_TINY = dict(embed_dims=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8])

BACKBONES = [
    _mmpretrain("resnet50", _resnet50(64), (256, 512, 1024, 2048), (4, 8, 16, 32), 23_508_032,
                "ResNet-50 (mmpretrain), the classic CNN baseline"),
    _mmpretrain("resnet50-tiny", _resnet50(16), (64, 128, 256, 512), (4, 8, 16, 32), 1_480_976,
                "ResNet-50 structure at 1/4 width, for CPU tests and the demo", tiny=True),
    _mmpretrain("vit-b", _vit("b", 16, 224), (768,) * 4, (16,) * 4, 85_798_656,
                "ViT-B/16 (mmpretrain), outputs of blocks 3/6/9/12", test_size=64),
    _mmpretrain("vit-tiny", _vit(VIT_TINY, 8, 64), (96,) * 4, (8,) * 4, 324_192,
                "ViT with 4 blocks of width 96, patch 8, for CPU tests", tiny=True),
    _mmpretrain("swin-b", _swin("base", 224), (128, 256, 512, 1024), (4, 8, 16, 32), 86_745_016,
                "Swin-B (mmpretrain), window 7", test_size=64),
    _mmpretrain("swin-tiny", _swin(SWIN_TINY, 64), (32, 64, 128, 256), (4, 8, 16, 32), 2_282_926,
                "Swin with width 32 and depths 2-2-2-2, for CPU tests", tiny=True),
]


@hookimpl
def rsbench_register_backbones(register):
    for info in BACKBONES:
        register(info)
    register(BackbonePrefix(
        name="timm",
        resolver="rsbench_baselines.timm_backbones:describe",
        description="timm:<model_name>: any timm model with features_only support",
    ))
