"""Every registered backbone, built-in or plugin, honours the one backbone contract
(parametrized over the registry, the way timm tests every model it registers)."""

from __future__ import annotations

import pytest
import torch

from rsbench.errors import CheckpointError
from rsbench.plugin_api.backbone import RSBackbone, count_parameters
from rsbench.plugin_api.plugin_host import get_catalog, list_backbones

BACKBONES = list_backbones()
#: Built for real (forward on the CPU): everything small enough; paper sizes are only counted.
BUILDABLE = [n for n in BACKBONES if get_catalog().backbone(n).params < 120_000_000]


def _build(name: str, **overrides):
    from mmengine.registry import MODELS

    info = get_catalog().backbone(name)
    info.register_type()
    torch.manual_seed(0)
    return info, MODELS.build(info.config(**overrides))


@pytest.mark.parametrize("name", BACKBONES)
def test_declared_parameter_count_is_exact(name):
    info = get_catalog().backbone(name)
    info.register_type()
    assert count_parameters(info.config()) == info.params


@pytest.mark.parametrize("name", BUILDABLE)
def test_outputs_follow_the_declared_channels_and_strides(name):
    info, model = _build(name)
    assert isinstance(model, RSBackbone)
    assert dict(model.modalities) == {k: tuple(v) for k, v in info.modalities.items()}
    assert tuple(model.out_channels) == info.out_channels and tuple(model.out_strides) == info.out_strides
    model.eval()
    size = info.test_size
    inputs = model.example_inputs(2, size)
    with torch.no_grad():
        outs = model(inputs)
        pooled = model.forward_pooled(inputs)
    assert isinstance(outs, tuple) and len(outs) == len(info.out_channels)
    for out, channels, stride in zip(outs, info.out_channels, info.out_strides, strict=True):
        assert tuple(out.shape) == (2, channels, size // stride, size // stride)
        assert torch.isfinite(out).all()
    assert tuple(pooled.shape) == (2, info.pooled_channels)


@pytest.mark.parametrize("name", [n for n in BUILDABLE if get_catalog().backbone(n).tiny])
def test_frozen_backbones_get_no_gradients(name):
    info, model = _build(name, frozen=True)
    model.init_weights()
    model.train()
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("name", [n for n in BUILDABLE if get_catalog().backbone(n).tiny])
def test_weight_accounting_and_unknown_parts(name):
    """Every backbone accounts its weights (nothing loaded: all initialised) and refuses an
    encoder part it does not have, naming the parts it has."""
    info, model = _build(name)
    model.init_weights()
    acc = model.weight_accounting()
    assert acc["loaded"] == 0 and acc["initialised"] == sum(p.numel() for p in model.parameters())
    assert acc["sources"] == [] and 1 <= len(acc["initialised_modules"]) <= 8
    with pytest.raises(CheckpointError, match=r"has no part 'no-such-part'; it has"):
        _build(name, encoder_checkpoints={"no-such-part": "x.pth"})[1].init_weights()


def test_the_test_plugin_backbone_is_covered():
    assert "test-resnet18-nir" in BACKBONES and "test-resnet18-nir" in BUILDABLE
