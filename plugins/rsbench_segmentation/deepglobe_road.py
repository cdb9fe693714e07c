"""DeepGlobe Road Extraction (Demir et al. 2018): 1024 x 1024 RGB satellite JPEGs (0.5 m) with
binary road masks.

Official layout: ``train/<id>_sat.jpg`` + ``train/<id>_mask.png`` (the mask is an RGB PNG with
values 0/255; a pixel is road when any channel is >= 128). Only ``train/`` has masks (``valid/``
and ``test/`` do not), so papers re-split the 6,226 labelled images; the common split is 4,696
train / 1,530 test. This reader reproduces that proportion with a seeded shuffle of the sorted
ids (options ``test_ratio``, ``split_seed``), recorded in the row's options.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rsbench.errors import DataLayoutError
from rsbench.io.fixtures import mark_fixture
from rsbench.protocol.normalization import IMAGENET
from rsbench_segmentation import common

CLASSES = ("background", "road")
PALETTE = ((0, 0, 0), (255, 255, 255))
IGNORE_INDEX = common.IGNORE
NORMALIZATION = {"hr": IMAGENET}
HEADLINE = "IoU.road"
#: The common re-split of the labelled images (4,696 train / 1,530 test).
TEST_RATIO = 1530 / 6226
LAYOUT = ("train/<id>_sat.jpg + train/<id>_mask.png (RGB mask, 0/255); the root may be the "
          "dataset folder holding train/ or train/ itself")


def find_root(root: Path) -> Path:
    return root / "train" if (root / "train").is_dir() else root


def check(root: Path) -> dict[str, Any]:
    root = find_root(Path(root))
    images = sorted(root.glob("*_sat.jpg")) if root.is_dir() else []
    if not images:
        raise DataLayoutError(f"{root}: no <id>_sat.jpg images; expected the DeepGlobe road layout {LAYOUT}")
    samples = []
    for img in images:
        ident = img.name[: -len("_sat.jpg")]
        mask = root / f"{ident}_mask.png"
        if not mask.is_file():
            raise DataLayoutError(f"{mask}: missing mask for image {img}")
        samples.append(common.sample(ident, mask, {"hr": img}))
    return {"root": str(root), "classes": list(CLASSES), "splits": {"all": samples}}


def partition(data: dict[str, Any], split: str, opts: dict[str, Any]) -> tuple[list, list]:
    """Seeded re-split of the labelled images (there are no official test masks)."""
    ratio = float(opts["test_ratio"])
    if not 0 < ratio < 1:
        raise DataLayoutError(f"test_ratio {ratio}: expected a fraction in (0, 1)")
    items = sorted(data["splits"]["all"], key=lambda s: s["name"])
    random.Random(int(opts["split_seed"])).shuffle(items)
    k = max(1, min(len(items) - 1, round(len(items) * ratio)))
    return items[k:], items[:k]


def load(sample: dict[str, Any], modalities: Sequence[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    img = common.read_image(sample["modalities"]["hr"], bands=3)
    mask = common.read_image(sample["label"])
    if mask.shape[:2] != img.shape[:2]:
        raise DataLayoutError(f"{sample['label']}: mask size {mask.shape[:2]} differs from image {img.shape[:2]}")
    return {"hr": img}, (mask[..., :3].max(axis=2) >= 128).astype(np.uint8)


def write_fixture(out: Path, seed: int = 0, n: int = 12, size: int = 96) -> Path:
    """A tiny DeepGlobe train/ folder: grey roads (straight bands) on textured green-brown land."""
    rng = np.random.default_rng(seed)
    root = Path(out) / "train"
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        label = np.zeros((size, size), dtype=np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            pos, width = int(rng.integers(4, size - 10)), int(rng.integers(4, 9))
            if rng.random() < 0.5:
                label[pos:pos + width] = 1
            else:
                label[:, pos:pos + width] = 1
        land = np.array([70, 110, 50]) + rng.normal(0, 18, (size, size, 3))
        img = np.where(label[..., None] == 1, np.array([185, 180, 175]) + rng.normal(0, 10, (size, size, 3)), land)
        ident = f"{100000 + 37 * i}"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / f"{ident}_sat.jpg", quality=95)
        Image.fromarray(np.repeat(label[..., None] * 255, 3, axis=2)).save(root / f"{ident}_mask.png")
    mark_fixture(Path(out), "deepglobe-road", seed)
    return Path(out)
