"""Declarations of the segmentation datasets and tasks. Light: no torch import."""

from __future__ import annotations

from rsbench import DatasetInfo, SizeOption, TaskInfo, hookimpl
from rsbench_segmentation import deepglobe_road, dynamicearthnet, earthmiss, isaid, potsdam

BUILDER = "rsbench_segmentation.seg_task:SegmentationTask"
RGB = ("R", "G", "B")
#: Schedule shared by the segmentation tasks (SkySense's iSAID config: AdamW 6e-5, 80k iterations,
#: 1,500 warmup iterations then poly decay); tests and the demo override max_iters/lr.
SCHEDULE = dict(max_iters=80000, batch_size=8, lr=6e-5, head_channels=0)


#: What the tasks' pixel-size options mean (the backbones' input rules are checked against them).
SIZES = {
    "crop_size": SizeOption("crop", "the training crop and sliding-window size"),
    "patch_size": SizeOption("patch", "the patches cut from each scene"),
}

def _dataset(name: str, module: str, title: str, layout: str, classes: tuple[str, ...], citation: str,
             archives: str = "") -> DatasetInfo:
    return DatasetInfo(name=name, title=title, layout=layout, classes=classes,
                       checker=f"rsbench_segmentation.{module}:check",
                       fixture=f"rsbench_segmentation.{module}:write_fixture", citation=citation,
                       archives=archives)


#: What ``rsbench score`` reads for every segmentation task.
PREDICTIONS = ("a folder of class-id images (PNG or single-band GeoTIFF, ids as in the class list), one per "
               "label image, named like it (<label stem>.png) and of its size; a file per evaluated sample "
               "(<sample name>.png, what a run writes to <work_dir>/predictions) is also accepted")


@hookimpl
def rsbench_register_datasets(register):
    register(_dataset("isaid", "isaid", "iSAID", isaid.LAYOUT, isaid.CLASSES,
                      "Waqas Zamir et al., iSAID: A Large-scale Dataset for Instance Segmentation in Aerial "
                      "Images, CVPR Workshops 2019", archives="rsbench_segmentation.archives:ISAID"))
    register(_dataset("deepglobe-road", "deepglobe_road", "DeepGlobe Road Extraction", deepglobe_road.LAYOUT,
                      deepglobe_road.CLASSES, "Demir et al., DeepGlobe 2018: A Challenge to Parse the Earth "
                      "through Satellite Images, CVPR Workshops 2018",
                      archives="rsbench_segmentation.archives:DEEPGLOBE_ROAD"))
    register(_dataset("potsdam", "potsdam", "ISPRS Potsdam", potsdam.LAYOUT, potsdam.CLASSES,
                      "ISPRS 2D Semantic Labeling Contest - Potsdam (Rottensteiner et al. 2012)",
                      archives="rsbench_segmentation.archives:POTSDAM"))
    register(_dataset("earthmiss", "earthmiss", "EarthMiss", earthmiss.LAYOUT, earthmiss.CLASSES,
                      "Zhou et al., EarthMiss dataset and MetaRS method, Remote Sensing of Environment 2025",
                      archives="rsbench_segmentation.archives:EARTHMISS"))
    # One DynamicEarthNet layout, three datasets: each evaluation checks only the files it reads
    # (a Planet-only download serves dyna-pla). The fixture writer writes every modality.
    for name, what, part in (("dyna-pla", "Planet", "pla"), ("dyna-s2", "Sentinel-2", "s2"),
                             ("dyna-mm", "Planet + Sentinel-2 + Sentinel-1", "mm")):
        register(DatasetInfo(name=name, title=f"DynamicEarthNet ({what})", layout=dynamicearthnet.LAYOUT,
                             classes=dynamicearthnet.CLASSES,
                             checker=f"rsbench_segmentation.dynamicearthnet:check_{part}",
                             fixture=f"rsbench_segmentation.dynamicearthnet:write_{part}",
                             citation=DYNNET, archives=f"rsbench_segmentation.archives:DYNA_{part.upper()}"))


DYNNET = ("Toker et al., DynamicEarthNet: Daily Multi-Spectral Satellite Dataset for Semantic Change "
          "Segmentation, CVPR 2022")
#: DynamicEarthNet: dynnet's crop 512 of the 1024 px cubes, weekly Planet frames.
DYNA_OPTIONS = dict(SCHEDULE, crop_size=512, slide_stride=0, temporal="weekly", temporal_reduction="mean",
                    stats_samples=32, split_seed=0)
DYNA_METRIC = ("mIoU (%): mmseg IoUMetric, mean over the 6 scored classes (impervious, agriculture, forest "
               "& other vegetation, wetlands, soil, water) of per-class IoU accumulated over all pixels of "
               "the split's cube-months (snow & ice and non-one-hot pixels = 255, ignored; dynnet's "
               "jaccard_index); trained on train.txt; sliding-window inference at the training crop")


@hookimpl
def rsbench_register_tasks(register):
    register(TaskInfo(
        size_options=SIZES,
        predictions=PREDICTIONS,
        name="isaid", title="iSAID semantic segmentation", family="segmentation", dataset="isaid",
        card="rsbench_segmentation.cards:ISAID",
        task_class=BUILDER, metric="mIoU",
        metric_definition=("mIoU (%): mmseg IoUMetric, mean over 16 classes (15 objects + background) of "
                           "per-class IoU accumulated over all val patches (896 px, overlap 384 as mmseg's "
                           "converter; padding labelled 255 = ignored); trained on train"),
        modalities={"hr": RGB}, splits=("val",), default_split="val",
        options=dict(SCHEDULE, batch_size=2, patch_size=896, overlap=384), evaluation_of=("skysense",),
        smoke_iters=100, smoke_options=dict(patch_size=64, overlap=16, batch_size=4, lr=1e-2),
    ))
    register(TaskInfo(
        size_options=SIZES,
        predictions=PREDICTIONS,
        option_cards={"head": {"mars": "rsbench_segmentation.cards:DEEPGLOBE_ROAD_MARS"}},
        name="deepglobe-road", title="DeepGlobe road extraction", family="segmentation", dataset="deepglobe-road",
        card="rsbench_segmentation.cards:DEEPGLOBE_ROAD",
        task_class=BUILDER, metric="IoU",
        metric_definition=("IoU (%) of the road class: mmseg IoUMetric per-class IoU of 'road' accumulated "
                           "over all test pixels (mask = any channel >= 128); test = seeded re-split of the "
                           "labelled train/ images at test_ratio (4,696/1,530 proportion); sliding-window "
                           "inference, window = training crop, stride = crop (MaRS)"),
        modalities={"hr": RGB}, splits=("test",), default_split="test",
        # head: uniform (UPerNet, as every segmentation task) | mars (MaRS' released MaRSFCN decoder, which
        # MaRS' 68.44 IoU belongs to; card deepglobe-road/head=mars)
        options=dict(SCHEDULE, crop_size=512, slide_stride=0, test_ratio=deepglobe_road.TEST_RATIO, split_seed=0,
                     head="uniform"),
        smoke_iters=60, smoke_options=dict(crop_size=64, batch_size=4, lr=2e-3),
        evaluation_of=("mars",),
    ))
    register(TaskInfo(
        size_options=SIZES,
        predictions=PREDICTIONS,
        name="potsdam", title="ISPRS Potsdam semantic segmentation", family="segmentation", dataset="potsdam",
        card="rsbench_segmentation.cards:POTSDAM",
        task_class=BUILDER, metric="mF1",
        metric_definition=("mF1 (%): mmseg IoUMetric per-class F-score (beta 1) accumulated over the 14 test "
                           "tiles' 512 px patches (stride 256, as mmseg's converter) on the noBoundary labels "
                           "(black boundaries ignored), averaged over the 5 classes without clutter (ISPRS "
                           "convention); RGB tiles (2_Ortho_RGB)"),
        modalities={"hr": RGB}, splits=("test",), default_split="test",
        options=dict(SCHEDULE, patch_size=512, overlap=256), evaluation_of=("skysense",),
        smoke_iters=50, smoke_options=dict(patch_size=64, overlap=32, batch_size=4, lr=1e-2),
    ))
    register(TaskInfo(
        size_options=SIZES,
        predictions=PREDICTIONS,
        name="earthmiss", title="EarthMiss segmentation with a missing modality", family="segmentation",
        card="rsbench_segmentation.cards:EARTHMISS",
        dataset="earthmiss", task_class=BUILDER, metric="mIoU",
        metric_definition=("mIoU (%): mmseg IoUMetric, mean over 8 classes of per-class IoU accumulated over "
                           "the test cities (raw mask 0 ignored); missing_modality names the modality absent "
                           "in training and test (sar or hr; none feeds both), declared to the backbone via "
                           "in_modalities; sliding-window inference at the training crop"),
        modalities={"hr": RGB, "sar": ("SAR",)}, splits=("test", "val"), default_split="test",
        options=dict(SCHEDULE, crop_size=512, slide_stride=0, missing_modality="sar"),
        smoke_iters=60, smoke_options=dict(crop_size=64, batch_size=4, lr=1e-3),
        evaluation_of=("mars",),
    ))
    dyna = dict(family="segmentation", task_class=BUILDER, metric="mIoU", splits=("val", "test"),
                default_split="val", options=DYNA_OPTIONS, evaluation_of=("skysense",),
                smoke_iters=60, smoke_options=dict(crop_size=64, batch_size=2, lr=5e-3))
    register(TaskInfo(
        size_options=SIZES,
        predictions=PREDICTIONS,
        name="dyna-pla", title="DynamicEarthNet semantic segmentation, Planet time series", dataset="dyna-pla",
        card="rsbench_segmentation.cards:DYNA_PLA",
        metric_definition=DYNA_METRIC + "; input: the label month's Planet frames (temporal=weekly: days "
                          "01,05,10,15,20,25; single: 01), bands B,G,R,NIR",
        modalities={"hr": dynamicearthnet.PLANET_BANDS}, **dyna,
    ))
    register(TaskInfo(
        size_options=SIZES,
        predictions=PREDICTIONS,
        name="dyna-s2", title="DynamicEarthNet semantic segmentation, Sentinel-2 monthly", dataset="dyna-s2",
        card="rsbench_segmentation.cards:DYNA_S2",
        metric_definition=DYNA_METRIC + "; input: the label month's Sentinel-2 composite (12 bands)",
        modalities={"s2": dynamicearthnet.S2_BANDS}, **dyna,
    ))
    register(TaskInfo(
        size_options=SIZES,
        predictions=PREDICTIONS,
        name="dyna-mm", title="DynamicEarthNet semantic segmentation, Planet + S2 + S1", dataset="dyna-mm",
        card="rsbench_segmentation.cards:DYNA_MM",
        metric_definition=DYNA_METRIC + "; input: the label month's Planet frames (as dyna-pla) and its "
                          "Sentinel-2 (12 bands) and Sentinel-1 (8 bands) composites",
        modalities={"hr": dynamicearthnet.PLANET_BANDS, "s2": dynamicearthnet.S2_BANDS,
                    "s1": dynamicearthnet.S1_BANDS}, **dyna,
    ))
