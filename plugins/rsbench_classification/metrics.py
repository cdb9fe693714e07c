"""Image-level metrics built on mmpretrain's implementations.

``RSBMultiLabelAP`` reports both averages of mmpretrain's exact (non-interpolated) average
precision: ``mAP_macro`` (mean of per-class AP over classes with at least one positive in
the evaluated split: a class absent from it has no defined AP) and ``mAP_micro`` (AP of all
(sample, class) decisions pooled, i.e. sklearn's ``average='micro'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from mmengine.evaluator import BaseMetric
from mmpretrain.evaluation.metrics import AveragePrecision
from mmpretrain.registry import METRICS
from mmpretrain.structures import label_to_onehot


def multilabel_ap(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Macro (over present classes) and micro mAP in percent, from mmpretrain's AP."""
    per_class = AveragePrecision.calculate(pred, target, average=None)
    present = target.sum(0) > 0
    macro = float(per_class[present].mean()) if present.any() else float("nan")
    micro = float(AveragePrecision.calculate(pred.reshape(-1, 1), target.reshape(-1, 1), average="macro"))
    return {"mAP_macro": macro, "mAP_micro": micro}


@METRICS.register_module(name="RSBMultiLabelAP")
class MultiLabelAP(BaseMetric):
    default_prefix = "multi-label"

    def __init__(self, num_classes: int, collect_device: str = "cpu", prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.num_classes = num_classes

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            target = label_to_onehot(sample["gt_label"], self.num_classes)
            self.results.append((sample["pred_score"].cpu().float(), target.cpu().float()))

    def compute_metrics(self, results: list) -> dict[str, float]:
        pred = torch.stack([r[0] for r in results])
        target = torch.stack([r[1] for r in results])
        return multilabel_ap(pred, target)
