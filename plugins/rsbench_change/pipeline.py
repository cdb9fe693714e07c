"""Bi-temporal data path for mmseg, after open-cd's MultiImg* transforms: every date is loaded,
cropped and flipped together, then the dates are concatenated on the channel axis, so mmseg's
``SegDataPreProcessor`` (with per-date repeated mean/std), slide inference and ``IoUMetric`` work
unchanged on one (sum of date channels, H, W) tensor per sample."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from mmengine.structures import PixelData
from mmseg.registry import DATASETS, TRANSFORMS
from mmseg.structures import SegDataSample

from rsbench.errors import DataLayoutError
from rsbench_change.io import read_date, read_raster


@DATASETS.register_module(name="RSBChangeDataset")
class ChangeDataset(BaseDataset):
    """Samples from a JSON list written by the task: ``{"id", "dates": [[files], ...], "label",
    "doy", "window"}``; ``metainfo`` carries ``classes`` for IoUMetric. ``window`` ``[y, x, h, w]``
    (optional) makes the sample that part of its files: WHU-CD's official whole-split scenes are
    tiled into windows rather than cut into files."""

    def load_data_list(self) -> list[dict[str, Any]]:
        with open(self.ann_file) as f:
            samples = json.load(f)
        return [dict(img_path=s["id"], date_files=s["dates"], seg_map_path=s.get("label"),
                     doy=s.get("doy"), window=s.get("window"), reduce_zero_label=False, seg_fields=[])
                for s in samples]


@TRANSFORMS.register_module(name="RSBLoadChangePair")
class LoadChangePair(BaseTransform):
    """Read each date as (H, W, C) float32 and the label mapped through ``label_map``.

    ``repeat[i]`` tiles date ``i``'s channels (the documented adapter that feeds a one-band SAR
    date to an RGB backbone); a label value absent from ``label_map`` is a data error naming the
    file (e.g. LEVIR-CD labels must be 0/255). A sample's ``window`` ``[y, x, h, w]`` reads only
    that part of every date and the label (windowed GeoTIFF reads)."""

    def __init__(self, label_map: Mapping[int, int] | None = None, repeat: Sequence[int] = ()) -> None:
        self.label_map = {int(k): int(v) for k, v in (label_map or {}).items()}
        self.repeat = list(repeat)

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        window = results.get("window")
        imgs = [read_date(files, window) for files in results["date_files"]]
        for i, r in enumerate(self.repeat):
            if r > 1:
                imgs[i] = np.concatenate([imgs[i]] * r, axis=-1)
        if len({im.shape[:2] for im in imgs}) > 1:
            raise DataLayoutError("dates differ in size: " + ", ".join(
                f"{files[0]} {im.shape[0]}x{im.shape[1]}" for files, im in zip(results["date_files"], imgs)))
        results["imgs"] = imgs
        results["img_shape"] = results["ori_shape"] = imgs[0].shape[:2]
        if results.get("seg_map_path"):
            raw = read_raster(results["seg_map_path"], window)[..., 0]
            if raw.shape != imgs[0].shape[:2]:
                raise DataLayoutError(f"{results['seg_map_path']}: label is {raw.shape[0]}x{raw.shape[1]}, "
                                      f"images are {imgs[0].shape[0]}x{imgs[0].shape[1]}")
            results["gt_seg_map"] = self.map_label(raw, results["seg_map_path"])
            results["seg_fields"] = ["gt_seg_map"]
        return results

    def map_label(self, raw: np.ndarray, path: str) -> np.ndarray:
        if not self.label_map:
            return raw.astype(np.uint8)
        out = np.full(raw.shape, 255, np.uint8)
        for src, dst in self.label_map.items():
            out[raw == src] = dst
        unknown = sorted(set(np.unique(raw[out == 255]).tolist()) - {k for k, v in self.label_map.items() if v == 255})
        if unknown:
            raise DataLayoutError(f"{path}: label values {unknown[:10]} not allowed; expected only "
                                  f"{', '.join(map(str, sorted(self.label_map)))}")
        return out


@TRANSFORMS.register_module(name="RSBChangeRandomCrop")
class ChangeRandomCrop(BaseTransform):
    """The same random ``crop_size`` window from every date and the label (no-op when smaller)."""

    def __init__(self, crop_size: int) -> None:
        self.crop_size = int(crop_size)

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        h, w = results["imgs"][0].shape[:2]
        ch, cw = min(self.crop_size, h), min(self.crop_size, w)
        y = np.random.randint(0, h - ch + 1)
        x = np.random.randint(0, w - cw + 1)
        results["imgs"] = [im[y:y + ch, x:x + cw] for im in results["imgs"]]
        for key in results.get("seg_fields", []):
            results[key] = results[key][y:y + ch, x:x + cw]
        results["img_shape"] = (ch, cw)
        return results


@TRANSFORMS.register_module(name="RSBChangeRandomFlip")
class ChangeRandomFlip(BaseTransform):
    """Horizontal and vertical flips, each with ``prob``, applied to all dates and the label."""

    def __init__(self, prob: float = 0.5) -> None:
        self.prob = prob

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        for axis in (1, 0):
            if np.random.rand() < self.prob:
                results["imgs"] = [np.flip(im, axis) for im in results["imgs"]]
                for key in results.get("seg_fields", []):
                    results[key] = np.flip(results[key], axis)
        return results


@TRANSFORMS.register_module(name="RSBPackChangeInputs")
class PackChangeInputs(BaseTransform):
    """Concatenate the dates on the channel axis (open-cd's ``MultiImgPackSegInputs``) and pack the
    label into an mmseg ``SegDataSample``; ``doy`` (day of year per date) and ``window`` (the part
    of a large scene the sample is, for the change-map writer and ``rsbench score``) ride in the
    metainfo."""

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        img = np.concatenate(results["imgs"], axis=-1)
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        sample = SegDataSample()
        if "gt_seg_map" in results:
            seg = np.ascontiguousarray(results["gt_seg_map"])[None].astype(np.int64)
            sample.gt_sem_seg = PixelData(data=torch.from_numpy(seg))
        h, w = img.shape[:2]
        sample.set_metainfo(dict(
            img_path=results["img_path"], seg_map_path=results.get("seg_map_path"),
            ori_shape=results["ori_shape"], img_shape=(h, w), pad_shape=(h, w), scale_factor=(1.0, 1.0),
            flip=False, flip_direction=None, reduce_zero_label=False,
            doy=list(results["doy"]) if results.get("doy") else None,
            window=list(results["window"]) if results.get("window") else None,
        ))
        return dict(inputs=inputs, data_samples=sample)
