"""Shared by the config tests: a task's config for a resolved spec, built as the runner's
``prepare`` builds it but without training, so a test reads what a run would run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rsbench.plugin_api.catalog import TaskInfo
from rsbench.plugin_api.checked_data import CheckedData
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.run.runner import modality_fit
from rsbench.run.spec import RunSpec


def build_config(task: str, backbone: str, root: Path, work: Path, info: TaskInfo | None = None,
                 **spec_kw: Any) -> tuple[dict[str, Any], dict[str, Any], CheckedData]:
    """(config, row fields, checked data) of ``task`` on ``backbone`` over the fixture ``root``;
    ``info`` replaces the catalog's record (e.g. with another card), ``spec_kw`` go to the spec."""
    catalog = get_catalog()
    info = info or catalog.tasks.get(task)
    info_b = catalog.backbone(backbone)
    spec = RunSpec(backbone=backbone, task=task, data_root=str(root), **spec_kw).resolved_for(info)
    t = info.load_task_class()(info, catalog.datasets.get(info.dataset), modality_fit(info_b, info, spec.options))
    data = t.check_data(Path(root), spec)
    work.mkdir(parents=True, exist_ok=True)
    return t.build_config(spec, info_b, data, work), t.row_fields(spec, info_b, data), data
