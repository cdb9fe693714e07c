"""The one backbone contract every rsbench backbone follows (built-in or plugin).

A backbone is an mmengine ``BaseModule`` registered in mmengine's **root** ``MODELS`` under a
unique name, so mmseg, mmdet, mmrotate and mmpretrain configs can all name it without a scope.

Contract (checked for every registered backbone by ``tests/test_backbone_contract.py``):

* class attributes / instance attributes ``modalities`` (modality -> band names),
  ``out_channels`` and ``out_strides`` (one per output map), ``pooled_channels``;
* ``forward(inputs)`` returns a tuple of NCHW maps, map ``i`` with ``out_channels[i]`` channels
  at ``1/out_strides[i]`` of the input size. ``inputs`` is a ``(B, C, H, W)`` tensor for the
  backbone's first modality, or a mapping ``modality -> (B, C, H, W) | (B, T, C, H, W)`` with
  optional ``"dates"`` (a mapping ``modality -> (B, T)`` integer day-of-year, 1..366) and
  ``"latlon"`` ((B, 2) degrees latitude, longitude) entries;
* ``example_inputs(batch, size)`` returns a valid input for tests and benchmarks;
* ``forward_pooled(inputs)`` returns a ``(B, pooled_channels)`` vector for image-level heads;
* ``checkpoint=`` loads weights-only state dicts after initialisation (``init_weights``),
  mapping official key names through ``map_checkpoint_keys``; ``strict`` reports mismatches;
* ``encoder_checkpoints={part: path}`` loads one file per encoder (``--checkpoint PART=FILE``)
  through ``load_part``; the parts a backbone has are ``checkpoint_parts`` (plus
  ``checkpoint_part_aliases``), any other part is a :class:`CheckpointError` naming them;
* ``weight_accounting()`` says how many parameters (elements) were set from files and how many
  are still at initialisation, and where; a backbone builds only the modules on its forward path
  for the run (``in_modalities``), so every parameter counts. When weights were given and some
  stay at initialisation, ``init_weights`` warns (:class:`InitialisedWeightsWarning`);
* ``frozen=True`` stops gradients and keeps the backbone in eval mode (frozen/linear protocols);
* ``in_modalities`` names the modalities a run will feed (a subset of ``modalities``), so a
  multi-modal backbone knows by configuration, never by accident, that one is absent;
* ``prefers_channels_last()`` says whether channels-last memory speeds it up (convolutions);
* ``set_grad_checkpointing(enable)`` turns activation checkpointing of the blocks named by
  ``checkpoint_blocks()`` on or off (recompute in backward while training with grad; same
  outputs, gradients and state-dict keys) and returns how many blocks are checkpointed.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
import torch.utils.checkpoint
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _NormBase

from rsbench.errors import CheckpointError, RsbenchError
from rsbench.io.checkpoint import KeyReport, load_into, loaded_from, read_state_dict

#: How many module prefixes ``weight_accounting`` names.
MAX_MODULES = 8


class InitialisedWeightsWarning(UserWarning):
    """Weights were given, yet backbone parameters on the forward path are still at initialisation."""


class RSBackbone(BaseModule):
    modalities: Mapping[str, tuple[str, ...]] = {}
    out_channels: tuple[int, ...] = ()
    out_strides: tuple[int, ...] = ()
    pooled_channels: int = 0
    #: Whether ``set_grad_checkpointing`` turned activation checkpointing on.
    grad_checkpointing: bool = False
    #: Parts ``encoder_checkpoints`` may name (one file per encoder), and other names for them.
    checkpoint_parts: tuple[str, ...] = ()
    checkpoint_part_aliases: Mapping[str, str] = {}

    def __init__(
        self,
        checkpoint: str | None = None,
        strict: bool = True,
        frozen: bool = False,
        in_modalities: Sequence[str] | None = None,
        encoder_checkpoints: Mapping[str, str] | None = None,
        init_cfg: Any = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.checkpoint = checkpoint
        self.strict = strict
        self.frozen = frozen
        self.in_modalities = tuple(in_modalities) if in_modalities else None
        #: ``part -> path`` as given; :meth:`part_checkpoints` checks the names.
        self.encoder_checkpoint_paths = {str(k): str(v) for k, v in (encoder_checkpoints or {}).items() if v}
        self.key_report: KeyReport | None = None
        #: Every file loaded into this backbone, in order (``weight_accounting()['sources']``).
        self.weight_sources: list[str] = []

    # -- inputs -----------------------------------------------------------------
    def primary(self, inputs: Tensor | Mapping[str, Any]) -> Tensor:
        """The tensor of the first declared modality (single-modal backbones use only this)."""
        if isinstance(inputs, Tensor):
            return inputs
        for modality in self.in_modalities or self.modalities:
            if modality in inputs:
                return inputs[modality]
        raise ValueError(
            f"{type(self).__name__} takes modalities {list(self.modalities)}; got {sorted(inputs)}"
        )

    def check_bands(self, modality: str, x: Tensor) -> None:
        expected = len(self.modalities[modality])
        if x.shape[-3] != expected:
            bands = ", ".join(self.modalities[modality])
            raise ValueError(
                f"{type(self).__name__}: modality {modality!r} expects {expected} bands ({bands}) "
                f"as (B, {expected}, H, W); got shape {tuple(x.shape)}"
            )

    def example_inputs(self, batch: int = 2, size: int = 64) -> Tensor | dict[str, Any]:
        """A valid random input: the first modality at ``size`` x ``size``."""
        bands = len(next(iter(self.modalities.values())))
        return torch.randn(batch, bands, size, size)

    # -- outputs ----------------------------------------------------------------
    def forward_pooled(self, inputs: Tensor | Mapping[str, Any]) -> Tensor:
        return self(inputs)[-1].mean(dim=(2, 3))

    # -- weights ----------------------------------------------------------------
    def map_checkpoint_keys(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """Rename official checkpoint keys to this module's names (identity by default)."""
        return state

    def load_checkpoint(self, path: str, strict: bool | None = None) -> KeyReport:
        state = self.map_checkpoint_keys(read_state_dict(path))
        self.key_report = load_into(self, state, strict=self.strict if strict is None else strict,
                                    source=f"checkpoint {path}", path=str(path))
        self.weight_sources.append(str(path))
        return self.key_report

    def part_checkpoints(self) -> dict[str, str]:
        """``encoder_checkpoints`` with aliases resolved; a part this backbone does not have is
        a :class:`CheckpointError` naming the parts it has."""
        parts = tuple(self.checkpoint_parts)
        aliases = dict(self.checkpoint_part_aliases)
        out: dict[str, str] = {}
        for given, path in self.encoder_checkpoint_paths.items():
            part = aliases.get(given, given)
            if part not in parts:
                if parts:
                    names = ", ".join(list(parts) + [f"{a} (= {p})" for a, p in aliases.items()])
                    has = f"it has the parts {names}"
                else:
                    has = "it has no per-encoder parts; give its whole state dict as --checkpoint FILE"
                raise CheckpointError(
                    f"--checkpoint {given}={path}: {type(self).__name__} has no part {given!r}; {has}"
                )
            if part in out:
                raise CheckpointError(f"--checkpoint {given}={path}: part {part!r} is given twice")
            out[part] = path
        return out

    def load_part(self, part: str, path: str) -> KeyReport:
        """Load one encoder's file (``--checkpoint PART=FILE``); backbones with
        ``checkpoint_parts`` override this."""
        raise CheckpointError(f"{type(self).__name__} declares part {part!r} but does not load parts")

    def init_weights(self) -> None:
        parts = self.part_checkpoints()  # names checked before anything is loaded
        super().init_weights()
        if self.checkpoint:
            self.load_checkpoint(self.checkpoint)
        for part, path in parts.items():
            self.load_part(part, path)
        self._apply_freeze()
        self.warn_if_initialised()

    # -- weights accounting ---------------------------------------------------------
    def _module_prefix(self, name: str) -> str:
        """The top-level module holding parameter ``name`` (two levels for a ModuleDict, e.g.
        ``encoders.hr``)."""
        parts = name.split(".")
        child = getattr(self, parts[0], None)
        if isinstance(child, nn.ModuleDict) and len(parts) > 2:
            return ".".join(parts[:2])
        return parts[0] if len(parts) > 1 else name

    def weight_accounting(self) -> dict[str, Any]:
        """Parameters (elements) set from checkpoint files (``loaded``) and still at
        initialisation (``initialised``), the top-level modules holding the latter (at most
        eight) and the files loaded (``sources``). Every built module counts: a backbone builds
        only the modules on its forward path for the run."""
        loaded = initialised = 0
        modules: list[str] = []
        sources = list(dict.fromkeys(self.weight_sources))
        for name, param in self.named_parameters():
            source = loaded_from(param)
            if source is None:
                initialised += param.numel()
                prefix = self._module_prefix(name)
                if prefix not in modules:
                    modules.append(prefix)
            else:
                loaded += param.numel()
                if source not in sources:
                    sources.append(source)
        return dict(loaded=loaded, initialised=initialised, initialised_modules=modules[:MAX_MODULES],
                    sources=sources)

    def warn_if_initialised(self) -> dict[str, Any]:
        """Warn (:class:`InitialisedWeightsWarning`, once: the runner only records it in the row)
        when weights were given but backbone parameters on the forward path are still at
        initialisation; returns the accounting."""
        acc = self.weight_accounting()
        given = bool(self.checkpoint or self.encoder_checkpoint_paths or acc["sources"])
        if given and acc["initialised"]:
            total = acc["loaded"] + acc["initialised"]
            message = (
                f"{type(self).__name__}: {acc['initialised']:,} of {total:,} backbone parameters on the "
                f"forward path are still at initialisation (random) although weights were given "
                f"({', '.join(acc['sources']) or 'none loaded'}); modules: "
                f"{', '.join(acc['initialised_modules'])}"
            )
            warnings.warn(message, InitialisedWeightsWarning, stacklevel=3)
        return acc

    def _apply_freeze(self) -> None:
        if self.frozen:
            for p in self.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> RSBackbone:
        self._apply_freeze()
        super().train(mode and not self.frozen)
        return self

    # -- memory -----------------------------------------------------------------
    def prefers_channels_last(self) -> bool:
        """Whether channels-last memory helps: convolutions hold most of the weights (ResNets;
        measured 1.2-1.3x faster on CPU for ResNet-50, see README). Transformers gain nothing."""
        total = sum(p.numel() for p in self.parameters())
        conv = sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Conv2d))
        return total > 0 and conv / total >= 0.5

    def checkpoint_blocks(self) -> Iterable[nn.Module]:
        """The repeated blocks whose activations are recomputed in backward instead of kept
        (transformer layers, Swin blocks, ResNet bottlenecks); none by default."""
        return ()

    def set_grad_checkpointing(self, enable: bool = True) -> int:
        """Turn activation checkpointing of :meth:`checkpoint_blocks` on or off; returns how many
        blocks it covers.

        Each block gets an instance ``forward`` that runs its class forward through
        ``torch.utils.checkpoint`` (non-reentrant) while the block trains with grad enabled, and
        directly otherwise (eval, ``no_grad``, ``inference_mode``), so module names and
        state-dict keys stay as they are. Memory for the paper-size models drops to about one
        block's activations plus the block inputs, for one more forward per block.
        """
        blocks = list(self.checkpoint_blocks())
        if not blocks:
            raise RsbenchError(
                f"{type(self).__name__} names no blocks for activation checkpointing: override "
                "checkpoint_blocks() to yield its repeated blocks (transformer layers, Swin blocks, ...)"
            )
        for block in blocks:
            own = block.__dict__.get("forward")
            ours = isinstance(own, functools.partial) and own.func is _checkpointed_forward
            if own is not None and not ours:
                raise RsbenchError(f"{type(self).__name__}: block {type(block).__name__} already has an "
                                   "instance forward; cannot checkpoint it")
            if enable:
                # A partial (not a closure) so deepcopy (EMA copies) rebinds it to the copied block.
                block.forward = functools.partial(_checkpointed_forward, block)
            elif ours:
                del block.__dict__["forward"]
        self.grad_checkpointing = enable
        return len(blocks)


def find_backbone(model: nn.Module) -> RSBackbone:
    """The rsbench backbone inside a task model (wrapped, cached or siamese alike)."""
    from mmengine.model import is_model_wrapper

    module = model.module if is_model_wrapper(model) else model
    for sub in module.modules():
        if isinstance(sub, RSBackbone):
            return sub
    raise RsbenchError(f"model {type(module).__name__} holds no rsbench backbone")


def _checkpointed_forward(block: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """``block``'s class forward, checkpointed while it trains with grad enabled."""
    forward = type(block).forward
    if not (block.training and torch.is_grad_enabled()):
        return forward(block, *args, **kwargs)
    return torch.utils.checkpoint.checkpoint(forward, block, *args, use_reentrant=False,
                                             context_fn=functools.partial(_contexts, block), **kwargs)


def _contexts(block: nn.Module) -> tuple[Any, Any]:
    return nullcontext(), _running_stats_kept(block)


@contextmanager
def _running_stats_kept(block: nn.Module) -> Iterator[None]:
    """The recomputation in backward must not count the batch twice: BatchNorm running
    statistics it updates are put back (checkpointing leaves the state dict as without it)."""
    norms = [m for m in block.modules() if isinstance(m, _NormBase) and m.track_running_stats]
    saved = [[(b, b.clone()) for b in m.buffers(recurse=False)] for m in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffers in saved:
                for buffer, value in buffers:
                    buffer.copy_(value)


@contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Build modules whose constructors compute on tensors (``.item()`` fails on the meta
    device): parameters are created uninitialised (pages never touched) and moved to meta
    as soon as they are registered."""
    register = nn.Module.register_parameter
    inits = {name: getattr(nn.init, name) for name in _INIT_FUNCTIONS}

    def register_on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        register(module, name, param)
        if param is not None and param.device.type != "meta":
            module._parameters[name] = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)

    nn.Module.register_parameter = register_on_meta  # type: ignore[method-assign]
    for name in inits:
        setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
    try:
        yield
    finally:
        nn.Module.register_parameter = register  # type: ignore[method-assign]
        for name, fn in inits.items():
            setattr(nn.init, name, fn)


_INIT_FUNCTIONS = ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_",
                   "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_")


def build_on_meta(config: Mapping[str, Any]) -> nn.Module:
    """Build a backbone without allocating its parameters (meta device, or meta parameters for
    constructors that compute on tensors), to count or inspect paper-size models."""
    from mmengine.registry import MODELS

    try:
        with torch.device("meta"):
            return MODELS.build(dict(config))
    except (RuntimeError, NotImplementedError):
        with _parameters_on_meta():
            return MODELS.build(dict(config))


def count_parameters(config: Mapping[str, Any]) -> int:
    """Count a backbone's parameters without allocating them (:func:`build_on_meta`)."""
    return sum(p.numel() for p in build_on_meta(config).parameters())
