"""SkySense backbone: shapes, DTPE, Sinkhorn, EMA, gradients, seeding, official keys, bad input.

Everything runs on the CPU with the tiny preset; paper sizes are built only on the meta device.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest
import torch
from mmengine.registry import MODELS

from rsbench.errors import CheckpointError
from rsbench.plugin_api.backbone import InitialisedWeightsWarning, count_parameters
from rsbench_skysense import model as sky
from rsbench_skysense.plugin import BACKBONES
from rsbench_skysense.presets import OFFICIAL_HR, TINY, forward_path
from rsbench_skysense.prototypes import GeoContextPrototypes, latlon_to_region, sinkhorn_knopp

INFO = {b.name: b for b in BACKBONES}
SMALL_SWIN = dict(embed_dims=16, depths=[2, 2, 6, 2], num_heads=[1, 2, 4, 8], extra_norm_every_n_blocks=6)


def build(name: str = "skysense-tiny", seed: int = 0, **overrides):
    torch.manual_seed(seed)
    model = MODELS.build(INFO[name].config(**overrides))
    model.init_weights()
    return model.eval()


@pytest.fixture(scope="module")
def tiny():
    return build()


def s2_s1_hr(batch=2, t2=3, t1=2, hr=64, ts=16, latlon=True):
    x = {
        "hr": torch.randn(batch, 3, hr, hr),
        "s2": torch.randn(batch, t2, 10, ts, ts),
        "s1": torch.randn(batch, t1, 2, ts, ts),
        "dates": {"hr": torch.tensor([[120]] * batch), "s2": torch.randint(1, 367, (batch, t2)),
                  "s1": torch.randint(1, 367, (batch, t1))},
    }
    if latlon:
        x["latlon"] = torch.tensor([[48.1, 11.6], [-33.9, 151.2]])[:batch]
    return x


# -- sizes and declarations ------------------------------------------------------------
@pytest.fixture(scope="module")
def paper_meta():
    with torch.device("meta"):
        return MODELS.build(INFO["skysense"].config())


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_declared_params_equal_meta_count(paper_meta):
    assert _count(paper_meta) == INFO["skysense"].params
    for name in ("skysense-hr", "skysense-tiny"):
        assert count_parameters(INFO[name].config()) == INFO[name].params, name


def test_paper_size_and_breakdown(paper_meta):
    total = _count(paper_meta)
    assert abs(total - 2.06e9) / 2.06e9 < 0.05
    m = paper_meta
    breakdown = {
        "hr": _count(m.encoders.hr), "s2": _count(m.encoders.s2), "s1": _count(m.encoders.s1),
        "fusion": _count(m.fusion), "prototypes": _count(m.prototypes),
        "heads": _count(m.inject) + _count(m.token_pyramid),
    }
    # the table in rsbench_skysense.model's docstring
    assert breakdown == {"hr": 655_079_632, "s2": 302_738_432, "s1": 302_607_360, "fusion": 307_670_016,
                         "prototypes": 419_430_400, "heads": 16_588_704}
    assert sum(breakdown.values()) == total
    assert m.prototypes.bank.shape == (4096, 100, 1024) and not m.prototypes.bank.requires_grad
    assert m.fusion.dtpe.table.shape == (1, 365, 1024)
    assert INFO["skysense-tiny"].params <= 10_000_000
    for info in BACKBONES:
        assert info.family == "skysense"


def test_huge_hr_encoder_has_official_key_layout():
    """At the real huge size (meta device): same keys and shapes as mmpretrain's SwinTransformerV2
    built with the official arguments, and post-norm merging (704-wide stage-1 downsample norm)."""
    from mmpretrain.models.backbones import SwinTransformerV2

    with torch.device("meta"), sky._meta_safe():
        ref = SwinTransformerV2(**OFFICIAL_HR, out_indices=(0, 1, 2, 3))
        model = MODELS.build(INFO["skysense-hr"].config())
    ref_state = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert ref_state["stages.1.downsample.norm.weight"] == (704,)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    mapped = model.map_checkpoint_keys(dict(ref.state_dict()))
    assert {k: tuple(v.shape) for k, v in mapped.items()} == ours
    assert model.out_channels == (352, 704, 1408, 2816)
    assert _count(model) == _count(ref) == 655_079_632


# -- shapes ---------------------------------------------------------------------------------
SUBSETS = [c for r in (1, 2, 3) for c in itertools.combinations(("hr", "s2", "s1"), r)]


@pytest.mark.parametrize("subset", SUBSETS, ids="+".join)
@pytest.mark.parametrize("frames", [1, 3])
def test_shapes_for_every_subset_and_length(tiny, subset, frames):
    full = s2_s1_hr(t2=frames, t1=frames, hr=64, ts=32)
    x = {m: full[m] for m in subset}
    if frames == 1:  # plain (B, C, H, W) single images, no dates
        x = {m: v[:, 0] if v.dim() == 5 else v for m, v in x.items()}
    else:
        x["dates"] = {m: full["dates"][m] for m in subset}
    x["latlon"] = full["latlon"]
    outs = tiny(x)
    ref = 64 if "hr" in subset else 32
    assert len(outs) == 4
    for out, c, s in zip(outs, tiny.out_channels, tiny.out_strides):
        assert out.shape == (2, c, ref // s, ref // s)
        assert torch.isfinite(out).all()
    assert tiny.forward_pooled(x).shape == (2, tiny.pooled_channels)


def test_example_inputs_follow_the_contract(tiny):
    info = INFO["skysense-tiny"]
    x = tiny.example_inputs(2, info.test_size)
    assert set(x) == {"hr", "s2", "s1", "dates", "latlon"} and x["s2"].dim() == 5
    outs = tiny(x)
    assert [o.shape[1] for o in outs] == list(info.out_channels)
    assert [o.shape[-1] for o in outs] == [info.test_size // s for s in info.out_strides]
    assert tiny.modalities == dict(info.modalities)


def test_hr_only_is_plain_swin_pyramid():
    model = MODELS.build(dict(type="RSBSkySense", hr=dict(arch=SMALL_SWIN)))
    assert model.fusion is None and model.inject is None
    outs = model.eval()(torch.randn(1, 3, 256, 256))
    assert [o.shape for o in outs] == [(1, 16 * 2**i, 64 // 2**i, 64 // 2**i) for i in range(4)]


# -- temporal encoding ----------------------------------------------------------------------------
def test_dtpe_depends_on_day_of_year_not_on_order(tiny):
    torch.manual_seed(3)
    x = torch.randn(1, 3, 10, 16, 16)
    dates = torch.tensor([[10, 100, 200]])
    perm = [2, 0, 1]

    def run(images, doy):
        return tiny({"s2": images, "dates": {"s2": doy}})[0]

    base = run(x, dates)
    assert not torch.allclose(base, run(x, dates[:, perm]), atol=1e-4)  # dates moved, images not
    torch.testing.assert_close(base, run(x[:, perm], dates[:, perm]), atol=1e-5, rtol=1e-5)
    same = torch.tensor([[50, 50, 50]])
    torch.testing.assert_close(run(x, same), run(x[:, perm], same), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(run(x, same), run(x, same + 100), atol=1e-4)
    # the leap day reads the table's last row
    table = tiny.fusion.dtpe
    torch.testing.assert_close(table(torch.tensor([[366]])), table(torch.tensor([[365]])))


# -- prototypes ------------------------------------------------------------------------------------
def test_sinkhorn_rows_and_columns_are_normalized():
    torch.manual_seed(0)
    scores = torch.rand(50, 8) * 2 - 1
    s = sinkhorn_knopp(scores, n_iters=200, epsilon=0.1)
    assert (s >= 0).all()
    torch.testing.assert_close(s.sum(1), torch.ones(50), atol=1e-5, rtol=0)
    torch.testing.assert_close(s.sum(0), torch.full((8,), 50 / 8), atol=1e-3, rtol=1e-3)
    few = sinkhorn_knopp(scores)  # the default 3 iterations: rows exact, columns close
    torch.testing.assert_close(few.sum(1), torch.ones(50), atol=1e-5, rtol=0)
    assert (few.sum(0) - 50 / 8).abs().max() < 0.5 * 50 / 8


def test_latlon_region_mapping_is_documented_equal_area_grid():
    grid = (64, 64)
    ll = torch.tensor([[-90.0, -180.0], [90.0, 179.999], [0.0, 0.0], [10.0, 190.0], [10.0, -170.0]])
    r = latlon_to_region(ll, grid)
    assert r[0] == 0 and r[1] == 64 * 64 - 1
    assert r[2] == 32 * 64 + 32  # equator is the boundary of band 32, Greenwich of sector 32
    assert r[3] == r[4]  # longitude wraps
    # equal area: bands are equally spaced in sin(latitude), so 30 N starts band 48 of 64
    assert latlon_to_region(torch.tensor([[30.0001, 0.0]]), grid) // 64 == 48


def test_ema_updates_only_addressed_region():
    torch.manual_seed(0)
    protos = GeoContextPrototypes(8, region_grid=(4, 4), num_prototypes=5, momentum=0.5).train()
    latlon = torch.tensor([[45.0, 10.0], [-45.0, -100.0]])
    regions = protos.regions(latlon).tolist()
    feats = torch.randn(2, 12, 8)
    before = protos.bank.detach().clone()
    expected = before[regions[0]].clone()
    s = protos.assign(feats[0], regions[0])
    s = s / s.sum(0, keepdim=True)
    expected = 0.5 * expected + 0.5 * (s.T @ feats[0])
    out = protos(feats, latlon)
    assert out.shape == (2, 12, 16)
    changed = sorted({int(i) for i in torch.nonzero((protos.bank != before).any(-1).any(-1))})
    assert changed == sorted(regions)
    torch.testing.assert_close(protos.bank[regions[0]], expected)
    # no update in eval mode, with the frozen flag, or without a location
    for training, ll in ((False, latlon), (True, None)):
        snap = protos.bank.detach().clone()
        protos.train(training)(feats, ll)
        assert torch.equal(protos.bank, snap)
    frozen = GeoContextPrototypes(8, region_grid=(4, 4), num_prototypes=5, frozen=True).train()
    snap = frozen.bank.detach().clone()
    frozen(feats, latlon)
    assert torch.equal(frozen.bank, snap)


def test_model_training_updates_only_the_batch_regions():
    model = build().train()
    x = s2_s1_hr()
    regions = set(model.prototypes.regions(x["latlon"]).tolist())
    before = model.prototypes.bank.detach().clone()
    model(x)
    changed = {int(i) for i in torch.nonzero((model.prototypes.bank != before).any(-1).any(-1))}
    assert changed == regions
    flagged = build(prototypes={**INFO["skysense-tiny"].kwargs["prototypes"], "frozen": True}).train()
    snap = flagged.prototypes.bank.detach().clone()
    flagged(x)
    assert torch.equal(flagged.prototypes.bank, snap)


# -- gradients, freezing, seeding -----------------------------------------------------------------
def test_gradients_reach_every_trainable_parameter():
    model = build().train()
    with_hr = model(s2_s1_hr())
    without_hr = model({k: v for k, v in s2_s1_hr().items() if k != "hr"})  # token pyramid path
    loss = sum(o.mean() for o in with_hr + without_hr)
    loss.backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert "prototypes.bank" not in trainable  # moved by the EMA only
    missing = [n for n, p in trainable.items() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing


def test_frozen_has_no_gradients_and_stays_in_eval():
    model = build(frozen=True)
    model.train()
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    before = model.prototypes.bank.detach().clone()
    outs = model(s2_s1_hr())
    assert not any(o.requires_grad for o in outs)
    assert torch.equal(model.prototypes.bank, before)


def test_same_seed_same_output():
    x = s2_s1_hr()
    a, b, c = build(seed=0), build(seed=0), build(seed=1)
    for oa, ob in zip(a(x), b(x)):
        assert torch.equal(oa, ob)
    assert not torch.allclose(a(x)[-1], c(x)[-1])


# -- weights --------------------------------------------------------------------------------------
def _official_small_swin():
    from mmpretrain.models.backbones import SwinTransformerV2

    torch.manual_seed(1)
    ref = SwinTransformerV2(**{**OFFICIAL_HR, "arch": SMALL_SWIN}, out_indices=(0, 1, 2, 3))
    ref.eval()  # mmpretrain's Swin.train() returns None, so no chaining
    with torch.no_grad():  # move every weight off its default so a skipped key shows in the outputs
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return ref


def test_official_hr_state_dict_loads_with_no_missing_key_and_same_outputs(tmp_path):
    ref = _official_small_swin()
    path = tmp_path / "skysense_model_backbone_hr.pth"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in ref.state_dict().items()}}, path)
    torch.manual_seed(2)
    model = MODELS.build(dict(type="RSBSkySense", hr=dict(arch=SMALL_SWIN), checkpoint=str(path)))
    model.init_weights()
    model.eval()
    assert model.key_report is not None and model.key_report.clean, model.key_report.summary()
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        for a, b in zip(ref(x), model(x)):
            assert torch.equal(a, b)


def test_encoder_checkpoints_load_into_their_encoder(tmp_path):
    ref = _official_small_swin()
    path = tmp_path / "hr.pth"
    torch.save(ref.state_dict(), path)
    tiny_hr = {**INFO["skysense-tiny"].kwargs["hr"], "arch": SMALL_SWIN, "window_size": 8}
    model = build(hr=tiny_hr, encoder_checkpoints={"hr": str(path)})
    assert model.key_reports["hr"].clean
    assert torch.equal(model.encoders.hr.stages[2].blocks[5].norm3.weight, ref.stages[2].blocks[5].norm3.weight)


def test_checkpoint_for_wrong_modality_is_named(tmp_path, tiny):
    s2_file = tmp_path / "skysense_model_backbone_s2.pth"
    torch.save({"model": tiny.encoders.s2.state_dict()}, s2_file)
    hr_only = MODELS.build(dict(type="RSBSkySense", hr=dict(arch=SMALL_SWIN)))
    with pytest.raises(CheckpointError, match=r"'s2'.*\(B, 10, H, W\).*'hr': '\(B, 3, H, W\)'"):
        hr_only.load_checkpoint(str(s2_file))
    model = build()
    with pytest.raises(CheckpointError, match=r"'s2' as \(B, 10, H, W\).*modality 's1'"):
        model.load_checkpoint(str(s2_file), modality="s1")
    report = model.load_checkpoint(str(s2_file))  # routed by content
    assert report.clean and torch.equal(model.encoders.s2.pos_embed, tiny.encoders.s2.pos_embed)


# -- bad input ------------------------------------------------------------------------------------
def test_bad_inputs_name_modality_and_expected_shape(tiny):
    with pytest.raises(ValueError, match=r"'s2' expects 10 bands .*\(B, T, 10, H, W\).*\(2, 3, 4, 16, 16\)"):
        tiny({"s2": torch.randn(2, 3, 4, 16, 16), "dates": {"s2": torch.ones(2, 3, dtype=torch.long)}})
    with pytest.raises(ValueError, match=r"'hr' expects 3 bands .*\(B, 3, H, W\)"):
        tiny(torch.randn(1, 4, 64, 64))
    with pytest.raises(ValueError, match=r"'s1' is a time series of T=2.*\(B, T\) = \(1, 2\)"):
        tiny({"s1": torch.randn(1, 2, 2, 16, 16)})
    with pytest.raises(ValueError, match=r"dates of modality 's2' must be \(B, T\) = \(1, 3\)"):
        tiny({"s2": torch.randn(1, 3, 10, 16, 16), "dates": {"s2": torch.ones(1, 2, dtype=torch.long)}})
    with pytest.raises(ValueError, match=r"'s2' must be integer day of year 1..366"):
        tiny({"s2": torch.randn(1, 3, 10, 16, 16), "dates": {"s2": torch.zeros(1, 3, dtype=torch.long)}})
    with pytest.raises(ValueError, match=r"'hr' .*at least 33"):
        tiny(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"unknown input keys \['sar'\]"):
        tiny({"sar": torch.randn(1, 1, 64, 64)})
    with pytest.raises(ValueError, match=r"latlon must be \(B, 2\)"):
        tiny({"hr": torch.randn(1, 3, 64, 64), "latlon": torch.zeros(2)})
    relaxed = build(require_dates=False)  # documented fallback: fuse without date encoding
    assert relaxed({"s1": torch.randn(1, 2, 2, 16, 16)})[0].shape == (1, 16, 4, 4)


# -- registration ---------------------------------------------------------------------------------
def test_builds_from_a_child_registry_without_scope():
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

    model = MMPRETRAIN_MODELS.build(INFO["skysense-tiny"].config())
    assert isinstance(model, sky.SkySenseBackbone)


def test_plugin_declarations_do_not_import_torch():
    code = (
        "import sys, rsbench_skysense.plugin as p\n"
        "assert 'torch' not in sys.modules, 'plugin imported torch'\n"
        "print(sorted(b.name for b in p.BACKBONES))\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['skysense', 'skysense-hr', 'skysense-tiny']"


# -- the backbone as the paper evaluates it, per input -----------------------------------------------
def test_forward_path_rule():
    """Single modality, single date: that encoder alone; several modalities or a time series:
    the fusion too; no run (in_modalities=None): everything configured."""
    every = ("hr", "s2", "s1")
    assert forward_path(every, True) == (every, True)
    assert forward_path(every, True, ["hr"]) == (("hr",), False)
    assert forward_path(every, True, ["s2"]) == (("s2",), False)
    assert forward_path(every, True, ["s2"], {"s2": 6, "hr": 4}) == (("s2",), True)
    assert forward_path(every, True, ["hr"], {"hr": 6}) == (("hr",), True)
    assert forward_path(every, True, ["s1", "hr", "s2"]) == (every, True)
    assert forward_path(every, True, ["s2", "s1"], {"s2": 1}) == (("s2", "s1"), True)
    assert forward_path(("hr",), False, ["hr"]) == (("hr",), False)
    with pytest.raises(ValueError, match=r"has the encoders \['hr'\]; in_modalities names \['s2'\]"):
        forward_path(("hr",), False, ["hr", "s2"])
    with pytest.raises(ValueError, match=r"without `fusion` cannot take time series of \['hr'\]"):
        forward_path(("hr",), False, ["hr"], {"hr": 2})


def _children(model) -> dict[str, bool]:
    return {n: getattr(model, n) is not None
            for n in ("fusion", "prototypes", "inject", "token_pyramid", "encoder_pyramid")}


def test_hr_only_run_builds_exactly_the_official_hr_model():
    """`skysense` on an HR-only task (DIOR-R, iSAID, AID ...) builds the Swin-V2 alone: no ViTs, no
    fusion, prototypes or inject, and its features are mmpretrain's SwinTransformerV2's."""
    from mmpretrain.models.backbones import SwinTransformerV2

    model = build(in_modalities=["hr"])
    assert model.built == ("hr",) and not any(_children(model).values())
    assert model.modalities == dict(INFO["skysense-tiny"].modalities)  # the declaration stays
    assert model.out_channels == INFO["skysense-tiny"].out_channels
    ref = SwinTransformerV2(**{**TINY["hr"], "out_indices": (0, 1, 2, 3)})
    ref.eval()  # mmpretrain's Swin.train() returns None
    ref.load_state_dict(model.encoders.hr.state_dict(), strict=False)  # it drops its window buffers on load
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(ref(x), model(x)):
            assert torch.equal(a, b)
    assert _count(model) == _count(ref)
    with pytest.raises(ValueError, match=r"input \['s2'\] has no encoder.*in_modalities=\['hr'\]"):
        model({"hr": x, "s2": torch.randn(1, 10, 16, 16)})
    with pytest.raises(ValueError, match=r"T=3 frames needs the temporal fusion.*in_frames=\{'hr': 3\}"):
        model({"hr": torch.randn(1, 3, 3, 64, 64), "dates": {"hr": torch.ones(1, 3, dtype=torch.long)}})


def test_paper_size_hr_only_run_is_the_released_model_size():
    """On the meta device: `skysense` for an HR-only run has the 655M of the HR Swin-V2-H
    (= `skysense-hr`), while the preset's params still describe the full model."""
    hr_run = count_parameters(INFO["skysense"].config(in_modalities=["hr"]))
    assert hr_run == INFO["skysense-hr"].params == 655_079_632
    assert count_parameters(INFO["skysense"].config()) == INFO["skysense"].params
    s2_run = count_parameters(INFO["skysense"].config(in_modalities=["s2"]))
    assert s2_run == 302_738_432 + sum(1024 * c + c for c in (352, 704, 1408, 2816))  # ViT-L + 1x1 adapters


def test_multimodal_run_builds_fusion_and_prototypes():
    """dyna-mm (HR + S2 + S1): the fusion with DTPE and the geo prototypes run, prototypes move."""
    model = build(in_modalities=["hr", "s2", "s1"], in_frames={"hr": 1, "s2": 3, "s1": 2})
    assert model.built == ("hr", "s2", "s1")
    assert _children(model) == {"fusion": True, "prototypes": True, "inject": True, "token_pyramid": False,
                                "encoder_pyramid": False}
    x = s2_s1_hr()
    assert model.example_inputs(2, 64)["s2"].shape == (2, 3, 10, 16, 16)
    before = model.prototypes.bank.detach().clone()
    outs = model.train()(x)
    assert [o.shape[1] for o in outs] == list(model.out_channels)
    assert not torch.equal(model.prototypes.bank, before)
    with pytest.raises(ValueError, match=r"built for in_modalities=\['hr', 's2', 's1'\].*no 'hr' input"):
        model({k: v for k, v in x.items() if k != "hr"})


@pytest.mark.parametrize("modality", ["s2", "s1"])
def test_single_date_sentinel_run_is_its_encoder_and_an_adapter(modality):
    model = build(in_modalities=[modality])
    assert model.built == (modality,)
    assert _children(model) == {"fusion": False, "prototypes": False, "inject": False, "token_pyramid": False,
                                "encoder_pyramid": True}
    x = model.example_inputs(2, 32)
    assert x[modality].shape == (2, len(model.modalities[modality]), 32, 32)
    outs = model(x)
    assert [tuple(o.shape) for o in outs] == [(2, c, 32 // s, 32 // s)
                                                for c, s in zip(model.out_channels, model.out_strides)]
    series = build(in_modalities=[modality], in_frames={modality: 4})  # a time series: DTPE + fusion
    assert _children(series)["fusion"] and _children(series)["token_pyramid"]
    assert series(series.example_inputs(2, 32))[0].shape == (2, 16, 8, 8)


def test_hr_time_series_run_fuses_over_time():
    model = build(in_modalities=["hr"], in_frames={"hr": 3})
    assert _children(model) == {"fusion": True, "prototypes": True, "inject": True, "token_pyramid": False,
                                "encoder_pyramid": False}
    x = model.example_inputs(1, 64)
    assert x["hr"].shape == (1, 3, 3, 64, 64)
    assert model(x)[-1].shape == (1, 128, 2, 2)


# -- official per-encoder files -------------------------------------------------------------------------
def _perturbed(module):
    torch.manual_seed(5)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    module.eval()  # mmpretrain's Swin.train() returns None: no chaining
    return module


def _official_hr_file(ref) -> dict[str, torch.Tensor]:
    """The released HR file's layout (official README): mmcls Swin-V2 keys under `backbone.`, the
    pretraining `mask_token`, no window-index buffers."""
    state = {f"backbone.{k}": v for k, v in ref.state_dict().items() if not k.endswith(sky._RECOMPUTED_BUFFERS)}
    state["backbone.mask_token"] = torch.zeros(1, 1, ref.embed_dims)
    return state


#: mmseg's VisionTransformer with the arguments of SkySense's S2/S1 encoders (SkySense++'s copy of
#: it, an mmseg 0.x ViT: patch 4 with a biased patch conv, with_cls_token=False, final norm, LN eps
#: 1e-6, qkv bias), the released files' layout.
def _mmseg_vit(in_channels, img_size, embed_dims, num_layers, num_heads, mlp_ratio):
    from mmseg.models.backbones import VisionTransformer as MMSegViT

    return MMSegViT(img_size=img_size, patch_size=4, in_channels=in_channels, embed_dims=embed_dims,
                    num_layers=num_layers, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=True,
                    with_cls_token=False, final_norm=True, norm_cfg=dict(type="LN", eps=1e-6),
                    out_indices=-1, patch_bias=True)


def test_official_hr_file_loads_strictly_into_the_hr_run(tmp_path):
    from mmpretrain.models.backbones import SwinTransformerV2

    ref = _perturbed(SwinTransformerV2(**{**TINY["hr"], "out_indices": (0, 1, 2, 3)}))
    path = tmp_path / "skysense_model_backbone_hr.pth"
    torch.save(_official_hr_file(ref), path)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", InitialisedWeightsWarning)
        model = build(in_modalities=["hr"], encoder_checkpoints={"hr": str(path)})
    report = model.key_reports["hr"]
    assert report.clean and report.not_used == ["mask_token"], report.summary()
    acc = model.weight_accounting()
    assert acc["initialised"] == 0 and acc["loaded"] == _count(ref) and acc["sources"] == [str(path)]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(ref(x), model(x)):
            assert torch.equal(a, b)
    # the same file as a plain --checkpoint is routed to the HR encoder by content
    plain = build(in_modalities=["hr"], checkpoint=str(path))
    assert plain.key_report.clean and plain.weight_accounting()["initialised"] == 0


def test_key_mismatch_names_the_first_keys(tmp_path):
    from mmpretrain.models.backbones import SwinTransformerV2

    state = _official_hr_file(SwinTransformerV2(**{**TINY["hr"], "out_indices": (0, 1, 2, 3)}))
    del state["backbone.stages.0.blocks.1.norm1.weight"]
    state["backbone.stages.9.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "hr.pth")
    with pytest.raises(CheckpointError, match=r"\(hr encoder\) does not match.*1 missing: "
                                              r"stages\.0\.blocks\.1\.norm1\.weight.*1 unexpected: stages\.9\.extra"):
        build(in_modalities=["hr"], encoder_checkpoints={"hr": str(tmp_path / "hr.pth")})


@pytest.mark.parametrize("modality", ["s2", "s1"])
def test_official_sentinel_file_loads_strictly_with_mmseg_names(tmp_path, modality):
    """The released S2/S1 files hold mmseg ViT names and a `ctpe`: mapped to mmpretrain's, loaded
    strictly, and the encoder computes what mmseg's ViT computes with them."""
    vit = TINY[modality]
    ref = _perturbed(_mmseg_vit(len(sky.DEFAULT_BANDS[modality]), vit["img_size"], 64, 2, 2, 2))
    state = dict(ref.state_dict(), ctpe=torch.zeros(1, 365, 64))
    assert "layers.0.attn.attn.in_proj_weight" in state and state["pos_embed"].shape == (1, 17, 64)
    path = tmp_path / f"skysense_model_backbone_{modality}.pth"
    torch.save(state, path)
    model = build(in_modalities=[modality], encoder_checkpoints={modality: str(path)})
    report = model.key_reports[modality]
    assert report.clean and report.not_used == ["cls_token", "ctpe"], report.summary()
    acc = model.weight_accounting()
    assert acc["initialised_modules"] == ["encoder_pyramid"]  # the new 1x1 adapters only
    assert acc["loaded"] == _count(model.encoders[modality])
    x = torch.randn(2, len(sky.DEFAULT_BANDS[modality]), 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model.encoders[modality](x)[0], ref(x)[-1], atol=1e-5, rtol=1e-5)


def test_paper_size_official_key_layouts_match_on_meta():
    """Paper size, on the meta device: the released HR (mmcls Swin-V2-H under `backbone.`, plus
    `mask_token`) and S2/S1 (mmseg ViT-L/4 at 64 px, plus `ctpe`) layouts map key for key, shape
    for shape, onto the encoders `skysense` builds."""
    from mmpretrain.models.backbones import SwinTransformerV2

    with torch.device("meta"), sky._meta_safe():
        official = {
            "hr": {k[len("backbone."):]: v for k, v in _official_hr_file(
                SwinTransformerV2(**OFFICIAL_HR, out_indices=(0, 1, 2, 3))).items()},
            "s2": dict(_mmseg_vit(10, 64, 1024, 24, 16, 4).state_dict(), ctpe=torch.empty(1, 365, 1024)),
            "s1": dict(_mmseg_vit(2, 64, 1024, 24, 16, 4).state_dict(), ctpe=torch.empty(1, 365, 1024)),
        }
        model = MODELS.build(INFO["skysense"].config())
    for m, state in official.items():
        mapped, unused, fresh = model._encoder_state(state, m)
        ours = {k: tuple(v.shape) for k, v in model.encoders[m].state_dict().items()}
        assert {k: tuple(v.shape) for k, v in mapped.items()} == ours, m
        assert unused == (["mask_token"] if m == "hr" else ["cls_token", "ctpe"]) and fresh == ()


def test_full_checkpoint_into_an_hr_run_loads_hr_and_reports_the_rest(tmp_path, tiny):
    path = tmp_path / "full.pth"
    torch.save(tiny.state_dict(), path)
    model = build(seed=3, in_modalities=["hr"], checkpoint=str(path))
    report = model.key_report
    assert report.clean and report.loaded and all(k.startswith("encoders.hr.") for k in report.loaded)
    prefixes = {k.split(".")[0] if not k.startswith("encoders.") else ".".join(k.split(".")[:2])
                for k in report.not_used}
    assert prefixes == {"encoders.s2", "encoders.s1", "fusion", "prototypes", "inject", "token_pyramid"}
    block = (model.encoders.hr.stages[2].blocks[5], tiny.encoders.hr.stages[2].blocks[5])
    assert torch.equal(block[0].norm3.weight, block[1].norm3.weight)
    assert model.weight_accounting()["initialised"] == 0
    # the same file into the full model: everything on the path is loaded
    assert build(seed=3, checkpoint=str(path)).weight_accounting()["initialised"] == 0


def test_random_modules_on_the_path_warn_loudly(tmp_path, tiny):
    """An HR file into the full model leaves fusion, prototypes, ViTs random: a warning names them."""
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in tiny.encoders.hr.state_dict().items()}},
               tmp_path / "hr.pth")
    with pytest.warns(InitialisedWeightsWarning, match=r"still at initialisation.*encoders\.s2.*fusion"):
        model = build(encoder_checkpoints={"hr": str(tmp_path / "hr.pth")})
    acc = model.weight_accounting()
    assert acc["loaded"] == _count(model.encoders.hr) and acc["initialised"] == _count(model) - acc["loaded"]
    assert acc["initialised_modules"][:3] == ["encoders.s2", "encoders.s1", "fusion"]


def test_encoder_parts_are_named_and_checked(tmp_path, tiny):
    with pytest.raises(CheckpointError, match=r"--checkpoint sar=x.pth: SkySenseBackbone has no part 'sar'; "
                                              r"it has the parts hr, s2, s1"):
        build(encoder_checkpoints={"sar": "x.pth"})
    with pytest.raises(CheckpointError, match=r"has no part 's2'; it has the parts hr$"):
        MODELS.build(INFO["skysense-hr"].config(hr=dict(arch=SMALL_SWIN), encoder_checkpoints={"s2": "x"}))
    s2_file = tmp_path / "s2.pth"
    torch.save(tiny.encoders.s2.state_dict(), s2_file)
    with pytest.warns(UserWarning, match=r"holds the 's2' encoder, which this run does not build"):
        model = build(in_modalities=["hr"], encoder_checkpoints={"s2": str(s2_file)})
    assert model.key_reports["s2"].loaded == [] and model.key_reports["s2"].not_used
