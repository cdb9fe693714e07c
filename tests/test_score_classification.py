"""``rsbench score`` on the image-level classification tasks: prediction CSVs (``id,class``,
``id,labels`` or one score column per class) through each task's own mmpretrain evaluator.
Perfect predictions score the maximum, random ones chance, malformed files are named with
their line, and a run's ``predictions.csv`` scores exactly the run's values."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from rsbench.errors import PredictionError
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.run.runner import run_evaluation
from rsbench.run.scoring import score_predictions
from rsbench.run.spec import RunSpec
from rsbench_classification import prediction_csv

TASKS = ("aid", "resisc45", "fmow-s2", "ben-s2", "ben-mm")


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("score_cls")


@pytest.fixture(scope="module")
def roots(base, aid_root) -> dict[str, Path]:
    catalog = get_catalog()
    out = {"aid": aid_root}
    for t in TASKS[1:]:
        out[t] = catalog.datasets.get(catalog.tasks.get(t).dataset).write_fixture(base / "data" / t, seed=0)
    return out


@pytest.fixture(scope="module")
def truth(roots) -> dict[str, tuple[list[str], list[list[int]], list[str]]]:
    """Per task: the test split's ids, their class indices, and the class names."""
    catalog = get_catalog()
    out = {}
    for t, root in roots.items():
        info = catalog.tasks.get(t)
        task = info.load_task_class()(info, catalog.datasets.get(info.dataset), list(info.modalities))
        data = task.check_data(root, RunSpec(backbone="external:x", task=t, data_root=str(root)).resolved_for(info))
        labels = [[y] for _, y in data.test] if t in ("aid", "resisc45") else [s["gt_label"] for s in data.test]
        out[t] = task.sample_ids(data), labels, list(data.classes)
    return out


def write(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def score(base: Path, roots: dict, task: str, preds: Path, name: str = "m") -> tuple[dict, dict]:
    """Score through ``rsbench score``'s entry point; the band tasks measure normalization
    statistics on 4 samples instead of 64 (the model is never built, so they do not matter)."""
    work = base / "work" / f"{task}-{preds.stem}"
    options = {"stats_samples": "4"} if task in ("fmow-s2", "ben-s2", "ben-mm") else {}
    row, _ = score_predictions(task, roots[task], preds, name, results_dir=base / "results", work_dir=work,
                               options=options, force=True)
    return row, json.loads((work / "metrics.json").read_text())


def score_rows(ids: list[str], scores: np.ndarray, order: np.ndarray) -> list[list]:
    return [[i, *(f"{v:.6f}" for v in s[order])] for i, s in zip(ids, scores)]


# -- perfect and random -----------------------------------------------------------------
@pytest.mark.parametrize("task, by", [("aid", "name"), ("resisc45", "index")])
def test_single_label_classes_by_name_or_index(base, roots, truth, task, by):
    ids, labels, classes = truth[task]

    def cls(y: int) -> str | int:
        return classes[y] if by == "name" else y
    perfect, _ = score(base, roots, task, write(base / task / "perfect.csv", ["id", "class"],
                                                [[i, cls(y[0])] for i, y in zip(ids, labels)]))
    assert perfect["value"] == 100.0 and perfect["backbone"] == "external:m"
    rng = np.random.default_rng(0)
    rnd, _ = score(base, roots, task, write(base / task / "random.csv", ["id", "class"],
                                            [[i, cls(int(rng.integers(len(classes))))] for i in ids]))
    assert rnd["value"] == pytest.approx(100 / len(classes), abs=2)  # 480 / 350 test images


def test_fmow_scores_in_any_column_order_give_top1_and_top5(base, roots, truth):
    ids, labels, classes = truth["fmow-s2"]
    n = len(classes)
    order = np.random.default_rng(1).permutation(n)
    header = ["id", *(classes[k] for k in order)]
    onehot = np.eye(n)[[y[0] for y in labels]]
    perfect, metrics = score(base, roots, "fmow-s2", write(base / "fmow" / "perfect.csv", header,
                                                           score_rows(ids, onehot, order)))
    assert perfect["value"] == 100.0 and metrics["accuracy/top5"] == 100.0
    # random: 62 val images, one per class (chance top-1 1.6 %, top-5 8.1 %)
    noise = np.random.default_rng(2).random((len(ids), n))
    rnd, metrics = score(base, roots, "fmow-s2", write(base / "fmow" / "random.csv", header,
                                                       score_rows(ids, noise, order)))
    assert rnd["value"] <= 100 * 3 / 62 and metrics["accuracy/top5"] == pytest.approx(100 * 5 / 62, abs=8)
    labels_only, metrics = score(base, roots, "fmow-s2", write(base / "fmow" / "labels.csv", ["id", "class"],
                                                               [[i, classes[y[0]]] for i, y in zip(ids, labels)]))
    assert labels_only["value"] == 100.0 and "accuracy/top5" not in metrics  # top-5 needs scores


def test_multilabel_scores_and_label_lists(base, roots, truth):
    ids, labels, classes = truth["ben-s2"]
    target = np.zeros((len(ids), len(classes)))
    for k, ys in enumerate(labels):
        target[k, ys] = 1
    order = np.arange(len(classes))
    perfect, metrics = score(base, roots, "ben-s2", write(base / "ben" / "perfect.csv", ["id", *classes],
                                                          score_rows(ids, target * 0.9 + 0.05, order)))
    assert perfect["value"] == 100.0 and metrics["multi-label/mAP_macro"] == 100.0
    noise = np.random.default_rng(3).normal(size=target.shape)  # any finite scores; columns by index
    rnd, _ = score(base, roots, "ben-s2", write(base / "ben" / "random.csv", ["id", *map(str, order)],
                                                score_rows(ids, noise, order)))
    assert rnd["value"] == pytest.approx(100 * target.mean(), abs=3)  # micro AP of a random ranking
    ids, labels, classes = truth["ben-mm"]
    listed = [[i, ";".join(classes[y] for y in ys)] for i, ys in zip(ids, labels)]
    assert any("," in r[1] for r in listed)  # names with commas travel quoted
    perfect, _ = score(base, roots, "ben-mm", write(base / "ben" / "labels.csv", ["id", "labels"], listed))
    assert perfect["value"] == 100.0


# -- errors -----------------------------------------------------------------------------
def test_missing_ids_are_counted_and_the_first_is_named(base, roots, truth):
    ids, labels, classes = truth["aid"]
    rows = [[i, classes[y[0]]] for i, y in zip(ids, labels)]
    path = write(base / "err" / "missing.csv", ["id", "class"], rows[:3] + rows[4:10] + rows[11:])
    with pytest.raises(PredictionError, match=rf"missing prediction id {ids[3]} \(and 1 more of {len(ids)} samples\)"):
        score(base, roots, "aid", path)


def test_a_bad_class_fails_the_score_naming_file_and_line(base, roots, truth):
    ids, labels, classes = truth["aid"]
    path = write(base / "err" / "bad.csv", ["id", "class"], [[ids[0], classes[0]], [ids[1], "Nowhere"]])
    with pytest.raises(PredictionError, match=r"bad\.csv:3: class 'Nowhere' is not one of the 30 classes"):
        score(base, roots, "aid", path)


AID = list(get_catalog().datasets.get("aid").classes)
BEN = list(get_catalog().datasets.get("ben-s2").classes)
FMOW = list(get_catalog().datasets.get("fmow-s2").classes)


@pytest.mark.parametrize("classes, multilabel, header, row, message", [
    (AID, False, ["id", "class"], ["x", "30"], r":3: class '30' is not one of the 30 classes"),
    (AID, False, ["id", "class"], ["x", "Airport", "Beach"], r":3: 3 field\(s\); the header has 2"),
    (AID, False, ["id", "class"], ["", "Airport"], r":3: empty id"),
    (AID, False, ["id", "class"], ["a", "Beach"], r":3: id 'a' again \(first on line 2\)"),
    (AID, False, ["name", "class"], ["x", "Airport"], r":1: header 'name,class'; expected 'id,class'"),
    (AID, False, ["id", "labels"], ["x", "Airport"], r":1: column 2: class 'labels' is not one of the 30"),
    (BEN, True, ["id", "labels"], ["x", "Urban fabric;Forests"], r":3: class 'Forests' is not one of the 19"),
    (FMOW, False, ["id", *FMOW], ["x", "1.5", *["0"] * 61],
     r":3: column 'airport': '1\.5'; expected a probability in \[0, 1\]"),
    (BEN, True, ["id", *BEN], ["x", "abc", *["0"] * 18], r":3: column 'Urban fabric': 'abc'; expected a finite number"),
    (BEN, True, ["id", *BEN], ["x", "nan", *["0"] * 18], r":3: column 'Urban fabric': 'nan'"),
    (BEN, True, ["id", *BEN[:-1]], [],
     r":1: the score columns must name each of the 19 classes exactly once; missing Marine waters"),
    (BEN, True, ["id", *BEN[:-1], BEN[0]], [], r":1: .* exactly once; missing Marine waters; repeated Urban fabric"),
    (BEN, True, ["id", BEN[0], "Lakes"], [], r":1: column 3: class 'Lakes' is not one of the 19"),
])
def test_malformed_files_name_the_file_and_line(tmp_path, classes, multilabel, header, row, message):
    first = ["a", classes[0]] if header[1:] in (["class"], ["labels"]) else ["a", *["0"] * (len(header) - 1)]
    path = write(tmp_path / "p.csv", header, [r for r in (first, row) if r])
    with pytest.raises(PredictionError, match=re.escape(str(path)) + message):
        prediction_csv.read_table(path, classes, multilabel)


def test_empty_files_and_folders_without_the_csv_are_named(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(PredictionError, match=r"empty\.csv: empty; expected a header line"):
        prediction_csv.read_table(tmp_path / "empty.csv", AID, False)
    with pytest.raises(PredictionError, match="a folder without predictions.csv"):
        prediction_csv.read_table(tmp_path, AID, False)


def test_score_layout_round_trips_float32_and_ignores_other_ids(tmp_path):
    from mmpretrain.structures import DataSample

    scores = np.random.default_rng(4).random((3, len(BEN)), dtype=np.float32) * 10 - 5
    path = write(tmp_path / "p.csv", ["id", *BEN], [[f"s{k}", *(f"{float(v):.9g}" for v in s)]
                                                   for k, s in enumerate(scores)])
    table = prediction_csv.read_table(path, BEN, True)
    assert table.layout == "scores" and all(np.array_equal(table.rows[f"s{k}"], scores[k]) for k in range(3))
    read = prediction_csv.reader(path, BEN, True, ["s2", "s0"])  # the split's ids; s1 is not in it
    sample = DataSample(metainfo=dict(sample_idx=0))
    read(sample)
    assert np.array_equal(sample.pred_score.numpy(), scores[2])
    assert sample.pred_label.tolist() == [int(i) for i in np.flatnonzero(scores[2] > 0.5)]


# -- a run's own predictions --------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("task, backbone", [("aid", "resnet50-tiny"), ("ben-s2", "skysense-tiny"),
                                            ("fmow-s2", "skysense-tiny")])
def test_a_runs_predictions_csv_scores_the_runs_values(base, roots, truth, task, backbone):
    info = get_catalog().tasks.get(task)
    work = base / "run" / task
    smoke = dict(info.smoke_options)
    spec = RunSpec(backbone=backbone, task=task, data_root=str(roots[task]), work_dir=str(work),
                   max_iters=info.smoke_iters, batch_size=smoke.pop("batch_size", None), lr=smoke.pop("lr", None),
                   options={k: str(v) for k, v in smoke.items()})
    outcome = run_evaluation(spec, results_dir=base / "results", show_progress=False)
    assert outcome.status == "ok", outcome.row["error"]
    run_metrics = json.loads((work / "metrics.json").read_text())
    lines = (work / "predictions.csv").read_text().splitlines()
    ids, _, classes = truth[task]
    assert len(lines) == len(ids) + 1 and lines[1].split(",")[0] == ids[0]
    assert next(csv.reader(lines[:1])) == (["id", "class"] if task == "aid" else ["id", *classes])
    row, metrics = score(base, roots, task, work / "predictions.csv", name=f"run-{task}")
    assert row["value"] == outcome.row["value"]
    assert metrics == run_metrics
    chance = {"aid": 100 / 30, "fmow-s2": 100 / 62}.get(task, 8.0)
    assert outcome.row["value"] > 3 * chance
