"""Meta-Modality Attention (MMA), the fusion block of MaRS.

Tokens of both modalities are concatenated, ``T = [Z_RGB ; Z_SAR]``. Layers alternate:
odd layers (1st, 3rd, ...) attend *within* each modality, even layers attend jointly over all
tokens. The released pretraining code (``models/MaRS.py``, ``MetaAttention``) builds
``num_layers`` (intra, joint) pairs with 8 heads and ``num_layers=2``; ``depth`` here counts
those pairs the same way. As in that code, an intra layer uses one attention module for both
modalities (shared weights, separate attention), and token counts per modality may differ.

Two block styles:

* ``"post"`` (this module's default, the paper's description): ``x = LN(x + MHSA(x))``, then
  ``x = LN(x + MLP(x))``.
* ``"released"`` (the released pretraining code, exactly; the MaRS presets' choice):
  ``x = x + MLP(MHSA(LN(x)))``, with one LayerNorm and a single residual; MMA weights of a full
  MaRS pretraining checkpoint load into it (module names map one-to-one, see ``RELEASED_KEY_MAP``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from timm.layers import DropPath, Mlp
from torch import Tensor, nn

STYLES = ("post", "released")
#: Released ``MetaAttention`` block entries ``[LayerNorm, MultiheadAttention, DropPath, Mlp]``
#: by index -> this module's names.
RELEASED_KEY_MAP = {"0": "norm1", "1": "attn", "3": "mlp"}


class MMABlock(nn.Module):
    """One MMA layer: intra-modal (``joint=False``) or joint (``joint=True``) self-attention + MLP."""

    def __init__(self, dim: int, num_heads: int, joint: bool, mlp_ratio: float = 4.0,
                 drop_path: float = 0.0, style: str = "post") -> None:
        super().__init__()
        if style not in STYLES:
            raise ValueError(f"MMA style must be one of {STYLES}; got {style!r}")
        if dim % num_heads:
            raise ValueError(f"MMA: {num_heads} heads do not divide the stage width {dim}")
        self.joint = joint
        self.style = style
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.norm2 = nn.LayerNorm(dim) if style == "post" else None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def attend(self, x: Tensor, lengths: Sequence[int]) -> Tensor:
        """Self-attention over all tokens (joint) or within each modality's segment (intra)."""
        groups = [x] if self.joint else list(x.split(list(lengths), dim=1))
        return torch.cat([self.attn(g, g, g, need_weights=False)[0] for g in groups], dim=1)

    def forward(self, x: Tensor, lengths: Sequence[int]) -> Tensor:
        if self.style == "released":
            return x + self.drop_path(self.mlp(self.attend(self.norm1(x), lengths)))
        assert self.norm2 is not None
        x = self.norm1(x + self.drop_path(self.attend(x, lengths)))
        return self.norm2(x + self.drop_path(self.mlp(x)))


class MetaModalityAttention(nn.Module):
    """``2 * depth`` MMA layers: intra, joint, intra, joint, ...

    ``forward`` takes one ``(B, N_m, C)`` token tensor per modality and returns them refined,
    in the same order. ``joint=False`` (a modality is missing and no placeholder stands in for
    it) leaves the joint layers out: ``nn.Identity`` holds their places, so layer indices (and
    checkpoint keys) stay those of the full module. ``intra_only=True`` skips built joint layers.
    """

    def __init__(self, dim: int, depth: int = 2, num_heads: int = 8, mlp_ratio: float = 4.0,
                 drop_path: float = 0.0, style: str = "post", joint: bool = True) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"MMA depth must be >= 1 (pairs of intra and joint layers); got {depth}")
        self.dim = dim
        self.layers = nn.ModuleList(
            MMABlock(dim, num_heads, joint=i % 2 == 1, mlp_ratio=mlp_ratio, drop_path=drop_path, style=style)
            if joint or i % 2 == 0 else nn.Identity()
            for i in range(2 * depth)
        )

    def blocks(self) -> list[MMABlock]:
        """The built layers."""
        return [layer for layer in self.layers if isinstance(layer, MMABlock)]

    def forward(self, tokens: Sequence[Tensor], intra_only: bool = False) -> list[Tensor]:
        lengths = [t.shape[1] for t in tokens]
        x = torch.cat(list(tokens), dim=1)
        for layer in self.blocks():
            if layer.joint and intra_only:
                continue
            x = layer(x, lengths)
        return list(x.split(lengths, dim=1))
