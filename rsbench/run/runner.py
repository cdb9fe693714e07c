"""Run one evaluation: resolve the spec, find a finished row or check the data, build and
finalise the config, train, test, and append exactly one leaderboard row (ok, failed or
skipped) whatever happens. ``RunRecord``, ``prepare`` and ``execute`` are the steps
``rsbench.run.distributed`` and ``rsbench.run.scoring`` reuse."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock

from rsbench.engine import feature_cache
from rsbench.errors import CheckpointError, DataLayoutError, RsbenchError, SpecError
from rsbench.io.checkpoint import sha256_file
from rsbench.io.fixtures import is_fixture
from rsbench.plugin_api.catalog import BackboneInfo, TaskInfo
from rsbench.plugin_api.checked_data import CheckedData
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.plugin_api.task import Task
from rsbench.protocol import input_rules
from rsbench.protocol.protocol_card import applied, task_card
from rsbench.results import leaderboard
from rsbench.run import distributed
from rsbench.run.devices import check_device, device_name
from rsbench.run.provenance import git_sha, package_versions, peak_memory_mb
from rsbench.run.run_config import FinalConfig, finalise, run_key
from rsbench.run.spec import RunSpec

LEADERBOARD = leaderboard.LEADERBOARD_NAME
#: The work dir's lock file: one process runs an evaluation at a time.
LOCK = ".rsbench-run.lock"
RowWriter = Callable[[dict[str, Any]], None]


@dataclass
class RunOutcome:
    row: dict[str, Any]
    #: True when an ``ok`` row with the same identity existed and nothing ran.
    reused: bool = False

    @property
    def status(self) -> str:
        return str(self.row["status"])


def default_work_dir(spec: RunSpec) -> Path:
    safe = spec.backbone.replace(":", "_").replace("/", "_")
    return Path("work_dirs") / spec.task / safe / f"{spec.protocol}-seed{spec.seed}"


def modality_fit(backbone: BackboneInfo, task: TaskInfo, options: dict[str, Any] | None = None) -> list[str]:
    """The task's modalities the backbone can take: shared modalities for which the task
    provides (under ``options``) every band the backbone needs (empty: the pair does not fit)."""
    return [m for m, bands in task.provided_modalities(options).items()
            if m in backbone.modalities and set(backbone.modalities[m]) <= set(bands)]


class RunRecord:
    """One evaluation's leaderboard row while it runs, so every exit path writes the same row.

    Used by the runner, by each rank of a multi-process run (``rsbench.run.distributed``) and by
    ``rsbench score``; ``finish`` writes the row (through ``record``) exactly once per path.
    """

    def __init__(self, spec: RunSpec, results_dir: Path, record: RowWriter | None = None,
                 backbone: BackboneInfo | None = None) -> None:
        self.spec = spec
        self.results = results_dir / LEADERBOARD
        self.record = record or (lambda row: leaderboard.append_row(self.results, row))
        self.started = time.monotonic()
        #: The mmengine visualizer of a tracked run, closed with the final row (rsbench.engine.tracking).
        self.visualizer: Any = None
        self.metrics: dict[str, Any] = {}
        #: Peak memory of work done in other processes (the workers of a multi-process run).
        self.worker_peak_mb = 0.0
        catalog = get_catalog()
        self.backbone = backbone or catalog.backbone(spec.backbone)
        self.task_info = catalog.tasks.get(spec.task)
        self.dataset = catalog.datasets.get(self.task_info.dataset)
        self.split = spec.split or self.task_info.default_split
        self.row: dict[str, Any] = dict(
            run_id=uuid.uuid4().hex[:12],
            timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            backbone=spec.backbone,
            checkpoint=_checkpoint_text(spec),
            checkpoint_sha256="",
            task=spec.task,
            dataset=self.dataset.name,
            split=self.split,
            protocol=spec.protocol,
            precision=spec.precision,
            metric=self.task_info.metric,
            metric_definition=self.task_info.metric_definition,
            value="",
            seed=spec.seed,
            run_key="",
            config_hash="",
            card=card_record(self.task_info, spec),
            git_sha=git_sha(),
            versions=json.dumps(package_versions(), sort_keys=True),
            device=spec.device,
            device_name="",
            nproc=spec.nproc,
            data_root=spec.data_root or "",
            fixture=is_fixture(spec.data_root),
            options=json.dumps(spec.with_options(dict(self.task_info.options)), sort_keys=True),
            adapter="",
            normalization="",
            work_dir="",
        )

    def finish(self, status: str, error: str = "", value: float | None = None) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        self.row.update(
            status=status,
            error=error,
            value="" if value is None else round(float(value), 4),
            wall_time_s=round(elapsed, 2),
            peak_mem_mb=round(max(peak_memory_mb(self.spec.device), self.worker_peak_mb), 1),
            gpu_hours=round(elapsed * self.spec.nproc / 3600, 4) if self.spec.device == "cuda" else "",  # a GPU per process
        )
        self.record(self.row)
        if self.visualizer is not None:
            from rsbench.engine import tracking
            tracking.finish(self.visualizer, self.row, self.metrics)
        return self.row


def _checkpoint_text(spec: RunSpec) -> str:
    """The row's ``checkpoint``: the file, or ``part=file`` for each encoder file."""
    return ";".join(f"{part}={path}" if part else path for part, path in spec.checkpoint_files().items())


def card_record(task: TaskInfo, spec: RunSpec) -> str:
    """The row's ``card``: ``<task>@<version>`` of the protocol card the run followed, or why it
    did not follow it (``rsbench.protocol.protocol_card.applied``); ``""`` when the task has none."""
    return applied(task_card(task, spec.options), spec)


def run_evaluation(
    spec: RunSpec,
    results_dir: str | Path = "results",
    force: bool = False,
    show_progress: bool = True,
    verbose: bool = False,
    record: RowWriter | None = None,
) -> RunOutcome:
    """Run ``spec`` and append its row to ``results_dir/leaderboard.csv``.

    Unknown names and invalid spec values (the device included) raise before anything is
    written. An evaluation whose identity (:func:`rsbench.run.run_config.run_key`) already has an
    ``ok`` row is found before any data is read and not run again unless ``force``. Every later
    failure (data layout, checkpoint, training) writes a ``failed`` row and re-raises; a
    backbone whose modalities do not fit the task writes a ``skipped`` row. ``record``
    replaces the CSV append (a suite's workers hand rows to its single writer instead).
    Two processes given the same work dir never run it at once: the second waits, then
    finds the first one's row and reuses it.
    """
    catalog = get_catalog()
    task_info = catalog.tasks.get(spec.task)
    spec.validate(task_info.splits, dict(task_info.options))
    spec = spec.resolved_for(task_info)  # options merged once, here
    check_device(spec.device, spec.nproc)
    if spec.device == "cuda" and getattr(task_info.load_task_class(), "needs_mmcv_ops", False):
        from rsbench.cli.doctor import cuda_ops_status

        ok, why = cuda_ops_status()
        if not ok:  # mmcv built without CUDA kernels: the detector would fail at its first RoIAlign
            raise SpecError(f"--device cuda for task {spec.task!r}: {why} (rebuild with ./setup.sh --cuda-ops)")
    backbone = catalog.backbone(spec.backbone)
    fits = modality_fit(backbone, task_info, spec.options)
    if fits:  # sizes the backbone cannot take: adapt a resize, or stop with one sentence and no row
        plan = input_rules.check(backbone, task_info, spec.options, fits)
        if plan.changed:
            spec = replace(spec, options=plan.options)
    run = RunRecord(spec, Path(results_dir), record, backbone=backbone)

    if not fits:
        def show(m: Any) -> str:
            return "; ".join(f"{k} ({', '.join(v)})" for k, v in m.items())

        msg = (f"skipped: modality — backbone {spec.backbone!r} takes {show(run.backbone.modalities)}, "
               f"task {spec.task!r} provides {show(task_info.provided_modalities(spec.options))}")
        previous = leaderboard.find_done(run.results, run.row, statuses=("skipped",))
        if previous is not None and not force:
            return RunOutcome(previous, reused=True)
        return RunOutcome(run.finish("skipped", error=msg))

    try:
        if not spec.data_root:
            raise DataLayoutError(f"task {spec.task!r} needs --data-root (the {run.dataset.title} folder)")
        root = Path(spec.data_root)
        if not root.is_dir():
            raise DataLayoutError(f"--data-root {root}: no such directory (expected the {run.dataset.title} layout)")
        digests = {}
        for part, path in spec.checkpoint_files().items():
            if not Path(path).is_file():
                raise CheckpointError(f"--checkpoint {part + '=' if part else ''}{path}: no such file")
            digests[part] = sha256_file(path)
        run.row["checkpoint_sha256"] = ";".join(f"{p}={d}" if p else d for p, d in digests.items())
        run.row["run_key"] = run_key(spec, digests, run.row["card"])

        work_dir = (Path(spec.work_dir) if spec.work_dir else default_work_dir(spec)).resolve()
        work_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(work_dir / LOCK)):
            if not force:
                previous = leaderboard.find_done(run.results, run.row)
                if previous is not None:
                    return RunOutcome(previous, reused=True)
            else:
                _clear(work_dir)  # a forced rerun must not resume the old checkpoint
            ready = prepare(spec, run, fits, root, work_dir)
            task, final = ready.task, ready.final
            _forget_other_configs(work_dir, final.config_hash)
            (work_dir / "run_spec.json").write_text(json.dumps(spec.as_dict(), indent=2, default=str))
            if spec.nproc > 1:
                metrics = distributed.launch(spec, run, final.cfg, task.imports, work_dir, show_progress, verbose)
            else:
                metrics = execute(final.cfg, task.imports, run, work_dir, show_progress, verbose)
            run.metrics = metrics
            value = task.metric_value(metrics)
            if value is None or math.isnan(value):  # e.g. a server-only split: predictions, no score
                value = None
            (work_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
            return RunOutcome(run.finish("ok", value=value))
    except KeyboardInterrupt:
        run.finish("failed", error="interrupted (KeyboardInterrupt)")
        raise
    except Exception as exc:
        message = str(exc) if isinstance(exc, RsbenchError) else f"{type(exc).__name__}: {exc}"
        run.finish("failed", error=message)
        raise


@dataclass(frozen=True)
class Prepared:
    """An evaluation ready to execute: its task, the checked data summary, the final config."""

    task: Task
    data: CheckedData
    final: FinalConfig


def prepare(spec: RunSpec, run: RunRecord, fits: Sequence[str], root: Path, work_dir: Path) -> Prepared:
    """Check the data and build the final config of the resolved ``spec``; fills the row's
    config hash and the task's own fields."""
    task: Task = run.task_info.load_task_class()(run.task_info, run.dataset, list(fits))
    data = task.check_data(root, spec)
    if not isinstance(data, CheckedData):
        raise TypeError(f"task {spec.task!r}: check_data returned {type(data).__name__}, expected "
                        "rsbench.plugin_api.checked_data.CheckedData")
    # Sizes that depend on the images (a resize capped at their native size): a failed row if broken.
    run.row["input_size"] = input_rules.check(run.backbone, run.task_info, spec.options, fits, data=data).row_value()
    final = finalise(task.build_config(spec, run.backbone, data, work_dir), spec, work_dir)
    run.row.update(config_hash=final.config_hash, work_dir=str(work_dir), feature_cache=final.feature_cache,
                   data_layout=data.layout, **task.row_fields(spec, run.backbone, data))
    return Prepared(task, data, final)


def _clear(work_dir: Path) -> None:
    """Everything in ``work_dir`` but its lock file."""
    for child in work_dir.iterdir():
        if child.name == LOCK:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _forget_other_configs(work_dir: Path, digest: str) -> None:
    """Resuming is only safe for the same config: drop checkpoints a different one left."""
    marker = work_dir / "config_hash"
    if marker.exists() and marker.read_text().strip() != digest:
        for stale in [*work_dir.glob("*.pth"), work_dir / "last_checkpoint"]:
            stale.unlink(missing_ok=True)
    marker.write_text(digest)


def execute(cfg: dict[str, Any], imports: Sequence[str], run: RunRecord, work_dir: Path, show_progress: bool,
            verbose: bool) -> dict[str, Any]:
    """The heavy part: import the stack, build mmengine's Runner, train and test ``cfg``
    (a :func:`rsbench.run.run_config.finalise`d config; ``imports``: the task's modules). Fills
    the row's device name and backbone weights accounting."""
    spec, backbone = run.spec, run.backbone
    if spec.device == "cpu":
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    import importlib

    from mmengine.config import Config
    from mmengine.runner import Runner

    from rsbench.engine.guards import FiniteLossHook
    from rsbench.engine.progress import RichProgressHook, make_progress
    from rsbench.run.resume import WeightsOnlyCheckpointHook, allow_mmengine_checkpoint_globals

    allow_mmengine_checkpoint_globals()
    feature_cache.register()
    importlib.import_module("rsbench.engine.compute_options")  # registers its hooks
    importlib.import_module("rsbench.engine.loops")  # RSBTestLoop
    backbone.register_type()
    for module in imports:  # the task's: they register its components
        importlib.import_module(module)

    cfg = dict(cfg, work_dir=str(work_dir), experiment_name=f"rsbench-{run.row['run_id']}-{uuid.uuid4().hex[:6]}",
               log_level="INFO" if verbose else "WARNING")
    if spec.track:
        from rsbench.engine import tracking
        tags = {k: run.row[k] for k in ("run_id", "backbone", "task", "protocol", "seed", "config_hash")}
        cfg["visualizer"] = tracking.visualizer_config(
            tracking.check_trackers(spec.track), work_dir, f"{spec.backbone} · {spec.task} · seed {spec.seed}", tags)
    config = Config(cfg, format_python_code=False)  # yapf formatting costs ~2 s per dump
    config.dump(str(work_dir / "config.py"))
    runner = Runner.from_cfg(config)
    if spec.track:
        run.visualizer = runner.visualizer
    runner.register_hook(WeightsOnlyCheckpointHook(), priority="VERY_LOW")
    runner.register_hook(FiniteLossHook(), priority="VERY_LOW")
    progress = make_progress() if show_progress else None
    label = f"{spec.backbone} · {spec.task}"
    if progress is not None:
        runner.register_hook(RichProgressHook(progress, label), priority="VERY_LOW")
        progress.start()
    try:
        if cfg.get("train_cfg"):
            runner.train()
            runner._has_loaded = True  # test the model in memory, do not reload a checkpoint
        metrics = dict(runner.test())
        model = getattr(runner.model, "module", runner.model)  # DDP wraps it
        backbone_module = getattr(model, "backbone", None)
        if hasattr(backbone_module, "hits") and hasattr(backbone_module, "misses"):  # rsbench.engine.feature_cache
            run.row["feature_cache"] += (f"; {backbone_module.hits} of {backbone_module.hits + backbone_module.misses} "
                                         "sample lookups from the cache")
            backbone_module = getattr(backbone_module, "backbone", backbone_module)
        run.row.update(device_name=device_name(spec.device), **weights_fields(backbone_module, spec))
        return metrics
    finally:
        if progress is not None:
            progress.stop()


def weights_fields(backbone: Any, spec: RunSpec) -> dict[str, Any]:
    """The row's account of the backbone's weights (``RSBackbone.weight_accounting``): how many
    parameters on the forward path came from the checkpoints and how many are still at
    initialisation. Random weights on the path of a run given a checkpoint are in the row's
    ``weights_warning``; the console got the backbone's own warning when it loaded its weights."""
    account = getattr(backbone, "weight_accounting", None)
    if account is None:
        return {}
    facts = account()
    fields: dict[str, Any] = dict(backbone_params_loaded=facts.get("loaded", 0),
                                  backbone_params_random=facts.get("initialised", 0), weights_warning="")
    if spec.checkpoint_files() and fields["backbone_params_random"]:
        modules = ", ".join(facts.get("initialised_modules", [])) or "unnamed modules"
        fields["weights_warning"] = (f"{fields['backbone_params_random']:,} backbone parameters on the forward path "
                                     f"are at initialisation, not from the checkpoint ({modules})")
    return fields


def failure_row(spec: RunSpec, error: str) -> dict[str, Any]:
    """The ``failed`` row of an evaluation whose process died before it could write its own."""
    run = RunRecord(spec, Path("."), record=lambda row: None)
    return run.finish("failed", error=error)
