"""``--memory-format``: channels-last where convolutions dominate the backbone (``auto``), the
same outputs either way, and the run option reaching the built model."""

from __future__ import annotations

import pytest
import torch
from mmengine.registry import MODELS

from rsbench.errors import SpecError
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.run.spec import RunSpec


def _build(name: str):
    info = get_catalog().backbone(name)
    info.register_type()
    torch.manual_seed(0)
    model = MODELS.build(info.config())
    model.init_weights()
    return model.eval()


@pytest.mark.parametrize("name,prefers", [("resnet50-tiny", True), ("vit-tiny", False), ("swin-tiny", False),
                                          ("skysense-tiny", False), ("mars-tiny", False)])
def test_channels_last_is_preferred_where_convolutions_dominate(name, prefers):
    assert _build(name).prefers_channels_last() is prefers


def test_channels_last_keeps_the_outputs():
    model = _build("resnet50-tiny")
    x = model.example_inputs(2, 64)
    with torch.no_grad():
        before = model(x)
        model.to(memory_format=torch.channels_last)
        after = model(x)
    assert any(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
               for p in model.parameters() if p.dim() == 4)
    for a, b in zip(before, after):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_a_bad_memory_format_is_named():
    with pytest.raises(SpecError, match="--memory-format 'nhwc'"):
        RunSpec(backbone="resnet50-tiny", task="aid", memory_format="nhwc").validate()


def test_the_hook_converts_the_backbone_of_a_built_model():
    from types import SimpleNamespace

    from rsbench.engine.compute_options import ChannelsLastHook

    for force, name, converted in ((False, "resnet50-tiny", True), (False, "vit-tiny", False),
                                   (True, "vit-tiny", True)):
        model = torch.nn.Sequential(_build(name))
        logs = []
        ChannelsLastHook(force=force).before_run(SimpleNamespace(model=model, logger=SimpleNamespace(info=logs.append)))
        assert bool(logs) is converted
        if converted:
            outputs = model(torch.randn(1, 3, 64, 64))
            assert all(o.is_contiguous() for o in outputs)  # NCHW for the ops downstream
