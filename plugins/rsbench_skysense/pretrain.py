"""SkySense's pretraining objective (``rsbench pretrain --model skysense-tiny``).

Faithful to the paper's structure (Sec. 3.3-3.4, as summarised in rsbench's issue 13):

* teacher-student: the teacher is an EMA of the student (backbone and projection heads), its
  momentum rising from 0.99 to 0.999 on a cosine schedule over the run
  (:func:`rsbench.pretraining.loop.cosine_momentum`); the student gets gradients, the teacher none;
* multi-granularity contrastive learning ``L_MGCL = sum_i L_FGCL(F_i) + L_FGCL(F_fus)`` over each
  modality's encoder features (HR Swin last stage; S2 and S1 ViT features, averaged over the
  view's frames) and over the fused features ``F_fus = [F_mm, geo context]``, each at pixel,
  object (Sinkhorn-Knopp clustering of pixels) and image level
  (:class:`~rsbench_skysense.pretrain_losses.MultiGranularityContrastiveLoss`);
* cross-modal alignment ``L_align = sum_{i != j} L_MMCL`` between the modalities' image-level
  features (:class:`~rsbench_skysense.pretrain_losses.CrossModalAlignmentLoss`);
* geo-context prototype learning: the backbone's own prototype bank, updated in the student's
  forward by an EMA of Sinkhorn assignments of ``F_mm`` (:mod:`rsbench_skysense.prototypes`);
  the read-out context is part of ``F_fus``, so the fused contrast trains through it;
* ``L = 1.0 L_MGCL + 0.1 L_align``; AdamW, cosine learning rate, gradient clipping (the loop).

Simplified (chosen here, not from the paper): the two views share their geometry (one random
flip/rotation per sample, so pixel ``p`` of one view is pixel ``p`` of the other) and differ by
per-view frame subsets of the time series and photometric jitter + noise; the loss is one
direction (student on view 1, teacher on view 2), not symmetrised; ``L_CL`` is InfoNCE with the
teacher's features as keys, temperature 0.2; projection heads are 2-layer MLPs to 64 dims (the
image level uses the mean of the projected pixels); the final checkpoint is the student.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rsbench.pretraining.loop import PretrainObjective, cosine_momentum, ema_update
from rsbench_skysense import pretrain_data
from rsbench_skysense.pretrain_losses import CrossModalAlignmentLoss, MultiGranularityContrastiveLoss


class ProjectionHead(nn.Module):
    """Per-token 2-layer MLP projecting features into the contrastive space."""

    def __init__(self, in_dims: int, out_dims: int = 64, hidden_dims: int = 128) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dims, hidden_dims), nn.GELU(), nn.Linear(hidden_dims, out_dims))

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(x)


def _keep(store: dict[str, Any], name: str, module: nn.Module, args: Any, output: Any) -> None:
    store[name] = output


def backbone_features(model: nn.Module, inputs: Mapping[str, Any]) -> dict[str, Tensor]:
    """Run the SkySense backbone on ``inputs`` and return its pretraining features, ``(B, n, C)``
    tokens each: one per modality given (the encoder's last map, averaged over frames) and
    ``fused`` (the prototype module's ``[F_mm, context]``, or ``F_mm`` without prototypes).

    Forward hooks read them from the model's own forward, so the features are exactly those
    that downstream outputs are built from (and the prototype bank updates as it would)."""
    got: dict[str, Any] = {}
    hooks = [enc.register_forward_hook(partial(_keep, got, m)) for m, enc in model.encoders.items() if m in inputs]
    if model.fusion is not None:
        hooks.append(model.fusion.register_forward_hook(partial(_keep, got, "_fmm")))
    if model.prototypes is not None:
        hooks.append(model.prototypes.register_forward_hook(partial(_keep, got, "_fused")))
    try:
        model(inputs)
    finally:
        for h in hooks:
            h.remove()
    out: dict[str, Tensor] = {}
    for m in model.encoders:
        if m in got:
            f = got[m][-1]  # (B*T, C, h, w): every frame of the batch
            out[m] = f.unflatten(0, (inputs[m].shape[0], -1)).mean(1).flatten(2).transpose(1, 2)
    if "_fused" in got:
        out["fused"] = got["_fused"]
    elif "_fmm" in got:
        out["fused"] = got["_fmm"].flatten(2).transpose(1, 2)
    return out


class SkySensePretrainer(PretrainObjective):
    """The SkySense objective around a SkySense backbone config (see the module docstring).

    Args:
        backbone: the backbone's mmengine config (``BackboneInfo.config()``).
        proj_dims, hidden_dims: projection head widths.
        temperature: InfoNCE temperature of the multi-granularity contrast.
        align_temperature: InfoNCE temperature of the cross-modal alignment.
        num_objects: objects per image at the object level.
        momentum: (start, end) of the teacher's EMA momentum (paper: 0.99 -> 0.999).
        mgcl_weight, align_weight: ``L = mgcl_weight L_MGCL + align_weight L_align`` (paper 1.0, 0.1).
        frames: frames per modality in a sample (default: the shortest series in the data).
        jitter, noise: per-view photometric augmentation in normalised units (gain and offset
            uniform in ``1 +- jitter`` and ``+- jitter``, Gaussian noise of std ``noise``).
    """

    defaults = dict(lr=5e-4, weight_decay=0.05, batch_size=8, clip_grad=3.0, warmup=0)

    def __init__(self, backbone: Mapping[str, Any], proj_dims: int = 64, hidden_dims: int = 128,
                 temperature: float = 0.2, align_temperature: float = 0.2, num_objects: int = 4,
                 momentum: tuple[float, float] = (0.99, 0.999), mgcl_weight: float = 1.0,
                 align_weight: float = 0.1, frames: Mapping[str, int] | None = None, jitter: float = 0.2,
                 noise: float = 0.05) -> None:
        super().__init__(backbone)
        model = self.backbone
        widths = {m: (model.hr_widths[-1] if m == "hr" else model.encoders[m].embed_dims) for m in model.modalities}
        if model.fusion is not None:
            d = model.fusion.embed_dims
            widths["fused"] = 2 * d if model.prototypes is not None else d
        self.feature_names = list(widths)
        self.heads = nn.ModuleDict({k: ProjectionHead(c, proj_dims, hidden_dims) for k, c in widths.items()})
        self.teacher = nn.ModuleDict(dict(backbone=copy.deepcopy(model), heads=copy.deepcopy(self.heads)))
        self.teacher.requires_grad_(False)
        self.mgcl = MultiGranularityContrastiveLoss(temperature, num_objects)
        self.align = CrossModalAlignmentLoss(align_temperature)
        self.momentum_range = (float(momentum[0]), float(momentum[1]))
        self.mgcl_weight, self.align_weight = float(mgcl_weight), float(align_weight)
        self.frames = dict(frames) if frames else None
        self.jitter, self.noise = jitter, noise

    def train(self, mode: bool = True) -> SkySensePretrainer:
        """The teacher always runs in eval mode (no stochastic depth, no prototype update)."""
        super().train(mode)
        self.teacher.eval()
        return self

    # -- data ------------------------------------------------------------------------------
    data_module = pretrain_data

    def build_dataset(self, root: Path) -> pretrain_data.SkySensePretrainDataset:
        return pretrain_data.SkySensePretrainDataset(root, self.frames, tuple(self.backbone.modalities))

    def view(self, batch: Mapping[str, Tensor]) -> dict[str, Any]:
        """One augmented view: per sample a random subset of ``T - 1`` frames of each series
        (all of a single frame), gain/offset jitter and noise; geometry is left as it is."""
        inputs: dict[str, Any] = {}
        dates: dict[str, Tensor] = {}
        for m in self.backbone.modalities:
            x, doy = batch[m], batch[f"doy_{m}"]  # (B, T, C, H, W), (B, T)
            b, t = doy.shape
            if t > 1:
                idx = torch.rand(b, t, device=x.device).argsort(1)[:, : t - 1].sort(1).values
                x = x.gather(1, idx[:, :, None, None, None].expand(-1, -1, *x.shape[2:]))
                doy = doy.gather(1, idx)
            shape = (b, 1, 1, 1, 1)
            gain = 1 + self.jitter * (2 * torch.rand(shape, device=x.device) - 1)
            offset = self.jitter * (2 * torch.rand(shape, device=x.device) - 1)
            inputs[m] = x * gain + offset + self.noise * torch.randn_like(x)
            dates[m] = doy
        inputs["dates"] = dates
        inputs["latlon"] = batch["latlon"]
        return inputs

    # -- loss ------------------------------------------------------------------------------
    def forward(  # type: ignore[override]
        self, batch: Mapping[str, Tensor], progress: float = 0.0
    ) -> dict[str, Tensor]:
        v1, v2 = self.view(batch), self.view(batch)
        student = backbone_features(self.backbone, v1)
        with torch.no_grad():
            teacher = backbone_features(self.teacher["backbone"], v2)
        parts: dict[str, Tensor] = {}
        mgcl = torch.zeros((), device=batch["latlon"].device)
        images: dict[str, Tensor] = {}
        for name in self.feature_names:
            zs = self.heads[name](student[name])
            zt = self.teacher["heads"][name](teacher[name])
            levels = self.mgcl(zs, zt)
            for level in ("pixel", "object", "image"):
                parts[f"{name}_{level}"] = levels[level].detach()
            mgcl = mgcl + levels["total"]
            if name != "fused":
                images[name] = zs.mean(1)
        align = self.align(images) if len(images) > 1 else torch.zeros_like(mgcl)
        loss = self.mgcl_weight * mgcl + self.align_weight * align
        return dict(loss=loss, mgcl=mgcl.detach(), align=align.detach(), **parts)

    def momentum(self, progress: float) -> float:
        return cosine_momentum(progress, *self.momentum_range)

    def after_step(self, progress: float) -> dict[str, float]:
        m = self.momentum(progress)
        ema_update(self.teacher["backbone"], self.backbone, m)
        ema_update(self.teacher["heads"], self.heads, m)
        return dict(momentum=m)
