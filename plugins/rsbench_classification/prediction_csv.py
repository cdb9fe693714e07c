"""Image-level predictions as CSV: what ``rsbench run`` writes (``<work dir>/predictions.csv``) and
what ``rsbench score`` reads, for single-label (AID, RESISC-45, fMoW-S2) and multi-label
(BigEarthNet) classification. One module for both sides so they cannot drift apart.

A UTF-8 CSV (``csv`` module quoting: BigEarthNet names holding commas are quoted), header first,
one row per sample; the first column is ``id``, the sample's id as the task documents it (the
image file stem, the BigEarthNet S2 patch name). Rows for ids outside the scored split are
ignored; an id twice is an error. Accepted layouts, told apart by the header:

* ``id,class`` (single-label): the predicted class, by name or by 0-based index;
* ``id,labels`` (multi-label): the predicted classes, names or indices separated by ``;`` (empty:
  none); they are scored as 0/1 scores;
* ``id,<class>,<class>,...`` (both): one score column per class, every class exactly once, in any
  order, headed by its name or its index. Single-label scores are probabilities in [0, 1]
  (mmpretrain's Accuracy counts a top-k hit only where its score is above 0); multi-label
  scores are any finite numbers (average precision only ranks them).

A reader fills the fields mmpretrain's heads predict: ``pred_label`` (a class given by name or
index), or ``pred_score`` and its arg-max ``pred_label`` (scores, ``;``-lists). A run writes
``id,class`` (class names) when only top-1 is scored, else the score layout with its softmax or
sigmoid scores printed to 9 significant digits, which round-trips float32 exactly; so a run's
file scores exactly the run's values, ties in the ranking included. The writer is the mmpretrain
metric of :mod:`rsbench_classification.prediction_writer`; this module stays light (no torch import
at the top) so plugins can declare the formats.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rsbench.errors import DataLayoutError, PredictionError
from rsbench.plugin_api.checked_data import CheckedData

FILE = "predictions.csv"
WRITER = "RSBPredictionCSV"
#: The formats as ``rsbench info task`` states them (TaskInfo.predictions).
SINGLE_LABEL = ("a CSV with header 'id,class': one row per test sample, id = {id}, class = the class name or its "
                "0-based index; or header 'id,<class>,...' with one probability column per class (every class "
                "once, by name or index, any order); what a run writes to <work_dir>/predictions.csv")
MULTI_LABEL = ("a CSV with header 'id,<class>,...': one row per test sample, id = {id}, one score column per class "
               "(every class once, by name or index, any order; names with commas quoted), any finite scores; "
               "or header 'id,labels' with the predicted names or indices separated by ';' (scored as 0/1); "
               "what a run writes to <work_dir>/predictions.csv")


@dataclass
class Table:
    """A parsed prediction CSV: per id, a class index (``label`` layout) or a score vector."""

    path: Path
    layout: str  # "class", "labels" or "scores"
    rows: dict[str, Any]


def resolve(path: Path) -> Path:
    """The CSV itself, or ``predictions.csv`` inside a folder (a run's work dir)."""
    path = Path(path)
    if path.is_dir():
        if not (path / FILE).is_file():
            raise PredictionError(f"--predictions {path}: a folder without {FILE}; expected a CSV file")
        return path / FILE
    return path


def _class_index(value: str, classes: Sequence[str], where: str) -> int:
    v = value.strip()
    if v in classes:
        return classes.index(v)
    if v.lstrip("-").isdigit() and 0 <= int(v) < len(classes):
        return int(v)
    raise PredictionError(f"{where}: class {value!r} is not one of the {len(classes)} classes "
                          f"(a name such as {classes[0]!r}, or an index 0..{len(classes) - 1})")


def read_table(path: Path, classes: Sequence[str], multilabel: bool) -> Table:
    """Parse and validate the whole file; errors name the file and line (and column)."""
    path = resolve(path)
    classes = list(classes)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PredictionError(f"{path}: unreadable ({type(exc).__name__}: {exc}); expected a UTF-8 CSV") from exc
    reader = csv.reader(text.splitlines())
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise PredictionError(f"{path}: empty; expected a header line starting with 'id'") from None
    except csv.Error as exc:
        raise PredictionError(f"{path}:1: not CSV ({exc})") from exc
    single = "labels" if multilabel else "class"
    if not header or header[0].lower() != "id" or len(header) < 2:
        raise PredictionError(f"{path}:1: header {','.join(header)!r}; expected 'id,{single}' or "
                              f"'id,<one column per class>'")
    if len(header) == 2 and header[1].lower() == single:
        layout, columns = single, []
    else:
        layout = "scores"
        columns = [_class_index(h, classes, f"{path}:1: column {n + 2}") for n, h in enumerate(header[1:])]
        missing = sorted(set(range(len(classes))) - set(columns))
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if missing or repeated:
            def show(idx: list[int]) -> str:
                return ", ".join(classes[i] for i in idx[:3]) + (" ..." if len(idx) > 3 else "")
            problems = ([f"missing {show(missing)}"] if missing else []) + \
                ([f"repeated {show(repeated)}"] if repeated else [])
            raise PredictionError(f"{path}:1: the score columns must name each of the {len(classes)} classes "
                                  f"exactly once; {'; '.join(problems)}")
    rows = {sid: _parse(fields, layout, columns, classes, multilabel, where, header)
            for sid, fields, where in id_rows(path, reader, len(header))}
    return Table(path, layout, rows)


def id_rows(path: Path, reader: Any, width: int) -> Iterator[tuple[str, list[str], str]]:
    """The data rows of a per-id prediction CSV whose header ``reader`` (a ``csv.reader``) has
    consumed: ``(id, the other fields, "file:line")`` for each non-blank row, after checking it
    has the header's ``width`` fields, an id, and an id not seen before."""
    first_line: dict[str, int] = {}
    try:
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            line = reader.line_num
            where = f"{path}:{line}"
            if len(row) != width:
                raise PredictionError(f"{where}: {len(row)} field(s); the header has {width}")
            sid = row[0].strip()
            if not sid:
                raise PredictionError(f"{where}: empty id")
            if sid in first_line:
                raise PredictionError(f"{where}: id {sid!r} again (first on line {first_line[sid]})")
            first_line[sid] = line
            yield sid, row[1:], where
    except csv.Error as exc:
        raise PredictionError(f"{path}:{reader.line_num}: not CSV ({exc})") from exc


def _parse(fields: list[str], layout: str, columns: list[int], classes: list[str], multilabel: bool,
           where: str, header: list[str]) -> Any:
    if layout == "class":
        return _class_index(fields[0], classes, where)
    if layout == "labels":
        score = np.zeros(len(classes), np.float32)
        for name in (n for n in fields[0].split(";") if n.strip()):
            score[_class_index(name, classes, where)] = 1.0
        return score
    score = np.zeros(len(classes), np.float32)
    for k, (col, value) in enumerate(zip(columns, fields)):
        try:
            v = float(value)
        except ValueError:
            v = math.nan
        if not math.isfinite(v) or (not multilabel and not 0 <= v <= 1):
            expected = "a finite number" if multilabel else "a probability in [0, 1]"
            raise PredictionError(f"{where}: column {header[k + 1]!r}: {value!r}; expected {expected}")
        score[col] = v
    return score


def check_unique(ids: Sequence[str], where: str) -> None:
    """Sample ids must identify samples: a split whose ids repeat cannot be scored from a CSV."""
    seen: set[str] = set()
    dup = [i for i in ids if i in seen or seen.add(i)]  # type: ignore[func-returns-value]
    if dup:
        raise DataLayoutError(f"{where}: sample id {dup[0]!r} is not unique ({len(dup)} repeated ids); "
                              "predictions by id cannot be told apart")


def reader(path: Path, classes: Sequence[str], multilabel: bool, ids: Sequence[str]) -> Any:
    """A ``rsbench score`` reader: fills one mmpretrain ``DataSample`` (found by its
    ``sample_idx`` in ``ids``, the test split in dataset order) from the CSV."""
    import torch

    from rsbench.run.scoring import MissingPrediction

    check_unique(ids, "test split")
    table = read_table(path, classes, multilabel)

    def read(ds: Any) -> None:
        sid = ids[int(ds.sample_idx)]
        if sid not in table.rows:
            raise MissingPrediction(f"id {sid}")
        value = table.rows[sid]
        if table.layout == "class":
            ds.set_pred_label(int(value))
            return
        score = torch.from_numpy(value.copy())
        ds.set_pred_score(score)
        # as mmpretrain's heads: classes above 0.5 (multi-label), else the arg-max
        ds.set_pred_label(torch.nonzero(score > 0.5).flatten() if multilabel else int(score.argmax()))

    return read


class CSVPredictions:
    """Task mixin: ``rsbench score`` reads this module's CSV. The task defines ``sample_ids``
    (the test split's ids in dataset order) and ``multilabel``; its test evaluator may hold the
    run's writer (:func:`writer_config`), which scoring leaves out."""

    multilabel = False

    def sample_ids(self, data: CheckedData) -> list[str]:
        raise NotImplementedError

    def prediction_reader(self, predictions: Path, data: CheckedData, cfg: dict[str, Any]) -> Any:
        return reader(predictions, data.classes, self.multilabel, self.sample_ids(data))

    def score(self, spec: Any, backbone: Any, data: CheckedData, cfg: dict[str, Any],
              predictions: Path) -> dict[str, Any]:
        """The generic loop (``Task.score``) without the writer: the predictions are the input."""
        cfg = dict(cfg, test_evaluator=without_writer(cfg["test_evaluator"]))
        return super().score(spec, backbone, data, cfg, predictions)  # type: ignore[misc]


def write_ids(path: Path, ids: Sequence[str]) -> str:
    """The test ids in dataset order, for the run's writer (too many for the config itself)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(ids)))
    return str(path)


def writer_config(out_file: Path, ids_file: str, classes: Sequence[str], scores: bool) -> dict[str, Any]:
    return dict(type=WRITER, out_file=str(out_file), ids_file=ids_file, classes=list(classes), scores=scores)


def without_writer(evaluator: Any) -> Any:
    """The test evaluator config less the prediction writer (``rsbench score`` reads predictions)."""
    items = evaluator if isinstance(evaluator, list) else [evaluator]
    return [m for m in items if m.get("type") != WRITER]
