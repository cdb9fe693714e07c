"""Oriented detection (DIOR-R, FAIR1M) with mmrotate's Oriented R-CNN, ``le90``.

The config follows ``configs/oriented_rcnn/oriented-rcnn-le90_r50_fpn_1x_dota.py`` with the
rsbench backbone + mmdet FPN in place of ResNet-50; every mmdet part is prefixed ``mmdet.``
because the default scope is ``mmrotate``. Ground truth is read as quadrilaterals (``qbox``) and
converted to ``rbox`` by ``cv2.minAreaRect`` as mmrotate's own DIOR pipeline does. The metric is
mmrotate's ``DOTAMetric`` (``eval_rbbox_map``, IoU 0.5) with ``nproc`` from the task option.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rsbench.plugin_api.catalog import BackboneInfo
from rsbench.plugin_api.checked_data import CheckedData
from rsbench.run.spec import RunSpec
from rsbench_detection.det_task import DETECTION_OPTIONS, DetectionTask

ANGLE_VERSION = "le90"
OBB_OPTIONS = dict(DETECTION_OPTIONS, eval_mode="11points")
OBB_METRIC = ("mAP@0.5 over classes with ground truth (%), rotated IoU; mmrotate DOTAMetric / eval_rbbox_map, "
              "VOC07 11-point AP by default (-o eval_mode=area for area AP); Oriented R-CNN le90 + FPN")
#: What ``rsbench score`` reads for oriented boxes (the tasks' ``predictions``).
OBB_PREDICTIONS = ("a folder of DOTA txt in original pixels, per class Task1_<class>.txt "
                   "('<image stem> <score> x1 y1 ... x4 y4') or per image <image stem>.txt "
                   "('x1 y1 ... x4 y4 <class> <score>')")


class OrientedDetectionTask(DetectionTask):
    default_scope = "mmrotate"
    # mmrotate.structures first: it registers the qbox/rbox types mmdet's LoadAnnotations needs.
    imports = ("mmrotate.structures", "mmrotate.models", "mmrotate.datasets", "mmdet.models",
               "mmdet.datasets", "rsbench_detection.metrics")

    def pipelines(self, size: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        load = [dict(type="mmdet.LoadImageFromFile")]
        ann = [dict(type="mmdet.LoadAnnotations", with_bbox=True, box_type="qbox"),
               dict(type="ConvertBoxType", box_type_mapping=dict(gt_bboxes="rbox"))]
        resize = [dict(type="mmdet.Resize", scale=(size, size), keep_ratio=True)]
        train = [*load, *ann, *resize,
                 dict(type="mmdet.RandomFlip", prob=0.75, direction=["horizontal", "vertical", "diagonal"]),
                 dict(type="mmdet.PackDetInputs")]
        # Annotations after Resize: the metric compares in original-image coordinates.
        test = [*load, *resize, *ann,
                dict(type="mmdet.PackDetInputs",
                     meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor"))]
        return train, test

    def evaluator(self, data: CheckedData, work_dir: Path) -> dict[str, Any]:
        opts = data.options
        return dict(type="RSBDOTAMetric", metric="mAP", iou_thrs=0.5, eval_mode=str(opts["eval_mode"]),
                    nproc=int(opts["nproc"]), dump_path=str(work_dir / "predictions.pkl"),
                    predictions_dir=str(work_dir / "predictions"))

    def prediction_reader(self, predictions: Path, data: CheckedData, cfg: dict[str, Any]) -> Any:
        """A folder of DOTA text files for whole test images in original pixels, either per class
        ``Task1_<class>.txt`` with lines ``<image stem> <score> x1 y1 x2 y2 x3 y3 x4 y4`` (the
        DOTA server format, chosen when any ``Task1_*.txt`` exists) or per image
        ``<image stem>.txt`` with lines ``x1 y1 x2 y2 x3 y3 x4 y4 <class> <score>``. Corners
        become rotated boxes with mmrotate's ``qbox2rbox``, the conversion the ground truth
        gets. A run writes its own per class to ``predictions/`` in its work dir."""
        from rsbench_detection.predictions import DotaPredictions

        dota = DotaPredictions(Path(predictions), [Path(s["img_path"]).stem for s in data.test],
                               data.classes)

        def read(sample: Any) -> None:
            det = dota(Path(sample.img_path).stem)
            sample.pred_instances = self.pred_instances(rboxes(det.boxes), det.scores, det.labels)

        return read

    def model(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData) -> dict[str, Any]:
        opts = data.options
        c, fc = int(opts["neck_channels"]), int(opts["roi_fc_channels"])
        proposals, samples = int(opts["rpn_proposals"]), int(opts["roi_samples"])
        mm = "mmdet."
        proposal_cfg = dict(nms_pre=proposals, max_per_img=proposals, nms=dict(type="nms", iou_threshold=0.8),
                            min_bbox_size=0)
        return dict(
            type=f"{mm}FasterRCNN",
            data_preprocessor=self.data_preprocessor(mm, boxtype2tensor=False),
            backbone=self.backbone_config(spec, backbone),
            neck=self.neck(backbone, data, mm),
            rpn_head=dict(
                type="OrientedRPNHead", in_channels=c, feat_channels=c,
                anchor_generator=dict(type=f"{mm}AnchorGenerator", scales=[int(opts["anchor_scale"])], ratios=[0.5, 1.0, 2.0],
                                      strides=[4, 8, 16, 32, 64], use_box_type=True),
                bbox_coder=dict(type="MidpointOffsetCoder", angle_version=ANGLE_VERSION,
                                target_means=[0.0] * 6, target_stds=[1.0, 1.0, 1.0, 1.0, 0.5, 0.5]),
                loss_cls=dict(type=f"{mm}CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0),
                loss_bbox=dict(type=f"{mm}SmoothL1Loss", beta=1.0 / 9.0, loss_weight=1.0)),
            roi_head=dict(
                type=f"{mm}StandardRoIHead",
                bbox_roi_extractor=dict(
                    type="RotatedSingleRoIExtractor",
                    roi_layer=dict(type="RoIAlignRotated", out_size=7, sample_num=2, clockwise=True),
                    out_channels=c, featmap_strides=[4, 8, 16, 32]),
                bbox_head=dict(
                    type=f"{mm}Shared2FCBBoxHead", predict_box_type="rbox", in_channels=c, fc_out_channels=fc,
                    roi_feat_size=7, num_classes=len(data.classes),
                    reg_predictor_cfg=dict(type=f"{mm}Linear"), cls_predictor_cfg=dict(type=f"{mm}Linear"),
                    bbox_coder=dict(type="DeltaXYWHTRBBoxCoder", angle_version=ANGLE_VERSION, norm_factor=None,
                                    edge_swap=True, proj_xy=True, target_means=(0.0,) * 5,
                                    target_stds=(0.1, 0.1, 0.2, 0.2, 0.1)),
                    reg_class_agnostic=True,
                    loss_cls=dict(type=f"{mm}CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
                    loss_bbox=dict(type=f"{mm}SmoothL1Loss", beta=1.0, loss_weight=1.0))),
            train_cfg=dict(
                rpn=dict(
                    assigner=dict(type=f"{mm}MaxIoUAssigner", pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                                  match_low_quality=True, ignore_iof_thr=-1,
                                  iou_calculator=dict(type="RBbox2HBboxOverlaps2D")),
                    sampler=dict(type=f"{mm}RandomSampler", num=256, pos_fraction=0.5, neg_pos_ub=-1,
                                 add_gt_as_proposals=False),
                    allowed_border=0, pos_weight=-1, debug=False),
                rpn_proposal=proposal_cfg,
                rcnn=dict(
                    assigner=dict(type=f"{mm}MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                                  match_low_quality=False, iou_calculator=dict(type="RBboxOverlaps2D"),
                                  ignore_iof_thr=-1),
                    sampler=dict(type=f"{mm}RandomSampler", num=samples, pos_fraction=0.25, neg_pos_ub=-1,
                                 add_gt_as_proposals=True),
                    pos_weight=-1, debug=False)),
            test_cfg=dict(
                rpn=proposal_cfg,
                rcnn=dict(nms_pre=proposals, min_bbox_size=0, score_thr=float(opts["score_thr"]),
                          nms=dict(type="nms_rotated", iou_threshold=0.1), max_per_img=proposals)),
        )


def rboxes(corners: Any) -> Any:
    """(n, 8) corners -> (n, 5) float32 rotated boxes by mmrotate's ``qbox2rbox`` (minAreaRect)."""
    import torch
    from mmrotate.structures import qbox2rbox

    q = torch.as_tensor(corners, dtype=torch.float32).reshape(-1, 8)
    return qbox2rbox(q) if len(q) else q.new_zeros((0, 5))
