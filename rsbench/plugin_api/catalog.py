"""What plugins declare: light, typed records of backbones, datasets, tasks and executors.

These records are plain data so that listing and describing never imports torch or
OpenMMLab; heavy objects are named by import path (``"pkg.module:attr"``) and loaded on use.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from rsbench.errors import DuplicateNameError, UnknownNameError

#: Modality keys shared by backbones and tasks. Bands are named per modality.
MODALITIES: dict[str, str] = {
    "hr": "very-high-resolution optical (RGB, optionally NIR)",
    "sar": "very-high-resolution SAR (one band)",
    "s2": "Sentinel-2 multispectral (time series allowed)",
    "s1": "Sentinel-1 SAR, VV and VH (time series allowed)",
}


def load_object(path: str) -> Any:
    """Import ``"package.module:attr"`` (attr may be dotted) and return the attribute."""
    module_name, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class BackboneInfo:
    """A backbone preset: ``mm_type`` + ``kwargs`` is the mmengine ``MODELS`` config.

    ``module`` is the module whose import registers ``mm_type`` into mmengine's root ``MODELS``
    (:meth:`register_type` imports it).
    ``params`` is declared so ``rsbench info`` is instant; a test checks it against a count on
    the meta device.
    """

    name: str
    module: str
    mm_type: str
    modalities: Mapping[str, tuple[str, ...]]
    out_channels: tuple[int, ...]
    out_strides: tuple[int, ...]
    pooled_channels: int
    params: int
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    family: str = "baseline"
    description: str = ""
    input_rule: str = "H and W multiples of 32"
    #: Input rules as data (``rsbench.protocol.input_rules``): the smallest H and W the backbone accepts
    #: for its first (spatial) modality, and the multiple H and W should be; 0/1: no rule.
    min_input_size: int = 0
    input_multiple: int = 1
    temporal: bool = False
    tiny: bool = False
    #: Input size used by contract tests and the meta-device count.
    test_size: int = 64
    #: ``"pkg.mod:attr"`` of the model's pretraining objective (``rsbench pretrain``), if it has one.
    pretrainer: str = ""

    def config(self, **overrides: Any) -> dict[str, Any]:
        """The mmengine model config of this preset (``type`` plus keyword arguments)."""
        return {"type": self.mm_type, **dict(self.kwargs), **overrides}

    def register_type(self) -> Any:
        """Import :attr:`module`, registering ``mm_type``; returns the module."""
        return load_object(self.module)


@dataclass(frozen=True)
class BackbonePrefix:
    """A family of backbones named ``<prefix>:<anything>`` (e.g. ``timm:convnext_tiny``).

    ``resolver`` ("pkg.mod:fn") maps a full name to a :class:`BackboneInfo`; it may import
    heavy libraries, since it runs only when such a name is used.
    """

    name: str  # the prefix, without the colon
    resolver: str
    description: str = ""


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset in its official on-disk layout."""

    name: str
    title: str
    layout: str
    classes: tuple[str, ...]
    checker: str  # "pkg.mod:fn" -> fn(root: Path) -> dict summary, raises DataLayoutError
    fixture: str  # "pkg.mod:fn" -> fn(out: Path, seed: int = 0) -> Path
    citation: str = ""
    #: ``"pkg.mod:attr"`` of the dataset's archive recipe (``rsbench data prepare`` and
    #: ``rsbench data fixture --archives``): the files its providers distribute and how they
    #: unpack into ``layout``; empty when not written yet.
    archives: str = ""

    def check(self, root: Any) -> dict[str, Any]:
        return load_object(self.checker)(root)

    def write_fixture(self, out: Any, seed: int = 0, **kwargs: Any) -> Any:
        """Write the fixture; ``kwargs`` pick a variant the writer offers (``layout="v2"``)."""
        return load_object(self.fixture)(out, seed=seed, **kwargs)


@dataclass(frozen=True)
class SizeOption:
    """What a task option's pixel size is.

    ``kind``: ``resize`` (the task rescales to it: adapts), ``self_resize`` (a resize the task
    itself raises to the rule, ``rsbench.protocol.input_rules.adapt_size``; nothing to change), or
    ``crop``/``patch``/``window`` (cut at native resolution: a size below the rule is an error).
    ``zero`` says what 0 means (the native size, the whole image). ``native``: whether the size
    fed depends on the images' native size (a resize capped at it, the native size a 0 stands
    for): the checked data's ``native_size`` then decides.
    """

    kind: str
    what: str
    zero: str = ""
    native: bool = False


@dataclass(frozen=True)
class TaskInfo:
    """One evaluation: a dataset, a protocol family, a metric and how it is computed."""

    name: str
    title: str
    family: str
    dataset: str
    task_class: str  # "pkg.mod:Class" implementing rsbench.plugin_api.task.Task
    metric: str
    metric_definition: str
    modalities: Mapping[str, tuple[str, ...]]
    splits: tuple[str, ...] = ("test",)
    default_split: str = "test"
    higher_is_better: bool = True
    options: Mapping[str, Any] = field(default_factory=dict)
    evaluation_of: tuple[str, ...] = ()  # which paper suites list it: "skysense", "mars"
    #: Training iterations of a ``--smoke`` run on the fixture (enough to beat chance there).
    smoke_iters: int = 20
    #: Options a ``--smoke`` run sets (small crops and heads that suit a tiny fixture).
    smoke_options: Mapping[str, Any] = field(default_factory=dict)
    #: The submission format ``rsbench score --predictions`` reads for this task.
    predictions: str = ""
    #: Modalities a boolean option adds, ``{option: {modality: bands}}``: e.g. a SAR dataset's
    #: band replicated to R,G,B (``sar_as_rgb``) so that RGB baselines can be evaluated on it.
    option_modalities: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    #: ``"pkg.mod:attr"`` of the task's protocol card (``rsbench.protocol.protocol_card.ProtocolCard``):
    #: every fine-tuning setting with its source; empty when the task has none yet.
    card: str = ""
    #: Cards an option's value selects instead, ``{option: {value: "pkg.mod:attr"}}``: e.g.
    #: ``{"head": {"mars": ...}}``, the recipe of MaRS' released decoder next to the uniform head's
    #: ``card`` (which the option's declared default keeps).
    option_cards: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: Modalities that are only a view of another modality of the task, ``{view: source}``
    #: (OSCD's RGB is three of its Sentinel-2 bands): a backbone fed the source is not fed the view.
    views: Mapping[str, str] = field(default_factory=dict)
    #: What each pixel-size option of the task means, ``{option: SizeOption}``: the backbones'
    #: input rules are checked against them before any model is built (rsbench.protocol.input_rules).
    size_options: Mapping[str, SizeOption] = field(default_factory=dict)

    def load_task_class(self) -> Any:
        """The :class:`rsbench.plugin_api.task.Task` subclass named by :attr:`task_class`."""
        return load_object(self.task_class)

    def provided_modalities(self, options: Mapping[str, Any] | None = None) -> dict[str, tuple[str, ...]]:
        """The modalities (and bands) the task provides under ``options``."""
        out = {m: tuple(b) for m, b in self.modalities.items()}
        for option, extra in self.option_modalities.items():
            value = (options or {}).get(option, self.options.get(option))
            if str(value).lower() in ("1", "true", "yes"):
                out.update({m: tuple(b) for m, b in extra.items()})
        return out


@dataclass(frozen=True)
class ExecutorInfo:
    name: str
    executor_class: str
    description: str = ""


T = TypeVar("T", BackboneInfo, BackbonePrefix, DatasetInfo, TaskInfo, ExecutorInfo)


class NameRegistry(Generic[T]):
    """A name -> record map that remembers which plugin registered each name (rsbench's catalog;
    not mmengine's ``Registry``, which builds modules from configs)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self.owner: dict[str, str] = {}

    def add(self, item: T, plugin: str) -> None:
        if item.name in self._items:
            raise DuplicateNameError(
                f"{self.kind} {item.name!r} registered by plugin {plugin!r} "
                f"is already registered by plugin {self.owner[item.name]!r}"
            )
        self._items[item.name] = item
        self.owner[item.name] = plugin

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._items) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(self._items[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class Catalog:
    backbones: NameRegistry[BackboneInfo] = field(default_factory=lambda: NameRegistry("backbone"))
    backbone_prefixes: NameRegistry[BackbonePrefix] = field(
        default_factory=lambda: NameRegistry("backbone prefix")
    )
    datasets: NameRegistry[DatasetInfo] = field(default_factory=lambda: NameRegistry("dataset"))
    tasks: NameRegistry[TaskInfo] = field(default_factory=lambda: NameRegistry("task"))
    executors: NameRegistry[ExecutorInfo] = field(default_factory=lambda: NameRegistry("executor"))

    def backbone(self, name: str) -> BackboneInfo:
        """Look up a backbone by name, or through its prefix family (``timm:<model>``)."""
        prefix, sep, _ = name.partition(":")
        if sep and name not in self.backbones and prefix in self.backbone_prefixes:
            info: BackboneInfo = load_object(self.backbone_prefixes.get(prefix).resolver)(name)
            return info
        return self.backbones.get(name)
