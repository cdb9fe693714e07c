"""Frozen-feature cache: a frozen backbone's outputs computed once and read from disk after.

Frozen and linear protocols train only a head, so every epoch recomputes the same backbone
features; with a billion-parameter backbone that recomputation is the whole cost. The cache sits
between the task's model and its backbone (``RSBFeatureCache`` wraps the backbone config), so it
works for every task and model without knowing either.

Entries are **content-addressed**: a sample's key is a hash of the exact tensors the backbone
receives (every modality, dates and location), inside a folder keyed by the backbone's config
and its checkpoint's bytes. A change of dataset, split, transform, normalization, backbone or
checkpoint therefore changes the key by construction; nothing can be served stale. Each entry
is one ``.npy`` per output, written atomically and read memory-mapped (``float16`` storage
halves the disk at a rounding cost; ``float32`` keeps metrics identical to an uncached run).

Augmentations that change pixels from epoch to epoch would make every lookup a miss, so
:func:`plan` turns the cache off for such a training pipeline and says which transforms did it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rsbench.io import atomic_write

#: Transform names that change pixels at random (mmcv/mmseg/mmdet/mmpretrain spellings).
_RANDOM_PIXELS = re.compile(r"Random|Jitter|Distortion|Augment|Mosaic|MixUp|CutMix|Erasing|Albu", re.I)
CACHE_ENV = "RSBENCH_FEATURE_CACHE"
DTYPES = ("float32", "float16")


def default_cache_root() -> Path:
    base = os.environ.get(CACHE_ENV)
    return Path(base) if base else Path.home() / ".cache" / "rsbench" / "features"


def _pipelines(node: Any) -> Iterator[list[Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "pipeline" and isinstance(value, list):
                yield value
            else:
                yield from _pipelines(value)
    elif isinstance(node, list):
        for value in node:
            yield from _pipelines(value)


def pixel_augmentations(cfg: Mapping[str, Any]) -> list[str]:
    """Names of the random pixel-changing transforms in ``cfg``'s training pipeline(s)."""
    names: list[str] = []
    for pipeline in _pipelines(cfg.get("train_dataloader", {})):
        for t in pipeline:
            name = str(t.get("type", "")) if isinstance(t, Mapping) else type(t).__name__
            # by name (RandomFlip, ColorJitter, ...) or by a random-flip switch on a custom loader
            switched = isinstance(t, Mapping) and (t.get("flip") is True or float(t.get("prob") or 0) > 0)
            if (_RANDOM_PIXELS.search(name) or switched) and name not in names:
                names.append(name)
    return names


def plan(cfg: dict[str, Any], protocol: str, enabled: bool, root: Path | None = None,
         dtype: str = "float32") -> tuple[dict[str, Any], str]:
    """``cfg`` with its backbone behind the cache where that is exact, and a note for the row.

    The cache applies to ``frozen``/``linear`` runs whose model has a frozen ``backbone`` and
    whose training pipeline has no random pixel transforms."""
    if dtype not in DTYPES:
        raise ValueError(f"feature cache dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    if protocol not in ("frozen", "linear"):
        return cfg, ""
    if not enabled:
        return cfg, "off (--no-feature-cache)"
    model = cfg.get("model", {})
    backbone = model.get("backbone") if isinstance(model, Mapping) else None
    if not isinstance(backbone, Mapping) or not backbone.get("frozen"):
        return cfg, "off: the model has no frozen backbone to cache"
    augs = pixel_augmentations(cfg)
    if augs:
        return cfg, f"off: training augmentations change pixels ({', '.join(augs)})"
    root = Path(root) if root else default_cache_root()
    key = cache_key(backbone, dtype)
    wrapped = dict(type="RSBFeatureCache", backbone=dict(backbone), cache_dir=str(root / key), dtype=dtype)
    return dict(cfg, model=dict(model, backbone=wrapped)), f"on ({dtype}, {root / key})"


def cache_key(backbone: Mapping[str, Any], dtype: str) -> str:
    """The backbone's identity: its config (minus what does not change features) and the bytes
    of its checkpoint."""
    ident = {k: v for k, v in backbone.items() if k not in ("frozen", "strict")}
    from rsbench.io.checkpoint import sha256_file

    ckpt = backbone.get("checkpoint")
    if ckpt:
        ident["checkpoint_sha256"] = sha256_file(ckpt)
    parts = backbone.get("encoder_checkpoints") or {}
    if parts:
        ident["encoder_checkpoints"] = {part: sha256_file(path) for part, path in sorted(parts.items())}
    ident["dtype"] = dtype
    ident["format"] = 1
    text = json.dumps(ident, sort_keys=True, default=str)
    return f"{backbone.get('type', 'backbone')}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _register() -> None:
    import numpy as np
    import torch
    from mmengine.model import BaseModule
    from mmengine.registry import MODELS
    from torch import Tensor

    @MODELS.register_module(name="RSBFeatureCache", force=True)
    class FeatureCache(BaseModule):
        """A frozen backbone whose ``forward`` and ``forward_pooled`` outputs are cached per sample.

        A batch whose every sample is cached is answered from disk without running the backbone;
        otherwise the backbone runs on the batch and each sample's outputs are stored. Every other
        attribute (out_channels, modalities, ...) is the wrapped backbone's."""

        def __init__(self, backbone: dict[str, Any], cache_dir: str, dtype: str = "float32") -> None:
            super().__init__()
            self.backbone = MODELS.build(backbone)
            self.cache_dir = Path(cache_dir)
            self.dtype = dtype
            self.hits = 0
            self.misses = 0

        def __getattr__(self, name: str) -> Any:
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(super().__getattr__("backbone"), name)

        def forward(self, inputs: Any) -> Any:
            return self._cached("maps", inputs, self.backbone)

        def forward_pooled(self, inputs: Any) -> Tensor:
            return self._cached("pooled", inputs, self.backbone.forward_pooled)

        # -- internals --------------------------------------------------------------
        def _cached(self, kind: str, inputs: Any, compute: Any) -> Any:
            keys = self._sample_keys(inputs)
            folder = self.cache_dir / kind
            paths = [folder / k[:2] / k for k in keys]
            if all((p / "done").exists() for p in paths):
                self.hits += len(keys)
                return self._load(paths, inputs)
            self.misses += len(keys)
            with torch.no_grad():
                out = compute(inputs)
            for i, path in enumerate(paths):
                if not (path / "done").exists():
                    self._store(path, out, i)
            return out

        def _sample_keys(self, inputs: Any) -> list[str]:
            leaves = list(_leaves(inputs))
            batch = next(t.shape[0] for _, t in leaves)
            keys = []
            for i in range(batch):
                h = hashlib.blake2b(digest_size=20)
                for name, t in leaves:
                    row = t[i].detach().contiguous().cpu()
                    h.update(f"{name}:{row.dtype}:{tuple(row.shape)};".encode())
                    h.update(row.numpy().tobytes())
                keys.append(h.hexdigest())
            return keys

        def _store(self, path: Path, out: Any, i: int) -> None:
            path.mkdir(parents=True, exist_ok=True)
            tensors = [out] if isinstance(out, Tensor) else list(out)
            for level, t in enumerate(tensors):
                arr = t[i].detach().cpu().numpy().astype(self.dtype)
                with atomic_write.open_atomic(path / f"{level}.npy", "wb") as fh:
                    np.save(fh, arr)
            # the marker last: a sample counts as cached only once every level is complete
            atomic_write.write_text(path / "done", json.dumps({"outputs": len(tensors),
                                                                "tuple": not isinstance(out, Tensor)}))

        def _load(self, paths: list[Path], inputs: Any) -> Any:
            meta = json.loads((paths[0] / "done").read_text())
            device = next(t.device for _, t in _leaves(inputs))
            outs = []
            for level in range(int(meta["outputs"])):
                arrays = [np.load(p / f"{level}.npy", mmap_mode="r") for p in paths]
                stacked = torch.from_numpy(np.stack(arrays).astype(np.float32, copy=False))
                outs.append(stacked.to(device))
            return tuple(outs) if meta["tuple"] else outs[0]

    globals()["FeatureCache"] = FeatureCache


def _leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(path, tensor) for every tensor in a nested input, in a fixed order."""
    import torch

    if isinstance(node, torch.Tensor):
        yield prefix, node
    elif isinstance(node, Mapping):
        for key in sorted(node):
            yield from _leaves(node[key], f"{prefix}/{key}")
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _leaves(value, f"{prefix}/{i}")


def register() -> None:
    """Register ``RSBFeatureCache`` into mmengine's root ``MODELS`` (idempotent)."""
    if "FeatureCache" not in globals():
        _register()
