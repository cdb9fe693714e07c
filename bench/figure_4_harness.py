"""Figure 4: the harness overhead of ``rsbench run`` over a bare mmengine ``Runner``.

Both run the same generated config in one process: ``run_evaluation`` (spec validation, data
check, config generation and dump, the runner with rsbench's hooks, the leaderboard row) and
``Runner.from_cfg`` on the ``config.py`` that run dumped (train, then test on the in-memory
model, as rsbench does). Calls are interleaved after one untimed warm-up of each, so the first
import of the stack is paid by neither side. Goal: rsbench / bare <= 1.05.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import Context, Figure, check, fmt_s, median

GOAL = 1.05


def bare_runner_seconds(config_path: Path, work_dir: Path, format_python_code: bool = False) -> float:
    """``format_python_code=False`` as rsbench builds its ``Config``: otherwise mmengine pretty-prints
    the config with yapf at every checkpoint (about 1.5 s each here), which is no harness cost."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    start = time.perf_counter()
    loaded = Config.fromfile(str(config_path))
    # mmengine 0.10.7's fromfile does not pass format_python_code on; rebuild as rsbench builds its Config
    cfg = loaded if format_python_code else Config(loaded.to_dict(), format_python_code=False)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f"bare-{uuid.uuid4().hex[:8]}"
    cfg.resume = False
    runner = Runner.from_cfg(cfg)
    runner.train()
    runner._has_loaded = True  # as rsbench: test the trained model in memory
    runner.test()
    return time.perf_counter() - start


def rsbench_seconds(spec_kwargs: dict[str, Any], work_dir: Path, results: Path) -> tuple[float, Path]:
    from rsbench.run.runner import run_evaluation
    from rsbench.run.spec import RunSpec

    start = time.perf_counter()
    run_evaluation(RunSpec(work_dir=str(work_dir), **spec_kwargs), results_dir=results, force=True,
                   show_progress=False)
    return time.perf_counter() - start, work_dir / "config.py"


def run(ctx: Context) -> Figure:
    from rsbench import get_catalog
    backbone, iters, repeats = ("resnet50-tiny", 10, 2) if ctx.quick else ("resnet50-tiny", 40, 6)
    root = ctx.tmp / "fixtures" / "aid"
    if not root.exists():
        get_catalog().datasets.get("aid").write_fixture(root, seed=0)
    spec = dict(backbone=backbone, task="aid", data_root=str(root), max_iters=iters)
    tmp = ctx.scratch("fig4")
    results = tmp / "results"
    ours: list[float] = []
    bare: list[float] = []
    yapf: list[float] = []
    _, config = rsbench_seconds(spec, tmp / "warm-rsb", results)  # warm-up: imports, registries, caches
    bare_runner_seconds(config, tmp / "warm-bare")
    for i in range(repeats):  # interleaved in alternating order (ABBA), so drift and order hit both alike
        def run_ours(i: int = i) -> None:
            ours.append(rsbench_seconds(spec, tmp / f"rsb{i}", results)[0])

        def run_bare(i: int = i) -> None:
            bare.append(bare_runner_seconds(config, tmp / f"bare{i}"))

        for step in ((run_ours, run_bare) if i % 2 == 0 else (run_bare, run_ours)):
            step()
        yapf.append(bare_runner_seconds(config, tmp / f"yapf{i}", format_python_code=True))
    ratio = median(ours) / median(bare)
    fig = Figure(4, "Harness overhead: `rsbench run` vs a bare mmengine Runner", "rsbench / bare <= 1.05",
                 columns=["side", "runs", "median", "min", "all"])
    fig.rows = [
        dict(side="rsbench run_evaluation", runs=len(ours), median=fmt_s(median(ours)), min=fmt_s(min(ours)),
             all=", ".join(f"{s:.2f}" for s in ours)),
        dict(side="bare Runner.from_cfg (same config.py)", runs=len(bare), median=fmt_s(median(bare)),
             min=fmt_s(min(bare)), all=", ".join(f"{s:.2f}" for s in bare)),
        dict(side="bare, Config.fromfile defaults (yapf at every checkpoint; not the reference)", runs=len(yapf),
             median=fmt_s(median(yapf)), min=fmt_s(min(yapf)), all=", ".join(f"{s:.2f}" for s in yapf)),
    ]
    fig.verdict = check(ratio, "<=", GOAL)
    fig.headline = f"{ratio:.3f}x (min/min {min(ours) / min(bare):.3f}x)"
    fig.method = (f"`{backbone}` on the AID fixture (aid, finetune, {iters} iterations, then the test split), in one "
                  f"process, {repeats} rounds after one warm-up pair, the two sides' order alternating between rounds; seconds per whole run (config load, "
                  "runner build, train, test). The reference loads the dumped `config.py` with "
                  "`format_python_code=False` (re-built from `Config.fromfile`'s dict: mmengine 0.10.7's `fromfile` "
                  "drops that argument), as rsbench builds its `Config`: with mmengine's default the config is "
                  "re-formatted by yapf at every checkpoint save, shown in the third row for scale.")
    return fig
