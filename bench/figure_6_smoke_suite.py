"""Figure 6: wall time of the smoke suite, every evaluation once with one tiny backbone.

``rsbench suite --suite all --backbones resnet50-tiny --smoke`` in a subprocess, with a private
results folder, work root and fixture cache (``RSBENCH_CACHE``) so nothing of the user's is
read or written. The fixtures are generated first and timed apart: a user's second run finds
them cached, so the suite's own time is the figure. Goal: <= 10 minutes on 2 cores.

``resnet50-tiny`` takes RGB only, so evaluations of other modalities are ``skipped: modality``.
Those are then run as a second suite (a suite file of just those entries, with their options)
with ``skysense-tiny,mars-tiny``, so that every evaluation runs once with a tiny backbone that
fits it; the verdict is on the two suites' total.

The per-evaluation wall times come from the leaderboard rows (``wall_time_s``), so they are
what the runner recorded, not a guess from the total.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import Context, Figure, check

GOAL_S = 600.0
BACKBONE = "resnet50-tiny"
COVERING = "skysense-tiny,mars-tiny"


def generate_fixtures(suite: str, cache: Path) -> tuple[int, float]:
    """Write every fixture the suite needs into ``cache`` (in a subprocess, under that cache)."""
    code = ("from rsbench.io.fixtures import ensure_fixture\nfrom rsbench.suites.suite import load_suite\n"
            "from rsbench import get_catalog\ncat = get_catalog()\n"
            f"tasks = [e.task for e in load_suite({suite!r}).evaluations if e.task in cat.tasks]\n"
            "[ensure_fixture(t) for t in dict.fromkeys(tasks)]\nprint(len(dict.fromkeys(tasks)))\n")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, RSBENCH_CACHE=str(cache)),
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]), time.perf_counter() - start


def suite_subset(suite: str, tasks: set[str], path: Path) -> Path:
    """A suite file holding ``suite``'s entries for ``tasks`` (protocols and option grids kept)."""
    from rsbench.suites.suite import load_suite

    entries = [dict(task=e.task, protocols=list(e.protocols), options={k: list(v) for k, v in e.options.items()})
               for e in load_suite(suite).evaluations if e.task in tasks]
    path.write_text(f'DESCRIPTION = "the entries of {suite} a RGB-only backbone skips"\nEVALUATIONS = {entries!r}\n')
    return path


def run_suite(suite: str, backbones: str, tmp: Path, cache: Path, name: str) -> dict[str, Any]:
    results, work = tmp / f"{name}-results", tmp / f"{name}-work"
    cmd = [sys.executable, "-m", "rsbench.cli.main", "suite", "--suite", suite, "--backbones", backbones, "--smoke",
           "--results", str(results), "--work-root", str(work)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=dict(os.environ, RSBENCH_CACHE=str(cache), CUDA_VISIBLE_DEVICES=""),
                          capture_output=True, text=True)
    return dict(seconds=time.perf_counter() - start, rows=_rows(results / "leaderboard.csv"), code=proc.returncode,
                tail=" ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])[:400],
                shown=" ".join(["rsbench", *cmd[3:]]).replace(str(tmp), "$TMP"))


def run(ctx: Context) -> Figure:
    suite = "demo" if ctx.quick else "all"
    tmp = ctx.scratch("fig6")
    cache = tmp / "cache"
    n_tasks, fixture_s = generate_fixtures(suite, cache)
    main = run_suite(suite, BACKBONE, tmp, cache, "main")
    rows = main["rows"]
    skipped = {r["task"] for r in rows if r["status"] == "skipped"}
    cover = None
    if skipped:
        cover = run_suite(str(suite_subset(suite, skipped, tmp / "skipped_suite.py")), COVERING, tmp, cache, "cover")

    fig = Figure(6, f"Smoke suite wall time (`--suite {suite}`, one tiny backbone per evaluation)",
                 "<= 10 min for all 25 evaluations x 1 tiny backbone on 2 cores",
                 columns=["task", "backbone", "status", "wall_time_s", "metric", "value", "error"])
    covering_rows = [r for r in (cover["rows"] if cover else []) if r["status"] != "skipped"]
    for r in [*rows, *covering_rows]:
        fig.rows.append(dict(task=r["task"], backbone=r["backbone"], status=r["status"],
                             wall_time_s=float(r.get("wall_time_s") or 0), metric=r.get("metric", ""),
                             value=r.get("value", ""), error=(r.get("error") or "")[:160]))
    fig.rows.sort(key=lambda r: -r["wall_time_s"])

    def summary(some: list[dict[str, Any]]) -> str:
        counts: dict[str, int] = {}
        for r in some:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))

    ran = {r["task"] for r in fig.rows if r["status"] != "skipped"}
    total = main["seconds"] + (cover["seconds"] if cover else 0.0)
    fig.verdict = "not measured" if ctx.quick else check(total, "<=", GOAL_S)
    if len(ran) < 25 and not ctx.quick:
        fig.verdict = "not met"
        fig.notes.append(f"Only {len(ran)} of 25 evaluations ran with a tiny backbone.")
    fig.headline = (f"{total / 60:.1f} min: {BACKBONE} suite {main['seconds'] / 60:.1f} min ({len(rows)} runs: "
                    f"{summary(rows)})")
    if cover:
        fig.headline += (f" + {COVERING} on the {len(skipped)} skipped evaluations {cover['seconds'] / 60:.1f} min "
                         f"({summary(covering_rows)})")
    per_eval = sum(r["wall_time_s"] for r in fig.rows)
    fig.method = (f"`{main['shown']}` with `RSBENCH_CACHE=$TMP/cache`, default jobs (one per two cores), exit code "
                  f"{main['code']}, {main['seconds']:.0f} s.")
    if cover:
        fig.method += (f" Then `{cover['shown']}` (a suite file of the {len(skipped)} skipped evaluations' entries), "
                       f"exit code {cover['code']}, {cover['seconds']:.0f} s; its rows for the backbone that does "
                       "not fit are left out of the table.")
    fig.method += (f" Fixtures for {n_tasks} tasks generated beforehand in {fixture_s:.0f} s (not in the figure). "
                   f"Sum of the rows' `wall_time_s`: {per_eval:.0f} s of the {total:.0f} s (the rest is the suites' "
                   "process start, imports and aggregation). Rows sorted by wall time.")
    if ctx.quick:
        fig.notes.append("Quick mode runs the demo suite, not all 25 evaluations: no verdict.")
    for run_ in (main, cover):
        if run_ and run_["code"] != 0:
            fig.notes.append(f"`{run_['shown']}` exited with code {run_['code']}; last output: {run_['tail']}")
    if any(r["status"] == "failed" for r in fig.rows):
        fig.notes.append("Failed evaluations count in the wall time like the others; their errors are in the table.")
    return fig


def _rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
