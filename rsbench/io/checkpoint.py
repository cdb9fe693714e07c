"""Weights-only checkpoint reading and key-checked loading.

Nothing here unpickles arbitrary objects: ``torch.load(weights_only=True)`` or safetensors.
(mmengine's own training checkpoints are handled in :mod:`rsbench.run.resume`.)
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsbench.errors import CheckpointError

WRAPPER_KEYS = ("state_dict", "model", "module", "teacher", "student")


def sha256_file(path: str | Path) -> str:
    """The file's sha256, computed once per process for the same file version: a run's identity
    and the feature cache's key both hash the checkpoints, which reach gigabytes at paper size."""
    stat = os.stat(path)
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: str | Path, prefixes: Iterable[str] = ("backbone.", "module.")) -> dict[str, Any]:
    """Read a tensor state dict from ``.pth``/``.pt``/``.ckpt`` or ``.safetensors``.

    Unwraps ``state_dict``/``model``/... containers and strips the given key prefixes
    (each only where every key carries it, or where it marks the backbone's part).
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: Any = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint {path}: cannot be read as a weights-only state dict ({type(exc).__name__}: {exc})"
        ) from exc
    while isinstance(obj, Mapping):
        inner = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = obj[inner]
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"checkpoint {path}: expected a mapping of parameter names to tensors")
    state = dict(obj)
    for prefix in prefixes:
        marked = [k for k in state if k.startswith(prefix)]
        if marked:  # keep only the marked part (e.g. the backbone of a full detector)
            state = {k[len(prefix):]: state[k] for k in marked}
    return state


#: Attribute set on a parameter that :func:`load_into` filled from a file (its value names the
#: file), so a backbone can tell loaded from still-initialised weights however it was loaded.
LOADED_FROM = "_rsbench_loaded_from"


def loaded_from(param: Any) -> str | None:
    """The file a parameter was set from by :func:`load_into`, or ``None`` (still initialised)."""
    return getattr(param, LOADED_FROM, None)


@dataclass
class KeyReport:
    """How a state dict matched a module.

    ``loaded`` are the module's keys set from the file; ``not_used`` are keys of the file left
    out on purpose (parts of modules this run does not build, pretraining-only entries): they
    are reported, never an error.
    """

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    not_used: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.missing or self.unexpected or self.shape_mismatch)

    def summary(self, limit: int = 5) -> str:
        parts = []
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected),
                            ("shape mismatch", self.shape_mismatch)):
            if keys:
                more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
                parts.append(f"{len(keys)} {label}: {', '.join(keys[:limit])}{more}")
        text = "; ".join(parts) or "all keys matched"
        if self.not_used:
            more = f" (+{len(self.not_used) - limit} more)" if len(self.not_used) > limit else ""
            text += f"; {len(self.not_used)} not used: {', '.join(self.not_used[:limit])}{more}"
        return text


def load_into(module: Any, state: Mapping[str, Any], strict: bool = True, source: str = "checkpoint",
              *, path: str | None = None, not_used: Iterable[str] = (), fresh: Iterable[str] = ()) -> KeyReport:
    """Load ``state`` into ``module``; with ``strict`` any mismatch is a :class:`CheckpointError`.

    Every parameter set from ``state`` is marked with the file it came from (``path``, else
    ``source``; see :func:`loaded_from`); ``not_used`` (keys the caller left out on purpose)
    goes into the report as it is. Module keys under a ``fresh`` prefix (new modules that no
    file of this kind holds) are not missing when absent; they stay at initialisation.
    """
    own = module.state_dict()
    fresh = tuple(fresh)
    report = KeyReport(
        missing=sorted(k for k in own if k not in state and not (fresh and k.startswith(fresh))),
        unexpected=sorted(k for k in state if k not in own),
        shape_mismatch=sorted(
            f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
            for k in own
            if k in state and tuple(state[k].shape) != tuple(own[k].shape)
        ),
        not_used=sorted(not_used),
    )
    if strict and not report.clean:
        raise CheckpointError(
            f"{source} does not match {type(module).__name__}: {report.summary()} "
            "(pass strict=False / --no-strict-load to load the matching part)"
        )
    bad = {s.split(" ", 1)[0] for s in report.shape_mismatch}
    fitting = {k: v for k, v in state.items() if k in own and k not in bad}
    module.load_state_dict(fitting, strict=False)
    report.loaded = sorted(fitting)
    params = dict(module.named_parameters(remove_duplicate=False))
    for key in fitting:
        if key in params:
            setattr(params[key], LOADED_FROM, str(path or source))
    return report
