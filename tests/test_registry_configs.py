"""Every registered task, as a run would take it up to training: its dataset's fixture passes the
check, the config builds and finalises, and two builds in different work dirs hash the same."""

from __future__ import annotations

import pytest

from rsbench.plugin_api.plugin_host import get_catalog, list_tasks
from rsbench.run.runner import RunRecord, modality_fit, prepare
from rsbench.run.spec import RunSpec

#: A tiny backbone for each kind of input: the first in this order that fits the task.
TINY = ("resnet50-tiny", "skysense-tiny", "mars-tiny")


def _spec(task: str, root) -> tuple[RunSpec, list[str]]:
    catalog = get_catalog()
    info = catalog.tasks.get(task)
    options = dict(info.smoke_options)
    for name in TINY:
        fits = modality_fit(catalog.backbone(name), info, {**info.options, **options})
        if fits:
            spec = RunSpec(backbone=name, task=task, data_root=str(root), options=options, max_iters=2)
            return spec.resolved(dict(info.options), info.default_split), fits
    pytest.fail(f"no tiny backbone fits task {task!r}")


@pytest.mark.parametrize("task", list_tasks())
def test_fixture_check_config_and_a_stable_hash(task, dataset_root, tmp_path):
    info = get_catalog().tasks.get(task)
    root = dataset_root(info.dataset)
    spec, fits = _spec(task, root)
    hashes = []
    for build in ("a", "b"):
        run = RunRecord(spec, tmp_path, record=lambda row: None)
        ready = prepare(spec, run, fits, root, tmp_path / build)
        assert ready.final.cfg["model"], task
        assert run.row["config_hash"] == ready.final.config_hash
        hashes.append(ready.final.config_hash)
    assert hashes[0] == hashes[1], f"{task}: the config hash depends on the work dir or on chance"
