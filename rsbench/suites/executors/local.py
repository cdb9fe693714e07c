"""The local executor: a bounded pool of worker processes (``python -m rsbench.suites.worker``).

Each worker runs evaluations in turn (importing torch and OpenMMLab once). A worker that dies
mid-evaluation (segfault, out of memory, SIGKILL) costs only that evaluation, which gets a
``failed`` row naming the exit status; a fresh worker takes the next one. Workers die with the
suite (``PR_SET_PDEATHSIG``), so a killed suite leaves no orphan to write a late duplicate row.
"""

from __future__ import annotations

import ctypes
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rsbench.run.spec import RunSpec
from rsbench.suites.executors.base import Executor, OnRow


def _die_with_parent() -> None:  # runs in the child before exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def default_jobs() -> int:
    """One worker per two cores: each evaluation uses intra-op threads of its own."""
    return max(1, (os.cpu_count() or 2) // 2)


class LocalExecutor(Executor):
    def __init__(self, jobs: int | None = None, results_dir: str | Path = "results", force: bool = False,
                 log_dir: str | Path | None = None, **_: Any) -> None:
        self.jobs = jobs or default_jobs()
        self.results_dir = str(results_dir)
        self.force = force
        self.log_dir = Path(log_dir) if log_dir else Path(self.results_dir) / "logs"

    def _spawn(self, slot: int) -> subprocess.Popen[str]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        threads = max(1, (os.cpu_count() or 2) // self.jobs)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        log = open(self.log_dir / f"worker-{slot}.log", "a")  # noqa: SIM115 (the child owns it)
        return subprocess.Popen([sys.executable, "-m", "rsbench.suites.worker"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=log, text=True, env=env,
                                preexec_fn=_die_with_parent)

    def run(self, specs: Sequence[RunSpec], on_row: OnRow) -> None:
        from rsbench.run.runner import failure_row

        todo: queue.Queue[tuple[int, RunSpec] | None] = queue.Queue()
        for item in enumerate(specs):
            todo.put(item)
        done: queue.Queue[tuple[RunSpec, dict[str, Any], bool]] = queue.Queue()
        n_slots = min(self.jobs, len(specs))
        for _ in range(n_slots):
            todo.put(None)

        def slot(index: int) -> None:
            worker = self._spawn(index)
            try:
                while (item := todo.get()) is not None:
                    job_id, spec = item
                    assert worker.stdin is not None and worker.stdout is not None
                    try:
                        worker.stdin.write(json.dumps({"id": job_id, "spec": spec.as_dict(), "force": self.force,
                                                       "results": self.results_dir}) + "\n")
                        worker.stdin.flush()
                        reply = None
                        while (line := worker.stdout.readline()):
                            msg = json.loads(line)
                            if msg.get("event") == "done":
                                reply = msg
                                break
                    except BrokenPipeError:
                        reply = None
                    if reply is None:  # the worker died while running this evaluation
                        code = worker.wait()
                        why = f"signal {-code}" if code < 0 else f"exit code {code}"
                        done.put((spec, failure_row(spec, f"worker process died ({why}) while running "
                                                           f"this evaluation; see {self.log_dir}"), False))
                        worker = self._spawn(index)
                    else:
                        done.put((spec, reply["row"], bool(reply["reused"])))
            finally:
                if worker.stdin:
                    worker.stdin.close()
                worker.wait()

        threads = [threading.Thread(target=slot, args=(i,), daemon=True) for i in range(n_slots)]
        for t in threads:
            t.start()
        for _ in specs:
            spec, row, reused = done.get()
            on_row(spec, row, reused)
        for t in threads:
            t.join()
