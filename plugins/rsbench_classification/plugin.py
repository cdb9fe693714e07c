"""Declarations of the classification datasets and tasks: scenes (AID, RESISC-45) and multi-band
single- and multi-label Sentinel classification (BigEarthNet-S2/-MM, fMoW-S2). Light: no torch import."""

from __future__ import annotations

from rsbench import DatasetInfo, SizeOption, TaskInfo, hookimpl
from rsbench_classification import aid, ben_mm, ben_s2, fmow_s2, resisc45
from rsbench_classification.prediction_csv import MULTI_LABEL, SINGLE_LABEL

OA = "OA: overall accuracy (top-1, %) over all test images (micro average)"
SCENE_OPTIONS = dict(train_ratio=0.2, split_seed=0, epochs=30, batch_size=32, lr=5e-4, max_size=224)
#: RESISC-45's images are 256 px: its scenes are resized to their native size.
RESISC_OPTIONS = dict(SCENE_OPTIONS, max_size=256)
MAP = ("mAP (%), headline micro: mmpretrain's exact average precision of all (patch, class) scores pooled "
       "(sklearn average='micro'); also reported: macro = mean per-class AP over the 19 classes present in "
       "the split. Labels: 43 CLC names mapped to 19 by the official table")
BEN_OPTIONS = dict(label_fraction=1.0, split_seed=0, epochs=20, batch_size=32, lr=5e-4, img_size=0,
                   stats_samples=64)
S2 = ben_s2.S2_BANDS
BEN_ID = ("the S2 patch name (v1: its folder under BigEarthNet-v1.0/; v2: metadata.parquet patch_id; "
          "also for BigEarthNet-MM)")
FMOW_OPTIONS = dict(split_seed=0, epochs=30, batch_size=32, lr=5e-4, img_size=96, stats_samples=64)
TOP = ("top-1 accuracy (%, headline) and top-5 accuracy over the evaluated split (mmpretrain Accuracy); "
       "13-band images resampled bilinearly to img_size (SatMAE: 96)")



#: What the tasks' pixel-size options mean (the backbones' input rules are checked against them).
SIZES = {
    "max_size": SizeOption("self_resize", "the square resize of each scene (native size capped at max_size)",
                           native=True),
    "img_size": SizeOption("resize", "the resize grid", zero="the native grid"),
}

def more_datasets() -> list[DatasetInfo]:
    """RESISC-45 and the Sentinel-2 / -1 classification datasets."""
    return [

        DatasetInfo(
            name="resisc45", title="NWPU-RESISC45", layout=resisc45.LAYOUT, classes=resisc45.CLASSES,
            checker="rsbench_classification.resisc45:check", fixture="rsbench_classification.resisc45:write_fixture",
            citation="Cheng et al., Remote Sensing Image Scene Classification: Benchmark and State of the "
                     "Art, Proc. IEEE 2017",
            archives="rsbench_classification.archives:RESISC45",
        ),
        DatasetInfo(
            name="ben-s2", title="BigEarthNet v1.0 / v2.0 reBEN (S2)", layout=ben_s2.LAYOUT, classes=ben_s2.CLASSES,
            checker="rsbench_classification.ben_s2:check", fixture="rsbench_classification.ben_s2:write_fixture",
            citation="Sumbul et al., BigEarthNet: A Large-Scale Benchmark Archive for Remote Sensing Image "
                     "Understanding, IGARSS 2019; Clasen et al., reBEN: Refined BigEarthNet Dataset for Remote "
                     "Sensing Image Analysis, IGARSS 2025",
            archives="rsbench_classification.archives:BEN_S2",
        ),
        DatasetInfo(
            name="ben-mm", title="BigEarthNet-MM (S1 + S2)", layout=ben_mm.LAYOUT, classes=ben_mm.CLASSES,
            checker="rsbench_classification.ben_mm:check", fixture="rsbench_classification.ben_mm:write_fixture",
            citation="Sumbul et al., BigEarthNet-MM: A Large-Scale, Multimodal, Multilabel Benchmark Archive "
                     "for Remote Sensing Image Classification and Retrieval, IEEE GRSM 2021; Clasen et al., "
                     "reBEN, IGARSS 2025",
            archives="rsbench_classification.archives:BEN_MM",
        ),
        DatasetInfo(
            name="fmow-s2", title="fMoW-Sentinel", layout=fmow_s2.LAYOUT, classes=fmow_s2.CLASSES,
            checker="rsbench_classification.fmow_s2:check", fixture="rsbench_classification.fmow_s2:write_fixture",
            citation="Cong et al., SatMAE: Pre-training Transformers for Temporal and Multi-Spectral Satellite "
                     "Imagery, NeurIPS 2022 (fMoW: Christie et al., CVPR 2018)",
            archives="rsbench_classification.archives:FMOW_S2",
        ),
    ]


def more_tasks() -> list[TaskInfo]:
    return [

        TaskInfo(
            size_options=SIZES,
            name="resisc45", title="NWPU-RESISC45 scene classification", family="classification",
            card="rsbench_classification.cards:RESISC45",
            dataset="resisc45", task_class="rsbench_classification.scene_task:SceneClassificationTask",
            metric="OA", metric_definition=OA + "; per-class random split at train_ratio (TR 10% or 20%)",
            modalities={"hr": ("R", "G", "B")}, splits=("test",), default_split="test",
            options=RESISC_OPTIONS, evaluation_of=("skysense",), smoke_iters=40,
            predictions=SINGLE_LABEL.format(id="the image's file stem (airplane/airplane_001.jpg -> airplane_001)"),
        ),
        TaskInfo(
            size_options=SIZES,
            name="ben-s2", title="BigEarthNet-S2 multi-label classification (19 classes)", family="classification",
            card="rsbench_classification.cards:BEN_S2",
            dataset="ben-s2", task_class="rsbench_classification.bands_task:MultiLabelBandsTask",
            metric="mAP", metric_definition=MAP + "; label_fraction of train sampled per class (10% / 100%)",
            modalities={"s2": S2}, splits=("val", "test"), default_split="test",
            options=BEN_OPTIONS, evaluation_of=("skysense",), smoke_iters=40,
            smoke_options=dict(batch_size=16, lr=1e-3), predictions=MULTI_LABEL.format(id=BEN_ID),
        ),
        TaskInfo(
            size_options=SIZES,
            name="ben-mm", title="BigEarthNet-MM multi-label classification (S1 + S2, 19 classes)",
            card="rsbench_classification.cards:BEN_MM",
            family="classification", dataset="ben-mm", task_class="rsbench_classification.bands_task:MultiLabelBandsTask",
            metric="mAP", metric_definition=MAP + "; S2 and S1 paired by the split CSVs",
            modalities={"s2": S2, "s1": ("VV", "VH")}, splits=("val", "test"), default_split="test",
            options=BEN_OPTIONS, evaluation_of=("skysense",), smoke_iters=40,
            smoke_options=dict(batch_size=16, lr=1e-3), predictions=MULTI_LABEL.format(id=BEN_ID),
        ),
        TaskInfo(
            size_options=SIZES,
            name="fmow-s2", title="fMoW-Sentinel scene classification (62 classes)", family="classification",
            card="rsbench_classification.cards:FMOW_S2",
            dataset="fmow-s2", task_class="rsbench_classification.bands_task:BandsClassificationTask",
            metric="top-1", metric_definition=TOP, modalities={"s2": fmow_s2.BANDS}, splits=("val", "test"),
            default_split="val", options=FMOW_OPTIONS, evaluation_of=("skysense",), smoke_iters=40,
            smoke_options=dict(batch_size=16, lr=1e-3, img_size=24),
            predictions=SINGLE_LABEL.format(id="the image's file stem (<category>_<location>_<image>, e.g. "
                                               "airport_0_0)") + "; top-5 needs the probability columns",
        ),
    ]


@hookimpl
def rsbench_register_datasets(register):
    register(DatasetInfo(
        name="aid", title="AID", layout=aid.LAYOUT, classes=aid.CLASSES,
        checker="rsbench_classification.aid:check", fixture="rsbench_classification.aid:write_fixture",
        citation="Xia et al., AID: A Benchmark Data Set for Performance Evaluation of Aerial Scene "
                 "Classification, IEEE TGRS 2017",
        archives="rsbench_classification.archives:AID",
    ))
    for info in more_datasets():
        register(info)


@hookimpl
def rsbench_register_tasks(register):
    register(TaskInfo(
        size_options=SIZES,
        name="aid", title="AID scene classification", family="classification", dataset="aid",
        card="rsbench_classification.cards:AID",
        task_class="rsbench_classification.scene_task:SceneClassificationTask",
        metric="OA", metric_definition=OA + "; per-class random split at train_ratio (TR 20% or 50%)",
        modalities={"hr": ("R", "G", "B")}, splits=("test",), default_split="test",
        options=SCENE_OPTIONS, evaluation_of=("skysense",), smoke_iters=60,
        predictions=SINGLE_LABEL.format(id="the image's file stem (AID/Airport/airport_12.jpg -> airport_12)"),
    ))
    for info in more_tasks():
        register(info)
