"""MaRS' released segmentation decoder as an mmseg decode head (``head=mars`` on deepglobe-road).

MaRS evaluated DeepGlobe roads with ``MaRSFCN`` (WanderRainy/MaRS@5da1a5a,
``downtasks/terratorch/segmodel.py``), not UPerNet, so its 68.44 IoU belongs to that decoder. It
is rebuilt here from mmcv/mmseg parts so it runs in the same segmentor, pipeline and metric as the
uniform head:

* ``MaRSUpBlock``: the released ``DecoderBlock`` (D-LinkNet's): 1x1 conv to a quarter of the
  channels, 3x3 transposed conv x2, 1x1 conv to the output width, each followed by BN + ReLU.
  Convolutions keep their biases, as released.
* ``RSBMaRSFCNHead``: four up-blocks from the **last** stage only (the released skip additions are
  commented out), widths taken from the backbone's stages (C4->C3->C2->C1->C1; the release hard-codes
  the large SwinV2's 192..1536), then a 3x3 transposed conv to 32 channels + ReLU, a 3x3 conv + ReLU
  and the 1x1 classifier (mmseg's ``conv_seg``): x32 upsampling in all.
* ``MaRSLossMixin``: the released loss 0.5 CE + 0.5 Dice (and, for the change head, 0.5 BCE +
  0.5 Dice on one logit) with OpenMMLab's own ``CrossEntropyLoss`` / ``DiceLoss``. mmseg's
  ``DiceLoss`` has no pixel ignore, one-hots a one-channel target as class 0 and scores all class
  channels of an image jointly (background then swamps a thin road class), so the head activates
  the logits itself (``DiceLoss(activate=False)``), zeroes ignored pixels in prediction and target,
  and reduces as the release's segmentation_models_pytorch ``DiceLoss`` does: one Dice per class
  over the whole batch, a class absent from the batch's targets counting 0, the mean over the
  classes (``naive_dice=True`` is its form 2|X∩Y|/(|X|+|Y|)).

What remains different: mmseg's ``eps`` (1e-3, added to both terms) where smp clamps the
denominator at 1e-7; weights start from mmcv's initialisation.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.losses import DiceLoss, accuracy
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch import Tensor, nn

RELU = dict(type="ReLU")
#: Transposed 3x3 convolution doubling the size (stride 2, padding 1, output padding 1), as released.
DECONV = dict(type="deconv", output_padding=1)
#: Channels of the released final deconv / conv before the classifier.
FINAL_CHANNELS = 32


class MaRSUpBlock(BaseModule):
    """The released ``DecoderBlock``: x2 upsampling from ``in_channels`` to ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int, norm_cfg: dict[str, Any] | None = None,
                 init_cfg: Any = None) -> None:
        super().__init__(init_cfg)
        if in_channels < 4:
            raise ValueError(f"MaRSUpBlock: in_channels {in_channels}; expected at least 4 (it reduces to a quarter)")
        mid = in_channels // 4
        norm_cfg = norm_cfg or dict(type="BN", requires_grad=True)
        self.conv1 = ConvModule(in_channels, mid, 1, bias=True, norm_cfg=norm_cfg, act_cfg=RELU)
        self.deconv2 = ConvModule(mid, mid, 3, stride=2, padding=1, bias=True, conv_cfg=DECONV, norm_cfg=norm_cfg,
                                  act_cfg=RELU)
        self.conv3 = ConvModule(mid, out_channels, 1, bias=True, norm_cfg=norm_cfg, act_cfg=RELU)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv3(self.deconv2(self.conv1(x)))


class MaRSLossMixin:
    """``loss_by_feat`` for the MaRS heads: every ``loss_decode`` summed by name; a ``DiceLoss``
    (configured ``activate=False``) gets the activated, ignore-masked prediction and a target of
    its shape (see the module docstring)."""

    def loss_modules(self) -> list[nn.Module]:
        return list(self.loss_decode) if isinstance(self.loss_decode, nn.ModuleList) else [self.loss_decode]

    def check_losses(self) -> None:
        for loss in self.loss_modules():
            if isinstance(loss, DiceLoss) and loss.activate:
                raise ValueError(f"{type(self).__name__}: DiceLoss needs activate=False (the head activates the "
                                 "logits and masks ignored pixels; mmseg's DiceLoss one-hots a one-channel target "
                                 "as class 0)")

    def dice_inputs(self, logits: Tensor, label: Tensor, valid: Tensor, use_sigmoid: bool) -> tuple[Tensor, Tensor]:
        """Probabilities and target of equal shape (N, C, H, W), zero on ignored pixels."""
        mask = valid.unsqueeze(1).to(logits.dtype)
        if logits.shape[1] == 1:
            probs = logits.sigmoid()
            target = (label == 1).unsqueeze(1).to(logits.dtype)
        else:
            probs = logits.sigmoid() if use_sigmoid else logits.softmax(dim=1)
            ids = torch.where(valid, label, torch.zeros_like(label))
            target = F.one_hot(ids.long(), logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
        return probs * mask, target * mask

    @staticmethod
    def released_dice(loss: DiceLoss, probs: Tensor, target: Tensor) -> Tensor:
        """segmentation_models_pytorch's reduction with mmseg's ``loss``: per class over the batch
        (the class's pixels of all images as one (1, 1, N*H, W) map), absent classes 0, mean."""
        terms = []
        for c in range(probs.shape[1]):
            t = target[:, c]
            if not bool(t.any()):
                terms.append(probs[:, c].sum() * 0.0)  # smp masks a class without target pixels
                continue
            terms.append(loss(probs[:, c].reshape(1, 1, -1, probs.shape[-1]), t.reshape(1, 1, -1, t.shape[-1])))
        return torch.stack(terms).mean()

    def loss_by_feat(self, seg_logits: Tensor, batch_data_samples: list) -> dict[str, Tensor]:
        label = self._stack_batch_gt(batch_data_samples)
        logits = resize(seg_logits, size=label.shape[2:], mode="bilinear", align_corners=self.align_corners)
        label = label.squeeze(1)
        valid = label != self.ignore_index
        losses: dict[str, Tensor] = {}
        for loss in self.loss_modules():
            if isinstance(loss, DiceLoss):
                value = self.released_dice(loss, *self.dice_inputs(logits, label, valid, loss.use_sigmoid))
            else:
                value = loss(logits, label, weight=None, ignore_index=self.ignore_index)
            losses[loss.loss_name] = losses[loss.loss_name] + value if loss.loss_name in losses else value
        if logits.shape[1] == 1:  # mmseg's accuracy takes the arg-max over channels: threshold one logit
            hit = ((logits.sigmoid()[:, 0] > self.threshold).long() == label) & valid
            losses["acc_seg"] = hit.sum().float() * 100.0 / valid.sum().clamp(min=1)
        else:
            losses["acc_seg"] = accuracy(logits, label, ignore_index=self.ignore_index)
        return losses


@MODELS.register_module(name="RSBMaRSFCNHead")
class MaRSFCNHead(MaRSLossMixin, BaseDecodeHead):
    """MaRSFCN's decoder (see the module docstring). ``in_channels``: the four stage widths
    (``in_index`` 0..3); only the last stage is decoded."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("dropout_ratio", 0.0)  # the released classifier has no dropout
        super().__init__(channels=FINAL_CHANNELS, input_transform="multiple_select", **kwargs)
        widths = list(self.in_channels)
        if len(widths) != 4:
            raise ValueError(f"RSBMaRSFCNHead: in_channels {widths}; expected the four stage widths of the backbone")
        self.check_losses()
        norm = self.norm_cfg
        self.decoder4 = MaRSUpBlock(widths[3], widths[2], norm)
        self.decoder3 = MaRSUpBlock(widths[2], widths[1], norm)
        self.decoder2 = MaRSUpBlock(widths[1], widths[0], norm)
        self.decoder1 = MaRSUpBlock(widths[0], widths[0], norm)
        self.finaldeconv1 = ConvModule(widths[0], FINAL_CHANNELS, 3, stride=2, padding=1, bias=True, conv_cfg=DECONV,
                                       norm_cfg=None, act_cfg=RELU)
        self.finalconv2 = ConvModule(FINAL_CHANNELS, FINAL_CHANNELS, 3, padding=1, bias=True, norm_cfg=None,
                                     act_cfg=RELU)

    def forward(self, inputs: list[Tensor]) -> Tensor:
        x = self._transform_inputs(inputs)[-1]
        for block in (self.decoder4, self.decoder3, self.decoder2, self.decoder1):
            x = block(x)
        return self.cls_seg(self.finalconv2(self.finaldeconv1(x)))
