"""Geo-context prototype learning (SkySense Sec. 3.3): a bank of region prototypes read by attention.

The bank ``P`` holds ``N_R`` regions x ``N_p`` prototypes x ``d``. A sample's region ``r`` comes
from its (lat, lon) through an equal-area grid (:func:`latlon_to_region`). Its fused features
``F_mm`` are assigned to the region's prototypes by Sinkhorn-Knopp on cosine similarities
(:func:`sinkhorn_knopp`); in training the region's prototypes follow an EMA of the assigned
features, ``P_r <- m P_r + (1 - m) S^T F_mm``. The read-out is ``softmax(Q K^T / sqrt(d)) V`` with
``Q = F_mm`` and ``K = V = P_r``; the module returns ``concat[F_mm, context]`` (width ``2d``).

The prototypes are not trained by gradients (only by the EMA), so they are parameters with
``requires_grad=False``: they count in the model size as in the paper and travel in the state
dict, but an optimizer never touches them. Under DistributedDataParallel each process applies
the EMA of its own batch (nothing synchronises the bank); pre-training at scale would all-reduce
the update targets, fine-tuning normally sets ``frozen``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def latlon_to_region(latlon: Tensor, grid: tuple[int, int]) -> Tensor:
    """Map ``(B, 2)`` degrees (lat, lon) to region indices ``0 .. n_lat * n_lon - 1``.

    Regions are an equal-area grid: ``n_lat`` bands equally spaced in ``sin(lat)`` times
    ``n_lon`` equal longitude sectors, so every region covers the same area of the sphere
    (the paper's 4096 regions are ``grid=(64, 64)``, about 124,500 km^2 each). Latitude is
    clamped to [-90, 90]; longitude wraps (190 E == -170 E). Index = lat_band * n_lon + lon_sector,
    with band 0 at the south pole and sector 0 starting at -180 deg.
    """
    n_lat, n_lon = grid
    lat = latlon[:, 0].double().clamp(-90.0, 90.0)
    lon = torch.remainder(latlon[:, 1].double() + 180.0, 360.0)
    band = ((torch.sin(torch.deg2rad(lat)) + 1.0) * 0.5 * n_lat).floor().long().clamp(0, n_lat - 1)
    sector = (lon / 360.0 * n_lon).floor().long().clamp(0, n_lon - 1)
    return band * n_lon + sector


def sinkhorn_knopp(scores: Tensor, n_iters: int = 3, epsilon: float = 0.05) -> Tensor:
    """Equipartitioned soft assignment of ``n`` features to ``K`` prototypes (SwAV's solver).

    ``scores`` is ``(n, K)`` (cosine similarities). Returns ``S`` of the same shape with every row
    summing to 1 (each feature is fully assigned) and every column summing to ``n / K`` up to the
    convergence of ``n_iters`` alternating normalisations (each prototype receives an equal share,
    which keeps the EMA from collapsing onto a few prototypes). Computed in float64 in the log
    domain so small ``epsilon`` cannot overflow.
    """
    n, k = scores.shape
    log_q = scores.double() / epsilon  # (n, K)
    log_q = log_q - torch.logsumexp(log_q.flatten(), 0)
    for _ in range(n_iters):
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) - math.log(k)  # columns: 1/K
        log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) - math.log(n)  # rows: 1/n
    return (log_q.exp() * n).to(scores.dtype)


class GeoContextPrototypes(nn.Module):
    """The region-prototype bank with Sinkhorn assignment, EMA update and attention read-out.

    Args:
        embed_dims: width ``d`` of ``F_mm`` (the prototypes live in the same space).
        region_grid: (n_lat, n_lon) of the equal-area region grid; ``N_R = n_lat * n_lon``.
        num_prototypes: ``N_p`` per region.
        momentum: EMA momentum ``m`` (weight kept on the old prototypes).
        sinkhorn_iters, epsilon: Sinkhorn-Knopp iterations and entropy temperature.
        frozen: keep the prototypes fixed even in training (the paper's fine-tuning option).

    Without (lat, lon) the context is zero (no region can be addressed) and nothing is updated;
    the output keeps its ``2d`` width so heads see one layout.
    """

    def __init__(
        self,
        embed_dims: int,
        region_grid: tuple[int, int] = (64, 64),
        num_prototypes: int = 100,
        momentum: float = 0.99,
        sinkhorn_iters: int = 3,
        epsilon: float = 0.05,
        frozen: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"prototype momentum must lie in [0, 1]; got {momentum}")
        self.embed_dims = embed_dims
        self.region_grid = (int(region_grid[0]), int(region_grid[1]))
        self.num_regions = self.region_grid[0] * self.region_grid[1]
        self.num_prototypes = num_prototypes
        self.momentum = momentum
        self.sinkhorn_iters = sinkhorn_iters
        self.epsilon = epsilon
        self.frozen = frozen
        bank = torch.empty(self.num_regions, num_prototypes, embed_dims)
        nn.init.trunc_normal_(bank, std=0.02)
        self.bank = nn.Parameter(bank, requires_grad=False)

    def regions(self, latlon: Tensor) -> Tensor:
        return latlon_to_region(latlon, self.region_grid).to(self.bank.device)

    def forward(self, feats: Tensor, latlon: Tensor | None) -> Tensor:
        """``feats``: ``(B, n, d)`` fused tokens; returns ``(B, n, 2d)`` = concat[F_mm, context]."""
        if latlon is None:
            return torch.cat([feats, torch.zeros_like(feats)], dim=-1)
        regions = self.regions(latlon)
        protos = self.bank[regions].to(feats.dtype)  # (B, N_p, d), a copy: safe to update the bank
        attn = torch.softmax(feats @ protos.transpose(1, 2) / math.sqrt(self.embed_dims), dim=-1)
        context = attn @ protos
        if self.training and not self.frozen and self.momentum < 1.0:
            self.update(feats.detach(), regions)
        return torch.cat([feats, context], dim=-1)

    @torch.no_grad()
    def assign(self, feats: Tensor, region: int) -> Tensor:
        """Sinkhorn assignment ``(n, N_p)`` of one sample's tokens to its region's prototypes."""
        sims = F.normalize(feats.float(), dim=-1) @ F.normalize(self.bank[region].float(), dim=-1).T
        return sinkhorn_knopp(sims, self.sinkhorn_iters, self.epsilon)

    @torch.no_grad()
    def update(self, feats: Tensor, regions: Tensor) -> None:
        """EMA of each addressed region toward its assigned features; other regions stay as they are.

        ``S^T F_mm`` uses ``S`` normalised per prototype (columns summing to 1), i.e. the
        assignment-weighted mean of the tokens, so the update has the features' scale. Samples are
        applied in batch order, so two samples of one region both move it.
        """
        for b, region in enumerate(regions.tolist()):
            s = self.assign(feats[b], region)
            s = s / s.sum(dim=0, keepdim=True).clamp_min(1e-12)
            target = (s.T @ feats[b].float()).to(self.bank.dtype)
            self.bank[region].mul_(self.momentum).add_(target, alpha=1.0 - self.momentum)
