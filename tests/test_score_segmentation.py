"""``rsbench score`` for dense segmentation: class-id images named like the labels, checked
against the split, scored by the task's own mmseg metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from rsbench.errors import PredictionError
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.results import leaderboard
from rsbench.run.scoring import score_predictions
from rsbench.run.spec import RunSpec
from test_segmentation import seg_roots  # noqa: F401  (the session-scoped fixture datasets)


def _task(name: str):
    catalog = get_catalog()
    info = catalog.tasks.get(name)
    return info, info.load_task_class()(info, catalog.datasets.get(info.dataset), list(info.modalities))


def write_predictions(task: str, root: Path, out: Path, mode: str, seed: int = 0) -> Path:
    """One full-size class-id PNG per label image: the decoded label itself (``perfect``) or
    uniform random ids (``random``), named like the label, or at the label's relative path
    where label names repeat (EarthMiss: ``<city>/masks/0001_mask.png``)."""
    info, task_obj = _task(task)
    data = task_obj.check_data(root, RunSpec(backbone="x", task=task).resolved_for(info))
    rng = np.random.default_rng(seed)
    n = len(task_obj.module.CLASSES)
    stems = [Path(s["label"]).stem for s in data.test]
    for sample in data.test:
        _, label = task_obj.module.load(sample, tuple(info.modalities))
        ids = np.where(label == 255, 0, label) if mode == "perfect" else rng.integers(0, n, label.shape)
        rel = Path(sample["label"]).resolve().relative_to(Path(root).resolve()).with_suffix(".png")
        path = out / (rel.name if len(set(stems)) == len(stems) else rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(ids.astype(np.uint8)).save(path)
    return out


@pytest.mark.parametrize("task", ["isaid", "deepglobe-road", "potsdam", "earthmiss"])
def test_perfect_predictions_score_the_maximum_and_random_ones_near_chance(seg_roots, task, tmp_path):  # noqa: F811
    root = seg_roots[task]
    perfect, _ = score_predictions(task, root, write_predictions(task, root, tmp_path / "p", "perfect"), "oracle",
                                   results_dir=tmp_path, work_dir=tmp_path / "w1")
    assert perfect["status"] == "ok" and perfect["value"] == 100.0
    random, _ = score_predictions(task, root, write_predictions(task, root, tmp_path / "r", "random"), "noise",
                                  results_dir=tmp_path, work_dir=tmp_path / "w2")
    n = len(_task(task)[1].module.CLASSES)
    assert random["value"] < max(100 / n * 1.5, 30)  # near chance, far from the maximum
    rows = leaderboard.read_rows(tmp_path / "leaderboard.csv")
    assert [r["backbone"] for r in rows] == ["external:oracle", "external:noise"]
    assert {r["protocol"] for r in rows} == {"external"}


def test_missing_wrong_size_and_bad_ids_are_named(seg_roots, tmp_path):  # noqa: F811
    root = seg_roots["deepglobe-road"]
    preds = write_predictions("deepglobe-road", root, tmp_path / "p", "perfect")
    files = sorted(preds.glob("*.png"))
    files[0].unlink()
    files[1].unlink()
    with pytest.raises(PredictionError, match=rf"missing prediction {files[0].name} \(and 1 more of 3 samples\)"):
        score_predictions("deepglobe-road", root, preds, "m", results_dir=tmp_path, work_dir=tmp_path / "w")
    assert leaderboard.read_rows(tmp_path / "leaderboard.csv")[-1]["status"] == "failed"

    preds = write_predictions("deepglobe-road", root, tmp_path / "q", "perfect")
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(files[0].parent.parent / "q" / files[0].name)
    with pytest.raises(PredictionError, match=rf"{files[0].name}: size \(5, 7\); the label is"):
        score_predictions("deepglobe-road", root, preds, "s", results_dir=tmp_path, work_dir=tmp_path / "w")

    preds = write_predictions("deepglobe-road", root, tmp_path / "b", "perfect")
    label = np.asarray(Image.open(preds / files[2].name)).copy()
    label[0, 0] = 7
    Image.fromarray(label).save(preds / files[2].name)
    with pytest.raises(PredictionError, match=r"class ids \[7\] outside 0..1"):
        score_predictions("deepglobe-road", root, preds, "b", results_dir=tmp_path, work_dir=tmp_path / "w")
    (preds / files[1].name).unlink()  # one malformed and one missing: the first named, both counted
    with pytest.raises(PredictionError, match=r"\(and 1 more of 3 samples: 1 missing, 1 malformed\)"):
        score_predictions("deepglobe-road", root, preds, "b", results_dir=tmp_path, work_dir=tmp_path / "w")


def test_cli_scores_and_reuses_identical_predictions(seg_roots, tmp_path):  # noqa: F811
    from rsbench.cli.main import main

    root = seg_roots["deepglobe-road"]
    preds = write_predictions("deepglobe-road", root, tmp_path / "p", "perfect")
    args = ["score", "-t", "deepglobe-road", "--data-root", str(root), "-p", str(preds), "-n", "mine",
            "--results", str(tmp_path / "res"), "--work-dir", str(tmp_path / "w")]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "external:mine on deepglobe-road: IoU = 100.0" in first.output
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and "already scored" in again.output
    assert len(leaderboard.read_rows(tmp_path / "res" / "leaderboard.csv")) == 1
    bad = CliRunner().invoke(main, [*args[:-4], "--results", str(tmp_path / "res"), "-p", str(tmp_path / "nope")])
    assert bad.exit_code != 0 and "--predictions" in bad.output and "no such file" in bad.output
