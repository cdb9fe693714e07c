"""``rsbench score`` for the detection family: COCO results JSON (dior, sardet100k, ubcv2), DOTA
txt per class or per image (dior-r), FAIR1M result XMLs (fair1m). Perfect predictions written
from the fixtures' ground truth score the metric's maximum, random boxes about 0, bad files
name the file and line, and a run's own exported predictions score exactly the run's value."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rsbench.errors import PredictionError
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.run.runner import run_evaluation
from rsbench.run.scoring import score_predictions
from rsbench.run.spec import RunSpec
from rsbench_detection import dior, fair1m, sardet, ubcv2
from rsbench_detection.predictions import write_coco_results, write_dota

pytestmark = pytest.mark.slow


def smoke(task: str) -> dict:
    return dict(get_catalog().tasks.get(task).smoke_options)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """One intra-op thread for this module (see conftest)."""


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("data")
    return {"dior": dior.write_fixture(tmp / "dior"), "sardet100k": sardet.write_fixture(tmp / "sar"),
            "ubcv2": ubcv2.write_fixture(tmp / "ubc"), "fair1m": fair1m.write_fixture(tmp / "fair")}


def ground_truth(task: str, roots: dict[str, Path]) -> list[dict]:
    """Whole-image test samples of ``task``'s default split (the reader the task uses)."""
    reads = {"dior": lambda r: dior.read(r, ("test",), oriented=False),
             "dior-r": lambda r: dior.read(r, ("test",), oriented=True),
             "sardet100k": lambda r: sardet.read(r, ("test",)),
             "ubcv2": lambda r: ubcv2.read(r, ("val",)),
             "fair1m": lambda r: fair1m.read(r, ("validation",))}
    return reads[task](roots["dior" if task.startswith("dior") else task])["samples"]


def score(task: str, roots: dict[str, Path], predictions: Path, tmp: Path) -> float:
    row, reused = score_predictions(task, roots["dior" if task.startswith("dior") else task], predictions,
                                    name="test", results_dir=tmp / "results", work_dir=tmp / "score",
                                    options=smoke(task), force=True)
    assert row["status"] == "ok" and not reused
    return row["value"]


def detections(samples: list[dict], random: bool, n_classes: int, seed: int = 0):
    """(sample, boxes, scores, labels): the ground truth with score 1, or random boxes."""
    rng = np.random.default_rng(seed)
    for s in samples:
        boxes = np.array([i["bbox"] for i in s["instances"]], np.float64)
        labels = np.array([i["bbox_label"] for i in s["instances"]])
        if random:
            cx, cy = rng.uniform(10, s["width"] - 10, 5), rng.uniform(10, s["height"] - 10, 5)
            if boxes.shape[1] == 4:
                boxes = np.stack([cx - 4, cy - 3, cx + 4, cy + 3], 1)
            else:
                boxes = np.stack([cx - 4, cy - 3, cx + 4, cy - 3, cx + 4, cy + 3, cx - 4, cy + 3], 1)
            labels = rng.integers(0, n_classes, 5)
        yield s, boxes, rng.uniform(0.1, 1, len(boxes)) if random else np.ones(len(boxes)), labels


def coco_file(path: Path, samples: list[dict], random: bool, n_classes: int) -> Path:
    dets = detections(samples, random, n_classes)
    return write_coco_results(path, ((s["img_id"], b, sc, lb) for s, b, sc, lb in dets))


def dota_folder(folder: Path, samples: list[dict], random: bool, per_class: bool) -> Path:
    dets = detections(samples, random, len(dior.CLASSES))
    return write_dota(folder, ((s["img_id"], b, sc, lb) for s, b, sc, lb in dets), dior.CLASSES, per_class=per_class)


def fair1m_folder(folder: Path, samples: list[dict], random: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for s, boxes, scores, labels in detections(samples, random, len(fair1m.CLASSES)):
        objs = [(fair1m.CLASSES[int(lb)], list(zip(b[0::2].tolist(), b[1::2].tolist())))
                for b, lb in zip(boxes, labels)]
        xml = fair1m.label_xml(f"{s['img_id']}.tif", s["width"], s["height"], objs, scores.tolist())
        (folder / f"{s['img_id']}.xml").write_text(xml)
    return folder


# -- perfect and random predictions, per format -------------------------------------------------
@pytest.mark.parametrize("task, classes", [("dior", dior.CLASSES), ("sardet100k", sardet.CLASSES),
                                           ("ubcv2", ubcv2.SINGLE)])
def test_coco_results_json_perfect_is_100_and_random_is_near_0(task, classes, roots, tmp_path):
    samples = ground_truth(task, roots)
    assert score(task, roots, coco_file(tmp_path / "gt.json", samples, False, len(classes)), tmp_path) == 100.0
    assert score(task, roots, coco_file(tmp_path / "rnd.json", samples, True, len(classes)), tmp_path) < 5


def test_coco_ids_may_be_file_stems_numbers_and_class_names(roots, tmp_path):
    samples = ground_truth("sardet100k", roots)
    entries = json.loads(coco_file(tmp_path / "gt.json", samples, False, 6).read_text())
    stems = {s["img_id"]: Path(s["img_path"]).stem for s in samples}  # COCO ids 19.. and "0000019"..
    renamed = [{**e, "image_id": stems[e["image_id"]], "category_id": sardet.CLASSES[e["category_id"] - 1].upper()}
               for e in entries]
    (tmp_path / "named").mkdir()
    (tmp_path / "named" / "results.json").write_text(json.dumps(renamed))
    assert score("sardet100k", roots, tmp_path / "named", tmp_path) == 100.0  # a folder with one json
    entries = json.loads(coco_file(tmp_path / "dior.json", ground_truth("dior", roots), False, 20).read_text())
    assert entries[0]["image_id"] == "00015"
    (tmp_path / "dior.json").write_text(json.dumps([{**e, "image_id": int(e["image_id"])} for e in entries]))
    assert score("dior", roots, tmp_path / "dior.json", tmp_path) == 100.0  # DIOR's ids as integers


@pytest.mark.parametrize("per_class", [True, False])
def test_dota_txt_perfect_is_100_and_random_is_near_0(per_class, roots, tmp_path):
    samples = ground_truth("dior-r", roots)
    perfect = dota_folder(tmp_path / "gt", samples, False, per_class)
    assert any(p.name.startswith("Task1_") for p in perfect.iterdir()) == per_class
    assert score("dior-r", roots, perfect, tmp_path) == 100.0
    assert score("dior-r", roots, dota_folder(tmp_path / "rnd", samples, True, per_class), tmp_path) < 5


def test_fair1m_result_xmls_perfect_is_100_and_random_is_near_0(roots, tmp_path):
    samples = ground_truth("fair1m", roots)
    assert score("fair1m", roots, fair1m_folder(tmp_path / "gt", samples, False), tmp_path) == 100.0
    assert score("fair1m", roots, fair1m_folder(tmp_path / "rnd", samples, True), tmp_path) < 5


# -- bad predictions ------------------------------------------------------------------------------
def test_missing_files_name_the_first_and_count_the_rest(roots, tmp_path):
    dota = dota_folder(tmp_path / "dota", ground_truth("dior-r", roots), False, per_class=False)
    first, second = sorted(dota.glob("*.txt"))[1:3]
    first.unlink(), second.unlink()
    with pytest.raises(PredictionError, match=rf"missing prediction {first.name} \(and 1 more of 6 samples\)"):
        score("dior-r", roots, dota, tmp_path)
    xmls = fair1m_folder(tmp_path / "xml", ground_truth("fair1m", roots), False)
    (xmls / "12.xml").unlink()
    with pytest.raises(PredictionError, match=r"xml: missing prediction 12.xml$"):
        score("fair1m", roots, xmls, tmp_path)


def _edit_line(path: Path, n: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[n - 1] = text
    path.write_text("\n".join(lines) + "\n")


def test_malformed_lines_and_entries_name_the_file_and_line(roots, tmp_path):
    per_class = dota_folder(tmp_path / "cls", ground_truth("dior-r", roots), False, per_class=True)
    _edit_line(per_class / "Task1_ship.txt", 1, "00015 1.0 10 10 20 10 20 20 10")
    with pytest.raises(PredictionError, match=r"Task1_ship.txt:1: expected '<image stem> <score> x1 y1"):
        score("dior-r", roots, per_class, tmp_path)
    per_image = dota_folder(tmp_path / "img", ground_truth("dior-r", roots), False, per_class=False)
    _edit_line(per_image / "00016.txt", 1, "10 10 20 10 20 twenty 10 20 ship 0.9")
    with pytest.raises(PredictionError, match=r"00016.txt:1: non-numeric corners"):
        score("dior-r", roots, per_image, tmp_path)
    results = coco_file(tmp_path / "r.json", ground_truth("dior", roots), False, 20)
    entries = json.loads(results.read_text())
    entries[3]["bbox"] = [1, 2, 3]
    results.write_text(json.dumps(entries))
    with pytest.raises(PredictionError, match=r"r.json entry 3: bbox must be \[x, y, w, h\]"):
        score("dior", roots, results, tmp_path)
    xmls = fair1m_folder(tmp_path / "xml", ground_truth("fair1m", roots), False)
    (xmls / "11.xml").write_text((xmls / "11.xml").read_text().replace("<probability>", "<probability>high", 1))
    with pytest.raises(PredictionError, match=r"11.xml object 0: non-numeric <probability>"):
        score("fair1m", roots, xmls, tmp_path)


def test_unknown_classes_and_images_are_clear_errors(roots, tmp_path):
    samples = ground_truth("dior", roots)
    results = coco_file(tmp_path / "r.json", samples, False, 20)
    entries = json.loads(results.read_text())
    for edit, message in ((dict(category_id=21), r"entry 0: unknown category_id 21; expected 1..20"),
                          (dict(category_id="submarine"), r"entry 0: unknown class 'submarine'; expected one of air"),
                          (dict(image_id="99999"), r"entry 0: image_id '99999' is not an image of the scored split")):
        results.write_text(json.dumps([{**entries[0], **edit}, *entries[1:]]))
        with pytest.raises(PredictionError, match=message):
            score("dior", roots, results, tmp_path)
    dota = dota_folder(tmp_path / "dota", ground_truth("dior-r", roots), False, per_class=True)
    (dota / "Task1_submarine.txt").write_text("00015 0.5 1 1 5 1 5 5 1 5\n")
    with pytest.raises(PredictionError, match=r"Task1_submarine.txt \(file name Task1_<class>.txt\): unknown class"):
        score("dior-r", roots, dota, tmp_path)
    xmls = fair1m_folder(tmp_path / "xml", ground_truth("fair1m", roots), False)
    (xmls / "10.xml").write_text((xmls / "10.xml").read_text().replace("<name>", "<name>Zeppelin", 1))
    with pytest.raises(PredictionError, match=r"10.xml object 0: unknown class 'Zeppelin"):
        score("fair1m", roots, xmls, tmp_path)


# -- a run's own predictions score the run's value ------------------------------------------------
def _run(task: str, roots: dict[str, Path], tmp: Path):
    info = get_catalog().tasks.get(task)
    root = roots["dior" if task.startswith("dior") else task]
    spec = RunSpec(backbone="resnet50-tiny", task=task, data_root=str(root), max_iters=info.smoke_iters,
                   work_dir=str(tmp / "work"), options=smoke(task))
    outcome = run_evaluation(spec, results_dir=tmp / "results", show_progress=False)
    assert outcome.status == "ok", outcome.row["error"]
    return Path(spec.work_dir), outcome.row["value"]


@pytest.mark.parametrize("task, exported", [("dior", "predictions.bbox.json"), ("dior-r", "predictions"),
                                            ("fair1m", "predictions")])
def test_a_runs_exported_predictions_score_the_runs_value(task, exported, roots, tmp_path):
    work, value = _run(task, roots, tmp_path)
    assert value > 10  # trained: far from the ~0 of random boxes, so equality is not trivial
    assert score(task, roots, work / exported, tmp_path) == pytest.approx(value, abs=1e-6)
