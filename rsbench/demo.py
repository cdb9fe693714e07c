"""``rsbench demo``: fixtures generated in the cache, evaluations run on them, leaderboard shown."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from rsbench import leaderboard
from rsbench.fixtures import cache_dir, is_fixture
from rsbench.plugins import get_catalog
from rsbench.runner import LEADERBOARD, modality_fit, run_evaluation
from rsbench.spec import RunSpec


def ensure_fixture(task: str, seed: int = 0) -> Path:
    """The cached fixture of ``task``'s dataset, generated on first use."""
    catalog = get_catalog()
    dataset = catalog.datasets.get(catalog.tasks.get(task).dataset)
    root = cache_dir() / "fixtures" / dataset.name
    if not is_fixture(root):
        dataset.write_fixture(root, seed=seed)
    return root


def show_leaderboard(path: Path, console: Console) -> None:
    rows = leaderboard.read_rows(path)
    table = Table(title=f"leaderboard ({path}) — fixture data: a demonstration, not results", title_justify="left")
    for col in ("backbone", "task", "protocol", "metric", "value", "status", "wall_time_s"):
        table.add_column(col)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in ("backbone", "task", "protocol", "metric", "value", "status", "wall_time_s")))
    console.print(table)


def run_demo(backbones: list[str], tasks: list[str], results: Path | None, force: bool, console: Console) -> None:
    catalog = get_catalog()
    results = results or cache_dir() / "demo" / "results"
    for task in tasks:
        root = ensure_fixture(task)
        for backbone in backbones:
            if not modality_fit(catalog.backbone(backbone), catalog.tasks.get(task)):
                continue
            spec = RunSpec(backbone=backbone, task=task, data_root=str(root),
                           work_dir=str(cache_dir() / "demo" / "work_dirs" / task / backbone.replace(":", "_")))
            outcome = run_evaluation(spec, results_dir=results, force=force)
            note = " (already done)" if outcome.reused else ""
            console.print(f"{backbone} on {task}: {outcome.row['metric']} = {outcome.row['value']}{note}")
    show_leaderboard(results / LEADERBOARD, console)
