"""MaRS: Meta-Modality Attention semantics, official-key loading, missing modality, presets."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from rsbench import get_catalog
from rsbench.backbone import count_parameters
from rsbench.errors import CheckpointError, ModalityMismatch

import timm  # noqa: E402  (a declared dependency: no skip)

from mmengine.registry import MODELS  # noqa: E402

from rsbench_mars.mma import MetaModalityAttention  # noqa: E402
from rsbench_mars.model import MaRS  # noqa: E402
from rsbench_mars.plugin import TINY  # noqa: E402

TINY_ENCODER = dict(TINY["encoder"])


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """One intra-op thread for this module (see conftest)."""


def tiny(**overrides) -> MaRS:
    torch.manual_seed(0)
    model = MODELS.build(get_catalog().backbone("mars-tiny").config(**overrides))
    model.init_weights()
    return model.eval()


def pair(batch: int = 2, size: int = 64, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"hr": torch.randn(batch, 3, size, size, generator=g),
            "sar": torch.randn(batch, 1, size, size, generator=g)}


def released_converter(plain_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What MaRS' utils/convert_mars_checkpoints_to_swin.py does to one encoder's keys."""
    out = {}
    for k, v in plain_state.items():
        if k.startswith("layers."):
            parts = k.split(".")
            k = f"layers_{parts[1]}." + ".".join(parts[2:])
        if k not in ("norm.weight", "norm.bias", "head.fc.weight", "head.fc.bias"):
            out[k] = v
    return out


def plain_timm(in_chans: int, **kwargs) -> nn.Module:
    enc = dict(TINY_ENCODER, **kwargs)
    return timm.create_model(enc.pop("model_name"), pretrained=False, in_chans=in_chans, **enc)


def bump(p: torch.Tensor, sign: int) -> None:
    """A non-uniform shift (a uniform one would vanish in a following LayerNorm)."""
    p.add_(sign * torch.linspace(-1, 1, p.numel()).view_as(p))


# -- presets ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mars", "mars-tiny"])
def test_declared_params_equal_meta_count(name):
    info = get_catalog().backbone(name)
    assert info.family == "mars"
    assert count_parameters(info.config()) == info.params
    if name == "mars-tiny":
        assert info.params <= 10_000_000 and info.tiny


def test_paper_preset_structure_on_meta():
    info = get_catalog().backbone("mars")
    with torch.device("meta"):
        model = MODELS.build(info.config())
    assert model.out_channels == info.out_channels == (128, 256, 512, 1024)
    assert model.out_strides == info.out_strides == (4, 8, 16, 32)
    assert list(model.mma) == ["3"]
    layers = model.mma["3"].layers
    assert [layer.joint for layer in layers] == [False, True, False, True]
    assert all(layer.attn.num_heads == 8 for layer in layers)
    assert model.encoders["hr"].patch_embed.proj.in_channels == 3
    assert model.encoders["sar"].patch_embed.proj.in_channels == 1


# -- Meta-Modality Attention --------------------------------------------------------

@pytest.mark.parametrize("style", ["post", "released"])
def test_intra_layers_never_mix_modalities_joint_layers_do(style):
    torch.manual_seed(0)
    mma = MetaModalityAttention(dim=32, depth=2, num_heads=4, style=style).eval()
    rgb, sar = torch.randn(2, 5, 32), torch.randn(2, 7, 32)  # unequal token counts on purpose
    sar_perturbed = sar + torch.randn_like(sar)
    lengths = (5, 7)
    for i, layer in enumerate(mma.layers):
        a = layer(torch.cat([rgb, sar], 1), lengths)
        b = layer(torch.cat([rgb, sar_perturbed], 1), lengths)
        assert layer.joint == (i % 2 == 1)  # odd layers (1st, 3rd) intra, even layers joint
        assert not torch.allclose(a[:, 5:], b[:, 5:])
        if layer.joint:
            assert not torch.allclose(a[:, :5], b[:, :5], atol=1e-5), f"joint layer {i} ignored SAR"
        else:
            torch.testing.assert_close(a[:, :5], b[:, :5], rtol=0, atol=0)


def test_model_mma_mixes_only_at_mma_stage_and_sum_never():
    x = pair()
    x2 = dict(x, sar=x["sar"] + 1.0)
    model = tiny()
    with torch.no_grad():
        a, b = model.forward_all(x), model.forward_all(x2)
    for s in range(3):  # before MMA: the RGB path is untouched by SAR
        torch.testing.assert_close(a["hr"][s], b["hr"][s], rtol=0, atol=0)
    assert not torch.allclose(a["hr"][3], b["hr"][3])
    summed = tiny(fusion="sum")
    assert len(summed.mma) == 0
    with torch.no_grad():
        a, b = summed.forward_all(x), summed.forward_all(x2)
    for s in range(4):
        torch.testing.assert_close(a["hr"][s], b["hr"][s], rtol=0, atol=0)
        torch.testing.assert_close(a["fused"][s], a["hr"][s] + a["sar"][s])


# -- forward contract ---------------------------------------------------------------

def test_tiny_forward_shapes_pooled_and_speed():
    info = get_catalog().backbone("mars-tiny")
    model = tiny()
    inputs = model.example_inputs(2, info.test_size)
    assert set(inputs) == {"hr", "sar"}
    with torch.no_grad():
        outs = model(inputs)  # also the warm-up
        elapsed = []
        for _ in range(3):  # on one thread (the module fixture)
            start = time.perf_counter()
            model(inputs)
            elapsed.append(time.perf_counter() - start)
        pooled = model.forward_pooled(inputs)
    assert len(outs) == len(info.out_channels)
    for out, c, s in zip(outs, info.out_channels, info.out_strides):
        assert out.shape == (2, c, info.test_size // s, info.test_size // s)
    assert pooled.shape == (2, info.pooled_channels)
    assert min(elapsed) < 1.0, f"mars-tiny forward took {min(elapsed):.2f}s on one CPU thread"


def test_other_input_sizes_run():
    model = tiny()
    with torch.no_grad():
        outs = model(pair(1, 96))
    assert [o.shape[-1] for o in outs] == [24, 12, 6, 3]


def test_paired_inputs_of_different_dates_and_extra_keys():
    model = tiny()
    x = pair()
    extra = dict(x, dates={"hr": torch.tensor([[10], [12]]), "sar": torch.tensor([[40], [41]])},
                 latlon=torch.zeros(2, 2))
    five_d = {"hr": x["hr"][:, None], "sar": x["sar"][:, None]}
    with torch.no_grad():
        ref = model(x)
        for other in (model(extra), model(five_d)):
            for r, o in zip(ref, other):
                torch.testing.assert_close(r, o)


def test_gradients_reach_every_parameter():
    model = tiny()
    model.train()
    sum(o.float().pow(2).mean() for o in model(pair())).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing


def test_frozen_stops_gradients():
    model = tiny(frozen=True)
    model.train()
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("bad, message", [
    ({"sar": torch.randn(2, 3, 64, 64)}, "modality 'sar' expects 1 bands (SAR) as (B, 1, H, W)"),
    ({"hr": torch.randn(2, 4, 64, 64)}, "modality 'hr' expects 3 bands (R, G, B) as (B, 3, H, W)"),
    ({"sar": torch.randn(2, 1, 32, 32)}, "equal H, W"),
    ({"sar": torch.randn(2, 2, 1, 64, 64)}, "single-date"),
])
def test_bad_input_names_modality_and_shape(bad, message):
    with pytest.raises(ValueError) as err:
        tiny()(dict(pair(), **bad))
    assert message in str(err.value)


def test_bad_options():
    for kwargs, text in [(dict(fusion="concat"), "fusion"), (dict(missing_modality="zeros"), "missing_modality"),
                         (dict(fusion="sum", missing_modality="placeholder"), "placeholder"),
                         (dict(mma_stages=(4,)), "mma_stages"), (dict(mma_heads=7), "heads")]:
        with pytest.raises(ValueError, match=text):
            tiny(**kwargs)


# -- missing modality ---------------------------------------------------------------

def test_absent_modality_is_an_error_unless_declared():
    model = tiny()
    with pytest.raises(ModalityMismatch, match=r"got no 'sar' input.*in_modalities=\['hr'\]"):
        model({"hr": pair()["hr"]})
    with pytest.raises(ModalityMismatch, match="got no 'sar'"):
        model(pair()["hr"])  # a bare tensor is 'hr' alone
    with pytest.raises(ModalityMismatch, match="got no 'hr'"):
        tiny(in_modalities=["hr", "sar"])({"sar": pair()["sar"]})
    with pytest.raises(ValueError, match="in_modalities has \\['s2'\\]"):
        tiny(in_modalities=["hr", "s2"])


def test_declared_single_modality_runs_and_ignores_the_other():
    x = pair()
    model = tiny(in_modalities=["hr"])
    assert model.missing_modality == "intra_only" and model.absent == ("sar",)
    assert set(model.example_inputs(2, 64)) == {"hr"}
    with torch.no_grad():
        ref = model({"hr": x["hr"]})
        for other in (model(x), model(x["hr"])):
            for r, o in zip(ref, other):
                torch.testing.assert_close(r, o, rtol=0, atol=0)


def test_intra_only_skips_joint_layers():
    x = pair()
    for present in ("hr", "sar"):
        model = tiny(in_modalities=[present], missing_modality="intra_only")
        joint = [layer for layer in model.mma["3"].layers if layer.joint]
        intra = [layer for layer in model.mma["3"].layers if not layer.joint]
        with torch.no_grad():
            ref = model({present: x[present]})
            assert [o.shape[1] for o in ref] == list(model.out_channels)
            for layer in joint:  # joint layers are skipped: changing them changes nothing
                bump(layer.mlp.fc2.bias, 1)
            torch.testing.assert_close(model({present: x[present]})[3], ref[3], rtol=0, atol=0)
            bump(intra[0].mlp.fc2.bias, 1)  # intra layers run
            assert not torch.allclose(model({present: x[present]})[3], ref[3])
    model = tiny()  # with both modalities the joint layers run
    with torch.no_grad():
        both = model(x)[3]
        bump(model.mma["3"].layers[1].mlp.fc2.bias, 1)
        assert not torch.allclose(model(x)[3], both)


def test_placeholder_stands_in_for_absent_modality():
    model = tiny(in_modalities=["hr"], missing_modality="placeholder")
    assert set(model.placeholders) == {"sar_3"}  # only the absent modality's, so all get gradients
    hr = pair()["hr"]
    with torch.no_grad():
        ref = model(hr)
        bump(model.placeholders["sar_3"], 1)
        changed = model(hr)
    for s in range(3):  # stages without MMA: the absent modality contributes nothing
        torch.testing.assert_close(changed[s], ref[s], rtol=0, atol=0)
        torch.testing.assert_close(ref[s], model.forward_all(hr)["hr"][s])
    assert not torch.allclose(changed[3], ref[3])
    model.train()
    sum(o.mean() for o in model(hr)).backward()
    assert model.placeholders["sar_3"].grad is not None
    assert len(tiny(missing_modality="placeholder").placeholders) == 0


# -- weights --------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["released_converter", "features_module"])
def test_official_encoder_files_load_with_zero_missing_keys(tmp_path, layout):
    torch.manual_seed(3)
    paths = {}
    for modality, chans in (("hr", 3), ("sar", 1)):
        if layout == "released_converter":
            state = released_converter(plain_timm(chans).state_dict())
        else:
            enc = dict(TINY_ENCODER)
            state = timm.create_model(enc.pop("model_name"), pretrained=False, features_only=True,
                                      in_chans=chans, **enc).state_dict()
        paths[modality] = tmp_path / f"mars_tiny_{modality}_encoder_only.pth"
        torch.save(state, paths[modality])
    model = tiny(rgb_checkpoint=str(paths["hr"]), sar_checkpoint=str(paths["sar"]))
    for modality in ("hr", "sar"):
        report = model.encoder_reports[modality]
        assert report.clean, report.summary()
        saved = torch.load(paths[modality], weights_only=True)
        own = model.encoders[modality].state_dict()
        assert set(saved) == set(own)
        for k, v in saved.items():
            torch.testing.assert_close(own[k], v, rtol=0, atol=0)


def test_wrong_encoder_file_is_reported(tmp_path):
    path = tmp_path / "rgb_into_sar.pth"
    torch.save(released_converter(plain_timm(3).state_dict()), path)
    with pytest.raises(CheckpointError, match="shape mismatch.*patch_embed.proj.weight"):
        tiny(sar_checkpoint=str(path))
    model = tiny(sar_checkpoint=str(path), strict=False)
    assert model.encoder_reports["sar"].shape_mismatch[0].startswith("patch_embed.proj.weight")


def test_paper_size_official_key_set_on_meta():
    """The official files are the plain timm model's keys run through the released converter."""
    info = get_catalog().backbone("mars")
    with torch.device("meta"):
        model = MODELS.build(info.config())
        for modality, chans in (("hr", 3), ("sar", 1)):
            plain = timm.create_model("swinv2_base_window8_256", pretrained=False, img_size=512, in_chans=chans)
            official = {k: tuple(v.shape) for k, v in released_converter(plain.state_dict()).items()}
            own = {k: tuple(v.shape) for k, v in model.encoders[modality].state_dict().items()}
            assert official == own


def test_full_pretraining_checkpoint_maps_onto_model(tmp_path):
    """A released ``DualEncoderMaRS`` checkpoint (encoders, MetaAttention, pretraining-only parts)."""
    torch.manual_seed(4)
    dim = 256
    released_mma = nn.ModuleDict({  # models/MaRS.py MetaAttention: [LayerNorm, MHA, DropPath, Mlp]
        kind: nn.ModuleList(nn.ModuleList([nn.LayerNorm(dim), nn.MultiheadAttention(dim, 8, batch_first=True),
                                           nn.Identity(), timm.layers.Mlp(dim, 4 * dim)]) for _ in range(2))
        for kind in ("modality_blocks", "global_blocks")
    })
    state = {}
    for prefix, chans in (("encoder_rgb", 3), ("encoder_sar", 1)):
        state.update({f"{prefix}.encoder.{k}": v for k, v in plain_timm(chans).state_dict().items()})
        state[f"{prefix}.mask_token"] = torch.zeros(1, 1, 32)
    state.update({f"alternating_attn.{k}": v for k, v in released_mma.state_dict().items()})
    state.update({"decoder_rgb.0.weight": torch.zeros(3072, dim, 1, 1), "contrast_temp": torch.tensor(1.0),
                  "teacher_encoder.encoder.patch_embed.proj.weight": torch.zeros(32, 3, 4, 4)})
    path = tmp_path / "checkpoint-11.pth"
    torch.save({"model": state}, path)

    model = tiny(checkpoint=str(path), mma_style="released")
    assert model.key_report.clean, model.key_report.summary()
    torch.testing.assert_close(model.mma["3"].layers[3].attn.in_proj_weight,
                               released_mma["global_blocks"][1][1].in_proj_weight)
    torch.testing.assert_close(model.mma["3"].layers[0].norm1.weight, released_mma["modality_blocks"][0][0].weight)
    with pytest.raises(CheckpointError, match="norm2"):  # the paper-style block has a second norm
        tiny(checkpoint=str(path))
