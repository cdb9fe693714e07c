"""Declarations of the image-level and cross-modal datasets and tasks. Light: no torch import."""

from __future__ import annotations

from rsbench import DatasetInfo, TaskInfo, hookimpl
from rsbench_imagelevel import ben_mm, ben_s2, dfc23, fmow_s2, guso, resisc45
from rsbench_imagelevel.prediction_csv import MULTI_LABEL, SINGLE_LABEL

OA = "OA: overall accuracy (top-1, %) over all test images (micro average)"
SCENE_OPTIONS = dict(train_ratio=0.2, split_seed=0, epochs=30, batch_size=32, lr=5e-4, max_size=256)
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
HEIGHT = ("RMSE (m, headline, lower is better) = sqrt of the mean squared height error pooled over every pixel "
          "of every scored tile (ground included); also MAE, MSE (all pixels), RMSE_building (pixels with gt > 0) and "
          "delta_k (%, k=1,2,3) = share of pixels with gt > 0 where max(pred/gt, gt/pred) < 1.25^k, pred <= 0 a miss; "
          "pred clamped at 0 m. Split 'holdout' (default, MaRS): random 80/20 of train, seed 42")


def datasets() -> list[DatasetInfo]:
    return [
        DatasetInfo(
            name="resisc45", title="NWPU-RESISC45", layout=resisc45.LAYOUT, classes=resisc45.CLASSES,
            checker="rsbench_imagelevel.resisc45:check", fixture="rsbench_imagelevel.resisc45:write_fixture",
            citation="Cheng et al., Remote Sensing Image Scene Classification: Benchmark and State of the "
                     "Art, Proc. IEEE 2017",
            archives="rsbench_imagelevel.archives:RESISC45",
        ),
        DatasetInfo(
            name="dfc23-t2", title="IEEE GRSS DFC 2023 track 2 (building height)", layout=dfc23.LAYOUT, classes=(),
            checker="rsbench_imagelevel.dfc23:check", fixture="rsbench_imagelevel.dfc23:write_fixture",
            citation="Persello et al., 2023 IEEE GRSS Data Fusion Contest: Large-Scale Fine-Grained Building "
                     "Classification for Semantic Urban Reconstruction, IEEE GRSM 2023",
        ),
        DatasetInfo(
            name="ben-s2", title="BigEarthNet v1.0 / v2.0 reBEN (S2)", layout=ben_s2.LAYOUT, classes=ben_s2.CLASSES,
            checker="rsbench_imagelevel.ben_s2:check", fixture="rsbench_imagelevel.ben_s2:write_fixture",
            citation="Sumbul et al., BigEarthNet: A Large-Scale Benchmark Archive for Remote Sensing Image "
                     "Understanding, IGARSS 2019; Clasen et al., reBEN: Refined BigEarthNet Dataset for Remote "
                     "Sensing Image Analysis, IGARSS 2025",
            archives="rsbench_imagelevel.archives:BEN_S2",
        ),
        DatasetInfo(
            name="ben-mm", title="BigEarthNet-MM (S1 + S2)", layout=ben_mm.LAYOUT, classes=ben_mm.CLASSES,
            checker="rsbench_imagelevel.ben_mm:check", fixture="rsbench_imagelevel.ben_mm:write_fixture",
            citation="Sumbul et al., BigEarthNet-MM: A Large-Scale, Multimodal, Multilabel Benchmark Archive "
                     "for Remote Sensing Image Classification and Retrieval, IEEE GRSM 2021; Clasen et al., "
                     "reBEN, IGARSS 2025",
            archives="rsbench_imagelevel.archives:BEN_MM",
        ),
        DatasetInfo(
            name="fmow-s2", title="fMoW-Sentinel", layout=fmow_s2.LAYOUT, classes=fmow_s2.CLASSES,
            checker="rsbench_imagelevel.fmow_s2:check", fixture="rsbench_imagelevel.fmow_s2:write_fixture",
            citation="Cong et al., SatMAE: Pre-training Transformers for Temporal and Multi-Spectral Satellite "
                     "Imagery, NeurIPS 2022 (fMoW: Christie et al., CVPR 2018)",
        ),
        DatasetInfo(
            name="guso", title="GUSO optical/SAR pairs", layout=guso.LAYOUT, classes=(),
            checker="rsbench_imagelevel.guso:check", fixture="rsbench_imagelevel.guso:write_fixture",
            citation="GUSO (vision-heng/GUSO), used by MaRS (AAAI 2026) for cross-modal registration and translation",
        ),
    ]


def tasks() -> list[TaskInfo]:
    return [
        TaskInfo(
            name="resisc45", title="NWPU-RESISC45 scene classification", family="classification",
            dataset="resisc45", builder="rsbench_classification.scene_task:SceneClassificationTask",
            metric="OA", metric_definition=OA + "; per-class random split at train_ratio (TR 10% or 20%)",
            modalities={"hr": ("R", "G", "B")}, splits=("test",), default_split="test",
            options=SCENE_OPTIONS, evaluation_of=("skysense",), smoke_iters=40,
            predictions=SINGLE_LABEL.format(id="the image's file stem (airplane/airplane_001.jpg -> airplane_001)"),
        ),
        TaskInfo(
            name="ben-s2", title="BigEarthNet-S2 multi-label classification (19 classes)", family="classification",
            dataset="ben-s2", builder="rsbench_imagelevel.bands_task:MultiLabelBandsTask",
            metric="mAP", metric_definition=MAP + "; label_fraction of train sampled per class (10% / 100%)",
            modalities={"s2": S2}, splits=("val", "test"), default_split="test",
            options=BEN_OPTIONS, evaluation_of=("skysense",), smoke_iters=40,
            smoke_options=dict(batch_size=16, lr=1e-3), predictions=MULTI_LABEL.format(id=BEN_ID),
        ),
        TaskInfo(
            name="ben-mm", title="BigEarthNet-MM multi-label classification (S1 + S2, 19 classes)",
            family="classification", dataset="ben-mm", builder="rsbench_imagelevel.bands_task:MultiLabelBandsTask",
            metric="mAP", metric_definition=MAP + "; S2 and S1 paired by the split CSVs",
            modalities={"s2": S2, "s1": ("VV", "VH")}, splits=("val", "test"), default_split="test",
            options=BEN_OPTIONS, evaluation_of=("skysense",), smoke_iters=40,
            smoke_options=dict(batch_size=16, lr=1e-3), predictions=MULTI_LABEL.format(id=BEN_ID),
        ),
        TaskInfo(
            name="fmow-s2", title="fMoW-Sentinel scene classification (62 classes)", family="classification",
            dataset="fmow-s2", builder="rsbench_imagelevel.bands_task:BandsClassificationTask",
            metric="top-1", metric_definition=TOP, modalities={"s2": fmow_s2.BANDS}, splits=("val", "test"),
            default_split="val", options=FMOW_OPTIONS, evaluation_of=("skysense",), smoke_iters=40,
            smoke_options=dict(batch_size=16, lr=1e-3, img_size=24),
            predictions=SINGLE_LABEL.format(id="the image's file stem (<category>_<location>_<image>, e.g. "
                                               "airport_0_0)") + "; top-5 needs the probability columns",
        ),
        TaskInfo(
            name="guso-reg", title="GUSO optical/SAR registration", family="cross-modal", dataset="guso",
            predictions=("a CSV (or a folder holding registration.csv) with a header id,h00,...,h22 (the 3x3 "
                         "homography row by row) or id,a00,...,a12 (its affine part); id as in {id}_opt.png; the "
                         "transform maps optical pixels (x, y, 1) to SAR pixels of the full images, as {id}_H.txt"),
            builder="rsbench_imagelevel.guso_tasks:RegistrationTask", metric="RMSE",
            metric_definition=("RMSE (pixels, lower is better): per pair, RMSE between a 20x20 grid of optical "
                               "points mapped by the predicted and by the ground-truth H_0to1, capped at 5, "
                               "averaged over pairs; also success_rate = % of pairs with RMSE < 3. Predicted H from "
                               "a correlation head on the backbone's stride-8 features (option feature_stride; affine, "
                               "IRLS-weighted LSQ)"),
            modalities={"hr": ("R", "G", "B"), "sar": ("SAR",)}, splits=("val", "test"), default_split="test",
            higher_is_better=False, options=dict(img_size=512, search_px=64, epochs=20, batch_size=8, lr=2e-4,
                                                 feature_stride=8),
            smoke_iters=150, smoke_options=dict(img_size=64, search_px=16, batch_size=4, feature_stride=4, lr=3e-3),
            evaluation_of=("mars",),
        ),
        TaskInfo(
            name="guso-trans", title="GUSO SAR-to-optical translation", family="cross-modal", dataset="guso",
            predictions=("a folder of 8-bit RGB PNGs named like the optical targets ({id}_opt.png), each the "
                         "target's full size; scored on the run's centre crop"),
            builder="rsbench_imagelevel.guso_tasks:TranslationTask", metric="PSNR",
            metric_definition=("PSNR (dB, headline) = mean over test pairs of 10 log10(1 / MSE) of the predicted vs "
                               "the true optical image in [0, 1]; SSIM also reported (Gaussian 11x11, sigma 1.5, "
                               "K1 0.01, K2 0.03, valid window positions, channel mean); chance baseline PSNR_flat / "
                               "SSIM_flat: each target's own mean colour as a flat image. Input: the SAR image only, "
                               "resampled into the optical frame where the pair has a ground-truth H"),
            modalities={"hr": ("R", "G", "B"), "sar": ("SAR",)}, splits=("val", "test"), default_split="test",
            options=dict(img_size=512, search_px=64, epochs=20, batch_size=8, lr=5e-4),
            smoke_iters=300, smoke_options=dict(img_size=64, batch_size=8, lr=2e-3),
            evaluation_of=("mars",),
        ),
        TaskInfo(
            name="dfc23-t2", title="DFC23 track 2 building height regression (optical + SAR)", family="cross-modal",
            predictions=("a folder of single-band GeoTIFFs of heights in metres named like the height labels "
                         "(Pxxxx.tif), each the label tile's size, all values finite"),
            dataset="dfc23-t2", builder="rsbench_imagelevel.height:HeightTask", metric="RMSE",
            metric_definition=HEIGHT, modalities={"hr": ("R", "G", "B"), "sar": ("SAR",)},
            splits=("holdout", "val", "test"), default_split="holdout", higher_is_better=False,
            options=dict(img_size=512, holdout_fraction=0.2, split_seed=42, epochs=80, batch_size=6, lr=1e-4,
                         stats_samples=64),
            smoke_iters=60, smoke_options=dict(img_size=64, batch_size=4, lr=2e-3),
            evaluation_of=("mars",),
        ),
    ]


@hookimpl
def rsbench_register_datasets(register):
    for info in datasets():
        register(info)


@hookimpl
def rsbench_register_tasks(register):
    for info in tasks():
        register(info)
