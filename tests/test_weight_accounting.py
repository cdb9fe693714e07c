"""Weights accounting and per-encoder parts of the base backbone (``rsbench.plugin_api.backbone.RSBackbone``):
what every backbone reports for the leaderboard row, whatever loaded its weights."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import pytest
import torch
from mmengine.registry import MODELS
from torch import nn

from rsbench.errors import CheckpointError
from rsbench.io.checkpoint import KeyReport, load_into, read_state_dict
from rsbench.plugin_api.backbone import InitialisedWeightsWarning, RSBackbone

NET = dict(type="RSBMMPretrainBackbone",
           net=dict(type="ResNet", depth=18, in_channels=3, stem_channels=8, base_channels=8,
                    out_indices=(0, 1, 2, 3)),
           modalities={"hr": ("R", "G", "B")}, out_channels=(8, 16, 32, 64), out_strides=(4, 8, 16, 32))


def _resnet(**kwargs: Any) -> RSBackbone:
    import rsbench_baselines.mmpretrain_backbones  # noqa: F401  (registers RSBMMPretrainBackbone)

    torch.manual_seed(0)
    model = MODELS.build(dict(NET, **kwargs))
    model.init_weights()
    return model


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("w") / "resnet.pth"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in _resnet().net.state_dict().items()}}, path)
    return str(path)


def test_no_checkpoint_everything_initialised_and_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", InitialisedWeightsWarning)
        model = _resnet()
    acc = model.weight_accounting()
    assert acc == dict(loaded=0, initialised=_numel(model), initialised_modules=["net"], sources=[])


def test_full_checkpoint_is_all_loaded(weights):
    with warnings.catch_warnings():
        warnings.simplefilter("error", InitialisedWeightsWarning)
        model = _resnet(checkpoint=weights)
    acc = model.weight_accounting()
    assert acc == dict(loaded=_numel(model), initialised=0, initialised_modules=[], sources=[weights])
    assert model.key_report.loaded and model.key_report.clean


def test_partial_load_warns_and_counts_what_stayed_random(weights, tmp_path):
    state = read_state_dict(weights)
    dropped = [k for k in state if k.startswith("layer4.")]
    torch.save({k: v for k, v in state.items() if k not in dropped}, tmp_path / "part.pth")
    with pytest.warns(InitialisedWeightsWarning, match=r"parameters on the forward path are still at "
                                                       r"initialisation.*part\.pth.*modules: net"):
        model = _resnet(checkpoint=str(tmp_path / "part.pth"), strict=False)
    acc = model.weight_accounting()
    layer4 = _numel(model.net.layer4)
    assert acc["initialised"] == layer4 and acc["loaded"] == _numel(model) - layer4
    assert model.key_report.missing and not model.key_report.clean


def test_strict_mismatch_names_first_keys(weights, tmp_path):
    state = read_state_dict(weights)
    state.pop("conv1.weight")
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"bad\.pth does not match.*1 missing: net\.conv1\.weight; "
                                              r"1 unexpected: net\.extra\.weight"):
        _resnet(checkpoint=str(tmp_path / "bad.pth"))


def test_backbone_without_parts_refuses_encoder_checkpoints(weights):
    with pytest.raises(CheckpointError, match=r"--checkpoint hr=.*MMPretrainBackbone has no part 'hr'; it has "
                                              r"no per-encoder parts; give its whole state dict as --checkpoint FILE"):
        _resnet(encoder_checkpoints={"hr": weights})


class TwoEncoders(RSBackbone):
    """A minimal backbone with two encoder parts (and an alias), as MaRS declares them."""

    checkpoint_parts = ("rgb", "sar")
    checkpoint_part_aliases: Mapping[str, str] = {"hr": "rgb"}
    modalities = {"hr": ("R", "G", "B"), "sar": ("VV",)}
    out_channels = (4,)
    out_strides = (1,)
    pooled_channels = 4

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.encoders = nn.ModuleDict({"rgb": nn.Conv2d(3, 4, 1), "sar": nn.Conv2d(1, 4, 1)})
        self.reports: dict[str, KeyReport] = {}

    def forward(self, inputs):
        return (self.encoders["rgb"](self.primary(inputs)),)

    def load_part(self, part: str, path: str) -> KeyReport:
        self.reports[part] = load_into(self.encoders[part], read_state_dict(path), path=path)
        return self.reports[part]


def test_parts_aliases_and_accounting_by_part(tmp_path):
    torch.save(nn.Conv2d(3, 4, 1).state_dict(), tmp_path / "rgb.pth")
    with pytest.warns(InitialisedWeightsWarning, match=r"modules: encoders\.sar"):
        model = TwoEncoders(encoder_checkpoints={"hr": str(tmp_path / "rgb.pth")})
        model.init_weights()
    assert set(model.reports) == {"rgb"} and model.reports["rgb"].clean
    acc = model.weight_accounting()
    assert acc == dict(loaded=16, initialised=8, initialised_modules=["encoders.sar"],
                       sources=[str(tmp_path / "rgb.pth")])
    with pytest.raises(CheckpointError, match=r"no part 'nir'; it has the parts rgb, sar, hr \(= rgb\)"):
        TwoEncoders(encoder_checkpoints={"nir": "x"}).init_weights()
    with pytest.raises(CheckpointError, match=r"part 'rgb' is given twice"):
        TwoEncoders(encoder_checkpoints={"hr": "a", "rgb": "b"}).part_checkpoints()


def test_accounting_survives_moving_the_model(weights):
    """The marks live on the parameters, so `.to()` and channels-last keep them."""
    model = _resnet(checkpoint=weights).to(memory_format=torch.channels_last).to(torch.float64)
    assert model.weight_accounting()["initialised"] == 0
