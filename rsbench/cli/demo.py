"""``rsbench demo``: the smoke suite on generated fixtures, then the leaderboard.

Fixture runs are demonstrations: their rows go to the cache (``$RSBENCH_CACHE/demo``), never
to ``results/``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rsbench.io.fixtures import cache_dir, ensure_fixture
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.results.aggregate import summarize, write_tables
from rsbench.suites.suite import expand, load_suite
from rsbench.suites.suite_run import run_suite


def run_demo(backbones: Sequence[str], suite: str, results: Path | None, force: bool, jobs: int | None,
             console: Console) -> Counter[str]:
    catalog = get_catalog()
    results = results or cache_dir() / "demo" / "results"
    loaded = load_suite(suite)
    roots = {e.task: str(ensure_fixture(e.task)) for e in loaded.evaluations if e.task in catalog.tasks}
    specs = [s for s in expand(loaded, backbones, smoke=True, data_roots=roots,
                               work_root=cache_dir() / "demo" / "work_dirs") if s.task in catalog.tasks]
    counts = run_suite(specs, results_dir=results, force=force, jobs=jobs, console=console)
    write_tables(results)
    show(summarize(results), results, console)
    return counts


def show(table_frame, results: Path, console: Console) -> None:  # type: ignore[no-untyped-def]
    table = Table(title=f"demo leaderboard ({results}) — fixture data: a demonstration, not results",
                  title_justify="left")
    for col in ("family", "task", "split", "backbone", "metric", "value"):
        table.add_column(col)
    for r in table_frame.to_dict("records"):
        table.add_row(r["family"], r["task"], str(r.get("split", "")), r["backbone"], r["metric"], f"{r['mean']:.2f}")
    console.print(table)
