"""Declarations of the scene-classification datasets and tasks. Light: no torch import."""

from __future__ import annotations

from rsbench import DatasetInfo, TaskInfo, hookimpl
from rsbench_classification import aid
from rsbench_imagelevel.prediction_csv import SINGLE_LABEL

OA = "OA: overall accuracy (top-1, %) over all test images (micro average)"
SCENE_OPTIONS = dict(train_ratio=0.2, split_seed=0, epochs=30, batch_size=32, lr=5e-4, max_size=224)


@hookimpl
def rsbench_register_datasets(register):
    register(DatasetInfo(
        name="aid", title="AID", layout=aid.LAYOUT, classes=aid.CLASSES,
        checker="rsbench_classification.aid:check", fixture="rsbench_classification.aid:write_fixture",
        citation="Xia et al., AID: A Benchmark Data Set for Performance Evaluation of Aerial Scene "
                 "Classification, IEEE TGRS 2017",
        archives="rsbench_classification.archives:AID",
    ))


@hookimpl
def rsbench_register_tasks(register):
    register(TaskInfo(
        name="aid", title="AID scene classification", family="classification", dataset="aid",
        builder="rsbench_classification.scene_task:SceneClassificationTask",
        metric="OA", metric_definition=OA + "; per-class random split at train_ratio (TR 20% or 50%)",
        modalities={"hr": ("R", "G", "B")}, splits=("test",), default_split="test",
        options=SCENE_OPTIONS, evaluation_of=("skysense",), smoke_iters=60,
        predictions=SINGLE_LABEL.format(id="the image's file stem (AID/Airport/airport_12.jpg -> airport_12)"),
    ))
