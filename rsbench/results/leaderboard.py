"""The leaderboard CSV: one row per finished, failed or skipped evaluation.

Rows are appended under a file lock by rewriting the file atomically (a temporary sibling,
flushed to disk, then renamed over it: :mod:`rsbench.io.atomic_write`), so a reader (or a crash)
never sees half a row, and the header widens when a newer rsbench adds columns.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock

from rsbench.io.atomic_write import open_atomic

COLUMNS = (
    "run_id", "timestamp", "backbone", "checkpoint", "checkpoint_sha256", "task", "dataset",
    "split", "protocol", "precision", "metric", "metric_definition", "value", "seed", "run_key",
    "config_hash", "card", "git_sha", "versions", "wall_time_s", "peak_mem_mb", "gpu_hours", "device",
    "device_name", "nproc", "status", "error", "data_root", "fixture", "data_layout", "options", "adapter",
    "normalization", "input_size", "work_dir", "feature_cache", "backbone_params_loaded", "backbone_params_random",
    "weights_warning",
)
STATUSES = ("ok", "failed", "skipped")
LEADERBOARD_NAME = "leaderboard.csv"
#: Fields that identify an evaluation: an ``ok`` row with the same values is not run again.
#: ``run_key`` (``rsbench.run.run_config``) covers every number-changing spec field, precision
#: included, and the checkpoints' bytes; the rest keep the match readable.
IDENTITY = ("backbone", "checkpoint_sha256", "task", "split", "protocol", "precision", "seed", "options",
            "run_key")


def _lock(path: Path) -> FileLock:
    return FileLock(str(path) + ".lock", timeout=120)


def read_rows(path: str | Path) -> list[dict[str, str]]:
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def append_row(path: str | Path, row: Mapping[str, Any]) -> None:
    """Append one row atomically (lock, write a temporary copy, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = {k: "" if v is None else v for k, v in row.items()}
    with _lock(path):
        rows = read_rows(path)
        header = list(COLUMNS)
        for r in [*rows, clean]:
            header += [k for k in r if k not in header]
        with open_atomic(path, "w", fsync=True, newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=header, extrasaction="raise")
            writer.writeheader()
            writer.writerows([*rows, clean])


def find_done(path: str | Path, identity: Mapping[str, Any], statuses: tuple[str, ...] = ("ok",)) -> dict[str, str] | None:
    """The last row with the same identity fields and one of ``statuses``, if any."""
    want = {k: str(identity[k]) for k in IDENTITY}
    for row in reversed(read_rows(path)):
        if row.get("status") in statuses and all(row.get(k, "") == v for k, v in want.items()):
            return row
    return None


def load_frame(paths: Iterable[str | Path]) -> Any:
    """All rows of the given CSVs as one pandas DataFrame (``value`` numeric)."""
    import pandas as pd

    frames = [pd.read_csv(p, dtype=str, keep_default_na=False) for p in paths if Path(p).exists()]
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    frame = pd.concat(frames, ignore_index=True)
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame
