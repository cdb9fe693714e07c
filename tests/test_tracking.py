"""``--track``: one evaluation is one tracked run in MLflow's local file store and TensorBoard's
event files, holding the training loss, the test metric, the config and the leaderboard row."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsbench.errors import SpecError
from rsbench.run.runner import run_evaluation
from rsbench.run.spec import RunSpec


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    yield


def test_unknown_or_missing_tracker_is_refused_before_anything_runs() -> None:
    with pytest.raises(SpecError, match="--track 'neptune': expected one of tensorboard, mlflow, wandb"):
        RunSpec(backbone="resnet50-tiny", task="aid", track=("neptune",)).validate()


@pytest.fixture(scope="module")
def tracked(aid_root: Path, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("tracked")
    spec = RunSpec(backbone="resnet50-tiny", task="aid", data_root=str(aid_root), max_iters=8,
                   work_dir=str(work), track=("tensorboard", "mlflow"))
    outcome = run_evaluation(spec, results_dir=work / "results", show_progress=False)
    assert outcome.status == "ok", outcome.row["error"]
    return work, outcome.row


def test_mlflow_holds_one_run_with_loss_metric_config_and_row_tags(tracked) -> None:
    from mlflow.tracking import MlflowClient

    work, row = tracked
    client = MlflowClient(tracking_uri=(work / "mlruns").as_uri())  # the file store, opted in by rsbench
    experiment = client.get_experiment_by_name("rsbench")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1  # train and test are one tracked run, not two
    run = runs[0]
    assert run.data.tags["rsbench.run_id"] == row["run_id"]
    assert run.data.tags["rsbench.status"] == "ok" and run.data.tags["rsbench.task"] == "aid"
    assert run.data.metrics["rsbench/OA"] == pytest.approx(row["value"])
    assert "loss" in run.data.metrics and "test/accuracy/top1" in run.data.metrics
    assert run.data.params["model.backbone.type"] == "RSBMMPretrainBackbone"


def test_tensorboard_event_files_hold_loss_metric_and_row(tracked) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    work, row = tracked
    events = list(work.rglob("events.out.tfevents.*"))
    assert events, "no TensorBoard event file"
    scalars: set[str] = set()
    tensors: set[str] = set()
    for path in {e.parent for e in events}:
        acc = EventAccumulator(str(path))
        acc.Reload()
        scalars |= set(acc.Tags()["scalars"])
        tensors |= set(acc.Tags()["tensors"])
    assert {"loss", "test/accuracy/top1", "rsbench/OA"} <= scalars
    assert any(t.startswith("rsbench/leaderboard_row") for t in tensors)
