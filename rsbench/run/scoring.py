"""Score predictions made elsewhere with the very metric code an ``rsbench run`` uses.

``rsbench score`` builds the task's config for an *external* backbone (one that takes every
band the task provides; the model part is never built), takes the ground truth from the test
dataset exactly as a run's test loop does, asks the task's prediction reader to fill each data
sample with the predicted fields a model would have produced, and feeds the run's own test
evaluator. Perfect predictions therefore score the metric's maximum, and a run's own exported
predictions score the run's value.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rsbench.errors import DataLayoutError, PredictionError, RsbenchError
from rsbench.plugin_api.catalog import BackboneInfo, TaskInfo
from rsbench.results import leaderboard

EXTERNAL_PREFIX = "external:"
EXTERNAL_PROTOCOL = "external"
#: How many missing prediction names an error lists before it only counts the rest.
_SHOWN = 3


class MissingPrediction(PredictionError):
    """Raised by a reader for one sample whose prediction is absent; the scorer collects them
    all, so the error names the first one and how many more are missing."""


#: A reader fills one data sample (an mmengine ``BaseDataElement``) with predicted fields.
PredictionReader = Callable[[Any], None]


def external_backbone(name: str, task: TaskInfo) -> BackboneInfo:
    """The stand-in backbone of an external model: it takes every band the task provides."""
    return BackboneInfo(
        name=EXTERNAL_PREFIX + name, module="", mm_type="ExternalPredictions",
        modalities={m: tuple(b) for m, b in task.modalities.items()},
        out_channels=(64, 128, 256, 512), out_strides=(4, 8, 16, 32), pooled_channels=512, params=0,
        family="external", description="predictions made outside rsbench",
    )


def predictions_digest(path: Path) -> str:
    """sha256 over the prediction file, or over every file's relative name and bytes in a folder."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path) if f != path else f.name).encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def evaluate_predictions(cfg: dict[str, Any], imports: tuple[str, ...], reader: PredictionReader,
                         predictions: Path) -> dict[str, Any]:
    """Ground truth from ``cfg``'s test dataset, predictions from ``reader``, metrics from
    ``cfg``'s test evaluator. Every sample is read before any error is raised, so the error names
    the first missing or malformed prediction and says how many more there are."""
    from mmengine.evaluator import Evaluator
    from mmengine.logging import MMLogger
    from mmengine.registry import DATASETS, DefaultScope

    MMLogger.get_instance(f"rsbench-score-{uuid.uuid4().hex}", log_level="WARNING")  # the metrics' tables stay quiet
    for module in imports:
        importlib.import_module(module)
    with DefaultScope.overwrite_default_scope(cfg.get("default_scope", "mmengine")):
        dataset = DATASETS.build(cfg["test_dataloader"]["dataset"])
        evaluator = Evaluator(cfg["test_evaluator"])
        evaluator.dataset_meta = dataset.metainfo
        problems: list[PredictionError] = []
        for i in range(len(dataset)):
            item = dataset[i]
            sample = item["data_samples"]
            try:
                reader(sample)
            except PredictionError as exc:  # missing or malformed: keep going to count them all
                problems.append(exc)
                continue
            if not problems:
                evaluator.process([sample], dict(inputs=[item["inputs"]], data_samples=[sample]))
        if problems:
            raise PredictionError(_summary(problems, predictions, len(dataset)))
        if len(dataset) == 0:
            raise DataLayoutError(f"task test split is empty; nothing to score")
        return dict(evaluator.evaluate(len(dataset)))


def _summary(problems: list[PredictionError], predictions: Path, total: int) -> str:
    """The first problem, and how many more samples have one (missing / malformed)."""
    first = problems[0]
    text = f"{predictions}: missing prediction {first}" if isinstance(first, MissingPrediction) else str(first)
    if len(problems) > 1:
        missing = sum(isinstance(p, MissingPrediction) for p in problems)
        kinds = "" if missing == len(problems) else f": {missing} missing, {len(problems) - missing} malformed"
        text += f" (and {len(problems) - 1} more of {total} samples{kinds})"
    return text


def score_predictions(task: str, data_root: str | Path, predictions: str | Path, name: str,
                      split: str | None = None, results_dir: str | Path = "results",
                      work_dir: str | Path | None = None, options: dict[str, Any] | None = None,
                      force: bool = False) -> tuple[dict[str, Any], bool]:
    """Score ``predictions`` on ``task``'s split and append one leaderboard row
    (``backbone=external:NAME``, ``protocol=external``). Returns the row and whether an
    identical ok row (same predictions bytes) was reused."""
    from rsbench.plugin_api.plugin_host import get_catalog
    from rsbench.run.runner import RunRecord, prepare
    from rsbench.run.spec import RunSpec

    if not name or any(c in name for c in ",/\\"):
        raise RsbenchError(f"--name {name!r}: expected a non-empty name without commas or slashes")
    catalog = get_catalog()
    info = catalog.tasks.get(task)
    backbone = external_backbone(name, info)
    # Nothing is trained: the shortest schedule keeps the protocol card's training arithmetic
    # (effective batch, accumulation) out of a config whose test part alone is used.
    spec = RunSpec(backbone=backbone.name, task=task, data_root=str(data_root), split=split,
                   options=dict(options or {}), max_iters=1)
    spec.validate(info.splits, dict(info.options))
    root, preds = Path(data_root), Path(predictions)
    if not root.is_dir():
        raise DataLayoutError(f"--data-root {root}: no such directory")
    if not preds.exists():
        raise PredictionError(f"--predictions {preds}: no such file or directory")

    spec = spec.resolved_for(info)
    run = RunRecord(spec, Path(results_dir), backbone=backbone)
    run.row.update(protocol=EXTERNAL_PROTOCOL, checkpoint=str(preds.resolve()),
                   checkpoint_sha256=predictions_digest(preds), device="", run_key="")
    try:
        wd = Path(work_dir) if work_dir else Path("work_dirs") / task / backbone.name.replace(":", "_") / "score"
        wd = wd.resolve()
        wd.mkdir(parents=True, exist_ok=True)
        ready = prepare(spec, run, list(info.modalities), root, wd)
        task_obj, data, cfg = ready.task, ready.data, ready.final.cfg
        # The identity of a score: the predictions' bytes (checkpoint_sha256) and the config.
        run.row.update(run_key=ready.final.config_hash, adapter="external predictions", feature_cache="")
        if not force:
            previous = leaderboard.find_done(run.results, run.row)
            if previous is not None:
                return previous, True
        metrics = task_obj.score(spec, backbone, data, cfg, preds)
        value = task_obj.metric_value(metrics)
        (wd / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_plain))
        if value is None or np.isnan(value):
            value = None
        return run.finish("ok", value=value), False
    except Exception as exc:
        message = str(exc) if isinstance(exc, RsbenchError) else f"{type(exc).__name__}: {exc}"
        run.finish("failed", error=message)
        raise


def _plain(obj: Any) -> Any:
    return obj.tolist() if hasattr(obj, "tolist") else str(obj)


# -- readers' building blocks ------------------------------------------------------------
def read_id_map(path: Path) -> np.ndarray:
    """A single-band image of integer ids (PNG or GeoTIFF) as a 2-D array; a JPEG is refused
    (its compression turns ids into other ids)."""
    from rsbench.io import raster
    info = raster.raster_info(path, error=PredictionError)
    raster.require_lossless(info, "a map of class ids", error=PredictionError)
    if info.bands != 1:
        raise PredictionError(f"{path}: shape {info.shape}; expected a single-band image of class ids")
    return raster.read_raster(path, error=PredictionError)[..., 0]


def find_prediction(folder: Path, stems: list[str], suffixes: tuple[str, ...] = (".png", ".tif", ".tiff")) -> Path:
    """The first ``folder/<stem><suffix>`` that exists; :class:`MissingPrediction` naming the
    first candidate otherwise."""
    for stem in stems:
        for suffix in suffixes:
            candidate = folder / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    raise MissingPrediction(f"{stems[0]}{suffixes[0]}")


def check_ids(arr: np.ndarray, n_classes: int, path: Path, allowed: tuple[int, ...] = ()) -> np.ndarray:
    """``arr`` as int64 after checking every id is a class (or one of ``allowed``, e.g. 255)."""
    ids = np.unique(arr)
    bad = [int(v) for v in ids if not (0 <= v < n_classes or int(v) in allowed)]
    if bad:
        extra = f" or {', '.join(map(str, allowed))}" if allowed else ""
        raise PredictionError(f"{path}: class ids {bad[:5]} outside 0..{n_classes - 1}{extra}")
    return arr.astype(np.int64)
