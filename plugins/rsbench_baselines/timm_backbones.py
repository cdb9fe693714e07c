"""Any timm model with ``features_only`` support as an rsbench backbone: ``timm:<model_name>``.

Channels and strides come from timm's ``feature_info``; the parameter count from building the
feature extractor on the meta device (no memory, no init cost). ``pretrained=False`` always:
rsbench never downloads weights; user checkpoints load through ``checkpoint=`` (weights-only,
with a key report), either in the feature extractor's own key layout or in the plain timm
model's (``layers.0.`` -> ``layers_0.``; the classifier's keys are dropped).
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from mmengine.registry import MODELS as ROOT_MODELS
from torch import Tensor, nn

from rsbench.errors import RsbenchError, UnknownNameError
from rsbench.plugin_api.backbone import RSBackbone
from rsbench.plugin_api.catalog import BackboneInfo

PREFIX = "timm"
RGB = {"hr": ("R", "G", "B")}
BUILDER = "rsbench_baselines.timm_backbones"
TYPE = "RSBTimmBackbone"
DEFAULT_TEST_SIZE = 64


class UnknownTimmModelError(UnknownNameError):
    """A ``timm:<name>`` whose name timm does not know (message lists close names only)."""

    def __init__(self, name: str) -> None:
        import timm

        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        RsbenchError.__init__(self, f"unknown timm model {name!r}.{hint} "
                                    f"(timm {timm.__version__}; list names with timm.list_models('*pattern*'))")
        self.kind, self.name, self.close_matches = "timm model", name, close


def create_features_model(model_name: str, in_chans: int = 3, out_indices: Sequence[int] | None = None,
                          timm_kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """``timm.create_model(..., features_only=True, pretrained=False)`` with rsbench errors."""
    import timm

    if not timm.is_model(model_name):
        raise UnknownTimmModelError(model_name)
    kwargs = dict(timm_kwargs or {})
    for key in ("pretrained", "features_only", "pretrained_cfg_overlay", "checkpoint_path"):
        if kwargs.pop(key, None):
            raise RsbenchError(f"timm:{model_name}: {key!r} is not accepted; rsbench never downloads "
                               "weights, load yours with checkpoint=")
    if out_indices is not None:
        kwargs["out_indices"] = tuple(out_indices)
    try:
        return timm.create_model(model_name, pretrained=False, features_only=True, in_chans=in_chans, **kwargs)
    except (RuntimeError, AssertionError, NotImplementedError, TypeError, ValueError) as exc:
        raise RsbenchError(
            f"timm model {model_name!r} cannot be built as a feature extractor (features_only=True"
            f"{', ' + ', '.join(f'{k}={v!r}' for k, v in kwargs.items()) if kwargs else ''}): "
            f"{type(exc).__name__}: {exc}") from exc


def _input_rule(model_name: str, strides: Sequence[int]) -> tuple[str, int, int]:
    """Fixed-size models (ViT, Swin) take their pretrained size; others any multiple of the stride.
    Returns the rule in words, the test size and the minimum input size (``rsbench.protocol.input_rules``:
    a fixed size is declared as the minimum, so resizing tasks adapt up to it; a larger size
    still fails at the forward, which the rule as data cannot say)."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(model_name)
    if cfg is not None and getattr(cfg, "fixed_input_size", False):
        size = int(cfg.input_size[-1])
        return (f"fixed {cfg.input_size[-2]}x{cfg.input_size[-1]} (timm fixed_input_size; "
                "set timm_kwargs img_size= to change)"), size, size
    return f"H and W multiples of {max(strides)}", DEFAULT_TEST_SIZE, 0


@functools.lru_cache(maxsize=None)
def describe(name: str) -> BackboneInfo:
    """The :class:`BackboneInfo` of ``timm:<model_name>`` (RGB input, all feature levels)."""
    prefix, sep, model_name = name.partition(":")
    if prefix != PREFIX or not sep or not model_name:
        raise RsbenchError(f"expected a backbone name 'timm:<model_name>'; got {name!r}")
    with torch.device("meta"):
        net = create_features_model(model_name, in_chans=len(RGB["hr"]))
    channels = tuple(int(c) for c in net.feature_info.channels())
    strides = tuple(int(s) for s in net.feature_info.reduction())
    rule, test_size, min_size = _input_rule(model_name, strides)
    return BackboneInfo(
        name=name,
        module=BUILDER,
        mm_type=TYPE,
        kwargs=dict(model_name=model_name, modalities=RGB),
        modalities=RGB,
        out_channels=channels,
        out_strides=strides,
        pooled_channels=channels[-1],
        params=sum(p.numel() for p in net.parameters()),
        family="baseline",
        description=f"timm {model_name} (features_only), randomly initialised unless checkpoint= is given",
        input_rule=rule,
        min_input_size=min_size,
        input_multiple=max(strides),
        test_size=test_size,
    )


def _plain_name(key: str) -> str:
    """A ``features_only`` key in the plain model's layout: ``layers_0.x`` -> ``layers.0.x``
    (timm flattens the first level of ``nn.Sequential`` containers with an underscore)."""
    return re.sub(r"^(\w+?)_(\d+)\.", r"\1.\2.", key)


@ROOT_MODELS.register_module(name=TYPE)
class TimmBackbone(RSBackbone):
    """A timm ``features_only`` model under the rsbench contract (single modality).

    Args:
        model_name: any timm model name with ``features_only`` support.
        modalities: one modality and its band names; ``in_chans`` is the band count.
        out_indices: feature levels to return (timm's default: all).
        timm_kwargs: extra ``timm.create_model`` arguments (``img_size``, ``drop_path_rate`` ...).
    """

    def __init__(
        self,
        model_name: str,
        modalities: Mapping[str, Sequence[str]] = RGB,
        out_indices: Sequence[int] | None = None,
        timm_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if len(modalities) != 1:
            raise RsbenchError(f"timm:{model_name} takes one modality; got {list(modalities)} "
                               "(multi-modal input to a single-modal backbone needs an adapter)")
        self.model_name = model_name
        self.modalities = {k: tuple(v) for k, v in modalities.items()}
        in_chans = len(next(iter(self.modalities.values())))
        self.net = create_features_model(model_name, in_chans, out_indices, timm_kwargs)
        self.out_channels = tuple(int(c) for c in self.net.feature_info.channels())
        self.out_strides = tuple(int(s) for s in self.net.feature_info.reduction())
        self.pooled_channels = self.out_channels[-1]
        self._nhwc = getattr(self.net, "output_fmt", "NCHW") == "NHWC"
        self._apply_freeze()

    def forward(self, inputs: Tensor | Mapping[str, Any]) -> tuple[Tensor, ...]:
        x = self.primary(inputs)
        modality = next(iter(self.modalities))
        if x.dim() == 5 and x.shape[1] == 1:
            x = x[:, 0]
        if x.dim() != 4:
            raise ValueError(f"timm:{self.model_name}: modality {modality!r} expects (B, C, H, W); "
                             f"got shape {tuple(x.shape)}")
        self.check_bands(modality, x)
        feats = self.net(x)
        return tuple(f.permute(0, 3, 1, 2).contiguous() if self._nhwc else f for f in feats)

    def checkpoint_blocks(self) -> Iterable[nn.Module]:
        """The children of timm's ``blocks`` containers (ViT, Swin, ConvNeXt, EfficientNet ...),
        else of the feature extractor's top-level ``nn.Sequential`` stages (ResNet's ``layer<i>``);
        modules without parameters are left out. Per block rather than timm's feature-wrapper
        switch, which checkpoints whole stages, skips the last one and acts in eval too."""
        containers = [(name, m) for name, m in self.net.named_modules()
                      if name.rsplit(".", 1)[-1].endswith("blocks") and isinstance(m, (nn.Sequential, nn.ModuleList))]
        innermost = [m for name, m in containers if not any(o.startswith(name + ".") for o, _ in containers)]
        if not innermost:
            innermost = [m for m in self.net.children() if isinstance(m, nn.Sequential)]
        blocks = [b for container in innermost for b in container if any(True for _ in b.parameters())]
        if not blocks:
            raise RsbenchError(f"timm:{self.model_name}: no repeated blocks found for activation checkpointing "
                               "(looked for timm 'blocks' containers and nn.Sequential stages)")
        return blocks

    def map_checkpoint_keys(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """Own keys pass; feature-extractor keys gain ``net.``; plain-model keys are renamed;
        the classifier's keys (timm's ``pretrained_cfg['classifier']``) are dropped."""
        from timm.models import get_pretrained_cfg_value

        own = set(self.state_dict())
        by_plain = {_plain_name(k[len("net."):]): k for k in own}
        classifier = get_pretrained_cfg_value(self.model_name, "classifier") or ()
        classifier = (classifier,) if isinstance(classifier, str) else tuple(classifier)
        out: dict[str, Tensor] = {}
        for k, v in state.items():
            if k in own:
                out[k] = v
            elif f"net.{k}" in own:
                out[f"net.{k}"] = v
            elif k in by_plain:
                out[by_plain[k]] = v
            elif not any(k.startswith(c + ".") for c in classifier):
                out[k] = v  # left for the key report
        return out
