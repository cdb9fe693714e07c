"""Protocol cards of the segmentation evaluations (see :mod:`rsbench.protocol.protocol_card`).

iSAID follows SkySense's released config; DeepGlobe road follows MaRS' released code
(commit 5da1a5a); the others document the harness's defaults, since neither paper's settings
for them were recovered (shared/reference/paper_numbers.md §2, §4). DeepGlobe road has a second
card for ``-o head=mars`` (MaRS' released decoder, which its paper number belongs to), picked by
``TaskInfo.option_cards``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rsbench.protocol.protocol_card import ProtocolCard, harness, official

SS_ISAID = "SkySense config upernet_swinv2_huge_patch4_window8_896x896_80k_isaid.py"
MARS_ROAD = "MaRS downtasks/terratorch/train_road.py + dataset_factory.py (WanderRainy/MaRS@5da1a5a)"
NO_SETTING = "the paper's fine-tuning setting for this dataset was not recovered (supplementary Sec. 11 unread)"
MARS_NO_CODE = "MaRS released no downstream code for this task"

UPERNET = ("UPerNet: mmseg UPerHead (pool scales 1,2,3,6, 512 ch) + FCNHead auxiliary on stage 3 "
           "(loss weight 0.4), BN")
#: The harness's schedule for segmentation (SkySense's iSAID recipe without its batch and decay).
HARNESS_SCHEDULE = "80k iterations, poly (power 1) after warmup"
UNIFORM = "the harness's uniform segmentation head, so that backbones compare on one decoder"


def _harness_common() -> dict[str, Any]:
    """Settings the segmentation task uses where no official one is known."""
    return dict(
        head=harness(None, UNIFORM, UPERNET),
        effective_batch=harness(None, NO_SETTING + "; the task's batch_size option per process, no accumulation",
                                "batch_size option (8) x processes"),
        schedule=harness({"iters": 80000, "policy": "poly"}, NO_SETTING + "; SkySense's iSAID length is used",
                         HARNESS_SCHEDULE),
        optimizer=harness({"type": "AdamW", "betas": (0.9, 0.999), "weight_decay": 0.01},
                          NO_SETTING + "; SkySense's iSAID optimizer is used", "AdamW (0.9, 0.999), wd 0.01, "
                          "no decay on norms"),
        lr=harness(6e-5, NO_SETTING + "; SkySense's iSAID LR", "6e-5"),
        layer_decay=harness(None, NO_SETTING + "; a uniform LR keeps baselines and foundation models alike",
                            "none"),
        drop_path=harness(None, NO_SETTING + "; the backbone preset's rate is kept", "preset's"),
        warmup=harness({"steps": 1500, "start_factor": 1e-6}, NO_SETTING + "; SkySense's iSAID warmup, at most "
                       "a tenth of the run", "linear, min(1,500, iterations/10) iterations from 1e-6"),
        loss=harness(None, NO_SETTING, "cross-entropy (decode 1.0 + auxiliary 0.4)"),
        augmentation=harness(None, NO_SETTING, "random crop (cat_max_ratio 0.75) + horizontal flip"),
    )


def _harness_card(task: str, crop: str, split: str, metric: str, inference: str, *, paper_crop: bool = False,
                  mars: bool = False, **over: Any) -> ProtocolCard:
    reason = MARS_NO_CODE if mars else NO_SETTING
    settings = _harness_common()
    settings.update(
        crop=harness(None, reason + "; the task's crop_size/patch_size option", crop),
        eval_split=harness(None, reason + "; the dataset's official split where it has one", split),
        metric_variant=harness(None, reason + "; the dataset's customary metric", metric),
        inference=harness(None, reason, inference),
    )
    settings.update(over)
    return ProtocolCard(task=task, version=1, **settings)


# -- iSAID: SkySense's released config ----------------------------------------------------------------
ISAID = ProtocolCard(
    task="isaid", version=1, configures=True,
    head=official(None, SS_ISAID + " (mmseg upernet_swin base; 16 classes incl. background)", UPERNET),
    crop=official(896, SS_ISAID + "; mmseg's iSAID converter cuts 896 px patches with 384 px overlap",
                  "896 x 896 patches, overlap 384"),
    effective_batch=official({"total": 16, "per_process": 2}, SS_ISAID + " ('8 GPUs x 2' in the config)",
                             "16 = 8 GPUs x 2; fewer processes accumulate gradients"),
    schedule=official({"iters": 80000, "policy": "poly", "power": 1.0, "eta_min": 0.0},
                      SS_ISAID + " (schedule_80k)", "80k optimiser steps, poly LR (power 1, min 0)"),
    optimizer=official({"type": "AdamW", "betas": (0.9, 0.999), "weight_decay": 0.01}, SS_ISAID,
                       "AdamW (0.9, 0.999), wd 0.01; no decay on norms and position tables"),
    lr=official(6e-5, SS_ISAID, "6e-5"),
    layer_decay=official({"rate": 0.9, "num_layers": 24},
                         SS_ISAID + " (SwinV2LayerDecayOptimizerConstructor, depths 2-2-18-2)",
                         "0.9 over 24 layers (SwinV2/ViT encoders; CNNs: none)"),
    drop_path=official(0.2, SS_ISAID + " (backbone drop_path_rate)", "0.2"),
    warmup=official({"steps": 1500, "start_factor": 1e-6}, SS_ISAID,
                    "linear, 1,500 steps from 1e-6 (by iteration)"),
    loss=official(None, SS_ISAID + " (mmseg upernet base)", "cross-entropy, decode 1.0 + auxiliary 0.4"),
    augmentation=official("rsbench_segmentation.isaid:augmentation",
                          "mmseg configs/_base_/datasets/isaid.py, inherited by " + SS_ISAID,
                          "random resize 0.5-2.0, random crop 896 (cat_max_ratio 0.75), flip 0.5, "
                          "photometric distortion"),
    eval_split=official("val", "SkySense README (iSAID results on val; test has no public masks)",
                        "trained on train, scored on val"),
    metric_variant=official(None, "SkySense README / mmseg IoUMetric", "mIoU over 16 classes, background included"),
    inference=official("whole", "mmseg iSAID base: whole inference on the 896 px patches",
                       "whole, patch by patch"),
    notes=("biases keep weight decay: the official configs' bias entry is a typo ('decay_multi')",),
)


def deepglobe_augmentation(crop: int) -> list[dict[str, Any]]:
    """MaRS' DeepGlobe training augmentation in mmseg transforms: random crop, horizontal and
    vertical flips (each p 0.5), rotation by up to 90 degrees (p 0.5; padded 0 / 255 ignored,
    where albumentations reflects)."""
    return [dict(type="RandomCrop", crop_size=(crop, crop)),
            dict(type="RandomFlip", prob=0.5, direction="horizontal"),
            dict(type="RandomFlip", prob=0.5, direction="vertical"),
            dict(type="RandomRotate", prob=0.5, degree=90, pad_val=0, seg_pad_val=255)]


MARS_HEAD_NOTE = ("MaRS' 68.44 IoU was measured with its released MaRSFCN decoder (4 transposed-conv blocks + "
                  "a final deconv, 2 classes), not UPerNet: it belongs to head=mars; this head (uniform) has no "
                  "paper number")
MARS_SEGMODEL = "MaRS downtasks/terratorch/segmodel.py: MaRSFCN (WanderRainy/MaRS@5da1a5a)"
#: MaRS' input normalisation (albumentations mean = std = 0.5 on 0-1 pixels) in 0-255 units.
MARS_PIXEL_MEAN, MARS_PIXEL_STD = 127.5, 127.5

DEEPGLOBE_ROAD = ProtocolCard(
    task="deepglobe-road", version=1, configures=True,
    head=harness(None, UNIFORM + "; see paper_head", UPERNET),
    paper_head=MARS_HEAD_NOTE,
    crop=official(512, MARS_ROAD + " (random crop 512)", "512 random crops"),
    effective_batch=official({"total": 6, "per_process": 6}, MARS_ROAD + " (batch_size 6 per process; DDP over "
                             "every visible GPU, count not stated: 6 is kept as the effective batch)", "6"),
    schedule=official({"epochs": 80, "policy": "step", "step_epochs": 20, "gamma": 0.5},
                      MARS_ROAD + " (StepLR step = epochs // 4, gamma 0.5)", "80 epochs, LR x0.5 every 20 epochs"),
    optimizer=official({"type": "Adam", "betas": (0.9, 0.999), "weight_decay": 0.0}, MARS_ROAD,
                       "Adam, no weight decay"),
    lr=official(1e-4, MARS_ROAD, "1e-4"),
    layer_decay=official(None, MARS_ROAD + " (one LR for all parameters)", "none"),
    drop_path=official(0.1, MARS_ROAD + ": MaRSBackbone sets none, so timm's default for "
                       "swinv2_base_window8_256 (0.1)", "0.1 (timm default)"),
    warmup=official(None, MARS_ROAD, "none"),
    loss=official({"ce": 0.5, "dice": 0.5}, MARS_ROAD, "0.5 cross-entropy + 0.5 Dice"),
    augmentation=official("rsbench_segmentation.cards:deepglobe_augmentation", MARS_ROAD,
                          "random crop 512, h/v flips, rotation up to 90 degrees"),
    eval_split=harness("test", "MaRS tests on a custom split of the labelled train/ images (dg_road/test_label) "
                       "whose list is not released; the harness re-splits with the common 4,696/1,530 "
                       "proportion (test_ratio, split_seed)", "seeded 1,530/6,226 re-split of train/"),
    metric_variant=official(None, MARS_ROAD + " (torchmetrics binary IoU)", "IoU of the road class"),
    inference=official("slide", MARS_ROAD + " (test_road.py: sliding window, stride = crop)",
                       "sliding window 512, stride 512"),
    notes=("-o head=mars runs MaRS' released MaRSFCN decoder with card deepglobe-road/head=mars@1: no auxiliary "
           "head, inputs normalised 0.5/0.5; its other settings are this card's",
           "MaRS normalises with mean/std 0.5 on 0-1 pixels; the uniform head keeps ImageNet statistics"),
)

#: deepglobe-road with -o head=mars: MaRS' released decoder, loss and normalisation; the rest as above.
DEEPGLOBE_ROAD_MARS = replace(
    DEEPGLOBE_ROAD, task="deepglobe-road/head=mars",
    head=official(None, MARS_SEGMODEL + " (swin-large widths hard-coded "
                  "there; here the backbone's stage widths)", "MaRSFCN: 4 up-blocks (1x1, deconv x2, 1x1; BN+ReLU) "
                  "from the last stage only + deconv x2 to 32 ch + 3x3 conv + 1x1 to 2 classes; no auxiliary head"),
    paper_head="MaRS' 68.44 IoU was measured with this head (MaRSFCN)",
    loss=official({"ce": 0.5, "dice": 0.5}, MARS_ROAD + " (CrossEntropyLoss + segmentation_models_pytorch "
                  "DiceLoss multiclass)", "0.5 CE + 0.5 Dice (mmseg CrossEntropyLoss + DiceLoss: naive dice on "
                  "softmax per class over the batch; ignored pixels masked)"),
    notes=("inputs normalised with mean/std 0.5 on 0-1 pixels (127.5/127.5), as " + MARS_ROAD,
           "Dice: mmseg's DiceLoss reduced as the release's segmentation_models_pytorch one (per class over the "
           "batch, classes absent from it count 0, mean over classes); mmseg's eps 1e-3 where smp's is 1e-7"),
)

POTSDAM = _harness_card("potsdam", "512 px patches, stride 256 (mmseg converter)", "the 14 ISPRS test tiles",
                        "mF1 over 5 classes without clutter, noBoundary labels (ISPRS convention)",
                        "whole, patch by patch")
EARTHMISS = _harness_card("earthmiss", "512 random crops", "the EarthMiss test cities",
                          "mIoU over 8 classes (raw 0 ignored)", "sliding window 512, stride 512", mars=True,
                          paper_head="MaRS' ≈49.90 mIoU: decoder not released")
_DYNA = dict(crop="512 random crops of the 1024 px cubes (dynnet)", split="val (SkySense reports val and test)",
             metric="mIoU over 6 classes (snow & ice ignored), dynnet's jaccard", inference="sliding window 512")
DYNA_PLA = _harness_card("dyna-pla", _DYNA["crop"], _DYNA["split"], _DYNA["metric"], _DYNA["inference"])
DYNA_S2 = _harness_card("dyna-s2", _DYNA["crop"], _DYNA["split"], _DYNA["metric"], _DYNA["inference"])
DYNA_MM = _harness_card("dyna-mm", _DYNA["crop"], _DYNA["split"], _DYNA["metric"], _DYNA["inference"])

CARDS = {c.task: c for c in (ISAID, DEEPGLOBE_ROAD, POTSDAM, EARTHMISS, DYNA_PLA, DYNA_S2, DYNA_MM)}
