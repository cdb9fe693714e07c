"""Declarations of the cross-modal datasets and tasks (optical/SAR registration and translation,
building height regression). Light: no torch import."""

from __future__ import annotations

from rsbench import DatasetInfo, SizeOption, TaskInfo, hookimpl
from rsbench_crossmodal import dfc23, guso

#: Plugins whose modules this one imports (registration reads prediction CSVs as classification does).
DEPENDS_ON = ("classification",)

HEIGHT = ("RMSE (m, headline, lower is better) = sqrt of the mean squared height error pooled over every pixel "
          "of every scored tile (ground included); also MAE, MSE (all pixels), RMSE_building (pixels with gt > 0) and "
          "delta_k (%, k=1,2,3) = share of pixels with gt > 0 where max(pred/gt, gt/pred) < 1.25^k, pred <= 0 a miss; "
          "pred clamped at 0 m. Split 'holdout' (default, MaRS): random 80/20 of train, seed 42")



#: What the tasks' pixel-size options mean (the backbones' input rules are checked against them).
SIZES = {"img_size": SizeOption("crop", "the crop of each image pair", zero="the native size", native=True)}

def datasets() -> list[DatasetInfo]:
    return [
        DatasetInfo(
            name="dfc23-t2", title="IEEE GRSS DFC 2023 track 2 (building height)", layout=dfc23.LAYOUT, classes=(),
            checker="rsbench_crossmodal.dfc23:check", fixture="rsbench_crossmodal.dfc23:write_fixture",
            citation="Persello et al., 2023 IEEE GRSS Data Fusion Contest: Large-Scale Fine-Grained Building "
                     "Classification for Semantic Urban Reconstruction, IEEE GRSM 2023",
            archives="rsbench_crossmodal.archives:DFC23_T2",
        ),
        DatasetInfo(
            name="guso", title="GUSO optical/SAR pairs", layout=guso.LAYOUT, classes=(),
            checker="rsbench_crossmodal.guso:check", fixture="rsbench_crossmodal.guso:write_fixture",
            citation="GUSO (vision-heng/GUSO), used by MaRS (AAAI 2026) for cross-modal registration and translation",
            archives="rsbench_crossmodal.archives:GUSO",
        ),
    ]


def tasks() -> list[TaskInfo]:
    return [
        TaskInfo(
            size_options=SIZES,
            name="guso-reg", title="GUSO optical/SAR registration", family="cross-modal", dataset="guso",
            card="rsbench_crossmodal.cards:GUSO_REG",
            predictions=("a CSV (or a folder holding registration.csv) with a header id,h00,...,h22 (the 3x3 "
                         "homography row by row) or id,a00,...,a12 (its affine part); id as in {id}_opt.png; the "
                         "transform maps optical pixels (x, y, 1) to SAR pixels of the full images, as {id}_H.txt"),
            task_class="rsbench_crossmodal.guso_tasks:RegistrationTask", metric="RMSE",
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
            size_options=SIZES,
            name="guso-trans", title="GUSO SAR-to-optical translation", family="cross-modal", dataset="guso",
            card="rsbench_crossmodal.cards:GUSO_TRANS",
            predictions=("a folder of 8-bit RGB PNGs named like the optical targets ({id}_opt.png), each the "
                         "target's full size; scored on the run's centre crop"),
            task_class="rsbench_crossmodal.guso_tasks:TranslationTask", metric="PSNR",
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
            size_options=SIZES,
            name="dfc23-t2", title="DFC23 track 2 building height regression (optical + SAR)", family="cross-modal",
            card="rsbench_crossmodal.cards:DFC23_T2",
            predictions=("a folder of single-band GeoTIFFs of heights in metres named like the height labels "
                         "(Pxxxx.tif), each the label tile's size, all values finite"),
            dataset="dfc23-t2", task_class="rsbench_crossmodal.height:HeightTask", metric="RMSE",
            metric_definition=HEIGHT, modalities={"hr": ("R", "G", "B"), "sar": ("SAR",)},
            splits=("holdout", "val", "test"), default_split="holdout", higher_is_better=False,
            options=dict(img_size=512, holdout_fraction=0.2, split_seed=42, epochs=80, batch_size=6, lr=1e-4,
                         stats_samples=64, head="uniform"),
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
