"""Scene-classification datasets stored as one folder of images per class.

Shared by AID-style layouts: reading checks the class folders and image headers, and the fixture
writer produces a tiny copy in the same layout whose classes are separable by colour and
stripe pattern (a learnable signal, so a short training run must beat chance by far).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rsbench.errors import DataLayoutError
from rsbench.io.fixtures import mark_fixture
from rsbench.io.raster import raster_info

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def find_root(root: Path, folder: str, classes: Sequence[str]) -> Path:
    """Accept either the dataset folder itself or a parent holding ``folder``."""
    if (root / classes[0]).is_dir() or not (root / folder).is_dir():
        return root
    return root / folder


def scan(root: Path, folder: str, classes: Sequence[str], title: str) -> dict[str, Any]:
    """List ``(relative path, label)`` samples; raise :class:`DataLayoutError` naming what is wrong."""
    root = find_root(Path(root), folder, classes)
    present = {p.name for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()
    missing = [c for c in classes if c not in present]
    if missing:
        shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
        raise DataLayoutError(
            f"{root}: not the {title} layout — missing class folder(s) {shown}; "
            f"expected {len(classes)} folders <Class>/<image> named {', '.join(classes[:3])}, ..."
        )
    samples: list[tuple[str, int]] = []
    size: tuple[int, int] | None = None
    for label, cls in enumerate(classes):
        files = sorted(p for p in (root / cls).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataLayoutError(f"{root / cls}: class folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        for path in files:
            info = raster_info(path)  # every header is read: an unreadable image fails here, not mid-training
            size = size or (info.width, info.height)
            samples.append((f"{cls}/{path.name}", label))
    assert size is not None
    return {"root": str(root), "classes": list(classes), "samples": samples, "image_size": size}


def split_per_class(samples: Sequence[tuple[str, int]], train_ratio: float, seed: int) -> tuple[list, list]:
    """Random per-class split with a fixed seed (the papers' training-ratio protocol)."""
    if not 0 < train_ratio < 1:
        raise DataLayoutError(f"train_ratio {train_ratio}: expected a fraction in (0, 1)")
    rng = random.Random(seed)
    by_class: dict[int, list[tuple[str, int]]] = {}
    for sample in samples:
        by_class.setdefault(sample[1], []).append(sample)
    train, test = [], []
    for label in sorted(by_class):
        items = sorted(by_class[label])
        rng.shuffle(items)
        k = max(1, min(len(items) - 1, round(len(items) * train_ratio)))
        train += items[:k]
        test += items[k:]
    return train, test


def class_pattern(label: int, n_classes: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """An RGB image whose mean colour and stripe direction/frequency encode ``label``."""
    hue = label / n_classes
    base = np.array([0.5 + 0.4 * np.cos(2 * np.pi * (hue + k / 3)) for k in range(3)])
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle = np.pi * (label % 6) / 6
    freq = 2 + (label // 6) % 5
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)) + rng.uniform(0, 2 * np.pi))
    img = base[None, None, :] * (0.75 + 0.25 * stripes[..., None])
    img += rng.normal(0, 0.05, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def write_fixture(out: Path, folder: str, classes: Sequence[str], filename: Callable[[str, int], str],
                  per_class: int, size: int, seed: int, dataset: str) -> Path:
    """Write ``per_class`` JPEGs per class under ``out/folder/<Class>/``; deterministic."""
    root = Path(out) / folder
    rng = np.random.default_rng(seed)
    for label, cls in enumerate(classes):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for n in range(1, per_class + 1):
            img = class_pattern(label, len(classes), size, rng)
            Image.fromarray(img).save(root / cls / filename(cls, n), quality=95)
    mark_fixture(Path(out), dataset, seed)
    return Path(out)
