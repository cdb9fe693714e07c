"""One evaluation over several processes (``RunSpec.nproc``; ``rsbench run --nproc N``).

The parent process keeps everything a run owns: the spec checks, the data check, the config,
the work-dir lock and the leaderboard row. It hands the finished config to the workers in a file
(``CONFIG``: nothing is checked or built twice) and starts ``torchrun --standalone`` on this
module; every worker runs that config under mmengine's ``pytorch`` launcher:
``MMDistributedDataParallel`` for training, distributed samplers, and metrics gathered across
ranks before ``compute_metrics``. On CUDA each worker
takes one GPU (NCCL, as mmengine's ``init_dist``); on the CPU the workers join a gloo group
first, because mmengine's launcher assumes a GPU per rank. Rank 0 hands the test metrics back
in a file; a worker that fails leaves its error for the parent's ``failed`` row.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsbench.errors import RsbenchError
from rsbench.io.atomic_write import open_atomic

if TYPE_CHECKING:
    from rsbench.run.runner import RunRecord
    from rsbench.run.spec import RunSpec

CONFIG = "dist_config.pkl"
RESULT = "dist_result.pkl"
ERROR = "dist_error.rank{rank}.txt"
LOGS = "dist_logs"


def configure(cfg: dict[str, Any], nproc: int, device: str) -> dict[str, Any]:
    """``cfg`` run by ``nproc`` processes (unchanged for one). Unused parameters are allowed,
    because a multi-modal backbone fed one modality leaves the other encoders idle."""
    if nproc == 1:
        return cfg
    wrapper: dict[str, Any] = dict(type="MMDistributedDataParallel", broadcast_buffers=False,
                                   find_unused_parameters=True)
    if device == "cpu":
        wrapper["device_ids"] = None  # mmengine would pass LOCAL_RANK, a GPU index
    env = dict(cfg.get("env_cfg", {}))
    env["dist_cfg"] = dict(env.get("dist_cfg", {}), backend="nccl" if device == "cuda" else "gloo")
    return dict(cfg, launcher="pytorch", model_wrapper_cfg=wrapper, env_cfg=env, rsbench_nproc=nproc)


def launch(spec: RunSpec, run: RunRecord, cfg: dict[str, Any], imports: Sequence[str], work_dir: Path,
           show_progress: bool, verbose: bool) -> dict[str, Any]:
    """Run ``cfg`` (``runner.prepare``'s config of ``spec``; ``imports``: the task's modules) on
    ``spec.nproc`` processes; return the test metrics of rank 0. Raises with the first failing
    rank's error. (``rsbench.run.devices.check_device`` has checked the GPUs.)"""
    for stale in [work_dir / RESULT, *work_dir.glob(ERROR.format(rank="*"))]:
        stale.unlink(missing_ok=True)
    with open(work_dir / CONFIG, "wb") as fh:
        pickle.dump(dict(cfg=cfg, imports=tuple(imports), feature_cache=run.row["feature_cache"]), fh)
    env = dict(os.environ)
    if not verbose:  # DDP's C++ notes (unused-parameter search) and per-rank library warnings
        env.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
        env.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::UserWarning")
    if spec.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
        # torchrun's default of one thread per worker, made explicit (the cores are shared)
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // spec.nproc)))
    logs = work_dir / LOGS
    shutil.rmtree(logs, ignore_errors=True)
    # Each rank's output is also kept in LOGS (--tee), so a rank killed by a signal, which
    # leaves no ERROR file, is still named with its last words.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={spec.nproc}",
           f"--log-dir={logs}", "--tee=3", "-m", "rsbench.run.distributed", str(work_dir),
           "--progress" if show_progress else "--no-progress", *(["--verbose"] if verbose else [])]
    shown = show_progress or verbose  # the workers' output goes to the terminal, else only errors are kept
    proc = subprocess.run(cmd, env=env, stdout=None if shown else subprocess.DEVNULL,
                          stderr=None if shown else subprocess.PIPE, text=True)
    errors = sorted(work_dir.glob(ERROR.format(rank="*")))
    if errors:
        rank = errors[0].name.split("rank")[1].split(".")[0]
        raise RsbenchError(f"distributed run ({spec.nproc} processes) failed on rank {rank}: "
                           f"{errors[0].read_text().strip().splitlines()[-1]} (traceback: {errors[0]})")
    if proc.returncode != 0 or not (work_dir / RESULT).exists():
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:]) if proc.stderr else "(its output is above)"
        raise RsbenchError(f"distributed run ({spec.nproc} processes): torchrun exited with code "
                           f"{proc.returncode} and no result in {work_dir}:\n{tail}{last_words(logs)}")
    with open(work_dir / RESULT, "rb") as fh:
        result = pickle.load(fh)
    run.row.update(result["row"])
    run.worker_peak_mb = result["peak_mem_mb"]
    return result["metrics"]


def last_words(logs: Path, lines: int = 5) -> str:
    """The last ``lines`` lines each rank wrote to stderr (torchrun's ``--tee`` files under
    ``logs``), for a failure that left no traceback of ours."""
    out = []
    for path in sorted(logs.glob("**/attempt_*/*/stderr.log")):
        text = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        if text:
            out.append(f"rank {path.parent.name}'s last output ({path}):\n  " + "\n  ".join(text[-lines:]))
    return "".join("\n" + part for part in out)


def _worker(work_dir: Path, show_progress: bool, verbose: bool) -> None:
    """One rank: run the parent's config (``CONFIG``) of the spec in ``run_spec.json``; rank 0
    reports the test metrics."""
    import json

    import torch.distributed as dist

    from rsbench.run.provenance import peak_memory_mb
    from rsbench.run.runner import RunRecord, execute
    from rsbench.run.spec import RunSpec

    rank = int(os.environ["RANK"])
    spec = RunSpec.from_dict(json.loads((work_dir / "run_spec.json").read_text()))
    run = RunRecord(spec, work_dir, record=lambda row: None)
    try:
        with open(work_dir / CONFIG, "rb") as fh:
            given = pickle.load(fh)
        run.row["feature_cache"] = given["feature_cache"]
        if spec.device == "cpu" and not dist.is_initialized():
            dist.init_process_group("gloo")  # mmengine's init_dist would call torch.cuda.set_device
        metrics = execute(given["cfg"], given["imports"], run, work_dir, show_progress and rank == 0, verbose)
        if rank == 0:
            fields = ("feature_cache", "device_name", "backbone_params_loaded", "backbone_params_random",
                      "weights_warning")
            with open_atomic(work_dir / RESULT, "wb") as fh:
                pickle.dump(dict(metrics=metrics, row={k: run.row[k] for k in fields if k in run.row},
                                 peak_mem_mb=peak_memory_mb(spec.device)), fh)
    except BaseException as exc:
        message = str(exc) if isinstance(exc, RsbenchError) else f"{type(exc).__name__}: {exc}"
        (work_dir / ERROR.format(rank=rank)).write_text(traceback.format_exc() + "\n" + message + "\n")
        raise
    else:
        # Every rank leaves together: a rank that tears its gloo group down while another still
        # writes the result can abort ("terminate called without an active exception").
        dist.barrier()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    args = sys.argv[1:]
    _worker(Path(args[0]), "--progress" in args, "--verbose" in args)
