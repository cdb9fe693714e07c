"""MaRS' released change decoder as an mmseg decode head (``head=mars`` on whu-cd).

MaRS evaluated WHU-CD with ``ChangeDetectionModel`` (WanderRainy/MaRS@5da1a5a,
``downtasks/terratorch/changemodel.py``), not UPerHead, so its 87.02 IoU belongs to that decoder.
In rsbench the siamese part (one backbone per date, last-stage features concatenated) is the
change segmentor with ``RSBFeatureFusionNeck(concat)``; this head is the released
``ChangeDecoder`` on the fused last stage:

* ``CDBlock``: two 3x3 conv + BN + ReLU, the concatenated width to 256 channels;
* ``upsample_times`` up-blocks (the released ``DecoderBlock``,
  :class:`rsbench_segmentation.mars_fcn.MaRSUpBlock`), each halving the width down to at least 32;
  the release uses 5 for SwinV2's stride 32, so the task passes log2 of the backbone's last stride;
* a 1x1 conv to one logit (mmseg's ``conv_seg``, ``out_channels=1``); a pixel is changed where the
  sigmoid exceeds ``threshold`` (0.5, as released).

The loss is the released 0.5 BCE + 0.5 Dice with mmseg's ``CrossEntropyLoss(use_sigmoid=True)``
and ``DiceLoss`` (:class:`rsbench_segmentation.mars_fcn.MaRSLossMixin`).
"""

from __future__ import annotations

from typing import Any

from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor, nn

from rsbench_segmentation.mars_fcn import RELU, MaRSLossMixin, MaRSUpBlock

#: Width of the released CDBlock, and the narrowest up-block output.
BLOCK_CHANNELS, MIN_CHANNELS = 256, 32


def up_widths(upsample_times: int, start: int = BLOCK_CHANNELS, floor: int = MIN_CHANNELS) -> list[tuple[int, int]]:
    """(in, out) of each released up-block: the width halves, never below ``floor``."""
    out, width = [], start
    for _ in range(upsample_times):
        nxt = max(width // 2, floor)
        out.append((width, nxt))
        width = nxt
    return out


@MODELS.register_module(name="RSBMaRSChangeHead")
class MaRSChangeHead(MaRSLossMixin, BaseDecodeHead):
    """The released change decoder on one fused level (``in_index``; see the module docstring)."""

    def __init__(self, upsample_times: int, **kwargs: Any) -> None:
        if upsample_times < 0:
            raise ValueError(f"RSBMaRSChangeHead: upsample_times {upsample_times}; expected 0 or more")
        widths = up_widths(int(upsample_times))
        kwargs.setdefault("dropout_ratio", 0.0)  # the released classifier has no dropout
        super().__init__(channels=widths[-1][1] if widths else BLOCK_CHANNELS, **kwargs)
        if not isinstance(self.in_channels, int):
            raise ValueError(f"RSBMaRSChangeHead: in_channels {self.in_channels}; expected the width of one "
                             "fused level")
        self.check_losses()
        conv = dict(kernel_size=3, padding=1, bias=True, norm_cfg=self.norm_cfg, act_cfg=RELU)
        self.block = nn.Sequential(ConvModule(self.in_channels, BLOCK_CHANNELS, **conv),
                                   ConvModule(BLOCK_CHANNELS, BLOCK_CHANNELS, **conv))
        self.upsample_blocks = nn.ModuleList(MaRSUpBlock(a, b, self.norm_cfg) for a, b in widths)

    def forward(self, inputs: list[Tensor]) -> Tensor:
        x = self.block(self._transform_inputs(inputs))
        for up in self.upsample_blocks:
            x = up(x)
        return self.cls_seg(x)
