"""Pretraining a backbone with its paper's objective: the model-agnostic loop behind ``rsbench pretrain``.

A backbone names its objective in ``BackboneInfo.pretrainer`` (``"pkg.mod:Class"``); the class is a
:class:`PretrainObjective`. The objective owns the backbone (the network whose weights the
benchmark evaluates) and everything else its loss needs (EMA teacher, heads, decoders), reads
its own data layout, and returns its loss. This module names no model. It runs:

* AdamW (no weight decay on biases, norms and other 1-D parameters), a cosine learning rate
  with linear warm-up, gradient-norm clipping;
* batches drawn from a per-epoch permutation seeded by ``(seed, epoch)``, so the batch of step
  ``s`` does not depend on whether the run was interrupted; the torch RNG (augmentations,
  masks) is saved and restored with the state, so a resumed run repeats the uninterrupted one
  (with ``num_workers=0``: worker processes seed their own RNGs);
* an atomic (write, then rename) training state ``<work>/state.pth`` every ``save_every`` steps:
  the objective's and optimizer's state dicts, the step, the RNG states and the settings, all
  loadable with ``torch.load(weights_only=True)``;
* a JSON log ``<work>/log.json`` of every step's losses, learning rate and gradient norm;
* at the end of the schedule, the backbone's state dict as ``{"state_dict": ..., "meta": ...}``
  at ``out``: the format ``checkpoint=`` / ``rsbench run --checkpoint`` loads (``rsbench.io.checkpoint``).

Generic pieces shared by objectives also live here: :func:`info_nce`, the cosine schedules and
the EMA update.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor, nn

from rsbench.errors import RsbenchError
from rsbench.io import atomic_write
from rsbench.plugin_api.catalog import BackboneInfo, load_object

STATE_NAME = "state.pth"
LOG_NAME = "log.json"


# -- generic loss pieces ------------------------------------------------------------------
def info_nce(query: Tensor, key: Tensor, temperature: float = 0.2, targets: Tensor | None = None) -> Tensor:
    """InfoNCE of ``query`` (n, d) against ``key`` (m, d): mean over rows of
    ``-log softmax(cos(q_i, k_j) / temperature)[target_i]``.

    Both sides are L2-normalised, so logits are cosine similarities over ``temperature``. The
    positive of row ``i`` is ``key[targets[i]]`` (default ``i``, i.e. matched rows); every other
    key is a negative. Asymmetric: ``info_nce(a, b)`` ranks keys for each query (rows), its
    transpose ``info_nce(b, a)`` ranks queries for each key.
    """
    logits = F.normalize(query, dim=-1) @ F.normalize(key, dim=-1).T / temperature
    if targets is None:
        if query.shape[0] != key.shape[0]:
            raise ValueError(f"info_nce: {query.shape[0]} queries and {key.shape[0]} keys need explicit targets")
        targets = torch.arange(query.shape[0], device=query.device)
    return F.cross_entropy(logits.float(), targets)


@MODELS.register_module(name="RSBInfoNCELoss")
class InfoNCELoss(nn.Module):
    """:func:`info_nce` as a module; ``symmetric`` averages both directions (CLIP's form).

    Args:
        temperature: divides the cosine similarities.
        symmetric: ``(info_nce(a, b) + info_nce(b, a)) / 2`` instead of ``info_nce(a, b)``.
    """

    def __init__(self, temperature: float = 0.2, symmetric: bool = False) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"InfoNCE temperature must be > 0; got {temperature}")
        self.temperature = temperature
        self.symmetric = symmetric

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        loss = info_nce(query, key, self.temperature)
        if self.symmetric:
            loss = (loss + info_nce(key, query, self.temperature)) / 2
        return loss


# -- schedules and EMA --------------------------------------------------------------------
def cosine_lr(step: int, total: int, base: float, warmup: int = 0, final: float = 0.0) -> float:
    """Learning rate of 0-based ``step``: linear warm-up to ``base`` over ``warmup`` steps,
    then a half cosine from ``base`` to ``final`` at ``total``."""
    if warmup and step < warmup:
        return base * (step + 1) / warmup
    progress = min(max((step - warmup) / max(total - warmup, 1), 0.0), 1.0)
    return final + (base - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def cosine_momentum(progress: float, base: float = 0.99, final: float = 0.999) -> float:
    """EMA momentum rising from ``base`` (progress 0) to ``final`` (progress 1) on a half cosine
    (BYOL/DINO's schedule): ``final - (final - base) * (cos(pi p) + 1) / 2``."""
    p = min(max(progress, 0.0), 1.0)
    return final - (final - base) * (math.cos(math.pi * p) + 1.0) / 2.0


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """``teacher <- momentum * teacher + (1 - momentum) * student`` for every parameter (trainable
    or not, e.g. a prototype bank) and floating buffer; other buffers are copied."""
    t_params, s_params = list(teacher.parameters()), list(student.parameters())
    t_bufs, s_bufs = list(teacher.buffers()), list(student.buffers())
    if len(t_params) != len(s_params) or len(t_bufs) != len(s_bufs):
        raise ValueError("ema_update: teacher and student have different structures")
    floats = [(t, s) for t, s in zip(t_bufs, s_bufs) if t.dtype.is_floating_point]
    targets = t_params + [t for t, _ in floats]
    sources = [p.detach() for p in s_params] + [s for _, s in floats]
    if targets:
        torch._foreach_lerp_(targets, sources, 1.0 - momentum)
    for t, s in zip(t_bufs, s_bufs):
        if not t.dtype.is_floating_point:
            t.copy_(s)


# -- the objective contract ------------------------------------------------------------------
class _QuietMMEngine:
    """Silence mmengine's INFO log (``init_weights`` prints one paragraph per parameter)."""

    def __enter__(self) -> None:
        from mmengine.logging import MMLogger

        self.logger = MMLogger.get_current_instance()
        self.level = self.logger.level
        self.logger.setLevel(logging.WARNING)

    def __exit__(self, *exc: Any) -> None:
        self.logger.setLevel(self.level)


class PretrainObjective(nn.Module, ABC):
    """Base class of a pretraining objective (what ``BackboneInfo.pretrainer`` points to).

    The constructor takes the backbone's mmengine config (``BackboneInfo.config()``) plus the
    objective's own keyword arguments, and builds ``self.backbone`` with its initialisation
    (``init_weights``), exactly as a downstream run builds it. Subclasses implement:

    * ``data_module``: the module of the objective's data layout, whose ``check(root)`` raises
      ``DataLayoutError`` naming the path and what was expected and whose
      ``write_fixture(root, seed)`` writes a small deterministic dataset in that layout (or
      override :meth:`check_data` / :meth:`write_fixture`);
    * :meth:`build_dataset`: a map-style dataset of sample dicts (tensors);
    * :meth:`forward`: ``batch, progress -> {"loss": total, <part>: ...}`` (``progress`` is the
      fraction of the schedule done, in [0, 1]);
    * :meth:`after_step` (optional): work after each optimizer step (an EMA teacher), returning
      scalars to log.

    :meth:`backbone_state_dict` is what the final checkpoint holds (the backbone, by default).
    """

    #: Defaults of the loop that suit this objective (the CLI's ``--lr`` etc. override them).
    defaults: Mapping[str, Any] = dict(lr=1e-3, weight_decay=0.05, batch_size=8, clip_grad=3.0, warmup=0)

    def __init__(self, backbone: Mapping[str, Any]) -> None:
        super().__init__()
        with _QuietMMEngine():
            self.backbone = MODELS.build(dict(backbone))
            self.backbone.init_weights()

    #: The data layout's module (``check``, ``write_fixture``).
    data_module: Any = None

    @classmethod
    def check_data(cls, root: Path) -> dict[str, Any]:
        return cls.data_module.check(root)

    @classmethod
    def write_fixture(cls, root: Path, seed: int = 0) -> Path:
        return cls.data_module.write_fixture(root, seed=seed)

    @abstractmethod
    def build_dataset(self, root: Path) -> Any:
        """A map-style dataset of sample dicts (tensors) under ``root``."""

    def collate(self, samples: Sequence[Any]) -> Any:
        return torch.utils.data.default_collate(list(samples))

    @abstractmethod
    def forward(self, batch: Any, progress: float) -> dict[str, Tensor]:  # type: ignore[override]
        """``{"loss": total, <part>: ...}`` of one batch at ``progress`` (fraction of the schedule)."""

    def after_step(self, progress: float) -> dict[str, float]:
        return {}

    def backbone_state_dict(self) -> dict[str, Tensor]:
        return {k: v.detach().cpu() for k, v in self.backbone.state_dict().items()}


def load_objective_class(info: BackboneInfo) -> type[PretrainObjective]:
    """The objective class a backbone declares; a clear error for one that declares none."""
    if not info.pretrainer:
        from rsbench.plugin_api.plugin_host import get_catalog

        able = [b.name for b in get_catalog().backbones if b.pretrainer]
        raise RsbenchError(f"backbone {info.name!r} declares no pretraining objective (BackboneInfo.pretrainer); "
                           f"backbones with one: {', '.join(able) or '(none)'}")
    info.register_type()  # registers the backbone type
    cls = load_object(info.pretrainer)
    if not (isinstance(cls, type) and issubclass(cls, PretrainObjective)):
        raise RsbenchError(f"backbone {info.name!r}: pretrainer {info.pretrainer!r} is not a PretrainObjective class")
    return cls


# -- the loop ---------------------------------------------------------------------------------
@dataclass
class PretrainSettings:
    """One pretraining run. ``None`` fields take the objective's :attr:`~PretrainObjective.defaults`.

    ``steps`` is the length of the schedule (cosine LR, EMA momentum); ``max_steps`` stops this
    invocation early at that step count, leaving a resumable state (a later call with the same
    settings continues). ``work_dir`` defaults to ``<out without suffix>.pretrain`` beside ``out``.
    """

    model: str
    data: str
    out: str
    steps: int = 100
    max_steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    clip_grad: float | None = None
    warmup: int | None = None
    seed: int = 0
    save_every: int | None = None
    device: str = "cpu"
    num_workers: int = 0
    work_dir: str | None = None
    objective_options: dict[str, Any] = field(default_factory=dict)

    def resolved(self, defaults: Mapping[str, Any]) -> PretrainSettings:
        out = PretrainSettings(**asdict(self))
        for name in ("batch_size", "lr", "weight_decay", "clip_grad", "warmup"):
            if getattr(out, name) is None:
                setattr(out, name, PretrainObjective.defaults[name] if name not in defaults else defaults[name])
        if out.save_every is None:
            out.save_every = max(1, out.steps // 4)
        if out.work_dir is None:
            o = Path(out.out)
            out.work_dir = str(o.parent / f"{o.stem}.pretrain")
        return out

    def validate(self) -> None:
        for name in ("steps", "batch_size", "save_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise RsbenchError(f"--{name.replace('_', '-')} {value}: expected a positive integer")
        if self.max_steps is not None and self.max_steps < 1:
            raise RsbenchError(f"--max-steps {self.max_steps}: expected a positive integer")
        if self.lr is not None and not self.lr > 0:
            raise RsbenchError(f"--lr {self.lr}: expected a positive number")
        if self.device not in ("cpu", "cuda"):
            raise RsbenchError(f"--device {self.device!r}: expected cpu or cuda")


@dataclass
class PretrainResult:
    """Where a run stopped; ``losses`` are all logged steps' total losses (earlier invocations' too)."""

    step: int
    total_steps: int
    finished: bool
    resumed_from: int
    checkpoint: str | None
    state: str
    log: str
    losses: list[float]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Settings a resumed run must share with the state it resumes (a different value would not
#: continue the same run).
_RESUME_KEYS = ("batch_size", "seed", "lr", "weight_decay", "clip_grad", "warmup", "objective_options")


def batch_indices(step: int, n: int, batch_size: int, seed: int) -> list[int]:
    """Dataset indices of 0-based ``step``: epochs are permutations seeded by ``(seed, epoch)``
    (last partial batch dropped), so any step's batch is known without replaying earlier ones."""
    per_epoch = n // batch_size
    epoch, i = divmod(step, per_epoch)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)[i * batch_size:(i + 1) * batch_size].tolist()


class _StepBatches(torch.utils.data.Sampler):
    def __init__(self, start: int, stop: int, n: int, batch_size: int, seed: int) -> None:
        self.start, self.stop, self.n, self.batch_size, self.seed = start, stop, n, batch_size, seed

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.stop):
            yield batch_indices(step, self.n, self.batch_size, self.seed)

    def __len__(self) -> int:
        return self.stop - self.start


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(v, device) for v in batch)
    return batch


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` that leaves ``path`` either as it was or complete (a pretraining run killed
    mid-save resumes from the previous state, not from a truncated one)."""
    with atomic_write.replacing(path) as tmp:
        torch.save(obj, tmp)


def param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay on weights of rank >= 2; none on biases, norms, tokens of rank <= 1."""
    decay, no_decay = [], []
    for p in module.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [dict(params=decay, weight_decay=weight_decay), dict(params=no_decay, weight_decay=0.0)]


def prepare_data(cls: type[PretrainObjective], data: Path, write_fixture: bool, seed: int = 0) -> dict[str, Any]:
    """``--fixture``: write the objective's fixture into ``data`` when it is missing or empty;
    then check the layout."""
    if write_fixture and (not data.exists() or (data.is_dir() and not any(data.iterdir()))):
        cls.write_fixture(data, seed=seed)
    if not data.is_dir():
        from rsbench.errors import DataLayoutError

        raise DataLayoutError(f"--data {data}: no such directory (pass --fixture to write a small one there)")
    return cls.check_data(data)


def read_state(state_path: Path, s: PretrainSettings, device: torch.device) -> dict[str, Any] | None:
    """The saved training state, if any, after checking it continues this run's settings."""
    if not state_path.exists():
        return None
    state = torch.load(state_path, map_location=device, weights_only=True)
    stored = state["settings"]
    diff = [f"{k} {stored.get(k)} (state) vs {getattr(s, k)}" for k in _RESUME_KEYS
            if stored.get(k) != getattr(s, k)]
    if diff:
        raise RsbenchError(f"{state_path}: cannot resume with different settings: {'; '.join(diff)}. "
                           "Use the same ones, another --out, or delete that folder to start again")
    if int(state["step"]) > s.steps:
        raise RsbenchError(f"{state_path}: already trained {int(state['step'])} steps, more than --steps {s.steps}")
    return state


def restore(objective: PretrainObjective, optimizer: torch.optim.Optimizer, state: Mapping[str, Any],
            source: Path) -> None:
    """Load a saved state into a freshly built objective and optimizer."""
    own, saved = set(objective.state_dict()), set(state["objective"])
    if own != saved:
        raise RsbenchError(f"{source}: holds another objective's state ({len(own - saved)} keys missing, "
                           f"{len(saved - own)} unexpected, e.g. {sorted(own ^ saved)[:3]})")
    # the key sets are equal; strict=False lets modules drop buffers they recompute on load
    objective.load_state_dict(state["objective"], strict=False)
    optimizer.load_state_dict(state["optimizer"])


def run_pretraining(settings: PretrainSettings, show_progress: bool = True,
                    write_fixture: bool = False) -> PretrainResult:
    """Pretrain ``settings.model`` with its declared objective (see the module docstring)."""
    from rsbench.engine.progress import make_progress
    from rsbench.plugin_api.plugin_host import get_catalog

    settings.validate()
    info = get_catalog().backbone(settings.model)
    cls = load_objective_class(info)
    s = settings.resolved(cls.defaults)
    s.validate()
    takes = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "backbone")]
    unknown = sorted(set(s.objective_options) - set(takes))
    if unknown:
        raise RsbenchError(f"--option {', '.join(unknown)}: {cls.__name__} takes {', '.join(takes) or 'no options'}")
    if s.device == "cuda" and not torch.cuda.is_available():
        raise RsbenchError("--device cuda: no CUDA device is available")
    device = torch.device(s.device)
    data, work, out = Path(s.data), Path(s.work_dir), Path(s.out)
    state_path, log_path = work / STATE_NAME, work / LOG_NAME
    state = read_state(state_path, s, device)
    prepare_data(cls, data, write_fixture, seed=s.seed)

    torch.manual_seed(s.seed)
    objective = cls(info.config(), **s.objective_options).to(device)
    dataset = objective.build_dataset(data)
    n = len(dataset)
    if n < s.batch_size:
        raise RsbenchError(f"--batch-size {s.batch_size}: the data under {data} holds only {n} samples")
    optimizer = torch.optim.AdamW(param_groups(objective, s.weight_decay), lr=s.lr, betas=(0.9, 0.999))

    work.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    resumed_at: list[int] = []
    start = 0
    rng_state: dict[str, Tensor] | None = None
    if state is not None:
        restore(objective, optimizer, state, state_path)
        start, rng_state = int(state["step"]), {k: v.cpu() for k, v in state["rng"].items()}
        if log_path.exists():
            old = json.loads(log_path.read_text())
            entries = [e for e in old.get("entries", []) if e["step"] <= start]
            resumed_at = list(old.get("resumed_at", []))
        resumed_at.append(start)
    stop = s.steps if s.max_steps is None else min(s.steps, s.max_steps)
    stop = max(stop, start)

    def save_state(step: int) -> None:
        rng = dict(cpu=torch.get_rng_state())
        if device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(device)
        save_atomic(dict(step=step, total_steps=s.steps, objective=objective.state_dict(),
                         optimizer=optimizer.state_dict(), rng=rng,
                         settings={k: getattr(s, k) for k in _RESUME_KEYS}), state_path)
        atomic_write.write_text(log_path, json.dumps(dict(model=s.model, pretrainer=info.pretrainer, data=str(data),
                                                          settings=asdict(s), resumed_at=resumed_at,
                                                          entries=entries), indent=1))

    loader = torch.utils.data.DataLoader(dataset, batch_sampler=_StepBatches(start, stop, n, s.batch_size, s.seed),
                                         collate_fn=objective.collate, num_workers=s.num_workers)
    batches = iter(loader)  # draws its worker base seed from the RNG: before the RNG is restored
    if rng_state is not None:
        torch.set_rng_state(rng_state["cpu"])
        if "cuda" in rng_state and device.type == "cuda":
            torch.cuda.set_rng_state(rng_state["cuda"], device)
    progress = make_progress() if show_progress else None
    if progress is not None:
        bar = progress.add_task(f"pretrain {s.model}", total=s.steps, completed=start, status="")
        progress.start()
    params = [p for p in objective.parameters() if p.requires_grad]
    try:
        objective.train()
        step = start
        for batch in batches:
            lr = cosine_lr(step, s.steps, s.lr, s.warmup)
            for group in optimizer.param_groups:
                group["lr"] = lr
            t0 = time.perf_counter()
            parts = objective(_to(batch, device), progress=step / s.steps)
            loss = parts["loss"]
            if not torch.isfinite(loss):
                raise FloatingPointError(f"pretraining loss is {loss.item()} at step {step + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, s.clip_grad))
            optimizer.step()
            extra = objective.after_step(progress=step / s.steps)
            step += 1
            entry = dict(step=step, lr=lr, grad_norm=grad_norm, time_s=round(time.perf_counter() - t0, 4))
            entry.update({k: float(v.detach()) for k, v in parts.items()})
            entry.update({k: float(v) for k, v in extra.items()})
            entries.append(entry)
            if progress is not None:
                progress.update(bar, completed=step, status=f"loss {entry['loss']:.4f}")
            if step % s.save_every == 0 or step == stop:
                save_state(step)
        if start == stop:
            save_state(stop)
    finally:
        if progress is not None:
            progress.stop()

    finished = stop >= s.steps
    if finished:
        meta = dict(pretrainer=info.pretrainer, backbone=s.model, steps=s.steps, seed=s.seed)
        out.parent.mkdir(parents=True, exist_ok=True)
        save_atomic(dict(state_dict=objective.backbone_state_dict(), meta=meta), out)
    return PretrainResult(step=stop, total_steps=s.steps, finished=finished, resumed_from=start,
                          checkpoint=str(out) if finished else None, state=str(state_path), log=str(log_path),
                          losses=[e["loss"] for e in entries])
