"""Harness overhead (a script, not a test): ``rsbench run`` against a bare mmengine ``Runner`` on the
same generated config, interleaved in one process; goal: rsbench / bare <= 1.05.

Also the wall time of the smoke suite for one tiny backbone (goal <= 10 minutes on 2 cores).

    python bench/bench_harness.py                  # AID fixture, resnet50-tiny, 3 repeats
    python bench/bench_harness.py --smoke-suite    # also time `rsbench suite --smoke`
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def bare_runner_seconds(config_path: Path, work_dir: Path) -> float:
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(str(config_path))
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f"bare-{uuid.uuid4().hex[:8]}"
    cfg.resume = False
    start = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    runner.train()
    runner._has_loaded = True
    runner.test()
    return time.perf_counter() - start


def rsbench_seconds(spec_kwargs: dict, work_dir: Path, results: Path) -> tuple[float, Path]:
    from rsbench.runner import run_evaluation
    from rsbench.spec import RunSpec

    start = time.perf_counter()
    run_evaluation(RunSpec(work_dir=str(work_dir), **spec_kwargs), results_dir=results, force=True,
                   show_progress=False)
    return time.perf_counter() - start, work_dir / "config.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="resnet50-tiny")
    parser.add_argument("--max-iters", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke-suite", action="store_true")
    args = parser.parse_args()

    from rsbench.fixtures import ensure_fixture

    tmp = Path(tempfile.mkdtemp(prefix="rsbench-bench-"))
    spec = dict(backbone=args.backbone, task="aid", data_root=str(ensure_fixture("aid")), max_iters=args.max_iters)
    ours, bare = [], []
    for i in range(args.repeats):  # interleaved, so drift hits both alike
        seconds, config = rsbench_seconds(spec, tmp / f"rsb{i}", tmp / "results")
        ours.append(seconds)
        bare.append(bare_runner_seconds(config, tmp / f"bare{i}"))
    result = {"rsbench_s": statistics.median(ours), "bare_runner_s": statistics.median(bare)}
    result["overhead_ratio"] = result["rsbench_s"] / result["bare_runner_s"]
    result["goal"] = "<= 1.05"
    if args.smoke_suite:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rsbench.cli", "suite", "--suite", "all", "--backbones", args.backbone,
                        "--smoke", "--results", str(tmp / "smoke"), "--work-root", str(tmp / "smoke-work")], check=False)
        result["smoke_suite_s"] = time.perf_counter() - start
        result["smoke_goal"] = "<= 600 s for all evaluations x 1 tiny backbone"
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
