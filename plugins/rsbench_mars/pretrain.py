"""MaRS's pretraining objective (``rsbench pretrain --model mars-tiny``).

Faithful to the paper (as summarised in rsbench's issue 13) and to the released pretraining
code (``models/MaRS.py``, ``mars_dataset.py``) where the summary is silent:

* masked image modelling with a 60 % mask ratio: SimMIM block masks
  (:class:`~rsbench_mars.pretrain_data.MaskGenerator`) of 16 x 16 blocks per image as released
  (32 px blocks at 512, 16 px at 256; 4 px, one token, at mars-tiny's 64), ``ceil(0.6 * 256) =
  154`` blocks masked, the *same* mask for RGB and SAR; masked patch-embedding tokens are
  replaced by a learned mask token per modality before the Swin stages (as
  ``SwinTransformerForMaRS``); each modality's last-stage map after Meta-Modality Attention is
  decoded by a 1x1 convolution and a pixel shuffle of the encoder stride, and the L1 error on
  masked pixels is the loss (:class:`~rsbench_mars.pretrain_losses.MaskedReconstructionLoss`);
* Cross-Granularity Contrastive Learning (CGCL), ``L_CGCL = L_patch + L_global + L_cross``
  (1:1:1) on the same post-MMA last-stage tokens
  (:class:`~rsbench_mars.pretrain_losses.CrossGranularityContrastiveLoss`);
* ``L = L_MIM(RGB) + L_MIM(SAR) + L_CGCL``; AdamW, cosine learning rate, gradient clipping.

The backbone is always built with MMA as the released pretraining graph (``fusion="mma"``,
``mma_style="released"`` unless the preset sets MMA itself), whatever the preset's fusion: MMA
is part of the objective. The checkpoint holds the encoders, their final norms and MMA; the sum
presets (``mars``, ``mars-tiny``) load its encoders and leave MMA out, the MMA presets load all.

Left out: the released code also distils the RGB tokens towards a frozen ImageNet-pretrained
Swin teacher (negative cosine); rsbench never downloads weights and the paper's summary does not
list it. The temperatures are rsbench's values in the paper's order (see the loss). The mask
tokens and decoders live in this objective, not in the backbone checkpoint (as the released
converter drops them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rsbench.pretraining.loop import PretrainObjective
from rsbench_mars import pretrain_data
from rsbench_mars.pretrain_losses import CrossGranularityContrastiveLoss, MaskedReconstructionLoss

IN_CHANNELS = {"hr": 3, "sar": 1}


def _mask_tokens(token: Tensor, mask: Tensor, module: nn.Module, args: Any, out: Tensor) -> Tensor:
    """Forward hook on a patch embedding: masked positions take the mask token.
    ``out`` is NHWC (timm Swin) or NCHW; ``mask`` is ``(B, H, W)`` on the token grid."""
    m = mask.bool()
    if out.shape[1:3] == m.shape[1:] and out.shape[-1] == token.numel():
        return torch.where(m[..., None], token.to(out.dtype).view(1, 1, 1, -1), out)
    if out.shape[2:] == m.shape[1:] and out.shape[1] == token.numel():
        return torch.where(m[:, None], token.to(out.dtype).view(1, -1, 1, 1), out)
    raise ValueError(f"MaRS mask {tuple(m.shape)} does not fit the patch embedding output {tuple(out.shape)}")


@contextlib.contextmanager
def masked_embedding(model: nn.Module, tokens: Mapping[str, Tensor], mask: Tensor) -> Iterator[None]:
    """Within the block, ``model.encoders[m].patch_embed`` outputs ``tokens[m]`` at masked places."""
    hooks = [model.encoders[m].patch_embed.register_forward_hook(partial(_mask_tokens, tokens[m], mask))
             for m in tokens]
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


def pretraining_backbone(backbone: Mapping[str, Any]) -> dict[str, Any]:
    """The preset's config with MMA (see the module docstring); MMA starts at initialisation here
    by design, so the MMA presets' refusal of untrained MMA does not apply."""
    config = dict(backbone)
    if config.get("fusion", "sum") != "mma":
        config.update(fusion="mma", mma_style="released")
    return dict(config, accept_initialised_mma=True)


class MaRSPretrainer(PretrainObjective):
    """The MaRS objective around a MaRS backbone config (see the module docstring).

    Args:
        backbone: the backbone's mmengine config (``BackboneInfo.config()``).
        img_size: training crop (default: the encoders' ``img_size``, 64 for mars-tiny, 512 paper).
        mask_ratio: fraction of mask blocks masked (paper 0.6).
        mask_patch_size: mask block side in px (default ``img_size / 16``, as released).
        mim_weight, cgcl_weight: ``L = mim_weight (L_MIM(RGB) + L_MIM(SAR)) + cgcl_weight L_CGCL``.
        cgcl: keyword arguments of :class:`CrossGranularityContrastiveLoss`.
    """

    defaults = dict(lr=1e-3, weight_decay=0.05, batch_size=8, clip_grad=3.0, warmup=0)

    def __init__(self, backbone: Mapping[str, Any], img_size: int | None = None, mask_ratio: float = 0.6,
                 mask_patch_size: int | None = None, mim_weight: float = 1.0, cgcl_weight: float = 1.0,
                 cgcl: Mapping[str, Any] | None = None) -> None:
        super().__init__(pretraining_backbone(backbone))
        model = self.backbone
        self.img_size = int(img_size or dict(backbone.get("encoder", {})).get("img_size", 512))
        patch = model.encoders["hr"].patch_embed.patch_size
        self.model_patch = int(patch[0] if isinstance(patch, (tuple, list)) else patch)
        self.mask_patch = int(mask_patch_size or max(self.img_size // 16, self.model_patch))
        self.mask_ratio = mask_ratio
        embed = model.out_channels[0]
        self.mask_tokens = nn.ParameterDict({m: nn.Parameter(torch.zeros(1, 1, 1, embed)) for m in IN_CHANNELS})
        for p in self.mask_tokens.values():
            nn.init.trunc_normal_(p, std=0.02)
        stride, width = model.out_strides[-1], model.out_channels[-1]
        self.decoders = nn.ModuleDict({
            m: nn.Sequential(nn.Conv2d(width, stride ** 2 * c, kernel_size=1), nn.PixelShuffle(stride))
            for m, c in IN_CHANNELS.items()
        })
        self.mim = MaskedReconstructionLoss()
        self.cgcl = CrossGranularityContrastiveLoss(**dict(cgcl or {}))
        self.mim_weight, self.cgcl_weight = float(mim_weight), float(cgcl_weight)

    # -- data ------------------------------------------------------------------------------
    data_module = pretrain_data

    def mask_generator(self) -> pretrain_data.MaskGenerator:
        return pretrain_data.MaskGenerator(self.img_size, self.mask_patch, self.model_patch, self.mask_ratio)

    def build_dataset(self, root: Path) -> pretrain_data.MaRSPretrainDataset:
        return pretrain_data.MaRSPretrainDataset(root, self.img_size, self.mask_generator())

    # -- loss ------------------------------------------------------------------------------
    def encode(self, image: Tensor, mask: Tensor) -> dict[str, tuple[Tensor, ...]]:
        """The backbone's per-modality maps (after MMA) with masked tokens replaced."""
        inputs = {"hr": image[:, :3], "sar": image[:, 3:]}
        with masked_embedding(self.backbone, dict(self.mask_tokens), mask):
            return self.backbone.forward_all(inputs)

    def forward(  # type: ignore[override]
        self, batch: Mapping[str, Tensor], progress: float = 0.0
    ) -> dict[str, Tensor]:
        image, mask = batch["image"], batch["mask"]
        feats = self.encode(image, mask)
        pixel_mask = mask.repeat_interleave(self.model_patch, 1).repeat_interleave(self.model_patch, 2)
        targets = {"hr": image[:, :3], "sar": image[:, 3:]}
        parts = {f"mim_{m}": self.mim(self.decoders[m](feats[m][-1]), targets[m], pixel_mask) for m in IN_CHANNELS}
        mim = parts["mim_hr"] + parts["mim_sar"]
        tokens = {m: feats[m][-1].flatten(2).transpose(1, 2) for m in IN_CHANNELS}
        cgcl = self.cgcl(tokens["hr"], tokens["sar"])
        loss = self.mim_weight * mim + self.cgcl_weight * cgcl["total"]
        return dict(loss=loss, mim=mim.detach(), cgcl=cgcl["total"].detach(),
                    **{k: v.detach() for k, v in parts.items()},
                    **{f"cgcl_{k}": v.detach() for k, v in cgcl.items() if k != "total"})
