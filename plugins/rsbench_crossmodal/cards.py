"""Protocol cards of the cross-modal evaluations (see :mod:`rsbench.protocol.protocol_card`).

DFC23 track 2 has MaRS' released code (commit 5da1a5a); its card states that recipe and the
height task's default fine-tune run follows it (``configures``) with either head: the uniform one
(default) or MaRS' released decoder (``-o head=mars``). The GUSO cards document the harness's
defaults: MaRS released no GUSO code.
"""

from __future__ import annotations

from rsbench.protocol.protocol_card import ProtocolCard, harness, harness_card, official

MARS_NO_CODE = "MaRS released no downstream code for GUSO"
MARS_DFC23 = "MaRS downtasks/terratorch/train_height.py + dataset_factory.py (WanderRainy/MaRS@5da1a5a)"
MARS_DFC23_HEAD = ("MaRS downtasks/terratorch/heightmodel.py build_dual_backbone_model (DualBackboneModel: "
                   "DecoderBlock x4 + final layer) and dataset_factory.py DFC23Track2Dataset (WanderRainy/MaRS@5da1a5a)")
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
    task="dfc23-t2", version=2, configures=True,
    head=harness("uniform", "the harness's FPN-style height decoder, so that backbones compare on one head "
                 "(-o head=uniform, the default); -o head=mars builds MaRS' released decoder instead, from "
                 + MARS_DFC23_HEAD, "FPN-style decoder (64 ch), bilinear upsampling; -o head=mars: MaRS' "
                 "DecoderBlocks on the summed RGB+SAR last map"),
    paper_head=("no MaRS paper number is known for dfc23-t2 (none found in the paper), so no row is compared; "
                "MaRS' released DFC23 code trains its dual-backbone regression decoder (DecoderBlocks), which "
                "-o head=mars builds"),
    crop=official(512, MARS_DFC23 + " (random crop 512; centre crop for val)", "512 random crops"),
    effective_batch=official({"total": 6, "per_process": 6}, MARS_DFC23 + " (batch 6 per process; GPU count not "
                             "stated: 6 is kept as the effective batch)", "6"),
    schedule=official({"epochs": 80, "policy": "step", "step_epochs": 20, "gamma": 0.5},
                      MARS_DFC23 + " (StepLR step = epochs // 4, gamma 0.5)", "80 epochs, LR x0.5 every 20"),
    optimizer=official({"type": "Adam", "betas": (0.9, 0.999), "weight_decay": 0.0},
                       MARS_DFC23 + " (torch.optim.Adam defaults; Lightning without gradient clipping)",
                       "Adam, no weight decay, no gradient clipping"),
    lr=official(1e-4, MARS_DFC23, "1e-4"),
    layer_decay=official(None, MARS_DFC23 + " (one LR for all parameters)", "none"),
    drop_path=official(0.1, MARS_BACKBONE, "0.1 (timm default)"),
    warmup=official(None, MARS_DFC23, "none"),
    loss=official(None, MARS_DFC23 + " (nn.L1Loss on heights / 183.17412)",
                  "L1 on heights (head=mars: / 183.17412 m as released; head=uniform: standardised with the "
                  "train tiles' mean / std)"),
    augmentation=official(None, MARS_DFC23, "random crop 512, h/v flips"),
    eval_split=official("holdout", MARS_DFC23 + " (sklearn train_test_split(test_size=0.2, random_state=42) of "
                        "track-2 train)", "80/20 split of train, seed 42"),
    metric_variant=official(None, MARS_DFC23 + " and test_height.py (MAE, MSE, RMSE, delta1-3; its Result keeps "
                            "only the last image's values and works on heights / 183.17412)",
                            "RMSE (m) pooled over every pixel of every scored tile"),
    inference=official("slide", MARS_DFC23 + " and test_height.py (sliding window, stride = crop)",
                       "non-overlapping 512 windows"),
    notes=("-o head=mars also takes what the released recipe ties to its decoder: targets divided by 183.17412 m "
           "(label_max), optical RGB / 255 normalised with mean (0.3182, 0.3442, 0.2818) / std (0.1796, 0.1645, "
           "0.1689) and SAR with 0.2634 / 0.5957 (" + MARS_DFC23_HEAD + "); head=uniform keeps ImageNet optical "
           "statistics and the train tiles' SAR and height mean / std",
           "heightmodel.py as released sizes the decoder for feat_dim=1536 (SwinV2-L widths) while MaRSBackbone "
           "builds SwinV2-B (1024 channels, its commented-out line); the harness sizes it from the backbone's last map",
           "MaRS keeps the checkpoint with the best val delta1, measured on centre crops of the same held-out tiles "
           "it then tests on; the harness scores the last checkpoint"),
)

CARDS = {c.task: c for c in (GUSO_REG, GUSO_TRANS, DFC23_T2)}
