"""mmrotate's DOTAMetric and mmdet's VOCMetric with the worker count under rsbench's control.

Both library metrics call ``eval_rbbox_map`` / ``eval_map`` without ``nproc`` (a default pool of
4 processes; mmrotate's is a *spawn* pool) and open a pool even for one worker, which a 2-core
machine or a test cannot afford. These subclasses keep the library's per-sample processing and
mAP functions unchanged, pass ``nproc`` from the task option (1: the library's per-image step in
this process), and can dump the exact inputs of the mAP call (``dump_path``) so the
reported value can be recomputed with the library function on the same predictions.

They also write the run's test predictions in the task's submission format (``results_file``: a
COCO results JSON; ``predictions_dir``: DOTA ``Task1_<class>.txt``; FAIR1M: result XMLs), the
formats ``rsbench score`` reads (:mod:`rsbench_detection.predictions`), so scoring a run's own
files reproduces its value. Writing them changes no metric value.
"""

from __future__ import annotations

import itertools
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


class _InProcess:
    """The part of a multiprocessing context ``eval_rbbox_map`` uses, run in this process."""

    def Pool(self, nproc: int) -> "_InProcess":  # noqa: N802  (multiprocessing's name)
        return self

    def starmap(self, fn: Any, args: Any) -> list:
        return list(itertools.starmap(fn, args))

    def close(self) -> None:
        pass


def rbbox_map(dets: Any, gts: Any, nproc: int, **kwargs: Any) -> tuple:
    """mmrotate's ``eval_rbbox_map``. With ``nproc`` 1 its per-image tp/fp step runs in this
    process: the library opens a *spawn* pool even for one worker, a fresh interpreter that
    imports torch (seconds per call), for the same function on the same inputs."""
    from mmrotate.evaluation.functional import mean_ap

    if nproc != 1:
        return eval_rbbox_map(dets, gts, nproc=nproc, **kwargs)
    original = mean_ap.get_context
    mean_ap.get_context = lambda *args: _InProcess()
    try:
        return eval_rbbox_map(dets, gts, nproc=1, **kwargs)
    finally:
        mean_ap.get_context = original


def voc_map(dets: Any, gts: Any, nproc: int, **kwargs: Any) -> tuple:
    """mmdet's ``eval_map``. With ``nproc`` 1 its per-image tp/fp step runs in this process:
    the library forks a pool even for one worker (a copy of a process holding torch and the
    model), for the same function on the same inputs."""
    from mmdet.evaluation.functional import mean_ap

    if nproc != 1:
        return eval_map(dets, gts, nproc=nproc, **kwargs)
    original = mean_ap.Pool
    mean_ap.Pool = _InProcess().Pool
    try:
        return eval_map(dets, gts, nproc=1, **kwargs)
    finally:
        mean_ap.Pool = original


def _mean_ap(results: OrderedDict, aps: list[float], iou_thrs: list[float]) -> OrderedDict:
    for thr, ap in zip(iou_thrs, aps):
        results[f"AP{int(thr * 100):02d}"] = round(ap, 3)
    results["mAP"] = sum(aps) / len(aps)
    results.move_to_end("mAP", last=False)
    return results


@MMROTATE_METRICS.register_module(name="RSBDOTAMetric")
class DOTAMetricN(DOTAMetric):
    """``predictions_dir``: the test detections are also written there as DOTA
    ``Task1_<class>.txt`` (lines ``<img_id> <score> x1 y1 ... y4``, the rotated boxes' corners;
    the reader matches image stems, which DIOR-R's ``img_id`` is)."""

    def __init__(self, nproc: int = 4, dump_path: str | None = None, predictions_dir: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.nproc = int(nproc)
        self.dump_path = dump_path
        self.predictions_dir = predictions_dir

    def compute_metrics(self, results: list) -> dict:
        if self.merge_patches or self.format_only or self.metric != "mAP":
            return super().compute_metrics(results)
        gts, preds = zip(*results)
        if self.predictions_dir:
            self.write_predictions(preds)
        dets = [p["pred_bbox_scores"] for p in preds]
        classes = self.dataset_meta["classes"]
        _dump(self.dump_path, dets=dets, gts=gts, classes=classes, iou_thrs=self.iou_thrs,
              use_07_metric=self.use_07_metric, box_type=self.predict_box_type)
        aps = [rbbox_map(dets, list(gts), scale_ranges=self.scale_ranges, iou_thr=thr,
                         use_07_metric=self.use_07_metric, box_type=self.predict_box_type,
                         dataset=classes, logger=MMLogger.get_current_instance(),
                         nproc=self.nproc)[0] for thr in self.iou_thrs]
        return _mean_ap(OrderedDict(), aps, self.iou_thrs)

    def write_predictions(self, preds: tuple) -> None:
        import torch
        from mmrotate.structures import rbox2qbox

        from rsbench_detection.predictions import write_dota

        def corners(boxes: Any) -> Any:
            return rbox2qbox(torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 5)).numpy()

        write_dota(Path(self.predictions_dir), ((str(p["img_id"]), corners(p["bboxes"]), p["scores"], p["labels"])
                                                for p in preds), self.dataset_meta["classes"])


@MMDET_METRICS.register_module(name="RSBVOCMetric")
class VOCMetricN(VOCMetric):
    """``results_file``: the test detections are also written there as a COCO results JSON
    (``image_id`` = the sample's ``img_id``, ``category_id`` = label + 1)."""

    def __init__(self, nproc: int = 4, dump_path: str | None = None, results_file: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.nproc = int(nproc)
        self.dump_path = dump_path
        self.results_file = results_file

    def process(self, data_batch: Any, data_samples: Any) -> None:
        """The library's (annotation, per-class detections) pair plus the sample's ``img_id``."""
        start = len(self.results)
        super().process(data_batch, data_samples)
        for k, sample in enumerate(data_samples):
            self.results[start + k] = (*self.results[start + k], sample["img_id"])

    def compute_metrics(self, results: list) -> dict:
        gts, preds, ids = zip(*results)
        if self.results_file:
            self.write_predictions(preds, ids)
        if self.metric != "mAP":
            return super().compute_metrics(list(zip(gts, preds)))
        classes = self.dataset_meta["classes"]
        _dump(self.dump_path, dets=preds, gts=gts, classes=classes, iou_thrs=self.iou_thrs,
              eval_mode=self.eval_mode)
        # As the library: VOC's legacy (+1) pixel coordinates, the dataset's class names.
        aps = [voc_map(list(preds), list(gts), scale_ranges=self.scale_ranges, iou_thr=thr,
                        dataset=classes, logger=MMLogger.get_current_instance(),
                        eval_mode=self.eval_mode, use_legacy_coordinate=True, nproc=self.nproc)[0]
               for thr in self.iou_thrs]
        return _mean_ap(OrderedDict(), aps, self.iou_thrs)

    def write_predictions(self, preds: tuple, ids: tuple) -> None:
        import numpy as np

        from rsbench_detection.predictions import write_coco_results

        def flat(dets: list) -> tuple:
            boxes = np.concatenate([d[:, :4] for d in dets]).astype(np.float64)
            scores = np.concatenate([d[:, 4] for d in dets])
            labels = np.concatenate([np.full(len(d), c) for c, d in enumerate(dets)])
            return boxes, scores, labels

        write_coco_results(Path(self.results_file), ((i, *flat(d)) for i, d in zip(ids, preds)))


@MMROTATE_METRICS.register_module(name="RSBFair1MMetric")
class Fair1MMetric(DOTAMetricN):
    """Patch detections merged back onto whole images, then mmrotate's ``eval_rbbox_map``.

    Each patch's rotated boxes are shifted by its origin (``patch_xy``), pooled per image and
    class, and reduced with mmcv's ``nms_rotated`` (``merge_iou``, 0.1 as mmrotate's DOTA merge).
    Ground truth comes from ``gt_file`` (whole-image corner boxes, converted to ``rbox`` with
    mmrotate's ``qbox2rbox`` as in training). With ``format_only`` the merged detections are
    written as FAIR1M result XMLs under ``outfile_dir`` and no metric is returned.
    """

    def __init__(self, gt_file: str, merge_iou: float = 0.1, outfile_dir: str | None = None,
                 **kwargs: Any) -> None:
        # DOTAMetric insists on an outfile_prefix with format_only; our writer uses outfile_dir.
        super().__init__(outfile_prefix=outfile_dir, **kwargs)
        self.gt_file = gt_file
        self.merge_iou = float(merge_iou)
        self.outfile_dir = outfile_dir

    def process(self, data_batch: Any, data_samples: Any) -> None:
        for sample in data_samples:
            pred = sample["pred_instances"]
            bboxes = pred["bboxes"]
            bboxes = bboxes.tensor if hasattr(bboxes, "tensor") else bboxes
            self.results.append(dict(name=str(sample["ori_name"]), xy=tuple(sample["patch_xy"]),
                                     bboxes=bboxes.cpu().numpy(), scores=pred["scores"].cpu().numpy(),
                                     labels=pred["labels"].cpu().numpy()))

    def merge(self, results: list) -> dict[str, list]:
        """Per image, per class: (n, 6) arrays [cx, cy, w, h, angle, score] after rotated NMS."""
        import numpy as np
        import torch
        from mmcv.ops import nms_rotated

        num_classes = len(self.dataset_meta["classes"])
        pooled: dict[str, list] = {}
        for r in results:
            boxes = r["bboxes"].astype(np.float32).copy()
            boxes[:, :2] += np.asarray(r["xy"], dtype=np.float32)
            pooled.setdefault(r["name"], []).append((boxes, r["scores"], r["labels"]))
        merged = {}
        for name, parts in pooled.items():
            boxes = np.concatenate([p[0] for p in parts]).reshape(-1, 5)
            scores = np.concatenate([p[1] for p in parts]).astype(np.float32)
            labels = np.concatenate([p[2] for p in parts])
            per_class = []
            for c in range(num_classes):
                keep = labels == c
                if not keep.any():
                    per_class.append(np.zeros((0, 6), np.float32))
                    continue
                dets, _ = nms_rotated(torch.from_numpy(boxes[keep]), torch.from_numpy(scores[keep]),
                                      self.merge_iou)
                per_class.append(dets.numpy().reshape(-1, 6))
            merged[name] = per_class
        return merged

    def compute_metrics(self, results: list) -> dict:
        return self.evaluate_whole_images(self.merge(results))

    def evaluate_whole_images(self, merged: dict[str, list]) -> dict:
        """The metric of whole-image detections (per image name, per class (n, 6) rbox + score
        arrays, as :meth:`merge` returns; an absent image has none). ``rsbench score`` calls it
        directly with the detections of the result XMLs, so they are scored without a merge."""
        import json

        import numpy as np
        import torch
        from mmrotate.structures import qbox2rbox

        gt = json.loads(Path(self.gt_file).read_text())
        classes = self.dataset_meta["classes"]
        empty = [np.zeros((0, 6), np.float32) for _ in classes]
        names = list(gt)
        dets = [merged.get(n, empty) for n in names]
        if self.outfile_dir:
            self.write_results(names, dets, gt)
        if self.format_only:
            return {}
        anns = []
        for n in names:
            inst = gt[n]["instances"]
            q = torch.tensor([i["bbox"] for i in inst], dtype=torch.float32).reshape(-1, 8)
            r = qbox2rbox(q).numpy().reshape(-1, 5)
            labels = np.array([i["bbox_label"] for i in inst], dtype=np.int64)
            ign = np.array([bool(i["ignore_flag"]) for i in inst], dtype=bool)
            anns.append(dict(bboxes=r[~ign], labels=labels[~ign], bboxes_ignore=r[ign], labels_ignore=labels[ign]))
        _dump(self.dump_path, dets=dets, gts=anns, classes=classes, iou_thrs=self.iou_thrs,
              use_07_metric=self.use_07_metric, box_type="rbox", names=names)
        aps = [rbbox_map(dets, anns, scale_ranges=self.scale_ranges, iou_thr=thr,
                         use_07_metric=self.use_07_metric, box_type="rbox", dataset=classes,
                         logger=MMLogger.get_current_instance(), nproc=self.nproc)[0]
               for thr in self.iou_thrs]
        return _mean_ap(OrderedDict(), aps, self.iou_thrs)

    def write_results(self, names: list[str], dets: list, gt: dict) -> None:
        """One FAIR1M result XML per test image (``<probability>`` per object, closed 5-point ring)."""
        import torch
        from mmrotate.structures import rbox2qbox

        from rsbench_detection.fair1m import label_xml

        if not self.outfile_dir:
            raise ValueError("format_only needs outfile_dir")
        out = Path(self.outfile_dir)
        out.mkdir(parents=True, exist_ok=True)
        classes = self.dataset_meta["classes"]
        for name, per_class in zip(names, dets):
            objs, scores = [], []
            for c, arr in enumerate(per_class):
                if len(arr):
                    q = rbox2qbox(torch.from_numpy(arr[:, :5])).numpy()
                    for corners, score in zip(q, arr[:, 5]):
                        objs.append((classes[c], list(zip(corners[0::2].tolist(), corners[1::2].tolist()))))
                        scores.append(float(score))
            width, height = gt[name]["size"]
            (out / f"{name}.xml").write_text(label_xml(f"{name}.tif", width, height, objs, scores))
