"""The run side of :mod:`rsbench_classification.prediction_csv`: an mmpretrain metric that writes the
test predictions as the submission CSV that ``rsbench score`` reads (the reader and the format
live there). It returns no metric, so a run's values are those of its other evaluators alone."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmengine.evaluator import BaseMetric
from mmpretrain.registry import METRICS

from rsbench_classification.prediction_csv import WRITER


@METRICS.register_module(name=WRITER)
class PredictionCSV(BaseMetric):
    """``id,class`` rows (class names) or, with ``scores``, ``id,<class>,...`` rows of the
    predicted scores to 9 significant digits (float32 round-trips exactly); ids from
    ``ids_file`` (the test split's ids in dataset order) by each sample's ``sample_idx``."""

    default_prefix = "predictions"

    def __init__(self, out_file: str, ids_file: str, classes: Sequence[str], scores: bool,
                 collect_device: str = "cpu", prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.out_file = Path(out_file)
        self.ids = json.loads(Path(ids_file).read_text())
        self.classes = list(classes)
        self.scores = scores

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for s in data_samples:
            value = s["pred_score"] if self.scores else s["pred_label"]
            self.results.append((int(s["sample_idx"]), value.detach().cpu().float().numpy().reshape(-1)))

    def compute_metrics(self, results: list) -> dict[str, float]:
        self.out_file.parent.mkdir(parents=True, exist_ok=True)
        with self.out_file.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["id", *self.classes] if self.scores else ["id", "class"])
            for idx, value in sorted(results, key=lambda r: r[0]):
                if self.scores:
                    w.writerow([self.ids[idx], *(f"{float(v):.9g}" for v in value)])
                else:
                    w.writerow([self.ids[idx], self.classes[int(value[0])]])
        return {}
