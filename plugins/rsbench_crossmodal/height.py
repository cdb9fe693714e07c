"""DFC23 track 2 building height regression: data pieces, decoder model, metric and the Task.

Protocol (MaRS released dfc23 code, adapted): train on a random 80/20 split of the official
``train`` tiles (split ``holdout``: sorted ids, ``numpy.random.RandomState(42).permutation``, the
first ceil(20 %) held out, which is what scikit-learn's ``train_test_split(test_size=0.2,
random_state=42)`` does), L1 loss, random crops of ``img_size`` for training; at test every tile
is cut into non-overlapping ``img_size`` windows (one window at the official 512 px).
Splits ``val`` / ``test`` train on all of ``train`` and score that split.

``RSBHeightModel``: the backbone encodes what it takes (MaRS-like: ``{"hr", "sar"}`` fused;
RGB-only backbones: adapter ``optical-only``, the SAR tile is not fed); an FPN-style decoder
(1x1 lateral convs to 64 channels, upsampled to the finest map, summed, 3x3 refine) is upsampled
bilinearly to the input and predicts height ``out * scale + mean`` (train statistics), clamped at
0 m for prediction.

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
from mmengine.dataset import BaseDataset
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseDataPreprocessor, BaseModel
from mmengine.registry import DATASETS, METRICS, MODELS, TRANSFORMS
from torch import Tensor, nn

from rsbench.catalog import BackboneInfo
from rsbench.errors import DataLayoutError, PredictionError
from rsbench.raster import raster_info, read_raster
from rsbench.spec import RunSpec
from rsbench.task import Task
from rsbench_crossmodal.dfc23 import read_tif, write_tif
from rsbench_crossmodal.guso_tasks import schedule
from rsbench_crossmodal.registration import RGB_MEAN, RGB_STD

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


@DATASETS.register_module(name="RSBHeightDataset")
class HeightDataset(BaseDataset):
    def load_data_list(self) -> list[dict[str, Any]]:
        return [dict(e, data_root=self.data_root) for e in json.loads(Path(self.ann_file).read_text())]


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
    """Stack; optical standardised with ImageNet statistics, SAR with the train tiles' mean / std."""

    def __init__(self, sar_mean: float, sar_std: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sar_mean, self.sar_std = float(sar_mean), float(sar_std)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs, samples = data["inputs"], data["data_samples"]
        rgb = torch.stack(list(inputs["hr"])).float()
        sar = torch.stack(list(inputs["sar"])).float()
        mean = torch.tensor(RGB_MEAN, device=rgb.device).view(1, 3, 1, 1)
        std = torch.tensor(RGB_STD, device=rgb.device).view(1, 3, 1, 1)
        return dict(inputs=dict(hr=(rgb - mean) / std, sar=(sar - self.sar_mean) / self.sar_std),
                    data_samples=dict(id=list(samples["id"]), height=torch.stack(list(samples["height"])).float()))


@MODELS.register_module(name="RSBHeightModel")
class HeightModel(BaseModel):
    def __init__(self, backbone: dict, fed: Sequence[str], in_channels: Sequence[int], window: int,
                 height_mean: float, height_scale: float, channels: int = 64,
                 data_preprocessor: dict | None = None, init_cfg: Any = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.fed, self.window = tuple(fed), int(window)
        self.height_mean, self.height_scale = float(height_mean), float(height_scale)
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.refine = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.GELU(),
                                    nn.Conv2d(channels, 1, 3, padding=1))

    def regress(self, inputs: dict[str, Tensor]) -> Tensor:
        """(B, H, W) heights in metres (unclamped) for one window."""
        maps = self.backbone({m: inputs[m] for m in self.fed})
        size = maps[0].shape[-2:]
        x = sum(F.interpolate(lat(m), size=size, mode="bilinear", align_corners=False)
                for lat, m in zip(self.lateral, maps))
        x = F.interpolate(self.refine(x), size=inputs["hr"].shape[-2:], mode="bilinear", align_corners=False)
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
    imports = ("mmpretrain.models", "rsbench_crossmodal.height")

    def check_data(self, root: Path, spec: RunSpec) -> dict[str, Any]:
        opts = spec.with_options(dict(self.info.options))
        data = self.dataset.check(root)
        split = spec.split or self.info.default_split
        if split == "holdout":
            train, test = holdout(data["samples"]["train"], float(opts["holdout_fraction"]), int(opts["split_seed"]))
        else:
            rows = data["samples"].get(split)
            if rows is None:
                raise DataLayoutError(f"{Path(root) / split}: split folder missing (needed for --split {split})")
            if any("height" not in r for r in rows):
                raise DataLayoutError(f"{Path(root) / split / 'height'}: folder missing; split {split!r} cannot be scored")
            train, test = data["samples"]["train"], rows
        crop = int(opts["img_size"])
        for row in train + test:
            if row["size"] < crop or row["size"] % crop:
                raise DataLayoutError(f"{Path(root) / row['rgb']}: {row['size']} px is not a multiple of "
                                      f"the crop img_size={crop}")
        data.update(options=opts, crop=crop, train=train, test=test, split=split, stats=self.stats(Path(root), train, int(opts["stats_samples"])))
        return data

    @staticmethod
    def stats(root: Path, rows: list[dict[str, Any]], k: int) -> dict[str, float]:
        """SAR mean / std and height mean / std over the first ``k`` train tiles (sorted ids)."""
        rows = sorted(rows, key=lambda r: r["id"])[:k]
        sar = np.concatenate([read_tif(root / r["sar"]).ravel() for r in rows])
        height = np.concatenate([read_tif(root / r["height"]).ravel() for r in rows])
        return dict(sar_mean=float(sar.mean()), sar_std=float(sar.std()) or 1.0,
                    height_mean=float(height.mean()), height_scale=float(height.std()) or 1.0)

    def build_config(self, spec: RunSpec, backbone: BackboneInfo, data: dict[str, Any],
                     work_dir: Path) -> dict[str, Any]:
        opts, st = data["options"], data["stats"]
        ann = work_dir / "ann"
        ann.mkdir(parents=True, exist_ok=True)
        for name in ("train", "test"):
            (ann / f"{name}.json").write_text(json.dumps(data[name]))
        batch = spec.batch_size or int(opts["batch_size"])
        max_iters = spec.max_iters or math.ceil(len(data["train"]) / batch) * int(opts["epochs"])
        lr = spec.lr or float(opts["lr"])

        def loader(name: str, train: bool) -> dict[str, Any]:
            return dict(batch_size=batch, num_workers=spec.num_workers,
                        sampler=dict(type="InfiniteSampler" if train else "DefaultSampler", shuffle=train),
                        dataset=dict(type="RSBHeightDataset", data_root=data["root"], ann_file=str(ann / f"{name}.json"),
                                     serialize_data=False,
                                     pipeline=[dict(type="RSBLoadHeightTile", crop=data["crop"], train=train)]))

        return dict(
            default_scope=self.default_scope,
            model=dict(type="RSBHeightModel", backbone=self.backbone_config(spec, backbone),
                       fed=[m for m in ("hr", "sar") if m in self.modalities], in_channels=list(backbone.out_channels),
                       window=data["crop"], height_mean=st["height_mean"], height_scale=st["height_scale"],
                       data_preprocessor=dict(type="RSBHeightPreprocessor", sar_mean=st["sar_mean"], sar_std=st["sar_std"])),
            train_dataloader=loader("train", True),
            train_cfg=dict(by_epoch=False, max_iters=max_iters),
            test_dataloader=loader("test", False),
            test_evaluator=[dict(type="RSBHeightMetric"),
                            dict(type="RSBHeightWriter", output_dir=str(work_dir / "predictions")),
                            dict(type="DumpResults", out_file_path=str(work_dir / "predictions.pkl"))],
            test_cfg=dict(),
            optim_wrapper=dict(optimizer=dict(type="AdamW", lr=lr, weight_decay=0.01), clip_grad=dict(max_norm=5.0)),
            param_scheduler=schedule(max_iters, lr),
            **self.runtime_config(spec, max_iters),
        )

    def metric_value(self, metrics: dict[str, Any]) -> float:
        return float(metrics["height/RMSE"])

    def prediction_reader(self, predictions: Path, data: dict[str, Any], cfg: dict[str, Any]) -> Any:
        """A folder of single-band GeoTIFF height maps (m) named like the labels (``Pxxxx.tif``),
        one per scored tile and of its size (module docstring)."""
        from rsbench.scoring import find_prediction

        folder = Path(predictions)
        if not folder.is_dir():
            raise PredictionError(f"--predictions {folder}: expected a folder of Pxxxx.tif height maps")

        def read(sample: dict[str, Any]) -> None:
            gt = sample["height"].numpy()
            pred = read_height(find_prediction(folder, [str(sample["id"])], (".tif", ".tiff")), gt.shape)
            sample.update(pred=pred, stats=pixel_stats(pred, gt))

        return read

    def row_fields(self, spec: RunSpec, backbone: BackboneInfo, data: dict[str, Any]) -> dict[str, Any]:
        adapter = ("none: RGB as 'hr' and SAR as 'sar'" if "sar" in self.modalities
                   else "optical-only: the backbone takes no SAR; the SAR tile is not fed")
        split = (f"holdout {data['options']['holdout_fraction']:g} of train (seed {data['options']['split_seed']})"
                 if data["split"] == "holdout" else f"train all, scored on {data['split']}")
        st = data["stats"]
        return {"adapter": f"{adapter}; crop {data['crop']} px, test windows {data['crop']} px; {split}: "
                           f"{len(data['train'])} train / {len(data['test'])} scored tiles",
                "normalization": f"optical mean={list(RGB_MEAN)} std={list(RGB_STD)}; SAR (x - {st['sar_mean']:.4g}) / "
                                 f"{st['sar_std']:.4g}; height target (h - {st['height_mean']:.4g}) / {st['height_scale']:.4g}"}
