"""Torch-free helpers the task needs while writing a config (the models module imports mmseg)."""

from __future__ import annotations

from collections.abc import Sequence


def fused_channels(policy: str, channels: Sequence[int]) -> list[int]:
    """Channels per level after the fusion neck: concat doubles them, the others keep them."""
    return [2 * c if policy == "concat" else int(c) for c in channels]
