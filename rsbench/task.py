"""The task contract: how one evaluation turns a run spec into an mmengine config.

Task plugins subclass :class:`Task`; the runner does the rest (spec checks, provenance,
progress, the leaderboard row), so a task holds only what is specific to its evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rsbench.catalog import BackboneInfo, DatasetInfo, TaskInfo
from rsbench.spec import RunSpec


class Task:
    #: mmengine default scope the generated config resolves unprefixed names in.
    default_scope = "mmengine"
    #: Modules to import before building (they register the library's components).
    imports: tuple[str, ...] = ()

    def __init__(self, info: TaskInfo, dataset: DatasetInfo, modalities: Sequence[str] = ()) -> None:
        self.info = info
        self.dataset = dataset
        #: The task's modalities this run feeds the backbone (those it can take; see the runner).
        self.modalities = tuple(modalities) or tuple(info.modalities)

    def backbone_config(self, spec: RunSpec, backbone: BackboneInfo, **overrides: Any) -> dict[str, Any]:
        """The backbone's model config for this run: checkpoint, freezing and input modalities."""
        return backbone.config(checkpoint=spec.checkpoint, strict=spec.strict_load,
                               frozen=spec.protocol in ("frozen", "linear"),
                               in_modalities=list(self.modalities), **overrides)

    def check_data(self, root: Path, spec: RunSpec) -> dict[str, Any]:
        """Check the official layout under ``root``; return facts the config needs."""
        return self.dataset.check(root)

    def build_config(
        self, spec: RunSpec, backbone: BackboneInfo, data: dict[str, Any], work_dir: Path
    ) -> dict[str, Any]:
        """The complete mmengine config (plain data) for this evaluation."""
        raise NotImplementedError

    def metric_value(self, metrics: dict[str, Any]) -> float:
        """The task's headline metric from ``runner.test()``'s result, in percent."""
        raise NotImplementedError

    def row_fields(self, spec: RunSpec, backbone: BackboneInfo, data: dict[str, Any]) -> dict[str, Any]:
        """Extra leaderboard fields (adapter, normalization, split details)."""
        return {}
