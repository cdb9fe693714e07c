"""``python -m bench``: measure the eight figures in one run and write ``bench/RESULTS.md``.

    python -m bench                 # all eight figures, sizes for a 2-core CPU (about half an hour)
    python -m bench --quick         # small sizes: checks the plumbing in a few minutes, no verdicts to trust
    python -m bench --only 1,5      # rerun some figures; the others are kept from the last run's JSON
    python -m bench --paper         # paper sizes for figures 1-2 (meant for a GPU; used when present)

Next to the markdown, ``RESULTS.json`` keeps every figure's data so ``--only`` can replace some
figures and re-render the rest unchanged (each figure says when it was measured).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

from bench import report
from bench.common import Context, Figure, load1

FIGURES = {
    1: "bench.figure_1_forward",
    2: "bench.figure_2_flops",
    3: "bench.figure_3_feature_cache",
    4: "bench.figure_4_harness",
    5: "bench.figure_5_metrics",
    6: "bench.figure_6_smoke_suite",
    7: "bench.figure_7_memory",
    8: "bench.figure_8_loader",
}
TITLES = {1: "Backbone forward", 2: "Achieved GFLOP/s", 3: "Feature cache", 4: "Harness overhead",
          5: "Metric speed", 6: "Smoke suite wall time", 7: "Peak memory", 8: "Loader throughput"}


def parse_only(text: str | None) -> list[int]:
    if not text:
        return sorted(FIGURES)
    try:
        numbers = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise SystemExit(f"--only {text!r}: expected comma-separated figure numbers 1-8") from None
    bad = [n for n in numbers if n not in FIGURES]
    if bad or not numbers:
        raise SystemExit(f"--only {text!r}: figures are numbered 1-8")
    return numbers


def run_figure(number: int, ctx: Context) -> Figure:
    """One figure; an exception becomes a ``not measured`` figure that says what failed."""
    start, load_start = time.perf_counter(), load1()
    print(f"[bench] figure {number}: {TITLES[number]} ...", file=sys.stderr, flush=True)
    try:
        fig = importlib.import_module(FIGURES[number]).run(ctx)
    except Exception as exc:  # noqa: BLE001  (the other figures still run and the failure is reported)
        fig = Figure(number, TITLES[number], "see the figure's module", verdict="not measured",
                     headline=f"failed: {type(exc).__name__}")
        fig.notes.append(f"The figure failed: {type(exc).__name__}: {exc}")
        fig.notes.append("Traceback tail: " + " | ".join(traceback.format_exc().strip().splitlines()[-4:]))
    fig.seconds = time.perf_counter() - start
    fig.load = (load_start, load1())
    fig.notes.append(f"Measured {report.now():%Y-%m-%d %H:%M} UTC" + (" (--quick sizes)" if ctx.quick else "")
                     + (" (--paper sizes)" if ctx.paper else "") + ".")
    print(f"[bench] figure {number}: {fig.verdict} ({fig.headline}) in {fig.seconds:.0f} s", file=sys.stderr,
          flush=True)
    return fig


def load_previous(path: Path) -> tuple[dict[int, Figure], list[dict[str, object]]]:
    """The figures and invocations of the last report's JSON (none when absent or unreadable)."""
    if not path.exists():
        return {}, []
    try:
        data = json.loads(path.read_text())
        figures = {int(f["number"]): Figure(**{**f, "load": tuple(f["load"])}) for f in data.get("figures", [])}
        return figures, list(data.get("runs", []))
    except (ValueError, TypeError, KeyError):
        return {}, []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated figure numbers (1-8); default: all")
    parser.add_argument("--quick", action="store_true", help="small sizes: a plumbing check in a few minutes")
    parser.add_argument("--paper", action="store_true", help="paper sizes for figures 1-2 (on a GPU when present)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "RESULTS.md"),
                        help="markdown file to write (default: bench/RESULTS.md)")
    parser.add_argument("--threads", type=int, help="torch threads (and OMP_NUM_THREADS of subprocesses); "
                        "default: torch's own choice")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the scratch folder (fixtures, work dirs)")
    args = parser.parse_args(argv)
    numbers = parse_only(args.only)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    ctx = Context(quick=args.quick, paper=args.paper, device=device)
    out = Path(args.out)
    sidecar = out.with_suffix(".json")
    figures, earlier = load_previous(sidecar) if args.only else ({}, [])
    started, start, load_start = report.now(), time.perf_counter(), load1()
    machine, stack = report.machine(), report.versions()
    revision = report.git_revision(Path(__file__).resolve().parent.parent)
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])

    def write() -> None:
        ordered = [figures[n] for n in sorted(figures)]
        seconds = time.perf_counter() - start
        # earlier invocations that still own a figure of this report
        kept = [e for e in earlier if set(e.get("figures", [])) - set(numbers) & set(figures)]  # type: ignore[arg-type]
        text = report.render(ordered, machine, stack, command.strip(), started, seconds,
                             {"start": load_start, "end": load1()}, revision, numbers, kept)
        this = dict(command=command.strip(), started=f"{started:%Y-%m-%d %H:%M}", seconds=round(seconds, 1),
                    figures=numbers)
        report.write(out, text)
        report.write(sidecar, json.dumps({"figures": [dataclasses.asdict(f) for f in ordered],
                                          "runs": [*kept, this]}, indent=1, default=str))

    try:
        for n in numbers:
            figures[n] = run_figure(n, ctx)
            write()  # after every figure, so a long run leaves what it measured
    finally:
        if not args.keep_tmp:
            shutil.rmtree(ctx.tmp, ignore_errors=True)
    print(f"[bench] wrote {out} in {(time.perf_counter() - start) / 60:.1f} min", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    raise SystemExit(main())
