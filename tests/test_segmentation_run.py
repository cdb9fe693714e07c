"""Segmentation evaluations in-process: tiny backbones trained on the fixtures reach metrics far
above chance, and the row's value is mmseg's IoUMetric recomputed on the saved predictions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.results import leaderboard
from rsbench.run.runner import run_evaluation
from rsbench.run.spec import RunSpec
from test_segmentation import seg_roots  # noqa: F401  (the session-scoped fixture datasets)

pytestmark = pytest.mark.slow

#: (task, backbone, spec overrides, options, floor): floors are several times chance (a constant
#: majority prediction scores mIoU ~ 1/n_classes of the majority share; road IoU ~ 0).
RUNS = {
    "isaid": ("resnet50-tiny", dict(max_iters=100, lr=1e-2), dict(patch_size=64, overlap=16, batch_size=4), 15.0),
    "deepglobe-road": ("skysense-tiny", dict(max_iters=60, lr=2e-3), dict(crop_size=64, batch_size=4), 50.0),
    "potsdam": ("resnet50-tiny", dict(max_iters=50, lr=1e-2), dict(patch_size=64, overlap=32, batch_size=4), 60.0),
    "earthmiss": ("mars-tiny", dict(max_iters=60, lr=1e-3),
                  dict(crop_size=64, batch_size=4, missing_modality="none"), 30.0),
}


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """One intra-op thread for this module (see conftest)."""


@pytest.fixture(scope="module")
def runs(seg_roots, tmp_path_factory) -> dict[str, tuple[RunSpec, Path, Any]]:  # noqa: F811
    done = {}
    for task, (backbone, overrides, options, _) in RUNS.items():
        results = tmp_path_factory.mktemp(f"results-{task}")
        spec = RunSpec(backbone=backbone, task=task, data_root=str(seg_roots[task]), options=options,
                       work_dir=str(tmp_path_factory.mktemp(f"work-{task}")), **overrides)
        done[task] = (spec, results, run_evaluation(spec, results_dir=results, show_progress=False))
    return done


def recompute(task: str, spec: RunSpec) -> float:
    """The headline metric from the saved prediction PNGs and labels read afresh, through
    mmseg's own ``IoUMetric.intersect_and_union`` and ``total_area_to_metrics``."""
    from mmseg.evaluation import IoUMetric

    from rsbench_segmentation.common import crop_pad

    catalog = get_catalog()
    info = catalog.tasks.get(task)
    module = info.load_task_class()(info, catalog.datasets.get(task)).module
    work = Path(spec.work_dir)
    areas = []
    for sample in json.loads((work / "splits" / "test.json").read_text()):
        _, label = module.load(sample, ["hr"])
        label = crop_pad(label, sample.get("window"), 255)
        pred = np.asarray(Image.open(work / "predictions" / f"{sample['name']}.png"))
        areas.append(IoUMetric.intersect_and_union(torch.from_numpy(pred.astype(np.int64)),
                                                   torch.from_numpy(label.astype(np.int64)),
                                                   len(module.CLASSES), 255))
    per_class = IoUMetric.total_area_to_metrics(*[sum(a) for a in zip(*areas)], ["mIoU", "mFscore"])
    key = module.HEADLINE
    if key == "mIoU":
        return float(np.round(np.nanmean(per_class["IoU"]) * 100, 2))
    if key.startswith("IoU."):
        return float(np.round(per_class["IoU"][list(module.CLASSES).index(key[4:])] * 100, 2))
    scored = [list(module.CLASSES).index(c) for c in module.SCORED]
    return float(np.round(np.nanmean(np.asarray(per_class["Fscore"])[scored]) * 100, 2))


@pytest.mark.parametrize("task", list(RUNS))
def test_run_beats_chance_by_far_and_equals_mmsegs_metric(runs, task):
    spec, results, outcome = runs[task]
    row = outcome.row
    assert outcome.status == "ok", row["error"]
    assert row["value"] > RUNS[task][3]
    assert row["value"] == pytest.approx(recompute(task, spec), abs=1e-4)  # float32 areas
    rows = leaderboard.read_rows(results / "leaderboard.csv")
    assert len(rows) == 1 and rows[0]["fixture"] == "True"
    assert rows[0]["metric"] == get_catalog().tasks.get(task).metric
    assert "UPerHead" in rows[0]["adapter"] and "mean=" in rows[0]["normalization"]


def test_earthmiss_row_records_the_modalities_and_the_missing_modality_option(runs):
    spec, results, _ = runs["earthmiss"]
    row = leaderboard.read_rows(results / "leaderboard.csv")[0]
    assert json.loads(row["options"])["missing_modality"] == "none"
    assert "modalities fed: hr, sar" in row["adapter"] and "sar: mean=[63.3]" in row["normalization"]
    config = (Path(spec.work_dir) / "config.py").read_text()
    assert "in_modalities=[" in config and "'sar'" in config


def test_a_backbone_without_the_tasks_bands_is_skipped(seg_roots, tmp_path):  # noqa: F811
    outcome = run_evaluation(RunSpec(backbone="test-resnet18-nir", task="potsdam",
                                     data_root=str(seg_roots["potsdam"])), results_dir=tmp_path, show_progress=False)
    assert outcome.status == "skipped" and "NIR" in outcome.row["error"]


@pytest.mark.parametrize("task", list(RUNS))
def test_scoring_the_runs_own_predictions_reproduces_its_value(runs, task, tmp_path):
    """``rsbench score`` on the PNGs a run wrote gives the run's value: one metric code path."""
    from rsbench.run.scoring import score_predictions

    spec, _, outcome = runs[task]
    row, _ = score_predictions(task, spec.data_root, Path(spec.work_dir) / "predictions", "rerun",
                               results_dir=tmp_path, work_dir=tmp_path / "score", options=dict(spec.options))
    assert row["status"] == "ok" and row["backbone"] == "external:rerun" and row["protocol"] == "external"
    assert row["value"] == outcome.row["value"]
