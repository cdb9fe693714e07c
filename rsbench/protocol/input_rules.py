"""Input rules as data: does a task feed a backbone images it can take, and what to do if not.

A backbone declares ``min_input_size`` (the smallest H and W its forward accepts, e.g. 225 px for
SkySense's Swin-V2-H, whose last stage needs one 8-token window) and ``input_multiple`` (the
multiple at which its feature maps tile the input exactly; sizes raised to the rule land on it). A task feeds sizes set by its
options; which option means what each task declares (``TaskInfo.size_options``, records of
:class:`~rsbench.plugin_api.catalog.SizeOption`), so that a run is checked before any model is
built, without importing torch or the task's module.

* A *resize* (the task rescales images to the size) that breaks the rule adapts: the size is
  raised to the smallest one that keeps it (SwinV2-H: AID's 224 px -> 256 px).
* A *crop*, *patch* or *window* (pixels cut at the data's own ground resolution) does not adapt,
  since a bigger crop is another protocol: the run stops with one sentence naming the backbone,
  the task, the option, its size and the rule, and the value that would do.

The rule concerns the very-high-resolution inputs (:data:`RULED_MODALITIES`); Sentinel tiles
(``s2``, ``s1``) come at their own 10 m grid and SkySense's ViT encoders take any size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rsbench.errors import SpecError
from rsbench.plugin_api.catalog import BackboneInfo, SizeOption, TaskInfo
from rsbench.plugin_api.checked_data import CheckedData

#: Modalities the size options (and so the rule) apply to.
RULED_MODALITIES = ("hr", "sar")


def rule_text(backbone: BackboneInfo) -> str:
    """The rule in words: ``H, W >= 225 px, multiples of 32``."""
    parts = []
    if backbone.min_input_size > 1:
        parts.append(f"H, W >= {backbone.min_input_size} px")
    if backbone.input_multiple > 1:
        parts.append(f"multiples of {backbone.input_multiple}")
    return ", ".join(parts) or "any size"


def adapt_size(backbone: BackboneInfo, size: int) -> int:
    """``size`` if it keeps the rule, else the smallest size above the minimum that is a
    multiple of ``input_multiple`` (225 with multiple 32 -> 256). A size that is not a
    multiple but above the minimum is kept (the plan notes it): SkySense's and the baselines'
    windows and patch merging pad inside, so the multiple decides where an adapted size lands
    and what tiles exactly. (MaRS' timm patch embedding does need H, W multiples of its
    4 px patch; every size option's default and smoke value is a multiple of 32.)"""
    size = int(size)
    if size >= backbone.min_input_size:
        return size
    multiple = max(1, backbone.input_multiple)
    return int(math.ceil(backbone.min_input_size / multiple) * multiple)


def ruled_modalities(backbone: BackboneInfo, task: TaskInfo, modalities: Iterable[str] | None = None) -> list[str]:
    """The fed modalities the rule applies to (``modalities``: those the run feeds, else the
    task's modalities the backbone takes)."""
    fed = list(modalities) if modalities is not None else [m for m in task.modalities if m in backbone.modalities]
    return [m for m in fed if m in RULED_MODALITIES and m in backbone.modalities and task.views.get(m) not in fed]


@dataclass
class InputPlan:
    """What the run will feed: ``sizes`` per size option (after adaptation), ``options`` (the
    merged options, adapted), ``changed`` (``{option: (was, now)}``) and ``notes`` (why)."""

    backbone: str
    task: str
    rule: str
    sizes: dict[str, int] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    changed: dict[str, tuple[int, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def changed_options(self) -> dict[str, int]:
        """The options to set on the run spec (``{option: new value}``)."""
        return {k: new for k, (_, new) in self.changed.items()}

    def row_value(self) -> str:
        """The ``input_size`` leaderboard field: sizes fed and what was adapted, or ``""``."""
        if not self.sizes:
            return ""
        text = ", ".join(f"{v} px ({k})" for k, v in self.sizes.items())
        return text + (f"; {'; '.join(self.notes)}" if self.notes else "")


def _error(backbone: BackboneInfo, task: TaskInfo, option: str, spec: SizeOption, size: int,
           native: bool = False) -> SpecError:
    fix = ("the images are smaller than that: choose another backbone" if native
           else f"set -o {option}={adapt_size(backbone, size)} or choose another backbone")
    return SpecError(
        f"backbone {backbone.name!r} needs inputs of {rule_text(backbone)} but task {task.name!r} feeds "
        f"{size} px ({option}: {spec.what}){'' if not native else ' at the native size of its images'}; {fix}")


def check(backbone: BackboneInfo, task: TaskInfo, options: Mapping[str, Any],
          modalities: Iterable[str] | None = None, data: CheckedData | None = None) -> InputPlan:
    """Check (and adapt) the sizes ``task`` feeds ``backbone`` under the run's merged
    ``options``; with ``data`` (the task's checked data) also the sizes that depend on
    the images. Raises :class:`SpecError` (one sentence) where a size cannot adapt."""
    plan = InputPlan(backbone=backbone.name, task=task.name, rule=rule_text(backbone), options=dict(options))
    declared = task.size_options
    if not ruled_modalities(backbone, task, modalities) or not declared:
        return plan
    for option, spec in declared.items():
        if option not in options:
            continue
        try:
            size = int(options[option])
        except (TypeError, ValueError):
            raise SpecError(f"--option {option}={options[option]!r}: expected a size in pixels "
                            f"(task {task.name!r})") from None
        native = data.native_size if data is not None and spec.native else 0
        if spec.kind == "self_resize":  # the task resizes (up, too) to the adapted size itself
            if size > 0:
                size = min(size, native or size)
                fed = adapt_size(backbone, size)
                if fed != size:
                    plan.notes.append(f"resized to {fed} instead of {size} for {backbone.name}: {plan.rule}")
                plan.sizes[option] = fed
            continue
        if spec.kind == "resize" and size > 0:
            fed = adapt_size(backbone, size)
            if fed != size:
                plan.changed[option] = (size, fed)
                plan.options[option] = fed
                plan.notes.append(f"{option} {size} -> {fed} for {backbone.name}: {plan.rule}")
            if native and native < backbone.min_input_size:  # the task caps the resize at the native size
                raise _error(backbone, task, option, spec, native, native=True)
            plan.sizes[option] = min(native, fed) if native else fed
            continue
        if size <= 0:
            if not native:
                if spec.zero:
                    plan.notes.append(f"{option} 0: {spec.zero}")
                continue
            size = native
            if size < backbone.min_input_size:
                raise _error(backbone, task, option, spec, size, native=True)
        if size < backbone.min_input_size:
            raise _error(backbone, task, option, spec, size)
        plan.sizes[option] = size
        if size % max(1, backbone.input_multiple):
            plan.notes.append(f"{option} {size} is not a multiple of {backbone.input_multiple} "
                              f"(padded inside {backbone.name})")
    return plan
