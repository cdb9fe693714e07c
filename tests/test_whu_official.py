"""WHU-CD's official release (whole train/test scenes, no val split) next to the 256 px re-pack:
layout detection at each root level, the protocol option, windows that tile each scene exactly
once, bad-input errors naming the file or folder, and one in-process run on the windows whose
assembled whole-scene change map scores the run's own value."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rsbench.errors import DataLayoutError, PredictionError, SpecError
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.run.runner import run_evaluation
from rsbench.run.scoring import score_predictions
from rsbench.run.spec import RunSpec
from rsbench_change import io, whu_cd

TILE = 64
SIZE = (300, 260)  # train scene H x W; the test scene is half as wide (300 x 130)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    return whu_cd.write_official_fixture(tmp_path_factory.mktemp("whu_official"), seed=0, size=SIZE)


@pytest.fixture(scope="module")
def base(out) -> Path:
    return out / whu_cd.RELEASE / whu_cd.OFFICIAL


def _copy(base: Path, tmp: Path) -> Path:
    return shutil.copytree(base, tmp / whu_cd.OFFICIAL)


def _check_task(root: Path, split: str | None = None, **options):
    catalog = get_catalog()
    info = catalog.tasks.get("whu-cd")
    task = info.load_task_class()(info, catalog.datasets.get("whu-cd"), list(info.modalities))
    spec = RunSpec(backbone="resnet50-tiny", task="whu-cd", data_root=str(root), split=split,
                   options=dict(tile=TILE, **options)).resolved_for(info)
    return task.check_data(root, spec)


def test_the_fixture_is_the_release_layout_with_spaces_and_learnable_changes(base):
    for year in whu_cd.YEARS:
        for split in ("train", "test"):
            assert (base / year / "whole_image" / split / "image" / f"{year}_{split}.tif").is_file()
            assert (base / year / "splited_images" / split / "image" / "0_0.tif").is_file()
    label = io.read_raster(base / "change_label" / "train" / "change_label.tif")[..., 0]
    assert label.shape == SIZE and set(np.unique(label).tolist()) == {0, 255}
    a, b = (io.read_raster(base / y / "whole_image/train/image" / f"{y}_train.tif").astype(int) for y in whu_cd.YEARS)
    diff = np.abs(a - b).mean(-1)
    assert diff[label == 255].mean() > 3 * diff[label == 0].mean()
    assert 0.05 < (label == 255).mean() < 0.5


@pytest.mark.parametrize("level", ["parent", "release", "image-data"])
def test_the_official_layout_is_found_from_each_root_level(out, base, level):
    root = {"parent": out, "release": out / whu_cd.RELEASE, "image-data": base}[level]
    data = whu_cd.check(root, tile=TILE)
    assert data["split_protocol"] == "official" and Path(data["root"]) == base
    assert sorted(data["splits"]) == ["test", "train"] and data["label_map"] == {0: 0, 255: 1}
    assert "official train/test areas" in data["protocol_note"] and "64 px windows" in data["protocol_note"]
    sample = data["splits"]["test"][0]
    assert sample["id"].endswith("2012_test.tif#0_0") and sample["window"] == [0, 0, TILE, TILE]
    assert Path(sample["dates"][1][0]).name == "2016_test.tif" and Path(sample["label"]).name == "change_label.tif"


def test_windows_cover_each_scene_exactly_once(base):
    assert whu_cd.windows(5, 7, 3) == [[0, 0, 3, 3], [0, 3, 3, 3], [0, 6, 3, 1],
                                       [3, 0, 2, 3], [3, 3, 2, 3], [3, 6, 2, 1]]
    data = whu_cd.check(base, tile=TILE)
    for split, samples in data["splits"].items():
        h, w, _ = io.raster_shape(samples[0]["label"])
        cover = np.zeros((h, w), int)
        for s in samples:
            y, x, wh, ww = s["window"]
            cover[y:y + wh, x:x + ww] += 1
        assert sum(s["window"][2] * s["window"][3] for s in samples) == h * w
        assert (cover == 1).all(), split
    assert (h, w) == (SIZE[0], SIZE[1] // 2)  # the test scene
    assert len(data["splits"]["test"]) == 5 * 3 and data["splits"]["test"][-1]["window"] == [256, 128, 44, 2]


def test_windowed_reads_match_the_whole_raster_and_stay_inside(base, monkeypatch):
    path = base / "2016" / "whole_image" / "test" / "image" / "2016_test.tif"
    whole = io.read_raster(path)
    assert np.array_equal(io.read_raster(path, (10, 20, 30, 40)), whole[10:40, 20:60])
    assert io.read_date([path], (10, 20, 30, 40)).shape == (30, 40, 3)
    with pytest.raises(DataLayoutError, match=r"2016_test\.tif: window \(y=290, x=0, h=20, w=5\) outside the 300x130"):
        io.read_raster(path, (290, 0, 20, 5))
    monkeypatch.setattr(io, "STRIP_ROWS", 7)  # the label scan in strips finds what one read finds
    label = base / "change_label" / "test" / "change_label.tif"
    assert io.raster_values(label) == set(np.unique(io.read_raster(label)).tolist()) == {0, 255}


def test_the_protocol_option_chooses_when_both_layouts_are_there(tmp_path, base):
    whu_cd.write_fixture(tmp_path, seed=0)
    shutil.copytree(base, tmp_path / whu_cd.RELEASE / whu_cd.OFFICIAL)
    auto = whu_cd.check(tmp_path)
    assert auto["split_protocol"] == "repack" and "-o split_protocol=official" in auto["protocol_note"]
    assert whu_cd.check(tmp_path, split_protocol="official", tile=TILE)["split_protocol"] == "official"
    shutil.rmtree(tmp_path / whu_cd.RELEASE)
    with pytest.raises(DataLayoutError, match="no official WHU-CD release"):
        whu_cd.check(tmp_path, split_protocol="official")
    with pytest.raises(SpecError, match="split_protocol=both: expected one of auto, official, repack"):
        whu_cd.check(tmp_path, split_protocol="both")
    with pytest.raises(SpecError, match="tile=0"):
        whu_cd.check(base, tile=0)


def test_a_missing_change_label_is_named(base, tmp_path):
    root = _copy(base, tmp_path)
    shutil.rmtree(root / "change_label" / "test")
    with pytest.raises(DataLayoutError, match=r"change_label/test: missing folder \(the test change mask"):
        whu_cd.check(tmp_path)


def test_two_scenes_in_one_whole_image_folder_are_named(base, tmp_path):
    root = _copy(base, tmp_path)
    folder = root / "2016" / "whole_image" / "train" / "image"
    shutil.copy(folder / "2016_train.tif", folder / "2016_train_copy.TIF")
    with pytest.raises(DataLayoutError, match=r"2016/whole_image/train/image: 2 \.tif files "
                                              r"\(2016_train\.tif, 2016_train_copy\.TIF\); expected exactly one"):
        whu_cd.check(tmp_path)
    (folder / "2016_train_copy.TIF").unlink()
    (folder / "2016_train.tif").unlink()
    with pytest.raises(DataLayoutError, match=r"2016/whole_image/train/image: 0 \.tif files; expected exactly one"):
        whu_cd.check(tmp_path)


def test_scenes_of_different_size_or_bands_are_named(base, tmp_path):
    root = _copy(base, tmp_path)
    scene = root / "2016" / "whole_image" / "test" / "image" / "2016_test.tif"
    whu_cd._write_tif(scene, np.zeros((300, 128, 3), np.uint8))
    with pytest.raises(DataLayoutError, match=r"differ in size: .*2012_test\.tif 300x130, .*2016_test\.tif 300x128, "
                                              r".*change_label\.tif 300x130"):
        whu_cd.check(tmp_path)
    whu_cd._write_tif(scene, np.zeros((300, 130), np.uint8))
    with pytest.raises(DataLayoutError, match=r"2016_test\.tif: 1 band\(s\), expected 3"):
        whu_cd.check(tmp_path)


def test_label_values_are_0_255_or_0_1_and_recorded(base, tmp_path):
    root = _copy(base, tmp_path)
    labels = {s: root / "change_label" / s / "change_label.tif" for s in ("train", "test")}
    masks = {s: io.read_raster(p)[..., 0] for s, p in labels.items()}
    for s, p in labels.items():
        whu_cd._write_tif(p, (masks[s] > 0).astype(np.uint8))
    data = whu_cd.check(tmp_path)
    assert data["label_map"] == {0: 0, 1: 1} and "labels 0/1" in data["protocol_note"]
    whu_cd._write_tif(labels["test"], masks["test"])
    with pytest.raises(DataLayoutError, match=r"change labels differ in encoding: .*train/change_label\.tif 0/1, "
                                              r".*test/change_label\.tif 0/255"):
        whu_cd.check(tmp_path)
    bad = masks["train"].copy()
    bad[0, 0] = 7
    whu_cd._write_tif(labels["train"], bad)
    with pytest.raises(DataLayoutError, match=r"train/change_label\.tif: label values \[0, 7, 255\] not allowed; "
                                              r"expected only 0, 255 \(or only 0, 1\)"):
        whu_cd.check(tmp_path)


def test_the_official_release_has_no_val_split(out):
    with pytest.raises(DataLayoutError, match=r"no 'val' split \(has train, test\); the official WHU-CD release "
                                              r"has no val split.*split_protocol=repack"):
        _check_task(out, split="val")
    data = _check_task(out)
    assert data.test is data.fact("splits")["test"] and data.train is data.fact("splits")["train"]


# -- one run on the windows, and its whole-scene change map scored back ------------------------
@pytest.fixture(scope="module")
def run(out, tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    spec = RunSpec(backbone="resnet50-tiny", task="whu-cd", data_root=str(out), work_dir=str(work),
                   max_iters=30, batch_size=4, lr=4e-3,
                   options=dict(tile=TILE, crop_size=64, fusion="abs_diff"))
    outcome = run_evaluation(spec, results_dir=tmp_path_factory.mktemp("results"), show_progress=False)
    assert outcome.status == "ok", outcome.row["error"]
    return outcome.row, work, json.loads((work / "metrics.json").read_text())


def _iou(pred: np.ndarray, gt: np.ndarray) -> float:
    tp, fp, fn = ((pred > 0) & (gt > 0)).sum(), ((pred > 0) & (gt == 0)).sum(), ((pred == 0) & (gt > 0)).sum()
    return 100 * tp / (tp + fp + fn)


@pytest.mark.slow
def test_a_run_on_the_windows_beats_chance_and_records_the_official_protocol(run, base):
    row, work, metrics = run
    gt = io.read_raster(base / "change_label" / "test" / "change_label.tif")[..., 0]
    p = (gt == 255).mean()
    assert row["value"] > 40 > 100 * p / (1 + p)  # chance IoU (random guess at the change rate) is about 17
    assert "split protocol: official train/test areas (whole-split scenes), 64 px windows" in row["adapter"]
    assert "eval on full windows" in row["adapter"]
    assert json.loads(row["options"])["split_protocol"] == "auto" and row["split"] == "test"
    assert sorted(p.name for p in (work / "predictions").iterdir()) == ["change_label.tif"]
    pred = io.read_raster(work / "predictions" / "change_label.tif")[..., 0]
    assert pred.shape == gt.shape and set(np.unique(pred).tolist()) <= {0, 255}
    assert row["value"] == pytest.approx(_iou(pred, gt), abs=0.01) == metrics["IoU.changed"]
    import rasterio

    with rasterio.open(work / "predictions" / "change_label.tif") as m, \
            rasterio.open(base / "change_label" / "test" / "change_label.tif") as label:
        assert (m.crs, m.transform) == (label.crs, label.transform)  # the label's georeferencing


def _score(out: Path, preds: Path, tmp: Path) -> dict:
    row, _ = score_predictions("whu-cd", out, preds, "m", results_dir=tmp / "results", work_dir=tmp / "score",
                               options=dict(tile=TILE), force=True)
    return row


@pytest.mark.slow
def test_the_runs_scene_map_scores_the_runs_value_and_bad_maps_are_named(run, out, base, tmp_path):
    row, work, _ = run
    preds = shutil.copytree(work / "predictions", tmp_path / "preds")
    assert _score(out, preds, tmp_path)["value"] == row["value"]
    gt = io.read_raster(base / "change_label" / "test" / "change_label.tif")[..., 0]
    from PIL import Image

    (preds / "change_label.tif").unlink()
    Image.fromarray(gt).save(preds / "change_label.png")  # a perfect PNG of the whole scene
    assert _score(out, preds, tmp_path)["value"] == 100.0
    Image.fromarray(gt[:, :128]).save(preds / "change_label.png")
    with pytest.raises(PredictionError, match=r"change_label\.png: size \(300, 128\); the label is \(300, 130\)"):
        _score(out, preds, tmp_path)
    (preds / "change_label.png").unlink()
    with pytest.raises(PredictionError, match=r"missing prediction change_label\.png \(and 14 more of 15 samples\)"):
        _score(out, preds, tmp_path)
