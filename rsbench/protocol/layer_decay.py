"""Layer-wise learning-rate decay for rsbench's detectors and segmentors.

The engine is mmpretrain's ``LearningRateDecayOptimWrapperConstructor`` (per parameter:
``lr * rate ** (num_layers - depth - 1)``, weight-decay rules from ``paramwise_cfg``). It needs a
``get_layer_depth(param_name)`` on the top-level model, which mmseg's segmentors and mmdet's
detectors do not have, and mmpretrain's ``SwinTransformerV2`` has none either (only its
``SwinTransformer`` and ``VisionTransformer`` do). mmseg's and mmdet's
``LayerDecayOptimizerConstructor`` parse only ConvNeXt/BEiT names at ``backbone.stages`` /
``backbone.layers``, not encoders nested in rsbench's wrappers (``backbone.encoders.hr.stages.N``
for SkySense, timm ``backbone.encoders.hr.layers_N`` for MaRS). So this small subclass only
supplies the depth function: it finds the transformer encoders inside ``model.backbone`` and
numbers their blocks, using a transformer encoder's own ``get_layer_depth`` where it has one
(mmpretrain ViT and Swin) and the Swin-V2 rule otherwise (patch embedding 0, block ``j`` of stage ``i`` at
``sum(depths[:i]) + j + 1``, stage ``i``'s patch merging, which precedes its blocks in mmpretrain's
and timm's Swin-V2, at ``sum(depths[:i])``). Everything outside the encoders (heads, necks,
fusion) is at the top depth: the full learning rate. A backbone without such an encoder (a CNN)
trains without decay, and the log says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mmengine.logging import MMLogger
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from mmpretrain.engine.optimizers.layer_decay_optim_wrapper_constructor import (
    LearningRateDecayOptimWrapperConstructor,
)
from torch import nn

_STAGE = re.compile(r"^(?:stages|layers)[._](\d+)\.(blocks\.(\d+)|downsample)")
_EMBED = ("patch_embed", "absolute_pos_embed", "pos_embed", "cls_token", "mask_token")


def _stages(module: nn.Module) -> list[nn.Module] | None:
    """The stages of a Swin-like encoder (each with ``blocks``), or None."""
    for attr in ("stages", "layers"):
        seq = getattr(module, attr, None)
        if isinstance(seq, nn.ModuleList) and len(seq) and all(hasattr(s, "blocks") for s in seq):
            return list(seq)
    flat = [getattr(module, f"layers_{i}", None) for i in range(8)]
    flat = [s for s in flat if s is not None]
    if flat and all(hasattr(s, "blocks") for s in flat):
        return flat
    return None


def swin_depth(depths: list[int]) -> Callable[[str], tuple[int, int]]:
    """The Swin-V2 depth rule for names relative to the encoder (see the module docstring)."""
    num_layers = sum(depths) + 2

    def depth(name: str) -> tuple[int, int]:
        if name.startswith(_EMBED):
            return 0, num_layers
        m = _STAGE.match(name)
        if m is None:
            return num_layers - 1, num_layers
        stage = int(m.group(1))
        if m.group(3) is not None:
            return sum(depths[:stage]) + int(m.group(3)) + 1, num_layers
        return sum(depths[:stage]), num_layers

    return depth


def _is_transformer(module: nn.Module) -> bool:
    name = type(module).__name__
    return "Transformer" in name or "ViT" in name


def encoder_depths(model: nn.Module) -> dict[str, Callable[[str], tuple[int, int]]]:
    """``prefix -> depth(name relative to prefix)`` for each transformer encoder in ``model``'s
    backbone (outermost matches only)."""
    backbone = getattr(model, "backbone", model)
    root = "backbone." if backbone is not model else ""
    found: dict[str, Callable[[str], tuple[int, int]]] = {}
    for path, module in backbone.named_modules():
        prefix = f"{root}{path}." if path else root
        if any(prefix.startswith(p) for p in found):
            continue
        own = getattr(module, "get_layer_depth", None)
        # mmpretrain's CNNs (ResNet) have one too; the cards' decay is for transformer encoders.
        if callable(own) and module is not model and _is_transformer(module):
            found[prefix] = lambda name, own=own: own(name, "")
            continue
        stages = _stages(module)
        if stages is not None:
            found[prefix] = swin_depth([len(s.blocks) for s in stages])
    return found


@OPTIM_WRAPPER_CONSTRUCTORS.register_module(name="RSBLayerDecayOptimWrapperConstructor")
class LayerDecayOptimWrapperConstructor(LearningRateDecayOptimWrapperConstructor):
    """mmpretrain's layer-decay constructor with the depth function found in the backbone.

    ``paramwise_cfg``: ``layer_decay_rate`` and the weight-decay keys of mmpretrain's constructor;
    ``num_layers`` is the card's stated depth, logged against the depth found.
    """

    def add_params(self, params: list[dict], module: nn.Module, prefix: str = "",
                   get_layer_depth: Callable | None = None, **kwargs: Any) -> None:
        if prefix == "" and get_layer_depth is None:
            get_layer_depth = self.depth_function(module)
        super().add_params(params, module, prefix=prefix, get_layer_depth=get_layer_depth, **kwargs)

    def depth_function(self, model: nn.Module) -> Callable[[str], tuple[int, int]]:
        encoders = encoder_depths(model)
        logger = MMLogger.get_current_instance()
        stated = self.paramwise_cfg.get("num_layers")
        if not encoders:
            logger.warning("layer-wise LR decay: the backbone has no transformer encoder with numbered "
                           "blocks (a CNN?); every parameter keeps the base learning rate")
        tops = {p: fn("")[1] for p, fn in encoders.items()}
        for p, n in tops.items():
            if stated and n - 2 != int(stated):
                logger.info(f"layer-wise LR decay: encoder {p.rstrip('.')} has {n - 2} layers "
                            f"(the card states {stated}); its own depth is used")
        top = max(tops.values(), default=1)

        def depth(name: str) -> tuple[int, int]:
            for p, fn in encoders.items():
                if name.startswith(p):
                    return fn(name[len(p):])
            return top - 1, top

        return depth
