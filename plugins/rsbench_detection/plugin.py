"""Declarations of the detection datasets and tasks. Light: no torch import."""

from __future__ import annotations

from rsbench import DatasetInfo, TaskInfo, hookimpl
from rsbench_detection import dior
from rsbench_detection.hbb_task import HBB_OPTIONS, VOC_METRIC
from rsbench_detection.obb_task import OBB_METRIC, OBB_OPTIONS

RGB = {"hr": ("R", "G", "B")}


@hookimpl
def rsbench_register_datasets(register):
    register(DatasetInfo(
        name="dior", title="DIOR / DIOR-R", layout=dior.LAYOUT, classes=dior.CLASSES,
        checker="rsbench_detection.dior:check", fixture="rsbench_detection.dior:write_fixture",
        citation="Li et al., Object detection in optical remote sensing images: a survey and a new benchmark, "
                 "ISPRS J. 2020; Cheng et al., Anchor-free oriented proposal generator (DIOR-R), IEEE TGRS 2022",
    ))


@hookimpl
def rsbench_register_tasks(register):
    register(TaskInfo(
        name="dior-r", title="DIOR-R oriented object detection", family="detection", dataset="dior",
        builder="rsbench_detection.dior:DiorRTask", metric="mAP50",
        metric_definition=OBB_METRIC + "; trained on train+val, tested on test",
        modalities=RGB, splits=("test", "val"), default_split="test", options=OBB_OPTIONS,
        evaluation_of=("skysense",),
    ))
    register(TaskInfo(
        name="dior", title="DIOR horizontal object detection", family="detection", dataset="dior",
        builder="rsbench_detection.dior:DiorTask", metric="mAP50",
        metric_definition=VOC_METRIC + "; trained on train+val, tested on test",
        modalities=RGB, splits=("test", "val"), default_split="test", options=HBB_OPTIONS,
        evaluation_of=("skysense",),
    ))
