"""Protocol cards of the change-detection evaluations (see :mod:`rsbench.protocol.protocol_card`).

WHU-CD follows MaRS' released code (commit 5da1a5a); the others document the harness's defaults
(open-cd's LEVIR-CD recipe), since neither paper's settings for them were recovered and MaRS
released no DFC25 code. WHU-CD has a second card for ``-o head=mars`` (MaRS' released change
decoder, which its paper number belongs to).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rsbench.protocol.protocol_card import ProtocolCard, harness, official

MARS_CD = "MaRS downtasks/terratorch/train_change.py + dataset_factory.py (WanderRainy/MaRS@5da1a5a)"
MARS_BACKBONE = ("MaRS downtasks/terratorch/backbone.py: MaRSBackbone sets no drop_path_rate, so timm's default "
                 "for swinv2_base_window8_256 (0.1)")
NO_SETTING = "the paper's fine-tuning setting for this dataset was not recovered (supplementary Sec. 11 unread)"
OPENCD = "open-cd's LEVIR-CD schedule (40k iterations, batch 8, 256 crops, AdamW)"
HEAD = ("siamese backbone per date + FeatureFusionNeck (concat) + UPerHead (512 ch); one multimodal call for "
        "optical-before/SAR-after with a backbone taking both")
UNIFORM = "the harness's uniform change head, so that backbones compare on one decoder"

WHU_CD = ProtocolCard(
    task="whu-cd", version=1, configures=True,
    head=harness(None, UNIFORM + "; see paper_head", HEAD),
    paper_head=("MaRS' 87.02 IoU was measured with its released change model (siamese encoder, concatenated "
                "features, light conv/deconv decoder, one output channel), not UPerHead: it belongs to head=mars; "
                "this head (uniform) has no paper number"),
    crop=official(256, MARS_CD + " (WHU-CD256-HANet tiles, resized to 256)", "256 px tiles"),
    effective_batch=official({"total": 8, "per_process": 8}, MARS_CD + " (batch_size 8 per process; DDP over every "
                             "visible GPU, count not stated: 8 is kept as the effective batch)", "8"),
    schedule=official({"epochs": 100, "policy": "step", "step_epochs": 25, "gamma": 0.5},
                      MARS_CD + " (StepLR step = epochs // 4, gamma 0.5)", "100 epochs, LR x0.5 every 25 epochs"),
    optimizer=official({"type": "Adam", "betas": (0.9, 0.999), "weight_decay": 0.0}, MARS_CD,
                       "Adam, no weight decay; gradient clipping 5 (harness)"),
    lr=official(1e-4, MARS_CD, "1e-4"),
    layer_decay=official(None, MARS_CD + " (one LR for all parameters)", "none"),
    drop_path=official(0.1, MARS_BACKBONE, "0.1 (timm default)"),
    warmup=official(None, MARS_CD, "none"),
    loss=official({"ce": 0.5, "dice": 0.5}, MARS_CD + " (0.5 BCE + 0.5 Dice on one logit; the harness's two-class "
                  "head takes 0.5 CE + 0.5 Dice)", "0.5 cross-entropy + 0.5 Dice"),
    augmentation=harness(None, "MaRS flips h/v and rotates by 90 (p 0.5 each); the harness's change pipeline "
                         "offers random crop and flip only", "random crop 256 + flip 0.5"),
    eval_split=official("test", MARS_CD + " (WHU-CD256-HANet test.txt; split_protocol=repack)",
                        "the 256 px re-pack's test list"),
    metric_variant=official(None, MARS_CD + " (torchmetrics binary IoU; best checkpoint by val IoU, which the "
                            "harness does not select: it scores the last)", "IoU of the change class"),
    inference=official("whole", MARS_CD, "whole 256 px tiles"),
    notes=("-o head=mars runs MaRS' released change decoder with card whu-cd/head=mars@1: one logit, 0.5 BCE + "
           "0.5 Dice, no gradient clipping, inputs normalised 0.5/0.5; its other settings are this card's",
           "MaRS normalises with mean/std 0.5 on 0-1 pixels; the uniform head keeps ImageNet statistics"),
)

MARS_CHANGEMODEL = "MaRS downtasks/terratorch/changemodel.py: ChangeDetectionModel (WanderRainy/MaRS@5da1a5a)"

#: whu-cd with -o head=mars: MaRS' released change decoder, loss, optimiser (no clipping) and
#: normalisation; the rest as above.
WHU_CD_MARS = replace(
    WHU_CD, task="whu-cd/head=mars",
    head=official(None, MARS_CHANGEMODEL + " (mars_change: upsample_times 5 for stride 32; here log2 of the "
                  "backbone's last stride)", "siamese backbone, last-stage features of both dates concatenated, "
                  "CDBlock (2 x 3x3 conv-BN-ReLU to 256 ch), up-blocks (1x1, deconv x2, 1x1; width halves to >= 32) "
                  "to full size, 1x1 conv to one logit, changed where sigmoid > 0.5"),
    paper_head="MaRS' 87.02 IoU was measured with this head (its released change model)",
    optimizer=official({"type": "Adam", "betas": (0.9, 0.999), "weight_decay": 0.0}, MARS_CD + " (Lightning "
                       "Trainer without gradient clipping)", "Adam, no weight decay, no gradient clipping"),
    loss=official({"bce": 0.5, "dice": 0.5}, MARS_CD + " (BCEWithLogitsLoss + segmentation_models_pytorch "
                  "DiceLoss binary)", "0.5 BCE + 0.5 Dice on one logit (mmseg CrossEntropyLoss(use_sigmoid) + "
                  "DiceLoss: naive dice over the batch)"),
    notes=("inputs normalised with mean/std 0.5 on 0-1 pixels (127.5/127.5), as " + MARS_CD,
           "Dice: mmseg's DiceLoss reduced as the release's segmentation_models_pytorch one (over the batch, "
           "batches without change count 0); mmseg's eps 1e-3 where smp's is 1e-7"),
)


def _harness_card(task: str, crop: str, split: str, metric: str, *, reason: str = NO_SETTING,
                  **over: Any) -> ProtocolCard:
    settings: dict[str, Any] = dict(
        head=harness(None, UNIFORM, HEAD),
        crop=harness(None, reason + "; the task's crop_size option", crop),
        effective_batch=harness(None, reason + "; " + OPENCD, "batch_size option (8) x processes"),
        schedule=harness(None, reason + "; " + OPENCD, "40k iterations, poly"),
        optimizer=harness(None, reason + "; " + OPENCD, "AdamW wd 0.01, gradient clipping 5"),
        lr=harness(1e-4, reason + "; " + OPENCD, "1e-4"),
        layer_decay=harness(None, reason, "none"),
        drop_path=harness(None, reason, "preset's"),
        warmup=harness(None, reason + "; " + OPENCD, "none"),
        loss=harness(None, reason, "cross-entropy (class_weight option)"),
        augmentation=harness(None, reason, "random crop + flip 0.5 (both dates alike)"),
        eval_split=harness(None, reason + "; the dataset's official split", split),
        metric_variant=harness(None, reason + "; the dataset's customary metric", metric),
        inference=harness(None, reason, "whole images (eval_crop option: windows)"),
    )
    settings.update(over)
    return ProtocolCard(task=task, version=1, **settings)


LEVIR_CD = _harness_card("levir-cd", "256 random crops", "the official test split (128 images)",
                         "F1 of the change class")
OSCD = _harness_card("oscd", "96 random crops", "the 10 test cities", "F1 of the change class",
                     loss=harness(None, "rare change: inverse-frequency class weights, as the OSCD authors' networks",
                                  "cross-entropy, balanced class weights"),
                     schedule=harness(None, NO_SETTING + "; 10k iterations suit the 14 training cities",
                                      "10k iterations, poly"))
DFC25_T2 = _harness_card("dfc25-t2", "512 random crops", "the holdout list (submission: predictions only)",
                         "mIoU over background, intact, damaged, destroyed",
                         reason="MaRS released no DFC25 code and no DFC25 number was found")
DYNA_S2_CD = _harness_card("dyna-s2-cd", "256 random crops", "test", "SCS = (BC + SC) / 2 (DynamicEarthNet)")

CARDS = {c.task: c for c in (WHU_CD, LEVIR_CD, OSCD, DFC25_T2, DYNA_S2_CD)}
