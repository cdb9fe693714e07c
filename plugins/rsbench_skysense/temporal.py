"""Multi-modal temporal fusion (SkySense Sec. 3.2): DTPE + extra token + Transformer over time.

Every modality's per-frame features are projected to a common width ``d`` and resampled to one
grid; per grid cell the frames of all modalities form one sequence (concatenated along time).
Each frame gets the date-aware temporal positional encoding ``P_DTPE`` of its acquisition day
of year, a learnable extra token is prepended, and a Transformer encoder fuses the sequence; the
extra token's output is ``F_mm``. Nothing else marks position in the sequence, so the fusion is
invariant to the order in which frames are given and depends on *when* they were acquired.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn


class DateAwareTemporalEncoding(nn.Module):
    """``P_DTPE``: a learnable ``365 x d`` table indexed by day of year.

    Day ``doy`` (1..366) reads row ``min(doy, 365) - 1``: the 366th day of a leap year shares
    the entry of day 365. Frames without a date get no encoding (a zero vector), the documented
    fallback for single images whose date is unknown.
    """

    def __init__(self, embed_dims: int, num_days: int = 365) -> None:
        super().__init__()
        self.num_days = num_days
        self.table = nn.Parameter(torch.empty(1, num_days, embed_dims))
        nn.init.trunc_normal_(self.table, std=0.02)

    def forward(self, doy: Tensor) -> Tensor:
        """``doy``: ``(B, T)`` integers 1..366 -> ``(B, T, d)``."""
        index = doy.long().clamp(1, self.num_days) - 1
        return self.table[0][index]


class TemporalFusionTransformer(nn.Module):
    """Fuses ``modality -> (B, T_i, C_i, h, w)`` features into ``F_mm`` of shape ``(B, d, h, w)``.

    Args:
        in_channels: per-modality feature width ``C_i`` (each gets its own linear projection).
        embed_dims, num_layers, num_heads, mlp_ratio: the fusion Transformer (pre-norm layers of
            mmpretrain's ``TransformerEncoderLayer``, the ViT layer, plus a final LayerNorm).
        num_days: rows of the DTPE table (365).
    """

    def __init__(
        self,
        in_channels: Mapping[str, int],
        embed_dims: int = 1024,
        num_layers: int = 24,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        num_days: int = 365,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer

        self.embed_dims = embed_dims
        self.proj = nn.ModuleDict({m: nn.Linear(c, embed_dims) for m, c in in_channels.items()})
        self.dtpe = DateAwareTemporalEncoding(embed_dims, num_days)
        self.extra_token = nn.Parameter(torch.empty(1, 1, embed_dims))
        nn.init.trunc_normal_(self.extra_token, std=0.02)
        rates = [drop_path_rate * i / max(num_layers - 1, 1) for i in range(num_layers)]
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(
                embed_dims=embed_dims,
                num_heads=num_heads,
                feedforward_channels=int(embed_dims * mlp_ratio),
                drop_path_rate=rates[i],
                qkv_bias=True,
                norm_cfg=dict(type="LN", eps=1e-6),
            )
            for i in range(num_layers)
        )
        self.norm = nn.LayerNorm(embed_dims, eps=1e-6)

    def project(self, modality: str, x: Tensor) -> Tensor:
        """``(N, C, h, w)`` encoder features -> ``(N, d, h, w)``."""
        return self.proj[modality](x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def forward(self, frames: list[Tensor], dates: list[Tensor | None]) -> Tensor:
        """``frames``: per modality ``(B, T_i, d, h, w)`` (already projected, one grid);
        ``dates``: per modality ``(B, T_i)`` day of year or ``None``. Returns ``(B, d, h, w)``."""
        x = torch.cat(frames, dim=1)  # (B, T, d, h, w): all modalities along time
        b, t, d, h, w = x.shape
        enc = [
            self.dtpe(doy) if doy is not None else x.new_zeros(b, f.shape[1], d)
            for f, doy in zip(frames, dates)
        ]
        x = x + torch.cat(enc, dim=1).to(x.dtype)[:, :, :, None, None]
        seq = x.permute(0, 3, 4, 1, 2).reshape(b * h * w, t, d)  # one sequence per grid cell
        seq = torch.cat([self.extra_token.expand(b * h * w, -1, -1).to(seq.dtype), seq], dim=1)
        for layer in self.layers:
            seq = layer(seq)
        fused = self.norm(seq[:, 0])
        return fused.reshape(b, h, w, d).permute(0, 3, 1, 2)
