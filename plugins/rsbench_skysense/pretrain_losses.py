"""SkySense's pretraining losses (Sec. 3.3-3.4): multi-granularity contrast and cross-modal alignment.

Both act on *projected* features: ``(B, n, d)`` pixel tokens of one feature map (one modality's
encoder output, or the fused ``[F_mm, context]``) from the student on one view and from the EMA
teacher on the other. The contrastive loss ``L_CL`` everywhere is :func:`rsbench.pretraining.loop.info_nce`
with the teacher's features as keys (the other samples' / positions' keys are the negatives).

Registered in mmengine's root ``MODELS`` as ``SkySenseMGCLLoss`` and ``SkySenseAlignLoss``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor, nn

from rsbench.pretraining.loop import info_nce


def batched_sinkhorn(scores: Tensor, n_iters: int = 3, epsilon: float = 0.05) -> Tensor:
    """:func:`~rsbench_skysense.prototypes.sinkhorn_knopp` applied to each ``(n, K)`` matrix of a
    ``(B, n, K)`` batch at once (same log-domain steps; rows sum to 1, columns to ``n / K``)."""
    _, n, k = scores.shape
    log_q = scores.double() / epsilon
    log_q = log_q - torch.logsumexp(log_q.flatten(1), dim=1)[:, None, None]
    for _ in range(n_iters):
        log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) - math.log(k)  # columns: 1/K
        log_q = log_q - torch.logsumexp(log_q, dim=2, keepdim=True) - math.log(n)  # rows: 1/n
    return (log_q.exp() * n).to(scores.dtype)


def num_objects_for(n: int, num_objects: int) -> int:
    """Objects per image: ``num_objects``, but at least two pixels per object on small maps."""
    return max(1, min(num_objects, n // 2))


@torch.no_grad()
def sinkhorn_clusters(feats: Tensor, num_objects: int, iters: int = 3, sinkhorn_iters: int = 3,
                      epsilon: float = 0.05) -> Tensor:
    """Soft clustering of each image's pixel features into objects.

    ``feats``: ``(B, n, d)``; ``K = num_objects_for(n, num_objects)``. Per image, centres start
    at ``K`` pixels evenly spaced in raster order; each of ``iters`` rounds assigns pixels to
    centres by Sinkhorn-Knopp on cosine similarities (equipartition: every object gets ``n / K``
    of the mass, so none is empty) and moves each centre to its assigned pixels' weighted mean.
    Returns the last assignment ``(B, n, K)`` (rows sum to 1, columns to ``n / K``).
    """
    _, n, _ = feats.shape
    k = num_objects_for(n, num_objects)
    z = F.normalize(feats.float(), dim=-1)
    start = torch.linspace(0, n - 1, k, device=feats.device).round().long()
    centres = z[:, start]  # (B, K, d)
    q = z.new_full((*z.shape[:2], k), 1.0 / k)
    for _ in range(iters):
        q = batched_sinkhorn(z @ centres.transpose(1, 2), sinkhorn_iters, epsilon)
        w = q / q.sum(1, keepdim=True).clamp_min(1e-12)
        centres = F.normalize(w.transpose(1, 2) @ z, dim=-1)
    return q


def object_features(feats: Tensor, assignment: Tensor) -> Tensor:
    """``(B, K, d)`` object features: assignment-weighted means of ``(B, n, d)`` pixel features."""
    w = assignment / assignment.sum(1, keepdim=True).clamp_min(1e-12)
    return torch.einsum("bnk,bnd->bkd", w.to(feats.dtype), feats)


@MODELS.register_module(name="SkySenseMGCLLoss")
class MultiGranularityContrastiveLoss(nn.Module):
    """``L_FGCL(F^s, F^t) = L_pix + L_obj + L_img`` for one feature map (student vs EMA teacher).

    * pixel: each student pixel against the teacher pixel at the same place (views share their
      geometry) among all teacher pixels of the batch (``B n`` keys);
    * object: pixels clustered into objects (``num_objects``, at most ``n / 2``) by
      :func:`sinkhorn_clusters` on the *teacher's* features; the same assignment pools student
      and teacher pixels, so object ``k`` of both views is the same region; contrast over the
      ``B K`` objects of the batch;
    * image: mean of the pixel features, contrast over the ``B`` images.

    Args:
        temperature: InfoNCE temperature of all three levels.
        num_objects, cluster_iters, sinkhorn_iters, epsilon: the object-level clustering.
        weights: (pixel, object, image) weights; the paper sums them (1, 1, 1).
    """

    def __init__(self, temperature: float = 0.2, num_objects: int = 4, cluster_iters: int = 3,
                 sinkhorn_iters: int = 3, epsilon: float = 0.05,
                 weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> None:
        super().__init__()
        self.temperature = temperature
        self.num_objects = num_objects
        self.cluster_iters = cluster_iters
        self.sinkhorn_iters = sinkhorn_iters
        self.epsilon = epsilon
        self.weights = tuple(float(w) for w in weights)

    def forward(self, student: Tensor, teacher: Tensor) -> dict[str, Tensor]:
        """``student``, ``teacher``: ``(B, n, d)``. Returns ``pixel``, ``object``, ``image`` and
        their weighted sum ``total``."""
        if student.shape != teacher.shape:
            raise ValueError(f"MGCL: student {tuple(student.shape)} and teacher {tuple(teacher.shape)} differ")
        teacher = teacher.detach()
        tau = self.temperature
        pixel = info_nce(student.flatten(0, 1), teacher.flatten(0, 1), tau)
        assignment = sinkhorn_clusters(teacher, self.num_objects, self.cluster_iters, self.sinkhorn_iters,
                                       self.epsilon)
        obj = info_nce(object_features(student, assignment).flatten(0, 1),
                       object_features(teacher, assignment).flatten(0, 1), tau)
        image = info_nce(student.mean(1), teacher.mean(1), tau)
        wp, wo, wi = self.weights
        return dict(pixel=pixel, object=obj, image=image, total=wp * pixel + wo * obj + wi * image)


@MODELS.register_module(name="SkySenseAlignLoss")
class CrossModalAlignmentLoss(nn.Module):
    """``L_align = sum_{i != j} L_MMCL(f_i, f_j)``: InfoNCE between the image-level features of
    every ordered pair of modalities (so each unordered pair counts in both directions, CLIP's
    symmetric form, times 2). ``feats``: modality -> ``(B, d)``, already in one shared space.

    Args:
        temperature: InfoNCE temperature.
    """

    def __init__(self, temperature: float = 0.2) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, feats: Mapping[str, Tensor]) -> Tensor:
        names = list(feats)
        if len(names) < 2:
            raise ValueError(f"cross-modal alignment needs two modalities or more; got {names}")
        return sum((info_nce(feats[i], feats[j], self.temperature) for i in names for j in names if i != j),
                   start=torch.zeros((), device=feats[names[0]].device))
