"""The ``rsbench`` command line.

Listing and describing (``--help``, ``list``, ``plugins``, ``info``) read plugin declarations
only and never import torch or OpenMMLab; the stack is imported when a run starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from rsbench import __version__
from rsbench.errors import RsbenchError
from rsbench.plugin_api.plugin_host import get_catalog, get_host
from rsbench.run.spec import parse_checkpoints, parse_options

console = Console()
err_console = Console(stderr=True)
DATA_ENV = "RSBENCH_DATA_ROOT"


def _emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


class RsbenchGroup(click.Group):
    """Turns rsbench's own errors into one red line and exit code 2, without a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RsbenchError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            sys.exit(2)


@click.group(cls=RsbenchGroup)
@click.version_option(__version__, prog_name="rsbench")
def main() -> None:
    """Benchmark remote-sensing backbones on standard downstream evaluations."""


# -- run ------------------------------------------------------------------------------------
@contextlib.contextmanager
def _stdout_to_stderr(enabled: bool) -> Iterator[None]:
    """Send file descriptor 1 to stderr (libraries print progress and notices to stdout)."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _default_data_root(task: str) -> str | None:
    base = os.environ.get(DATA_ENV)
    if not base:
        return None
    return str(Path(base) / get_catalog().tasks.get(task).dataset)


@main.command()
@click.option("--backbone", "-b", required=True, help="Backbone name (rsbench list backbones) or timm:<model>.")
@click.option("--task", "-t", required=True, help="Evaluation name (rsbench list tasks).")
@click.option("--data-root", type=click.Path(), help=f"Dataset folder in its official layout (default: ${DATA_ENV}/<dataset>).")
@click.option("--checkpoint", "checkpoints", multiple=True, metavar="[PART=]FILE",
              help="Backbone weights (.pth/.safetensors), loaded weights-only; PART=FILE loads one encoder's "
                   "file (SkySense hr=, s2=, s1=; MaRS rgb=, sar=), repeatable.")
@click.option("--no-strict-load", is_flag=True, help="Load the matching part of a checkpoint instead of failing.")
@click.option("--protocol", default="finetune", show_default=True, help="finetune | frozen | linear")
@click.option("--split", help="Evaluation split (default: the task's).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--max-iters", type=int, help="Override the task's training length.")
@click.option("--batch-size", type=int, help="Override the task's batch size.")
@click.option("--lr", type=float, help="Override the task's learning rate.")
@click.option("--work-dir", type=click.Path(), help="Where configs, logs and checkpoints go.")
@click.option("--device", default="cpu", show_default=True, help="cpu | cuda")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE", help="Task option, e.g. train_ratio=0.5.")
@click.option("--results", default="results", show_default=True, type=click.Path(), help="Folder of leaderboard.csv.")
@click.option("--force", is_flag=True, help="Run even if an identical ok row exists.")
@click.option("--feature-cache/--no-feature-cache", default=True, show_default=True,
              help="Frozen/linear: compute the frozen backbone's outputs once and read them from disk after.")
@click.option("--feature-cache-dtype", default="float32", show_default=True, help="float32 | float16 storage.")
@click.option("--track", help="Also log to experiment trackers: tensorboard,mlflow,wandb (comma list).")
@click.option("--precision", default="fp32", show_default=True, help="fp32 | fp16 | bf16 (mixed precision, CUDA only).")
@click.option("--nproc", default=1, show_default=True, type=int,
              help="Processes for this evaluation, launched with torchrun (one per GPU with --device cuda).")
@click.option("--activation-checkpointing", is_flag=True,
              help="Recompute backbone activations in the backward pass (less training memory).")
@click.option("--memory-format", default="contiguous", show_default=True,
              help="contiguous | auto (channels-last where convolutions dominate) | channels_last.")
@click.option("--json", "as_json", is_flag=True, help="Print the leaderboard row as JSON.")
@click.option("--verbose", "-v", is_flag=True, help="Show mmengine's log.")
def run(backbone: str, task: str, data_root: str | None, checkpoints: tuple[str, ...], no_strict_load: bool,
        protocol: str, split: str | None, seed: int, max_iters: int | None, batch_size: int | None,
        lr: float | None, work_dir: str | None, device: str, options: tuple[str, ...], results: str,
        force: bool, feature_cache: bool, feature_cache_dtype: str, track: str | None, precision: str,
        nproc: int, activation_checkpointing: bool, memory_format: str, as_json: bool, verbose: bool) -> None:
    """Run one evaluation and append its row to the leaderboard."""
    from rsbench.run.runner import run_evaluation
    from rsbench.run.spec import RunSpec

    checkpoint, parts = parse_checkpoints(checkpoints)
    spec = RunSpec(backbone=backbone, task=task, data_root=data_root or _default_data_root(task),
                   checkpoint=checkpoint, encoder_checkpoints=parts, strict_load=not no_strict_load, split=split, protocol=protocol,
                   max_iters=max_iters, batch_size=batch_size, lr=lr, seed=seed, device=device,
                   work_dir=work_dir, options=parse_options(options), feature_cache=feature_cache,
                   feature_cache_dtype=feature_cache_dtype, track=tuple(_csv(track)), precision=precision,
                   nproc=nproc, activation_checkpointing=activation_checkpointing, memory_format=memory_format)
    try:
        with _stdout_to_stderr(as_json):  # --json: stdout carries the row and nothing else
            outcome = run_evaluation(spec, results_dir=results, force=force, show_progress=not as_json,
                                     verbose=verbose)
    except RsbenchError:
        raise
    except Exception as exc:  # the failed row is written; say so and where the log is
        raise RsbenchError(f"run failed: {type(exc).__name__}: {exc} (a failed row was written to "
                           f"{Path(results) / 'leaderboard.csv'})") from exc
    row = outcome.row
    if as_json:
        _emit_json(dict(row, reused=outcome.reused))
    elif outcome.reused:
        console.print(f"[yellow]already done[/] (run {row['run_id']}): {row['metric']} = {row['value']} "
                      "— use --force to run again")
    elif row["status"] == "skipped":
        console.print(f"[yellow]{row['error']}[/]")
    else:
        console.print(f"[green]ok[/] {row['backbone']} on {row['task']}: {row['metric']} = {row['value']} "
                      f"({row['wall_time_s']} s) → {Path(results) / 'leaderboard.csv'}")


@main.command()
@click.option("--task", "-t", required=True, help="Evaluation name (rsbench list tasks).")
@click.option("--data-root", type=click.Path(), help=f"Dataset folder in its official layout (default: ${DATA_ENV}/<dataset>).")
@click.option("--predictions", "-p", required=True, type=click.Path(),
              help="Prediction file or folder in the dataset's submission format (rsbench info task ID).")
@click.option("--name", "-n", required=True, help="Model name; the row's backbone is external:NAME.")
@click.option("--split", help="Evaluation split (default: the task's).")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE", help="Task option (as for run).")
@click.option("--work-dir", type=click.Path(), help="Where the split files and metrics go.")
@click.option("--results", default="results", show_default=True, type=click.Path(), help="Folder of leaderboard.csv.")
@click.option("--force", is_flag=True, help="Score again even if these predictions have an ok row.")
@click.option("--json", "as_json", is_flag=True, help="Print the leaderboard row as JSON.")
def score(task: str, data_root: str | None, predictions: str, name: str, split: str | None,
          options: tuple[str, ...], work_dir: str | None, results: str, force: bool, as_json: bool) -> None:
    """Score predictions made by any model with the task's own metric code; one leaderboard row."""
    from rsbench.run.scoring import score_predictions

    root = data_root or _default_data_root(task)
    if not root:
        raise RsbenchError(f"task {task!r} needs --data-root (or ${DATA_ENV})")
    with _stdout_to_stderr(as_json):
        row, reused = score_predictions(task, root, predictions, name, split=split, results_dir=results,
                                        work_dir=work_dir, options=parse_options(options), force=force)
    if as_json:
        _emit_json(dict(row, reused=reused))
    elif reused:
        console.print(f"[yellow]already scored[/] (run {row['run_id']}): {row['metric']} = {row['value']} "
                      "— use --force to score again")
    else:
        console.print(f"[green]ok[/] {row['backbone']} on {row['task']}: {row['metric']} = {row['value']} "
                      f"→ {Path(results) / 'leaderboard.csv'}")


# -- suite / leaderboard ------------------------------------------------------------------
def _csv(text: str | None) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


@main.command()
@click.option("--suite", "suite_name", default="all", show_default=True, help="skysense16 | mars9 | all | path to a suite file.")
@click.option("--backbones", required=True, help="Comma-separated backbone names.")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated seeds.")
@click.option("--protocol", "protocols", help="Comma-separated protocols (default: each entry's own).")
@click.option("--data-root", type=click.Path(), envvar=DATA_ENV, help="Folder with one sub-folder per dataset name.")
@click.option("--smoke", is_flag=True, help="Generated fixtures and short schedules: checks that everything runs.")
@click.option("--executor", default="local", show_default=True, help="local | ray | a plugin's executor.")
@click.option("--address", help="Ray cluster address (ray executor).")
@click.option("--jobs", type=int, help="Concurrent evaluations (default: one per two cores).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--results", default="results", show_default=True, type=click.Path())
@click.option("--work-root", default="work_dirs", show_default=True, type=click.Path())
@click.option("--force", is_flag=True, help="Rerun evaluations that already have an ok row.")
@click.option("--dry-run", is_flag=True, help="Show the grid and exit.")
@click.option("--track", help="Also log every run to experiment trackers: tensorboard,mlflow,wandb.")
@click.option("--nproc", default=1, show_default=True, type=int,
              help="Processes per evaluation (torchrun; one per GPU with --device cuda).")
def suite(suite_name: str, backbones: str, seeds: str, protocols: str | None, data_root: str | None, smoke: bool,
          executor: str, address: str | None, jobs: int | None, device: str, results: str, work_root: str,
          force: bool, dry_run: bool, track: str | None, nproc: int) -> None:
    """Run a suite of evaluations over backbones, seeds and protocols; resumable and fault-isolated."""
    from rsbench.suites.suite import expand, load_suite

    loaded = load_suite(suite_name)
    catalog = get_catalog()
    tasks = [e.task for e in loaded.evaluations]
    roots: dict[str, str] = {}
    for task in dict.fromkeys(tasks):
        if task not in catalog.tasks:
            continue
        if smoke and dry_run:
            roots[task] = "<generated fixture>"  # a dry run writes nothing
        elif smoke:
            from rsbench.io.fixtures import ensure_fixture

            roots[task] = str(ensure_fixture(task))
        elif data_root:
            roots[task] = str(Path(data_root) / catalog.tasks.get(task).dataset)
    try:
        seed_list = [int(s) for s in _csv(seeds)]
    except ValueError as exc:
        raise RsbenchError(f"--seeds {seeds!r}: expected comma-separated integers") from exc
    specs = expand(loaded, _csv(backbones), seed_list, _csv(protocols) or None, roots, smoke=smoke,
                   device=device, work_root=Path(work_root), track=_csv(track), nproc=nproc)
    if specs:
        specs[0].validate()  # a bad --track or --nproc fails before anything runs
    if specs and not dry_run:
        from rsbench.run.devices import check_device

        check_device(device, nproc)  # --device cuda without a GPU: one sentence, no row
    if dry_run:
        table = Table(title=f"suite {loaded.name}: {len(specs)} evaluations", title_justify="left")
        for col in ("task", "backbone", "protocol", "seed", "options", "data_root"):
            table.add_column(col)
        for spec in specs:
            table.add_row(spec.task, spec.backbone, spec.protocol, str(spec.seed),
                          json.dumps(spec.options) if spec.options else "", spec.data_root or "[red]none[/]")
        console.print(table)
        return
    from rsbench.results.aggregate import write_tables
    from rsbench.suites.suite_run import run_suite

    counts = run_suite(specs, executor=executor, results_dir=Path(results), force=force, jobs=jobs,
                       address=address, console=err_console)
    written = write_tables(Path(results))
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    console.print(f"suite {loaded.name}: {summary}; tables: {', '.join(str(p) for p in written.values())}")
    if counts.get("failed"):
        sys.exit(1)


@main.command("leaderboard")
@click.option("--results", default="results", show_default=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True)
def leaderboard_(results: str, as_json: bool) -> None:
    """Aggregate leaderboard.csv: per-family and overall tables (mean ± std, IQM, 95% CI, paper delta)."""
    from rsbench.results.aggregate import summarize, write_tables

    written = write_tables(Path(results))
    table_frame = summarize(Path(results))
    if as_json:
        _emit_json(json.loads(table_frame.to_json(orient="records")))
        return
    table = Table(title=f"leaderboard ({len(table_frame)} groups)", title_justify="left")
    for col in ("task", "split", "backbone", "protocol", "precision", "metric", "n", "mean", "std", "ci", "paper",
                "delta"):
        table.add_column(col)
    for r in table_frame.to_dict("records"):
        paper = "" if r["paper"] is None or r["paper"] != r["paper"] else f"{r['paper']:.2f}"
        if not paper and r.get("paper_note"):
            paper = "n/a"  # a paper number exists, for another setting (the report says which)
        delta = "" if r["delta"] is None or r["delta"] != r["delta"] else f"{r['delta']:+.2f}"
        table.add_row(r["task"], str(r.get("split", "")), r["backbone"], r["protocol"], str(r.get("precision") or "fp32"),
                      r["metric"], str(r["n"]), f"{r['mean']:.2f}", f"{r['std']:.2f}",
                      f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]", paper, delta)
    console.print(table)
    console.print("wrote " + ", ".join(str(p) for p in written.values()))


@main.command()
@click.option("--results", default="results", show_default=True, type=click.Path(), help="Folder of leaderboard.csv and paper_results.csv.")
@click.option("--out", type=click.Path(), help="Output folder (default: <results>/report).")
def report(results: str, out: str | None) -> None:
    """Write index.html (tables, plots, provenance), report.md and PNG plots from the leaderboard."""
    from rsbench.results.report import write_report

    written = write_report(Path(results), Path(out) if out else Path(results) / "report")
    console.print(f"wrote {written['html']} and {written['markdown']} ({len(written) - 2} plots)")


# -- list / info / plugins ----------------------------------------------------------------
KINDS = ("backbones", "tasks", "datasets")


@main.command("list")
@click.argument("kind", type=click.Choice(KINDS), required=False)
@click.option("--json", "as_json", is_flag=True)
def list_(kind: str | None, as_json: bool) -> None:
    """List registered backbones, tasks and datasets."""
    catalog = get_catalog()
    kinds = [kind] if kind else list(KINDS)
    if as_json:
        _emit_json({k: getattr(catalog, k).names() for k in kinds})
        return
    for k in kinds:
        table = Table(title=k, title_justify="left")
        registry = getattr(catalog, k)
        if k == "backbones":
            for col in ("name", "modalities", "params", "plugin", "description"):
                table.add_column(col)
            for b in registry:
                table.add_row(b.name, ", ".join(b.modalities), _millions(b.params), registry.owner[b.name], b.description)
            for p in catalog.backbone_prefixes:
                table.add_row(f"{p.name}:<model>", "hr", "", catalog.backbone_prefixes.owner[p.name], p.description)
        elif k == "tasks":
            for col in ("name", "family", "dataset", "metric", "modalities", "plugin"):
                table.add_column(col)
            for t in registry:
                table.add_row(t.name, t.family, t.dataset, t.metric, ", ".join(t.modalities), registry.owner[t.name])
        else:
            for col in ("name", "title", "classes", "plugin"):
                table.add_column(col)
            for d in registry:
                table.add_row(d.name, d.title, str(len(d.classes)), registry.owner[d.name])
        console.print(table)


def _millions(n: int) -> str:
    return f"{n / 1e6:,.2f} M" if n < 1e9 else f"{n / 1e9:,.3f} B"


@main.command()
@click.option("--json", "as_json", is_flag=True)
def plugins(as_json: bool) -> None:
    """List loaded plugins with their version, hooks and any load error."""
    records = get_host().records
    if as_json:
        _emit_json([r.as_dict() for r in records])
        return
    table = Table()
    for col in ("plugin", "module", "distribution", "version", "hooks", "depends on", "status"):
        table.add_column(col)
    for r in records:
        hooks = ", ".join(h.removeprefix("rsbench_register_") for h in r.hooks)
        status = f"[red]error: {r.error}[/]" if r.error else "[green]ok[/]"
        table.add_row(r.name, r.module, r.distribution or "-", r.version or "-", hooks,
                      ", ".join(r.depends_on) or "-", status)
    console.print(table)


@main.command()
@click.argument("kind", type=click.Choice(["backbone", "task", "dataset"]))
@click.argument("name")
@click.option("--count", is_flag=True, help="Count a backbone's parameters on the meta device (imports torch).")
@click.option("--json", "as_json", is_flag=True)
def info(kind: str, name: str, count: bool, as_json: bool) -> None:
    """Describe a backbone, task or dataset."""
    catalog = get_catalog()
    record: Any
    if kind == "backbone":
        record = catalog.backbone(name)
        data = asdict(record)
        data["params_human"] = _millions(record.params)
        if count:
            from rsbench.plugin_api.backbone import count_parameters

            record.register_type()
            data["params_counted"] = count_parameters(record.config())
    elif kind == "task":
        from rsbench.protocol.protocol_card import as_dict, task_card, variant_cards

        record = catalog.tasks.get(name)
        data = asdict(record)
        dataset = catalog.datasets.get(record.dataset)
        data["layout"] = dataset.layout
        data["classes"] = list(dataset.classes)
        card = task_card(record)
        if card is not None:
            data["protocol_card"] = as_dict(card)
        variants = variant_cards(record)
        if variants:
            data["protocol_card_variants"] = {k: as_dict(v) for k, v in variants.items()}
    else:
        record = catalog.datasets.get(name)
        data = asdict(record)
        if record.archives:
            from rsbench.io.data_prepare import describe

            data["archives"] = describe(record)
    if as_json:
        _emit_json(data)
        return
    table = Table(title=f"{kind} {name}", show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in data.items():
        if key in ("module", "task_class", "checker", "fixture", "resolver", "kwargs", "protocol_card", "card",
                   "option_cards", "protocol_card_variants", "size_options"):
            continue
        text = ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        if isinstance(value, dict):
            text = "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list | tuple) else v}" for k, v in value.items())
        table.add_row(key, text)
    console.print(table)
    if kind == "task" and "protocol_card" in data:
        from rsbench.protocol.protocol_card import render, task_card, variant_cards

        console.print(render(task_card(record), rich=True))
        for choice, variant in variant_cards(record).items():
            console.print(f"\n[bold]with -o {choice}[/]")
            console.print(render(variant, rich=True))


# -- data ------------------------------------------------------------------------------------
@main.group()
def data() -> None:
    """Dataset utilities."""


@data.command("fixture")
@click.argument("name")
@click.option("--out", required=True, type=click.Path(), help="Folder to write the fixture into.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--archives", is_flag=True,
              help="Write it as the providers' archives (names and nesting as published), for `data prepare`.")
@click.option("--variant", help="With --archives: which of the dataset's download variants (rsbench info dataset).")
@click.option("--layout", help="Another layout users have: v2 (BigEarthNet reBEN), devkit (iSAID), crops256 (LEVIR-CD).")
def data_fixture(name: str, out: str, seed: int, archives: bool, variant: str | None, layout: str | None) -> None:
    """Write a tiny copy of NAME (a task or a dataset) in its official layout (deterministic,
    with a learnable signal), or as its providers' archives."""
    catalog = get_catalog()
    dataset = (catalog.datasets.get(name) if name in catalog.datasets
               else catalog.datasets.get(catalog.tasks.get(name).dataset))
    if archives:
        from rsbench.io.data_prepare import write_archive_fixture

        if layout:
            raise RsbenchError("--layout with --archives: the archives hold the layout their recipe's variant names")
        path = write_archive_fixture(dataset, Path(out), seed=seed, variant=variant)
        console.print(f"wrote {dataset.title} fixture as its providers' archives to {path}")
        return
    if variant:
        raise RsbenchError("--variant needs --archives")
    path = dataset.write_fixture(Path(out), seed=seed, **({"layout": layout} if layout else {}))
    console.print(f"wrote {dataset.title} fixture to {path}")


@data.command("prepare")
@click.argument("dataset")
@click.option("--from", "downloads", required=True, type=click.Path(exists=True, file_okay=False),
              help="Folder holding the archives as downloaded (never modified).")
@click.option("--out", required=True, type=click.Path(), help="The dataset root to write (the layout `data check` reads).")
@click.option("--link", default="copy", show_default=True, type=click.Choice(["copy", "hardlink", "symlink"]),
              help="For downloads already unpacked: copy, hard-link or symlink their files.")
@click.option("--variant", help="Which download variant to read (default: the one whose files are present).")
@click.option("--no-verify", is_flag=True, help="Skip the published checksums.")
def data_prepare(dataset: str, downloads: str, out: str, link: str, variant: str | None, no_verify: bool) -> None:
    """Unpack DATASET's downloaded archives into its official layout; idempotent and resumable,
    ends with `data check`."""
    from rsbench.io.data_prepare import prepare

    summary = prepare(get_catalog().datasets.get(dataset), Path(downloads), Path(out), link=link,
                      verify=not no_verify, variant=variant, console=err_console)
    for archive, action in summary["actions"].items():
        console.print(f"  {archive}: {action}")
    console.print(f"[green]ok[/] {dataset} ({summary['variant']}) prepared and checked under {summary['root']}")


@data.command("check")
@click.argument("dataset")
@click.argument("root", type=click.Path())
def data_check(dataset: str, root: str) -> None:
    """Check that ROOT holds DATASET in its official layout."""
    summary = get_catalog().datasets.get(dataset).check(Path(root))
    count = f"{len(summary['samples'])} samples " if "samples" in summary else ""
    layout = f"the {summary['layout']} layout" if summary.get("layout") else "the official layout"
    console.print(f"[green]ok[/] {dataset}: {count}in {layout} under {summary.get('root', root)}")


# -- doctor / demo -----------------------------------------------------------------------------
@main.command()
@click.option("--data-dir", type=click.Path(), envvar=DATA_ENV, help="Folder holding one sub-folder per dataset name.")
@click.option("--json", "as_json", is_flag=True)
def doctor(data_dir: str | None, as_json: bool) -> None:
    """Report the installed stack, compiled mmcv ops, devices, plugins and dataset roots."""
    from rsbench.cli.doctor import diagnose

    report = diagnose(Path(data_dir) if data_dir else None)
    if as_json:
        _emit_json(report)
    else:
        from rsbench.cli.doctor import render

        render(report, console)
    if not report["healthy"]:
        sys.exit(1)


@main.command()
@click.option("--backbones", default="resnet50-tiny,vit-tiny,skysense-tiny,mars-tiny", show_default=True)
@click.option("--suite", "suite_name", default="demo", show_default=True,
              help="demo (AID, about a minute) or all (the smoke suite: every evaluation).")
@click.option("--results", type=click.Path(), help="Leaderboard folder (default: the cache's demo folder).")
@click.option("--jobs", type=int, help="Concurrent evaluations (default: one per two cores).")
@click.option("--force", is_flag=True)
def demo(backbones: str, suite_name: str, results: str | None, jobs: int | None, force: bool) -> None:
    """Run a suite on generated fixtures (smoke settings) and print the leaderboard.

    Fixture runs are demonstrations: their rows go to the cache, not to results/.
    """
    from rsbench.cli.demo import run_demo

    counts = run_demo(_csv(backbones), suite_name, Path(results) if results else None, force, jobs, console)
    if counts.get("failed"):
        sys.exit(1)


from rsbench.cli.pretrain import pretrain as _pretrain  # noqa: E402  (light: torch loads inside)

main.add_command(_pretrain)


if __name__ == "__main__":  # pragma: no cover
    main()
