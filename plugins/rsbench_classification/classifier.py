"""An mmpretrain ImageClassifier that feeds the head the backbone's own pooled vector.

Multi-modal backbones (SkySense's fused features with geo-context, MaRS' fused tokens) define
their image-level vector in ``forward_pooled``; global-average pooling of the last map would
miss it, so image-level tasks always go through the contract's pooled output.
"""

from __future__ import annotations

from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS


@MODELS.register_module(name="RSBPooledClassifier")
class PooledClassifier(ImageClassifier):
    def extract_feat(self, inputs, stage="neck"):  # type: ignore[override]
        return (self.backbone.forward_pooled(inputs),)
