"""The vertical slice in-process: a tiny baseline trained and evaluated on the AID fixture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rsbench.errors import CheckpointError, DataLayoutError
from rsbench.results import leaderboard
from rsbench.run.runner import run_evaluation
from rsbench.run.spec import RunSpec

pytestmark = pytest.mark.slow
CHANCE = 100 / 30


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """One intra-op thread for this module (see conftest)."""


@pytest.fixture(scope="module")
def first_run(aid_root, tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    spec = RunSpec(backbone="resnet50-tiny", task="aid", data_root=str(aid_root), max_iters=60,
                   work_dir=str(tmp_path_factory.mktemp("work")))
    return spec, results, run_evaluation(spec, results_dir=results, show_progress=False)


def test_training_beats_chance_by_far_and_writes_one_complete_row(first_run):
    spec, results, outcome = first_run
    row = outcome.row
    assert outcome.status == "ok", row["error"]
    assert row["value"] > 10 * CHANCE
    rows = leaderboard.read_rows(results / "leaderboard.csv")
    assert len(rows) == 1
    for column in leaderboard.COLUMNS:
        assert column in rows[0]
    assert rows[0]["fixture"] == "True" and rows[0]["metric"] == "OA"
    assert json.loads(rows[0]["versions"])["mmpretrain"] == "1.2.0"
    assert json.loads(rows[0]["options"])["train_ratio"] == 0.2
    assert (Path(spec.work_dir) / "config.py").is_file()


def test_the_value_is_mmpretrains_accuracy_on_the_saved_metrics(first_run):
    spec, _, outcome = first_run
    metrics = json.loads((Path(spec.work_dir) / "metrics.json").read_text())
    assert outcome.row["value"] == round(metrics["accuracy/top1"], 4)


def test_the_same_spec_is_skipped_then_forced_reruns_reproduce_the_metric(first_run):
    spec, results, outcome = first_run
    again = run_evaluation(spec, results_dir=results, show_progress=False)
    assert again.reused and again.row["run_id"] == outcome.row["run_id"]
    assert len(leaderboard.read_rows(results / "leaderboard.csv")) == 1
    forced = run_evaluation(spec, results_dir=results, force=True, show_progress=False)
    assert not forced.reused and forced.row["value"] == outcome.row["value"]
    assert len(leaderboard.read_rows(results / "leaderboard.csv")) == 2


def test_missing_or_wrong_data_root_fails_with_the_path_and_a_failed_row(tmp_path):
    results = tmp_path / "r"
    with pytest.raises(DataLayoutError, match="no such directory"):
        run_evaluation(RunSpec(backbone="resnet50-tiny", task="aid", data_root=str(tmp_path / "nope")),
                       results_dir=results, show_progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataLayoutError, match=r"empty: not the AID layout — missing class folder"):
        run_evaluation(RunSpec(backbone="resnet50-tiny", task="aid", data_root=str(tmp_path / "empty")),
                       results_dir=results, show_progress=False)
    rows = leaderboard.read_rows(results / "leaderboard.csv")
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert "no such directory" in rows[0]["error"]


def test_a_checkpoint_that_does_not_match_fails_clearly(aid_root, tmp_path):
    torch.save({"state_dict": {"conv.weight": torch.zeros(3)}}, tmp_path / "wrong.pth")
    spec = RunSpec(backbone="resnet50-tiny", task="aid", data_root=str(aid_root), max_iters=1,
                   checkpoint=str(tmp_path / "wrong.pth"), work_dir=str(tmp_path / "w"))
    with pytest.raises(CheckpointError, match="does not match"):
        run_evaluation(spec, results_dir=tmp_path / "r", show_progress=False)
    row = leaderboard.read_rows(tmp_path / "r" / "leaderboard.csv")[0]
    assert row["status"] == "failed" and "missing" in row["error"] and len(row["checkpoint_sha256"]) == 64


def test_a_backbone_whose_bands_the_task_lacks_is_skipped_with_a_row(aid_root, tmp_path):
    spec = RunSpec(backbone="test-resnet18-nir", task="aid", data_root=str(aid_root))
    outcome = run_evaluation(spec, results_dir=tmp_path, show_progress=False)
    assert outcome.status == "skipped" and outcome.row["error"].startswith("skipped: modality")
    assert "NIR" in outcome.row["error"]


def test_a_nan_loss_stops_the_run_with_a_failed_row(aid_root, tmp_path):
    spec = RunSpec(backbone="resnet50-tiny", task="aid", data_root=str(aid_root), max_iters=3, lr=1e30,
                   work_dir=str(tmp_path / "w"))
    with pytest.raises(FloatingPointError, match="training loss is (nan|inf) at iteration"):
        run_evaluation(spec, results_dir=tmp_path / "r", show_progress=False)
    row = leaderboard.read_rows(tmp_path / "r" / "leaderboard.csv")[0]
    assert row["status"] == "failed" and "FloatingPointError" in row["error"]
