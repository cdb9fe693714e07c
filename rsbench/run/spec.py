"""The run spec: one flat, typed description of one evaluation.

A task plugin turns it into an mmengine config; nothing else is needed to reproduce a run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from rsbench.errors import SpecError

PROTOCOLS = ("finetune", "frozen", "linear")
DEVICES = ("cpu", "cuda")
PRECISIONS = ("fp32", "fp16", "bf16")
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")


@dataclass(frozen=True)
class RunSpec:
    """What to evaluate and how.

    ``protocol``: ``finetune`` trains backbone and head; ``frozen`` freezes the backbone and
    trains the task's usual head; ``linear`` freezes it and trains a linear head.
    ``feature_cache`` (frozen/linear only) reads repeated backbone outputs from disk.
    ``max_iters``/``batch_size``/``lr`` override the task's schedule; ``options`` hold the
    task's own settings (for example ``train_ratio`` of a scene-classification task).
    """

    backbone: str
    task: str
    data_root: str | None = None
    checkpoint: str | None = None
    #: Per-encoder weight files, ``part -> path`` (``--checkpoint hr=FILE``): the parts a
    #: backbone names in ``checkpoint_parts`` (SkySense ``hr``/``s2``/``s1``, MaRS ``rgb``/``sar``),
    #: each loaded strictly into its encoder.
    encoder_checkpoints: dict[str, str] = field(default_factory=dict)
    strict_load: bool = True
    split: str | None = None
    protocol: str = "finetune"
    max_iters: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0
    device: str = "cpu"
    work_dir: str | None = None
    num_workers: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    #: Frozen/linear runs read the frozen backbone's outputs from the on-disk cache
    #: (``rsbench.engine.feature_cache``) where the training pipeline allows it.
    feature_cache: bool = True
    feature_cache_dtype: str = "float32"
    #: Experiment trackers the run also logs to (``tensorboard``, ``mlflow``, ``wandb``).
    track: tuple[str, ...] = ()
    #: ``fp32``, or mixed precision on CUDA (``fp16``/``bf16``: mmengine's AmpOptimWrapper for
    #: training, TestLoop autocast for testing). Low precision on CPU is not offered: on this
    #: project's CPUs bf16 matmul measured two orders of magnitude slower than fp32 (bench/).
    precision: str = "fp32"
    #: Processes for this one evaluation (``rsbench.run.distributed``: torchrun and mmengine's
    #: ``pytorch`` launcher; one per GPU with ``device="cuda"``, gloo processes on the CPU).
    #: The batch size stays per process, as in mmengine.
    nproc: int = 1
    #: Recompute the backbone's block activations in the backward pass instead of keeping them
    #: (``RSBackbone.set_grad_checkpointing``): less training memory for paper-size backbones.
    activation_checkpointing: bool = False
    #: ``contiguous`` (default); ``auto``: channels-last memory for backbones whose convolutions
    #: dominate (``RSBackbone.prefers_channels_last``); ``channels_last`` for any. Opt-in: the
    #: same weights give identical test metrics either way, but FAIR1M fine-tuning of resnet50-tiny
    #: came out far worse channels-last (mAP50 5.5 / 3.0 vs 42.5 / 35.4, two seeds) for a reason
    #: not yet found, while DIOR-R did not change beyond seed noise.
    memory_format: str = "contiguous"

    def validate(self, splits: tuple[str, ...] = (), known_options: dict[str, Any] | None = None) -> None:
        if self.protocol not in PROTOCOLS:
            raise SpecError(f"--protocol {self.protocol!r}: expected one of {', '.join(PROTOCOLS)}")
        if self.feature_cache_dtype not in ("float32", "float16"):
            raise SpecError(f"--feature-cache-dtype {self.feature_cache_dtype!r}: expected float32 or float16")
        if self.precision not in PRECISIONS:
            raise SpecError(f"--precision {self.precision!r}: expected one of {', '.join(PRECISIONS)}")
        if self.precision != "fp32" and self.device != "cuda":
            raise SpecError(f"--precision {self.precision}: mixed precision needs --device cuda")
        if self.memory_format not in MEMORY_FORMATS:
            raise SpecError(f"--memory-format {self.memory_format!r}: expected one of {', '.join(MEMORY_FORMATS)}")
        if self.nproc < 1:
            raise SpecError(f"--nproc {self.nproc}: expected a positive integer")
        if self.nproc > 1 and self.track:
            raise SpecError("--track with --nproc > 1: experiment tracking of multi-process runs is not supported; "
                            "track a single-process run")
        if self.track:
            from rsbench.engine.tracking import check_trackers

            check_trackers(self.track)
        for part, path in self.encoder_checkpoints.items():
            if not part or not path:
                raise SpecError(f"--checkpoint {part}={path}: expected PART=FILE with a part name and a file")
        if self.device not in DEVICES:
            raise SpecError(f"--device {self.device!r}: expected one of {', '.join(DEVICES)}")
        if self.split is not None and splits and self.split not in splits:
            raise SpecError(f"--split {self.split!r}: task {self.task!r} has splits {', '.join(splits)}")
        for name, value in (("--max-iters", self.max_iters), ("--batch-size", self.batch_size)):
            if value is not None and value < 1:
                raise SpecError(f"{name} {value}: expected a positive integer")
        if self.lr is not None and not self.lr > 0:
            raise SpecError(f"--lr {self.lr}: expected a positive number")
        if known_options is not None:
            unknown = sorted(set(self.options) - set(known_options))
            if unknown:
                raise SpecError(
                    f"--option {', '.join(unknown)}: task {self.task!r} takes "
                    f"{', '.join(sorted(known_options)) or 'no options'}"
                )

    def resolved(self, defaults: dict[str, Any], default_split: str) -> RunSpec:
        """This spec with the task's option defaults merged in (typed) and the split filled:
        the one place options are merged, so every later reader sees the final values."""
        return replace(self, options=self.with_options(defaults), split=self.split or default_split)

    def resolved_for(self, task: Any) -> RunSpec:
        """:meth:`resolved` with a task's declared options and default split (a ``TaskInfo``)."""
        return self.resolved(dict(task.options), task.default_split)

    def checkpoint_files(self) -> dict[str, str]:
        """Every weight file of the run: ``""`` for ``checkpoint``, else the encoder part."""
        files = {"": self.checkpoint} if self.checkpoint else {}
        return {**files, **dict(sorted(self.encoder_checkpoints.items()))}

    def with_options(self, defaults: dict[str, Any]) -> dict[str, Any]:
        """The task's defaults overridden by this spec's options, cast to the defaults' types."""
        merged = dict(defaults)
        for key, value in self.options.items():
            default = defaults.get(key)
            if isinstance(value, str) and default is not None and not isinstance(default, str):
                try:
                    value = type(default)(json.loads(value)) if not isinstance(default, bool) else value.lower() in ("1", "true", "yes")
                except (ValueError, TypeError) as exc:
                    raise SpecError(f"--option {key}={value!r}: expected {type(default).__name__}") from exc
            merged[key] = value
        return merged

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise SpecError(f"run spec: unknown field(s) {', '.join(unknown)}; fields are {', '.join(sorted(names))}")
        return cls(**data)


def parse_options(pairs: Sequence[str], json_values: bool = False) -> dict[str, Any]:
    """``--option KEY=VALUE`` pairs. Values stay strings (a task casts them to its defaults'
    types, ``RunSpec.with_options``) unless ``json_values``: then a value that parses as JSON
    (numbers, lists) is that value."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"--option {pair!r}: expected KEY=VALUE")
        value = value.strip()
        if json_values:
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        out[key.strip()] = value
    return out


def parse_checkpoints(values: Sequence[str]) -> tuple[str | None, dict[str, str]]:
    """``--checkpoint`` values: at most one whole-backbone ``FILE`` and any ``PART=FILE``
    (a part is a plain name such as ``hr`` or ``sar``; a path with ``=`` in it stays a path)."""
    whole: list[str] = []
    parts: dict[str, str] = {}
    for value in values:
        part, sep, path = value.partition("=")
        if sep and part.isidentifier():
            if part in parts:
                raise SpecError(f"--checkpoint {value}: part {part!r} given twice ({parts[part]} and {path})")
            parts[part] = path
        else:
            whole.append(value)
    if len(whole) > 1:
        raise SpecError(f"--checkpoint: {len(whole)} whole-backbone files ({', '.join(whole)}); give one, "
                        "or name each encoder's file as PART=FILE")
    return (whole[0] if whole else None), parts
