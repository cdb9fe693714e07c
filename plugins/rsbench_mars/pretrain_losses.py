"""MaRS's pretraining losses: Cross-Granularity Contrastive Learning (CGCL) and masked reconstruction.

Registered in mmengine's root ``MODELS`` as ``MaRSCGCLLoss`` and ``MaRSMIMLoss``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor, nn

from rsbench.pretraining.loop import info_nce


@MODELS.register_module(name="MaRSCGCLLoss")
class CrossGranularityContrastiveLoss(nn.Module):
    """Cross-Granularity Contrastive Learning (CGCL), the paper's contrastive objective:
    ``L_CGCL = alpha L_patch + beta L_global + gamma L_cross`` between co-registered RGB and SAR
    tokens ``(B, N, D)`` (patch ``n`` of both images covers the same ground).

    * ``L_patch``: symmetric InfoNCE over all ``B N`` patches of the batch: RGB patch ``(b, n)``
      against SAR patch ``(b, n)``, every other SAR patch of the batch a negative (and back);
    * ``L_global``: symmetric InfoNCE between the images' mean-pooled tokens (``B`` x ``B``);
    * ``L_cross``: bidirectional patch-to-other-modality-global: each RGB patch against the ``B``
      SAR image vectors, its own image the positive, and each SAR patch against the RGB image
      vectors; the two directions averaged.

    Cosine similarities throughout (tokens and pooled vectors L2-normalised). Each symmetric
    term is the mean of its two directions.

    Args:
        alpha, beta, gamma: weights (paper 1:1:1).
        tau_patch, tau_global, tau_cross: temperatures; the paper orders them
            ``tau_patch < tau_global < tau_cross``, the values are rsbench's (the released
            ``clips.py`` uses 0.1 / 0.05 / 0.07 with weights 0.5 / 0.3 / 0.2).
    """

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, gamma: float = 1.0, tau_patch: float = 0.07,
                 tau_global: float = 0.1, tau_cross: float = 0.2) -> None:
        super().__init__()
        self.alpha, self.beta, self.gamma = float(alpha), float(beta), float(gamma)
        self.tau_patch, self.tau_global, self.tau_cross = float(tau_patch), float(tau_global), float(tau_cross)

    def forward(self, rgb: Tensor, sar: Tensor) -> dict[str, Tensor]:
        """``rgb``, ``sar``: ``(B, N, D)``. Returns ``patch``, ``global``, ``cross`` and ``total``."""
        if rgb.shape != sar.shape:
            raise ValueError(f"CGCL: RGB tokens {tuple(rgb.shape)} and SAR tokens {tuple(sar.shape)} differ")
        b, n, _ = rgb.shape
        r, s = F.normalize(rgb, dim=-1), F.normalize(sar, dim=-1)
        flat_r, flat_s = r.flatten(0, 1), s.flatten(0, 1)
        patch = (info_nce(flat_r, flat_s, self.tau_patch) + info_nce(flat_s, flat_r, self.tau_patch)) / 2
        gr, gs = r.mean(1), s.mean(1)
        glob = (info_nce(gr, gs, self.tau_global) + info_nce(gs, gr, self.tau_global)) / 2
        own = torch.arange(b, device=rgb.device).repeat_interleave(n)
        cross = (info_nce(flat_r, gs, self.tau_cross, own) + info_nce(flat_s, gr, self.tau_cross, own)) / 2
        total = self.alpha * patch + self.beta * glob + self.gamma * cross
        return {"patch": patch, "global": glob, "cross": cross, "total": total}


@MODELS.register_module(name="MaRSMIMLoss")
class MaskedReconstructionLoss(nn.Module):
    """L1 pixel reconstruction on masked pixels only, as the released code:
    ``sum(|x - x_hat| * m) / (sum(m) + eps) / C`` with ``m`` the ``(B, H, W)`` pixel mask
    (1 = masked) broadcast over the ``C`` channels, i.e. the mean absolute error per masked
    pixel and channel.

    Args:
        eps: keeps an all-visible batch finite (the released 1e-5).
    """

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        if pred.shape != target.shape or mask.shape != (target.shape[0], *target.shape[2:]):
            raise ValueError(f"MIM: prediction {tuple(pred.shape)}, target {tuple(target.shape)} and mask "
                             f"{tuple(mask.shape)} must be (B, C, H, W), (B, C, H, W), (B, H, W)")
        m = mask.to(pred.dtype).unsqueeze(1)
        return (F.l1_loss(pred, target, reduction="none") * m).sum() / (m.sum() + self.eps) / target.shape[1]
