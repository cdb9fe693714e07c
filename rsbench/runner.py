"""Run one evaluation: resolve the spec, check the data, build the config, train, test, and
append exactly one leaderboard row (ok, failed or skipped) whatever happens."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock

from rsbench import distributed, feature_cache, leaderboard
from rsbench.catalog import BackboneInfo, TaskInfo
from rsbench.checkpoint import sha256_file
from rsbench.errors import CheckpointError, DataLayoutError, RsbenchError
from rsbench.fixtures import is_fixture
from rsbench.plugins import get_catalog
from rsbench.provenance import config_hash, git_sha, package_versions, peak_memory_mb
from rsbench.spec import RunSpec
from rsbench.task import Task

LEADERBOARD = leaderboard.LEADERBOARD_NAME
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


class _Run:
    """State of one evaluation while it runs, so every exit path writes the same row."""

    def __init__(self, spec: RunSpec, results_dir: Path, record: RowWriter | None = None,
                 backbone: BackboneInfo | None = None) -> None:
        self.spec = spec
        self.results = results_dir / LEADERBOARD
        self.record = record or (lambda row: leaderboard.append_row(self.results, row))
        self.started = time.monotonic()
        #: The mmengine visualizer of a tracked run, closed with the final row (rsbench.tracking).
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
            checkpoint=spec.checkpoint or "",
            checkpoint_sha256="",
            task=spec.task,
            dataset=self.dataset.name,
            split=self.split,
            protocol=spec.protocol,
            metric=self.task_info.metric,
            metric_definition=self.task_info.metric_definition,
            value="",
            seed=spec.seed,
            config_hash="",
            git_sha=git_sha(),
            versions=json.dumps(package_versions(), sort_keys=True),
            device=spec.device,
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
            from rsbench import tracking

            tracking.finish(self.visualizer, self.row, self.metrics)
        return self.row


def run_evaluation(
    spec: RunSpec,
    results_dir: str | Path = "results",
    force: bool = False,
    show_progress: bool = True,
    verbose: bool = False,
    record: RowWriter | None = None,
) -> RunOutcome:
    """Run ``spec`` and append its row to ``results_dir/leaderboard.csv``.

    Unknown names and invalid spec values raise before anything is written. Every later
    failure (data layout, checkpoint, training) writes a ``failed`` row and re-raises; a
    backbone whose modalities do not fit the task writes a ``skipped`` row. ``record``
    replaces the CSV append (a suite's workers hand rows to its single writer instead).
    Two processes given the same work dir never run it at once: the second waits, then
    finds the first one's row and reuses it.
    """
    run = _Run(spec, Path(results_dir), record)
    task_info = run.task_info
    spec.validate(task_info.splits, dict(task_info.options))

    options = spec.with_options(dict(task_info.options))
    fits = modality_fit(run.backbone, task_info, options)
    if not fits:
        def show(m: Any) -> str:
            return "; ".join(f"{k} ({', '.join(v)})" for k, v in m.items())

        msg = (f"skipped: modality — backbone {spec.backbone!r} takes {show(run.backbone.modalities)}, "
               f"task {spec.task!r} provides {show(task_info.provided_modalities(options))}")
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
        if spec.checkpoint:
            if not Path(spec.checkpoint).is_file():
                raise CheckpointError(f"--checkpoint {spec.checkpoint}: no such file")
            run.row["checkpoint_sha256"] = sha256_file(spec.checkpoint)

        work_dir = (Path(spec.work_dir) if spec.work_dir else default_work_dir(spec)).resolve()
        if force and work_dir.exists():
            shutil.rmtree(work_dir)  # a forced rerun must not resume the old checkpoint
        work_dir.mkdir(parents=True, exist_ok=True)
        task, cfg = prepare(spec, run, fits, root, work_dir)

        with FileLock(str(work_dir / ".rsbench-run.lock")):
            if not force:
                previous = leaderboard.find_done(run.results, run.row)
                if previous is not None:
                    return RunOutcome(previous, reused=True)
            _forget_other_configs(work_dir, run.row["config_hash"])
            (work_dir / "run_spec.json").write_text(json.dumps(spec.as_dict(), indent=2, default=str))
            if spec.nproc > 1:
                metrics = distributed.launch(spec, run, cfg, task.imports, work_dir, show_progress, verbose)
            else:
                metrics = _execute(cfg, task.imports, run, work_dir, show_progress, verbose)
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


def prepare(spec: RunSpec, run: _Run, fits: list[str], root: Path, work_dir: Path) -> tuple[Task, dict[str, Any]]:
    """The task and the final config of ``spec``; fills the row's config hash and task fields."""
    task: Task = run.task_info.import_builder()(run.task_info, run.dataset, fits)
    data = task.check_data(root, spec)
    cfg = task.build_config(spec, run.backbone, data, work_dir)
    cfg = distributed.configure(cfg, spec.nproc, spec.device)
    if isinstance(cfg.get("test_cfg"), dict) and cfg["test_cfg"].get("type") == "TestLoop":
        cfg = dict(cfg, test_cfg=dict(cfg["test_cfg"], type="RSBTestLoop"))  # rsbench.loops: inference_mode
    hooks = []
    if spec.activation_checkpointing:
        hooks.append(dict(type="RSBActivationCheckpointHook"))
    if spec.memory_format != "contiguous":
        hooks.append(dict(type="RSBChannelsLastHook", force=spec.memory_format == "channels_last"))
    if hooks:
        cfg = dict(cfg, custom_hooks=[*cfg.get("custom_hooks", []), *hooks])
    run.row.update(config_hash=config_hash(cfg, str(work_dir)), work_dir=str(work_dir),
                   **task.row_fields(spec, run.backbone, data))
    cfg = apply_precision(cfg, spec.precision)
    # After the hash: the cache changes how features are obtained, never their values.
    cfg, run.row["feature_cache"] = feature_cache.plan(cfg, spec.protocol, spec.feature_cache,
                                                      dtype=spec.feature_cache_dtype)
    return task, cfg


def apply_precision(cfg: dict[str, Any], precision: str) -> dict[str, Any]:
    """``cfg`` trained with mmengine's ``AmpOptimWrapper`` in ``precision`` and tested under
    autocast (``TestLoop(fp16=True)``); unchanged for ``fp32``."""
    if precision == "fp32":
        return cfg
    out = dict(cfg)
    if isinstance(cfg.get("optim_wrapper"), dict):
        wrapper = {k: v for k, v in cfg["optim_wrapper"].items() if k != "type"}
        out["optim_wrapper"] = dict(wrapper, type="AmpOptimWrapper", dtype="bfloat16" if precision == "bf16" else "float16")
    if isinstance(cfg.get("test_cfg"), dict):
        out["test_cfg"] = dict(cfg["test_cfg"], fp16=True)
    return out


def _forget_other_configs(work_dir: Path, digest: str) -> None:
    """Resuming is only safe for the same config: drop checkpoints a different one left."""
    marker = work_dir / "config_hash"
    if marker.exists() and marker.read_text().strip() != digest:
        for stale in [*work_dir.glob("*.pth"), work_dir / "last_checkpoint"]:
            stale.unlink(missing_ok=True)
    marker.write_text(digest)


def _execute(cfg: dict[str, Any], imports: Sequence[str], run: _Run, work_dir: Path, show_progress: bool,
             verbose: bool) -> dict[str, Any]:
    """The heavy part: import the stack, build mmengine's Runner, train and test."""
    spec, backbone = run.spec, run.backbone
    if spec.device == "cpu":
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    import importlib

    from mmengine.config import Config
    from mmengine.runner import Runner

    from rsbench.guards import FiniteLossHook
    from rsbench.progress import RichProgressHook, make_progress
    from rsbench.resume import WeightsOnlyCheckpointHook, allow_mmengine_checkpoint_globals

    allow_mmengine_checkpoint_globals()
    feature_cache.register()
    importlib.import_module("rsbench.compute_options")  # registers its hooks
    importlib.import_module("rsbench.loops")  # RSBTestLoop
    backbone.import_builder()
    for module in imports:  # the task's: they register its components
        importlib.import_module(module)

    cfg = dict(cfg, work_dir=str(work_dir), experiment_name=f"rsbench-{run.row['run_id']}-{uuid.uuid4().hex[:6]}",
               log_level="INFO" if verbose else "WARNING")
    if spec.track:
        from rsbench import tracking

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
        cache = getattr(runner.model, "backbone", None)
        if hasattr(cache, "hits") and hasattr(cache, "misses"):  # rsbench.feature_cache
            run.row["feature_cache"] += f"; {cache.hits} of {cache.hits + cache.misses} sample lookups from the cache"
        return metrics
    finally:
        if progress is not None:
            progress.stop()


def failure_row(spec: RunSpec, error: str) -> dict[str, Any]:
    """The ``failed`` row of an evaluation whose process died before it could write its own."""
    run = _Run(spec, Path("."), record=lambda row: None)
    return run.finish("failed", error=error)
