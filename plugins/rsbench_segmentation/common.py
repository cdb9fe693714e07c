"""Helpers shared by the segmentation datasets: reading images with clear errors, turning colour
labels into class ids through a palette, patch windows, and the fixture painter.

Every dataset module exposes the same small surface, which ``seg_task`` relies on:
``CLASSES``, ``PALETTE``, ``IGNORE_INDEX``, ``NORMALIZATION`` ({modality: (mean, std)} per band),
``check(root) -> summary`` (``summary["splits"][split]`` is a list of sample dicts) and
``load(sample, modalities) -> ({modality: HxWxC array}, HxW uint8 label)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from rsbench.errors import DataLayoutError

#: Class id for pixels excluded from loss and metric (mmseg's convention).
IGNORE = 255


def read_image(path: str | Path, bands: int | None = None) -> np.ndarray:
    """Read an image as H x W x C; raise :class:`DataLayoutError` naming the file when it is
    unreadable or has another band count than ``bands``."""
    try:
        with Image.open(path) as img:
            arr = np.asarray(img)
    except (UnidentifiedImageError, OSError) as exc:
        raise DataLayoutError(f"{path}: unreadable image ({exc})") from exc
    if arr.ndim == 2:
        arr = arr[..., None]
    if bands is not None and arr.shape[2] != bands:
        raise DataLayoutError(f"{path}: expected {bands} band(s), found {arr.shape[2]} (shape {arr.shape})")
    return arr


@lru_cache(maxsize=4)
def read_tile(path: str, bands: int | None = None) -> np.ndarray:
    """``read_image`` with a small cache: patch datasets (iSAID, Potsdam) cut many windows from
    one large image, and a loader reading a tile for each window would decode it many times."""
    arr = read_image(path, bands)
    arr.setflags(write=False)
    return arr


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the header only."""
    try:
        with Image.open(path) as img:
            return img.size
    except (UnidentifiedImageError, OSError) as exc:
        raise DataLayoutError(f"{path}: unreadable image ({exc})") from exc


def colours_to_ids(rgb: np.ndarray, palette: Sequence[Sequence[int]], path: str | Path,
                   extra: dict[tuple[int, int, int], int] | None = None) -> np.ndarray:
    """Map an H x W x 3 colour label to class ids (palette index; ``extra`` colours to given ids).

    A colour outside the palette is a layout error (wrong file, or a JPEG-compressed label)."""
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise DataLayoutError(f"{path}: expected an RGB colour label, found shape {rgb.shape}")
    code = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    table = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in enumerate(palette)}
    table.update({(r << 16) | (g << 8) | b: i for (r, g, b), i in (extra or {}).items()})
    keys = np.array(sorted(table), dtype=np.int32)
    values = np.array([table[k] for k in keys], dtype=np.uint8)
    pos = np.clip(np.searchsorted(keys, code), 0, len(keys) - 1)
    bad = keys[pos] != code
    if bad.any():
        y, x = map(int, np.argwhere(bad)[0])
        raise DataLayoutError(f"{path}: colour {tuple(int(c) for c in rgb[y, x, :3])} at (x={x}, y={y}) "
                              f"is not in the palette ({bad.sum()} pixel(s))")
    return values[pos]


def windows(height: int, width: int, patch: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Patch windows (y0, y1, x0, x1) as mmseg's iSAID/Potsdam converters cut them: step
    ``patch - overlap``, the last window flush with the border, images smaller than a patch
    covered by one window that reaches past the border (the loader pads it)."""
    if not 0 <= overlap < patch:
        raise DataLayoutError(f"patch overlap {overlap}: expected 0 <= overlap < patch size {patch}")
    step = patch - overlap

    def starts(n: int) -> list[int]:
        if n <= patch:
            return [0]
        s = list(range(0, n - patch, step))
        return s + [n - patch]

    return [(y, y + patch, x, x + patch) for y in starts(height) for x in starts(width)]


def crop_pad(arr: np.ndarray, window: Sequence[int] | None, fill: float) -> np.ndarray:
    """Cut ``window`` from ``arr`` (H x W[ x C]), padding with ``fill`` where it leaves the image."""
    if window is None:
        return arr
    y0, y1, x0, x1 = window
    out = np.full((y1 - y0, x1 - x0, *arr.shape[2:]), fill, dtype=arr.dtype)
    part = arr[y0:y1, x0:x1]
    out[: part.shape[0], : part.shape[1]] = part
    return out


def paint_scene(rng: np.random.Generator, size: tuple[int, int], n_classes: int, background: int | None,
                shapes: int = 6) -> np.ndarray:
    """A class map of rectangles (and a background class, or a random base class) for fixtures."""
    h, w = size
    base = background if background is not None else int(rng.integers(n_classes))
    label = np.full((h, w), base, dtype=np.uint8)
    for _ in range(shapes):
        cls = int(rng.integers(n_classes))
        bh, bw = int(rng.integers(h // 6, h // 2)), int(rng.integers(w // 6, w // 2))
        y, x = int(rng.integers(0, h - bh)), int(rng.integers(0, w - bw))
        label[y:y + bh, x:x + bw] = cls
    return label


def class_colours(n_classes: int, bands: int, seed: int = 1234) -> np.ndarray:
    """Per-class mean values (n_classes x bands, 20..235) that make a fixture learnable: the
    candidate set that keeps classes farthest apart among a few seeded draws."""
    rng = np.random.default_rng(seed)
    best, best_gap = None, -1.0
    for _ in range(64):
        cols = rng.uniform(20, 235, (n_classes, bands))
        gap = min(np.abs(cols[i] - cols[j]).max() for i in range(n_classes) for j in range(i))
        if gap > best_gap:
            best, best_gap = cols, gap
    assert best is not None
    return best.astype(np.float32)


def render(label: np.ndarray, colours: np.ndarray, rng: np.random.Generator, noise: float = 12.0,
           ignore_fill: float = 0.0) -> np.ndarray:
    """The image of a class map: each class its colour plus Gaussian noise (uint8 H x W x C)."""
    safe = np.where(label == IGNORE, 0, label)
    img = colours[safe] + rng.normal(0, noise, (*label.shape, colours.shape[1]))
    img[label == IGNORE] = ignore_fill
    return np.clip(img, 0, 255).astype(np.uint8)


def sample(name: str, label: Path | None, modalities: dict[str, Path], **extra: Any) -> dict[str, Any]:
    """A sample record (plain data, written to the run's split file)."""
    return dict(name=name, label=str(label) if label else None,
                modalities={m: str(p) for m, p in modalities.items()}, **extra)
