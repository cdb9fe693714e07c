"""DFC23 track 2 building height regression: data pieces, decoder model, metric and the Task.

Protocol (MaRS released dfc23 code, adapted): train on a random 80/20 split of the official
``train`` tiles (split ``holdout``: sorted ids, ``numpy.random.RandomState(42).permutation``, the
first ceil(20 %) held out, which is what scikit-learn's ``train_test_split(test_size=0.2,
random_state=42)`` does), L1 loss, random crops of ``img_size`` for training; at test every tile
is cut into non-overlapping ``img_size`` windows (one window at the official 512 px).
Splits ``val`` / ``test`` train on all of ``train`` and score that split.

``RSBHeightModel``: the backbone encodes what it takes (MaRS-like: ``{"hr", "sar"}`` fused;
RGB-only backbones: adapter ``optical-only``, the SAR tile is not fed); a decoder (option
``head``) maps the backbone's outputs to one channel, upsampled bilinearly to the input where it
is not already there; the height is ``out * scale + mean``, clamped at 0 m for prediction.

* ``head=uniform`` (default): the harness's FPN-style decoder that every backbone is compared on
  (1x1 lateral convs to 64 channels, upsampled to the finest map, summed, 3x3 refine); the target
  is standardised with the train tiles' height mean / std, optical inputs with ImageNet
  statistics, SAR with the train tiles' mean / std.
* ``head=mars``: MaRS' released DFC23 decoder (``downtasks/terratorch/heightmodel.py``,
  ``DualBackboneModel``): four ``DecoderBlock`` s (1x1 conv to C/4, BN, ReLU; 3x3 transposed conv
  x2, BN, ReLU; 1x1 conv, BN, ReLU) from the last map (RGB + SAR features summed, as the MaRS
  backbone does) through C/2, C/4, C/8 to 64 channels, then the released final layer for the map's
  stride (32: 3x3 transposed conv x2; 16: 3x3 conv; 8: 3x3 conv stride 2) to 32, ReLU, 1x1 conv
  to 1. Its module names are the released ones, so a MaRS height checkpoint's decoder keys load.
  What belongs to that recipe comes with it: the target is height / 183.17412 m (``label_max``)
  and inputs are normalised with MaRS' DFC23 statistics (``dataset_factory.py``).

A default fine-tune run follows the protocol card (:mod:`rsbench_crossmodal.cards`: Adam 1e-4,
80 epochs with StepLR x0.5 every 20, batch 6, crop 512) with either head; shortened runs
(``--max-iters``) and frozen / linear runs keep the harness's short-run settings (AdamW with
weight decay 0.01, clipping at 5, linear warmup then cosine).

Metric (``RSBHeightMetric``), pooled over every pixel of every scored tile, written from the
definitions (not the official ``AverageMeter``, which mixes fields and averages per image):

* RMSE = sqrt(mean((p - g)^2)) and MAE = mean|p - g| over all pixels (ground included), metres;
* RMSE_building over pixels with g > 0;
* delta_k (%) = share of pixels with g > 0 where max(p / g, g / p) < 1.25^k (k = 1, 2, 3);
  a prediction p <= 0 on such a pixel counts as a miss.

External predictions (``rsbench score``; a run writes the same through ``RSBHeightWriter`` into
its work dir's ``predictions/``): a folder of single-band GeoTIFFs of heights in metres named
like the height labels, ``Pxxxx.tif``, each the size of its label tile (any numeric dtype; a
run writes float32). They are scored by the metric above over the whole tile.
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

from rsbench.errors import DataLayoutError, PredictionError, SpecError
from rsbench.io.raster import raster_info, read_raster
from rsbench.plugin_api.catalog import BackboneInfo
from rsbench.plugin_api.checked_data import CheckedData
from rsbench.plugin_api.task import Task
from rsbench.protocol import protocol_card as pc
from rsbench.run.spec import RunSpec
from rsbench_crossmodal.dfc23 import read_tif, write_tif
from rsbench_crossmodal.guso_tasks import schedule
from rsbench_crossmodal.registration import RGB_MEAN, RGB_STD

#: The decoders option ``head`` chooses (module docstring).
HEADS = ("uniform", "mars")
#: MaRS' DFC23 recipe (``downtasks/terratorch/dataset_factory.py``, ``DFC23Track2Dataset`` /
#: ``DFC23Track2DataModule``): heights divided by this maximum; optical statistics of RGB / 255
#: and SAR statistics of the raw backscatter.
MARS_HEIGHT_MAX = 183.17412
MARS_RGB_MEAN, MARS_RGB_STD = (0.3182, 0.3442, 0.2818), (0.1796, 0.1645, 0.1689)
MARS_SAR_MEAN, MARS_SAR_STD = 0.2634, 0.5957
#: The released final layer for the last map's stride (``heightmodel.py``'s ``up`` = 5, 4, 3).
MARS_FINAL = {32: "deconv", 16: "conv", 8: "conv-stride2"}

STAT_KEYS = ("n", "abs", "sq", "n_pos", "sq_pos", "d1", "d2", "d3", "g", "g2")


def pixel_stats(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Sufficient statistics of one tile (float64 sums) for :func:`height_metrics`."""
    p, g = np.asarray(pred, np.float64).ravel(), np.asarray(gt, np.float64).ravel()
    err = p - g
    pos = g > 0
    pp, gp = p[pos], g[pos]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(pp > 0, np.maximum(pp / gp, gp / np.where(pp > 0, pp, 1.0)), np.inf)
    out = dict(n=float(p.size), abs=float(np.abs(err).sum()), sq=float((err ** 2).sum()), n_pos=float(pos.sum()),
               sq_pos=float((err[pos] ** 2).sum()), g=float(g.sum()), g2=float((g ** 2).sum()))
    for k in (1, 2, 3):
        out[f"d{k}"] = float((ratio < 1.25 ** k).sum())
    return out


def height_metrics(stats: Sequence[dict[str, float]]) -> dict[str, float]:
    tot = {k: sum(s[k] for s in stats) for k in STAT_KEYS}
    pos = max(tot["n_pos"], 1.0)
    return {"RMSE": math.sqrt(tot["sq"] / tot["n"]), "MAE": tot["abs"] / tot["n"],
            "MSE": tot["sq"] / tot["n"], "RMSE_building": math.sqrt(tot["sq_pos"] / pos),
            **{f"delta{k}": 100 * tot[f"d{k}"] / pos for k in (1, 2, 3)},
            # the chance baseline: the best constant height (the split's mean) scores its std
            "RMSE_constant": math.sqrt(max(tot["g2"] / tot["n"] - (tot["g"] / tot["n"]) ** 2, 0.0))}


def holdout(rows: list[dict[str, Any]], fraction: float = 0.2, seed: int = 42) -> tuple[list, list]:
    """(train, held-out) as ``train_test_split(sorted rows, test_size=fraction, random_state=seed)``."""
    rows = sorted(rows, key=lambda r: r["id"])
    perm = np.random.RandomState(seed).permutation(len(rows))
    n_test = math.ceil(fraction * len(rows))
    return [rows[i] for i in perm[n_test:]], [rows[i] for i in perm[:n_test]]


@TRANSFORMS.register_module(name="RSBLoadHeightTile")
class LoadHeightTile(BaseTransform):
    """Read rgb / sar / height; training: a random ``crop`` window and flips; test: the whole tile."""

    def __init__(self, crop: int, train: bool) -> None:
        self.crop, self.train = int(crop), train

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        root = Path(results["data_root"])
        arrays = [read_tif(root / results[k]) for k in ("rgb", "sar", "height")]
        if self.train:
            size = arrays[0].shape[-1]
            y, x = np.random.randint(0, size - self.crop + 1, 2)
            arrays = [a[:, y:y + self.crop, x:x + self.crop] for a in arrays]
            for axis in (1, 2):
                if np.random.rand() < 0.5:
                    arrays = [a[:, ::-1] if axis == 1 else a[:, :, ::-1] for a in arrays]
        rgb, sar, height = (torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)
        return dict(inputs=dict(hr=rgb, sar=sar), data_samples=dict(id=results["id"], height=height[0]))


@MODELS.register_module(name="RSBHeightPreprocessor")
class HeightPreprocessor(BaseDataPreprocessor):
    """Stack; optical standardised with ``rgb_mean`` / ``rgb_std`` (0-255 scale; default ImageNet
    statistics), SAR with ``sar_mean`` / ``sar_std``."""

    def __init__(self, sar_mean: float, sar_std: float, rgb_mean: Sequence[float] = RGB_MEAN,
                 rgb_std: Sequence[float] = RGB_STD, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sar_mean, self.sar_std = float(sar_mean), float(sar_std)
        self.rgb_mean, self.rgb_std = tuple(map(float, rgb_mean)), tuple(map(float, rgb_std))

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs, samples = data["inputs"], data["data_samples"]
        rgb = torch.stack(list(inputs["hr"])).float()
        sar = torch.stack(list(inputs["sar"])).float()
        mean = torch.tensor(self.rgb_mean, device=rgb.device).view(1, 3, 1, 1)
        std = torch.tensor(self.rgb_std, device=rgb.device).view(1, 3, 1, 1)
        return dict(inputs=dict(hr=(rgb - mean) / std, sar=(sar - self.sar_mean) / self.sar_std),
                    data_samples=dict(id=list(samples["id"]), height=torch.stack(list(samples["height"])).float()))


@MODELS.register_module(name="RSBHeightFPNHead")
class FPNHeightHead(nn.Module):
    """The uniform head: 1x1 laterals to ``channels``, upsampled to the finest map and summed, a
    3x3 refine to one channel (at the finest map's resolution)."""

    def __init__(self, in_channels: Sequence[int], channels: int = 64) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.refine = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.GELU(),
                                    nn.Conv2d(channels, 1, 3, padding=1))

    def forward(self, maps: Sequence[Tensor]) -> Tensor:
        size = maps[0].shape[-2:]
        x = sum(F.interpolate(lat(m), size=size, mode="bilinear", align_corners=False)
                for lat, m in zip(self.lateral, maps))
        return self.refine(x)


class MaRSDecoderBlock(nn.Module):
    """MaRS' ``DecoderBlock``: 1x1 conv to in/4, BN, ReLU; 3x3 transposed conv x2, BN, ReLU; 1x1
    conv to ``out_channels``, BN, ReLU (layer names as released)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = in_channels // 4
        self.conv1, self.norm1, self.relu1 = nn.Conv2d(in_channels, mid, 1), nn.BatchNorm2d(mid), nn.ReLU(inplace=True)
        self.deconv2 = nn.ConvTranspose2d(mid, mid, 3, stride=2, padding=1, output_padding=1)
        self.norm2, self.relu2 = nn.BatchNorm2d(mid), nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(mid, out_channels, 1)
        self.norm3, self.relu3 = nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu1(self.norm1(self.conv1(x)))
        x = self.relu2(self.norm2(self.deconv2(x)))
        return self.relu3(self.norm3(self.conv3(x)))


@MODELS.register_module(name="RSBMaRSHeightDecoder")
class MaRSHeightDecoder(nn.Module):
    """MaRS' released DFC23 regression decoder on the last map (module docstring): ``decoder4`` ..
    ``decoder1`` (C -> C/2 -> C/4 -> C/8 -> 64, each x2), ``final_deconv`` chosen by the map's
    ``stride`` (:data:`MARS_FINAL`), ``final_relu``, ``final_conv`` to one channel."""

    def __init__(self, in_channels: int, stride: int) -> None:
        super().__init__()
        c = int(in_channels)
        if c % 32:
            raise SpecError(f"--option head=mars: the backbone's last map has {c} channels; MaRS' decoder "
                            "halves them three times and quarters each block's input, so a multiple of 32 is expected")
        if stride not in MARS_FINAL:
            raise SpecError(f"--option head=mars: the backbone's last map has stride {stride}; MaRS' released "
                            f"decoder exists for strides {', '.join(map(str, MARS_FINAL))}")
        self.decoder4, self.decoder3 = MaRSDecoderBlock(c, c // 2), MaRSDecoderBlock(c // 2, c // 4)
        self.decoder2, self.decoder1 = MaRSDecoderBlock(c // 4, c // 8), MaRSDecoderBlock(c // 8, 64)
        final = MARS_FINAL[stride]
        self.final_deconv = (nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1) if final == "deconv"
                             else nn.Conv2d(64, 32, 3, stride=2 if final == "conv-stride2" else 1, padding=1))
        self.final_relu = nn.ReLU(inplace=True)
        self.final_conv = nn.Conv2d(32, 1, 1)

    def forward(self, maps: Sequence[Tensor]) -> Tensor:
        x = self.decoder1(self.decoder2(self.decoder3(self.decoder4(maps[-1]))))
        return self.final_conv(self.final_relu(self.final_deconv(x)))


@MODELS.register_module(name="RSBHeightModel")
class HeightModel(BaseModel):
    def __init__(self, backbone: dict, fed: Sequence[str], decode_head: dict, window: int,
                 height_mean: float, height_scale: float, data_preprocessor: dict | None = None,
                 init_cfg: Any = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.fed, self.window = tuple(fed), int(window)
        self.height_mean, self.height_scale = float(height_mean), float(height_scale)
        self.decode_head = MODELS.build(decode_head)

    def regress(self, inputs: dict[str, Tensor]) -> Tensor:
        """(B, H, W) heights in metres (unclamped) for one window."""
        x = self.decode_head(self.backbone({m: inputs[m] for m in self.fed}))
        size = inputs["hr"].shape[-2:]
        if x.shape[-2:] != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return x[:, 0] * self.height_scale + self.height_mean

    def tiled(self, inputs: dict[str, Tensor]) -> Tensor:
        """Non-overlapping ``window`` x ``window`` windows over the tile (the task checked divisibility)."""
        h, w = inputs["hr"].shape[-2:]
        out = inputs["hr"].new_zeros(inputs["hr"].shape[0], h, w)
        for y in range(0, h, self.window):
            for x in range(0, w, self.window):
                part = {m: t[..., y:y + self.window, x:x + self.window] for m, t in inputs.items()}
                out[:, y:y + self.window, x:x + self.window] = self.regress(part)
        return out

    def forward(self, inputs: dict, data_samples: dict | None = None, mode: str = "tensor") -> Any:
        if mode == "loss":
            assert data_samples is not None
            pred = self.regress(inputs)
            return dict(loss_l1=F.l1_loss(pred, data_samples["height"]) / self.height_scale)
        pred = self.tiled(inputs).clamp_min(0)
        if mode == "tensor":
            return pred
        if mode == "predict":
            assert data_samples is not None
            return [dict(id=data_samples["id"][i], pred=pred[i].detach().cpu().numpy(),
                         stats=pixel_stats(pred[i].detach().cpu().numpy(), data_samples["height"][i].cpu().numpy()))
                    for i in range(pred.shape[0])]
        raise ValueError(f"mode {mode!r}: expected 'tensor', 'loss' or 'predict'")


@METRICS.register_module(name="RSBHeightMetric")
class HeightMetric(BaseMetric):
    default_prefix = "height"

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        self.results.extend(s["stats"] for s in data_samples)

    def compute_metrics(self, results: list) -> dict[str, float]:
        return height_metrics(results)


@METRICS.register_module(name="RSBHeightWriter")
class HeightWriter(BaseMetric):
    """Writes each predicted height map as ``output_dir/<id>.tif`` (one float32 band, metres):
    the format ``rsbench score`` reads, so scoring a run's own files reproduces its metric.
    Adds no metric."""

    default_prefix = "height-writer"

    def __init__(self, output_dir: str, collect_device: str = "cpu", prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.output_dir = Path(output_dir)

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for s in data_samples:
            write_tif(self.output_dir / f"{s['id']}.tif", np.asarray(s["pred"], dtype=np.float32)[None])
            self.results.append(s["id"])

    def compute_metrics(self, results: list) -> dict[str, float]:
        return {}


def read_height(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A predicted height map (H, W) after checking it is one finite band of the label's ``shape``."""
    info = raster_info(path, error=PredictionError)
    if info.bands != 1:
        raise PredictionError(f"{path}: {info.bands} bands; expected one band of heights (m)")
    pred = read_raster(path, error=PredictionError)[..., 0]
    if pred.shape != tuple(shape):
        raise PredictionError(f"{path}: {pred.shape[0]}x{pred.shape[1]} px; the height label is {shape[0]}x{shape[1]}")
    if not np.isfinite(pred).all():
        raise PredictionError(f"{path}: non-finite heights; expected finite values in metres")
    return pred


class HeightTask(Task):
    default_scope = "mmpretrain"
    imports = ("mmpretrain.models", "rsbench.engine.entry_list", "rsbench_crossmodal.height")

    def card(self, spec: RunSpec) -> pc.ProtocolCard | None:
        """The task's card where this run follows it (a full-length fine-tune run), else ``None``."""
        card = pc.task_card(self.info)
        return card if pc.applies(card, spec) else None

    def check_data(self, root: Path, spec: RunSpec) -> CheckedData:
        opts, split = spec.options, spec.split
        head = str(opts["head"])
        if head not in HEADS:
            raise SpecError(f"--option head={head}: expected one of {', '.join(HEADS)}")
        summary = self.dataset.check(root)
        if split == "holdout":
            train, test = holdout(summary["samples"]["train"], float(opts["holdout_fraction"]), int(opts["split_seed"]))
        else:
            rows = summary["samples"].get(split)
            if rows is None:
                raise DataLayoutError(f"{Path(root) / split}: split folder missing (needed for --split {split})")
            if any("height" not in r for r in rows):
                raise DataLayoutError(f"{Path(root) / split / 'height'}: folder missing; split {split!r} cannot be scored")
            train, test = summary["samples"]["train"], rows
        card = self.card(spec)
        crop = int(pc.chosen(opts, dict(self.info.options), "img_size", card.crop.value) if card else opts["img_size"])
        for row in train + test:
            if row["size"] < crop or row["size"] % crop:
                raise DataLayoutError(f"{Path(root) / row['rgb']}: {row['size']} px is not a multiple of "
                                      f"the crop img_size={crop}")
        stats = self.normalisation(head, Path(root), train, int(opts["stats_samples"]))
        return CheckedData.from_summary(summary, split=split, options=opts, train=train, test=test,
                                        native_size=int(summary["size"]), facts=dict(crop=crop, stats=stats))

    @staticmethod
    def normalisation(head: str, root: Path, rows: list[dict[str, Any]], k: int) -> dict[str, Any]:
        """Input and target statistics of ``head``: MaRS' constants for ``mars``; for ``uniform``
        ImageNet RGB statistics and the SAR and height mean / std of the first ``k`` train tiles
        (sorted ids)."""
        if head == "mars":
            return dict(rgb_mean=[255 * m for m in MARS_RGB_MEAN], rgb_std=[255 * s for s in MARS_RGB_STD],
                        sar_mean=MARS_SAR_MEAN, sar_std=MARS_SAR_STD, height_mean=0.0, height_scale=MARS_HEIGHT_MAX)
        rows = sorted(rows, key=lambda r: r["id"])[:k]
        sar = np.concatenate([read_tif(root / r["sar"]).ravel() for r in rows])
        height = np.concatenate([read_tif(root / r["height"]).ravel() for r in rows])
        return dict(rgb_mean=list(RGB_MEAN), rgb_std=list(RGB_STD), sar_mean=float(sar.mean()),
                    sar_std=float(sar.std()) or 1.0, height_mean=float(height.mean()),
                    height_scale=float(height.std()) or 1.0)

    @staticmethod
    def decode_head(head: str, backbone: BackboneInfo) -> dict[str, Any]:
        if head == "mars":
            return dict(type="RSBMaRSHeightDecoder", in_channels=int(backbone.out_channels[-1]),
                        stride=int(backbone.out_strides[-1]))
        return dict(type="RSBHeightFPNHead", in_channels=list(backbone.out_channels), channels=64)

    def build_config(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData,
                     work_dir: Path) -> dict[str, Any]:
        opts, st = data.options, data.fact("stats")
        ann = work_dir / "ann"
        ann.mkdir(parents=True, exist_ok=True)
        for name in ("train", "test"):
            (ann / f"{name}.json").write_text(json.dumps(data.samples(name)))
        card = self.card(spec)
        backbone_overrides: dict[str, Any] = {}
        if card is not None:  # the card's batch, accumulation, epochs, Adam + StepLR, drop path (no clipping)
            declared = dict(self.info.options)
            batch, lr = pc.card_batch(card, spec, opts, declared), pc.card_lr(card, spec, opts, declared)
            plan = data.derived["card_plan"] = pc.plan(card, spec, batch, lr, len(data.train),
                                               pc.changed_length(opts, declared, "epochs", "epochs"))
            max_iters = plan.max_iters
            self.imports = (*type(self).imports, *pc.imports(card))
            optim_wrapper = pc.optim_wrapper(card, plan)
            param_scheduler = pc.param_scheduler(card, plan)
            backbone_overrides.update(pc.drop_path_overrides(backbone, card.drop_path.value))
        else:  # the harness's short-run settings
            batch = spec.batch_size or int(opts["batch_size"])
            max_iters = spec.max_iters or math.ceil(len(data.train) / batch) * int(opts["epochs"])
            lr = spec.lr or float(opts["lr"])
            optim_wrapper = dict(optimizer=dict(type="AdamW", lr=lr, weight_decay=0.01), clip_grad=dict(max_norm=5.0))
            param_scheduler = schedule(max_iters, lr)

        def loader(name: str, train: bool) -> dict[str, Any]:
            return dict(batch_size=batch, num_workers=spec.num_workers,
                        sampler=dict(type="InfiniteSampler" if train else "DefaultSampler", shuffle=train),
                        dataset=dict(type="RSBEntryListDataset", data_root=str(data.root), ann_file=str(ann / f"{name}.json"),
                                     serialize_data=False,
                                     pipeline=[dict(type="RSBLoadHeightTile", crop=data.fact("crop"), train=train)]))

        return dict(
            default_scope=self.default_scope,
            model=dict(type="RSBHeightModel", backbone=self.backbone_config(spec, backbone, **backbone_overrides),
                       fed=[m for m in ("hr", "sar") if m in self.modalities],
                       decode_head=self.decode_head(data.options["head"], backbone),
                       window=data.fact("crop"), height_mean=st["height_mean"], height_scale=st["height_scale"],
                       data_preprocessor=dict(type="RSBHeightPreprocessor", sar_mean=st["sar_mean"], sar_std=st["sar_std"],
                                              rgb_mean=st["rgb_mean"], rgb_std=st["rgb_std"])),
            train_dataloader=loader("train", True),
            train_cfg=dict(by_epoch=False, max_iters=max_iters),
            test_dataloader=loader("test", False),
            test_evaluator=[dict(type="RSBHeightMetric"),
                            dict(type="RSBHeightWriter", output_dir=str(work_dir / "predictions")),
                            dict(type="DumpResults", out_file_path=str(work_dir / "predictions.pkl"))],
            test_cfg=dict(),
            optim_wrapper=optim_wrapper,
            param_scheduler=param_scheduler,
            **self.runtime_config(spec, max_iters),
        )

    def metric_value(self, metrics: dict[str, Any]) -> float:
        return float(metrics["height/RMSE"])

    def prediction_reader(self, predictions: Path, data: CheckedData, cfg: dict[str, Any]) -> Any:
        """A folder of single-band GeoTIFF height maps (m) named like the labels (``Pxxxx.tif``),
        one per scored tile and of its size (module docstring)."""
        from rsbench.run.scoring import find_prediction

        folder = Path(predictions)
        if not folder.is_dir():
            raise PredictionError(f"--predictions {folder}: expected a folder of Pxxxx.tif height maps")

        def read(sample: dict[str, Any]) -> None:
            gt = sample["height"].numpy()
            pred = read_height(find_prediction(folder, [str(sample["id"])], (".tif", ".tiff")), gt.shape)
            sample.update(pred=pred, stats=pixel_stats(pred, gt))

        return read

    def row_fields(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData) -> dict[str, Any]:
        adapter = ("none: RGB as 'hr' and SAR as 'sar'" if "sar" in self.modalities
                   else "optical-only: the backbone takes no SAR; the SAR tile is not fed")
        head = ("MaRS' released DecoderBlocks decoder on the last map" if data.options["head"] == "mars"
                else "uniform FPN-style decoder (64 ch)")
        split = (f"holdout {data.options['holdout_fraction']:g} of train (seed {data.options['split_seed']})"
                 if data.split == "holdout" else f"train all, scored on {data.split}")
        plan = data.derived.get("card_plan")  # set only where the run followed its card
        card = f"; card {pc.task_card(self.info).id} ({plan.describe()})" if plan is not None else ""
        st = data.fact("stats")
        return {"adapter": f"{adapter}; head {data.options['head']}: {head}; crop {data.fact('crop')} px, test windows "
                           f"{data.fact('crop')} px; {split}: {len(data.train)} train / {len(data.test)} scored tiles"
                           f"{card}",
                "normalization": f"optical mean={[round(v, 4) for v in st['rgb_mean']]} "
                                 f"std={[round(v, 4) for v in st['rgb_std']]}; SAR (x - {st['sar_mean']:.4g}) / "
                                 f"{st['sar_std']:.4g}; height target (h - {st['height_mean']:.4g}) / {st['height_scale']:.4g}"}
