"""Pretraining (issue 13): the losses against hand-computed values, the data layouts and their
errors, and ``rsbench pretrain`` end to end: a short run lowers its loss, resumes exactly where
it stopped, and its checkpoint loads into the backbone and evaluates through the runner."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from mmengine.registry import MODELS

from rsbench.cli.pretrain import pretrain as pretrain_command
from rsbench.errors import DataLayoutError, RsbenchError
from rsbench.io.checkpoint import read_state_dict
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.pretraining.loop import (
    PretrainSettings,
    batch_indices,
    cosine_lr,
    cosine_momentum,
    ema_update,
    info_nce,
    load_objective_class,
    run_pretraining,
)
from rsbench.results import leaderboard
from rsbench.run.runner import run_evaluation
from rsbench.run.spec import RunSpec
from rsbench_mars import pretrain_data as mars_data
from rsbench_mars.pretrain import MaRSPretrainer
from rsbench_mars.pretrain_losses import CrossGranularityContrastiveLoss, MaskedReconstructionLoss
from rsbench_skysense import pretrain_data as sky_data
from rsbench_skysense.pretrain import SkySensePretrainer
from rsbench_skysense.pretrain_losses import (
    CrossModalAlignmentLoss,
    MultiGranularityContrastiveLoss,
    batched_sinkhorn,
    object_features,
    sinkhorn_clusters,
)
from rsbench_skysense.prototypes import latlon_to_region, sinkhorn_knopp

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """One intra-op thread for this module (see conftest)."""
    yield


def manual_info_nce(q: list[list[float]], k: list[list[float]], tau: float, targets: list[int] | None = None) -> float:
    """InfoNCE with plain floats: cosine logits, log-softmax over each row, mean of -log p(target)."""
    def unit(v):
        n = math.sqrt(sum(x * x for x in v))
        return [x / n for x in v]

    qs, ks = [unit(v) for v in q], [unit(v) for v in k]
    targets = targets if targets is not None else list(range(len(q)))
    total = 0.0
    for i, qi in enumerate(qs):
        logits = [sum(a * b for a, b in zip(qi, kj)) / tau for kj in ks]
        log_z = math.log(sum(math.exp(x) for x in logits))
        total += log_z - logits[targets[i]]
    return total / len(qs)


# -- InfoNCE ---------------------------------------------------------------------------------
def test_info_nce_2x2_equals_the_closed_form():
    q, k = [[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.6, 0.8]]
    # logits / 0.5: row 0 = [2.0, 1.2], row 1 = [0.0, 1.6]; -log p = log(1 + e^{-0.8}), log(1 + e^{-1.6})
    expected = (math.log(1 + math.exp(-0.8)) + math.log(1 + math.exp(-1.6))) / 2
    got = info_nce(torch.tensor(q), torch.tensor(k), temperature=0.5)
    assert float(got) == pytest.approx(expected, abs=1e-6)
    assert float(got) == pytest.approx(manual_info_nce(q, k, 0.5), abs=1e-6)


def test_info_nce_3x3_with_targets_and_the_registered_symmetric_module():
    g = torch.Generator().manual_seed(3)
    q, k = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    for tau in (0.1, 1.0):
        assert float(info_nce(q, k, tau)) == pytest.approx(manual_info_nce(q.tolist(), k.tolist(), tau), abs=1e-5)
    assert float(info_nce(q, k, 0.3, torch.tensor([2, 0, 1]))) == pytest.approx(
        manual_info_nce(q.tolist(), k.tolist(), 0.3, [2, 0, 1]), abs=1e-5)
    sym = MODELS.build(dict(type="RSBInfoNCELoss", temperature=0.3, symmetric=True))
    assert float(sym(q, k)) == pytest.approx(
        (manual_info_nce(q.tolist(), k.tolist(), 0.3) + manual_info_nce(k.tolist(), q.tolist(), 0.3)) / 2, abs=1e-5)
    with pytest.raises(ValueError, match="explicit targets"):
        info_nce(q, k[:2])


# -- Sinkhorn, clustering, schedules ----------------------------------------------------------
def test_sinkhorn_marginals_are_uniform_and_batched_equals_the_prototype_solver():
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(2, 6, 3, generator=g) * 2 - 1
    for iters, col_tol in ((3, 5e-2), (100, 1e-5)):
        q = batched_sinkhorn(scores, n_iters=iters, epsilon=0.5)
        assert torch.allclose(q.sum(2), torch.ones(2, 6), atol=1e-5)  # each pixel fully assigned
        assert torch.allclose(q.sum(1), torch.full((2, 3), 6 / 3), atol=col_tol)  # each object n / K
        for b in range(2):
            assert torch.allclose(q[b], sinkhorn_knopp(scores[b], iters, 0.5), atol=1e-6)
    # pixel clusters: rows sum to 1; at least two pixels per object on tiny maps
    a = sinkhorn_clusters(torch.randn(3, 16, 8, generator=g), num_objects=4, sinkhorn_iters=100, epsilon=0.5)
    assert a.shape == (3, 16, 4) and torch.allclose(a.sum(2), torch.ones(3, 16), atol=1e-5)
    assert torch.allclose(a.sum(1), torch.full((3, 4), 4.0), atol=1e-3)
    assert sinkhorn_clusters(torch.randn(1, 4, 8, generator=g), num_objects=4).shape == (1, 4, 2)


def test_ema_momentum_schedule_and_update():
    assert cosine_momentum(0.0) == pytest.approx(0.99) and cosine_momentum(1.0) == pytest.approx(0.999)
    assert cosine_momentum(0.5) == pytest.approx((0.99 + 0.999) / 2)
    values = [cosine_momentum(p / 100) for p in range(101)]
    assert all(b > a for a, b in zip(values, values[1:]))
    assert cosine_lr(0, 10, 1.0) == 1.0 and cosine_lr(5, 10, 1.0) == pytest.approx(0.5)
    assert cosine_lr(0, 10, 1.0, warmup=2) == 0.5 and cosine_lr(10, 10, 1.0) == pytest.approx(0.0)

    student, teacher = torch.nn.BatchNorm1d(2), torch.nn.BatchNorm1d(2)
    with torch.no_grad():
        student.weight.fill_(3.0), teacher.weight.fill_(1.0)
        student.running_mean.fill_(2.0), student.num_batches_tracked.fill_(7)
    ema_update(teacher, student, 0.9)
    assert torch.allclose(teacher.weight, torch.full((2,), 0.9 * 1 + 0.1 * 3))
    assert torch.allclose(teacher.running_mean, torch.full((2,), 0.1 * 2))
    assert int(teacher.num_batches_tracked) == 7


def test_step_batches_are_epoch_permutations_independent_of_history():
    seen = sorted(i for s in range(3) for i in batch_indices(s, 13, 4, seed=1))  # 3 batches per epoch
    assert len(set(seen)) == 12 and max(seen) <= 12
    assert batch_indices(4, 13, 4, 1) == batch_indices(4, 13, 4, 1) != batch_indices(4, 13, 4, 2)


# -- MaRS: mask, MIM, CGCL --------------------------------------------------------------------
def test_mim_mask_ratio_is_exactly_60_percent_of_blocks():
    exact = mars_data.MaskGenerator(input_size=80, mask_patch_size=8, model_patch_size=4, mask_ratio=0.6)
    for _ in range(3):
        m = exact()
        assert m.shape == (20, 20) and int(m.sum()) == 240  # 60 of 100 blocks x 4 tokens each
        blocks = m.view(10, 2, 10, 2)
        assert torch.equal(blocks.amin(dim=(1, 3)), blocks.amax(dim=(1, 3)))  # whole blocks only
    tiny = mars_data.MaskGenerator(64, 8, 4, 0.6)  # 64 blocks: ceil(38.4) = 39, as the released code
    assert tiny.mask_count == 39 and int(tiny().sum()) == 39 * 4
    with pytest.raises(ValueError, match="multiple"):
        mars_data.MaskGenerator(64, 12, 4)


def test_mim_loss_counts_masked_pixels_only():
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]]])  # (1, 2, 2, 2)
    target = torch.zeros(1, 2, 2, 2)
    mask = torch.tensor([[[1, 0], [0, 1]]])
    # masked pixels (0,0) and (1,1): |1| + |4| in channel 0, 0 in channel 1 -> 5 / 2 pixels / 2 channels
    assert float(MaskedReconstructionLoss()(pred, target, mask)) == pytest.approx(5 / 2 / 2, abs=1e-5)
    assert float(MODELS.build(dict(type="MaRSMIMLoss"))(pred, target, torch.zeros(1, 2, 2))) == 0.0


def test_cgcl_parts_equal_the_manual_formula_and_weights_combine():
    g = torch.Generator().manual_seed(5)
    rgb, sar = torch.randn(2, 2, 3, generator=g), torch.randn(2, 2, 3, generator=g)
    loss = CrossGranularityContrastiveLoss(alpha=2.0, beta=3.0, gamma=5.0)
    out = loss(rgb, sar)

    def unit(v):
        return (np.asarray(v) / np.linalg.norm(v)).tolist()

    r = [[unit(p) for p in img] for img in rgb.tolist()]
    s = [[unit(p) for p in img] for img in sar.tolist()]
    fr, fs = [p for img in r for p in img], [p for img in s for p in img]
    gr = [np.mean(img, axis=0).tolist() for img in r]
    gs = [np.mean(img, axis=0).tolist() for img in s]
    patch = (manual_info_nce(fr, fs, 0.07) + manual_info_nce(fs, fr, 0.07)) / 2
    glob = (manual_info_nce(gr, gs, 0.1) + manual_info_nce(gs, gr, 0.1)) / 2
    own = [0, 0, 1, 1]
    cross = (manual_info_nce(fr, gs, 0.2, own) + manual_info_nce(fs, gr, 0.2, own)) / 2
    assert float(out["patch"]) == pytest.approx(patch, abs=1e-5)
    assert float(out["global"]) == pytest.approx(glob, abs=1e-5)
    assert float(out["cross"]) == pytest.approx(cross, abs=1e-5)
    assert float(out["total"]) == pytest.approx(2 * patch + 3 * glob + 5 * cross, abs=1e-4)
    default = MODELS.build(dict(type="MaRSCGCLLoss"))
    assert (default.alpha, default.beta, default.gamma) == (1.0, 1.0, 1.0)
    assert default.tau_patch < default.tau_global < default.tau_cross


# -- SkySense: MGCL and alignment -------------------------------------------------------------
def test_mgcl_levels_and_alignment_equal_infonce_on_hand_pooled_features():
    g = torch.Generator().manual_seed(7)
    student, teacher = torch.randn(2, 8, 5, generator=g), torch.randn(2, 8, 5, generator=g)
    mgcl = MODELS.build(dict(type="SkySenseMGCLLoss", temperature=0.5, num_objects=2))
    out = mgcl(student, teacher)
    assert float(out["pixel"]) == pytest.approx(
        manual_info_nce(student.flatten(0, 1).tolist(), teacher.flatten(0, 1).tolist(), 0.5), abs=1e-5)
    assert float(out["image"]) == pytest.approx(
        manual_info_nce(student.mean(1).tolist(), teacher.mean(1).tolist(), 0.5), abs=1e-5)
    a = sinkhorn_clusters(teacher, 2)
    objects = [object_features(x, a).flatten(0, 1).tolist() for x in (student, teacher)]
    assert float(out["object"]) == pytest.approx(manual_info_nce(*objects, 0.5), abs=1e-5)
    assert float(out["total"]) == pytest.approx(float(out["pixel"] + out["object"] + out["image"]), abs=1e-5)

    feats = {m: torch.randn(3, 4, generator=g) for m in ("hr", "s2", "s1")}
    align = CrossModalAlignmentLoss(temperature=0.2)(feats)
    pairs = [(i, j) for i in feats for j in feats if i != j]
    assert len(pairs) == 6
    assert float(align) == pytest.approx(
        sum(manual_info_nce(feats[i].tolist(), feats[j].tolist(), 0.2) for i, j in pairs), abs=1e-4)
    assert isinstance(MODELS.build(dict(type="SkySenseAlignLoss")), CrossModalAlignmentLoss)
    assert isinstance(mgcl, MultiGranularityContrastiveLoss)


# -- data layouts ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sky_root(tmp_path_factory) -> Path:
    return sky_data.write_fixture(tmp_path_factory.mktemp("sky-pretrain") / "data")


@pytest.fixture(scope="module")
def mars_root(tmp_path_factory) -> Path:
    return mars_data.write_fixture(tmp_path_factory.mktemp("mars-pretrain") / "data")


def test_skysense_fixture_is_co_registered_series_with_dates_and_locations(sky_root):
    summary = sky_data.check(sky_root)
    assert summary["count"] == 24
    first = summary["samples"][0]
    assert [len(first[m]) for m in ("hr", "s2", "s1")] == [1, 4, 3]
    for path, doy in first["s2"]:
        assert doy == int(__import__("datetime").datetime.strptime(Path(path).stem, "%Y%m%d").strftime("%j"))
    lat, lon = first["latlon"]
    assert abs(lat - 48.14) < 0.06 and abs(lon - 11.58) < 0.06
    regions = latlon_to_region(torch.tensor([s["latlon"] for s in summary["samples"]]), (4, 4))
    assert len(set(regions.tolist())) == 4  # four sites, four geo-context regions
    ds = sky_data.SkySensePretrainDataset(sky_root, {"hr": 1, "s2": 4, "s1": 3})
    item = ds[0]
    assert item["hr"].shape == (1, 3, 64, 64) and item["s2"].shape == (4, 10, 16, 16)
    assert item["s1"].shape == (3, 2, 16, 16) and item["doy_s2"].shape == (4,)
    allv = torch.cat([d["s2"].transpose(0, 1).flatten(1) for d in ds.data], dim=1)
    assert torch.allclose(((allv - ds.mean["s2"][:, None]) / ds.std["s2"][:, None]).mean(1), torch.zeros(10),
                          atol=1e-4)


def test_skysense_layout_errors_name_the_file(sky_root, tmp_path):
    def copy() -> Path:
        root = tmp_path / f"c{len(list(tmp_path.iterdir()))}"
        shutil.copytree(sky_root / "s0000", root / "s0000")
        return root

    root = copy()
    shutil.rmtree(root / "s0000" / "s1")
    with pytest.raises(DataLayoutError, match=r"s0000/s1: folder missing; expected s1 rasters named YYYYMMDD"):
        sky_data.check(root)
    root = copy()
    first = sorted((root / "s0000" / "s2").glob("*.tif"))[0]
    first.rename(first.with_name("april.tif"))
    with pytest.raises(DataLayoutError, match=r"april.tif: expected a GeoTIFF named by its acquisition date"):
        sky_data.check(root)
    root = copy()
    target = sorted((root / "s0000" / "s2").glob("*.tif"))[0]
    with __import__("rasterio").open(target) as src:
        west, south, east, north = src.bounds
    sky_data._write(target, np.zeros((10, 16, 16), np.uint16), (west + 0.01, south, east + 0.01, north))
    with pytest.raises(DataLayoutError, match=r"not co-registered with .*hr/"):
        sky_data.check(root)
    sky_data._write(target, np.zeros((3, 16, 16), np.uint16), (west, south, east, north))
    with pytest.raises(DataLayoutError, match=r"3 bands; s2 rasters have 10"):
        sky_data.check(root)
    with pytest.raises(DataLayoutError, match="no sample folders"):
        sky_data.check(tmp_path / "c0" / "s0000" / "hr")


def test_mars_fixture_pairs_and_layout_errors(mars_root, tmp_path):
    summary = mars_data.check(mars_root)
    assert summary["count"] == 32 and summary["unpaired"] == 1
    assert summary["sensors"] == ["Umbra_patches", "Capella_patches"]
    from rsbench.io.raster import raster_info

    info = raster_info(Path(summary["pairs"][-1][1]))
    assert info.dtype == "uint16" and info.bands == 1  # Capella SAR
    ds = mars_data.MaRSPretrainDataset(mars_root, 64, mars_data.MaskGenerator(64, 4, 4, 0.6))
    item = ds[0]
    assert item["image"].shape == (4, 64, 64) and item["mask"].shape == (16, 16)

    root = tmp_path / "bad"
    shutil.copytree(mars_root / "Umbra_patches", root / "Umbra_patches")
    shutil.rmtree(root / "Umbra_patches" / "sar")
    with pytest.raises(DataLayoutError, match=r"Umbra_patches/sar: folder missing"):
        mars_data.check(root)
    (root / "Umbra_patches" / "sar").mkdir()
    with pytest.raises(DataLayoutError, match="no RGB-SAR pairs"):
        mars_data.check(root)
    mars_data._write(root / "Umbra_patches" / "sar" / "umbra_0000.tif", np.zeros((2, 64, 64), np.uint8))
    with pytest.raises(DataLayoutError, match=r"umbra_0000.tif: 2 bands; MaRS SAR tiles have 1"):
        mars_data.check(root)
    mars_data._write(root / "Umbra_patches" / "sar" / "umbra_0000.tif", np.zeros((1, 32, 64), np.uint8))
    with pytest.raises(DataLayoutError, match=r"32x64 px, but its RGB .* is 64x64"):
        mars_data.check(root)
    with pytest.raises(DataLayoutError, match="neither Umbra_patches nor Capella_patches"):
        mars_data.check(tmp_path)


# -- objectives ---------------------------------------------------------------------------------
def _objective(name: str, seed: int = 0, **kwargs):
    info = get_catalog().backbone(name)
    torch.manual_seed(seed)
    return load_objective_class(info)(info.config(), **kwargs)


def test_backbones_declare_their_objectives_and_others_are_refused():
    catalog = get_catalog()
    assert load_objective_class(catalog.backbone("skysense-tiny")) is SkySensePretrainer
    assert load_objective_class(catalog.backbone("mars-tiny")) is MaRSPretrainer
    with pytest.raises(RsbenchError, match=r"'resnet50-tiny' declares no pretraining objective.*mars-tiny"):
        load_objective_class(catalog.backbone("resnet50-tiny"))


def test_skysense_total_loss_weights_momentum_and_geo_prototypes(sky_root):
    ds = None
    for weights in ((1.0, 0.1), (2.0, 0.5)):
        kwargs = {} if weights == (1.0, 0.1) else dict(mgcl_weight=weights[0], align_weight=weights[1])
        obj = _objective("skysense-tiny", **kwargs).train()
        assert (obj.mgcl_weight, obj.align_weight) == weights
        ds = ds or obj.build_dataset(sky_root)
        batch = obj.collate([ds[i] for i in (0, 1, 2)])  # sites 0, 1, 2
        before = obj.backbone.prototypes.bank.detach().clone()
        out = obj(batch)
        expected = weights[0] * float(out["mgcl"]) + weights[1] * float(out["align"])
        assert float(out["loss"].detach()) == pytest.approx(expected, rel=1e-5)
        assert float(out["mgcl"]) == pytest.approx(sum(float(v) for k, v in out.items()
                                                       if k.endswith(("_pixel", "_object", "_image"))), rel=1e-5)
        assert {k.split("_")[0] for k in out if k.endswith("_pixel")} == {"hr", "s2", "s1", "fused"}
    assert obj.momentum(0.0) == pytest.approx(0.99) and obj.momentum(1.0) == pytest.approx(0.999)
    # geo-context prototypes: the student's forward moved exactly the three addressed regions
    regions = sorted(latlon_to_region(batch["latlon"], (4, 4)).tolist())
    changed = sorted(torch.nonzero((obj.backbone.prototypes.bank != before).any(-1).any(-1)).flatten().tolist())
    assert changed == regions
    teacher_bank = obj.teacher["backbone"].prototypes.bank.detach().clone()
    obj.after_step(progress=0.0)  # the teacher follows by EMA (momentum 0.99 at the start)
    expected = 0.99 * teacher_bank + 0.01 * obj.backbone.prototypes.bank
    assert torch.allclose(obj.teacher["backbone"].prototypes.bank, expected, atol=1e-6)
    assert not any(p.requires_grad for p in obj.teacher.parameters())


def test_skysense_objective_adapts_to_an_hr_only_backbone(sky_root):
    """The skysense-hr structure (no time series, no fusion): HR contrast only, no alignment."""
    info = get_catalog().backbone("skysense-tiny")
    torch.manual_seed(0)
    obj = SkySensePretrainer({**info.config(), "s2": None, "s1": None, "fusion": None, "prototypes": None}).train()
    ds = obj.build_dataset(sky_root)
    assert set(ds[0]) == {"hr", "doy_hr", "latlon"}
    out = obj(obj.collate([ds[i] for i in range(3)]))
    assert {k for k in out if k.endswith(("_pixel", "_object", "_image"))} == {"hr_pixel", "hr_object", "hr_image"}
    assert float(out["align"]) == 0.0 and float(out["loss"].detach()) == pytest.approx(float(out["mgcl"]))


def test_mars_masked_tokens_hide_masked_pixels_and_loss_adds_up(mars_root):
    obj = _objective("mars-tiny").eval()
    ds = obj.build_dataset(mars_root)
    batch = obj.collate([ds[i] for i in range(2)])
    image, mask = batch["image"], batch["mask"]
    pixel = mask.repeat_interleave(4, 1).repeat_interleave(4, 2).bool()  # (B, 64, 64)
    with torch.no_grad():
        base = obj.encode(image, mask)["hr"][-1]
        hidden = image.clone()
        hidden[:, :3][pixel[:, None].expand(-1, 3, -1, -1)] = 5.0  # change only masked pixels
        same = obj.encode(hidden, mask)["hr"][-1]
        shown = image.clone()
        shown[:, :3][(~pixel)[:, None].expand(-1, 3, -1, -1)] = 5.0
        moved = obj.encode(shown, mask)["hr"][-1]
        out = obj(batch)
    assert torch.allclose(base, same, atol=1e-5) and not torch.allclose(base, moved, atol=1e-3)
    assert float(out["loss"]) == pytest.approx(float(out["mim_hr"] + out["mim_sar"] + out["cgcl"]), rel=1e-5)
    assert obj.mask_ratio == 0.6 and obj.mask_generator().mask_count == 154  # ceil(0.6 * 16 x 16 blocks)
    assert not any(k.startswith(("mask_tokens", "decoders")) for k in obj.backbone_state_dict())
    assert obj.backbone.fusion == "mma" and "mma.3.layers.3.attn.in_proj_weight" in obj.backbone_state_dict()


# -- end to end -------------------------------------------------------------------------------
def _pretrain(name: str, data: Path, out: Path, **kw) -> object:
    return run_pretraining(PretrainSettings(model=name, data=str(data), out=str(out), **kw), show_progress=False)


def _resumed_run(name: str, data: Path, out: Path, steps: int):
    """Pretrain ``steps`` in two invocations: stopped by max_steps at half, then resumed."""
    half = _pretrain(name, data, out, steps=steps, max_steps=steps // 2)
    assert not half.finished and half.checkpoint is None and not out.exists()
    state = torch.load(half.state, weights_only=True)  # tensors, numbers, dicts only
    assert state["step"] == steps // 2 and state["total_steps"] == steps
    full = _pretrain(name, data, out, steps=steps)
    return half, full


def _check_run(half, full, steps: int, out: Path) -> dict:
    assert full.finished and full.resumed_from == steps // 2 and full.step == steps
    log = json.loads(Path(full.log).read_text())
    assert [e["step"] for e in log["entries"]] == list(range(1, steps + 1)) and log["resumed_at"] == [steps // 2]
    assert full.losses[: steps // 2] == half.losses
    k = max(3, steps // 5)
    first, last = np.mean(full.losses[:k]), np.mean(full.losses[-k:])
    assert last < 0.9 * first, (first, last, full.losses)
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["meta"]["steps"] == steps and set(ckpt) == {"state_dict", "meta"}
    return log


@pytest.fixture(scope="module")
def sky_run(sky_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("sky-ckpt") / "skysense-tiny.pth"
    half, full = _resumed_run("skysense-tiny", sky_root, out, steps=24)
    return half, full, out


@pytest.fixture(scope="module")
def mars_run(mars_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("mars-ckpt") / "mars-tiny.pth"
    half, full = _resumed_run("mars-tiny", mars_root, out, steps=20)
    return half, full, out


def _loads_strictly(name: str, out: Path) -> None:
    """The checkpoint is the backbone's full state dict and ``checkpoint=`` loads it strictly."""
    info = get_catalog().backbone(name)
    model = MODELS.build(info.config(checkpoint=str(out)))
    model.init_weights()
    assert model.key_report is not None and model.key_report.clean
    saved = read_state_dict(out)
    own = model.state_dict()
    assert set(saved) == set(own)
    assert all(torch.equal(own[k], saved[k]) for k in saved)


def test_skysense_pretraining_lowers_loss_resumes_and_its_checkpoint_evaluates_on_aid(sky_run, aid_root,
                                                                                       tmp_path_factory):
    half, full, out = sky_run
    log = _check_run(half, full, 24, out)
    assert log["entries"][0]["momentum"] == pytest.approx(0.99) and log["entries"][-1]["momentum"] > 0.998
    _loads_strictly("skysense-tiny", out)
    results = tmp_path_factory.mktemp("sky-eval")
    spec = RunSpec(backbone="skysense-tiny", task="aid", data_root=str(aid_root), checkpoint=str(out),
                   max_iters=4, work_dir=str(results / "work"))
    row = run_evaluation(spec, results_dir=results, show_progress=False).row
    assert row["status"] == "ok", row["error"]
    assert row["checkpoint"] == str(out) and len(row["checkpoint_sha256"]) == 64
    assert leaderboard.read_rows(results / "leaderboard.csv")[0]["status"] == "ok"


def test_mars_pretraining_lowers_loss_resumes_and_its_checkpoint_evaluates_on_dfc23(mars_run, tmp_path_factory):
    from rsbench_crossmodal import dfc23

    half, full, out = mars_run
    _check_run(half, full, 20, out)
    _loads_strictly("mars-mma-tiny", out)  # pretraining always runs MMA: the MMA preset takes it all
    summed = MODELS.build(get_catalog().backbone("mars-tiny").config(checkpoint=str(out)))
    summed.init_weights()  # the sum preset takes the encoders, MMA left out
    assert summed.key_report.clean and summed.weight_accounting()["initialised"] == 0
    base = tmp_path_factory.mktemp("mars-eval")
    root = dfc23.write_fixture(base / "dfc23", counts=dict(train=8, val=2, test=2))
    spec = RunSpec(backbone="mars-tiny", task="dfc23-t2", data_root=str(root), checkpoint=str(out), max_iters=4,
                   batch_size=4, options={"img_size": "64"}, work_dir=str(base / "work"))
    row = run_evaluation(spec, results_dir=base, show_progress=False).row
    assert row["status"] == "ok", row["error"]
    assert row["adapter"].startswith("none: RGB as 'hr' and SAR as 'sar'") and len(row["checkpoint_sha256"]) == 64


def test_a_resumed_run_repeats_the_uninterrupted_one_exactly(sky_root, tmp_path):
    """Same losses and weights: batches depend on (seed, step) only, the RNG (views, masks) and the
    teacher, prototype bank and optimizer moments are all in the saved state."""
    straight = _pretrain("skysense-tiny", sky_root, tmp_path / "a.pth", steps=4, batch_size=4, seed=3)
    _pretrain("skysense-tiny", sky_root, tmp_path / "b.pth", steps=4, batch_size=4, seed=3, max_steps=2)
    resumed = _pretrain("skysense-tiny", sky_root, tmp_path / "b.pth", steps=4, batch_size=4, seed=3)
    assert resumed.resumed_from == 2
    np.testing.assert_allclose(resumed.losses, straight.losses, rtol=1e-5)
    a, b = read_state_dict(tmp_path / "a.pth"), read_state_dict(tmp_path / "b.pth")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    with pytest.raises(RsbenchError, match=r"cannot resume with different settings: batch_size 4 \(state\) vs 8"):
        _pretrain("skysense-tiny", sky_root, tmp_path / "b.pth", steps=8, seed=3)
    with pytest.raises(RsbenchError, match=r"already trained 4 steps, more than --steps 3"):
        _pretrain("skysense-tiny", sky_root, tmp_path / "b.pth", steps=3, batch_size=4, seed=3)


# -- the command ------------------------------------------------------------------------------
def test_cli_writes_the_fixture_trains_and_reports(tmp_path):
    data, out = tmp_path / "pairs", tmp_path / "ck" / "mars.pth"
    args = ["--model", "mars-tiny", "--data", str(data), "--out", str(out), "--steps", "2", "--batch-size", "4"]
    args += ["-o", "mask_ratio=0.75"]
    result = CliRunner().invoke(pretrain_command, [*args, "--fixture", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["finished"] and report["checkpoint"] == str(out) and len(report["losses"]) == 2
    assert (data / "Umbra_patches" / "rgb").is_dir()
    log = json.loads((tmp_path / "ck" / "mars.pretrain" / "log.json").read_text())
    assert log["settings"]["objective_options"] == {"mask_ratio": 0.75} and log["model"] == "mars-tiny"
    assert set(log["entries"][0]) >= {"loss", "lr", "grad_norm", "mim_hr", "mim_sar", "cgcl_patch"}
    again = CliRunner().invoke(pretrain_command, args)  # nothing left to train: reports and rewrites
    assert again.exit_code == 0 and "step 2/2, resumed at step 2" in again.output
    missing = CliRunner().invoke(pretrain_command, ["--model", "mars-tiny", "--data", str(tmp_path / "none"),
                                                    "--out", str(tmp_path / "other.pth")])
    assert isinstance(missing.exception, DataLayoutError) and "pass --fixture" in str(missing.exception)
    unknown = CliRunner().invoke(pretrain_command, [*args[:-2], "-o", "nope=1"])
    assert isinstance(unknown.exception, RsbenchError)
    assert "--option nope: MaRSPretrainer takes img_size, mask_ratio" in str(unknown.exception)
    refused = CliRunner().invoke(pretrain_command, ["--model", "resnet50-tiny", "--data", str(data), "--out", str(out)])
    assert isinstance(refused.exception, RsbenchError) and "declares no pretraining objective" in str(refused.exception)


def test_importing_the_command_does_not_import_torch():
    code = "import sys, rsbench.cli.pretrain; assert 'torch' not in sys.modules, 'torch imported'"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).returncode == 0
