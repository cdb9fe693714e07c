"""Multi-band, multi-modal image-level inputs for mmpretrain: a loader, a packer, a data
preprocessor and a classifier that carry ``{modality: tensor}`` dicts end to end.

mmpretrain's ``ImageClassifier`` assumes one image tensor; rsbench backbones take a dict
``{modality: (B, C, H, W)}`` (see :mod:`rsbench.plugin_api.backbone`). The pieces here are the smallest
set that keeps the dict intact:

* ``RSBLoadBands`` (transform) reads each modality's bands from GeoTIFFs with rasterio,
  resampling every band to one square grid (bilinear, rasterio ``out_shape``; the rule is
  recorded in the leaderboard row), optional random flips for training;
* ``RSBPackMultiModal`` (transform) packs ``inputs`` (a dict of float tensors) and a
  ``DataSample`` with the (single- or multi-) label;
* ``RSBMultiModalPreprocessor`` (model data preprocessor) stacks each modality over the batch
  and standardises it per band with mean/std given in the config;
* ``RSBMultiModalClassifier`` is ``RSBPooledClassifier`` (the backbone's ``forward_pooled``)
  whose preprocessor is the one above.

Samples are described in an annotation JSON written by the task (read by the core's
``RSBEntryListDataset``): a list of
``{"bands": {modality: [[relative_path, band_index_1based], ...]}, "gt_label": [..]}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.model import BaseDataPreprocessor
from mmpretrain.registry import MODELS, TRANSFORMS
from mmpretrain.structures import DataSample

from rsbench.errors import DataLayoutError
from rsbench.io import raster
from rsbench_classification.classifier import PooledClassifier


def read_band(path: Path, index: int, size: int) -> np.ndarray:
    """One band of a GeoTIFF as float32, resampled bilinearly to ``size`` x ``size``."""
    if not path.is_file():
        raise DataLayoutError(f"{path}: band file missing (expected a GeoTIFF)")
    return raster.read_band(path, index, out_shape=(size, size), resampling="bilinear").astype(np.float32)


@TRANSFORMS.register_module(name="RSBLoadBands")
class LoadBands(BaseTransform):
    """Read and resample the bands; keeps up to ``cache_mb`` of resampled bands in memory, since
    opening one small GeoTIFF per band (14 per BigEarthNet-MM patch) dominates epoch time."""

    def __init__(self, size: int, flip: bool = False, cache_mb: int = 256) -> None:
        self.size = int(size)
        self.flip = flip
        self.budget = int(cache_mb) * 2**20
        self.cache: dict[tuple[str, int], np.ndarray] = {}
        self.used = 0

    def band(self, path: Path, index: int) -> np.ndarray:
        key = (str(path), index)
        if key in self.cache:
            return self.cache[key]
        array = read_band(path, index, self.size)
        if self.used + array.nbytes <= self.budget:
            self.cache[key] = array
            self.used += array.nbytes
        return array

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        root = Path(results["data_root"])
        arrays = {m: np.stack([self.band(root / p, int(i)) for p, i in bands])
                  for m, bands in results["bands"].items()}
        if self.flip:
            if np.random.rand() < 0.5:
                arrays = {m: a[:, :, ::-1] for m, a in arrays.items()}
            if np.random.rand() < 0.5:
                arrays = {m: a[:, ::-1, :] for m, a in arrays.items()}
        results["inputs"] = {m: torch.from_numpy(np.ascontiguousarray(a)) for m, a in arrays.items()}
        return results


@TRANSFORMS.register_module(name="RSBPackMultiModal")
class PackMultiModal(BaseTransform):
    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        sample = DataSample()
        if "gt_label" in results:
            sample.set_gt_label(list(results["gt_label"]))
        sample.set_metainfo(dict(sample_idx=results.get("sample_idx", -1)))
        return dict(inputs=results["inputs"], data_samples=sample)


@MODELS.register_module(name="RSBMultiModalPreprocessor")
class MultiModalPreprocessor(BaseDataPreprocessor):
    """Stack ``{modality: [(C, H, W)]}`` (or a list of dicts) to ``{modality: (B, C, H, W)}`` and standardise per band."""

    def __init__(self, mean: Mapping[str, Sequence[float]], std: Mapping[str, Sequence[float]],
                 batch_augments: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for m in mean:
            self.register_buffer(f"mean_{m}", torch.tensor(mean[m], dtype=torch.float32).view(-1, 1, 1), False)
            self.register_buffer(f"std_{m}", torch.tensor(std[m], dtype=torch.float32).view(-1, 1, 1), False)
        self.modalities = tuple(mean)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = data["inputs"]
        out: dict[str, torch.Tensor] = {}
        for m in self.modalities:
            # mmengine's pseudo_collate turns the list of dicts into a dict of lists
            items = inputs[m] if isinstance(inputs, Mapping) else [sample[m] for sample in inputs]
            x = torch.stack(list(items)).float()
            out[m] = (x - getattr(self, f"mean_{m}")) / getattr(self, f"std_{m}")
        return dict(inputs=out, data_samples=data.get("data_samples"))


@MODELS.register_module(name="RSBMultiModalClassifier")
class MultiModalClassifier(PooledClassifier):
    """``RSBPooledClassifier`` fed ``{modality: tensor}`` by ``RSBMultiModalPreprocessor``."""
