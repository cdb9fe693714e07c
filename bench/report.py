"""The machine, the versions and the figures as one markdown file (``bench/RESULTS.md``).

The report never hides a miss: every figure's verdict is in the summary table with the number
that decided it, and figures that could not be measured say why.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bench.common import Figure

#: Distribution names of the stack (mmseg and mmrotate are published under longer names).
VERSIONS = (("torch", "torch"), ("mmengine", "mmengine"), ("mmcv", "mmcv"), ("mmseg", "mmsegmentation"),
            ("mmdet", "mmdet"), ("mmrotate", "mmrotate-dev"), ("mmpretrain", "mmpretrain"), ("timm", "timm"),
            ("numpy", "numpy"))


def versions() -> dict[str, str]:
    out = {}
    for label, dist in VERSIONS:
        try:
            out[label] = version(dist)
        except PackageNotFoundError:
            out[label] = "absent"
    return out


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return found.group(1).strip() if found else platform.processor() or "unknown"


def _cpu_flags() -> str:
    try:
        flags = set(re.search(r"^flags\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M).group(1).split())
    except (OSError, AttributeError):
        return ""
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return ", ".join(f for f in wanted if f in flags)


def _ram_gib() -> tuple[float, float]:
    """(total, available) GiB from /proc/meminfo."""
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
        kib = lambda key: int(info[key].split()[0])  # noqa: E731
        return kib("MemTotal") / 2**20, kib("MemAvailable") / 2**20
    except (OSError, KeyError, ValueError):
        return 0.0, 0.0


def git_revision(repo: Path) -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + (" (with uncommitted changes)" if dirty else "") if sha else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict[str, Any]:
    import torch

    total, available = _ram_gib()
    out: dict[str, Any] = {
        "CPU": _cpu_model(),
        "CPU flags (of interest)": _cpu_flags() or "n/a",
        "cores (os.cpu_count)": os.cpu_count(),
        "cores usable (sched_getaffinity)": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "n/a",
        "torch threads": torch.get_num_threads(),
        "RAM": f"{total:.1f} GiB total, {available:.1f} GiB available at start",
        "GPU": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "OS": platform.platform(),
        "python": platform.python_version(),
    }
    return out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def table(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return lines


def render(figures: Sequence[Figure], machine_info: dict[str, Any], stack: dict[str, str], command: str,
           started: datetime, seconds: float, load: dict[str, float], revision: str,
           measured_now: Sequence[int] = (), earlier: Sequence[dict[str, Any]] = ()) -> str:
    """``earlier``: previous invocations whose figures are kept (``command``, ``started``, ``seconds``,
    ``figures``), so a report merged by ``--only`` still says what the full run took."""
    kept = [f.number for f in figures if f.number not in measured_now]
    scope = ("" if not kept else f" This invocation measured figure(s) {', '.join(map(str, measured_now))}; "
             f"figure(s) {', '.join(map(str, kept))} are kept from an earlier run (see their 'Measured' line).")
    if kept and earlier:
        scope += " Earlier invocations: " + "; ".join(
            f"`{e['command']}` at {e['started']} UTC took {float(e['seconds']) / 60:.1f} min (figures "
            f"{', '.join(str(n) for n in e['figures'] if n in kept)} kept)" for e in earlier) + "."
    lines = [
        "# rsbench benchmark results",
        "",
        f"Written by `{command}` on {started.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC; the whole run took "
        f"{seconds / 60:.1f} min. rsbench revision {revision}. Every figure is a ratio against a reference "
        "measured in the same run on this machine." + scope,
        "",
        "## Machine",
        "",
        *table(["item", "value"], [{"item": k, "value": v} for k, v in machine_info.items()]),
        f"| load average (1 min) at start / end | {load['start']:.2f} / {load['end']:.2f} |",
        "",
        "The load average is that of the whole machine: it counts the benchmark's own threads (up to the "
        "torch threads above) plus any other job sharing these cores. Each figure below gives its own load at "
        "start and end; ratios are robust to steady load (both sides interleaved), absolute times and "
        "GFLOP/s are not.",
        "",
        "## Versions",
        "",
        *table(list(stack), [stack]),
        "",
        "## Summary",
        "",
        *table(["figure", "measured", "goal", "verdict"],
               [{"figure": f"{f.number}. {f.title}", "measured": f.headline, "goal": f.goal, "verdict": f.verdict}
                for f in figures]),
        "",
    ]
    for f in figures:
        lines += [f"## {f.number}. {f.title}", "",
                  f"Goal: {f.goal}. **Verdict: {f.verdict}**" + (f" ({f.headline})." if f.headline else "."),
                  f"Took {f.seconds:.0f} s; load average {f.load[0]:.2f} at start, {f.load[1]:.2f} at end.", ""]
        if f.method:
            lines += [f.method, ""]
        lines += table(f.columns, f.rows)
        if f.rows:
            lines.append("")
        lines += [f"- {n}" for n in f.notes]
        if f.notes:
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def now() -> datetime:
    return datetime.now(timezone.utc)
