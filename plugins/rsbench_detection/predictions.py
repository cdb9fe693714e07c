"""Readers and writers of the detection submission formats, for ``rsbench score`` and for the
runs, which write their own test predictions in the same formats (so a run's folder scores the
run's value).

* Horizontal boxes: a COCO results JSON, a list of
  ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`` in original pixels.
  ``image_id`` is the task's image id (the COCO ``images[].id`` of the split's annotation json
  for COCO datasets; the 5-digit id for DIOR, as a string or an integer) or the image file
  stem as a string; ``category_id`` is the 1-based index in the task's class list (the ids of
  the ground-truth json a run writes to ``annotations/test_coco.json``) or the class name.
* Oriented boxes, DOTA text (both forms, told apart by the file names): per class
  ``Task1_<class>.txt`` with lines ``<image stem> <score> x1 y1 x2 y2 x3 y3 x4 y4`` (the DOTA
  server format; a missing class file means no detections of that class), or per image
  ``<image stem>.txt`` with lines ``x1 y1 x2 y2 x3 y3 x4 y4 <class> <score>`` (every test
  image needs its file, empty when it has no detections).
* FAIR1M: one result XML per image, ``<image stem>.xml``, the label XML with a
  ``<probability>`` in each ``<possibleresult>`` (see :func:`rsbench_detection.fair1m.label_xml`).

Class names are matched case-, hyphen-, underscore- and space-insensitively. Every error is a
``PredictionError`` naming the file and the entry, line or object; numpy only (no torch).
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rsbench.errors import PredictionError
from rsbench_detection.annotations import normalize

TASK1 = "Task1_"


@dataclass
class Detections:
    """One image's detections: ``boxes`` (n, 4) xyxy or (n, 8) corners, ``scores``, ``labels``."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    @classmethod
    def collect(cls, rows: list[tuple[list[float], float, int]], width: int) -> "Detections":
        return cls(np.asarray([r[0] for r in rows], np.float64).reshape(-1, width),
                   np.asarray([r[1] for r in rows], np.float64), np.asarray([r[2] for r in rows], np.int64))


class ClassNames:
    """Class name (any spelling :func:`normalize` folds) -> label, or a ``PredictionError``."""

    def __init__(self, classes: Sequence[str]) -> None:
        self.classes = tuple(classes)
        self._index = {normalize(c): k for k, c in enumerate(self.classes)}

    def __call__(self, name: str, where: str) -> int:
        try:
            return self._index[normalize(name)]
        except KeyError:
            raise PredictionError(f"{where}: unknown class {name!r}; expected one of "
                                  f"{', '.join(self.classes)}") from None


def _numbers(tokens: Sequence[str], where: str, what: str) -> list[float]:
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        raise PredictionError(f"{where}: non-numeric {what} {' '.join(tokens)!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise PredictionError(f"{where}: {what} must be finite; got {' '.join(tokens)!r}")
    return values


def _text(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PredictionError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from exc


# -- COCO results JSON ---------------------------------------------------------------------------
def coco_results_path(predictions: Path) -> Path:
    """The results JSON: ``predictions`` itself, or the one ``*.json`` in a folder."""
    if predictions.is_dir():
        found = sorted(predictions.glob("*.json"))
        if len(found) != 1:
            raise PredictionError(f"{predictions}: expected a COCO results .json file (or a folder holding "
                                  f"exactly one); found {len(found)} .json files")
        return found[0]
    return predictions


def image_ids(samples: Sequence[Mapping[str, Any]]) -> dict[Any, Any]:
    """Accepted ``image_id`` values -> the sample's ``img_id``: the ``img_id`` itself, the image
    file stem (a string) and, for an all-digit string id (DIOR's ``"00011"``), its integer; an
    alternative two images share is not accepted."""
    ids: dict[Any, Any] = {s["img_id"]: s["img_id"] for s in samples}
    alternatives: dict[Any, set] = {}
    for s in samples:
        own = s["img_id"]
        for alt in (Path(s["img_path"]).stem, int(own) if isinstance(own, str) and own.isdigit() else None):
            if alt is not None and alt not in ids:
                alternatives.setdefault(alt, set()).add(own)
    ids.update({alt: next(iter(owners)) for alt, owners in alternatives.items() if len(owners) == 1})
    return ids


def read_coco_results(path: Path, images: Mapping[Any, Any], categories: Mapping[int, int],
                      classes: Sequence[str]) -> dict[Any, Detections]:
    """Detections (xyxy) per image of a COCO results list. ``images`` maps every accepted
    ``image_id`` to the sample's id; ``categories`` maps integer category ids to labels (names
    are looked up in ``classes``). Images without entries have no detections."""
    try:
        entries = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PredictionError(f"{path}: not a readable JSON file ({exc})") from exc
    if not isinstance(entries, list):
        raise PredictionError(f"{path}: expected a COCO results list of {{image_id, category_id, bbox, score}}; "
                              f"got a {type(entries).__name__}")
    names = ClassNames(classes)
    rows: dict[Any, list[tuple[list[float], float, int]]] = {}
    for k, entry in enumerate(entries):
        where = f"{path} entry {k}"
        if not isinstance(entry, dict) or not {"image_id", "category_id", "bbox", "score"} <= set(entry):
            raise PredictionError(f"{where}: expected {{image_id, category_id, bbox, score}}; got {entry!r:.120}")
        image_id = entry["image_id"]
        if isinstance(image_id, bool) or not isinstance(image_id, (int, str)) or image_id not in images:
            raise PredictionError(f"{where}: image_id {image_id!r} is not an image of the scored split "
                                  f"(expected the task's image id or the image file stem as a string)")
        label = _category(entry["category_id"], categories, names, where)
        box = entry["bbox"]
        if not isinstance(box, list) or len(box) != 4 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
            raise PredictionError(f"{where}: bbox must be [x, y, w, h] numbers; got {box!r}")
        x, y, w, h = (float(v) for v in box)
        if not all(math.isfinite(v) for v in (x, y, w, h)) or w < 0 or h < 0:
            raise PredictionError(f"{where}: bbox must be finite with width and height >= 0; got {box!r}")
        score = entry["score"]
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise PredictionError(f"{where}: score must be a finite number; got {score!r}")
        rows.setdefault(images[image_id], []).append(([x, y, x + w, y + h], float(score), label))
    return {key: Detections.collect(r, 4) for key, r in rows.items()}


def _category(value: Any, categories: Mapping[int, int], names: ClassNames, where: str) -> int:
    if isinstance(value, str):
        return names(value, where)
    if isinstance(value, int) and not isinstance(value, bool) and value in categories:
        return categories[value]
    raise PredictionError(f"{where}: unknown category_id {value!r}; expected "
                          f"{min(categories)}..{max(categories)} (1-based index in the task's classes) "
                          f"or a class name of {', '.join(names.classes)}")


def write_coco_results(path: Path, images: Iterable[tuple[Any, np.ndarray, np.ndarray, np.ndarray]]) -> Path:
    """``images``: (image_id, xyxy boxes, scores, labels); category_id = label + 1. Values are
    written at full precision, so reading them back gives the same boxes."""
    out = []
    for image_id, boxes, scores, labels in images:
        for box, score, label in zip(np.asarray(boxes, np.float64).reshape(-1, 4), scores, labels):
            x1, y1, x2, y2 = (float(v) for v in box)
            out.append({"image_id": image_id, "category_id": int(label) + 1,
                        "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score)})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))
    return path


# -- DOTA text ------------------------------------------------------------------------------------
class DotaPredictions:
    """Oriented detections (corners) of a DOTA folder, per image stem. Per-class files are read
    at once (an unknown image stem is an error); per-image files when asked for (a missing one
    raises ``MissingPrediction``)."""

    def __init__(self, folder: Path, stems: Sequence[str], classes: Sequence[str]) -> None:
        if not folder.is_dir():
            raise PredictionError(f"{folder}: expected a folder of DOTA txt files (Task1_<class>.txt "
                                  "or <image stem>.txt)")
        self.folder, self.names = folder, ClassNames(classes)
        self.stems = set(stems)
        files = sorted(folder.glob(f"{TASK1}*.txt"))
        self.per_class = bool(files)
        self.by_stem: dict[str, Detections] = self._read_per_class(files) if files else {}

    def _read_per_class(self, files: list[Path]) -> dict[str, Detections]:
        rows: dict[str, list[tuple[list[float], float, int]]] = {}
        for path in files:
            label = self.names(path.stem[len(TASK1):], f"{path} (file name Task1_<class>.txt)")
            for n, line in enumerate(_text(path), 1):
                tokens = line.split()
                if not tokens:
                    continue
                where = f"{path}:{n}"
                if len(tokens) != 10:
                    raise PredictionError(f"{where}: expected '<image stem> <score> x1 y1 x2 y2 x3 y3 x4 y4' "
                                          f"(10 fields); got {len(tokens)}: {line.strip()!r:.120}")
                if tokens[0] not in self.stems:
                    raise PredictionError(f"{where}: image {tokens[0]!r} is not an image of the scored split")
                values = _numbers(tokens[1:], where, "score and corners")
                rows.setdefault(tokens[0], []).append((values[1:], values[0], label))
        return {stem: Detections.collect(r, 8) for stem, r in rows.items()}

    def __call__(self, stem: str) -> Detections:
        if self.per_class:
            found = self.by_stem.get(stem)
            return found if found is not None else Detections.collect([], 8)
        from rsbench.run.scoring import MissingPrediction

        path = self.folder / f"{stem}.txt"
        if not path.is_file():
            raise MissingPrediction(f"{stem}.txt")
        rows = []
        for n, line in enumerate(_text(path), 1):
            tokens = line.split()
            if not tokens or tokens[0].startswith(("imagesource:", "gsd:")):
                continue  # blank, or the header lines of DOTA label files
            where = f"{path}:{n}"
            if len(tokens) < 10:
                raise PredictionError(f"{where}: expected 'x1 y1 x2 y2 x3 y3 x4 y4 <class> <score>'; "
                                      f"got {line.strip()!r:.120}")
            corners = _numbers(tokens[:8], where, "corners")
            score = _numbers(tokens[-1:], where, "score")[0]
            rows.append((corners, score, self.names(" ".join(tokens[8:-1]), where)))
        return Detections.collect(rows, 8)


def _num(v: Any) -> str:
    return repr(float(v))


def write_dota(folder: Path, images: Iterable[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
               classes: Sequence[str], per_class: bool = True) -> Path:
    """``images``: (image stem, (n, 8) corners, scores, labels). ``per_class``: one
    ``Task1_<class>.txt`` per class (every class, empty without detections), else one
    ``<stem>.txt`` per image. Full precision, so reading back gives the same numbers."""
    folder.mkdir(parents=True, exist_ok=True)
    lines: dict[str, list[str]] = {c: [] for c in classes} if per_class else {}
    for stem, corners, scores, labels in images:
        own = []
        for q, score, label in zip(np.asarray(corners, np.float64).reshape(-1, 8), scores, labels):
            coords = " ".join(_num(v) for v in q)
            if per_class:
                lines[classes[int(label)]].append(f"{stem} {_num(score)} {coords}")
            else:
                own.append(f"{coords} {classes[int(label)]} {_num(score)}")
        if not per_class:
            (folder / f"{stem}.txt").write_text("".join(f"{line}\n" for line in own))
    for name, rows in lines.items():
        (folder / f"{TASK1}{name}.txt").write_text("".join(f"{line}\n" for line in rows))
    return folder


# -- FAIR1M result XML ----------------------------------------------------------------------------
def read_fair1m_xml(folder: Path, stem: str, classes: Sequence[str]) -> Detections:
    """Detections (corners) of ``folder/<stem>.xml``; ``MissingPrediction`` when it is absent."""
    from rsbench.run.scoring import MissingPrediction

    path = folder / f"{stem}.xml"
    if not path.is_file():
        raise MissingPrediction(f"{stem}.xml")
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise PredictionError(f"{path}: malformed XML ({exc})") from exc
    names, rows = ClassNames(classes), []
    for k, obj in enumerate(root.iter("object")):
        where = f"{path} object {k}"
        name, prob = obj.findtext("possibleresult/name"), obj.findtext("possibleresult/probability")
        if name is None or prob is None:
            raise PredictionError(f"{where}: expected <possibleresult> with <name> and <probability>")
        label = names(name.strip(), where)
        score = _numbers([prob.strip()], where, "<probability>")[0]
        pts = [_numbers((p.text or "").split(","), where, "<point>") for p in obj.iter("point")]
        if any(len(p) != 2 for p in pts):
            raise PredictionError(f"{where}: every <point> must be 'x,y'")
        if len(pts) == 5 and pts[0] == pts[4]:
            pts = pts[:4]  # the closed ring of the format
        if len(pts) != 4:
            raise PredictionError(f"{where}: expected 4 corners (a closed ring of 5 <point>); got {len(pts)}")
        rows.append(([v for p in pts for v in p], score, label))
    return Detections.collect(rows, 8)
