"""From one row per run to tables: mean ± std over seeds, IQM, a bootstrap 95 % CI, and the
delta to the paper's number where one is known."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rsbench import leaderboard
from rsbench.plugins import get_catalog

GROUP = ["family", "task", "backbone", "protocol", "metric", "options"]
BOOTSTRAP = 2000


def iqm(values: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50 % (robust to an outlying seed)."""
    v = np.sort(values)
    n = len(v)
    lo, hi = int(np.floor(n * 0.25)), int(np.ceil(n * 0.75))
    return float(v[lo:hi].mean()) if hi > lo else float(v.mean())


def bootstrap_ci(values: np.ndarray, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (a single run gives a zero-width interval)."""
    if len(values) < 2:
        return float(values.mean()), float(values.mean())
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(BOOTSTRAP, len(values)), replace=True).mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def _family(task: str) -> str:
    tasks = get_catalog().tasks
    return tasks.get(task).family if task in tasks else "unknown"


def _setting_matches(setting: str, options: str) -> bool:
    """A paper row's ``k=v;k2=v2`` setting against a run's options JSON (empty matches all)."""
    if not setting:
        return True
    opts = json.loads(options) if options else {}
    for part in filter(None, (p.strip() for p in setting.split(";"))):
        key, _, value = part.partition("=")
        if key not in opts or str(opts[key]) != value:
            try:
                if float(opts.get(key)) == float(value):
                    continue
            except (TypeError, ValueError):
                pass
            return False
    return True


def paper_value(paper: pd.DataFrame, task: str, backbone: str, metric: str, options: str) -> float | None:
    """The published number for this (task, backbone, metric, setting), if any. Backbones match
    exactly: a tiny variant is never compared with its paper-size model's number."""
    rows = paper[(paper["task"] == task) & (paper["backbone"] == backbone) & (paper["metric"] == metric)]
    for _, row in rows.iterrows():
        if _setting_matches(str(row.get("setting", "") or ""), options):
            return float(row["value"])
    return None


def summarize(results_dir: Path) -> pd.DataFrame:
    frame = leaderboard.load_frame([results_dir / leaderboard.LEADERBOARD_NAME])
    ok = frame[(frame["status"] == "ok") & frame["value"].notna()].copy()  # unscored submissions have no value
    if ok.empty:
        return pd.DataFrame(columns=[*GROUP, "n", "mean", "std", "iqm", "ci_low", "ci_high", "paper", "delta"])
    ok["family"] = ok["task"].map(_family)
    paper_path = results_dir / "paper_results.csv"
    paper = pd.read_csv(paper_path, dtype={"setting": str}, keep_default_na=False) if paper_path.exists() else None
    records: list[dict[str, Any]] = []
    for key, group in ok.groupby(GROUP, sort=True):
        values = group["value"].to_numpy(dtype=float)
        low, high = bootstrap_ci(values)
        record = dict(zip(GROUP, key, strict=True), n=len(values), mean=float(values.mean()),
                      std=float(values.std(ddof=1)) if len(values) > 1 else 0.0, iqm=iqm(values),
                      ci_low=low, ci_high=high, fixture=bool((group["fixture"] == "True").any()))
        ref = paper_value(paper, *(record[k] for k in ("task", "backbone", "metric", "options"))) if paper is not None else None
        record["paper"] = ref
        record["delta"] = None if ref is None else record["mean"] - ref
        records.append(record)
    return pd.DataFrame.from_records(records).round(4)


def write_tables(results_dir: Path, out_dir: Path | None = None) -> dict[str, Path]:
    """``leaderboard_all.csv`` and one ``leaderboard_<family>.csv`` per task family."""
    out_dir = out_dir or results_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    table = summarize(results_dir)
    written = {"all": out_dir / "leaderboard_all.csv"}
    table.to_csv(written["all"], index=False)
    for family, part in table.groupby("family"):
        written[str(family)] = out_dir / f"leaderboard_{family}.csv"
        part.to_csv(written[str(family)], index=False)
    return written
