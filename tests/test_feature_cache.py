"""The frozen-feature cache: when it applies, that hits skip the backbone, and that outputs read
back equal the computed ones (float32) or round to them (float16)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from rsbench.engine import feature_cache
from rsbench.plugin_api.plugin_host import get_catalog


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    yield


def _cfg(frozen: bool = True, train_pipeline: list | None = None) -> dict:
    backbone = get_catalog().backbone("resnet50-tiny").config(frozen=frozen)
    return dict(model=dict(type="X", backbone=backbone),
                train_dataloader=dict(dataset=dict(type="D", pipeline=train_pipeline or [dict(type="PackInputs")])))


def test_plan_applies_only_to_frozen_backbones_without_pixel_augmentations(tmp_path: Path) -> None:
    cfg, note = feature_cache.plan(_cfg(), "linear", True, root=tmp_path)
    assert cfg["model"]["backbone"]["type"] == "RSBFeatureCache" and note.startswith("on (float32")
    assert feature_cache.plan(_cfg(), "finetune", True, root=tmp_path) == (_cfg(), "")
    assert feature_cache.plan(_cfg(), "frozen", False, root=tmp_path)[1] == "off (--no-feature-cache)"
    assert "no frozen backbone" in feature_cache.plan(_cfg(frozen=False), "frozen", True, root=tmp_path)[1]
    augmented = _cfg(train_pipeline=[dict(type="LoadImageFromFile"), dict(type="RandomFlip", prob=0.5),
                                      dict(type="mmseg.PhotoMetricDistortion"), dict(type="MyLoader", flip=True),
                                      dict(type="PackInputs")])
    cfg, note = feature_cache.plan(augmented, "frozen", True, root=tmp_path)
    assert cfg == augmented
    assert note == "off: training augmentations change pixels (RandomFlip, mmseg.PhotoMetricDistortion, MyLoader)"
    plain = _cfg(train_pipeline=[dict(type="MyLoader", flip=False), dict(type="Resize", scale=(8, 8))])
    assert feature_cache.plan(plain, "frozen", True, root=tmp_path)[1].startswith("on")
    with pytest.raises(ValueError, match="float64"):
        feature_cache.plan(_cfg(), "linear", True, root=tmp_path, dtype="float64")


def test_cache_key_follows_checkpoint_bytes(tmp_path: Path) -> None:
    ckpt = tmp_path / "w.pth"
    ckpt.write_bytes(b"one")
    backbone = dict(type="B", checkpoint=str(ckpt), frozen=True)
    first = feature_cache.cache_key(backbone, "float32")
    assert feature_cache.cache_key(dict(backbone, frozen=False), "float32") == first
    ckpt.write_bytes(b"two")
    assert feature_cache.cache_key(backbone, "float32") != first
    assert feature_cache.cache_key(backbone, "float16") != feature_cache.cache_key(backbone, "float32")


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_hits_skip_the_backbone_and_return_what_it_computed(tmp_path: Path, dtype: str) -> None:
    from mmengine.registry import MODELS

    info = get_catalog().backbone("resnet50-tiny")
    info.register_type()
    feature_cache.register()
    cfg, _ = feature_cache.plan(_cfg(), "linear", True, root=tmp_path, dtype=dtype)
    model = MODELS.build(cfg["model"]["backbone"])
    model.init_weights()
    model.train()
    assert model.out_channels == tuple(info.out_channels)  # the wrapped backbone's attributes
    x = torch.randn(3, 3, 64, 64)
    calls = []
    model.backbone.register_forward_hook(lambda *a: calls.append(1))

    pooled, maps = model.forward_pooled(x), model(x)
    assert len(calls) == 2 and model.misses == 6 and model.hits == 0
    pooled2, maps2 = model.forward_pooled(x), model(x)
    assert len(calls) == 2 and model.hits == 6  # answered from disk
    tol = dict(rtol=0, atol=0) if dtype == "float32" else dict(rtol=1e-2, atol=1e-3)
    torch.testing.assert_close(pooled2, pooled, **tol)
    for a, b in zip(maps2, maps):
        torch.testing.assert_close(a, b, **tol)
    # a new sample in the batch is a miss for the whole batch, and one new entry
    model.forward_pooled(torch.cat([x[:2], torch.randn(1, 3, 64, 64)]))
    assert len(calls) == 3
    assert len(list((Path(cfg["model"]["backbone"]["cache_dir"]) / "pooled").rglob("done"))) == 4


@pytest.fixture(scope="module")
def aid_linear(aid_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """The AID linear probe three times: uncached, cache cold (fills it), cache warm (another work dir)."""
    from rsbench.run.runner import run_evaluation
    from rsbench.run.spec import RunSpec

    rows = {}
    for name, cache in (("uncached", False), ("cold", True), ("warm", True)):
        spec = RunSpec(backbone="resnet50-tiny", task="aid", data_root=str(aid_root), protocol="linear",
                       max_iters=40, feature_cache=cache, work_dir=str(tmp_path_factory.mktemp(name)))
        rows[name] = run_evaluation(spec, results_dir=tmp_path_factory.mktemp(f"res-{name}"), show_progress=False).row
    return rows


def test_linear_probe_metrics_are_identical_with_and_without_the_cache(aid_linear) -> None:
    assert {r["status"] for r in aid_linear.values()} == {"ok"}
    assert aid_linear["uncached"]["feature_cache"] == "off (--no-feature-cache)"
    assert aid_linear["cold"]["feature_cache"].startswith("on (float32")
    assert aid_linear["cold"]["value"] == aid_linear["uncached"]["value"] == aid_linear["warm"]["value"]
    assert aid_linear["uncached"]["config_hash"] == aid_linear["cold"]["config_hash"]
    assert "without augmentation" in aid_linear["cold"]["adapter"]
    hits = {k: re.search(r"(\d+) of (\d+) sample lookups", aid_linear[k]["feature_cache"]).groups() for k in ("cold", "warm")}
    assert 0 < int(hits["cold"][0]) < int(hits["cold"][1])  # the first epoch computes, later ones read
    assert hits["warm"][0] == hits["warm"][1]  # a second run reads everything


def test_a_frozen_run_with_pixel_augmentation_does_not_use_the_cache(aid_root: Path, tmp_path: Path) -> None:
    from rsbench.run.runner import run_evaluation
    from rsbench.run.spec import RunSpec

    spec = RunSpec(backbone="resnet50-tiny", task="aid", data_root=str(aid_root), protocol="frozen", max_iters=2,
                   work_dir=str(tmp_path / "w"))
    row = run_evaluation(spec, results_dir=tmp_path, show_progress=False).row
    assert row["feature_cache"] == "off: training augmentations change pixels (RandomFlip)"
