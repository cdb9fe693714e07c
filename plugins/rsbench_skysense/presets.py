"""SkySense preset configurations as plain data (no torch), shared by the plugin and the model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

RGB = ("R", "G", "B")
S2_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
S1_BANDS = ("VV", "VH")

#: SwinTransformerV2 arguments of the released HR weights (``skysense_model_backbone_hr.pth``).
#: mmcls 0.25's ``is_post_norm=True`` is mmpretrain 1.x's ``downsample_cfg.use_post_norm=True``;
#: with pre-norm merging the downsample norms would be twice as wide and the weights would not load.
OFFICIAL_HR: dict[str, Any] = dict(
    arch="huge",
    img_size=224,
    patch_size=4,
    window_size=8,
    use_abs_pos_embed=False,
    pad_small_map=False,
    stage_cfgs=dict(downsample_cfg=dict(use_post_norm=True)),
    pretrained_window_sizes=[0, 0, 0, 0],
)

#: Sentinel encoders: ViT-Large, patch 4 (as the SkySense++ code inheriting them), 64 px tiles.
VIT_LARGE: dict[str, Any] = dict(arch="large", img_size=64, patch_size=4, drop_path_rate=0.0)

#: Fusion width/depth/heads/mlp of the SkySense++ code, which inherits the SkySense fusion module.
PAPER_FUSION: dict[str, Any] = dict(embed_dims=1024, num_layers=24, num_heads=16, mlp_ratio=4.0, num_days=365)

#: 4096 regions (64 x 64 equal-area grid) x 100 prototypes.
PAPER_PROTOTYPES: dict[str, Any] = dict(region_grid=[64, 64], num_prototypes=100, momentum=0.99,
                                        sinkhorn_iters=3, epsilon=0.05, frozen=False)

PAPER: dict[str, Any] = dict(hr=OFFICIAL_HR, s2=VIT_LARGE, s1=VIT_LARGE, fusion=PAPER_FUSION,
                             prototypes=PAPER_PROTOTYPES)

HR_ONLY: dict[str, Any] = dict(hr=OFFICIAL_HR)

_TINY_VIT: dict[str, Any] = dict(
    arch=dict(embed_dims=64, num_layers=2, num_heads=2, feedforward_channels=128), img_size=16, patch_size=4
)
#: Same structure at toy width: Swin-V2 with post-norm merging and an extra norm every 6 blocks,
#: window 2 so 64 px inputs work; two 2-layer ViTs; 2-layer fusion; 16 regions x 8 prototypes.
TINY: dict[str, Any] = dict(
    hr={**OFFICIAL_HR, "arch": dict(embed_dims=16, depths=[2, 2, 6, 2], num_heads=[1, 2, 4, 8],
                                    extra_norm_every_n_blocks=6), "window_size": 2,
        "drop_path_rate": 0.0},
    s2=_TINY_VIT,
    s1=_TINY_VIT,
    fusion=dict(embed_dims=64, num_layers=2, num_heads=2, mlp_ratio=2.0, num_days=365),
    prototypes=dict(region_grid=[4, 4], num_prototypes=8, momentum=0.9, sinkhorn_iters=3, epsilon=0.05,
                    frozen=False),
)


def forward_path(
    configured: Sequence[str],
    has_fusion: bool,
    in_modalities: Sequence[str] | None = None,
    in_frames: Mapping[str, int] | None = None,
) -> tuple[tuple[str, ...], bool]:
    """The encoders a SkySense model builds for a run, and whether it builds the fusion.

    The paper's rule (its abstract and the official README: the modules "can be flexibly
    combined or used individually to accommodate various tasks"; the reference notes'
    fidelity.md, "single-modality tasks": "spatial encoder + head"): a single-modality,
    single-date task runs that modality's spatial encoder and the task head (the released iSAID
    and DIOR configs are the HR Swin-V2-H alone, loaded from ``skysense_model_backbone_hr.pth``;
    paper_numbers.md Sec. 2a), while the multi-modal temporal fusion (DTPE, extra token,
    Transformer) and the geo-context prototypes read the features of *several* modalities or of
    a *time series*. So:

    * ``in_modalities=None`` (no run: pretraining, parameter counts): every configured module;
    * otherwise the encoders of ``in_modalities`` (in configured order), and the fusion (with
      the prototypes when configured) exactly when they are two or more, or one of them comes
      as a time series (``in_frames[m] > 1``; frames of modalities not fed are ignored).

    A modality the model does not have, or a fused run without a configured fusion, is a
    ``ValueError`` naming what was asked.
    """
    configured = tuple(configured)
    if in_modalities is None:
        return configured, has_fusion
    unknown = [m for m in in_modalities if m not in configured]
    if unknown:
        raise ValueError(f"SkySense has the encoders {list(configured)}; in_modalities names {unknown}")
    fed = tuple(m for m in configured if m in in_modalities)
    if not fed:
        raise ValueError("SkySense: in_modalities is empty; name at least one of its encoders "
                         f"{list(configured)}")
    frames = {m: int(t) for m, t in (in_frames or {}).items() if m in fed}
    series = sorted(m for m, t in frames.items() if t > 1)
    fused = len(fed) > 1 or bool(series)
    if fused and not has_fusion:
        why = f"several modalities {list(fed)}" if len(fed) > 1 else f"time series of {series}"
        raise ValueError(f"SkySense without `fusion` cannot take {why}: only the temporal fusion "
                         "combines them (use the `skysense` preset)")
    return fed, fused
