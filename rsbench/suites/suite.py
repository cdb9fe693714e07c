"""Suites as data: a suite file lists evaluations; a grid crosses them with backbones, seeds,
protocols and option values. Expanding a grid is pure and cheap (no torch), so ``--dry-run``
shows exactly what will run."""

from __future__ import annotations

import itertools
import runpy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from rsbench.errors import SpecError
from rsbench.run.spec import PROTOCOLS, RunSpec

#: The built-in suites: ``configs/rsbench_suites`` in the source tree, shipped in the wheel as
#: the data package ``rsbench_suites`` (so an installed rsbench has them too).
SUITES_DIR = Path(str(resources.files("rsbench_suites")))


@dataclass(frozen=True)
class Evaluation:
    """One suite entry: a task, its protocols, and option values to cross (lists)."""

    task: str
    protocols: tuple[str, ...] = ("finetune",)
    options: Mapping[str, Sequence[Any]] = field(default_factory=dict)

    def option_grid(self) -> list[dict[str, Any]]:
        keys = sorted(self.options)
        return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(self.options[k] for k in keys))]


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    evaluations: tuple[Evaluation, ...]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def load_suite(name_or_path: str) -> Suite:
    """A suite by name (``configs/rsbench_suites/<name>.py``) or by path to a user's suite file.

    A suite file is plain data: ``DESCRIPTION = "..."`` and ``EVALUATIONS = [dict(task=...,
    protocols=[...], options={name: [values]}), ...]``.
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = SUITES_DIR / f"{name_or_path}.py"
    if not path.is_file():
        known = sorted(p.stem for p in SUITES_DIR.glob("*.py") if not p.stem.startswith("_"))
        raise SpecError(f"--suite {name_or_path!r}: no suite file {path}; built-in suites: {', '.join(known)}")
    data = runpy.run_path(str(path))
    if "EVALUATIONS" not in data:
        raise SpecError(f"suite file {path}: defines no EVALUATIONS list")
    evaluations = []
    for i, entry in enumerate(data["EVALUATIONS"]):
        if not isinstance(entry, Mapping) or "task" not in entry:
            raise SpecError(f"suite file {path}: EVALUATIONS[{i}] must be a dict with a 'task' key")
        unknown = set(entry) - {"task", "protocols", "options"}
        if unknown:
            raise SpecError(f"suite file {path}: EVALUATIONS[{i}] has unknown key(s) {', '.join(sorted(unknown))}")
        evaluations.append(Evaluation(
            task=entry["task"],
            protocols=tuple(_as_list(entry.get("protocols", ["finetune"]))),
            options={k: _as_list(v) for k, v in dict(entry.get("options", {})).items()},
        ))
    return Suite(path.stem, str(data.get("DESCRIPTION", "")), tuple(evaluations))


def expand(
    suite: Suite,
    backbones: Sequence[str],
    seeds: Iterable[int] = (0,),
    protocols: Sequence[str] | None = None,
    data_roots: Mapping[str, str] | None = None,
    smoke: bool = False,
    device: str = "cpu",
    work_root: Path = Path("work_dirs"),
    track: Sequence[str] = (),
    nproc: int = 1,
) -> list[RunSpec]:
    """Every (evaluation x option values x protocol x backbone x seed) as a run spec.

    ``protocols`` replaces each entry's own; ``data_roots`` maps task names to folders;
    ``smoke`` shortens training to each task's declared ``smoke_iters``; ``nproc`` runs each
    evaluation on that many processes (``rsbench.run.distributed``).
    """
    for p in protocols or ():
        if p not in PROTOCOLS:
            raise SpecError(f"--protocol {p!r}: expected one of {', '.join(PROTOCOLS)}")
    specs = []
    for evaluation in suite.evaluations:
        for options, protocol, backbone, seed in itertools.product(
            evaluation.option_grid(), protocols or evaluation.protocols, backbones, list(seeds)
        ):
            tag = "-".join(f"{k}{v}" for k, v in sorted(options.items()))
            work_dir = work_root / evaluation.task / backbone.replace(":", "_") / f"{protocol}-seed{seed}{'-' + tag if tag else ''}"
            specs.append(RunSpec(
                backbone=backbone, task=evaluation.task,
                data_root=(data_roots or {}).get(evaluation.task), protocol=protocol, seed=seed,
                max_iters=_smoke(evaluation.task)[0] if smoke else None, device=device, work_dir=str(work_dir),
                options={k: str(v) for k, v in {**(_smoke(evaluation.task)[1] if smoke else {}), **options}.items()},
                track=tuple(track), nproc=nproc,
            ))
    return specs


def _smoke(task: str) -> tuple[int | None, dict[str, Any]]:
    """A task's smoke-run length and options (none for a task no plugin registered)."""
    from rsbench.plugin_api.plugin_host import get_catalog

    tasks = get_catalog().tasks
    if task not in tasks:
        return None, {}
    info = tasks.get(task)
    return info.smoke_iters, dict(info.smoke_options)
