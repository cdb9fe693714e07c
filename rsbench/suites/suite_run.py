"""Run an expanded suite through an executor, writing every row once from this process."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from rsbench.errors import UnknownNameError
from rsbench.plugin_api.catalog import load_object
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.results import leaderboard
from rsbench.run.runner import LEADERBOARD
from rsbench.run.spec import RunSpec


def run_suite(specs: Sequence[RunSpec], executor: str = "local", results_dir: Path = Path("results"),
              force: bool = False, jobs: int | None = None, address: str | None = None,
              console: Console | None = None) -> Counter[str]:
    """Run ``specs``; return counts by status (``reused`` counts rows that already existed)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console(stderr=True)
    catalog = get_catalog()
    path = Path(results_dir) / LEADERBOARD
    counts: Counter[str] = Counter()

    runnable = []
    for spec in specs:
        try:
            catalog.backbone(spec.backbone)
            catalog.tasks.get(spec.task)
            runnable.append(spec)
        except UnknownNameError as exc:  # a plugin not installed: say so with a row, once
            if leaderboard.find_done(path, _identity(spec), statuses=("skipped",)) is None:
                leaderboard.append_row(path, _missing_row(spec, str(exc)))
            counts["skipped"] += 1

    info = catalog.executors.get(executor)
    runner = load_object(info.executor_class)(jobs=jobs, address=address, results_dir=results_dir, force=force)
    columns = (TextColumn("[bold]suite"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("suite", total=len(runnable))

        def on_row(spec: RunSpec, row: dict[str, Any], reused: bool) -> None:
            if not reused:
                leaderboard.append_row(path, row)
            counts["reused" if reused else row["status"]] += 1
            colour = {"ok": "green", "failed": "red"}.get(row["status"], "yellow")
            note = " (already done)" if reused else ""
            value = f" {row['metric']}={row['value']}" if row.get("value") not in ("", None) else ""
            detail = f" — {row['error']}" if row["status"] != "ok" else ""
            progress.console.print(f"[{colour}]{row['status']}[/] {spec.backbone} · {spec.task} · "
                                   f"{spec.protocol} · seed {spec.seed}{value}{note}{detail}", highlight=False)
            progress.advance(bar)

        if runnable:
            runner.run(runnable, on_row)
    return counts


def _identity(spec: RunSpec) -> dict[str, Any]:
    return dict(backbone=spec.backbone, checkpoint_sha256="", task=spec.task, split=spec.split or "",
                protocol=spec.protocol, precision=spec.precision, seed=spec.seed,
                options=json.dumps(spec.options, sort_keys=True), run_key="", config_hash="")


def _missing_row(spec: RunSpec, error: str) -> dict[str, Any]:
    from datetime import datetime, timezone

    return dict(_identity(spec), run_id="-", timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                status="skipped", error=f"skipped: {error}", data_root=spec.data_root or "")
