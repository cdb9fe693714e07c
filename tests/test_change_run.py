"""End-to-end change-detection runs in-process on the fixtures: a tiny baseline (siamese),
MaRS (optical pre + SAR post through its own fusion) and SkySense (dates through its temporal
path). Each headline value is recomputed from the saved prediction PNGs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.run.runner import run_evaluation
from rsbench.run.spec import RunSpec
from rsbench_change.io import read_raster
from rsbench_change.predictions import prediction_stem

pytestmark = pytest.mark.slow
FAST = dict(max_iters=50, batch_size=4, lr=4e-3)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """One intra-op thread for this module (see conftest)."""


def _run(tmp_path_factory, task: str, backbone: str, **options):
    root = get_catalog().datasets.get(get_catalog().tasks.get(task).dataset).write_fixture(
        tmp_path_factory.mktemp(task), seed=0)
    work = tmp_path_factory.mktemp("work")
    spec = RunSpec(backbone=backbone, task=task, data_root=str(root), work_dir=str(work),
                   options=dict(crop_size=64, **options), **FAST)
    outcome = run_evaluation(spec, results_dir=tmp_path_factory.mktemp("results"), show_progress=False)
    assert outcome.status == "ok", outcome.row["error"]
    return outcome.row, work, json.loads((work / "metrics.json").read_text())


def _confusion(work: Path, label_map: dict[int, int] | None, n: int, task: str) -> np.ndarray:
    """Confusion matrix (gt x pred) over all test images from the saved predictions (written in
    the label's encoding, named as the task's submission)."""
    cm = np.zeros((n, n), np.int64)
    for sample in json.loads((work / "splits" / "test.json").read_text()):
        pred = np.array(Image.open(work / "predictions" / f"{prediction_stem(task, sample['id'])}.png")).astype(np.int64)
        gt = read_raster(sample["label"])[..., 0].astype(np.int64)
        if label_map:
            gt = np.vectorize(label_map.get)(gt)
            pred = np.vectorize(label_map.get)(pred)
        cm += np.bincount(gt.ravel() * n + pred.ravel(), minlength=n * n).reshape(n, n)
    return cm


@pytest.fixture(scope="module")
def levir(tmp_path_factory):
    return _run(tmp_path_factory, "levir-cd", "resnet50-tiny", fusion="abs_diff")


def test_levir_baseline_beats_chance_by_far_and_is_the_f1_of_its_predictions(levir):
    row, work, metrics = levir
    cm = _confusion(work, {0: 0, 255: 1}, 2, "levir-cd")
    tp, fp, fn = cm[1, 1], cm[0, 1], cm[1, 0]
    f1 = 200 * tp / (2 * tp + fp + fn)
    assert row["value"] == pytest.approx(f1, abs=0.01) == metrics["Fscore.changed"]
    assert row["value"] > 60  # chance (random guess at the 19 % change rate) is about 28
    assert row["metric"] == "F1 (change)" and "F1 of the change class" in row["metric_definition"]
    assert row["adapter"].startswith("siamese: shared backbone per date, FeatureFusionNeck abs_diff")
    assert "eval on full images" in row["adapter"] and "ImageNet" in row["normalization"]


def test_whu_iou_on_32px_windows_is_the_iou_of_its_predictions(tmp_path_factory):
    row, work, metrics = _run(tmp_path_factory, "whu-cd", "resnet50-tiny", fusion="abs_diff", eval_crop=32)
    cm = _confusion(work, {0: 0, 255: 1}, 2, "whu-cd")
    tp, fp, fn = cm[1, 1], cm[0, 1], cm[1, 0]
    assert row["value"] == pytest.approx(100 * tp / (tp + fp + fn), abs=0.01) == metrics["IoU.changed"]
    assert metrics["Fscore.changed"] == pytest.approx(200 * tp / (2 * tp + fp + fn), abs=0.01)
    assert row["value"] > 40  # chance IoU is about 16
    assert "eval on 32 px non-overlapping crops" in row["adapter"]
    from mmengine.config import Config
    assert Config.fromfile(str(work / "config.py")).model.test_cfg == dict(mode="slide", crop_size=(32, 32),
                                                                           stride=(32, 32))


def test_mars_takes_optical_before_and_sar_after_in_one_call(tmp_path_factory):
    row, work, metrics = _run(tmp_path_factory, "dfc25-t2", "mars-tiny")
    cm = _confusion(work, None, 4, "dfc25-t2")
    iou = np.diag(cm) / (cm.sum(0) + cm.sum(1) - np.diag(cm))
    assert row["value"] == pytest.approx(100 * np.nanmean(iou), abs=0.01)
    assert row["value"] > 40  # four classes; predicting background everywhere gives about 19
    assert row["adapter"].startswith("one multimodal call: hr=date 1, sar=date 2")


def test_skysense_reads_the_oscd_dates_through_its_temporal_path(tmp_path_factory):
    row, work, metrics = _run(tmp_path_factory, "oscd", "skysense-tiny", temporal="native")
    cm = _confusion(work, {0: 0, 255: 1}, 2, "oscd")
    tp, fp, fn = cm[1, 1], cm[0, 1], cm[1, 0]
    assert row["value"] == pytest.approx(200 * tp / (2 * tp + fp + fn), abs=0.01)
    assert row["value"] > 50
    assert row["adapter"].startswith("native temporal path of skysense-tiny over the dates with day of year")
    assert "per-band mean/std" in row["normalization"]


def test_submission_writes_predictions_for_the_unlabelled_list(tmp_path_factory):
    root = get_catalog().datasets.get("dfc25-t2").write_fixture(tmp_path_factory.mktemp("bright"), seed=0)
    work = tmp_path_factory.mktemp("work")
    spec = RunSpec(backbone="resnet50-tiny", task="dfc25-t2", data_root=str(root), work_dir=str(work), split="submission",
                   max_iters=2, batch_size=2, options=dict(crop_size=64))
    outcome = run_evaluation(spec, results_dir=tmp_path_factory.mktemp("results"), show_progress=False)
    assert outcome.status == "ok" and outcome.row["split"] == "submission"
    assert sorted(p.name for p in (work / "predictions").iterdir()) == [
        "val-disaster_00000001_building_damage.png", "val-disaster_00000002_building_damage.png"]
    assert "SAR replicated to R,G,B" in outcome.row["adapter"]


@pytest.fixture(scope="module")
def oscd_root(tmp_path_factory):
    return get_catalog().datasets.get("oscd").write_fixture(tmp_path_factory.mktemp("oscd"), seed=0)


def test_skysense_s2_path_finds_oscd_change_in_the_smoke_setting(tmp_path_factory, oscd_root):
    """The suite's smoke run (the task's declared smoke_iters/smoke_options, siamese: SkySense's
    S2 ViT per date). Under plain CE it predicted no change at all (F1 undefined); the task's
    default ``class_weight=balanced`` weights the rare change class by inverse pixel frequency."""
    info = get_catalog().tasks.get("oscd")
    work = tmp_path_factory.mktemp("work")
    spec = RunSpec(backbone="skysense-tiny", task="oscd", data_root=str(oscd_root), work_dir=str(work),
                   max_iters=info.smoke_iters, options={k: str(v) for k, v in info.smoke_options.items()})
    outcome = run_evaluation(spec, results_dir=tmp_path_factory.mktemp("results"), show_progress=False)
    assert outcome.status == "ok", outcome.row["error"]
    row = outcome.row
    cm = _confusion(work, {0: 0, 255: 1}, 2, "oscd")
    tp, fp, fn = cm[1, 1], cm[0, 1], cm[1, 0]
    assert row["value"] == pytest.approx(200 * tp / (2 * tp + fp + fn), abs=0.01)
    # About 15 % of the pixels change: a random guess at that rate gives F1 ~ 15, all-change ~ 26.
    assert row["value"] > 60
    assert row["adapter"].startswith("siamese: shared backbone per date")
    assert "Sentinel-2 shown as RGB" not in row["adapter"]  # SkySense reads the S2 bands themselves
    assert json.loads(row["options"])["class_weight"] == "balanced"
    # The recorded weights are the inverse pixel frequencies of the training change maps.
    train = json.loads((work / "splits" / "train.json").read_text())
    labels = [np.array(Image.open(s["label"])) // 255 for s in train]
    changed = sum(int(lab.sum()) for lab in labels) / sum(lab.size for lab in labels)
    found = re.search(r"class weights unchanged ([0-9.]+), changed ([0-9.]+) \(balanced", row["adapter"])
    assert found, row["adapter"]
    assert [float(w) for w in found.groups()] == pytest.approx([1 / (2 * (1 - changed)), 1 / (2 * changed)], abs=1e-4)


def test_oscd_class_weight_option_rejects_bad_weights(tmp_path_factory, oscd_root):
    from rsbench.errors import SpecError

    spec = RunSpec(backbone="resnet50-tiny", task="oscd", data_root=str(oscd_root), max_iters=1,
                   work_dir=str(tmp_path_factory.mktemp("work")), options=dict(class_weight="1,2,3"))
    with pytest.raises(SpecError, match="class_weight=1,2,3: expected none, balanced or 2 positive"):
        run_evaluation(spec, results_dir=tmp_path_factory.mktemp("results"), show_progress=False)
