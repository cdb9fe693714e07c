"""Where a result came from: package versions, git revision, peak memory, config hash."""

from __future__ import annotations

import hashlib
import json
import resource
import subprocess
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

STACK = ("rsbench", "torch", "torchvision", "mmcv", "mmengine", "mmdet", "mmsegmentation",
         "mmrotate-dev", "mmpretrain", "timm", "numpy")


@cache
def package_versions() -> dict[str, str]:
    out = {}
    for name in STACK:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


@cache
def git_sha() -> str:
    here = Path(__file__).resolve().parent
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        sha = res.stdout.strip()
        if res.returncode == 0 and sha:
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def config_hash(config: Any, work_dir: str | None = None) -> str:
    """A short stable hash of a config, with the work dir masked so it names the experiment only."""
    text = json.dumps(config, sort_keys=True, default=str)
    if work_dir:
        text = text.replace(str(work_dir), "<work_dir>")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def peak_memory_mb(device: str = "cpu") -> float:
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
