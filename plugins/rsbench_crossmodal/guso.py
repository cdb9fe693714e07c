"""GUSO (Wang et al., MaRS 2026): ultra-high-resolution optical/SAR pairs for registration and translation.

The public repository ships demo pairs ``{id}_opt.png`` / ``{id}_sar.png`` (512x512 RGB PNGs, the
SAR rotated and scaled relative to the optical image) and evaluates registration with the ground
truth homography ``H_0to1`` (``utils/rs_metrics.py``); the per-file layout inside the download
zips is not documented. rsbench therefore reads this layout (documented, and written by the
fixture)::

    <split>/{id}_opt.png   optical RGB
    <split>/{id}_sar.png   SAR (grey or RGB PNG; the first channel is used)
    <split>/{id}_H.txt     3x3 homography H_0to1 (whitespace separated) mapping an optical pixel
                           (x, y, 1) to SAR pixel coordinates; required for registration;
                           translation, where it is present, first resamples the SAR into the
                           optical frame with it, since translation is scored pixel to pixel

with ``<split>`` in train / val / test. Images must be square, equal in size, and at least the
task's crop (``img_size``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rsbench.errors import DataLayoutError
from rsbench.io.fixtures import mark_fixture
from rsbench.io.raster import raster_info

SPLITS = ("train", "val", "test")
LAYOUT = "<split>/{id}_opt.png, {id}_sar.png and {id}_H.txt (3x3 H_0to1, optical -> SAR pixels), split in train/val/test"


def read_h(path: Path) -> list[list[float]]:
    if not path.is_file():
        raise DataLayoutError(f"{path}: ground-truth homography missing (expected a 3x3 matrix as text)")
    try:
        h = np.loadtxt(path, dtype=np.float64)
    except ValueError as exc:
        raise DataLayoutError(f"{path}: not a 3x3 numeric matrix ({exc})") from exc
    if h.shape != (3, 3) or not np.isfinite(h).all() or abs(np.linalg.det(h)) < 1e-9:
        raise DataLayoutError(f"{path}: expected an invertible 3x3 homography; got shape {h.shape}")
    return (h / h[2, 2]).tolist()


def image_size(path: Path) -> tuple[int, int]:
    if not path.is_file():
        raise DataLayoutError(f"{path}: image missing (pairs are {{id}}_opt.png and {{id}}_sar.png)")
    info = raster_info(path)
    return info.width, info.height


def check(root: Path, with_h: bool | None = True) -> dict[str, Any]:
    """The pairs of each split; ``with_h``: the homography is required (True), ignored (False) or
    read where present (None)."""
    root = Path(root)
    samples: dict[str, list[dict[str, Any]]] = {}
    size = None
    for split in SPLITS:
        folder = root / split
        if not folder.is_dir():
            raise DataLayoutError(f"{folder}: split folder missing; expected {LAYOUT}")
        ids = sorted(p.name[: -len("_opt.png")] for p in folder.glob("*_opt.png"))
        if not ids:
            raise DataLayoutError(f"{folder}: no {{id}}_opt.png images")
        samples[split] = []
        for i in ids:
            sizes = {image_size(folder / f"{i}_{kind}.png") for kind in ("opt", "sar")}
            if len(sizes) != 1:
                raise DataLayoutError(f"{folder / i}_sar.png: size {sorted(sizes)} differs from its optical image")
            (w, h), = sizes
            if w != h:
                raise DataLayoutError(f"{folder / i}_opt.png: {w}x{h} px; expected a square image")
            size = size or w
            entry: dict[str, Any] = dict(id=i, opt=f"{split}/{i}_opt.png", sar=f"{split}/{i}_sar.png", size=w)
            if with_h or (with_h is None and (folder / f"{i}_H.txt").is_file()):
                entry["H"] = read_h(folder / f"{i}_H.txt")
            samples[split].append(entry)
    return {"root": str(root), "samples": samples, "size": size, "classes": []}


def check_translation(root: Path) -> dict[str, Any]:
    return check(root, with_h=None)


# -- fixture ------------------------------------------------------------------------------
#: Land-cover materials of the fixture scenes: (optical RGB in [0, 1], mean SAR backscatter in
#: [0, 1]). The backscatter is neither the luminance nor its inverse (bright roofs, dark water and
#: roads, vegetation in between), so SAR -> optical is learnable from context, not from a
#: brightness map, and optical and SAR structure must be matched across radiometries.
MATERIALS = (
    ((0.25, 0.45, 0.20), 0.35),  # vegetation
    ((0.70, 0.60, 0.45), 0.20),  # bare soil
    ((0.10, 0.20, 0.35), 0.03),  # water
    ((0.30, 0.30, 0.32), 0.10),  # asphalt
    ((0.65, 0.30, 0.25), 0.90),  # tiled roof
    ((0.60, 0.60, 0.62), 0.70),  # concrete roof
)


def scene(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic scene: optical RGB (H, W, 3) and SAR backscatter (H, W), both in [0, 1].
    Smooth vegetation/soil terrain carrying blocks (fields, ponds, roads, buildings) of the
    :data:`MATERIALS`, each block's colour jittered a little."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    mix = 0.5 + 0.5 * np.sin(2 * np.pi * (rng.uniform(1, 3) * xx + rng.uniform(0, 1))) * np.cos(
        2 * np.pi * rng.uniform(1, 3) * yy)  # 1: vegetation, 0: bare soil
    (veg, veg_sar), (soil, soil_sar) = MATERIALS[0], MATERIALS[1]
    optical = mix[..., None] * np.array(veg) + (1 - mix[..., None]) * np.array(soil)
    backscatter = mix * veg_sar + (1 - mix) * soil_sar
    for _ in range(int(size * size / 180)):
        h, w = rng.integers(size // 16, size // 5, 2)
        y, x = rng.integers(0, size - h), rng.integers(0, size - w)
        colour, sar = MATERIALS[rng.integers(len(MATERIALS))]
        optical[y:y + h, x:x + w] = np.array(colour) + rng.uniform(-0.05, 0.05, 3)
        backscatter[y:y + h, x:x + w] = sar
    return np.clip(optical, 0, 1), backscatter


def random_affine(size: int, rng: np.random.Generator, max_angle: float = 10.0, max_shift: float = 4.0) -> np.ndarray:
    """An affine H_0to1 about the image centre: rotation, isotropic scale and shift."""
    a = np.deg2rad(rng.uniform(-max_angle, max_angle))
    s = rng.uniform(0.92, 1.08)
    t = rng.uniform(-max_shift, max_shift, 2)
    c = (size - 1) / 2
    rot = np.array([[s * np.cos(a), -s * np.sin(a)], [s * np.sin(a), s * np.cos(a)]])
    h = np.eye(3)
    h[:2, :2] = rot
    h[:2, 2] = np.array([c, c]) - rot @ np.array([c, c]) + t
    return h


#: The fixture's SAR PNGs show backscatter in decibels over this range (a quick-look scaling),
#: so speckle, multiplicative in intensity, is additive in the image.
DB_RANGE = (-25.0, 0.0)


def sar_from(backscatter: np.ndarray, h: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The SAR image of a scene in [0, 1]: pixel q shows the backscatter at optical point H^-1 q
    (bilinear; none outside the scene) under multiplicative speckle (gamma, 8 looks), in
    decibels scaled from :data:`DB_RANGE` to [0, 1]."""
    size = backscatter.shape[0]
    inv = np.linalg.inv(h)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    pts = inv @ np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    px, py = pts[0] / pts[2], pts[1] / pts[2]
    x0, y0 = np.clip(np.floor(px).astype(int), 0, size - 2), np.clip(np.floor(py).astype(int), 0, size - 2)
    fx, fy = np.clip(px - x0, 0, 1), np.clip(py - y0, 0, 1)
    val = (backscatter[y0, x0] * (1 - fx) * (1 - fy) + backscatter[y0, x0 + 1] * fx * (1 - fy)
           + backscatter[y0 + 1, x0] * (1 - fx) * fy + backscatter[y0 + 1, x0 + 1] * fx * fy)
    outside = (px < 0) | (px > size - 1) | (py < 0) | (py > size - 1)
    val[outside] = 0.0
    speckle = rng.gamma(8.0, 1 / 8.0, val.shape)
    db = 10 * np.log10(np.maximum(val * speckle, 1e-6))
    low, high = DB_RANGE
    return np.clip((db - low) / (high - low), 0, 1).reshape(size, size)


def write_fixture(out: Path, seed: int = 0, size: int = 64, counts: dict[str, int] | None = None,
                  dataset: str = "guso") -> Path:
    """A tiny GUSO: synthetic scenes, SAR views warped by a planted affine H_0to1 (written to
    ``{id}_H.txt``), so registration RMSE against the truth is exact."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    n = 0
    for split, k in (counts or dict(train=96, val=8, test=16)).items():
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        for _ in range(k):
            opt, backscatter = scene(size, rng)
            h = random_affine(size, rng)
            sar = sar_from(backscatter, h, rng)
            Image.fromarray((opt * 255).astype(np.uint8)).save(folder / f"{n}_opt.png")
            Image.fromarray((np.repeat(sar[..., None], 3, axis=2) * 255).astype(np.uint8)).save(folder / f"{n}_sar.png")
            np.savetxt(folder / f"{n}_H.txt", h, fmt="%.10f")
            n += 1
    mark_fixture(out, dataset, seed)
    return out
