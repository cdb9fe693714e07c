"""mmrotate's DOTAMetric and mmdet's VOCMetric with the worker count under rsbench's control.

Both library metrics call ``eval_rbbox_map`` / ``eval_map`` without ``nproc`` (a default pool of
4 processes; mmrotate's is a *spawn* pool), which a 2-core machine or a test cannot afford. These
subclasses keep the library's per-sample processing and mAP functions unchanged, pass ``nproc``
from the task option, and can dump the exact inputs of the mAP call (``dump_path``) so the
reported value can be recomputed with the library function on the same predictions.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

from mmdet.evaluation import VOCMetric
from mmdet.evaluation.functional import eval_map
from mmdet.registry import METRICS as MMDET_METRICS
from mmengine.logging import MMLogger
from mmrotate.evaluation import DOTAMetric
from mmrotate.evaluation.functional import eval_rbbox_map
from mmrotate.registry import METRICS as MMROTATE_METRICS


def _dump(path: str | None, **payload: Any) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            pickle.dump(payload, f)


def _mean_ap(results: OrderedDict, aps: list[float], iou_thrs: list[float]) -> OrderedDict:
    for thr, ap in zip(iou_thrs, aps):
        results[f"AP{int(thr * 100):02d}"] = round(ap, 3)
    results["mAP"] = sum(aps) / len(aps)
    results.move_to_end("mAP", last=False)
    return results


@MMROTATE_METRICS.register_module(name="RSBDOTAMetric")
class DOTAMetricN(DOTAMetric):
    def __init__(self, nproc: int = 4, dump_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.nproc = int(nproc)
        self.dump_path = dump_path

    def compute_metrics(self, results: list) -> dict:
        if self.merge_patches or self.format_only or self.metric != "mAP":
            return super().compute_metrics(results)
        gts, preds = zip(*results)
        dets = [p["pred_bbox_scores"] for p in preds]
        classes = self.dataset_meta["classes"]
        _dump(self.dump_path, dets=dets, gts=gts, classes=classes, iou_thrs=self.iou_thrs,
              use_07_metric=self.use_07_metric, box_type=self.predict_box_type)
        aps = [eval_rbbox_map(dets, list(gts), scale_ranges=self.scale_ranges, iou_thr=thr,
                              use_07_metric=self.use_07_metric, box_type=self.predict_box_type,
                              dataset=classes, logger=MMLogger.get_current_instance(),
                              nproc=self.nproc)[0] for thr in self.iou_thrs]
        return _mean_ap(OrderedDict(), aps, self.iou_thrs)


@MMDET_METRICS.register_module(name="RSBVOCMetric")
class VOCMetricN(VOCMetric):
    def __init__(self, nproc: int = 4, dump_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.nproc = int(nproc)
        self.dump_path = dump_path

    def compute_metrics(self, results: list) -> dict:
        if self.metric != "mAP":
            return super().compute_metrics(results)
        gts, preds = zip(*results)
        classes = self.dataset_meta["classes"]
        _dump(self.dump_path, dets=preds, gts=gts, classes=classes, iou_thrs=self.iou_thrs,
              eval_mode=self.eval_mode)
        # As the library: VOC's legacy (+1) pixel coordinates, the dataset's class names.
        aps = [eval_map(list(preds), list(gts), scale_ranges=self.scale_ranges, iou_thr=thr,
                        dataset=classes, logger=MMLogger.get_current_instance(),
                        eval_mode=self.eval_mode, use_legacy_coordinate=True, nproc=self.nproc)[0]
               for thr in self.iou_thrs]
        return _mean_ap(OrderedDict(), aps, self.iou_thrs)
