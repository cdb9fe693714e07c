"""Weights-only checkpoint reading and key-checked loading.

Nothing here unpickles arbitrary objects: ``torch.load(weights_only=True)`` or safetensors.
(mmengine's own training checkpoints are handled in :mod:`rsbench.resume`.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsbench.errors import CheckpointError

WRAPPER_KEYS = ("state_dict", "model", "module", "teacher", "student")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
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


@dataclass
class KeyReport:
    """How a state dict matched a module."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)

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
        return "; ".join(parts) or "all keys matched"


def load_into(module: Any, state: Mapping[str, Any], strict: bool = True, source: str = "checkpoint") -> KeyReport:
    """Load ``state`` into ``module``; with ``strict`` any mismatch is a :class:`CheckpointError`."""
    own = module.state_dict()
    report = KeyReport(
        missing=sorted(k for k in own if k not in state),
        unexpected=sorted(k for k in state if k not in own),
        shape_mismatch=sorted(
            f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
            for k in own
            if k in state and tuple(state[k].shape) != tuple(own[k].shape)
        ),
    )
    if strict and not report.clean:
        raise CheckpointError(
            f"{source} does not match {type(module).__name__}: {report.summary()} "
            "(pass strict=False / --no-strict-load to load the matching part)"
        )
    bad = {s.split(" ", 1)[0] for s in report.shape_mismatch}
    module.load_state_dict({k: v for k, v in state.items() if k in own and k not in bad}, strict=False)
    return report
