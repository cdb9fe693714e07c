"""Optical/SAR registration on a backbone's dense features (GUSO), with its data pieces and metric.

The head (``RSBRegistrationModel``) is a parameter-light correlation head, designed here since
no benchmark defines one:

1. the backbone encodes the optical image (``hr``) and the SAR image: MaRS-like backbones with
   ``forward_all`` see both at once and return per-modality maps (after their cross-modal
   attention); other backbones taking ``sar`` encode it alone; RGB-only backbones get the SAR
   image repeated to three channels (adapter ``sar-as-rgb``, recorded in the row);
2. the map at stride ``feature_stride`` (task option, 8; else the finest) of each image is turned
   into a descriptor by two 3x3 convolutions (GELU between; one pair per image) and
   L2-normalised. A 1x1 projection was tried first: it matched for a ResNet, but the tiny Swin-V2
   encoders' stride-4 tokens (one per 4x4 patch) stayed at the identity's error, while the 3x3
   pair, by pooling each token's neighbours, took all three tiny backbones far below it; a local cost volume (SAR cells within
   ``search_px`` of the same position, zero-padded) with a learned temperature gives, for every
   optical cell, a softmax over displacements, and its expectation within one cell of the peak
   a soft correspondence (SAR position, pixels);
3. an affine ``H_0to1`` is fitted to the correspondences by confidence-weighted least squares
   (closed form, differentiable, with a small ridge towards identity), re-weighted three times
   by each correspondence's Cauchy weight under the previous fit (IRLS), so wrong matches stop
   pulling it.

Training minimises the smooth-L1 pixel error of both the correspondences and the fitted
transform at the optical cell centres against the ground truth ``H``. The metric
(``RSBRegistrationMetric``) maps a 20 x 20 grid of points covering the optical image with the
predicted and true ``H``: per pair RMSE (pixels) capped at 5, success if RMSE < 3 (GUSO's
``RMSE_MAX_LIMIT`` and threshold). GUSO's own protocol scores matched keypoints after FSC
filtering; rsbench scores the transform directly, so the numbers are comparable in scale only.

External predictions (``rsbench score``, read by :func:`read_transforms`; a run writes the same
file through ``RSBRegistrationWriter``): one CSV, ``registration.csv`` in a run's
``predictions/``, with a header and one row per pair::

    id,h00,h01,h02,h10,h11,h12,h20,h21,h22      (3x3 H_0to1, row-major)
    id,a00,a01,a02,a10,a11,a12                  (or its 2x3 affine part; last row 0 0 1)

``id`` is the pair's ``{id}`` of ``{id}_opt.png``; ``H_0to1`` maps an optical pixel (x, y, 1) to
SAR pixel coordinates in the full images, exactly like the ground truth ``{id}_H.txt``. The
scorer moves it into the centre crop a run evaluates (``img_size``) and scores it with the
metric above; rows of ids outside the scored split are ignored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseDataPreprocessor, BaseModel
from mmengine.registry import METRICS, MODELS, TRANSFORMS
from torch import Tensor, nn

from rsbench.errors import PredictionError
from rsbench.io.raster import read_raster, read_rgb
from rsbench.protocol.normalization import IMAGENET_MEAN, IMAGENET_STD

RGB_MEAN, RGB_STD = IMAGENET_MEAN, IMAGENET_STD
#: SAR amplitude PNGs (0-255) are centred and scaled with these fixed values.
SAR_MEAN, SAR_STD = 127.5, 64.0
RMSE_CAP, SUCCESS_BELOW = 5.0, 3.0
#: The prediction CSV's columns: the full homography, or the affine part of it.
H_COLUMNS = tuple(f"h{r}{c}" for r in range(3) for c in range(3))
AFFINE_COLUMNS = tuple(f"a{r}{c}" for r in range(2) for c in range(3))
#: Name of the prediction CSV inside a folder (a run's ``predictions/``).
PREDICTION_FILE = "registration.csv"


def crop_h(h: np.ndarray, offset: float) -> np.ndarray:
    """``H`` in the coordinates of a crop starting at (offset, offset) in both images."""
    t = np.array([[1, 0, offset], [0, 1, offset], [0, 0, 1.0]])
    return np.linalg.inv(t) @ h @ t


def uncrop_h(h: np.ndarray, offset: float) -> np.ndarray:
    """The inverse of :func:`crop_h`: a crop's ``H`` in full-image coordinates."""
    return crop_h(h, -offset)


@TRANSFORMS.register_module(name="RSBLoadPair")
class LoadPair(BaseTransform):
    """Centre-crop ``size`` px of both images (the check refused smaller ones); adjust ``H``.

    ``align``: a pair with a ground-truth ``H`` has its SAR resampled into the optical frame
    first (SAR at ``H x`` for optical pixel ``x``, bilinear, 0 outside) and ``H`` dropped, for
    tasks that compare the two pixel to pixel (translation)."""

    def __init__(self, size: int, align: bool = False) -> None:
        self.size, self.align = int(size), bool(align)

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        root = Path(results["data_root"])
        opt = read_rgb(root / results["opt"]).astype(np.float32)
        sar = read_raster(root / results["sar"])[..., 0].astype(np.float32)  # a grey PNG's first band
        if self.align and "H" in results:
            import cv2

            sar = cv2.warpPerspective(sar, np.array(results["H"], dtype=np.float64), sar.shape[::-1],
                                      flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=0.0)
            results = {k: v for k, v in results.items() if k != "H"}
        o = (opt.shape[0] - self.size) // 2
        opt, sar = opt[o:o + self.size, o:o + self.size], sar[o:o + self.size, o:o + self.size]
        out = dict(inputs=dict(opt=torch.from_numpy(opt.transpose(2, 0, 1).copy()),
                               sar=torch.from_numpy(sar[None].copy())),
                   data_samples=dict(id=results["id"]))
        if "H" in results:
            out["data_samples"]["H"] = torch.tensor(crop_h(np.array(results["H"]), o), dtype=torch.float32)
        return out


@MODELS.register_module(name="RSBPairPreprocessor")
class PairPreprocessor(BaseDataPreprocessor):
    """Stack the pair; optical standardised with ImageNet RGB statistics, SAR with fixed 127.5 / 64."""

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs, samples = data["inputs"], data["data_samples"]
        opt = torch.stack(list(inputs["opt"])).float()
        sar = torch.stack(list(inputs["sar"])).float()
        mean = torch.tensor(RGB_MEAN, device=opt.device).view(1, 3, 1, 1)
        std = torch.tensor(RGB_STD, device=opt.device).view(1, 3, 1, 1)
        out: dict[str, Any] = dict(id=list(samples["id"]))
        if "H" in samples:
            out["H"] = torch.stack(list(samples["H"])).float()
        return dict(inputs=dict(opt=(opt - mean) / std, sar=(sar - SAR_MEAN) / SAR_STD), data_samples=out)


def map_points(h: Tensor, pts: Tensor) -> Tensor:
    """Apply (B, 3, 3) homographies to (N, 2) or (B, N, 2) points -> (B, N, 2)."""
    if pts.dim() == 2:
        pts = pts.expand(h.shape[0], -1, -1)
    ones = torch.ones_like(pts[..., :1])
    q = torch.cat([pts, ones], -1) @ h.transpose(1, 2)
    return q[..., :2] / q[..., 2:].clamp_min(1e-8)


def fit_affine(src: Tensor, dst: Tensor, weight: Tensor, ridge: float = 1e-3) -> Tensor:
    """Weighted least-squares affine (B, 3, 3) with dst ~ A [src; 1]; ridge towards identity."""
    b = src.shape[0]
    x = torch.cat([src, torch.ones_like(src[..., :1])], -1)  # (B, N, 3)
    w = weight.unsqueeze(-1)
    scale = w.sum(1, keepdim=True).clamp_min(1e-8)
    xtx = (x * w).transpose(1, 2) @ x / scale
    xty = (x * w).transpose(1, 2) @ dst / scale
    eye = torch.eye(3, device=src.device).expand(b, 3, 3)
    prior = torch.eye(3, device=src.device)[:, :2].expand(b, 3, 2)
    a = torch.linalg.solve(xtx + ridge * eye, xty + ridge * prior)  # (B, 3, 2)
    h = torch.zeros(b, 3, 3, device=src.device)
    h[:, :2, :] = a.transpose(1, 2)
    h[:, 2, 2] = 1
    return h


def robust_affine(src: Tensor, dst: Tensor, weight: Tensor, scale: float, iters: int = 3,
                  ridge: float = 1e-3) -> Tensor:
    """:func:`fit_affine` re-weighted ``iters`` times by the Cauchy weight ``1 / (1 + (r/scale)^2)``
    of each correspondence's residual ``r`` (pixels) under the previous fit (IRLS): cells matched
    to the wrong place (low texture, speckle, image border) stop pulling the transform."""
    h = fit_affine(src, dst, weight, ridge)
    for _ in range(iters):
        residual = (map_points(h, src) - dst).norm(dim=-1)
        h = fit_affine(src, dst, weight / (1 + (residual / scale) ** 2), ridge)
    return h


def descriptor(in_channels: int, channels: int) -> nn.Sequential:
    """The head's per-image descriptor: two 3x3 convolutions with a GELU between."""
    return nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1), nn.GELU(),
                         nn.Conv2d(channels, channels, 3, padding=1))


@MODELS.register_module(name="RSBRegistrationModel")
class RegistrationModel(BaseModel):
    def __init__(self, backbone: dict, sar_input: str, level: int, stride: int, in_channels: int,
                 search_px: int = 64, channels: int = 64, data_preprocessor: dict | None = None,
                 init_cfg: Any = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor or dict(type="RSBPairPreprocessor"), init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        if sar_input == "sar" and hasattr(self.backbone, "forward_all"):
            sar_input = "joint"  # MaRS: both images at once, per-modality maps after cross-modal attention
        if sar_input not in ("joint", "sar", "sar-as-rgb"):
            raise ValueError(f"sar_input {sar_input!r}: expected 'joint', 'sar' or 'sar-as-rgb'")
        self.sar_input, self.level, self.stride = sar_input, level, stride
        self.radius = max(1, math.ceil(search_px / stride))
        self.proj_opt = descriptor(in_channels, channels)
        self.proj_sar = descriptor(in_channels, channels)
        self.log_temperature = nn.Parameter(torch.tensor(np.log(20.0), dtype=torch.float32))

    def features(self, opt: Tensor, sar: Tensor) -> tuple[Tensor, Tensor]:
        if self.sar_input == "joint":
            out = self.backbone.forward_all({"hr": opt, "sar": sar})
            return out["hr"][self.level], out["sar"][self.level]
        fo = self.backbone({"hr": opt})[self.level]
        if self.sar_input == "sar":
            fs = self.backbone({"sar": sar})[self.level]
        else:
            rgb = (sar * SAR_STD + SAR_MEAN).repeat(1, 3, 1, 1)
            mean = torch.tensor(RGB_MEAN, device=sar.device).view(1, 3, 1, 1)
            std = torch.tensor(RGB_STD, device=sar.device).view(1, 3, 1, 1)
            fs = self.backbone({"hr": (rgb - mean) / std})[self.level]
        return fo, fs

    def correspond(self, opt: Tensor, sar: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Optical cell centres (N, 2), soft SAR matches (B, N, 2) and confidences (B, N), pixels.

        A local cost volume: each optical cell is compared with the SAR cells within
        ``radius`` cells of the same position (zero-padded outside the image, so an untrained head's
        expected displacement is zero and the fit starts at identity)."""
        fo, fs = self.features(opt, sar)
        b, _, h, w = fo.shape
        fo = F.normalize(self.proj_opt(fo), dim=1).flatten(2)  # (B, C, N)
        fs = F.normalize(self.proj_sar(fs), dim=1)
        r = self.radius
        k = 2 * r + 1
        window = F.unfold(fs, kernel_size=k, padding=r).view(b, fs.shape[1], k * k, h * w)  # (B, C, K, N)
        cost = torch.einsum("bcn,bckn->bkn", fo, window) * self.log_temperature.exp()
        prob = torch.softmax(cost, dim=1)  # (B, K, N)
        dy, dx = torch.meshgrid(torch.arange(-r, r + 1, device=opt.device),
                                torch.arange(-r, r + 1, device=opt.device), indexing="ij")
        offsets = torch.stack([dx, dy], -1).reshape(-1, 2).float() * self.stride  # (K, 2) pixels
        conf = prob.max(1).values
        # Soft-argmax around the peak only (+-1 cell): far, spurious modes do not drag a match.
        near = (offsets[:, None] - offsets[None]).abs().amax(-1) <= self.stride + 1e-3  # (K, K)
        local = prob * near[prob.argmax(1)].permute(0, 2, 1).float()
        local = local / local.sum(1, keepdim=True).clamp_min(1e-12)
        ys, xs = torch.meshgrid(torch.arange(h, device=opt.device), torch.arange(w, device=opt.device), indexing="ij")
        centres = (torch.stack([xs, ys], -1).reshape(-1, 2).float() + 0.5) * self.stride - 0.5
        matches = centres + torch.einsum("bkn,kd->bnd", local, offsets)
        return centres, matches, conf

    def forward(self, inputs: dict, data_samples: dict | None = None, mode: str = "tensor") -> Any:
        centres, matches, conf = self.correspond(inputs["opt"], inputs["sar"])
        pred = robust_affine(centres.expand(matches.shape[0], -1, -1), matches, conf, scale=self.stride / 2)
        if mode == "tensor":
            return pred
        if mode == "loss":
            assert data_samples is not None
            target = map_points(data_samples["H"], centres)
            return dict(loss_match=F.smooth_l1_loss(matches, target),
                        loss_transform=F.smooth_l1_loss(map_points(pred, centres), target))
        if mode == "predict":
            size = inputs["opt"].shape[-1]
            out = []
            for i in range(pred.shape[0]):
                item = dict(id=data_samples["id"][i], pred_H=pred[i].detach().cpu(), size=size)
                if data_samples is not None and "H" in data_samples:
                    item["gt_H"] = data_samples["H"][i].detach().cpu()
                out.append(item)
            return out
        raise ValueError(f"mode {mode!r}: expected 'tensor', 'loss' or 'predict'")


def registration_rmse(pred_h: Tensor, gt_h: Tensor, size: int, n: int = 20) -> Tensor:
    """Per-pair RMSE (pixels) of the grid points mapped by the predicted vs the true H."""
    line = torch.linspace(0, size - 1, n, dtype=pred_h.dtype)
    ys, xs = torch.meshgrid(line, line, indexing="ij")
    pts = torch.stack([xs, ys], -1).reshape(-1, 2)
    err = map_points(pred_h, pts) - map_points(gt_h, pts)
    return err.pow(2).sum(-1).mean(-1).sqrt()


@METRICS.register_module(name="RSBRegistrationMetric")
class RegistrationMetric(BaseMetric):
    default_prefix = "registration"

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for s in data_samples:
            self.results.append((s["pred_H"], s["gt_H"], s["size"]))

    def compute_metrics(self, results: list) -> dict[str, float]:
        pred = torch.stack([r[0] for r in results]).double()
        gt = torch.stack([r[1] for r in results]).double()
        size = int(results[0][2])
        rmse = registration_rmse(pred, gt, size)
        identity = registration_rmse(torch.eye(3, dtype=torch.float64).expand_as(gt), gt, size)
        return {"RMSE": float(rmse.clamp(max=RMSE_CAP).mean()),
                "success_rate": float(100 * (rmse < SUCCESS_BELOW).double().mean()),
                "RMSE_identity": float(identity.clamp(max=RMSE_CAP).mean())}


# -- external predictions -------------------------------------------------------------------
def read_transforms(path: Path) -> dict[str, np.ndarray]:
    """``{id: H_0to1}`` (float64, scaled to h22 = 1) from a prediction CSV (module docstring).

    Every malformed row is a :class:`PredictionError` naming the file and line, so a submission
    is never scored on a silently dropped or misread row."""
    import csv

    from rsbench_classification.prediction_csv import id_rows

    expected = f"a header 'id,{','.join(H_COLUMNS)}' or 'id,{','.join(AFFINE_COLUMNS)}'"
    try:
        reader = csv.reader(path.read_text(encoding="utf-8-sig").splitlines())
        header = tuple(c.strip() for c in next(reader, []))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PredictionError(f"{path}: unreadable ({exc}); expected a CSV with {expected}") from exc
    if header not in (("id", *H_COLUMNS), ("id", *AFFINE_COLUMNS)):
        raise PredictionError(f"{path}:1: header {','.join(header)!r}; expected {expected}")
    affine = header[1:] == AFFINE_COLUMNS
    out: dict[str, np.ndarray] = {}
    for key, fields, where in id_rows(path, reader, len(header)):
        try:
            values = np.array([float(v) for v in fields], dtype=np.float64)
        except ValueError as exc:
            raise PredictionError(f"{where}: {exc}; expected numbers in {','.join(header[1:])}") from exc
        if not np.isfinite(values).all():
            raise PredictionError(f"{where}: non-finite value; expected finite numbers")
        h = np.eye(3)
        if affine:
            h[:2] = values.reshape(2, 3)
        else:
            h = values.reshape(3, 3)
        if h[2, 2] == 0:
            raise PredictionError(f"{where}: h22 is 0; expected a homography that scales to h22 = 1")
        out[key] = h / h[2, 2]
    return out


@METRICS.register_module(name="RSBRegistrationWriter")
class RegistrationWriter(BaseMetric):
    """Writes a run's predicted transforms as the prediction CSV ``rsbench score`` reads, moved
    from the evaluated crop back to full-image pixels (image sizes from the test ``ann_file``),
    so scoring a run's own file reproduces its metric. Adds no metric."""

    default_prefix = "registration-writer"

    def __init__(self, out_file: str, ann_file: str, collect_device: str = "cpu", prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.out_file, self.ann_file = Path(out_file), Path(ann_file)

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for s in data_samples:
            self.results.append((str(s["id"]), s["pred_H"].double().cpu().numpy(), int(s["size"])))

    def compute_metrics(self, results: list) -> dict[str, float]:
        import csv

        sizes = {str(r["id"]): int(r["size"]) for r in json.loads(self.ann_file.read_text())}
        self.out_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.out_file, "w", newline="") as f:
            out = csv.writer(f, lineterminator="\n")
            out.writerow(("id", *H_COLUMNS))
            for key, h, crop in results:
                full = uncrop_h(h, (sizes[key] - crop) // 2)
                out.writerow((key, *(repr(float(v)) for v in full.ravel())))
        return {}
