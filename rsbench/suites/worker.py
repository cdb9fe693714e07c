"""A suite worker process: runs evaluations in turn, sharing one import of the stack.

Protocol (JSON lines): stdin ``{"id", "spec", "results", "force"}``; stdout
``{"id", "event": "start"}`` then ``{"id", "event": "done", "row", "reused"}``. The worker
never writes the leaderboard: it hands each row to the suite, the single writer.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def serve(stdin: Any = sys.stdin, stdout: Any = sys.stdout) -> None:
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    from rsbench.run.runner import failure_row, run_evaluation
    from rsbench.run.spec import RunSpec

    out = os.fdopen(os.dup(stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # anything a library prints must not corrupt the protocol
    for line in stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        spec = RunSpec.from_dict(job["spec"])
        out.write(json.dumps({"id": job["id"], "event": "start"}) + "\n")
        recorded: list[dict[str, Any]] = []
        try:
            outcome = run_evaluation(spec, results_dir=job["results"], force=job["force"],
                                     show_progress=False, record=recorded.append)
            row, reused = outcome.row, outcome.reused
        except Exception as exc:  # its failed row was recorded, unless it failed before one existed
            row = recorded[-1] if recorded else failure_row(spec, f"{type(exc).__name__}: {exc}")
            reused = False
        out.write(json.dumps({"id": job["id"], "event": "done", "row": row, "reused": reused},
                             default=str) + "\n")


if __name__ == "__main__":
    serve()
