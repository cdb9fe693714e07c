"""The mmseg components rsbench registers for segmentation (importing this module registers them).

* ``RSBSegDataset``: a ``BaseSegDataset`` whose samples come from the run's split file (JSON
  written by the task), so any official layout is read in place, with no converted copy.
* ``RSBLoadSample``: loads one sample through its dataset module's ``load`` (labels decoded to
  class ids there), stacks the fed modalities along channels in a fixed order, and cuts the
  sample's patch window (padding image 0, label 255, as mmseg's converters do). A reader marked
  ``windowed`` is given the window and reads only that patch (``common.read_window``).
* ``RSBEncoderDecoder``: mmseg's ``EncoderDecoder`` whose backbone receives a dict
  ``{modality: (B, C_m, H, W)}``, split from the stacked channels. Channel stacking is what lets
  several modalities travel through mmseg's unchanged transforms, data preprocessor (per-band
  mean/std), padding and slide inference; the split is the one place they become a dict again.
  Time series (``temporal`` set) travel the same way, frames stacked frame-major, and come out as
  (B, T, C, H, W) with the samples' ``dates`` and ``latlon`` (from the data samples' metainfo) for
  a temporal backbone, or reduced for a single-image one (``mean``: per-frame features averaged
  over time; ``last``: the last frame).
* ``RSBSegMetric``: mmseg's ``IoUMetric`` that also returns per-class values and the mean over a
  chosen subset of classes (DeepGlobe's road IoU, Potsdam's mF1 without clutter), computed by
  ``IoUMetric.total_area_to_metrics`` on the same accumulated areas (each sample's areas from one
  ``bincount``: the library's values at about a third of its time).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmseg.datasets import BaseSegDataset
from mmseg.evaluation import IoUMetric
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import DATASETS, METRICS, MODELS, TRANSFORMS
from torch import Tensor

from rsbench.plugin_api.catalog import load_object
from rsbench_segmentation.common import IGNORE, crop_pad


@DATASETS.register_module(name="RSBSegDataset")
class SplitFileSegDataset(BaseSegDataset):
    """Samples from ``ann_file``: a JSON list of sample dicts (see ``common.sample``)."""

    def __init__(self, ann_file: str, classes: Sequence[str], palette: Sequence[Sequence[int]],
                 ignore_index: int = IGNORE, **kwargs: Any) -> None:
        super().__init__(ann_file=ann_file, metainfo=dict(classes=tuple(classes), palette=[list(c) for c in palette]),
                         ignore_index=ignore_index, reduce_zero_label=False, **kwargs)

    def load_data_list(self) -> list[dict[str, Any]]:
        with open(self.ann_file) as f:
            samples = json.load(f)
        return [dict(img_path=s["name"] + ".png", seg_map_path=s["label"], sample=s, label_map=None,
                     reduce_zero_label=False, seg_fields=[]) for s in samples]


@TRANSFORMS.register_module(name="RSBLoadSample")
class LoadSample(BaseTransform):
    """``img``: the fed modalities stacked along channels (float32 H x W x sum(C)); ``gt_seg_map``:
    class ids (uint8, 255 ignored). ``reader`` is the dataset module's ``load`` ("pkg.mod:fn").
    ``channels`` keeps, per modality, only those channels of what the reader returns (the
    backbone's bands of every frame); a sample's ``dates`` and ``latlon`` are passed on."""

    def __init__(self, reader: str, modalities: Sequence[str],
                 channels: dict[str, Sequence[int]] | None = None) -> None:
        self.reader = reader
        self.modalities = tuple(modalities)
        self.channels = {m: list(c) for m, c in (channels or {}).items()}

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        sample = results["sample"]
        reader = load_object(self.reader)
        window = sample.get("window")
        if window is not None and getattr(reader, "windowed", False):
            arrays, label = reader(sample, self.modalities, window=window)  # the patch only, padded
            window = None
        else:
            arrays, label = reader(sample, self.modalities)
        arrays = {m: a[..., self.channels[m]] if m in self.channels else a for m, a in arrays.items()}
        for key in ("dates", "latlon"):
            if key in sample:
                results[key] = sample[key]
        parts = [crop_pad(arrays[m].astype(np.float32, copy=False), window, 0.0) for m in self.modalities]
        img = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)
        results["img"] = img
        results["gt_seg_map"] = crop_pad(label.astype(np.uint8), window, IGNORE)
        results["seg_fields"].append("gt_seg_map")
        results["img_shape"] = results["ori_shape"] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reader={self.reader!r}, modalities={self.modalities})"


@MODELS.register_module(name="RSBEncoderDecoder")
class ModalityEncoderDecoder(EncoderDecoder):
    """``modalities``: [[name, bands], ...] or, with ``temporal``, [[name, bands, frames], ...]
    in the stacking order of ``RSBLoadSample``. ``temporal``: None, ``native``, ``mean``, ``last``."""

    def __init__(self, modalities: Sequence[Sequence[Any]], temporal: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.split_spec = [(str(m[0]), int(m[1]), int(m[2]) if len(m) > 2 else 1) for m in modalities]
        if temporal not in (None, "native", "mean", "last"):
            raise ValueError(f"RSBEncoderDecoder: temporal={temporal!r}; expected None, native, mean or last")
        self.temporal = temporal
        self._metas: list[dict[str, Any]] = []

    def split_modalities(self, inputs: Tensor) -> dict[str, Tensor]:
        expected = sum(c * t for _, c, t in self.split_spec)
        if inputs.shape[1] != expected:
            raise ValueError(f"RSBEncoderDecoder: expected {expected} stacked channels "
                             f"({self.split_spec}); got shape {tuple(inputs.shape)}")
        out, start = {}, 0
        for name, bands, frames in self.split_spec:
            x = inputs[:, start:start + bands * frames]
            out[name] = x.unflatten(1, (frames, bands)) if self.temporal else x
            start += bands * frames
        return out

    # The backbone call sees only the tensor; the samples' dates and (lat, lon) are taken from
    # the metainfo of the batch being encoded (training and both inference modes pass here).
    def loss(self, inputs: Tensor, data_samples: list) -> dict:
        self._metas = [s.metainfo for s in data_samples]
        return super().loss(inputs, data_samples)

    def encode_decode(self, inputs: Tensor, batch_img_metas: list[dict]) -> Tensor:
        self._metas = list(batch_img_metas)
        return super().encode_decode(inputs, batch_img_metas)

    def time_inputs(self, device: torch.device) -> dict[str, Any]:
        """``dates`` {modality: (B, T) day of year} and ``latlon`` (B, 2) of the current batch."""
        out: dict[str, Any] = {}
        if self._metas and all("dates" in m for m in self._metas):
            out["dates"] = {name: torch.as_tensor([m["dates"][name] for m in self._metas], device=device)
                            for name, _, _ in self.split_spec}
        if self._metas and all(m.get("latlon") is not None for m in self._metas):
            out["latlon"] = torch.as_tensor([m["latlon"] for m in self._metas], dtype=torch.float32, device=device)
        return out

    def extract_feat(self, inputs: Tensor) -> list[Tensor]:
        x = self.split_modalities(inputs)
        if self.temporal == "native":
            feats = self.backbone({**x, **self.time_inputs(inputs.device)})
        elif self.temporal == "last":
            feats = self.backbone({m: v[:, -1] for m, v in x.items()})
        elif self.temporal == "mean":
            lengths = {m: v.shape[1] for m, v in x.items()}
            if len(set(lengths.values())) != 1:
                raise ValueError(f"RSBEncoderDecoder: temporal mean needs one frame count for all fed "
                                 f"modalities; got {lengths}")
            b, t = inputs.shape[0], next(iter(lengths.values()))
            per_frame = self.backbone({m: v.flatten(0, 1) for m, v in x.items()})
            feats = tuple(f.unflatten(0, (b, t)).mean(dim=1) for f in per_frame)
        else:
            feats = self.backbone(x)
        return list(self.neck(feats)) if self.with_neck else list(feats)


@METRICS.register_module(name="RSBSegMetric")
class SegMetric(IoUMetric):
    """``IoUMetric`` plus ``"<metric>.<class>"`` for every class and ``"m<metric>.scored"``: the
    mean over ``scored_classes`` (all classes when empty), both rounded like mmseg's summary."""

    def __init__(self, scored_classes: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scored_classes = tuple(scored_classes)

    @staticmethod
    def intersect_and_union(pred_label: torch.Tensor, label: torch.Tensor, num_classes: int,
                            ignore_index: int) -> tuple[torch.Tensor, ...]:
        """The library's four areas, identical values, from one ``bincount`` of (label, pred)
        pairs instead of a masked copy and three ``histc`` calls. Labels equal to
        ``ignore_index`` get a row of their own and values outside ``[0, num_classes)`` a
        row/column of their own, so each area counts exactly the pixels the library's does."""
        c = num_classes
        lab, pred = label.long(), pred_label.long()
        lab_bin = torch.where(lab == ignore_index, c + 1, torch.where((lab >= 0) & (lab < c), lab, c))
        pred_bin = torch.where((pred >= 0) & (pred < c), pred, c)
        pairs = torch.bincount((lab_bin * (c + 1) + pred_bin).flatten(), minlength=(c + 2) * (c + 1))
        counts = pairs.reshape(c + 2, c + 1)
        area_intersect = counts.diagonal()[:c].float().cpu()
        area_label = counts[:c].sum(1).float().cpu()
        area_pred_label = counts[:c + 1, :c].sum(0).float().cpu()
        area_union = area_pred_label + area_label - area_intersect
        return area_intersect, area_union, area_pred_label, area_label

    def compute_metrics(self, results: list) -> dict[str, float]:
        metrics = super().compute_metrics(results)
        areas = [sum(part) for part in zip(*results)]
        per_class = self.total_area_to_metrics(*areas, self.metrics, self.nan_to_num, self.beta)
        classes = list(self.dataset_meta["classes"])
        scored = [classes.index(c) for c in (self.scored_classes or classes)]
        for name, values in per_class.items():
            if name == "aAcc":
                continue
            values = np.asarray(values, dtype=np.float64)
            for i, cls in enumerate(classes):
                metrics[f"{name}.{cls}"] = float(np.round(values[i] * 100, 2))
            metrics[f"m{name}.scored"] = float(np.round(np.nanmean(values[scored]) * 100, 2))
        return metrics
