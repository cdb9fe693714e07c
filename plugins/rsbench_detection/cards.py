"""Protocol cards of the detection evaluations (see :mod:`rsbench.protocol.protocol_card`).

DIOR follows SkySense's released config; DIOR-R, whose config was not released, follows the DIOR
config on the same images; SARDet-100K and UBCv2 follow MaRS' released mmdet configs
(commit 5da1a5a); FAIR1M documents the harness's defaults.
"""

from __future__ import annotations

from rsbench.protocol.protocol_card import ProtocolCard, harness, official

SS_DIOR = "SkySense config faster_rcnn_swinv2_huge_patch4_window8_fpn-1x_dior.py"
MARS_SARDET = "MaRS downtasks/mmdetection/configs/sardet/frcnn_mars.py (WanderRainy/MaRS@5da1a5a)"
MARS_UBC = "MaRS downtasks/mmdetection/configs/ubcv2/ubcv2_frcnn_mars.py (WanderRainy/MaRS@5da1a5a)"
MARS_BACKBONE = ("MaRS downtasks/terratorch/backbone.py: MaRSBackbone sets no drop_path_rate, so timm's default "
                 "for swinv2_base_window8_256 (0.1)")
NO_DIOR_R = "SkySense's DIOR-R config was not released; its DIOR config (same images, same authors) is followed"
NO_SETTING = "the paper's fine-tuning setting for this dataset was not recovered (supplementary Sec. 11 unread)"

FASTER = "Faster R-CNN + FPN (mmdet faster-rcnn_r50_fpn_1x with the rsbench backbone)"
ORIENTED = "Oriented R-CNN le90 + FPN (mmrotate oriented-rcnn-le90_r50_fpn_1x_dota with the rsbench backbone)"
SKYSENSE_ADAMW = {"type": "AdamW", "betas": (0.9, 0.999), "weight_decay": 0.05}
ONE_X = {"epochs": 12, "policy": "multistep", "milestones": [8, 11], "gamma": 0.1}

DIOR = ProtocolCard(
    task="dior", version=1, configures=True,
    head=official(None, SS_DIOR + " (20 classes)", FASTER),
    crop=official(800, SS_DIOR + " (mmdet coco_detection base: resize to 800, keep ratio; DIOR images are 800 px)",
                  "whole 800 x 800 images"),
    effective_batch=harness({"total": 8, "per_process": 1},
                            SS_DIOR + " sets samples_per_gpu=1 but not the GPU count; 8 GPUs assumed (SkySense's "
                            "iSAID config and mmdet's 1x schedule use 8)", "8 = 8 GPUs x 1"),
    schedule=official(ONE_X, SS_DIOR + " (1x)", "12 epochs, LR x0.1 at epochs 8 and 11"),
    optimizer=official(SKYSENSE_ADAMW, SS_DIOR, "AdamW (0.9, 0.999), wd 0.05; no decay on norms and position "
                       "tables; gradient clipping 35 (harness)"),
    lr=official(1e-4, SS_DIOR, "1e-4"),
    layer_decay=official({"rate": 0.9, "num_layers": 24}, SS_DIOR + " (SwinV2LayerDecayOptimizerConstructor)",
                         "0.9 over 24 layers (SwinV2/ViT encoders; CNNs: none)"),
    drop_path=official(0.2, SS_DIOR + " (backbone drop_path_rate)", "0.2"),
    warmup=official({"steps": 1000, "start_factor": 0.001}, SS_DIOR + " (1,000 iterations; ratio 0.001 of mmdet's "
                    "1x base)", "linear, 1,000 steps from 0.001"),
    loss=official(None, SS_DIOR + " (mmdet Faster R-CNN)", "RPN: BCE + L1; RoI: CE + L1"),
    augmentation=official(None, SS_DIOR + " (mmdet coco_detection base)", "resize 800 keep ratio, horizontal flip 0.5"),
    eval_split=official("test", SS_DIOR + " (trainval.json -> test.json)", "trained on train+val, scored on test"),
    metric_variant=harness(None, "the config scores VOC-style mAP@0.5; whether 11-point or area AP is not in the "
                           "retrieved text: the VOC07 11-point default of mmdet's eval_map is kept",
                           "mAP@0.5, VOC07 11-point (-o eval_mode=area)"),
    inference=official("whole", SS_DIOR, "whole image"),
)

DIOR_R = ProtocolCard(
    task="dior-r", version=1, configures=True,
    head=harness(None, NO_DIOR_R + "; oriented boxes need an oriented detector: mmrotate's Oriented R-CNN "
                 "(detector behind the paper's number not verified)", ORIENTED),
    crop=harness(800, NO_DIOR_R, "whole 800 x 800 images"),
    effective_batch=harness({"total": 8, "per_process": 1}, NO_DIOR_R, "8 = 8 GPUs x 1"),
    schedule=harness(ONE_X, NO_DIOR_R, "12 epochs, LR x0.1 at epochs 8 and 11"),
    optimizer=harness(SKYSENSE_ADAMW, NO_DIOR_R, "AdamW (0.9, 0.999), wd 0.05; gradient clipping 35"),
    lr=harness(1e-4, NO_DIOR_R, "1e-4"),
    layer_decay=harness({"rate": 0.9, "num_layers": 24}, NO_DIOR_R, "0.9 over 24 layers (SwinV2/ViT encoders)"),
    drop_path=harness(0.2, NO_DIOR_R, "0.2"),
    warmup=harness({"steps": 1000, "start_factor": 0.001}, NO_DIOR_R, "linear, 1,000 steps from 0.001"),
    loss=harness(None, "mmrotate's Oriented R-CNN losses", "RPN: BCE + smooth L1; RoI: CE + smooth L1"),
    augmentation=harness(None, "mmrotate's DOTA/DIOR-R recipe", "resize 800, flips h/v/diagonal (p 0.75)"),
    eval_split=harness("test", NO_DIOR_R, "trained on train+val, scored on test"),
    metric_variant=harness(None, "mmrotate's DOTAMetric, as for DIOR-R in mmrotate", "rotated mAP@0.5, VOC07 11-point"),
    inference=harness("whole", NO_DIOR_R, "whole image"),
)


def _mars_det(task: str, ref: str, batch: dict[str, int], batch_source: str, crop: int, crop_text: str,
              head_note: str, split: str, warmup_ref: str) -> ProtocolCard:
    return ProtocolCard(
        task=task, version=1, configures=True,
        head=harness(None, "the harness's detector for horizontal boxes, so that backbones compare on one head; "
                     "see paper_head", FASTER),
        paper_head=head_note,
        crop=official(crop, ref, crop_text),
        effective_batch=(harness(batch, batch_source, str(batch["total"])) if batch_source
                         else official(batch, ref, str(batch["total"]))),
        schedule=official(ONE_X, ref + " (mmdet schedule_1x)", "12 epochs, LR x0.1 at epochs 8 and 11"),
        optimizer=official({"type": "AdamW", "betas": (0.9, 0.999), "weight_decay": 0.05}, ref,
                           "AdamW (0.9, 0.999), wd 0.05; gradient clipping 35 (harness)"),
        lr=official(1e-4, ref, "1e-4"),
        layer_decay=official(None, ref + " (plain OptimWrapper)", "none"),
        drop_path=official(0.1, MARS_BACKBONE, "0.1 (timm default)"),
        warmup=official({"steps": 500, "start_factor": 0.001}, warmup_ref, "linear, 500 steps from 0.001"),
        loss=official(None, ref + " (mmdet R-CNN losses)", "CE + L1 / smooth L1"),
        augmentation=official(None, ref, f"resize {crop} keep ratio, horizontal flip 0.5"),
        eval_split=official(split, ref, split),
        metric_variant=official(None, ref + " (CocoMetric)", "COCO bbox mAP@[.5:.95]"),
        inference=official("whole", ref, "whole image"),
    )


SARDET100K = _mars_det(
    "sardet100k", MARS_SARDET, {"total": 16, "per_process": 2},
    "the dataset base file (_base_/datasets/SARDet_100k.py) is not in the MaRS repo; mmdet's default 2 per GPU x "
    "8 GPUs is assumed", 800, "mmdet default resize (the base file is missing): 800",
    "MaRS' ≈55.40 mAP was measured with Cascade R-CNN (3 stages) + FPN, not Faster R-CNN; the MaRS config "
    "also sets FPN in_channels of the large model (192..1536) although the backbone is base",
    "trained on train, scored on test", MARS_SARDET + " (mmdet 3.x schedule_1x: LinearLR 500 iterations, 0.001)")

UBCV2 = _mars_det(
    "ubcv2", MARS_UBC, {"total": 4, "per_process": 4}, "", 512, "resize to 512 (keep ratio), pad to /32",
    "MaRS' config is Cascade R-CNN with an FCN mask head (instance segmentation); -o detector=cascade gives the "
    "Cascade R-CNN without the mask head; no UBCv2 number of MaRS was found",
    "train roof_fine_train; val roof_fine_val (single category)", MARS_UBC)

FAIR1M = ProtocolCard(
    task="fair1m", version=1,
    head=harness(None, NO_SETTING + "; the oriented detector used for DIOR-R", ORIENTED),
    crop=harness(1024, NO_SETTING + "; the common FAIR1M/DOTA split into 1,024 px patches, overlap 200",
                 "1,024 px patches, overlap 200"),
    effective_batch=harness(None, NO_SETTING, "batch_size option (2) x processes"),
    schedule=harness(None, NO_SETTING, "12 epochs, LR x0.1 at 8/12 and 11/12"),
    optimizer=harness(None, NO_SETTING + "; SkySense's DIOR optimizer", "AdamW wd 0.05, gradient clipping 35"),
    lr=harness(1e-4, NO_SETTING + "; SkySense's DIOR LR", "1e-4"),
    layer_decay=harness(None, NO_SETTING, "none"),
    drop_path=harness(None, NO_SETTING, "preset's"),
    warmup=harness(None, NO_SETTING, "linear, min(500, iterations/10) from 0.001"),
    loss=harness(None, "mmrotate's Oriented R-CNN losses", "RPN: BCE + smooth L1; RoI: CE + smooth L1"),
    augmentation=harness(None, "mmrotate's DOTA recipe", "flips h/v/diagonal (p 0.75)"),
    eval_split=harness("validation", "the test labels are on the competition server only; SkySense's number is "
                       "probably a server score, so the offline validation score is not comparable to it",
                       "trained on train, scored on validation (or submission files)"),
    metric_variant=harness(None, "FAIR1M's mAP@0.5 over 37 classes", "rotated mAP@0.5, VOC07 11-point"),
    inference=harness("whole", "patches merged with rotated NMS 0.1", "patch by patch, merged"),
)

CARDS = {c.task: c for c in (DIOR, DIOR_R, SARDET100K, UBCV2, FAIR1M)}
