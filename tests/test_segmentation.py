"""Segmentation readers and fixtures (iSAID, DeepGlobe roads, Potsdam, EarthMiss): official
layouts, label decoding, patch windows, clear errors on bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rsbench.errors import DataLayoutError, SpecError
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.run.spec import RunSpec
from rsbench_segmentation import common, deepglobe_road, earthmiss, isaid, potsdam

TASKS = ("isaid", "deepglobe-road", "potsdam", "earthmiss")


@pytest.fixture(scope="session")
def seg_roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each segmentation fixture written once per session (shared with the run tests)."""
    catalog = get_catalog()
    return {t: catalog.datasets.get(t).write_fixture(tmp_path_factory.mktemp(t), seed=0) for t in TASKS}


def test_tasks_and_datasets_are_registered_with_their_metric():
    catalog = get_catalog()
    metrics = {t: catalog.tasks.get(t).metric for t in TASKS}
    assert metrics == {"isaid": "mIoU", "deepglobe-road": "IoU", "potsdam": "mF1", "earthmiss": "mIoU"}
    assert catalog.tasks.get("isaid").default_split == "val"
    assert catalog.tasks.get("earthmiss").modalities == {"hr": ("R", "G", "B"), "sar": ("SAR",)}


def test_isaid_fixture_is_official_and_masks_decode_through_the_palette(seg_roots, tmp_path):
    root = seg_roots["isaid"] / "iSAID"
    assert (root / "train/images/P0000.png").is_file()
    assert (root / "val/Semantic_masks/images/P1000_instance_color_RGB.png").is_file()
    summary = isaid.check(seg_roots["isaid"])
    assert {k: len(v) for k, v in summary["splits"].items()} == {"train": 6, "val": 3}
    arrays, label = isaid.load(summary["splits"]["train"][0], ["hr"])
    rgb = np.asarray(Image.open(summary["splits"]["train"][0]["label"]))
    assert np.array_equal(np.asarray(isaid.PALETTE, dtype=np.uint8)[label], rgb)
    assert arrays["hr"].shape == (80, 96, 3) and len(np.unique(label)) > 3
    again = isaid.write_fixture(tmp_path, seed=0)
    assert (again / "iSAID/val/images/P1002.png").read_bytes() == (root / "val/images/P1002.png").read_bytes()


def test_patch_windows_follow_mmsegs_converter():
    assert common.windows(80, 96, 64, 16) == [(0, 64, 0, 64), (0, 64, 32, 96), (16, 80, 0, 64), (16, 80, 32, 96)]
    assert common.windows(1000, 896, 896, 384) == [(0, 896, 0, 896), (104, 1000, 0, 896)]
    assert common.windows(40, 40, 64, 16) == [(0, 64, 0, 64)]  # small image: one padded window
    padded = common.crop_pad(np.ones((40, 40), np.uint8), (0, 64, 0, 64), 255)
    assert padded.shape == (64, 64) and padded[39, 39] == 1 and padded[50, 50] == 255
    with pytest.raises(DataLayoutError, match="overlap 64"):
        common.windows(100, 100, 64, 64)


def test_isaid_bad_inputs_name_the_path(seg_roots, tmp_path):
    broken = tmp_path / "iSAID"
    shutil.copytree(seg_roots["isaid"] / "iSAID", broken)
    mask = broken / "train/Semantic_masks/images/P0001_instance_color_RGB.png"
    rgb = np.array(Image.open(mask))
    rgb[3, 5] = (1, 2, 3)
    Image.fromarray(rgb).save(mask)
    sample = next(s for s in isaid.check(tmp_path)["splits"]["train"] if s["name"] == "P0001")
    with pytest.raises(DataLayoutError, match=r"P0001_instance_color_RGB.png: colour \(1, 2, 3\) at \(x=5, y=3\)"):
        isaid.load(sample, ["hr"])
    mask.unlink()
    with pytest.raises(DataLayoutError, match="P0001_instance_color_RGB.png: missing mask"):
        isaid.check(tmp_path)
    (broken / "train/images/P0001.png").unlink()
    shutil.rmtree(broken / "val")
    with pytest.raises(DataLayoutError, match=r"val/images: missing folder"):
        isaid.check(tmp_path)


def test_deepglobe_masks_threshold_to_binary_and_the_resplit_is_seeded(seg_roots, tmp_path):
    summary = deepglobe_road.check(seg_roots["deepglobe-road"])
    assert summary == deepglobe_road.check(seg_roots["deepglobe-road"] / "train")
    arrays, label = deepglobe_road.load(summary["splits"]["all"][0], ["hr"])
    assert set(np.unique(label)) == {0, 1} and arrays["hr"].shape == (96, 96, 3)
    opts = {"test_ratio": 0.25, "split_seed": 0}
    train, test = deepglobe_road.partition(summary, "test", opts)
    assert len(test) == 3 and len(train) == 9 and not {s["name"] for s in test} & {s["name"] for s in train}
    assert deepglobe_road.partition(summary, "test", opts) == (train, test)
    assert deepglobe_road.partition(summary, "test", dict(opts, split_seed=1))[1] != test
    shutil.copytree(seg_roots["deepglobe-road"] / "train", tmp_path / "train")
    (tmp_path / "train" / f"{test[0]['name']}_mask.png").unlink()
    with pytest.raises(DataLayoutError, match=f"{test[0]['name']}_mask.png: missing mask"):
        deepglobe_road.check(tmp_path)
    with pytest.raises(DataLayoutError, match="no <id>_sat.jpg images"):
        deepglobe_road.check(tmp_path / "nothing")


def test_potsdam_has_the_official_tiles_and_ignores_boundaries(seg_roots, tmp_path):
    summary = potsdam.check(seg_roots["potsdam"])
    assert [s["name"] for s in summary["splits"]["test"]] == list(potsdam.TEST)
    assert len(summary["splits"]["train"]) == 24
    _, label = potsdam.load(summary["splits"]["test"][0], ["hr"])
    assert (label == 255).any() and set(np.unique(label)) - {255} <= set(range(6))
    shutil.copytree(seg_roots["potsdam"], tmp_path / "p")
    (tmp_path / "p" / potsdam.IMAGES / "top_potsdam_6_15_RGB.tif").unlink()
    with pytest.raises(DataLayoutError, match="top_potsdam_6_15_RGB.tif: missing test tile 6_15"):
        potsdam.check(tmp_path / "p")


def test_earthmiss_splits_by_city_and_maps_raw_zero_to_ignore(seg_roots, tmp_path):
    summary = earthmiss.check(seg_roots["earthmiss"])
    assert {k: len(v) for k, v in summary["splits"].items()} == {"train": 14, "val": 6, "test": 6}
    assert all(s["name"].split("_")[0] in earthmiss.CITIES["test"] for s in summary["splits"]["test"])
    arrays, label = earthmiss.load(summary["splits"]["test"][0], ["hr", "sar"])
    raw = np.asarray(Image.open(summary["splits"]["test"][0]["label"]))
    assert arrays["hr"].shape == (64, 64, 3) and arrays["sar"].shape == (64, 64, 1)
    assert (label[:2] == 255).all() and np.array_equal(label[2:], raw[2:] - 1)
    root = tmp_path / "e"
    shutil.copytree(seg_roots["earthmiss"], root)
    sar = root / "Peru-Callao/images/SAR/0001_SAR.tif"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(sar)
    sample = next(s for s in earthmiss.check(root)["splits"]["test"] if s["name"] == "Peru-Callao_0001")
    with pytest.raises(DataLayoutError, match="0001_SAR.tif: expected 1 band"):
        earthmiss.load(sample, ["hr", "sar"])
    sar.unlink()
    with pytest.raises(DataLayoutError, match="missing images/SAR/0001_SAR.tif"):
        earthmiss.check(root)
    shutil.rmtree(root / "Nanjing")
    with pytest.raises(DataLayoutError, match="Nanjing/images/RGB: missing folder of train city"):
        earthmiss.check(root)


def test_missing_modality_option_decides_what_is_fed(seg_roots):
    catalog = get_catalog()
    info = catalog.tasks.get("earthmiss")
    task = info.load_task_class()(info, catalog.datasets.get("earthmiss"), ["hr", "sar"])
    root = seg_roots["earthmiss"]
    assert task.check_data(root, RunSpec("mars-tiny", "earthmiss").resolved_for(info)).fact("fed") == ["hr"]  # default: SAR missing
    assert task.fed_modalities({"missing_modality": "hr"}) == ("sar",)
    assert task.fed_modalities({"missing_modality": "none"}) == ("hr", "sar")
    hr_only = info.load_task_class()(info, catalog.datasets.get("earthmiss"), ["hr"])
    with pytest.raises(SpecError, match="missing_modality=hr leaves this backbone no modality"):
        hr_only.fed_modalities({"missing_modality": "hr"})
    with pytest.raises(SpecError, match="missing_modality=s2: expected none or one of hr, sar"):
        task.fed_modalities({"missing_modality": "s2"})


@pytest.mark.parametrize("num_classes,ignore_index", [(16, 255), (6, 0), (2, 255)])
def test_seg_metric_areas_equal_mmseg(num_classes: int, ignore_index: int) -> None:
    """RSBSegMetric's one-bincount areas are mmseg's, value and dtype, including ignored pixels
    and labels/predictions outside the class range."""
    import torch
    from mmseg.evaluation import IoUMetric

    from rsbench_segmentation.mm import SegMetric

    g = torch.Generator().manual_seed(num_classes)
    label = torch.randint(0, num_classes + 3, (96, 80), generator=g)
    label[label == num_classes + 2] = ignore_index
    label[0, 0] = -1
    pred = torch.randint(0, num_classes, (96, 80), generator=g)
    pred[1, 1] = num_classes + 4
    ours = SegMetric.intersect_and_union(pred, label, num_classes, ignore_index)
    theirs = IoUMetric.intersect_and_union(pred, label, num_classes, ignore_index)
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype and torch.equal(a, b)
