"""Declarations of the change-detection datasets and tasks. Light: no torch import."""

from __future__ import annotations

from rsbench import DatasetInfo, SizeOption, TaskInfo, hookimpl
from rsbench_change import dfc25, levir_cd, oscd, whu_cd
from rsbench_change.predictions import FORMATS
from rsbench_segmentation import dynamicearthnet

#: Plugins whose modules this one imports: the DynamicEarthNet reader lives in segmentation
#: (dyna-s2-cd reads the same cubes), one reader for both.
DEPENDS_ON = ("segmentation",)

BUILDER = "rsbench_change.change_task:ChangeDetectionTask"
RGB = ("R", "G", "B")
#: Defaults shared by the tasks (open-cd's LEVIR-CD schedule: 40k iterations, batch 8, 256 crops).
#: temporal: siamese | native (temporal backbones); fusion: concat | sum | diff | abs_diff;
#: eval_crop: 0 = whole-image inference, N = non-overlapping N px windows.
#: whu-cd adds split_protocol: auto | repack | official, and tile: the window size on the official scenes.
COMMON = dict(train_split="train", temporal="siamese", fusion="concat", crop_size=256, eval_crop=0,
              batch_size=8, iters=40000, lr=1e-4, log_interval=50)
#: Smoke runs on the tiny fixtures (the settings the run tests use).
SMOKE = dict(smoke_iters=50, smoke_options=dict(crop_size=64, batch_size=4, lr=4e-3))
SCORE = ("computed by mmseg IoUMetric (iou_metrics mIoU+mFscore) over pixels summed across all test "
         "images, per class, class 1 = changed")
#: The rule rsbench_change.dyna_cd.SCSMetric computes (declared here: no torch import).
DYNA_SCS = (
    "SCS = (BC + SC) / 2 (DynamicEarthNet codalab_eval/semantic_change_segmentation.py), pairs of consecutive "
    "months of each cube: gt change = gt_t != gt_t+1 on every pixel (snow & ice / non-one-hot = 255 counts as "
    "a value), predicted change = pred_t != pred_t+1; BC = TP/(TP+FP+FN) of change; SC = mIoU of month t+1 "
    "classes (6) on gt-changed pixels, gt-ignored rows dropped, sum of IoUs / classes with TP+FN > 0; "
    "confusions summed over all pairs, in percent rounded to 2 decimals (BC, SC also in metrics.json); "
    "pred_t+1 from the pair (t, t+1), pred_t from the reversed pair (t+1, t), same model")


#: What the tasks' pixel-size options mean (the backbones' input rules are checked against them).
SIZES = {
    "crop_size": SizeOption("crop", "the training crop"),
    "eval_crop": SizeOption("window", "the evaluation windows", zero="the whole image"),
    "tile": SizeOption("window", "the windows cut from the official scenes", zero="no windows"),
}

def _dataset(name: str, title: str, module, citation: str,
             classes: tuple[str, ...] = ("unchanged", "changed"), archives: str = "") -> DatasetInfo:
    return DatasetInfo(name=name, title=title, layout=module.LAYOUT, classes=classes,
                       checker=f"rsbench_change.{module.__name__.rsplit('.', 1)[1]}:check",
                       fixture=f"rsbench_change.{module.__name__.rsplit('.', 1)[1]}:write_fixture",
                       citation=citation, archives=archives)


@hookimpl
def rsbench_register_datasets(register):
    register(_dataset("levir-cd", "LEVIR-CD", levir_cd,
                      "Chen & Shi, A Spatial-Temporal Attention-Based Method and a New Dataset for Remote "
                      "Sensing Image Change Detection, Remote Sensing 2020",
                      archives="rsbench_change.archives:LEVIR_CD"))
    register(_dataset("whu-cd", "WHU-CD", whu_cd,
                      "Ji, Wei & Lu, Fully Convolutional Networks for Multisource Building Extraction From an "
                      "Open Aerial and Satellite Imagery Data Set, IEEE TGRS 2019",
                      archives="rsbench_change.archives:WHU_CD"))
    register(_dataset("oscd", "OSCD", oscd,
                      "Daudt et al., Urban Change Detection for Multispectral Earth Observation Using "
                      "Convolutional Neural Networks, IGARSS 2018", archives="rsbench_change.archives:OSCD"))
    register(_dataset("dfc25-t2", "DFC25 track 2 (BRIGHT)", dfc25,
                      "Chen et al., BRIGHT: A globally distributed multimodal building damage assessment "
                      "dataset with very-high-resolution for all-weather disaster response, 2025",
                      classes=dfc25.CLASSES, archives="rsbench_change.archives:DFC25_T2"))
    register(DatasetInfo(name="dyna-s2-cd", title="DynamicEarthNet (Sentinel-2), consecutive-month pairs",
                         layout=dynamicearthnet.LAYOUT, classes=dynamicearthnet.CLASSES,
                         checker="rsbench_change.dyna_cd:check", fixture="rsbench_change.dyna_cd:write_fixture",
                         citation="Toker et al., DynamicEarthNet: Daily Multi-Spectral Satellite Dataset for "
                                  "Semantic Change Segmentation, CVPR 2022",
                         archives="rsbench_change.archives:DYNA_S2_CD"))


@hookimpl
def rsbench_register_tasks(register):
    register(TaskInfo(
        size_options=SIZES,
        name="levir-cd", title="LEVIR-CD binary change detection", family="change", dataset="levir-cd",
        card="rsbench_change.cards:LEVIR_CD",
        task_class=BUILDER, metric="F1 (change)",
        metric_definition="F1 of the change class (2PR/(P+R), pixels 255 in label/), " + SCORE
                          + "; test split 128 images, full images or eval_crop windows (option); layout option: "
                          "auto (the official 1024 px tiles where present, else the 256 px crops), tiles1024, or "
                          "crops256 (BIT_CD's crops many repos ship); the row's data_layout says which was read",
        modalities={"hr": RGB}, splits=("test", "val"), default_split="test",
        options=dict(COMMON, layout="auto"), evaluation_of=("skysense",), **SMOKE,
        predictions=FORMATS["levir-cd"],
    ))
    register(TaskInfo(
        size_options=SIZES,
        option_cards={"head": {"mars": "rsbench_change.cards:WHU_CD_MARS"}},
        name="whu-cd", title="WHU-CD building change detection", family="change", dataset="whu-cd",
        card="rsbench_change.cards:WHU_CD",
        task_class=BUILDER, metric="IoU (change)",
        metric_definition="IoU of the change class (TP/(TP+FP+FN)); F1 of the change class also in "
                          "metrics.json (Fscore.changed); " + SCORE
                          + "; split protocol (option split_protocol, recorded in the row's adapter): 'repack' = "
                          "the 256 px re-pack's lists list/{train,val,test}.txt, 'official' = the release's "
                          "whole train/test areas (no val split) tiled into non-overlapping `tile` px windows "
                          "(default 512, the release's crop size), each test pixel scored once; 'auto' (default) "
                          "= the re-pack where it is present, else the official release",
        modalities={"hr": RGB}, splits=("test", "val"), default_split="test",
        # head: uniform (UPerHead, as every change task) | mars (MaRS' released change decoder, which MaRS'
        # 87.02 IoU belongs to; card whu-cd/head=mars)
        options=dict(COMMON, split_protocol="auto", tile=whu_cd.TILE, head="uniform"), evaluation_of=("mars",),
        **SMOKE,
        predictions=FORMATS["whu-cd"],
    ))
    # OSCD's change is rare (a few % of the pixels; the fixture's 15 %): class_weight=balanced weights the
    # head's CE by inverse training pixel frequency, as the OSCD authors' networks are trained. Under plain CE
    # the transformer backbones' smoke runs settled on "unchanged everywhere" (F1 undefined).
    register(TaskInfo(
        size_options=SIZES,
        name="oscd", title="OSCD Sentinel-2 urban change detection", family="change", dataset="oscd",
        card="rsbench_change.cards:OSCD",
        task_class=BUILDER, metric="F1 (change)",
        metric_definition="F1 of the change class over the 10 test cities (full images), " + SCORE
                          + "; 13-band L1C, the backbone's S2 bands (RGB backbones: B4,B3,B2)",
        modalities={"s2": oscd.BANDS, "hr": RGB}, views={"hr": "s2"}, splits=("test",), default_split="test",
        options=dict(COMMON, crop_size=96, iters=10000, class_weight="balanced"), evaluation_of=("skysense",),
        **SMOKE,
        predictions=FORMATS["oscd"],
    ))
    register(TaskInfo(
        size_options=SIZES,
        name="dfc25-t2", title="DFC25 track 2 (BRIGHT) building damage, optical pre + SAR post",
        card="rsbench_change.cards:DFC25_T2",
        family="change", dataset="dfc25-t2", task_class=BUILDER, metric="mIoU (4 classes)",
        metric_definition="mIoU over background, intact, damaged, destroyed (mmseg IoUMetric mIoU: "
                          "per-class IoU over pixels summed across the split, nan-mean over classes); "
                          "scored on the holdout list; --split submission writes predictions for the "
                          "unlabelled test (else val) list",
        modalities={"hr": RGB, "sar": ("SAR",)}, splits=("holdout", "val", "test", "submission"),
        default_split="holdout", options=dict(COMMON, crop_size=512), evaluation_of=("mars",), **SMOKE,
        predictions=FORMATS["dfc25-t2"],
    ))
    register(TaskInfo(
        size_options=SIZES,
        name="dyna-s2-cd", title="DynamicEarthNet Sentinel-2 semantic change segmentation (SCS)",
        card="rsbench_change.cards:DYNA_S2_CD",
        family="change", dataset="dyna-s2-cd", task_class="rsbench_change.dyna_cd:DynaSemanticChangeTask",
        metric="SCS", metric_definition=DYNA_SCS, modalities={"s2": dynamicearthnet.S2_BANDS},
        splits=("test", "val"), default_split="test", options=COMMON, evaluation_of=("skysense",), **SMOKE,
        predictions=FORMATS["dyna-s2-cd"],
    ))
