"""DFC23 track 2 (building height): reader, fixture, bad input, metric by hand, and one in-process
MaRS run that beats predicting the mean height, its value recomputed from the saved predictions."""

from __future__ import annotations

import json
import math
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from rsbench.errors import DataLayoutError
from rsbench.run.runner import run_evaluation
from rsbench.run.spec import RunSpec
from rsbench_crossmodal import dfc23
from rsbench_crossmodal.height import height_metrics, holdout, pixel_stats


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """One intra-op thread for this module (see conftest)."""


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return dfc23.write_fixture(tmp_path_factory.mktemp("dfc23") / "data")


def copy(root: Path, tmp: Path) -> Path:
    out = tmp / "copy"
    shutil.copytree(root, out)
    return out


# -- reader and fixture -----------------------------------------------------------------
def test_fixture_is_in_the_official_layout(root):
    data = dfc23.check(root)
    assert [len(data["samples"][s]) for s in dfc23.SPLITS] == [20, 4, 6]
    assert data["size"] == 64
    first = data["samples"]["train"][0]
    assert first == dict(id="P0000", rgb="train/rgb/P0000.tif", sar="train/sar/P0000.tif", size=64,
                         height="train/height/P0000.tif")
    assert data["samples"]["test"][-1]["id"] == "P0029"
    assert [dfc23.read_tif(root / first[k]).shape[0] for k in ("rgb", "sar", "height")] == [3, 1, 1]
    coco = json.loads((root / "annotations" / "buildings_only_val.json").read_text())
    assert [im["file_name"] for im in coco["images"]] == ["P0020.tif", "P0021.tif", "P0022.tif", "P0023.tif"]
    assert coco["annotations"] and coco["categories"] == [dict(id=1, name="building")]


def test_fixture_heights_follow_the_content_and_are_deterministic(root, tmp_path):
    rgb = dfc23.read_tif(root / "train/rgb/P0003.tif")
    sar = dfc23.read_tif(root / "train/sar/P0003.tif")[0]
    height = dfc23.read_tif(root / "train/height/P0003.tif")[0]
    roof = height > 0
    assert roof.any() and (~roof).any() and height.max() <= 30
    roof_grey = 0.3 + 0.6 * height[roof] / 30  # the planted roof brightness, +- noise
    assert np.abs(rgb[:, roof] / 255 - roof_grey).max() < 0.1
    assert np.corrcoef(height.ravel(), sar.ravel())[0, 1] > 0.8
    again = dfc23.write_fixture(tmp_path / "again", counts=dict(train=4))
    assert np.array_equal(dfc23.read_tif(again / "train/height/P0003.tif")[0], height)


def test_holdout_is_sklearn_train_test_split_with_seed_42():
    rows = [dict(id=f"P{i:04d}") for i in range(10)]
    train, test = holdout(rows[::-1])
    # sklearn.model_selection.train_test_split(range(10), test_size=0.2, random_state=42)
    assert [r["id"] for r in test] == ["P0008", "P0001"]
    assert [r["id"] for r in train] == ["P0005", "P0000", "P0007", "P0002", "P0009", "P0004", "P0003", "P0006"]


# -- bad input --------------------------------------------------------------------------
def test_missing_sar_tile_is_named(root, tmp_path):
    bad = copy(root, tmp_path)
    (bad / "train/sar/P0002.tif").unlink()
    with pytest.raises(DataLayoutError, match=r"train/sar/P0002.tif: missing \(expected a 1-band GeoTIFF"):
        dfc23.check(bad)


def test_wrong_band_count_and_missing_annotations_are_named(root, tmp_path):
    bad = copy(root, tmp_path)
    shutil.copy(bad / "train/rgb/P0001.tif", bad / "train/sar/P0001.tif")
    with pytest.raises(DataLayoutError, match=r"train/sar/P0001.tif: has 3 band\(s\); expected 1"):
        dfc23.check(bad)
    (bad / "annotations/buildings_only_train.json").write_text("{}")
    with pytest.raises(DataLayoutError, match=r"buildings_only_train.json: expected a COCO object"):
        dfc23.check(bad)


def test_missing_height_folder_and_unreadable_tile(root, tmp_path):
    bad = copy(root, tmp_path)
    shutil.rmtree(bad / "train/height")
    with pytest.raises(DataLayoutError, match=r"train/height: folder missing; the train split needs heights"):
        dfc23.check(bad)
    bad = copy(root, tmp_path / "b")
    (bad / "val/rgb/P0020.tif").write_bytes(b"not a tiff")
    with pytest.raises(DataLayoutError, match=r"val/rgb/P0020.tif: unreadable GeoTIFF"):
        dfc23.check(bad)


# -- metric by hand ---------------------------------------------------------------------
def test_metric_matches_hand_computed_values():
    gt = np.array([[0.0, 10.0], [4.0, 20.0]])
    pred = np.array([[2.0, 12.0], [0.0, 10.0]])
    # errors 2, 2, -4, -10 over 4 pixels; building pixels are 10, 4, 20
    # ratios: 12/10 = 1.2 (<1.25), 4/0 -> miss (pred 0), 20/10 = 2.0 (<1.5625? no; <1.953? no)
    m = height_metrics([pixel_stats(pred, gt)])
    assert m["MAE"] == pytest.approx((2 + 2 + 4 + 10) / 4)
    assert m["MSE"] == pytest.approx((4 + 4 + 16 + 100) / 4)
    assert m["RMSE"] == pytest.approx(math.sqrt(124 / 4))
    assert m["RMSE_building"] == pytest.approx(math.sqrt(120 / 3))
    assert m["delta1"] == pytest.approx(100 / 3)
    assert m["delta2"] == pytest.approx(100 / 3)  # 1.25^2 = 1.5625 < 2
    assert m["delta3"] == pytest.approx(100 / 3)  # 1.25^3 = 1.953 < 2
    assert m["RMSE_constant"] == pytest.approx(float(gt.std()))  # the best constant: the mean, 8.5
    # pooled over pixels, not averaged per tile: a second, perfect 1-pixel tile
    both = height_metrics([pixel_stats(pred, gt), pixel_stats(np.array([5.0]), np.array([5.0]))])
    assert both["RMSE"] == pytest.approx(math.sqrt(124 / 5)) and both["delta1"] == pytest.approx(50.0)


def test_delta_uses_the_symmetric_ratio():
    gt = np.array([10.0, 10.0, 10.0])
    pred = np.array([8.1, 6.5, 5.2])  # gt/pred = 1.235, 1.538, 1.923
    m = height_metrics([pixel_stats(pred, gt)])
    assert (m["delta1"], m["delta2"], m["delta3"]) == pytest.approx((100 / 3, 200 / 3, 100.0))


# -- in-process run ---------------------------------------------------------------------
def test_mars_tiny_beats_the_mean_height_and_equals_recomputed_rmse(root, tmp_path):
    work = tmp_path / "work"
    spec = RunSpec(backbone="mars-tiny", task="dfc23-t2", data_root=str(root), work_dir=str(work), max_iters=60,
                   batch_size=4, lr=2e-3, options={"img_size": "64"})
    row = run_evaluation(spec, results_dir=tmp_path / "results", show_progress=False).row
    assert row["status"] == "ok", row["error"]
    assert row["adapter"].startswith("none: RGB as 'hr' and SAR as 'sar'") and "16 train / 4 scored" in row["adapter"]
    rows = dfc23.check(root)["samples"]["train"]
    train, test = holdout(rows)
    gts = {r["id"]: dfc23.read_tif(root / r["height"])[0] for r in test}
    mean = float(np.mean([dfc23.read_tif(root / r["height"]) for r in train]))
    baseline = height_metrics([pixel_stats(np.full_like(g, mean), g) for g in gts.values()])["RMSE"]
    assert row["value"] < 0.7 * baseline  # about 0.53 x at 60 iterations
    with open(work / "predictions.pkl", "rb") as f:
        preds = pickle.load(f)
    assert sorted(p["id"] for p in preds) == sorted(gts)
    err = np.concatenate([(p["pred"].astype(np.float64) - gts[p["id"]]).ravel() for p in preds])
    assert row["value"] == pytest.approx(float(np.sqrt(np.mean(err ** 2))), abs=1e-3)
    metrics = json.loads((work / "metrics.json").read_text())
    assert 20 < metrics["height/delta1"] <= metrics["height/delta2"] <= metrics["height/delta3"]  # mean: 0 %


def test_rgb_backbone_runs_optical_only_and_val_split_needs_heights(root, tmp_path):
    bad = copy(root, tmp_path)
    shutil.rmtree(bad / "val/height")
    spec = RunSpec(backbone="resnet50-tiny", task="dfc23-t2", data_root=str(bad), work_dir=str(tmp_path / "w"),
                   max_iters=2, batch_size=4, split="val", options={"img_size": "64"})
    with pytest.raises(DataLayoutError, match=r"val/height: folder missing; split 'val' cannot be scored"):
        run_evaluation(spec, results_dir=tmp_path / "results", show_progress=False)
    spec = RunSpec(backbone="resnet50-tiny", task="dfc23-t2", data_root=str(root), work_dir=str(tmp_path / "w2"),
                   max_iters=2, batch_size=4, split="test", options={"img_size": "64"})
    row = run_evaluation(spec, results_dir=tmp_path / "results", show_progress=False).row
    assert row["status"] == "ok", row["error"]
    assert row["adapter"].startswith("optical-only") and "20 train / 6 scored" in row["adapter"]
