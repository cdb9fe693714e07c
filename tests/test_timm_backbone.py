"""``timm:<model_name>`` backbones: description from feature_info, contract, errors, checkpoints."""

from __future__ import annotations

import pytest
import timm  # noqa: E402  (a declared dependency: no skip)
import torch
from mmengine.registry import MODELS  # noqa: E402

from rsbench import get_catalog
from rsbench.errors import CheckpointError, RsbenchError, UnknownNameError
from rsbench.plugin_api.backbone import count_parameters
from rsbench_baselines.timm_backbones import TimmBackbone, describe  # noqa: E402

#: A SwinV2 small enough for CPU; its features come out NHWC from timm.
SMALL_SWIN = dict(img_size=64, embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 2, 2, 4), window_size=4)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """One intra-op thread for this module (see conftest)."""


def build(**kwargs) -> TimmBackbone:
    torch.manual_seed(0)
    model = MODELS.build(dict(type="RSBTimmBackbone", **kwargs))
    model.init_weights()
    return model.eval()


def test_describe_reads_feature_info_and_counts_params():
    info = get_catalog().backbone("timm:resnet18")  # through the registered prefix
    assert info == describe("timm:resnet18")
    assert info.out_channels == (64, 64, 128, 256, 512)
    assert info.out_strides == (2, 4, 8, 16, 32)
    assert info.pooled_channels == 512
    assert info.modalities == {"hr": ("R", "G", "B")}
    reference = timm.create_model("resnet18", pretrained=False, features_only=True)
    assert info.params == sum(p.numel() for p in reference.parameters())
    assert count_parameters(info.config()) == info.params
    assert info.input_rule == "H and W multiples of 32" and info.test_size == 64


def test_describe_fixed_size_model():
    info = describe("timm:swinv2_base_window8_256")
    assert info.out_channels == (128, 256, 512, 1024)
    assert info.out_strides == (4, 8, 16, 32)
    assert info.test_size == 256 and info.input_rule.startswith("fixed 256x256")
    assert count_parameters(info.config()) == info.params


def test_forward_contract_resnet():
    info = describe("timm:resnet18")
    model = build(**info.kwargs)
    with torch.no_grad():
        outs = model(model.example_inputs(2, info.test_size))
        pooled = model.forward_pooled({"hr": torch.randn(2, 3, 64, 64)})
    for out, c, s in zip(outs, info.out_channels, info.out_strides):
        assert out.shape == (2, c, 64 // s, 64 // s)
    assert pooled.shape == (2, 512)


def test_nhwc_features_come_out_nchw():
    model = build(model_name="swinv2_tiny_window8_256", timm_kwargs=SMALL_SWIN)
    assert model.out_channels == (16, 32, 64, 128)
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape[1:]) for o in outs] == [(16, 16, 16), (32, 8, 8), (64, 4, 4), (128, 2, 2)]


def test_single_band_modality_and_frozen():
    model = build(model_name="resnet18", modalities={"sar": ("SAR",)}, out_indices=(3, 4), frozen=True)
    model.train()
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    x = model.example_inputs(1, 64)
    assert x.shape == (1, 1, 64, 64)
    assert [o.shape[1] for o in model({"sar": x})] == [256, 512]


def test_gradients():
    model = build(model_name="resnet18")
    model.train()
    sum(o.mean() for o in model(torch.randn(2, 3, 64, 64))).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_bad_band_count_names_modality_and_shape():
    with pytest.raises(ValueError, match=r"modality 'hr' expects 3 bands \(R, G, B\) as \(B, 3, H, W\)"):
        build(model_name="resnet18")(torch.randn(1, 4, 64, 64))


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownNameError, match="unknown timm model 'resnet1'.*Did you mean:.*resnet18"):
        describe("timm:resnet1")
    with pytest.raises(RsbenchError, match="timm:<model_name>"):
        describe("timm:")


def test_model_without_features_only_is_a_clear_error():
    # timm 1.0 gives almost every model features_only; Inception-v3 with aux logits refuses it.
    with pytest.raises(RsbenchError, match="'inception_v3' cannot be built as a feature extractor.*aux_logits=True"):
        build(model_name="inception_v3", timm_kwargs={"aux_logits": True})


def test_no_downloads_and_one_modality():
    with pytest.raises(RsbenchError, match="never downloads"):
        build(model_name="resnet18", timm_kwargs={"pretrained": True})
    with pytest.raises(RsbenchError, match="one modality"):
        build(model_name="resnet18", modalities={"hr": ("R", "G", "B"), "sar": ("SAR",)})


def test_plain_timm_checkpoint_loads_and_classifier_is_dropped(tmp_path):
    torch.manual_seed(5)
    plain = timm.create_model("resnet18", pretrained=False, num_classes=10)
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": plain.state_dict()}, path)
    model = build(model_name="resnet18", checkpoint=str(path))
    assert model.key_report.clean, model.key_report.summary()
    torch.testing.assert_close(model.net.layer4[1].conv2.weight, plain.layer4[1].conv2.weight)


def test_flattened_keys_and_final_norm_are_reported(tmp_path):
    """Swin's stages are ``layers.N`` in the plain model and ``layers_N`` in the feature
    extractor; its final norm has no place in a feature extractor and must be reported."""
    torch.manual_seed(6)
    plain = timm.create_model("swinv2_tiny_window8_256", pretrained=False, **SMALL_SWIN)
    path = tmp_path / "swin.pth"
    torch.save(plain.state_dict(), path)
    with pytest.raises(CheckpointError, match="2 unexpected: norm.bias, norm.weight"):
        build(model_name="swinv2_tiny_window8_256", timm_kwargs=SMALL_SWIN, checkpoint=str(path))
    model = build(model_name="swinv2_tiny_window8_256", timm_kwargs=SMALL_SWIN, checkpoint=str(path), strict=False)
    assert not model.key_report.missing and not model.key_report.shape_mismatch
    torch.testing.assert_close(model.net.layers_3.blocks[0].attn.qkv.weight, plain.layers[3].blocks[0].attn.qkv.weight)
