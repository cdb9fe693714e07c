"""Change-detection readers, fixtures, bad-input errors and the core pieces (neck, metric,
Siamese segmentor) without training."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rsbench.errors import DataLayoutError
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench_change import dfc25, levir_cd, oscd, whu_cd


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    catalog = get_catalog()
    out = {}
    for name in ("levir-cd", "whu-cd", "oscd", "dfc25-t2"):
        out[name] = catalog.datasets.get(name).write_fixture(tmp_path_factory.mktemp(name), seed=0)
    return out


def test_levir_fixture_is_the_official_layout_with_planted_changes(roots, tmp_path):
    base = roots["levir-cd"] / "LEVIR-CD"
    for split in ("train", "val", "test"):
        for sub in ("A", "B", "label"):
            assert (base / split / sub / f"{split}_1.png").is_file()
    label = np.array(Image.open(base / "train" / "label" / "train_1.png"))
    assert set(np.unique(label)) == {0, 255}
    a = np.array(Image.open(base / "train" / "A" / "train_1.png")).astype(int)
    b = np.array(Image.open(base / "train" / "B" / "train_1.png")).astype(int)
    diff = np.abs(a - b).mean(-1)
    assert diff[label == 255].mean() > 3 * diff[label == 0].mean()  # the change is in the images
    summary = levir_cd.check(roots["levir-cd"])
    assert [len(summary["splits"][s]) for s in ("train", "val", "test")] == [12, 2, 4]
    again = levir_cd.write_fixture(tmp_path, seed=0)
    assert (again / "LEVIR-CD/test/B/test_3.png").read_bytes() == (base / "test/B/test_3.png").read_bytes()


def test_whu_reads_the_split_lists(roots):
    summary = whu_cd.check(roots["whu-cd"])
    names = (roots["whu-cd"] / "WHU-CD-256" / "list" / "test.txt").read_text().split()
    assert [Path(s["id"]).name for s in summary["splits"]["test"]] == names


def test_oscd_reads_13_band_files_dates_and_both_label_folders(roots):
    summary = oscd.check(roots["oscd"])
    assert len(summary["splits"]["train"]) == 6 and len(summary["splits"]["test"]) == 3
    city = summary["splits"]["test"][0]
    assert [Path(f).name for f in city["dates"][0]][:3] == ["B01.tif", "B02.tif", "B03.tif"]
    assert Path(city["dates"][1][8]).name == "B8A.tif" and len(city["dates"][1]) == 13
    assert "Test Labels" in city["label"] and all(1 <= d <= 366 for d in city["doy"])
    assert oscd.band_file("B8A") == "B8A.tif" and oscd.band_file("B1") == "B01.tif"


def test_dfc25_keeps_unlabelled_lists_for_submission(roots):
    summary = dfc25.check(roots["dfc25-t2"])
    assert len(summary["splits"]["train"]) == 8 and len(summary["splits"]["holdout"]) == 3
    assert all(s["label"] is None for s in summary["splits"]["val"])
    assert summary["submission_split"] == "val"
    target = summary["splits"]["train"][0]["label"]
    from rsbench_change.io import read_raster
    assert set(np.unique(read_raster(target))) <= {0, 1, 2, 3}


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_a_missing_date_folder_is_named(roots, tmp_path):
    root = _copy(roots["levir-cd"] / "LEVIR-CD", tmp_path / "LEVIR-CD")
    shutil.rmtree(root / "val" / "B")
    with pytest.raises(DataLayoutError, match=r"val/B: missing folder"):
        levir_cd.check(tmp_path)
    o = _copy(roots["oscd"], tmp_path / "o")
    shutil.rmtree(o / oscd.IMAGES / "norcia" / "imgs_2_rect")
    with pytest.raises(DataLayoutError, match=r"norcia/imgs_2_rect: missing date folder"):
        oscd.check(o)


def test_dates_of_different_size_or_bands_are_named(roots, tmp_path):
    root = _copy(roots["levir-cd"] / "LEVIR-CD", tmp_path / "LEVIR-CD")
    Image.new("RGB", (32, 64)).save(root / "test" / "B" / "test_2.png")
    with pytest.raises(DataLayoutError, match=r"differ in size: .*test/A/test_2.png 64x64, .*test/B/test_2.png 64x32"):
        levir_cd.check(tmp_path)
    Image.new("L", (64, 64)).save(root / "test" / "B" / "test_2.png")
    with pytest.raises(DataLayoutError, match=r"test/B/test_2.png: 1 band\(s\), expected 3"):
        levir_cd.check(tmp_path)


def test_labels_other_than_0_255_are_named(roots, tmp_path):
    root = _copy(roots["whu-cd"] / "WHU-CD-256", tmp_path / "WHU-CD-256")
    name = (root / "list" / "train.txt").read_text().split()[0]
    Image.fromarray(np.full((64, 64), 1, np.uint8)).save(root / "label" / name)
    with pytest.raises(DataLayoutError, match=rf"label/{name}: label values \[1\] not allowed; expected only 0, 255"):
        whu_cd.check(tmp_path)
    from rsbench_change.pipeline import LoadChangePair
    with pytest.raises(DataLayoutError, match=r"label values \[1\] not allowed"):
        LoadChangePair(label_map={0: 0, 255: 1}).map_label(np.ones((4, 4), np.uint8), "x.png")


def test_oscd_bad_dates_file_is_named(roots, tmp_path):
    o = _copy(roots["oscd"], tmp_path / "o")
    (o / oscd.IMAGES / "bercy" / "dates.txt").write_text("date_1: 2016\n")
    with pytest.raises(DataLayoutError, match=r"bercy/dates.txt: bad date"):
        oscd.check(o)


def test_fusion_neck_policies():
    import torch

    from rsbench_change.models import FeatureFusionNeck

    a, b = [torch.ones(1, 2, 4, 4)], [torch.full((1, 2, 4, 4), 3.0)]
    assert FeatureFusionNeck("concat")(a, b)[0].shape == (1, 4, 4, 4)
    assert FeatureFusionNeck("sum")(a, b)[0].mean() == 4
    assert FeatureFusionNeck("diff")(a, b)[0].mean() == -2
    assert FeatureFusionNeck("abs_diff")(a, b)[0].mean() == 2
    with pytest.raises(ValueError, match="fusion policy 'max'"):
        FeatureFusionNeck("max")


def test_change_metric_per_class_values_are_iou_metrics_own_formulas():
    import torch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    from rsbench_change.models import ChangeMetric

    rng = np.random.default_rng(0)
    gt = rng.integers(0, 2, (2, 16, 16))
    pred = np.where(rng.random(gt.shape) < 0.8, gt, 1 - gt)
    metric = ChangeMetric(iou_metrics=["mIoU", "mFscore"])
    metric.dataset_meta = dict(classes=["unchanged", "changed"])
    samples = []
    for p, g in zip(pred, gt):
        s = SegDataSample(pred_sem_seg=PixelData(data=torch.from_numpy(p)[None]),
                          gt_sem_seg=PixelData(data=torch.from_numpy(g)[None]))
        samples.append(s.to_dict())
    metric.process({}, samples)
    out = metric.compute_metrics(metric.results)
    tp = ((pred == 1) & (gt == 1)).sum()
    fp = ((pred == 1) & (gt == 0)).sum()
    fn = ((pred == 0) & (gt == 1)).sum()
    assert out["Fscore.changed"] == pytest.approx(round(200 * tp / (2 * tp + fp + fn), 2), abs=0.01)
    assert out["IoU.changed"] == pytest.approx(round(100 * tp / (tp + fp + fn), 2), abs=0.01)
    assert float(out["mIoU"]) == pytest.approx((out["IoU.changed"] + out["IoU.unchanged"]) / 2, abs=0.01)


def test_siamese_segmentor_splits_dates_and_rejects_wrong_channels():
    import torch
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    import rsbench_baselines.mmpretrain_backbones  # noqa: F401
    import rsbench_change.models  # noqa: F401

    register_all_modules(init_default_scope=False)
    info = get_catalog().backbone("resnet50-tiny")
    # An earlier in-process run may have left another library's default scope current.
    with DefaultScope.overwrite_default_scope("mmseg"):
        model = MODELS.build(dict(
            type="RSBSiamEncoderDecoder", dates=[dict(modality="hr", channels=3)] * 2,
            backbone=info.config(), neck=dict(type="RSBFeatureFusionNeck", policy="abs_diff"),
            decode_head=dict(type="FCNHead", in_channels=512, in_index=3, channels=8, num_convs=1, num_classes=2)))
        feats = model.extract_feat(torch.randn(1, 6, 64, 64))
        assert feats[3].shape == (1, 512, 2, 2)
        same = torch.randn(1, 3, 64, 64)
        model.eval()
        assert model.extract_feat(torch.cat([same, same], 1))[0].abs().max() == 0  # no change, no signal
        with pytest.raises(ValueError, match="has 4 channels; the dates"):
            model.extract_feat(torch.randn(1, 4, 64, 64))
        with pytest.raises(ValueError, match="needs a fusion neck"):
            MODELS.build(dict(type="RSBSiamEncoderDecoder", dates=[dict(modality="hr", channels=3)] * 2,
                              backbone=info.config(), decode_head=dict(type="FCNHead", in_channels=512, channels=8,
                                                                        num_classes=2)))


def _plan(task_name: str, backbone_name: str, root: Path, **options):
    from rsbench.run.runner import modality_fit
    from rsbench.run.spec import RunSpec

    catalog = get_catalog()
    info, backbone = catalog.tasks.get(task_name), catalog.backbone(backbone_name)
    task = info.load_task_class()(info, catalog.datasets.get(info.dataset), modality_fit(backbone, info))
    spec = RunSpec(backbone=backbone_name, task=task_name, data_root=str(root), options=options).resolved_for(info)
    data = task.check_data(root, spec)
    return task, task.plan(spec, backbone, data), data


def test_how_the_dates_reach_each_backbone_is_decided_and_recorded(roots):
    from rsbench.errors import SpecError

    _, plan, _ = _plan("dfc25-t2", "mars-tiny", roots["dfc25-t2"])
    assert plan["mode"] == "multimodal" and [d["modality"] for d in plan["dates"]] == ["hr", "sar"]
    assert "hr=date 1, sar=date 2" in plan["adapter"]
    task, plan, _ = _plan("dfc25-t2", "resnet50-tiny", roots["dfc25-t2"])
    assert plan["mode"] == "siamese" and plan["dates"][1] == dict(modality="hr", bands=["SAR"], repeat=3, source="sar")
    assert "SAR replicated to R,G,B" in plan["adapter"] and task.modalities == ("hr",)
    _, plan, data = _plan("oscd", "skysense-tiny", roots["oscd"], temporal="native")
    assert plan["mode"] == "native" and plan["dates"][0]["modality"] == "s2"
    assert "with day of year" in plan["adapter"] and len(plan["dates"][0]["bands"]) == 10
    task, plan, data = _plan("oscd", "resnet50-tiny", roots["oscd"])
    assert plan["dates"][0]["bands"] == ["B4", "B3", "B2"]
    files = task._files(data.train[0], plan["dates"][0], data, 0)
    assert [Path(f).name for f in files] == ["B04.tif", "B03.tif", "B02.tif"]
    with pytest.raises(SpecError, match="has no temporal path"):
        _plan("levir-cd", "resnet50-tiny", roots["levir-cd"], temporal="native")


def test_unlabelled_splits_point_to_submission(roots):
    from rsbench.run.spec import RunSpec

    catalog = get_catalog()
    info = catalog.tasks.get("dfc25-t2")
    task = info.load_task_class()(info, catalog.datasets.get("dfc25-t2"), ("hr",))
    with pytest.raises(DataLayoutError, match="has no targets; use --split submission"):
        task.check_data(roots["dfc25-t2"], RunSpec(backbone="resnet50-tiny", task="dfc25-t2", split="val").resolved_for(info))
    spec = RunSpec(backbone="resnet50-tiny", task="dfc25-t2", split="submission").resolved_for(info)
    data = task.check_data(roots["dfc25-t2"], spec)
    assert data.fact("submission") and len(data.test) == 2 and all(s["label"] is None for s in data.test)
