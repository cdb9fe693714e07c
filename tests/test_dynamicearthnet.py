"""DynamicEarthNet (dyna-pla, dyna-s2, dyna-mm): the official layout and its errors, band
selection and time-series configs, and in-process runs (a single-image baseline through the
temporal mean reduction; SkySense given the Planet/S2/S1 series with real dates and lat/lon)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image

from rsbench.errors import DataLayoutError, SpecError
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.results import leaderboard
from rsbench.run.runner import run_evaluation
from rsbench.run.spec import RunSpec
from rsbench_segmentation import dynamicearthnet as den

TASKS = ("dyna-pla", "dyna-s2", "dyna-mm")
CUBE = "1330_3107_13"  # train cube of the fixture, month 2018-03


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return get_catalog().datasets.get("dyna-mm").write_fixture(tmp_path_factory.mktemp("dyna"), seed=0)


@pytest.fixture()
def copy(root: Path, tmp_path: Path) -> Path:
    shutil.copytree(root, tmp_path / "d")
    return tmp_path / "d"


def _task(name: str, modalities: list[str]) -> Any:
    catalog = get_catalog()
    info = catalog.tasks.get(name)
    return info.load_task_class()(info, catalog.datasets.get(name), modalities)


def test_three_tasks_are_registered_with_the_modalities_they_provide():
    catalog = get_catalog()
    assert {t: catalog.tasks.get(t).metric for t in TASKS} == dict.fromkeys(TASKS, "mIoU")
    assert catalog.tasks.get("dyna-pla").modalities == {"hr": ("B", "G", "R", "NIR")}
    assert set(catalog.tasks.get("dyna-mm").modalities) == {"hr", "s2", "s1"}
    assert len(catalog.tasks.get("dyna-s2").modalities["s2"]) == 12
    assert catalog.datasets.get("dyna-s2").classes == den.CLASSES and len(den.CLASSES) == 6


def test_fixture_is_the_official_layout(root: Path):
    lines = (root / den.SPLITS_DIR / "train.txt").read_text().splitlines()
    planet, label, month = lines[0].split()
    assert planet == "/reprocess-cropped/UTM-24000/10N/26E-183N/1330_3107_13/PF-SR" and month == "2018-03"
    assert label == ("/labels/1330_3107_13_10N/Labels/Raster/10N-121W-39N-L3H-SR/"
                     "10N-121W-39N-L3H-SR-2018_03_01.tif")
    frame = root / "planet/10N/26E-183N/1330_3107_13/PF-SR/2018-03-05.tif"
    with rasterio.open(frame) as src:
        assert (src.count, src.dtypes[0], src.width) == (4, "uint16", 64) and src.crs.to_epsg() == 32610
    with rasterio.open(root / label.lstrip("/")) as src:
        onehot = src.read()
    assert onehot.shape == (7, 64, 64) and set(np.unique(onehot)) == {0, 255}
    assert (onehot == 255).sum(axis=0).min() == 1  # exactly one class per pixel
    assert rasterio.open(root / f"sentinel2/{CUBE}/{CUBE}_2018_03.tif").count == 12
    assert rasterio.open(root / f"sentinel1/{CUBE}/{CUBE}_2018_03.tif").count == 8


def test_reader_builds_time_series_with_dates_and_geo(root: Path):
    summary = den.check_mm(root)
    assert {k: len(v) for k, v in summary["splits"].items()} == {"train": 12, "val": 4, "test": 2}
    sample = summary["splits"]["train"][0]
    assert sample["name"] == f"{CUBE}_2018-03"
    # 2018-03-01 is day 60; weekly days 01, 05, 10, 15, 20, 25; composites dated the 15th
    assert sample["dates"] == {"hr": [60, 64, 69, 74, 79, 84], "s2": [74], "s1": [74]}
    lat, lon = sample["latlon"]
    assert 39 < lat < 40 and -122 < lon < -121  # the label scene says 10N-121W-39N
    arrays, label = den.load(sample, ["hr", "s2", "s1"])
    assert {m: a.shape for m, a in arrays.items()} == {"hr": (64, 64, 24), "s2": (64, 64, 12), "s1": (64, 64, 8)}
    with rasterio.open(sample["modalities"]["hr"][1]) as src:
        assert np.array_equal(arrays["hr"][..., 4:8], src.read().transpose(1, 2, 0))  # frame 2, file order
    with rasterio.open(sample["label"]) as src:
        onehot = src.read()
    snow = onehot[6] == 255
    assert snow.any() and (label[snow] == 255).all()
    assert np.array_equal(label[~snow], np.argmax(onehot, axis=0)[~snow])
    assert den.check_pla(root)["splits"]["train"][0]["modalities"].keys() == {"hr"}


def test_label_decoding_ignores_non_one_hot_pixels_and_rejects_other_values():
    onehot = np.zeros((7, 2, 2), np.uint8)
    onehot[1, 0, 0] = onehot[5, 0, 1] = onehot[6, 1, 0] = 255
    onehot[[2, 3], 1, 1] = 255  # two classes at one pixel: ignored, as snow (1, 0)
    assert den.decode_label(onehot, "x.tif").tolist() == [[1, 5], [255, 255]]
    onehot[0, 0, 0] = 7
    with pytest.raises(DataLayoutError, match=r"x.tif: value 7 in band 1 at \(x=0, y=0\)"):
        den.decode_label(onehot, "x.tif")


def test_single_sampling_uses_day_one(root: Path):
    train, val = den.partition(den.check_pla(root), "val", {"temporal": "single"})
    assert [len(s["modalities"]["hr"]) for s in train + val] == [1] * 16
    assert train[0]["dates"]["hr"] == [60] and train[0]["modalities"]["hr"][0].endswith("2018-03-01.tif")
    with pytest.raises(DataLayoutError, match="temporal=daily: expected one of weekly, single"):
        den.partition(den.check_pla(root), "val", {"temporal": "daily"})


def test_wrong_band_count_names_the_file(copy: Path):
    frame = copy / "planet/10N/26E-183N/1330_3107_13/PF-SR/2018-03-10.tif"
    with rasterio.open(frame, "w", driver="GTiff", width=64, height=64, count=3, dtype="uint16") as dst:
        dst.write(np.zeros((3, 64, 64), np.uint16))
    sample = den.check_pla(copy)["splits"]["train"][0]
    with pytest.raises(DataLayoutError, match=r"2018-03-10.tif: expected 4 band\(s\), found 3"):
        den.load(sample, ["hr"])


def test_missing_month_files_name_the_file(copy: Path):
    (copy / "planet/10N/26E-183N/1330_3107_13/PF-SR/2018-03-05.tif").unlink()
    with pytest.raises(DataLayoutError, match="2018-03-05.tif: missing Planet frame of month 2018-03"):
        den.check_pla(copy)
    assert den.check_s2(copy)["splits"]["train"]  # dyna-s2 does not read Planet frames
    (copy / f"sentinel1/{CUBE}/{CUBE}_2018_03.tif").unlink()
    with pytest.raises(DataLayoutError, match=f"{CUBE}_2018_03.tif: missing sentinel1 composite of month 2018-03"):
        den.check(copy, ("s1",))


def test_split_files_naming_absent_files_fail_with_the_line(copy: Path):
    splits = copy / den.SPLITS_DIR
    val = (splits / "val.txt").read_text()
    (splits / "val.txt").write_text(val.replace("2018_03_01.tif", "2018_04_01.tif", 1))
    with pytest.raises(DataLayoutError, match=r"val.txt:1: names label /labels/.*2018_04_01.tif, absent"):
        den.check_pla(copy)
    (splits / "val.txt").write_text(val.replace("/PF-SR", "/PF-XX", 1))
    with pytest.raises(DataLayoutError, match=r"val.txt:1: names planet dir .*/PF-XX, absent"):
        den.check_pla(copy)
    (splits / "val.txt").write_text("just two fields\n")
    with pytest.raises(DataLayoutError, match=r"val.txt:1: expected '<planet dir> <label tif> <YYYY-MM>'"):
        den.check_pla(copy)
    (splits / "train.txt").unlink()
    with pytest.raises(DataLayoutError, match="train.txt: missing split file"):
        den.check_pla(copy)


def test_rgb_backbone_gets_r_g_b_of_every_frame_and_skysense_the_sentinel_bands(root: Path, tmp_path: Path):
    catalog = get_catalog()
    task = _task("dyna-pla", ["hr"])
    spec = RunSpec("resnet50-tiny", "dyna-pla").resolved_for(task.info)
    data = task.check_data(root, spec)
    resnet = catalog.backbones.get("resnet50-tiny")
    cfg = task.build_config(spec, resnet, data, tmp_path)
    load = cfg["train_dataloader"]["dataset"]["pipeline"][0]
    assert load["channels"]["hr"][:6] == [2, 1, 0, 6, 5, 4] and len(load["channels"]["hr"]) == 18
    assert cfg["model"]["modalities"] == [["hr", 3, 6]] and cfg["model"]["temporal"] == "mean"
    assert cfg["model"]["data_preprocessor"]["mean"][:3] == [1042.59, 915.62, 671.26]  # R, G, B
    assert len(cfg["model"]["data_preprocessor"]["std"]) == 18
    with pytest.raises(SpecError, match="temporal_reduction=median"):
        task.temporal(resnet, {"temporal_reduction": "median"})

    mm = _task("dyna-mm", ["hr", "s2", "s1"])
    spec = RunSpec("skysense-tiny", "dyna-mm").resolved_for(mm.info)
    data = mm.check_data(root, spec)
    cfg = mm.build_config(spec, catalog.backbones.get("skysense-tiny"), data, tmp_path)
    assert cfg["model"]["modalities"] == [["hr", 3, 6], ["s2", 10, 1], ["s1", 2, 1]]
    assert cfg["model"]["temporal"] == "native"
    assert cfg["train_dataloader"]["dataset"]["pipeline"][0]["channels"]["s2"] == list(range(1, 9)) + [10, 11]
    assert "dates" in cfg["train_dataloader"]["dataset"]["pipeline"][-1]["meta_keys"]
    s2_mean = data.fact("normalization")["s2"][0]
    assert len(s2_mean) == 12 and 200 < min(s2_mean) and max(s2_mean) < 2600  # measured on the fixture


def test_a_backbone_without_the_tasks_modality_is_skipped(root: Path, tmp_path: Path):
    outcome = run_evaluation(RunSpec(backbone="resnet50-tiny", task="dyna-s2", data_root=str(root)),
                             results_dir=tmp_path, show_progress=False)
    assert outcome.status == "skipped" and "s2" in outcome.row["error"]


# -- in-process runs ----------------------------------------------------------------
#: (task, backbone, overrides, options, floor). Chance: a constant prediction scores an mIoU of
#: about (majority share) / 6 < 10 here.
RUNS = {
    "dyna-pla": ("resnet50-tiny", dict(max_iters=60, lr=1e-2), dict(crop_size=64, batch_size=2), 45.0),
    "dyna-mm": ("skysense-tiny", dict(max_iters=60, lr=5e-3), dict(crop_size=64, batch_size=2), 30.0),
}


@pytest.fixture(scope="module")
def runs(root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both runs, with SkySense's forward wrapped to record what it receives."""
    from rsbench_skysense.model import SkySenseBackbone as SkySense

    seen: list[dict[str, Any]] = []
    forward = SkySense.forward

    def recording(self, inputs):  # noqa: ANN001, ANN202
        seen.append({k: (v if k in ("dates", "latlon") else tuple(v.shape)) for k, v in inputs.items()})
        return forward(self, inputs)

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    done: dict[str, Any] = {"seen": seen}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SkySense, "forward", recording)
        for task, (backbone, overrides, options, _) in RUNS.items():
            results = tmp_path_factory.mktemp(f"results-{task}")
            spec = RunSpec(backbone=backbone, task=task, data_root=str(root), options=options,
                           work_dir=str(tmp_path_factory.mktemp(f"work-{task}")), **overrides)
            done[task] = (spec, results, run_evaluation(spec, results_dir=results, show_progress=False))
    torch.set_num_threads(before)
    return done


def _recompute(spec: RunSpec) -> float:
    """mIoU from the saved prediction PNGs and labels read afresh, through mmseg's IoUMetric."""
    from mmseg.evaluation import IoUMetric

    work = Path(spec.work_dir)
    areas = []
    for sample in json.loads((work / "splits" / "test.json").read_text()):
        _, label = den.load(sample, [])
        pred = np.asarray(Image.open(work / "predictions" / f"{sample['name']}.png"))
        areas.append(IoUMetric.intersect_and_union(torch.from_numpy(pred.astype(np.int64)),
                                                   torch.from_numpy(label.astype(np.int64)), 6, 255))
    per_class = IoUMetric.total_area_to_metrics(*[sum(a) for a in zip(*areas)], ["mIoU"])
    return float(np.round(np.nanmean(per_class["IoU"]) * 100, 2))


@pytest.mark.parametrize("task", list(RUNS))
def test_run_beats_chance_by_far_and_equals_mmsegs_metric(runs, task):
    spec, results, outcome = runs[task]
    assert outcome.status == "ok", outcome.row["error"]
    assert outcome.row["value"] > RUNS[task][3]
    assert outcome.row["value"] == pytest.approx(_recompute(spec), abs=1e-4)
    rows = leaderboard.read_rows(results / "leaderboard.csv")
    assert len(rows) == 1 and rows[0]["fixture"] == "True" and rows[0]["metric"] == "mIoU"
    assert len(json.loads((Path(spec.work_dir) / "splits" / "test.json").read_text())) == 4  # val: 2 cubes x 2 months


def test_rows_record_the_temporal_treatment_and_band_statistics(runs):
    pla = leaderboard.read_rows(runs["dyna-pla"][1] / "leaderboard.csv")[0]
    assert "hr T=6 bands R,G,B" in pla["adapter"] and "temporal_reduction=mean" in pla["adapter"]
    assert pla["normalization"].startswith("hr: mean=[1042.59, 915.62, 671.26]")
    mm = leaderboard.read_rows(runs["dyna-mm"][1] / "leaderboard.csv")[0]
    assert "native (frames, day-of-year dates and (lat, lon)" in mm["adapter"]
    assert "s2: mean=[" in mm["normalization"] and "s1: mean=[" in mm["normalization"]


def test_skysense_received_the_series_with_real_dates_and_latlon(runs):
    seen = runs["seen"]
    assert seen, "SkySense was never called"
    first = seen[0]
    assert first["hr"] == (2, 6, 3, 64, 64) and first["s2"] == (2, 1, 10, 64, 64) and first["s1"] == (2, 1, 2, 64, 64)
    train_dates = {tuple(d) for call in seen for d in call["dates"]["hr"].tolist()}
    assert {(60, 64, 69, 74, 79, 84), (182, 186, 191, 196, 201, 206)} <= train_dates  # 2018-03, 2019-07
    lats = {round(v, 1) for call in seen for v in call["latlon"][:, 0].tolist()}
    assert 39.8 in lats  # cube 1330_3107_13
