"""mmpretrain backbones wrapped in the rsbench backbone contract."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mmengine.registry import MODELS as ROOT_MODELS
from torch import Tensor, nn

from rsbench.plugin_api.backbone import RSBackbone


@ROOT_MODELS.register_module(name="RSBMMPretrainBackbone")
class MMPretrainBackbone(RSBackbone):
    """Any mmpretrain backbone (``net`` is its config) under the rsbench contract.

    Official mmpretrain checkpoints (``backbone.*`` keys) load directly: the prefix is stripped
    on reading and ``net.`` added here.
    """

    def __init__(
        self,
        net: Mapping[str, Any],
        modalities: Mapping[str, Sequence[str]],
        out_channels: Sequence[int],
        out_strides: Sequence[int],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

        self.modalities = {k: tuple(v) for k, v in modalities.items()}
        self.out_channels = tuple(out_channels)
        self.out_strides = tuple(out_strides)
        self.pooled_channels = self.out_channels[-1]
        # _scope_ pins the lookup to mmpretrain: under mmdet's or mmrotate's default scope an
        # unscoped 'ResNet' would resolve to their own class or not at all.
        self.net = MMPRETRAIN_MODELS.build(dict(net, _scope_="mmpretrain"))
        self._apply_freeze()

    def forward(self, inputs: Tensor | Mapping[str, Any]) -> tuple[Tensor, ...]:
        x = self.primary(inputs)
        self.check_bands(next(iter(self.modalities)), x)
        return tuple(self.net(x))

    def checkpoint_blocks(self) -> Iterable[nn.Module]:
        """mmpretrain's own checkpointable blocks, the innermost modules with a ``with_cp`` switch
        (ResNet bottlenecks, Swin blocks; their reentrant ``with_cp`` path stays off), else the
        transformer layers of ViT-like nets (``layers``)."""
        named = [(name, m) for name, m in self.net.named_modules() if name and hasattr(m, "with_cp")]
        inner = [m for name, m in named if not any(other.startswith(name + ".") for other, _ in named)]
        layers = getattr(self.net, "layers", None)
        return inner or (list(layers) if isinstance(layers, nn.ModuleList) else [])

    def map_checkpoint_keys(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        if any(k.startswith("net.") for k in state):
            return state
        return {f"net.{k}": v for k, v in state.items()}
