"""Protocol cards of the cross-modal evaluations (see :mod:`rsbench.protocol_card`).

DFC23 track 2 has MaRS' released code (commit 5da1a5a); its card states that recipe, which the
height task does not read yet (``configures`` is False; the note says where the defaults differ).
The GUSO cards document the harness's defaults: MaRS released no GUSO code.
"""

from __future__ import annotations

from rsbench.protocol_card import ProtocolCard, harness, harness_card, official

MARS_NO_CODE = "MaRS released no downstream code for GUSO"
MARS_DFC23 = "MaRS downtasks/terratorch/train_height.py + dataset_factory.py (WanderRainy/MaRS@5da1a5a)"
MARS_BACKBONE = ("MaRS downtasks/terratorch/backbone.py: MaRSBackbone sets no drop_path_rate, so timm's default "
                 "for swinv2_base_window8_256 (0.1)")


GUSO_REG = harness_card("guso-reg", MARS_NO_CODE, head="correlation matching head on the backbone's maps",
                    crop="512 px pairs, search window 64 px", batch="batch_size option (8) x processes",
                    schedule="20 epochs, cosine", optimizer="AdamW", lr=2e-4, warmup="linear over 5 %",
                    loss="smooth L1 on matches and transformed points", augmentation="none",
                    split="the GUSO test pairs", metric="RMSE of registered points (pixels)")
GUSO_TRANS = harness_card("guso-trans", MARS_NO_CODE, head="FPN-style decoder to an RGB image", crop="512 px pairs",
                      batch="batch_size option (8) x processes", schedule="20 epochs, cosine", optimizer="AdamW",
                      lr=5e-4, warmup="linear over 5 %", loss="L1", augmentation="none",
                      split="the GUSO test pairs", metric="PSNR (dB) of the translated optical image")

DFC23_T2 = ProtocolCard(
    task="dfc23-t2", version=1,
    head=harness(None, "the harness's FPN-style height decoder, so that backbones compare on one head; see "
                 "paper_head", "FPN-style decoder (64 ch), bilinear upsampling"),
    paper_head="MaRS' DFC23 code uses its dual-backbone regression decoder (DecoderBlocks); no MaRS number found",
    crop=official(512, MARS_DFC23 + " (random crop 512; centre crop for val)", "512 random crops"),
    effective_batch=official({"total": 6, "per_process": 6}, MARS_DFC23 + " (batch 6 per process; GPU count not "
                             "stated)", "6"),
    schedule=official({"epochs": 80, "policy": "step", "step_epochs": 20, "gamma": 0.5},
                      MARS_DFC23 + " (StepLR step = epochs // 4, gamma 0.5)", "80 epochs, LR x0.5 every 20"),
    optimizer=official({"type": "Adam", "betas": (0.9, 0.999), "weight_decay": 0.0}, MARS_DFC23, "Adam"),
    lr=official(1e-4, MARS_DFC23, "1e-4"),
    layer_decay=official(None, MARS_DFC23, "none"),
    drop_path=official(0.1, MARS_BACKBONE, "0.1 (timm default)"),
    warmup=official(None, MARS_DFC23, "none"),
    loss=official(None, MARS_DFC23, "L1 on heights scaled to 0-1"),
    augmentation=official(None, MARS_DFC23, "random crop 512, h/v flips"),
    eval_split=official("holdout", MARS_DFC23 + " (sklearn train_test_split(test_size=0.2, random_state=42) of "
                        "track-2 train)", "80/20 split of train, seed 42"),
    metric_variant=official(None, MARS_DFC23 + " (MAE, MSE, RMSE, delta1-3)", "RMSE (m) over all pixels"),
    inference=official("slide", MARS_DFC23, "non-overlapping 512 windows"),
    notes=("the height task does not read this card yet: its defaults match the epochs, batch, LR, split and loss "
           "but train with AdamW (wd 0.01) and a warmup + cosine LR instead of Adam + StepLR",),
)

CARDS = {c.task: c for c in (GUSO_REG, GUSO_TRANS, DFC23_T2)}
