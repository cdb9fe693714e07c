"""Protocol cards: every fine-tuning setting of one evaluation, each with where it comes from.

A card is plain data (no torch), so ``rsbench info task ID`` is instant. Each setting holds a
machine value that the task's ``build_config`` reads, a display text, and its source: the
official released config, the paper (with the reference), or a harness default (with the reason,
usually that no official setting is known). The default fine-tune run follows the card; what a
run changes is recorded beside the card's id and version (:func:`applied`).

The settings that shape optimisation are turned into mmengine config here, once for all tasks:
the effective batch is kept on fewer processes by gradient accumulation (``OptimWrapper``'s
``accumulative_counts``), iteration-based schedules are stretched by the same factor (an
mmengine iteration is one batch; the card counts optimiser steps), and layer-wise LR decay goes
through ``RSBLayerDecayOptimWrapperConstructor`` (:mod:`rsbench.protocol.layer_decay`).

A run given ``--max-iters`` (smoke runs, tests, quick tries) is a shortened run: it keeps the
harness's short-run settings (no accumulation, no layer decay, the preset's drop path, a warmup
of at most a tenth of the run), and :func:`applied` records that the card was not applied; so do
frozen and linear runs, whose backbone does not train. Under the card, ``--batch-size`` / ``--lr``
and task options the run changed from their declared defaults (``-o batch_size``, ``-o lr``,
the length option) still win; the effective batch is then kept by accumulation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rsbench.errors import RsbenchError, SpecError

OFFICIAL = "official config"
PAPER = "paper"
HARNESS = "harness default"
SOURCES = (OFFICIAL, PAPER, HARNESS)

#: The settings every card states, in display order, with their labels.
SETTINGS: dict[str, str] = {
    "head": "head",
    "crop": "crop / patch",
    "effective_batch": "effective batch",
    "schedule": "iterations / epochs",
    "optimizer": "optimizer",
    "lr": "learning rate",
    "layer_decay": "layer-wise LR decay",
    "drop_path": "drop path",
    "warmup": "warmup",
    "loss": "loss",
    "augmentation": "augmentation",
    "eval_split": "evaluation split",
    "metric_variant": "metric variant",
    "inference": "inference",
}


class CardError(RsbenchError):
    """A protocol card that is incomplete or inconsistent."""


@dataclass(frozen=True)
class Setting:
    """One setting: ``value`` (what the task reads; ``None``: nothing to apply), ``source`` (one
    of :data:`SOURCES`), ``ref`` (the reference for official/paper, the reason for a harness
    default) and ``text`` (the display form; ``str(value)`` when empty)."""

    value: Any
    source: str
    ref: str
    text: str = ""

    def shown(self) -> str:
        return self.text or str(self.value)


def official(value: Any, ref: str, text: str = "") -> Setting:
    return Setting(value, OFFICIAL, ref, text)


def paper(value: Any, ref: str, text: str = "") -> Setting:
    return Setting(value, PAPER, ref, text)


def harness(value: Any, reason: str, text: str = "") -> Setting:
    return Setting(value, HARNESS, reason, text)


@dataclass(frozen=True)
class ProtocolCard:
    """The protocol of one evaluation (see the module docstring).

    Machine values: ``effective_batch`` a dict ``{total, per_process}`` (the batch the optimiser
    sees and the default batch of one process) or ``None``; ``schedule`` a dict
    with ``iters`` or ``epochs`` and ``policy`` (``poly``, ``multistep`` with ``milestones`` in
    epochs, ``step`` with ``step_epochs`` and ``gamma``, ``cosine``, or ``task``: the task's own);
    ``optimizer`` a dict of the optimizer's config without ``lr`` (or ``None``: the task's own);
    ``lr`` a float (or ``None``); ``layer_decay`` a dict ``{rate, num_layers}`` or ``None``;
    ``drop_path`` a float or ``None`` (the preset's); ``warmup`` a dict ``{steps, start_factor}``
    or ``None``; the others are descriptive (``None`` or text).
    """

    task: str
    version: int
    head: Setting
    crop: Setting
    effective_batch: Setting
    schedule: Setting
    optimizer: Setting
    lr: Setting
    layer_decay: Setting
    drop_path: Setting
    warmup: Setting
    loss: Setting
    augmentation: Setting
    eval_split: Setting
    metric_variant: Setting
    inference: Setting
    #: Where the paper's number was measured with another head than the harness's uniform one:
    #: which head that number belongs to (empty when the heads agree or no number exists).
    paper_head: str = ""
    #: True: the task's config takes batch/accumulation, schedule, optimizer, LR, layer decay,
    #: drop path and warmup from this card. False: the card documents the task's own defaults
    #: (harness defaults where no official setting is known) and the task keeps them.
    configures: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for name in SETTINGS:
            s = getattr(self, name)
            if not isinstance(s, Setting):
                raise CardError(f"card {self.task!r}: setting {name!r} is {type(s).__name__}; expected a Setting")
            if s.source not in SOURCES:
                raise CardError(f"card {self.task!r}: setting {name!r} has source {s.source!r}; "
                                f"expected one of {', '.join(SOURCES)}")
            if not s.ref.strip():
                raise CardError(f"card {self.task!r}: setting {name!r} ({s.source}) names no "
                                f"{'reason' if s.source == HARNESS else 'reference'}")
        if self.version < 1:
            raise CardError(f"card {self.task!r}: version {self.version}; expected a positive integer")

    @property
    def name(self) -> str:
        """The card's name (its task), as the runner's ``card`` column reads it."""
        return self.task

    @property
    def id(self) -> str:
        """``task@version``: what a leaderboard row records."""
        return f"{self.task}@{self.version}"

    def settings(self) -> dict[str, Setting]:
        return {name: getattr(self, name) for name in SETTINGS}


def harness_card(task: str, reason: str, *, head: str, crop: str, batch: str, schedule: str, optimizer: str,
             lr: float, warmup: str, loss: str, augmentation: str, split: Any, metric: Any,
             inference: str = "whole image") -> ProtocolCard:
    """A card whose every setting is a harness default with one ``reason`` (no official config
    or paper states them); ``split`` / ``metric`` may be a :class:`Setting` with its own source."""
    return ProtocolCard(
        task=task, version=1,
        head=harness(None, reason + "; the harness's head for this family", head),
        crop=harness(None, reason, crop),
        effective_batch=harness(None, reason, batch),
        schedule=harness(None, reason, schedule),
        optimizer=harness(None, reason, optimizer),
        lr=harness(lr, reason, f"{lr:g}"),
        layer_decay=harness(None, reason, "none"),
        drop_path=harness(None, reason, "preset's"),
        warmup=harness(None, reason, warmup),
        loss=harness(None, reason, loss),
        augmentation=harness(None, reason, augmentation),
        eval_split=split if not isinstance(split, str) else harness(None, reason, split),
        metric_variant=metric if not isinstance(metric, str) else harness(None, reason, metric),
        inference=harness("whole", reason, inference),
    )


def load_card(path: str) -> ProtocolCard:
    """The card a ``TaskInfo.card`` path (``"pkg.mod:attr"``) names; a clear error otherwise."""
    from rsbench.plugin_api.catalog import load_object

    try:
        card = load_object(path)
    except (ImportError, AttributeError) as exc:
        raise CardError(f"protocol card {path!r}: cannot load it ({exc})") from exc
    if not isinstance(card, ProtocolCard):
        raise CardError(f"protocol card {path!r}: is a {type(card).__name__}; expected a ProtocolCard")
    return card


def task_card(info: Any, options: Mapping[str, Any] | None = None) -> ProtocolCard | None:
    """The card of a ``TaskInfo`` under a run's ``options`` (``None`` when it declares none): the
    variant an option's value selects (``TaskInfo.option_cards``), else the task's own. A value
    that is neither the option's declared default nor a variant is an error naming the choices."""
    for option, variants in getattr(info, "option_cards", {}).items():
        default = str(info.options.get(option, ""))
        value = str((options or {}).get(option, default))
        if value in variants:
            return load_card(variants[value])
        if value != default:
            raise SpecError(f"--option {option}={value}: task {info.name!r} offers {option} "
                            + " or ".join([default, *variants]))
    path = getattr(info, "card", "")
    return load_card(path) if path else None


def variant_cards(info: Any) -> dict[str, ProtocolCard]:
    """Every card an option selects, keyed ``option=value`` (what ``rsbench info task`` shows)."""
    return {f"{option}={value}": load_card(path) for option, variants in getattr(info, "option_cards", {}).items()
            for value, path in variants.items()}


# -- what a run applies ---------------------------------------------------------------------------
def applies(card: ProtocolCard | None, spec: Any) -> bool:
    """Whether this run takes its training settings from ``card``: a card that configures, on a
    full-length fine-tune run (see the module docstring)."""
    return card is not None and card.configures and spec.protocol == "finetune" and spec.max_iters is None


def applied(card: ProtocolCard | None, spec: Any) -> str:
    """The row's record of the card: ``task@version``, or why it was not applied."""
    if card is None:
        return ""
    if spec.protocol != "finetune":
        return f"{card.id} (not applied: protocol {spec.protocol})"
    if spec.max_iters is not None:
        return f"{card.id} (not applied: --max-iters, a shortened run)"
    return card.id


def accumulation(effective_batch: int, batch: int, nproc: int) -> int:
    """Gradient-accumulation steps that make ``batch`` per process on ``nproc`` processes the
    card's ``effective_batch``; 1 where the card states none. Clear error when it cannot."""
    per_step = batch * nproc
    if effective_batch <= 0 or per_step >= effective_batch:
        if effective_batch > 0 and per_step > effective_batch:
            raise CardError(f"batch {batch} x {nproc} process(es) = {per_step} exceeds the card's effective "
                            f"batch {effective_batch}; use a smaller --batch-size / -o batch_size or fewer "
                            "processes")
        return 1
    if effective_batch % per_step:
        raise CardError(f"the card's effective batch {effective_batch} is not a multiple of batch {batch} x "
                        f"{nproc} process(es); choose -o batch_size / --nproc that divide it")
    return effective_batch // per_step


@dataclass(frozen=True)
class Plan:
    """A card turned into mmengine quantities for one run."""

    batch: int
    nproc: int
    accumulate: int
    max_iters: int
    warmup_iters: int
    lr: float
    #: Epochs of an epoch-based schedule (0: iteration-based).
    epochs: int = 0

    @property
    def effective_batch(self) -> int:
        return self.batch * self.nproc * self.accumulate

    def describe(self) -> str:
        """The row's record of how the card's batch was reached."""
        return (f"effective batch {self.effective_batch} = {self.batch} x {self.nproc} process(es) x "
                f"{self.accumulate} accumulation; {self.max_iters} iterations, warmup {self.warmup_iters}")


def chosen(options: Mapping[str, Any], declared: Mapping[str, Any], key: str, card_value: Any) -> Any:
    """The card's value for option ``key`` unless the run set the option to something other than
    the task's declared default (``-o key=...``)."""
    if key in options and key in declared and options[key] != declared[key]:
        return options[key]
    return card_value if card_value is not None else options.get(key)


def changed_length(options: Mapping[str, Any], declared: Mapping[str, Any], key: str,
                   unit: str) -> dict[str, int] | None:
    """``{unit: N}`` where the run changed the task's length option ``key`` (``-o epochs=N``)."""
    if key in options and key in declared and options[key] != declared[key]:
        return {unit: int(options[key])}
    return None


def card_batch(card: ProtocolCard, spec: Any, options: Mapping[str, Any], declared: Mapping[str, Any]) -> int:
    """The per-process batch under the card: ``--batch-size``, a changed ``-o batch_size``, or the
    card's per-process batch."""
    per = (card.effective_batch.value or {}).get("per_process")
    return int(spec.batch_size or chosen(options, declared, "batch_size", per))


def card_lr(card: ProtocolCard, spec: Any, options: Mapping[str, Any], declared: Mapping[str, Any]) -> float:
    """The base LR under the card: ``--lr``, a changed ``-o lr``, or the card's."""
    return float(spec.lr or chosen(options, declared, "lr", card.lr.value))


def plan(card: ProtocolCard, spec: Any, batch: int, lr: float, n_train: int,
         length: Mapping[str, int] | None = None) -> Plan:
    """Per-process ``batch`` (already chosen by the task), the accumulation to the card's
    effective batch, the run length in mmengine iterations (card steps x accumulation, or epochs
    over ``n_train`` samples) and the warmup in iterations. ``length`` (``{"iters": N}`` or
    ``{"epochs": N}``) replaces the card's length where the run changed the task's option."""
    acc = accumulation(int((card.effective_batch.value or {}).get("total", 0)), batch, spec.nproc)
    sched = dict(card.schedule.value or {})
    if length:
        sched = {k: v for k, v in sched.items() if k not in ("iters", "epochs")} | dict(length)
    if "iters" in sched:
        max_iters = int(sched["iters"]) * acc
    elif "epochs" in sched:
        max_iters = math.ceil(n_train / (batch * spec.nproc)) * int(sched["epochs"])
    else:
        raise CardError(f"card {card.id}: schedule {sched!r} names neither iters nor epochs")
    warm = card.warmup.value
    warmup_iters = min(int(warm["steps"]) * acc, max_iters) if warm else 0
    return Plan(batch=batch, nproc=int(spec.nproc), accumulate=acc, max_iters=max(1, max_iters),
                warmup_iters=warmup_iters, lr=lr, epochs=int(sched.get("epochs", 0)))


def param_scheduler(card: ProtocolCard, p: Plan) -> list[dict[str, Any]]:
    """mmengine schedulers (by iteration) for the card's warmup and LR policy."""
    out: list[dict[str, Any]] = []
    if p.warmup_iters:
        out.append(dict(type="LinearLR", start_factor=float(card.warmup.value.get("start_factor", 1e-3)),
                        by_epoch=False, begin=0, end=p.warmup_iters))
    sched = dict(card.schedule.value)
    policy = sched.get("policy", "poly")
    if policy == "poly":
        out.append(dict(type="PolyLR", power=float(sched.get("power", 1.0)), eta_min=float(sched.get("eta_min", 0.0)),
                        by_epoch=False, begin=p.warmup_iters, end=p.max_iters))
    elif policy == "multistep":
        # milestones are epochs of the card's schedule: kept as fractions when the length changes
        fractions = [m / int(sched["epochs"]) for m in sched["milestones"]]
        milestones = [round(f * p.max_iters) for f in fractions]
        out.append(dict(type="MultiStepLR", by_epoch=False, begin=0, end=p.max_iters,
                        gamma=float(sched.get("gamma", 0.1)), milestones=milestones))
    elif policy == "step":
        step = max(1, round(int(sched["step_epochs"]) / int(sched["epochs"]) * p.max_iters))
        out.append(dict(type="StepLR", by_epoch=False, begin=0, end=p.max_iters, step_size=step,
                        gamma=float(sched.get("gamma", 0.5))))
    elif policy == "cosine":
        out.append(dict(type="CosineAnnealingLR", by_epoch=False, begin=p.warmup_iters, end=p.max_iters,
                        eta_min=p.lr * float(sched.get("eta_min_ratio", 0.0))))
    else:
        raise CardError(f"card {card.id}: LR policy {policy!r}; expected poly, multistep, step or cosine")
    return out


def imports(card: ProtocolCard) -> tuple[str, ...]:
    """Modules a run following ``card`` must import before building (the layer-decay constructor)."""
    return ("rsbench.protocol.layer_decay",) if card.layer_decay.value else ()


def optim_wrapper(card: ProtocolCard, p: Plan, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``optim_wrapper`` config: the card's optimizer at ``p.lr``, ``accumulative_counts``, and
    the layer-decay constructor where the card has layer decay. ``base`` holds what the task adds
    (``clip_grad``, ``paramwise_cfg``), kept unless the card's layer decay replaces it."""
    out: dict[str, Any] = dict(type="OptimWrapper", **dict(base or {}))
    opt = dict(card.optimizer.value or {})
    if not opt:
        raise CardError(f"card {card.id}: the optimizer setting has no config to apply")
    out["optimizer"] = dict(opt, lr=p.lr)
    if p.accumulate > 1:
        out["accumulative_counts"] = p.accumulate
    decay = card.layer_decay.value
    if decay:
        # Norms and position embeddings without weight decay (SkySense's configs; their bias
        # entry is a typo, so biases keep their decay, as in the released setup).
        out["constructor"] = "RSBLayerDecayOptimWrapperConstructor"
        out["paramwise_cfg"] = dict(layer_decay_rate=float(decay["rate"]), num_layers=int(decay["num_layers"]),
                                    custom_keys={"norm": dict(decay_mult=0.0), "pos_embed": dict(decay_mult=0.0),
                                                 "relative_position_bias_table": dict(decay_mult=0.0)})
    return out


#: Where each backbone family takes its stochastic-depth rate (config keys of its ``kwargs``).
#: Only transformer encoders get it: drop path is the card's setting for SwinV2/ViT blocks.
_TRANSFORMER_NETS = ("VisionTransformer", "SwinTransformer", "SwinTransformerV2")
_TIMM_TRANSFORMERS = ("swin", "vit", "deit", "beit", "eva")


def drop_path_overrides(backbone: Any, rate: float | None) -> dict[str, Any]:
    """Backbone config overrides that set the encoders' drop-path rate to ``rate``: SkySense's
    per-modality encoder dicts (``hr``/``s2``/``s1``), MaRS' shared ``encoder``, an mmpretrain
    transformer ``net``, a timm transformer's ``timm_kwargs``; ``{}`` for CNNs or ``rate=None``."""
    if rate is None:
        return {}
    kwargs = dict(backbone.kwargs)
    out: dict[str, Any] = {}
    for key in ("hr", "s2", "s1"):
        if isinstance(kwargs.get(key), Mapping):
            out[key] = {**kwargs[key], "drop_path_rate": float(rate)}
    if isinstance(kwargs.get("encoder"), Mapping):
        out["encoder"] = {**kwargs["encoder"], "drop_path_rate": float(rate)}
    net = kwargs.get("net")
    if isinstance(net, Mapping) and net.get("type") in _TRANSFORMER_NETS:
        out["net"] = {**net, "drop_path_rate": float(rate)}
    name = str(kwargs.get("model_name", ""))
    if name and any(t in name for t in _TIMM_TRANSFORMERS):
        out["timm_kwargs"] = {**dict(kwargs.get("timm_kwargs") or {}), "drop_path_rate": float(rate)}
    return out


# -- rendering --------------------------------------------------------------------------------------
def as_dict(card: ProtocolCard) -> dict[str, Any]:
    """The card as JSON-ready data (``rsbench info task ID --json``)."""
    return {"id": card.id, "task": card.task, "version": card.version, "configures": card.configures,
            "paper_head": card.paper_head, "notes": list(card.notes),
            "settings": {name: {"value": s.value, "text": s.shown(), "source": s.source, "ref": s.ref}
                         for name, s in card.settings().items()}}


def render(card: ProtocolCard, rich: bool = False) -> Any:
    """The card for ``rsbench info task ID``: plain text, or a ``rich.table.Table``."""
    rows = [(SETTINGS[name], s.shown(), s.source, s.ref) for name, s in card.settings().items()]
    title = f"protocol card {card.id}"
    if rich:
        from rich.table import Table

        table = Table(title=title, show_lines=False)
        for col in ("setting", "value", "source", "reference / reason"):
            table.add_column(col, overflow="fold")
        for row in rows:
            table.add_row(*row)
        caption = ([f"paper's number: {card.paper_head}"] if card.paper_head else []) + \
            [f"note: {n}" for n in card.notes]
        if caption:
            table.caption = "\n".join(caption)
        return table
    lines = [title]
    width = max(len(r[0]) for r in rows)
    for label, value, source, ref in rows:
        lines.append(f"  {label:<{width}}  {value}")
        lines.append(f"  {'':<{width}}    [{source}] {ref}")
    if card.paper_head:
        lines.append(f"  paper's number: {card.paper_head}")
    for note in card.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)
