"""Horizontal detection (DIOR, SARDet-100K) with mmdet's Faster R-CNN + FPN.

The config follows mmdet's ``faster-rcnn_r50_fpn_1x`` with the rsbench backbone in place of
ResNet-50 and the FPN's ``in_channels`` taken from the backbone. The metric is mmdet's
``VOCMetric`` (mAP@0.5) with ``nproc`` from the task option; COCO datasets override
:meth:`evaluator` with mmdet's ``CocoMetric``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rsbench.plugin_api.catalog import BackboneInfo
from rsbench.plugin_api.checked_data import CheckedData
from rsbench.run.spec import RunSpec
from rsbench_detection.det_task import DETECTION_OPTIONS, DetectionTask

HBB_OPTIONS = dict(DETECTION_OPTIONS, rpn_proposals=1000, eval_mode="11points")
#: What ``rsbench score`` reads for horizontal boxes (the tasks' ``predictions``).
COCO_PREDICTIONS = ("a COCO results JSON [{image_id, category_id, bbox [x, y, w, h], score}] in "
                    "original pixels; image_id = the task's image id or the image file stem (string), "
                    "category_id = 1-based index in the task's classes or the class name")
VOC_METRIC = ("mAP@0.5 over classes with ground truth (%), VOC protocol: mmdet VOCMetric / eval_map "
              "(legacy +1 pixel coordinates, VOC07 11-point AP by default as the library; -o eval_mode=area); "
              "Faster R-CNN + FPN")


class HorizontalDetectionTask(DetectionTask):
    default_scope = "mmdet"
    imports = ("mmdet.models", "mmdet.datasets", "mmdet.evaluation", "rsbench_detection.metrics")

    def pipelines(self, size: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        load = [self.load_image()]
        ann = [dict(type="LoadAnnotations", with_bbox=True)]
        resize = [dict(type="Resize", scale=(size, size), keep_ratio=True)]
        train = [*load, *ann, *resize, dict(type="RandomFlip", prob=0.5), dict(type="PackDetInputs")]
        test = [*load, *resize, *ann,  # annotations after Resize: metrics use original coordinates
                dict(type="PackDetInputs",
                     meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor"))]
        return train, test

    def load_image(self) -> dict[str, Any]:
        return dict(type="LoadImageFromFile")

    def evaluator(self, data: CheckedData, work_dir: Path) -> dict[str, Any]:
        opts = data.options
        return dict(type="RSBVOCMetric", metric="mAP", iou_thrs=0.5, eval_mode=str(opts["eval_mode"]),
                    nproc=int(opts["nproc"]), dump_path=str(work_dir / "predictions.pkl"),
                    results_file=str(work_dir / "predictions.bbox.json"))

    def prediction_reader(self, predictions: Path, data: CheckedData, cfg: dict[str, Any]) -> Any:
        """A COCO results JSON (the file, or a folder holding exactly one ``.json``): a list of
        ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`` for whole test images in
        original pixels. ``image_id``: the task's image id (the split json's COCO ``images[].id``
        for COCO datasets; DIOR's 5-digit id as a string or integer) or the image file stem as a
        string. ``category_id``: the 1-based index in the task's class list (as in the run's
        ``annotations/test_coco.json``) or the class name. An image without entries has no
        detections. A run writes its own as ``predictions.bbox.json`` in its work dir."""
        from rsbench_detection.predictions import coco_results_path, image_ids, read_coco_results

        classes = data.classes
        dets = read_coco_results(coco_results_path(Path(predictions)), image_ids(data.test),
                                 {k + 1: k for k in range(len(classes))}, classes)

        def read(sample: Any) -> None:
            det = dets.get(sample.img_id)
            sample.pred_instances = (self.pred_instances(det.boxes, det.scores, det.labels) if det is not None
                                     else self.pred_instances(np.zeros((0, 4)), [], []))

        return read

    def model(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData) -> dict[str, Any]:
        opts = data.options
        c, fc = int(opts["neck_channels"]), int(opts["roi_fc_channels"])
        proposals, samples = int(opts["rpn_proposals"]), int(opts["roi_samples"])
        mm = ""  # default scope mmdet: no prefix (a self-prefix does not resolve)
        nms = dict(nms_pre=proposals, max_per_img=proposals, nms=dict(type="nms", iou_threshold=0.7), min_bbox_size=0)
        return dict(
            type=f"{mm}FasterRCNN",
            data_preprocessor=self.data_preprocessor(mm),
            backbone=self.backbone_config(spec, backbone),
            neck=self.neck(backbone, data, mm),
            rpn_head=dict(
                type=f"{mm}RPNHead", in_channels=c, feat_channels=c,
                anchor_generator=dict(type=f"{mm}AnchorGenerator", scales=[int(opts["anchor_scale"])], ratios=[0.5, 1.0, 2.0],
                                      strides=[4, 8, 16, 32, 64]),
                bbox_coder=dict(type=f"{mm}DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[1.0] * 4),
                loss_cls=dict(type=f"{mm}CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0),
                loss_bbox=dict(type=f"{mm}L1Loss", loss_weight=1.0)),
            roi_head=dict(
                type=f"{mm}StandardRoIHead",
                bbox_roi_extractor=dict(type=f"{mm}SingleRoIExtractor",
                                        roi_layer=dict(type="RoIAlign", output_size=7, sampling_ratio=0),
                                        out_channels=c, featmap_strides=[4, 8, 16, 32]),
                bbox_head=dict(
                    type=f"{mm}Shared2FCBBoxHead", in_channels=c, fc_out_channels=fc, roi_feat_size=7,
                    num_classes=len(data.classes),
                    bbox_coder=dict(type=f"{mm}DeltaXYWHBBoxCoder", target_means=[0.0] * 4,
                                    target_stds=[0.1, 0.1, 0.2, 0.2]),
                    reg_class_agnostic=False,
                    loss_cls=dict(type=f"{mm}CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
                    loss_bbox=dict(type=f"{mm}L1Loss", loss_weight=1.0))),
            train_cfg=dict(
                rpn=dict(
                    assigner=dict(type=f"{mm}MaxIoUAssigner", pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                                  match_low_quality=True, ignore_iof_thr=-1),
                    sampler=dict(type=f"{mm}RandomSampler", num=256, pos_fraction=0.5, neg_pos_ub=-1,
                                 add_gt_as_proposals=False),
                    allowed_border=-1, pos_weight=-1, debug=False),
                rpn_proposal=dict(nms, nms_pre=2 * proposals),
                rcnn=dict(
                    assigner=dict(type=f"{mm}MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                                  match_low_quality=False, ignore_iof_thr=-1),
                    sampler=dict(type=f"{mm}RandomSampler", num=samples, pos_fraction=0.25, neg_pos_ub=-1,
                                 add_gt_as_proposals=True),
                    pos_weight=-1, debug=False)),
            test_cfg=dict(
                rpn=nms,
                rcnn=dict(score_thr=float(opts["score_thr"]), nms=dict(type="nms", iou_threshold=0.5),
                          max_per_img=100)),
        )


COCO_OPTIONS = dict(HBB_OPTIONS)
del COCO_OPTIONS["eval_mode"]
COCO_METRIC = ("COCO bbox mAP@[.5:.95] (%), mmdet CocoMetric / pycocotools COCOeval (100 detections per image) "
               "against the split's ground truth re-written as COCO json with the canonical classes; "
               "Faster R-CNN + FPN")


class CocoDetectionTask(HorizontalDetectionTask):
    """Horizontal detection scored with mmdet's ``CocoMetric``. The test split's ground truth is
    written as one COCO json (canonical category names, ids 1..K, ``iscrowd`` from ignore flags)
    so category spellings in the release cannot break ``get_cat_ids``; the predictions are
    kept as ``predictions.bbox.json`` beside it for recomputation with pycocotools."""

    def evaluator(self, data: CheckedData, work_dir: Path) -> dict[str, Any]:
        gt = work_dir / "annotations" / "test_coco.json"
        gt.parent.mkdir(parents=True, exist_ok=True)
        gt.write_text(json.dumps(coco_ground_truth(data.test, data.classes)))
        return dict(type="CocoMetric", ann_file=str(gt), metric="bbox", classwise=False,
                    outfile_prefix=str(work_dir / "predictions"))

    def metric_value(self, metrics: dict[str, Any]) -> float:
        if "coco/bbox_mAP" not in metrics:
            raise KeyError(f"no coco/bbox_mAP in the test metrics {sorted(metrics)}")
        return 100.0 * float(metrics["coco/bbox_mAP"])


def coco_ground_truth(samples: list[dict[str, Any]], classes: list[str]) -> dict[str, Any]:
    """COCO detection json of middle-format samples (xyxy boxes; area = box area)."""
    images, annotations = [], []
    for s in samples:
        images.append({"id": s["img_id"], "file_name": Path(s["img_path"]).name, "width": s["width"],
                       "height": s["height"]})
        for inst in s["instances"]:
            x1, y1, x2, y2 = inst["bbox"]
            annotations.append({"id": len(annotations) + 1, "image_id": s["img_id"],
                                "category_id": inst["bbox_label"] + 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                                "area": (x2 - x1) * (y2 - y1), "iscrowd": int(inst.get("ignore_flag", 0))})
    return {"images": images, "annotations": annotations,
            "categories": [{"id": k + 1, "name": c} for k, c in enumerate(classes)]}
