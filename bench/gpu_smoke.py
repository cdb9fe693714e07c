"""Part (a) of the GPU check: the smoke suite's evaluations on CUDA with one tiny backbone, in each
precision, through the same suite runner as ``rsbench suite --smoke``; every row must be ``ok``.

``rsbench suite`` has no ``--precision`` option, so the specs it would expand are made here and
given the precision before they run.

    python -m bench.gpu_smoke --out /tmp/smoke.json --precisions fp32,bf16 [--backbone resnet50-tiny]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import time
from pathlib import Path
from typing import Any


def fixtures(suite: str) -> dict[str, str]:
    """Each task's generated fixture (made on first use, then cached), as ``rsbench suite --smoke``."""
    from rsbench.io.fixtures import ensure_fixture
    from rsbench.plugin_api.plugin_host import get_catalog
    from rsbench.suites.suite import load_suite

    tasks = get_catalog().tasks
    return {t: str(ensure_fixture(t)) for t in dict.fromkeys(e.task for e in load_suite(suite).evaluations)
            if t in tasks}


def specs_for(suite: str, backbone: str, precision: str, device: str, work_root: Path,
              roots: dict[str, str] | None = None) -> list[Any]:
    """The smoke suite's run specs for one backbone and precision (fixtures from ``roots``)."""
    from rsbench.suites.suite import expand, load_suite

    loaded = load_suite(suite)
    roots = fixtures(suite) if roots is None else roots
    specs = expand(loaded, [backbone], [0], None, roots, smoke=True, device=device, work_root=work_root)
    return [dataclasses.replace(s, precision=precision) for s in specs]


def rows_of(results: Path) -> list[dict[str, str]]:
    from rsbench.run.runner import LEADERBOARD

    path = results / LEADERBOARD
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_smoke", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--suite", default="all")
    parser.add_argument("--backbone", default="resnet50-tiny")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--jobs", type=int, help="concurrent evaluations (default: the runner's)")
    parser.add_argument("--scratch", default="/tmp/rsbench-gpu-smoke")
    args = parser.parse_args(argv)
    from rsbench.run.devices import check_device
    from rsbench.suites.suite_run import run_suite

    check_device(args.device)
    report: dict[str, Any] = {"backbone": args.backbone, "device": args.device, "precisions": {}}
    for precision in args.precisions.split(","):
        scratch = Path(args.scratch) / precision
        specs = specs_for(args.suite, args.backbone, precision, args.device, scratch / "work_dirs")
        start = time.perf_counter()
        run_suite(specs, results_dir=scratch / "results", force=True, jobs=args.jobs)
        rows = rows_of(scratch / "results")
        bad = [{k: r.get(k, "") for k in ("task", "status", "error")} for r in rows if r.get("status") != "ok"]
        report["precisions"][precision] = {
            "evaluations": len(specs), "rows": len(rows), "ok": sum(r.get("status") == "ok" for r in rows),
            "not_ok": bad, "devices": sorted({r.get("device", "") for r in rows}),
            "minutes": round((time.perf_counter() - start) / 60, 2)}
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0 if all(not p["not_ok"] and p["rows"] == p["evaluations"] for p in report["precisions"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
