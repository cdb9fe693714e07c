"""MaRS: presets (sum vs MMA), Meta-Modality Attention semantics, official weight files by part,
full pretraining checkpoints, weight accounting, missing modality."""

from __future__ import annotations

import time
import warnings

import pytest
import timm  # noqa: E402  (a declared dependency: no skip)
import torch
from mmengine.registry import MODELS  # noqa: E402
from torch import nn

from rsbench import get_catalog
from rsbench.errors import CheckpointError, ModalityMismatch
from rsbench.io.checkpoint import loaded_from
from rsbench.plugin_api.backbone import InitialisedWeightsWarning, count_parameters
from rsbench_mars.mma import MetaModalityAttention  # noqa: E402
from rsbench_mars.model import MaRS  # noqa: E402
from rsbench_mars.plugin import TINY_ENCODER  # noqa: E402
from rsbench_mars.pretrain import pretraining_backbone  # noqa: E402

#: The official files' layout at paper size (MaRS README: timm 1.0.15, these arguments).
PAPER_TIMM = dict(model_name="swinv2_base_window8_256", img_size=512)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """One intra-op thread for this module (see conftest)."""


def tiny(name: str = "mars-tiny", **overrides) -> MaRS:
    torch.manual_seed(0)
    model = MODELS.build(get_catalog().backbone(name).config(**overrides))
    with warnings.catch_warnings():  # the MMA preset's warning about MMA at initialisation
        warnings.simplefilter("ignore", UserWarning)
        model.init_weights()
    return model.eval()


def tiny_mma(**overrides) -> MaRS:
    return tiny("mars-mma-tiny", **overrides)


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


def features_timm(in_chans: int, encoder=TINY_ENCODER) -> nn.Module:
    """The released downstream code's encoder: ``timm.create_model(..., features_only=True)``."""
    enc = dict(encoder)
    return timm.create_model(enc.pop("model_name"), pretrained=False, features_only=True, in_chans=in_chans, **enc)


@pytest.fixture(scope="module")
def encoder_files(tmp_path_factory) -> dict[str, str]:
    """Official-layout encoder-only files at tiny size: the features_only state dicts."""
    torch.manual_seed(3)
    root = tmp_path_factory.mktemp("mars-weights")
    files = {}
    for part, chans in (("rgb", 3), ("sar", 1)):
        files[part] = str(root / f"mars_tiny_{part}_encoder_only.pth")
        torch.save(features_timm(chans).state_dict(), files[part])
    return files


def bump(p: torch.Tensor, sign: int) -> None:
    """A non-uniform shift (a uniform one would vanish in a following LayerNorm)."""
    p.add_(sign * torch.linspace(-1, 1, p.numel()).view_as(p))


# -- presets ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mars", "mars-mma", "mars-tiny", "mars-mma-tiny"])
def test_declared_params_equal_meta_count(name):
    info = get_catalog().backbone(name)
    assert info.family == "mars" and info.pretrainer
    assert count_parameters(info.config()) == info.params
    if name.endswith("-tiny"):
        assert info.params <= 10_000_000 and info.tiny


def test_presets_say_what_they_are_on_meta():
    """mars = the released downstream model (two Swin-V2-B, per-stage sum, no MMA); mars-mma adds
    MMA on the last stage as in pretraining (released blocks after the encoders' final norms)."""
    catalog = get_catalog()
    with torch.device("meta"):
        plain, mma = (MODELS.build(catalog.backbone(n).config()) for n in ("mars", "mars-mma"))
    for model, name in ((plain, "mars"), (mma, "mars-mma")):
        info = catalog.backbone(name)
        assert model.out_channels == info.out_channels == (128, 256, 512, 1024)
        assert model.out_strides == info.out_strides == (4, 8, 16, 32)
        assert model.encoders["hr"].patch_embed.proj.in_channels == 3
        assert model.encoders["sar"].patch_embed.proj.in_channels == 1
    assert plain.fusion == "sum" and len(plain.mma) == 0 and not hasattr(plain, "final_norms")
    assert "summed per stage, no MMA" in catalog.backbone("mars").description
    assert mma.fusion == "mma" and list(mma.mma) == ["3"] and set(mma.final_norms) == {"hr", "sar"}
    layers = mma.mma["3"].layers
    assert [layer.joint for layer in layers] == [False, True, False, True]
    assert all(layer.attn.num_heads == 8 and layer.style == "released" for layer in layers)
    assert "Meta-Modality Attention" in catalog.backbone("mars-mma").description
    mma_params = sum(p.numel() for n, p in mma.named_parameters() if n.startswith(("mma.", "final_norms.")))
    assert catalog.backbone("mars-mma").params - catalog.backbone("mars").params == mma_params
    assert catalog.backbone("mars-tiny").kwargs["fusion"] == "sum"
    assert catalog.backbone("mars-mma-tiny").kwargs["fusion"] == "mma"


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
    model = tiny_mma()
    with torch.no_grad():
        a, b = model.forward_all(x), model.forward_all(x2)
    for s in range(3):  # before MMA: the RGB path is untouched by SAR
        torch.testing.assert_close(a["hr"][s], b["hr"][s], rtol=0, atol=0)
    assert not torch.allclose(a["hr"][3], b["hr"][3])
    summed = tiny()
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


@pytest.mark.parametrize("name", ["mars-tiny", "mars-mma-tiny"])
def test_gradients_reach_every_parameter(name):
    model = tiny(name)
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
                         (dict(missing_modality="placeholder"), "placeholder"), (dict(fusion="mma", mma_stages=(4,)),
                         "mma_stages"), (dict(fusion="mma", mma_heads=7), "heads"),
                         (dict(fusion="mma", mma_style="pre"), "style")]:
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
    assert list(model.encoders) == ["hr"]  # off this run's path: not built
    assert set(model.example_inputs(2, 64)) == {"hr"}
    with torch.no_grad():
        ref = model({"hr": x["hr"]})
        for other in (model(x), model(x["hr"])):
            for r, o in zip(ref, other):
                torch.testing.assert_close(r, o, rtol=0, atol=0)


def test_intra_only_runs_intra_layers_and_builds_no_joint_ones():
    x = pair()
    for present in ("hr", "sar"):
        model = tiny_mma(in_modalities=[present], missing_modality="intra_only")
        layers = model.mma["3"].layers
        assert [type(layer).__name__ for layer in layers] == ["MMABlock", "Identity"] * 2  # indices kept
        assert list(model.final_norms) == [present] and list(model.encoders) == [present]
        with torch.no_grad():
            ref = model({present: x[present]})
            assert [o.shape[1] for o in ref] == list(model.out_channels)
            bump(layers[0].mlp.fc2.bias, 1)  # intra layers run
            assert not torch.allclose(model({present: x[present]})[3], ref[3])
    model = tiny_mma()  # with both modalities the joint layers run
    with torch.no_grad():
        both = model(x)[3]
        bump(model.mma["3"].layers[1].mlp.fc2.bias, 1)
        assert not torch.allclose(model(x)[3], both)


def test_placeholder_stands_in_for_absent_modality():
    model = tiny_mma(in_modalities=["hr"], missing_modality="placeholder")
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
    assert len(tiny_mma(missing_modality="placeholder").placeholders) == 0


# -- weights: official encoder-only files ---------------------------------------------

def test_paper_size_official_layout_on_meta():
    """The official files are what the MaRS README loads them into, ``timm.create_model(
    'swinv2_base_window8_256', img_size=512, features_only=True, in_chans=3 | 1)``, equal to the
    released converter's output from the pretraining encoder; both load strictly into ``mars``."""
    with torch.device("meta"):
        model = MODELS.build(get_catalog().backbone("mars").config())
        for part, modality, chans in (("rgb", "hr", 3), ("sar", "sar", 1)):
            official = features_timm(chans, PAPER_TIMM).state_dict()
            plain = timm.create_model(PAPER_TIMM["model_name"], pretrained=False, img_size=512, in_chans=chans)
            converted = released_converter(plain.state_dict())
            shapes = {k: tuple(v.shape) for k, v in official.items()}
            assert shapes == {k: tuple(v.shape) for k, v in converted.items()}
            assert shapes["layers_0.blocks.0.attn.cpb_mlp.0.weight"] == (512, 2)
            assert shapes["patch_embed.proj.weight"] == (128, chans, 4, 4)
            assert shapes["layers_3.blocks.1.mlp.fc2.weight"] == (1024, 4096)
            assert shapes["layers_2.downsample.reduction.weight"] == (512, 1024)
            assert not any(k.startswith(("norm.", "head.")) for k in shapes)
            own = {k: tuple(v.shape) for k, v in model.encoders[modality].state_dict().items()}
            assert own == shapes
            # what load_encoder_checkpoint does to a file's keys leaves this layout as it is
            from rsbench_mars.model import encoder_state

            assert encoder_state(official, modality) == (official, [])
            taken, left_out = encoder_state(plain.state_dict(), modality)
            assert set(taken) == set(official) and sorted(left_out) == ["head.fc.bias", "head.fc.weight",
                                                                        "norm.bias", "norm.weight"]


def test_official_files_load_by_part_with_a_clean_report(encoder_files):
    for kwargs in (dict(encoder_checkpoints=dict(encoder_files)),
                   dict(encoder_checkpoints={"hr": encoder_files["rgb"], "sar": encoder_files["sar"]}),
                   dict(rgb_checkpoint=encoder_files["rgb"], sar_checkpoint=encoder_files["sar"])):
        model = tiny(**kwargs)
        assert set(model.encoder_reports) == {"rgb", "sar"}
        for part, modality in (("rgb", "hr"), ("sar", "sar")):
            assert model.encoder_reports[part].clean, model.encoder_reports[part].summary()
            saved = torch.load(encoder_files[part], weights_only=True)
            own = model.encoders[modality].state_dict()
            assert set(saved) == set(own)
            for k, v in saved.items():
                torch.testing.assert_close(own[k], v, rtol=0, atol=0)
        acc = model.weight_accounting()
        assert acc["initialised"] == 0 and acc["initialised_modules"] == []
        assert acc["loaded"] == sum(p.numel() for p in model.parameters())
        assert sorted(acc["sources"]) == sorted(encoder_files.values())
    # mars computes what the released downstream code does: official encoders, summed per stage
    official = {}
    for part, chans in (("rgb", 3), ("sar", 1)):
        official[part] = features_timm(chans).eval()
        official[part].load_state_dict(torch.load(encoder_files[part], weights_only=True))
    x = pair()
    with torch.no_grad():
        ours = model(x)
        rgb, sar = official["rgb"](x["hr"]), official["sar"](x["sar"])
    for o, a, b in zip(ours, rgb, sar, strict=True):
        torch.testing.assert_close(o, (a + b).permute(0, 3, 1, 2), rtol=1e-5, atol=1e-5)


def test_other_layouts_of_one_encoder_load_too(tmp_path, encoder_files):
    """The released converter's output, a plain timm state dict (older files may carry the
    geometry buffers), and a whole checkpoint's part all fill the encoder."""
    torch.manual_seed(5)
    plain = plain_timm(3).state_dict()
    for name, state in (("converted", released_converter(plain)), ("plain", plain),
                        ("buffers", {**plain, "layers.0.blocks.0.attn.relative_position_index": torch.zeros(16, 16),
                                     "layers.0.blocks.1.attn_mask": torch.zeros(4, 16, 16)}),
                        ("released-full", {f"encoder_rgb.encoder.{k}": v for k, v in plain.items()})):
        torch.save({"model": state}, tmp_path / f"{name}.pth")
        model = tiny(encoder_checkpoints={"rgb": str(tmp_path / f"{name}.pth")}, in_modalities=["hr"])
        report = model.encoder_reports["rgb"]
        assert report.clean, (name, report.summary())
        assert ("norm.weight" in report.not_used) == (name != "converted"), (name, report.not_used)
        torch.testing.assert_close(model.encoders["hr"].layers_1.downsample.reduction.weight,
                                   plain["layers.1.downsample.reduction.weight"], rtol=0, atol=0)


def test_a_mismatching_file_names_its_first_keys(tmp_path, encoder_files):
    state = torch.load(encoder_files["sar"], weights_only=True)
    state["layers_9.extra.weight"] = state.pop("layers_0.blocks.0.attn.cpb_mlp.0.weight")
    path = tmp_path / "renamed.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"MaRS sar encoder file .*renamed.pth does not match.*"
                                              r"1 missing: layers_0\.blocks\.0\.attn\.cpb_mlp\.0\.weight; "
                                              r"1 unexpected: layers_9\.extra\.weight"):
        tiny(encoder_checkpoints={"sar": str(path), "rgb": encoder_files["rgb"]})
    model = tiny(encoder_checkpoints={"sar": str(path)}, strict=False)
    assert model.encoder_reports["sar"].missing == ["layers_0.blocks.0.attn.cpb_mlp.0.weight"]
    acc = model.weight_accounting()
    assert acc["initialised_modules"][0] == "encoders.hr" and "encoders.sar" in acc["initialised_modules"]
    assert acc["initialised"] == sum(p.numel() for p in model.encoders["hr"].parameters()) + 512 * 2


def test_wrong_encoder_file_is_reported(encoder_files):
    with pytest.raises(CheckpointError, match=r"shape mismatch.*patch_embed.proj.weight.*3 input channel.*"
                                              r"is it the rgb file \(--checkpoint rgb=FILE\)"):
        tiny(encoder_checkpoints={"sar": encoder_files["rgb"]})
    model = tiny(encoder_checkpoints={"sar": encoder_files["rgb"]}, strict=False)
    assert model.encoder_reports["sar"].shape_mismatch[0].startswith("patch_embed.proj.weight")
    assert loaded_from(model.encoders["sar"].patch_embed.proj.weight) is None
    assert loaded_from(model.encoders["sar"].layers_1.downsample.reduction.weight) == encoder_files["rgb"]


def test_parts_and_whole_checkpoints_are_told_apart(encoder_files):
    with pytest.raises(CheckpointError, match=r"s2=.*MaRS has no part 's2'; it has the parts rgb, sar, hr \(= rgb\)"):
        tiny(encoder_checkpoints={"s2": encoder_files["rgb"]})
    with pytest.raises(CheckpointError, match=r"holds one MaRS encoder.*1 input channel\(s\): the sar encoder.*"
                                              r"--checkpoint sar=FILE"):
        tiny(checkpoint=encoder_files["sar"])
    with pytest.raises(CheckpointError, match="part 'rgb' is given twice"):
        tiny(encoder_checkpoints={"hr": encoder_files["rgb"], "rgb": encoder_files["sar"]})
    with pytest.raises(CheckpointError, match="two files for part 'sar'"):
        tiny(encoder_checkpoints={"sar": encoder_files["sar"]}, sar_checkpoint=encoder_files["rgb"])
    assert MaRS.checkpoint_parts == ("rgb", "sar")


def test_a_part_for_an_absent_modality_is_not_loaded(encoder_files):
    model = tiny(encoder_checkpoints=dict(encoder_files), in_modalities=["hr"])
    assert set(model.encoder_reports) == {"rgb"} and model.weight_accounting()["initialised"] == 0


# -- weights: full pretraining checkpoints and MMA --------------------------------------

def released_checkpoint(path, dim: int = 256) -> dict[str, torch.Tensor]:
    """A released ``DualEncoderMaRS`` checkpoint (models/MaRS.py): encoders with their final
    norm and head, MetaAttention ``[LayerNorm, MHA, DropPath, Mlp]`` blocks, pretraining-only parts."""
    torch.manual_seed(4)
    released_mma = nn.ModuleDict({
        kind: nn.ModuleList(nn.ModuleList([nn.LayerNorm(dim), nn.MultiheadAttention(dim, 8, batch_first=True),
                                           nn.Identity(), timm.layers.Mlp(dim, 4 * dim)]) for _ in range(2))
        for kind in ("modality_blocks", "global_blocks")
    })
    state = {}
    for prefix, chans in (("encoder_rgb", 3), ("encoder_sar", 1)):
        encoder = plain_timm(chans)
        nn.init.normal_(encoder.norm.weight)
        state.update({f"{prefix}.encoder.{k}": v for k, v in encoder.state_dict().items()})
        state[f"{prefix}.mask_token"] = torch.zeros(1, 1, 32)
    state.update({f"alternating_attn.{k}": v for k, v in released_mma.state_dict().items()})
    state.update({"decoder_rgb.0.weight": torch.zeros(3072, dim, 1, 1), "contrast_temp": torch.tensor(1.0),
                  "teacher_encoder.encoder.patch_embed.proj.weight": torch.zeros(32, 3, 4, 4)})
    torch.save({"model": state}, path)
    return state


def test_released_full_checkpoint_fills_mars_mma_and_the_encoders_of_mars(tmp_path):
    path = tmp_path / "checkpoint-11.pth"
    state = released_checkpoint(path)
    model = tiny_mma(checkpoint=str(path))
    assert model.key_report.clean, model.key_report.summary()
    torch.testing.assert_close(model.mma["3"].layers[3].attn.in_proj_weight,
                               state["alternating_attn.global_blocks.1.1.in_proj_weight"])
    torch.testing.assert_close(model.mma["3"].layers[0].norm1.weight,
                               state["alternating_attn.modality_blocks.0.0.weight"])
    torch.testing.assert_close(model.final_norms["sar"].weight, state["encoder_sar.encoder.norm.weight"])
    assert model.weight_accounting()["initialised"] == 0
    summed = tiny(checkpoint=str(path))  # mars: encoders only, MMA and final norms left out
    assert summed.key_report.clean and summed.weight_accounting()["initialised"] == 0
    assert "mma.3.layers.3.attn.in_proj_weight" in summed.key_report.not_used  # MMA: not built
    assert "teacher_encoder.encoder.patch_embed.proj.weight" in summed.key_report.not_used
    torch.testing.assert_close(summed.encoders["sar"].layers_3.blocks[1].mlp.fc2.weight,
                               state["encoder_sar.encoder.layers.3.blocks.1.mlp.fc2.weight"])
    with pytest.raises(CheckpointError, match="norm2"):  # the paper-wording block has a second norm
        tiny_mma(checkpoint=str(path), mma_style="post")


def test_rsbench_pretraining_checkpoints_load_into_both_presets(tmp_path):
    """``rsbench pretrain`` builds MaRS with MMA whatever the preset and saves its state dict."""
    config = pretraining_backbone(get_catalog().backbone("mars-tiny").config())
    assert config["fusion"] == "mma" and config["mma_style"] == "released"
    torch.manual_seed(6)
    pretrained = MODELS.build(config)
    pretrained.init_weights()
    path = tmp_path / "mars-tiny.pth"
    torch.save({"state_dict": pretrained.state_dict(), "meta": {}}, path)
    for name in ("mars-mma-tiny", "mars-tiny"):
        model = tiny(name, checkpoint=str(path))
        assert model.key_report.clean and model.weight_accounting()["initialised"] == 0, name
        for k, v in model.state_dict().items():
            torch.testing.assert_close(v, pretrained.state_dict()[k], rtol=0, atol=0)
    hr_only = tiny(checkpoint=str(path), in_modalities=["hr"])  # the SAR encoder is not built
    assert hr_only.key_report.clean and hr_only.weight_accounting()["initialised"] == 0


def test_mma_preset_refuses_mma_at_initialisation_once_weights_are_given(encoder_files):
    with pytest.raises(CheckpointError, match=r"MMA parameters \(mma\.3\.layers\.0\..*stay at initialisation.*"
                                              r"hold no MMA.*mars / mars-tiny.*accept_initialised_mma=True"):
        tiny_mma(encoder_checkpoints=dict(encoder_files))
    info = get_catalog().backbone("mars-mma-tiny")
    model = MODELS.build(info.config(encoder_checkpoints=dict(encoder_files), accept_initialised_mma=True))
    with pytest.warns(InitialisedWeightsWarning, match=r"still at initialisation.*mma\.3, final_norms\.hr"):
        model.init_weights()  # accepted: the base's warning names the modules
    mma = sum(p.numel() for n, p in model.named_parameters() if n.startswith(("mma.", "final_norms.")))
    acc = model.weight_accounting()
    assert acc["initialised"] == mma and acc["initialised_modules"] == ["mma.3", "final_norms.hr", "final_norms.sar"]
    model = MODELS.build(info.config())
    with pytest.warns(UserWarning, match=r"MMA parameters .* stay at initialisation \(no weights given at all\)"):
        model.init_weights()
    assert model.weight_accounting()["loaded"] == 0
    with warnings.catch_warnings(record=True) as caught:  # accepted without weights (pretraining): silent
        warnings.simplefilter("always")
        MODELS.build(info.config(accept_initialised_mma=True)).init_weights()
    assert not [w for w in caught if "initialisation" in str(w.message)]
