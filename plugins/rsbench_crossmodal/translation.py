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
  over the valid (unpadded) window positions, averaged over positions and channels;
* ``PSNR_flat`` / ``SSIM_flat``, the chance baseline: both scores of each target's own mean
  colour as a flat image, the best PSNR any prediction without structure can reach.

External predictions (``rsbench score``; a run writes the same through ``RSBTranslationWriter``
into its work dir's ``predictions/``): a folder of images named like the targets,
``{id}_opt.png``, each the size of its target optical image with 3 bands of 8 bits (RGB), as the
targets are. The scorer takes the centre ``img_size`` crop a run evaluates (the whole image at
the default 512) and computes PSNR / SSIM above on value / 255 against the target / 255; a run's
writer fills the pixels outside its crop with 0 (never scored).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.registry import METRICS, MODELS
from PIL import Image, UnidentifiedImageError
from torch import Tensor, nn

from rsbench.errors import PredictionError
from rsbench_crossmodal.registration import RGB_MEAN, RGB_STD, SAR_MEAN, SAR_STD


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


def flat_baseline(target: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image PSNR and SSIM of (B, C, H, W) targets against their own mean colour."""
    flat = target.mean(dim=(2, 3), keepdim=True).expand_as(target)
    return psnr(flat, target), ssim(flat, target)


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
            image = (p * 255).round().to(torch.uint8).cpu()  # what the writer saves
            flat_psnr, flat_ssim = flat_baseline(t)
            return [dict(id=data_samples["id"][i], psnr=float(v), ssim=float(s), pred=image[i],
                         psnr_flat=float(fv), ssim_flat=float(fs))
                    for i, (v, s, fv, fs) in enumerate(zip(psnr(p, t), ssim(p, t), flat_psnr, flat_ssim))]
        raise ValueError(f"mode {mode!r}: expected 'tensor', 'loss' or 'predict'")


@METRICS.register_module(name="RSBTranslationMetric")
class TranslationMetric(BaseMetric):
    default_prefix = "translation"

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        self.results.extend((s["psnr"], s["ssim"], s["psnr_flat"], s["ssim_flat"]) for s in data_samples)

    def compute_metrics(self, results: list) -> dict[str, float]:
        values = torch.tensor(results, dtype=torch.float64).mean(0)
        return dict(zip(("PSNR", "SSIM", "PSNR_flat", "SSIM_flat"), map(float, values)))


# -- external predictions -------------------------------------------------------------------
def read_rgb8(path: Path, size: int) -> np.ndarray:
    """A predicted optical image (H, W, 3) uint8 after checking it is 8-bit RGB of ``size`` px."""
    try:
        with Image.open(path) as img:
            img.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise PredictionError(f"{path}: unreadable image ({exc}); expected an 8-bit RGB PNG") from exc
    if img.mode != "RGB":
        raise PredictionError(f"{path}: mode {img.mode} ({len(img.getbands())} band(s)); expected 8-bit RGB "
                              "(3 bands, like the target optical image)")
    if img.size != (size, size):
        raise PredictionError(f"{path}: {img.size[0]}x{img.size[1]} px; the target is {size}x{size}")
    return np.asarray(img)


def score_pair(pred: np.ndarray, target: np.ndarray, crop: int) -> dict[str, Any]:
    """The metric's sample fields (``psnr``, ``ssim``, their flat baselines and the (3, crop, crop)
    uint8 ``pred``) over the centre ``crop`` of two (H, W, 3) uint8 images: the region and the
    scaling a run evaluates."""
    o = (target.shape[0] - crop) // 2
    p, t = (torch.from_numpy(a[o:o + crop, o:o + crop].transpose(2, 0, 1).copy()) for a in (pred, target))
    pd, td = p[None].double() / 255, t[None].double() / 255
    flat_psnr, flat_ssim = flat_baseline(td)
    return dict(psnr=float(psnr(pd, td)[0]), ssim=float(ssim(pd, td)[0]), pred=p,
                psnr_flat=float(flat_psnr[0]), ssim_flat=float(flat_ssim[0]))


@METRICS.register_module(name="RSBTranslationWriter")
class TranslationWriter(BaseMetric):
    """Writes each predicted optical image as ``output_dir/{id}_opt.png`` in the format ``rsbench
    score`` reads: the crop pasted at its place in a zero image of the target's size (sizes from
    the test ``ann_file``). Adds no metric."""

    default_prefix = "translation-writer"

    def __init__(self, output_dir: str, ann_file: str, collect_device: str = "cpu", prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.output_dir, self.ann_file = Path(output_dir), Path(ann_file)
        self._rows: dict[str, dict[str, Any]] | None = None

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        if self._rows is None:
            self._rows = {str(r["id"]): r for r in json.loads(self.ann_file.read_text())}
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for s in data_samples:
            row = self._rows[str(s["id"])]
            crop = np.asarray(s["pred"], dtype=np.uint8).transpose(1, 2, 0)
            full = np.zeros((row["size"], row["size"], 3), np.uint8)
            o = (row["size"] - crop.shape[0]) // 2
            full[o:o + crop.shape[0], o:o + crop.shape[1]] = crop
            Image.fromarray(full).save(self.output_dir / Path(row["opt"]).name)
            self.results.append(str(s["id"]))

    def compute_metrics(self, results: list) -> dict[str, float]:
        return {}
