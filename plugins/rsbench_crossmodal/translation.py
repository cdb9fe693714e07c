"""SAR -> optical translation on a backbone's features (GUSO), scored by PSNR / SSIM from
scikit-image (``skimage.metrics``), whose parameters below give exactly the definitions stated.

``RSBTranslationModel``: the backbone encodes the SAR image (as modality ``sar`` when it takes
one, else repeated to three channels for an RGB backbone: adapter ``sar-as-rgb``); a light
FPN-style decoder projects every output map to 64 channels (1x1 conv), upsamples them to the
finest map, sums, refines with a 3x3 conv block, and upsamples bilinearly to the input size,
predicting RGB in [0, 1] (sigmoid). Loss: L1 to the optical image scaled to [0, 1].

Metrics on [0, 1] images (data range 1), averaged over test pairs:

* PSNR = 10 log10(1 / MSE), MSE over all pixels and the 3 channels of a pair, capped at 120 dB
  (an MSE floor of 1e-12: identical images score 120, not infinity);
* SSIM (Wang et al. 2004): Gaussian window 11x11, sigma 1.5, K1 = 0.01, K2 = 0.03, population
  (not sample) covariances, per channel, averaged over the valid window positions (windows wholly
  inside the image, no padded border) and over channels. That is ``structural_similarity(...,
  gaussian_weights=True, sigma=1.5, win_size=11, use_sample_covariance=False, data_range=1)``;
  torchmetrics' SSIM (1.9.0; since Lightning-AI/torchmetrics#2721) averages over the
  reflect-padded border too, which changes the value (measured: up to 0.11 on random 11-80 px
  images), so it is not used;
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
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import Tensor, nn

from rsbench.errors import PredictionError
from rsbench.io.raster import raster_info, read_raster
from rsbench_crossmodal.registration import RGB_MEAN, RGB_STD, SAR_MEAN, SAR_STD

#: PSNR of identical images: the cap stands for an MSE floor of 1e-12 (module docstring).
PSNR_CAP = 120.0
#: SSIM's settings (module docstring): Wang et al.'s Gaussian window on images in [0, 1].
SSIM_ARGS = dict(gaussian_weights=True, sigma=1.5, win_size=11, use_sample_covariance=False, K1=0.01, K2=0.03,
                 data_range=1.0)


def image_psnr(pred: np.ndarray, target: np.ndarray) -> float:
    """PSNR (dB) of two equally shaped float images in [0, 1], capped at :data:`PSNR_CAP`."""
    with np.errstate(divide="ignore"):  # identical images: MSE 0 -> inf -> the cap
        return min(float(peak_signal_noise_ratio(target, pred, data_range=1.0)), PSNR_CAP)


def image_ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """SSIM of two (C, H, W) float images in [0, 1] (module docstring)."""
    return float(structural_similarity(target, pred, channel_axis=0, **SSIM_ARGS))


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """Per-image PSNR (dB) of (B, C, H, W) images in [0, 1], float64."""
    p, t = pred.detach().double().cpu().numpy(), target.detach().double().cpu().numpy()
    return torch.tensor([image_psnr(a, b) for a, b in zip(p, t)], dtype=torch.float64)


def ssim(pred: Tensor, target: Tensor) -> Tensor:
    """Per-image SSIM of (B, C, H, W) images in [0, 1], float64."""
    p, t = pred.detach().double().cpu().numpy(), target.detach().double().cpu().numpy()
    return torch.tensor([image_ssim(a, b) for a, b in zip(p, t)], dtype=torch.float64)


def pair_scores(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """The metric's four numbers for one (C, H, W) pair in [0, 1]: ``psnr``, ``ssim`` and their
    chance baseline ``psnr_flat`` / ``ssim_flat`` (the target's own mean colour as a flat image)."""
    p, t = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    flat = np.broadcast_to(t.mean(axis=(1, 2), keepdims=True), t.shape).copy()
    return dict(psnr=image_psnr(p, t), ssim=image_ssim(p, t), psnr_flat=image_psnr(flat, t),
                ssim_flat=image_ssim(flat, t))


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
            p, t = pred.detach().double().cpu(), target.double().cpu()
            image = (p * 255).round().to(torch.uint8)  # what the writer saves
            return [dict(id=data_samples["id"][i], pred=image[i], **pair_scores(p[i].numpy(), t[i].numpy()))
                    for i in range(p.shape[0])]
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
    """A predicted optical image (H, W, 3) uint8 after checking (from its header) that it is 8-bit
    RGB of ``size`` px; each error a :class:`PredictionError` naming the file."""
    info = raster_info(path, error=PredictionError)
    if info.bands != 3 or info.dtype != "uint8":
        raise PredictionError(f"{path}: {info.bands} band(s) of {info.dtype}; expected 8-bit RGB (3 bands of "
                              "uint8, like the target optical image)")
    if (info.width, info.height) != (size, size):
        raise PredictionError(f"{path}: {info.width}x{info.height} px; the target is {size}x{size}")
    return read_raster(path, error=PredictionError)


def score_pair(pred: np.ndarray, target: np.ndarray, crop: int) -> dict[str, Any]:
    """The metric's sample fields (:func:`pair_scores` and the (3, crop, crop) uint8 ``pred``)
    over the centre ``crop`` of two (H, W, 3) uint8 images: the region and the scaling a run
    evaluates."""
    o = (target.shape[0] - crop) // 2
    p, t = (torch.from_numpy(a[o:o + crop, o:o + crop].transpose(2, 0, 1).copy()) for a in (pred, target))
    return dict(pred=p, **pair_scores(p.double().numpy() / 255, t.double().numpy() / 255))


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
