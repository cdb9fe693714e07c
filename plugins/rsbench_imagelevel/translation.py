"""SAR -> optical translation on a backbone's features (GUSO), with PSNR / SSIM written from their
definitions (no torchmetrics / scikit-image in the stack).

``RSBTranslationModel``: the backbone encodes the SAR image (as modality ``sar`` when it takes
one, else repeated to three channels for an RGB backbone: adapter ``sar-as-rgb``); a light
FPN-style decoder projects every output map to 64 channels (1x1 conv), upsamples them to the
finest map, sums, refines with a 3x3 conv block, and upsamples bilinearly to the input size,
predicting RGB in [0, 1] (sigmoid). Loss: L1 to the optical image scaled to [0, 1].

Metrics on [0, 1] images (data range 1), averaged over test pairs:

* PSNR = 10 log10(1 / MSE), MSE over all pixels and the 3 channels of a pair;
* SSIM (Wang et al. 2004): Gaussian window 11x11, sigma 1.5, K1 = 0.01, K2 = 0.03, per channel,
  over the valid (unpadded) window positions, averaged over positions and channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.registry import METRICS, MODELS
from torch import Tensor, nn

from rsbench_imagelevel.registration import RGB_MEAN, RGB_STD, SAR_MEAN, SAR_STD


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """Per-image PSNR (dB) of (B, C, H, W) images in [0, 1]."""
    mse = (pred - target).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-12))


def ssim(pred: Tensor, target: Tensor, size: int = 11, sigma: float = 1.5) -> Tensor:
    """Per-image SSIM of (B, C, H, W) images in [0, 1] (data range 1)."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    ax = torch.arange(size, dtype=pred.dtype, device=pred.device) - (size - 1) / 2
    g = torch.exp(-ax ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    channels = pred.shape[1]
    kernel = (g[:, None] * g[None, :]).expand(channels, 1, size, size)

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(x, kernel, groups=channels)

    mu_x, mu_y = blur(pred), blur(target)
    sxx = blur(pred * pred) - mu_x ** 2
    syy = blur(target * target) - mu_y ** 2
    sxy = blur(pred * target) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)


@MODELS.register_module(name="RSBTranslationModel")
class TranslationModel(BaseModel):
    def __init__(self, backbone: dict, sar_input: str, in_channels: Sequence[int], channels: int = 64,
                 data_preprocessor: dict | None = None, init_cfg: Any = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor or dict(type="RSBPairPreprocessor"), init_cfg=init_cfg)
        if sar_input not in ("sar", "sar-as-rgb"):
            raise ValueError(f"sar_input {sar_input!r}: expected 'sar' or 'sar-as-rgb'")
        self.backbone = MODELS.build(backbone)
        self.sar_input = sar_input
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.refine = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.GELU(),
                                    nn.Conv2d(channels, 3, 3, padding=1))

    def translate(self, sar: Tensor) -> Tensor:
        if self.sar_input == "sar":
            maps = self.backbone({"sar": sar})
        else:
            rgb = (sar * SAR_STD + SAR_MEAN).repeat(1, 3, 1, 1)
            mean = torch.tensor(RGB_MEAN, device=sar.device).view(1, 3, 1, 1)
            std = torch.tensor(RGB_STD, device=sar.device).view(1, 3, 1, 1)
            maps = self.backbone({"hr": (rgb - mean) / std})
        size = maps[0].shape[-2:]
        x = sum(F.interpolate(lat(m), size=size, mode="bilinear", align_corners=False)
                for lat, m in zip(self.lateral, maps))
        x = F.interpolate(self.refine(x), size=sar.shape[-2:], mode="bilinear", align_corners=False)
        return torch.sigmoid(x)

    def forward(self, inputs: dict, data_samples: dict | None = None, mode: str = "tensor") -> Any:
        pred = self.translate(inputs["sar"])
        if mode == "tensor":
            return pred
        mean = torch.tensor(RGB_MEAN, device=pred.device).view(1, 3, 1, 1)
        std = torch.tensor(RGB_STD, device=pred.device).view(1, 3, 1, 1)
        target = ((inputs["opt"] * std + mean) / 255.0).clamp(0, 1)
        if mode == "loss":
            return dict(loss_l1=F.l1_loss(pred, target))
        if mode == "predict":
            assert data_samples is not None
            p, t = pred.detach().double(), target.double()
            return [dict(id=data_samples["id"][i], psnr=float(v), ssim=float(s))
                    for i, (v, s) in enumerate(zip(psnr(p, t), ssim(p, t)))]
        raise ValueError(f"mode {mode!r}: expected 'tensor', 'loss' or 'predict'")


@METRICS.register_module(name="RSBTranslationMetric")
class TranslationMetric(BaseMetric):
    default_prefix = "translation"

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        self.results.extend((s["psnr"], s["ssim"]) for s in data_samples)

    def compute_metrics(self, results: list) -> dict[str, float]:
        values = torch.tensor(results, dtype=torch.float64)
        return {"PSNR": float(values[:, 0].mean()), "SSIM": float(values[:, 1].mean())}
