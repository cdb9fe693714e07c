"""Synthetic scenes for the detection fixtures: a learnable signal with known boxes.

Each class is a solid rotated rectangle with its own colour and aspect ratio on a noisy dark
ground, placed without overlap, so a detector trained for seconds can separate and locate
them; the exact corner coordinates are returned for the annotation writers.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

#: (RGB colour, long side px, short side px) per fixture class slot.
LOOKS = (((230, 40, 40), 40, 20), ((40, 220, 60), 30, 30), ((60, 90, 240), 48, 16),
         ((240, 220, 40), 36, 24), ((230, 60, 230), 28, 14), ((40, 230, 230), 44, 26))

#: SAR-like fixtures: one brightness per class slot.
GREYS = (250, 170, 110, 210, 140, 90)


def corners(cx: float, cy: float, w: float, h: float, angle_deg: float) -> list[tuple[float, float]]:
    """Corners of a w x h box centred at (cx, cy) rotated clockwise (image axes) by angle_deg,
    in the order left-top, right-top, right-bottom, left-bottom of the unrotated box."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    out = []
    for dx, dy in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)):
        out.append((round(cx + dx * c - dy * s, 1), round(cy + dx * s + dy * c, 1)))
    return out


def scene(rng: np.random.Generator, size: int, labels: list[int], rotate: bool = True,
          grey: bool = False) -> tuple[np.ndarray, list[tuple[int, list[tuple[float, float]], float]]]:
    """An RGB image and its objects ``(slot, corners, angle)``; ``grey`` makes a SAR-like
    speckled single-intensity picture (brightness per class instead of colour)."""
    base = rng.normal(40, 8, (size, size, 3)).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(base)
    draw = ImageDraw.Draw(img)
    objects: list[tuple[int, list[tuple[float, float]], float]] = []
    placed: list[tuple[float, float, float]] = []
    for slot in labels:
        colour, w, h = LOOKS[slot % len(LOOKS)]
        radius = math.hypot(w, h) / 2
        for _ in range(100):
            cx, cy = rng.uniform(radius + 2, size - radius - 2, 2)
            if all(math.hypot(cx - x, cy - y) > radius + r + 4 for x, y, r in placed):
                break
        else:
            continue
        angle = float(rng.choice([-60, -30, 0, 30, 60])) if rotate else 0.0
        pts = corners(cx, cy, w, h, angle)
        draw.polygon(pts, fill=(GREYS[slot % len(GREYS)],) * 3 if grey else colour)
        placed.append((cx, cy, radius))
        objects.append((slot, pts, angle))
    arr = np.asarray(img)
    if grey:
        speckle = rng.gamma(4.0, 0.25, arr.shape[:2])[..., None]
        arr = (arr[..., :1] * speckle).clip(0, 255).astype(np.uint8).repeat(3, axis=2)
    return arr, objects
