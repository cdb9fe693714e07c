"""Synthetic bi-temporal scenes for fixtures: a textured background, buildings at both dates, and
planted changes (buildings appearing or vanishing) whose mask is the label. The change is visible
only by comparing the dates (both dates hold buildings), so a model must use the pair."""

from __future__ import annotations

import numpy as np


def background(rng: np.random.Generator, size: tuple[int, int], channels: int) -> np.ndarray:
    """Smooth random texture in [0.2, 0.5], (H, W, C), with a per-channel tint."""
    h, w = size
    coarse = rng.uniform(0.2, 0.5, (h // 8 + 2, w // 8 + 2, 1))
    field = np.kron(coarse, np.ones((8, 8, 1)))[:h, :w]
    tint = rng.uniform(0.8, 1.2, (1, 1, channels))
    return field * tint + rng.normal(0, 0.02, (h, w, channels))


def boxes(rng: np.random.Generator, size: tuple[int, int], n: int, lo: int = 10, hi: int = 20) -> list[tuple[int, int, int, int]]:
    h, w = size
    out = []
    for _ in range(n):
        bh, bw = rng.integers(lo, hi, 2)
        y, x = rng.integers(0, h - bh), rng.integers(0, w - bw)
        out.append((int(y), int(x), int(bh), int(bw)))
    return out


def paint(img: np.ndarray, box: tuple[int, int, int, int], value: np.ndarray | float) -> None:
    y, x, bh, bw = box
    img[y:y + bh, x:x + bw] = value


def change_pair(rng: np.random.Generator, size: tuple[int, int], channels: int, kept: int = 2,
                new: int = 3, gone: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(date1, date2, change) with dates (H, W, C) in [0, 1] and change (H, W) uint8 0/1, where
    change marks pixels that are roof at exactly one date."""
    base = background(rng, size, channels)
    roof = rng.uniform(0.8, 0.95, channels)
    at1, at2 = np.zeros(size, bool), np.zeros(size, bool)
    for box in boxes(rng, size, kept):
        paint(at1, box, True)
        paint(at2, box, True)
    for box in boxes(rng, size, gone):
        paint(at1, box, True)
    for box in boxes(rng, size, new):
        paint(at2, box, True)
    a, b = base.copy(), base.copy()
    a[at1], b[at2] = roof, roof
    # A radiometric difference between the dates that is not change.
    b = b * rng.uniform(0.9, 1.1) + rng.normal(0, 0.02, b.shape)
    a = a + rng.normal(0, 0.02, a.shape)
    return np.clip(a, 0, 1), np.clip(b, 0, 1), (at1 != at2).astype(np.uint8)


def to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)
