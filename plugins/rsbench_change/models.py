"""open-cd's change-detection core, re-implemented on mmseg (open-cd is not on PyPI):

* ``RSBFeatureFusionNeck``: fuses the two dates' pyramids per level (concat | sum | diff | abs_diff).
* ``RSBSiamEncoderDecoder``: splits the channel-stacked input into dates and runs the backbone in
  one of three ways (``temporal``):
  ``siamese``    the shared backbone once per date, then the fusion neck (open-cd's SiamEncoderDecoder);
  ``multimodal`` one call with ``{modality_date1: x1, modality_date2: x2}`` (MaRS: optical
                 before, SAR after), no neck: the backbone's own cross-modal fusion compares them;
  ``native``     one call with ``{modality: (B, T, C, H, W), "dates": {modality: (B, T)}}``, the
                 backbone's temporal path (SkySense), no neck. SkySense's fusion is order-free
                 (a function of the set of (frame, day) pairs), so this map is the same for both
                 date orders: right for binary change, which is symmetric; semantic change, which
                 must say which date a class belongs to, adds per-date features
                 (:class:`rsbench_change.dyna_cd.SemanticChangeSegmentor`).
* ``RSBChangeMetric``: mmseg's IoUMetric plus per-class IoU/F-score/precision/recall keys
  (``IoU.changed``...), computed by IoUMetric's own ``total_area_to_metrics`` — IoUMetric alone
  returns only class means, and change detection reports the change class. Its ``output_dir``
  maps are named and encoded as the dataset's submission (:mod:`rsbench_change.predictions`),
  which ``rsbench score`` reads back.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmengine.model import BaseModule
from mmseg.evaluation import IoUMetric
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import METRICS, MODELS
from torch import Tensor

from rsbench_change.predictions import assemble_scenes, prediction_stem, scene_stem, write, write_part

POLICIES = ("concat", "sum", "diff", "abs_diff")
TEMPORAL = ("siamese", "multimodal", "native")


@MODELS.register_module(name="RSBFeatureFusionNeck")
class FeatureFusionNeck(BaseModule):
    """Per-level fusion of two pyramids; ``concat`` doubles the channels (heads must expect it)."""

    def __init__(self, policy: str = "concat", init_cfg: Any = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if policy not in POLICIES:
            raise ValueError(f"fusion policy {policy!r}: expected one of {', '.join(POLICIES)}")
        self.policy = policy

    def forward(self, x1: Sequence[Tensor], x2: Sequence[Tensor]) -> tuple[Tensor, ...]:
        ops = {"concat": lambda a, b: torch.cat([a, b], dim=1), "sum": torch.add,
               "diff": torch.sub, "abs_diff": lambda a, b: (a - b).abs()}
        return tuple(ops[self.policy](a, b) for a, b in zip(x1, x2))


@MODELS.register_module(name="RSBSiamEncoderDecoder")
class SiamEncoderDecoder(EncoderDecoder):
    """mmseg's EncoderDecoder over channel-stacked dates.

    ``dates``: one ``{"modality": m, "channels": c}`` per date, in channel order. The day of year
    per date (``doy`` in the sample metainfo) reaches the backbone in ``native`` mode; mmseg's
    ``extract_feat`` sees only the tensor, so ``loss``/``encode_decode`` keep the batch metas.
    """

    def __init__(self, dates: Sequence[Mapping[str, Any]], temporal: str = "siamese", **kwargs: Any) -> None:
        if temporal not in TEMPORAL:
            raise ValueError(f"temporal {temporal!r}: expected one of {', '.join(TEMPORAL)}")
        if temporal == "siamese" and not kwargs.get("neck"):
            raise ValueError("temporal='siamese' needs a fusion neck (neck=dict(type='RSBFeatureFusionNeck'))")
        if temporal == "native" and len({d["modality"] for d in dates}) > 1:
            raise ValueError(f"temporal='native' needs one modality for all dates; got {list(dates)}")
        super().__init__(**kwargs)
        self.dates = [dict(d) for d in dates]
        self.temporal = temporal
        self._metas: list[dict[str, Any]] = []

    def split_dates(self, inputs: Tensor) -> list[Tensor]:
        sizes = [int(d["channels"]) for d in self.dates]
        if inputs.shape[1] != sum(sizes):
            raise ValueError(f"change input has {inputs.shape[1]} channels; the dates "
                             f"{self.dates} need {sum(sizes)}")
        return list(torch.split(inputs, sizes, dim=1))

    def _doy(self, batch: int, device: torch.device) -> Tensor | None:
        doy = [m.get("doy") for m in self._metas]
        if len(doy) != batch or any(d is None for d in doy):
            return None
        return torch.as_tensor(doy, dtype=torch.long, device=device)

    def extract_feat(self, inputs: Tensor) -> list[Tensor]:  # type: ignore[override]
        xs = self.split_dates(inputs)
        if self.temporal == "siamese":
            feats = [self.backbone({d["modality"]: x}) for d, x in zip(self.dates, xs)]
            return list(self.neck(feats[0], feats[1]))
        if self.temporal == "multimodal":
            return list(self.backbone({d["modality"]: x for d, x in zip(self.dates, xs)}))
        m = self.dates[0]["modality"]
        batch: dict[str, Any] = {m: torch.stack(xs, dim=1)}
        doy = self._doy(inputs.shape[0], inputs.device)
        if doy is not None:
            batch["dates"] = {m: doy}
        return list(self.backbone(batch))

    def loss(self, inputs: Tensor, data_samples: Any) -> dict:
        self._metas = [s.metainfo for s in data_samples]
        return super().loss(inputs, data_samples)

    def encode_decode(self, inputs: Tensor, batch_img_metas: list[dict]) -> Tensor:
        self._metas = list(batch_img_metas)
        return super().encode_decode(inputs, batch_img_metas)

    def _forward(self, inputs: Tensor, data_samples: Any = None) -> Tensor:
        self._metas = [s.metainfo for s in data_samples] if data_samples else []
        return super()._forward(inputs, data_samples)


@METRICS.register_module(name="RSBChangeMetric")
class ChangeMetric(IoUMetric):
    """IoUMetric whose result also holds ``<Metric>.<class>`` for every class (in percent, rounded
    to 2 decimals exactly as IoUMetric rounds its means).

    ``naming`` (the dataset) and ``label_map`` name and encode the saved maps as the dataset's
    submission (IoUMetric would write class ids named after the first date's file)."""

    def __init__(self, naming: str = "", label_map: Mapping[int, int] | None = None, **kwargs: Any) -> None:
        self.naming = naming
        self.label_map = {int(k): int(v) for k, v in (label_map or {}).items()}
        super().__init__(**kwargs)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        output_dir, self.output_dir = self.output_dir, None
        try:
            super().process(data_batch, data_samples)  # the confusion areas only
        finally:
            self.output_dir = output_dir
        if output_dir is None:
            return
        for s in data_samples:
            stem = prediction_stem(self.naming, s["img_path"])
            write(Path(output_dir) / f"{stem}.png", s["pred_sem_seg"]["data"].squeeze(0).cpu().numpy(),
                  self.label_map)

    def compute_metrics(self, results: list) -> dict[str, float]:
        metrics = super().compute_metrics(results)
        if self.format_only or not results:
            return metrics
        areas = [sum(part) for part in zip(*results)]
        per_class = self.total_area_to_metrics(*areas, self.metrics, self.nan_to_num, self.beta)
        per_class.pop("aAcc", None)
        out: dict[str, float] = OrderedDict(metrics)
        for name, values in per_class.items():
            values = values.numpy() if isinstance(values, Tensor) else np.asarray(values)
            for cls, v in zip(self.dataset_meta["classes"], values):
                out[f"{name}.{cls}"] = round(float(v) * 100, 2)
        return out


@METRICS.register_module(name="RSBSceneChangeMetric")
class SceneChangeMetric(ChangeMetric):
    """``ChangeMetric`` for test samples that are windows of large scenes (WHU-CD's official
    whole-split scenes): the scores are the same pixel sums, but the saved change map is one per
    scene, named like its label (``change_label.tif``), as ``rsbench score`` reads it.

    Each process saves its windows as parts (a multi-process run splits the windows between
    processes); the main process assembles them in ``compute_metrics``, which runs after every
    process's results are collected. Samples without a window are saved as ``ChangeMetric`` does."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._scenes: dict[str, str] = {}  # map stem -> scene id, so two scenes never share a file

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        scenes = self._scenes
        for s in data_samples:
            if not s.get("window"):
                super().process(data_batch, [s])
                continue
            output_dir, self.output_dir = self.output_dir, None
            try:
                super().process(data_batch, [s])  # the confusion areas only
            finally:
                self.output_dir = output_dir
            if output_dir is None:
                continue
            scene = s["img_path"].split("#", 1)[0]
            stem = scene_stem(self.naming, s["img_path"], s.get("seg_map_path"))
            if scenes.setdefault(stem, scene) != scene:
                raise ValueError(f"test scenes {scenes[stem]} and {scene} would both save their change map "
                                 f"as {stem}.tif")
            write_part(output_dir, stem, s["window"], s["pred_sem_seg"]["data"].squeeze(0).cpu().numpy(),
                       self.label_map, reference=s.get("seg_map_path"))

    def compute_metrics(self, results: list) -> dict[str, float]:
        if self.output_dir is not None:
            assemble_scenes(self.output_dir)
        return super().compute_metrics(results)
