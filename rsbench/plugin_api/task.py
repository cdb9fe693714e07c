"""The task contract: how one evaluation turns a run spec into an mmengine config.

Task plugins subclass :class:`Task`; the runner does the rest (spec checks, provenance,
progress, the leaderboard row), so a task holds only what is specific to its evaluation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rsbench.errors import PredictionError
from rsbench.plugin_api.catalog import BackboneInfo, DatasetInfo, TaskInfo
from rsbench.plugin_api.checked_data import CheckedData
from rsbench.run.spec import RunSpec


class Task(ABC):
    """One evaluation's plugin side. Subclasses implement :meth:`build_config` and
    :meth:`metric_value`; the rest has working defaults. The contract, step by step:

    1. ``check_data(root, spec)`` reads the official layout and returns its
       :class:`~rsbench.plugin_api.checked_data.CheckedData` (the dataset checker's summary, the
       samples this run trains on and evaluates) or raises ``DataLayoutError`` naming the file
       and what was expected;
    2. ``build_config(spec, backbone, data, work_dir)`` returns the plain-data mmengine config of
       the *resolved* spec (options merged once, by the runner: read ``spec.options`` or
       ``data.options``; ``spec.split`` is filled); what it works out from the data for the row
       goes to ``data.derived``; the core finalises the config
       (``rsbench.run.run_config.finalise``) — a task never sets the test loop, precision, hooks of
       the core, distribution or the feature cache itself;
    3. ``metric_value(metrics)`` picks the headline number from ``runner.test()``;
    4. ``row_fields`` adds the task's own leaderboard fields; ``prediction_reader`` and
       ``score`` serve ``rsbench score``.
    """

    #: mmengine default scope the generated config resolves unprefixed names in.
    default_scope = "mmengine"
    #: Modules to import before building (they register the library's components).
    imports: tuple[str, ...] = ()
    #: Whether the task's model runs mmcv's compiled ops (RoIAlign, NMS, rotated boxes): on
    #: ``--device cuda`` the runner then checks that they have CUDA kernels before anything runs.
    needs_mmcv_ops: bool = False

    def __init__(self, info: TaskInfo, dataset: DatasetInfo, modalities: Sequence[str] = ()) -> None:
        self.info = info
        self.dataset = dataset
        #: The task's modalities this run feeds the backbone (those it can take; see the runner).
        self.modalities = tuple(modalities) or tuple(info.modalities)

    def backbone_config(self, spec: RunSpec, backbone: BackboneInfo, **overrides: Any) -> dict[str, Any]:
        """The backbone's model config for this run: checkpoints, freezing and input modalities."""
        if spec.encoder_checkpoints:  # only then: a backbone without encoder parts never sees the key
            overrides = dict(encoder_checkpoints=dict(spec.encoder_checkpoints), **overrides)
        return backbone.config(checkpoint=spec.checkpoint, strict=spec.strict_load,
                               frozen=spec.protocol in ("frozen", "linear"),
                               in_modalities=list(self.modalities), **overrides)

    def check_data(self, root: Path, spec: RunSpec) -> CheckedData:
        """Check the official layout under ``root``: the dataset checker's summary, typed."""
        return CheckedData.from_summary(self.dataset.check(root), split=spec.split, options=spec.options)

    @abstractmethod
    def build_config(
        self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData, work_dir: Path
    ) -> dict[str, Any]:
        """The complete mmengine config (plain data) for this evaluation."""

    def runtime_config(self, spec: RunSpec, max_iters: int, log_interval: int = 50) -> dict[str, Any]:
        """The mmengine settings every task shares: hooks (a checkpoint every quarter of the
        schedule but at most once a minute, so an interrupted run resumes), seeding,
        environment, resume."""
        return dict(
            default_hooks=dict(
                timer=dict(type="IterTimerHook"),
                logger=dict(type="LoggerHook", interval=log_interval, log_metric_by_epoch=False),
                param_scheduler=dict(type="ParamSchedulerHook"),
                checkpoint=dict(type="RSBCheckpointHook", by_epoch=False, interval=max(1, max_iters // 4),
                                max_keep_ckpts=1, save_last=True, min_seconds=60),
                sampler_seed=dict(type="DistSamplerSeedHook"),
            ),
            log_processor=dict(by_epoch=False),
            randomness=dict(seed=spec.seed, deterministic=spec.device == "cpu"),
            env_cfg=dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
                         dist_cfg=dict(backend="nccl" if spec.device == "cuda" else "gloo")),
            launcher="none",
            resume=True,
        )

    @abstractmethod
    def metric_value(self, metrics: dict[str, Any]) -> float | None:
        """The task's headline metric from ``runner.test()``'s result, in percent; ``None`` (or
        NaN) when the split has no score (a server-only test split: predictions are written)."""

    def row_fields(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData) -> dict[str, Any]:
        """Extra leaderboard fields (adapter, normalization, split details)."""
        return {}

    # -- external predictions (rsbench score) -----------------------------------------
    def prediction_reader(self, predictions: Path, data: CheckedData, cfg: dict[str, Any]) -> Any:
        """A callable that fills one test data sample with the fields this task's model would
        predict, read from ``predictions`` in the dataset's customary submission format; it
        raises ``rsbench.run.scoring.MissingPrediction`` for an absent sample and
        ``PredictionError`` naming the file for a malformed one."""
        raise PredictionError(f"task {self.info.name!r} does not read external predictions")

    def score(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData, cfg: dict[str, Any],
              predictions: Path) -> dict[str, Any]:
        """Metrics of external predictions, computed by this task's own test evaluator on the
        ground truth of its own test dataset (``cfg`` is what ``build_config`` returned)."""
        from rsbench.run.scoring import evaluate_predictions

        return evaluate_predictions(cfg, self.imports, self.prediction_reader(predictions, data, cfg), predictions)
