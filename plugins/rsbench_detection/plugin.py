"""Declarations of the detection datasets and tasks. Light: no torch import."""

from __future__ import annotations

from rsbench import DatasetInfo, SizeOption, TaskInfo, hookimpl
from rsbench_detection import dior, fair1m, sardet, ubcv2
from rsbench_detection.hbb_task import COCO_METRIC, COCO_OPTIONS, COCO_PREDICTIONS, HBB_OPTIONS, VOC_METRIC
from rsbench_detection.obb_task import OBB_METRIC, OBB_OPTIONS, OBB_PREDICTIONS

RGB = {"hr": ("R", "G", "B")}
SAR = {"sar": ("SAR",)}
RGB_SAR = {"hr": ("R", "G", "B"), "sar": ("SAR",)}

#: Small heads at 64 px and one evaluation worker: what smoke runs on the fixtures use.
SMOKE = dict(img_size=64, anchor_scale=4, neck_channels=32, roi_fc_channels=128, rpn_proposals=300,
             roi_samples=128, nproc=1, lr=2e-3, batch_size=4)


#: What the tasks' pixel-size options mean (the backbones' input rules are checked against them).
SIZES = {
    "img_size": SizeOption("resize", "the resize (longer side, aspect kept; capped at the native size)",
                           native=True),
    "patch_size": SizeOption("patch", "the patches cut from each scene"),
}


@hookimpl
def rsbench_register_datasets(register):
    register(DatasetInfo(
        name="dior", title="DIOR / DIOR-R", layout=dior.LAYOUT, classes=dior.CLASSES,
        checker="rsbench_detection.dior:check", fixture="rsbench_detection.dior:write_fixture",
        citation="Li et al., Object detection in optical remote sensing images: a survey and a new benchmark, "
                 "ISPRS J. 2020; Cheng et al., Anchor-free oriented proposal generator (DIOR-R), IEEE TGRS 2022",
        archives="rsbench_detection.archives:DIOR",
    ))
    register(DatasetInfo(
        name="sardet100k", title="SARDet-100K", layout=sardet.LAYOUT, classes=sardet.CLASSES,
        checker="rsbench_detection.sardet:check", fixture="rsbench_detection.sardet:write_fixture",
        citation="Li et al., SARDet-100K: Towards open-source benchmark and toolkit for large-scale SAR "
                 "object detection, NeurIPS 2024",
        archives="rsbench_detection.archives:SARDET100K",
    ))
    register(DatasetInfo(
        name="fair1m", title="FAIR1M v1.0", layout=fair1m.LAYOUT, classes=fair1m.CLASSES,
        checker="rsbench_detection.fair1m:check", fixture="rsbench_detection.fair1m:write_fixture",
        citation="Sun et al., FAIR1M: A benchmark dataset for fine-grained object recognition in "
                 "high-resolution remote sensing imagery, ISPRS J. 2022",
        archives="rsbench_detection.archives:FAIR1M",
    ))
    register(DatasetInfo(
        name="ubcv2", title="UBCv2 (RGB+SAR fine-grained roofs)", layout=ubcv2.LAYOUT, classes=ubcv2.CLASSES,
        checker="rsbench_detection.ubcv2:check", fixture="rsbench_detection.ubcv2:write_fixture",
        citation="UBCv2, Urban Building Classification v2 (AICyberTeam/UBC-dataset, branch UBCv2); "
                 "RGB+SAR evaluation of MaRS (AAAI 2026)",
        archives="rsbench_detection.archives:UBCV2",
    ))


@hookimpl
def rsbench_register_tasks(register):
    register(TaskInfo(
        size_options=SIZES,
        predictions=OBB_PREDICTIONS,
        name="dior-r", title="DIOR-R oriented object detection", family="detection", dataset="dior",
        card="rsbench_detection.cards:DIOR_R",
        task_class="rsbench_detection.dior:DiorRTask", metric="mAP50",
        metric_definition=OBB_METRIC + "; trained on train+val, tested on test",
        modalities=RGB, splits=("test", "val"), default_split="test", options=OBB_OPTIONS, smoke_iters=30, smoke_options=SMOKE,
        evaluation_of=("skysense",),
    ))
    register(TaskInfo(
        size_options=SIZES,
        predictions=COCO_PREDICTIONS,
        name="dior", title="DIOR horizontal object detection", family="detection", dataset="dior",
        card="rsbench_detection.cards:DIOR",
        task_class="rsbench_detection.dior:DiorTask", metric="mAP50",
        metric_definition=VOC_METRIC + "; trained on train+val, tested on test",
        modalities=RGB, splits=("test", "val"), default_split="test", options=HBB_OPTIONS, smoke_iters=30, smoke_options=SMOKE,
        evaluation_of=("skysense",),
    ))
    register(TaskInfo(
        size_options=SIZES,
        predictions=COCO_PREDICTIONS,
        name="sardet100k", title="SARDet-100K SAR object detection", family="detection", dataset="sardet100k",
        card="rsbench_detection.cards:SARDET100K",
        task_class="rsbench_detection.sardet:SARDetTask", metric="mAP",
        metric_definition=COCO_METRIC + "; input: the SAR band alone (modality sar), or with -o sar_as_rgb=true "
                          "replicated to R,G,B for RGB-only backbones; trained on train",
        modalities=SAR, splits=("test", "val"), default_split="test", options=dict(COCO_OPTIONS, sar_as_rgb=False),
        option_modalities={"sar_as_rgb": RGB}, smoke_iters=40, smoke_options=SMOKE,
        evaluation_of=("mars",),
    ))
    register(TaskInfo(
        size_options=SIZES,
        predictions=fair1m.FAIR1M_PREDICTIONS,
        name="fair1m", title="FAIR1M fine-grained oriented object detection", family="detection",
        card="rsbench_detection.cards:FAIR1M",
        dataset="fair1m", task_class="rsbench_detection.fair1m:Fair1MTask", metric="mAP50",
        metric_definition=fair1m.FAIR1M_METRIC + "; split=validation: trained on train, scored on validation "
                          "(offline); split=submission: trained on train+validation, writes the test result "
                          "XMLs, no metric",
        modalities=RGB, splits=("validation", "submission"), default_split="validation",
        options=fair1m.FAIR1M_OPTIONS, smoke_iters=30,
        smoke_options=dict(SMOKE, patch_size=128, patch_overlap=64), evaluation_of=("skysense",),
    ))
    register(TaskInfo(
        size_options=SIZES,
        predictions=COCO_PREDICTIONS,
        name="ubcv2", title="UBCv2 RGB+SAR roof detection", family="detection", dataset="ubcv2",
        card="rsbench_detection.cards:UBCV2",
        task_class="rsbench_detection.ubcv2:UBCv2Task", metric="mAP",
        metric_definition=ubcv2.UBC_METRIC + "; input: optical (hr) and registered SAR (sar), optical alone "
                          "for optical-only backbones; trained on train, scored on val",
        modalities=RGB_SAR, splits=("val",), default_split="val", options=ubcv2.UBC_OPTIONS, smoke_iters=40,
        smoke_options=SMOKE, evaluation_of=("mars",),
    ))
