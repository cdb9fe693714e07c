"""Experiment tracking: a run's losses, metrics, config and leaderboard row, handed to
mmengine's own visualizer backends (TensorBoard, MLflow, Weights & Biases).

mmengine closes the visualizer at the end of ``train()``, before ``test()`` logs its metrics and
long before rsbench knows the leaderboard row. The backends registered here are mmengine's with
one change: ``close`` waits until rsbench calls :func:`finish` with the row, so one evaluation is
one tracked run holding everything (the row's fields become tags / a text entry).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rsbench.errors import SpecError

#: ``--track`` name -> (mmengine backend it extends, the module it needs, pip name).
TRACKERS: dict[str, tuple[str, str, str]] = {
    "tensorboard": ("TensorboardVisBackend", "tensorboard", "tensorboard"),
    "mlflow": ("MLflowVisBackend", "mlflow", "mlflow-skinny"),
    "wandb": ("WandbVisBackend", "wandb", "wandb"),
}
#: Row fields that make useful tags (the long ones stay in the leaderboard).
TAG_FIELDS = ("run_id", "backbone", "task", "dataset", "split", "protocol", "metric", "value", "seed",
              "status", "error", "config_hash", "checkpoint_sha256", "git_sha", "fixture", "options",
              "wall_time_s", "peak_mem_mb", "feature_cache")


def check_trackers(names: Sequence[str]) -> list[str]:
    """Validate ``--track`` names and that their libraries are installed (before any run starts)."""
    out = []
    for name in names:
        if name not in TRACKERS:
            raise SpecError(f"--track {name!r}: expected one of {', '.join(TRACKERS)}")
        module, pip = TRACKERS[name][1], TRACKERS[name][2]
        if importlib.util.find_spec(module) is None:
            raise SpecError(f"--track {name}: the {module!r} package is not installed (pip install {pip})")
        out.append(name)
    return out


def visualizer_config(names: Sequence[str], work_dir: Path, run_name: str, tags: Mapping[str, Any]) -> dict[str, Any]:
    """The ``visualizer`` entry of an mmengine config logging to ``names``.

    MLflow logs to ``$MLFLOW_TRACKING_URI`` when set, else to the file store ``<work_dir>/mlruns``; TensorBoard
    writes event files under ``<work_dir>/vis_data``; W&B follows its own environment
    (``WANDB_MODE=offline`` works without a network)."""
    register()
    backends: list[dict[str, Any]] = [dict(type="LocalVisBackend")]
    clean_tags = {k: str(v) for k, v in tags.items()}
    for name in names:
        if name == "tensorboard":
            backends.append(dict(type="RSBTensorboardVisBackend"))
        elif name == "mlflow":
            uri = os.environ.get("MLFLOW_TRACKING_URI")
            if not uri:  # a local file store needs no server; MLflow 3 asks to opt in to it
                uri = (work_dir / "mlruns").resolve().as_uri()
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            backends.append(dict(type="RSBMLflowVisBackend", exp_name="rsbench", run_name=run_name,
                                 tags=clean_tags, tracking_uri=uri,
                                 tracked_config_keys=["model", "train_cfg", "optim_wrapper", "param_scheduler",
                                                      "randomness"]))
        elif name == "wandb":
            backends.append(dict(type="RSBWandbVisBackend",
                                 init_kwargs=dict(project=os.environ.get("WANDB_PROJECT", "rsbench"),
                                                  name=run_name, tags=[f"{k}:{v}" for k, v in clean_tags.items()][:20])))
    return dict(type="Visualizer", vis_backends=backends)


def finish(visualizer: Any, row: Mapping[str, Any], metrics: Mapping[str, Any] | None = None) -> None:
    """Give every tracked backend the test metrics (mmengine logs them only to its JSON file)
    and the row, then close them for real."""
    if visualizer is None:
        return
    tags = {k: str(row.get(k, "")) for k in TAG_FIELDS}
    scalars = {f"test/{k}": float(v) for k, v in (metrics or {}).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v}
    for backend in getattr(visualizer, "_vis_backends", {}).values():
        if hasattr(backend, "finish"):
            if scalars:
                backend.add_scalars(scalars, step=0)
            backend.finish(tags)


def register() -> None:
    """Register the row-aware backends into mmengine's root ``VISBACKENDS`` (idempotent)."""
    from mmengine.registry import VISBACKENDS
    from mmengine.visualization import MLflowVisBackend, TensorboardVisBackend, WandbVisBackend

    if "RSBMLflowVisBackend" in VISBACKENDS.module_dict:
        return

    class _DeferredClose:
        """``close`` is a no-op until ``finish`` delivers the leaderboard row."""

        def close(self) -> None:  # mmengine calls this after train() and after test()
            pass

        def finish(self, tags: dict[str, str]) -> None:
            self._add_row(tags)
            super().close()  # type: ignore[misc]

    @VISBACKENDS.register_module(name="RSBMLflowVisBackend")
    class MLflow(_DeferredClose, MLflowVisBackend):
        def _add_row(self, tags: dict[str, str]) -> None:
            if hasattr(self, "_mlflow"):
                self._mlflow.set_tags({f"rsbench.{k}": v for k, v in tags.items()})
                if tags.get("value"):
                    self._mlflow.log_metric(f"rsbench/{tags['metric']}", float(tags["value"]))

    @VISBACKENDS.register_module(name="RSBTensorboardVisBackend")
    class Tensorboard(_DeferredClose, TensorboardVisBackend):
        def _add_row(self, tags: dict[str, str]) -> None:
            if hasattr(self, "_tensorboard"):
                table = "| field | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in tags.items())
                self._tensorboard.add_text("rsbench/leaderboard_row", table)
                if tags.get("value"):
                    self._tensorboard.add_scalar(f"rsbench/{tags['metric']}", float(tags["value"]))

    @VISBACKENDS.register_module(name="RSBWandbVisBackend")
    class Wandb(_DeferredClose, WandbVisBackend):
        def _add_row(self, tags: dict[str, str]) -> None:
            if hasattr(self, "_wandb"):
                self._wandb.run.summary.update({f"rsbench/{k}": v for k, v in tags.items()})
