"""The Ray executor: one Ray task per evaluation, rows returned to the driver (the one writer).

``--address`` joins a running cluster; without it a local Ray instance is started. Each task
asks for ``cpus_per_run`` CPUs and, with ``--device cuda``, one GPU. A task whose worker
crashes becomes that evaluation's ``failed`` row.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rsbench.run.spec import RunSpec
from rsbench.suites.executors.base import Executor, OnRow


def _run_one(spec_dict: dict[str, Any], results_dir: str, force: bool) -> tuple[dict[str, Any], bool]:
    if spec_dict.get("device") == "cpu":
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    from rsbench.run.runner import failure_row, run_evaluation

    spec = RunSpec.from_dict(spec_dict)
    recorded: list[dict[str, Any]] = []
    try:
        outcome = run_evaluation(spec, results_dir=results_dir, force=force, show_progress=False,
                                 record=recorded.append)
        return outcome.row, outcome.reused
    except Exception as exc:
        return (recorded[-1] if recorded else failure_row(spec, f"{type(exc).__name__}: {exc}")), False


class RayExecutor(Executor):
    def __init__(self, jobs: int | None = None, address: str | None = None, results_dir: str | Path = "results",
                 force: bool = False, cpus_per_run: int | None = None, **_: Any) -> None:
        self.address = address
        self.jobs = jobs
        self.results_dir = str(results_dir)
        self.force = force
        self.cpus_per_run = cpus_per_run

    def run(self, specs: Sequence[RunSpec], on_row: OnRow) -> None:
        import ray

        from rsbench.run.runner import failure_row

        started_here = not ray.is_initialized()
        if started_here:
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(num_cpus=self.jobs or os.cpu_count(), include_dashboard=False, log_to_driver=False)
        try:
            cpus = self.cpus_per_run or max(1, int(ray.cluster_resources().get("CPU", 1)) // (self.jobs or 1))
            remote = ray.remote(max_retries=0)(_run_one)
            pending = {}
            for spec in specs:
                options = remote.options(num_cpus=cpus, num_gpus=spec.nproc if spec.device == "cuda" else 0)
                pending[options.remote(spec.as_dict(), self.results_dir, self.force)] = spec
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    spec = pending.pop(ref)
                    try:
                        row, reused = ray.get(ref)
                    except Exception as exc:  # the Ray worker died
                        row, reused = failure_row(spec, f"Ray task failed: {type(exc).__name__}: {exc}"), False
                    on_row(spec, row, reused)
        finally:
            if started_here:
                ray.shutdown()
