"""EarthMiss (Zhou et al., RSE 2025): 0.6 m optical-SAR pairs from 13 cities, 8 land-cover classes,
for segmentation when a modality is missing.

Official layout: ``<City>/images/RGB/<id>.tif``, ``<City>/images/SAR/<id>_SAR.tif`` and
``<City>/masks/<id>_mask.tif`` (or ``.png`` for each); masks hold 0..8, raw 0 is ignored and 1..8
are the classes (the official loader's ``mask - 1``). Split by city: 7 train / 3 val / 3 test.

Missing-modality protocol (task option ``missing_modality``: ``sar``, ``hr`` or ``none``): the run
feeds the backbone only the other modality, in training and at test, and declares the absence to
the backbone through ``in_modalities`` (MaRS then runs its missing-modality path); the option is
recorded in the row, so both settings are reported as separate rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rsbench.errors import DataLayoutError
from rsbench.io.fixtures import mark_fixture
from rsbench_segmentation import common

CLASSES = ("background", "building", "road", "water", "barren", "forest", "agricultural", "playground")
PALETTE = ((255, 255, 255), (255, 0, 0), (255, 255, 0), (0, 0, 255), (159, 129, 183), (0, 255, 0),
           (255, 195, 128), (165, 0, 165))
IGNORE_INDEX = common.IGNORE
NORMALIZATION = {"hr": ((111.97, 118.42, 115.03), (72.97, 72.99, 81.92)), "sar": ((63.30,), (68.20,))}
HEADLINE = "mIoU"
CITIES = {
    "train": ("America-Eugene", "America-Louisville", "French-Paris", "Morocco-Casablanca", "Nanjing",
              "Netherlands-Rotterdam", "Singapore"),
    "val": ("Australia-PortHedland", "America-Pake", "Russian-Engels"),
    "test": ("America-NewYork", "Japan-Hakodate", "Peru-Callao"),
}
LAYOUT = "<City>/images/RGB/<id>.tif, <City>/images/SAR/<id>_SAR.tif, <City>/masks/<id>_mask.tif (13 cities)"


def _find(folder: Path, stem: str) -> Path | None:
    for ext in (".tif", ".png"):
        if (folder / f"{stem}{ext}").is_file():
            return folder / f"{stem}{ext}"
    return None


def check(root: Path) -> dict[str, Any]:
    root = Path(root)
    splits: dict[str, list[dict[str, Any]]] = {}
    for split, cities in CITIES.items():
        splits[split] = []
        for city in cities:
            rgb_dir = root / city / "images" / "RGB"
            if not rgb_dir.is_dir():
                raise DataLayoutError(f"{rgb_dir}: missing folder of {split} city {city}; expected {LAYOUT}")
            images = sorted(p for p in rgb_dir.iterdir() if p.suffix in (".tif", ".png"))
            if not images:
                raise DataLayoutError(f"{rgb_dir}: no <id>.tif images")
            for img in images:
                sar = _find(root / city / "images" / "SAR", f"{img.stem}_SAR")
                mask = _find(root / city / "masks", f"{img.stem}_mask")
                if sar is None or mask is None:
                    what = "images/SAR/<id>_SAR.tif" if sar is None else "masks/<id>_mask.tif"
                    raise DataLayoutError(f"{root / city}: missing {what.replace('<id>', img.stem)} for {img}")
                splits[split].append(common.sample(f"{city}_{img.stem}", mask, {"hr": img, "sar": sar}))
    return {"root": str(root), "classes": list(CLASSES), "splits": splits}


def load(sample: dict[str, Any], modalities: Sequence[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    paths = sample["modalities"]
    arrays = {m: common.read_image(paths[m], bands=3 if m == "hr" else 1) for m in modalities}
    raw = common.read_image(sample["label"], bands=1)[..., 0]
    if raw.max() > len(CLASSES):
        raise DataLayoutError(f"{sample['label']}: mask value {int(raw.max())} outside 0..{len(CLASSES)}")
    for m, arr in arrays.items():
        if arr.shape[:2] != raw.shape:
            raise DataLayoutError(f"{paths[m]}: size {arr.shape[:2]} differs from mask {raw.shape}")
    label = np.where(raw == 0, common.IGNORE, raw.astype(np.int32) - 1).astype(np.uint8)
    return arrays, label


def write_fixture(out: Path, seed: int = 0, per_city: int = 2, size: int = 64) -> Path:
    """Every city with ``per_city`` 64 px pairs: optical and SAR both carry the class signal
    (different per-class intensities), a few raw-0 (ignored) pixels in each mask."""
    rng = np.random.default_rng(seed)
    rgb_colours = common.class_colours(len(CLASSES), 3, seed=11)
    sar_levels = common.class_colours(len(CLASSES), 1, seed=13)
    root = Path(out)
    for cities in CITIES.values():
        for city in cities:
            for sub in ("images/RGB", "images/SAR", "masks"):
                (root / city / sub).mkdir(parents=True, exist_ok=True)
            for i in range(per_city):
                label = common.paint_scene(rng, (size, size), len(CLASSES), background=None, shapes=5)
                raw = label.astype(np.uint8) + 1
                raw[:2, :] = 0  # an unlabelled strip: raw 0 is ignored
                ident = f"{i + 1:04d}"
                Image.fromarray(common.render(label, rgb_colours, rng)).save(root / city / "images/RGB" / f"{ident}.tif")
                Image.fromarray(common.render(label, sar_levels, rng)[..., 0]).save(
                    root / city / "images/SAR" / f"{ident}_SAR.tif")
                Image.fromarray(raw).save(root / city / "masks" / f"{ident}_mask.tif")
    mark_fixture(root, "earthmiss", seed)
    return root
