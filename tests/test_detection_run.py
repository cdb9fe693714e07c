"""Detection runs in-process on the DIOR fixture: Oriented R-CNN (DIOR-R) with skysense-tiny and
Faster R-CNN (DIOR) with mars-tiny reach an mAP far above chance, equal to the library's mAP
function recomputed on the saved predictions."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from rsbench.results import leaderboard
from rsbench.run.runner import run_evaluation
from rsbench.run.spec import RunSpec
from rsbench_detection import dior

pytestmark = pytest.mark.slow
#: Tiny heads, 64 px inputs and one eval worker so each run takes seconds on 2 shared cores.
SMALL = dict(img_size=64, anchor_scale=4, neck_channels=32, roi_fc_channels=128, rpn_proposals=300,
             roi_samples=128, nproc=1)


@pytest.fixture(scope="module")
def dior_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dior.write_fixture(tmp_path_factory.mktemp("dior"), seed=0)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """One intra-op thread for this module (see conftest)."""


def _run(task: str, backbone: str, root: Path, tmp: Path, **spec_kwargs):
    spec = RunSpec(backbone=backbone, task=task, data_root=str(root), max_iters=30, lr=2e-3, batch_size=4,
                   work_dir=str(tmp / "work"), options=dict(SMALL), **spec_kwargs)
    return spec, run_evaluation(spec, results_dir=tmp / "results", show_progress=False)


@pytest.fixture(scope="module")
def dior_r_run(dior_root, tmp_path_factory):
    return _run("dior-r", "skysense-tiny", dior_root, tmp_path_factory.mktemp("dior-r"))


@pytest.fixture(scope="module")
def dior_run(dior_root, tmp_path_factory):
    return _run("dior", "mars-tiny", dior_root, tmp_path_factory.mktemp("dior-hbb"))


def test_a_channels_last_cnn_baseline_detects_as_well(dior_root, tmp_path):
    """resnet50-tiny computing channels-last (``--memory-format auto``): its feature maps must
    reach mmcv's RoIAlign as NCHW, else the detector trains on scrambled features (mAP ~ 0)."""
    spec, outcome = _run("dior-r", "resnet50-tiny", dior_root, tmp_path, memory_format="auto")
    assert outcome.status == "ok", outcome.row["error"]
    assert outcome.row["value"] > 25
    assert "RSBChannelsLastHook" in (tmp_path / "work" / "config.py").read_text()


def test_oriented_rcnn_on_dior_r_beats_chance_by_far(dior_r_run):
    spec, outcome = dior_r_run
    assert outcome.status == "ok", outcome.row["error"]
    assert outcome.row["value"] > 25  # random boxes score ~0 mAP at IoU 0.5
    assert outcome.row["metric"] == "mAP50" and outcome.row["bad_samples"] == 0
    assert "FPN([16, 32, 64, 128]" in outcome.row["adapter"]


def test_dior_r_value_is_mmrotates_eval_rbbox_map_on_the_same_predictions(dior_r_run):
    from mmrotate.evaluation.functional import eval_rbbox_map

    spec, outcome = dior_r_run
    dump = pickle.loads((Path(spec.work_dir) / "predictions.pkl").read_bytes())
    assert len(dump["gts"]) == 6 and dump["use_07_metric"] is True
    mean_ap, _ = eval_rbbox_map(dump["dets"], list(dump["gts"]), iou_thr=0.5, use_07_metric=True,
                                box_type="rbox", dataset=dump["classes"], nproc=1)
    assert outcome.row["value"] == round(100 * mean_ap, 4)


def test_faster_rcnn_on_dior_beats_chance_and_equals_mmdets_eval_map(dior_run):
    from mmdet.evaluation.functional import eval_map

    spec, outcome = dior_run
    assert outcome.status == "ok", outcome.row["error"]
    assert outcome.row["value"] > 20
    dump = pickle.loads((Path(spec.work_dir) / "predictions.pkl").read_bytes())
    mean_ap, _ = eval_map(list(dump["dets"]), list(dump["gts"]), iou_thr=0.5, dataset=dump["classes"],
                          eval_mode="11points", use_legacy_coordinate=True, nproc=1)
    assert outcome.row["value"] == round(100 * mean_ap, 4)
    row = leaderboard.read_rows(Path(spec.work_dir).parent / "results" / "leaderboard.csv")[0]
    assert row["task"] == "dior" and row["fixture"] == "True"


def test_a_backbone_without_rgb_is_skipped_with_a_row(dior_root, tmp_path):
    outcome = run_evaluation(RunSpec(backbone="test-resnet18-nir", task="dior-r", data_root=str(dior_root)),
                             results_dir=tmp_path, show_progress=False)
    assert outcome.status == "skipped" and outcome.row["error"].startswith("skipped: modality")
