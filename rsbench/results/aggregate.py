"""From one row per run to tables: mean ± std over seeds, IQM, a bootstrap 95 % CI, and the
delta to the paper's number where the paper measured exactly the same thing.

Rows are pooled only when they measured the same thing with the same model: a val row is never
averaged with a test row, an fp32 row never with a bf16 row, fixture data never with real data.
A published number is attached only when its task, metric, preset, split, protocol and setting
all equal the run's and the run used real data and pretrained weights; a near miss keeps the
paper row (for its source) and says why it does not compare ("no paper number for this setting").
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rsbench.errors import RsbenchError
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.results import leaderboard

#: What a row measured. Rows that differ in any of these are different evaluations (``card``: the
#: version of the task's protocol card, which fixes the recipe, evaluation split and metric variant).
EVALUATION = ["task", "split", "protocol", "metric", "options", "precision", "fixture", "metric_definition", "card"]
#: Which model produced the row: the preset and its weights.
MODEL = ["backbone", "checkpoint_sha256"]
GROUP = ["family", *EVALUATION, *MODEL]
#: Values of columns an older leaderboard lacks (rows were fp32 before ``precision`` existed).
MISSING_DEFAULTS = {"precision": "fp32"}
STATS = ["n", "mean", "std", "iqm", "ci_low", "ci_high"]
PAPER_COLUMNS = ["paper", "delta", "paper_note", "paper_source", "paper_setting", "paper_verified"]
#: paper_results.csv columns a run must equal (besides ``setting``, matched against its options).
PAPER_KEYS = ("task", "metric", "backbone", "split", "protocol")
PAPER_REQUIRED = (*PAPER_KEYS, "value", "setting", "source", "verified")
NO_PAPER = "no paper number for this setting"
BOOTSTRAP = 2000


class PaperResultsError(RsbenchError):
    """``paper_results.csv`` lacks a column or holds a value that is not a number."""


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


def _options(options: str) -> dict[str, Any]:
    """A row's options JSON as a dict (an unreadable cell reads as no options)."""
    try:
        parsed = json.loads(options) if options else {}
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _same(a: Any, b: str) -> bool:
    if str(a) == b:
        return True
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a).lower() == b.lower() and b.lower() in ("true", "false")


def setting_differences(setting: str, options: str) -> list[str]:
    """Each ``k=v`` of a paper row's ``k=v;k2=v2`` setting the run's options do not equal."""
    opts = _options(options)
    out = []
    for part in filter(None, (p.strip() for p in setting.split(";"))):
        key, _, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if key not in opts:
            out.append(f"{key} not set (paper: {key}={value})")
        elif not _same(opts[key], value):
            out.append(f"{key}={opts[key]} (paper: {key}={value})")
    return out


def read_paper(path: Path) -> pd.DataFrame | None:
    """``paper_results.csv`` as strings, checked for the columns matching needs (None: no file)."""
    if not path.exists():
        return None
    paper = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in PAPER_REQUIRED if c not in paper.columns]
    if missing:
        raise PaperResultsError(f"{path}: missing column(s) {', '.join(missing)}; expected at least "
                                f"{', '.join(PAPER_REQUIRED)} (split and protocol say what the number was measured on)")
    for i, text in enumerate(paper["value"], start=2):
        try:
            float(text)
        except ValueError:
            raise PaperResultsError(f"{path}, line {i}: value {text!r} is not a number") from None
    return paper


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def weights_difference(run: Mapping[str, Any]) -> str:
    """Why the run's backbone is not the pretrained model the paper evaluated ('' when it is)."""
    random = _number(run.get("backbone_params_random"))
    loaded = _number(run.get("backbone_params_loaded"))
    if random is not None and random > 0:
        return f"{int(random):,} backbone parameters at initialisation"
    if loaded == 0:
        return "no pretrained backbone weights loaded"
    if random is None and loaded is None and not run.get("checkpoint_sha256") and not run.get("checkpoint"):
        return "no checkpoint (backbone at initialisation)"
    return ""


def _related(run_backbone: str, paper_backbone: str) -> bool:
    """The paper's preset or a variant of it (``skysense-tiny`` of ``skysense``)."""
    return run_backbone == paper_backbone or run_backbone.startswith(paper_backbone + "-")


@dataclass(frozen=True)
class PaperMatch:
    """The published number for a run: ``value`` only on an exact match; ``row`` is the paper row
    matched, or the closest one on a near miss (then ``note`` says what differs)."""

    value: float | None = None
    row: Mapping[str, str] | None = None
    note: str = ""


def match_paper(paper: pd.DataFrame | None, run: Mapping[str, Any]) -> PaperMatch:
    """The published number measured on exactly the run's task, metric, preset, split, protocol
    and setting, on real data with pretrained weights. One function serves the tables and the
    report, so a number and its source always come from the same paper row."""
    if paper is None or paper.empty:
        return PaperMatch()
    related = np.array([_related(str(run["backbone"]), str(b)) for b in paper["backbone"]], dtype=bool)
    candidates = paper[(paper["task"] == str(run["task"])).to_numpy() & related]
    fixture = str(run.get("fixture", "")).lower() in ("true", "1")  # a bool or the CSV's text
    weights = weights_difference(run)
    best: tuple[list[str], dict[str, str]] | None = None
    for row in candidates.to_dict("records"):
        diffs = []
        for key in PAPER_KEYS[1:]:
            mine, theirs = str(run.get(key, "")), str(row[key]).strip()
            if not theirs:
                diffs.append(f"the paper's {key} is not stated")
            elif mine != theirs:
                diffs.append(f"{'preset' if key == 'backbone' else key} {mine or '(none)'} (paper: {theirs})")
        diffs += setting_differences(str(row["setting"]), str(run.get("options", "")))
        diffs += ["generated fixture data"] if fixture else []
        diffs += [weights] if weights else []
        if not diffs:
            return PaperMatch(float(row["value"]), row)
        if best is None or len(diffs) < len(best[0]):
            best = (diffs, row)
    if best is None:
        return PaperMatch()
    return PaperMatch(None, best[1], f"{NO_PAPER}: {'; '.join(best[0])}")


def _verified(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return ""
    return "yes" if str(row.get("verified", "")).strip().lower() in ("yes", "true", "1") else "no"


def load_rows(results_dir: Path) -> pd.DataFrame:
    """Every leaderboard row, with the grouping columns an older file lacks filled in."""
    frame = leaderboard.load_frame([results_dir / leaderboard.LEADERBOARD_NAME])
    for column in [*leaderboard.COLUMNS, *GROUP, "backbone_params_random", "backbone_params_loaded"]:
        if column not in frame.columns:
            frame[column] = MISSING_DEFAULTS.get(column, "")
    for column, default in MISSING_DEFAULTS.items():
        frame[column] = frame[column].replace("", default)
    frame["fixture"] = frame["fixture"].astype(str).str.lower().isin(["true", "1"])
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
    return frame


def summarize(results_dir: Path) -> pd.DataFrame:
    """One row per (evaluation, model): statistics over seeds and the paper comparison."""
    results_dir = Path(results_dir)
    frame = load_rows(results_dir)
    ok = frame[(frame["status"] == "ok") & np.isfinite(frame["value"])].copy()  # unscored submissions have no value
    columns = [*GROUP, *STATS, *PAPER_COLUMNS]
    if ok.empty:
        return pd.DataFrame(columns=columns)
    ok["family"] = ok["task"].map(_family)
    paper = read_paper(results_dir / "paper_results.csv")
    records: list[dict[str, Any]] = []
    for key, group in ok.groupby(GROUP, sort=True):
        values = group["value"].to_numpy(dtype=float)
        low, high = bootstrap_ci(values)
        record = dict(zip(GROUP, key, strict=True), n=len(values), mean=float(values.mean()),
                      std=float(values.std(ddof=1)) if len(values) > 1 else 0.0, iqm=iqm(values),
                      ci_low=low, ci_high=high)
        weights = {c: _worst(group[c], c) for c in ("backbone_params_random", "backbone_params_loaded")}
        match = match_paper(paper, {**record, **weights, "checkpoint": _first(group["checkpoint"])})
        record.update(paper=match.value, delta=None if match.value is None else record["mean"] - match.value,
                      paper_note=match.note, paper_source=str(match.row["source"]) if match.row else "",
                      paper_setting=str(match.row["setting"]) if match.row else "", paper_verified=_verified(match.row))
        records.append(record)
    return pd.DataFrame.from_records(records, columns=columns).round(4)


def _worst(column: pd.Series, name: str) -> float | None:
    """The least pretrained seed of a group: most parameters random, fewest loaded."""
    numbers = [v for v in (_number(x) for x in column) if v is not None]
    if not numbers:
        return None
    return max(numbers) if name == "backbone_params_random" else min(numbers)


def _first(column: pd.Series) -> str:
    return next((str(v) for v in column if str(v)), "")


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
