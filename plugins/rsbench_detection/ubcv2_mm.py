"""The mmdet components of the UBCv2 RGB+SAR task (importing this module registers them).

* ``RSBLoadOpticalSAR``: loads a sample's optical file and its registered SAR partner and
  stacks the fed modalities along channels (float32, ``hr`` R, G, B then ``sar``) and
  normalises each band (mean/std per channel), so the pair travels through mmdet's unchanged
  Resize / RandomFlip / PackDetInputs together. Normalising here, as the MaRS config's
  ``Normalize`` step does, because mmengine's data preprocessor takes only 1 or 3 means.
* ``RSBFasterRCNN`` / ``RSBCascadeRCNN``: mmdet's detectors whose backbone receives the dict
  ``{modality: (B, C_m, H, W)}`` split from the stacked channels — the one place the stack
  becomes the multi-modal input of the backbone contract again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.models.detectors import CascadeRCNN, FasterRCNN
from mmdet.registry import MODELS, TRANSFORMS
from torch import Tensor

from rsbench_detection.ubcv2 import load_pair


@TRANSFORMS.register_module(name="RSBLoadOpticalSAR")
class LoadOpticalSAR(BaseTransform):
    """``img``: the fed modalities (``hr`` and/or ``sar``) stacked and normalised, float32 H x W x C."""

    def __init__(self, modalities: Sequence[str], mean: Sequence[float], std: Sequence[float]) -> None:
        unknown = set(modalities) - {"hr", "sar"}
        if unknown or not modalities:
            raise ValueError(f"RSBLoadOpticalSAR: modalities {list(modalities)}; expected a subset of hr, sar")
        self.modalities = tuple(modalities)
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        rgb, sar = load_pair(results["img_path"], results["sar_path"])
        arrays = {"hr": rgb, "sar": sar}
        img = np.concatenate([arrays[m] for m in self.modalities], axis=2)
        if img.shape[2] != len(self.mean):
            raise ValueError(f"RSBLoadOpticalSAR: {img.shape[2]} channels from {results['img_path']} "
                             f"but {len(self.mean)} means")
        img = (img - self.mean) / self.std
        results["img"] = img
        results["img_shape"] = results["ori_shape"] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(modalities={self.modalities})"


class _SplitModalities:
    """``modalities``: [[name, bands], ...] in the stacking order of ``RSBLoadOpticalSAR``."""

    split_spec: list[tuple[str, int]]

    def split_modalities(self, inputs: Tensor) -> dict[str, Tensor]:
        expected = sum(b for _, b in self.split_spec)
        if inputs.shape[1] != expected:
            raise ValueError(f"{type(self).__name__}: expected {expected} stacked channels "
                             f"({self.split_spec}); got shape {tuple(inputs.shape)}")
        out, start = {}, 0
        for name, bands in self.split_spec:
            out[name] = inputs[:, start:start + bands]
            start += bands
        return out

    def extract_feat(self, batch_inputs: Tensor) -> tuple[Tensor, ...]:
        feats = self.backbone(self.split_modalities(batch_inputs))  # type: ignore[attr-defined]
        return self.neck(feats) if self.with_neck else feats  # type: ignore[attr-defined]


@MODELS.register_module(name="RSBFasterRCNN")
class ModalityFasterRCNN(_SplitModalities, FasterRCNN):
    def __init__(self, modalities: Sequence[Sequence[Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.split_spec = [(str(m), int(b)) for m, b in modalities]


@MODELS.register_module(name="RSBCascadeRCNN")
class ModalityCascadeRCNN(_SplitModalities, CascadeRCNN):
    def __init__(self, modalities: Sequence[Sequence[Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.split_spec = [(str(m), int(b)) for m, b in modalities]
