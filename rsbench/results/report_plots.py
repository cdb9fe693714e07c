"""The report's PNG plots (matplotlib, Agg): bars with CIs, a normalized heatmap, ranks, and
reproduced-vs-paper. Each function writes nothing when its data is empty, so a partial
leaderboard still gives a report."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # a headless backend: reports are rendered on servers and in CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def slug(text: str) -> str:
    """A file-name-safe form of an evaluation label (no path separators, no spaces)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.") or "x"


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def bar_charts(table: pd.DataFrame, out_dir: Path) -> dict[str, Path]:
    """One bar chart per evaluation: mean per model (``model``, else ``backbone``) with its bootstrap
    CI as error bars."""
    written: dict[str, Path] = {}
    name = "model" if "model" in table.columns else "backbone"
    for label, part in table.groupby("evaluation", sort=True):
        part = part.sort_values(name)
        mean = part["mean"].to_numpy(dtype=float)
        err = np.vstack([mean - part["ci_low"].to_numpy(dtype=float), part["ci_high"].to_numpy(dtype=float) - mean])
        fig, ax = plt.subplots(figsize=(max(3.5, 0.9 * len(part) + 1.5), 3.2))
        x = np.arange(len(part))
        ax.bar(x, mean, yerr=np.clip(err, 0, None), capsize=4, color="#4c78a8")
        ax.set_xticks(x, list(part[name]), rotation=30, ha="right")
        ax.set_ylabel(str(part["metric"].iloc[0]))
        ax.set_title(str(label), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        written[f"bars:{label}"] = _save(fig, out_dir / f"bars_{slug(str(label))}.png")
    return written


def heatmap(normalized: pd.DataFrame, path: Path) -> Path | None:
    """Backbones × evaluations, each column scaled to [0, 1] (1 = best) so metrics compare."""
    if normalized.empty:
        return None
    data = normalized.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * data.shape[1] + 2.5), max(2.5, 0.45 * data.shape[0] + 1.5)))
    image = ax.imshow(np.ma.masked_invalid(data), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(data.shape[1]), list(normalized.columns), rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(data.shape[0]), list(normalized.index), fontsize=8)
    for (i, j), v in np.ndenumerate(data):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 else "black")
    fig.colorbar(image, ax=ax, label="normalized score (1 = best)")
    return _save(fig, path)


def rank_plot(ranks: pd.DataFrame, path: Path) -> Path | None:
    """Each backbone's rank (1 = best) across evaluations: who wins where, at a glance."""
    if ranks.empty:
        return None
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * ranks.shape[1] + 2.5), 3.5))
    x = np.arange(ranks.shape[1])
    for backbone, row in ranks.iterrows():
        ax.plot(x, row.to_numpy(dtype=float), marker="o", label=str(backbone))
    ax.set_xticks(x, list(ranks.columns), rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("rank (1 = best)")
    top = int(np.nanmax(ranks.to_numpy(dtype=float))) if np.isfinite(ranks.to_numpy(dtype=float)).any() else 1
    ax.set_yticks(range(1, top + 1))
    ax.set_ylim(top + 0.5, 0.5)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    return _save(fig, path)


def paper_scatter(pairs: pd.DataFrame, path: Path) -> Path | None:
    """Reproduced mean against the published number; points off the identity line are gaps."""
    if pairs.empty:
        return None
    paper = pairs["paper"].to_numpy(dtype=float)
    mine = pairs["mean"].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    verified = pairs["verified"].to_numpy(dtype=bool)
    if verified.any():
        ax.scatter(paper[verified], mine[verified], color="#4c78a8", label="paper number verified")
    if (~verified).any():
        ax.scatter(paper[~verified], mine[~verified], facecolors="none", edgecolors="#e45756",
                   label="paper number unverified")
    for p, m, name in zip(paper, mine, pairs["label"], strict=True):
        ax.annotate(str(name), (p, m), fontsize=6, xytext=(3, 3), textcoords="offset points")
    lo, hi = float(min(paper.min(), mine.min())), float(max(paper.max(), mine.max()))
    pad = max((hi - lo) * 0.05, 0.5)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=1, label="identity")
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("paper")
    ax.set_ylabel("reproduced (mean over seeds)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path)
