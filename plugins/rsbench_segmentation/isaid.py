"""iSAID (Waqas Zamir et al. 2019): the DOTA-v1.0 images with pixel-wise labels of 15 object
classes plus background.

Official layout (after unzipping the release): ``iSAID/<split>/images/Pxxxx.png`` and
``iSAID/<split>/Semantic_masks/images/Pxxxx_instance_color_RGB.png`` for split ``train``/``val``
(``test`` has no masks). The masks are RGB colour codes (palette below, black = background).
Images are 800 to 13,000 px, so mmseg's converter cuts 896 px patches with 384 px overlap,
padding small images with 0 (image) and 255 (label); the task cuts the same windows at load
time (options ``patch_size``/``overlap``), each read from a tiled copy of its image and label
ids made once per image (``common.read_window``), instead of writing patches to disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rsbench.errors import DataLayoutError
from rsbench.fixtures import mark_fixture
from rsbench.normalization import IMAGENET
from rsbench_segmentation import common

CLASSES = ("background", "ship", "store_tank", "baseball_diamond", "tennis_court", "basketball_court",
           "Ground_Track_Field", "Bridge", "Large_Vehicle", "Small_Vehicle", "Helicopter", "Swimming_pool",
           "Roundabout", "Soccer_ball_field", "plane", "Harbor")
PALETTE = ((0, 0, 0), (0, 0, 63), (0, 63, 63), (0, 63, 0), (0, 63, 127), (0, 63, 191), (0, 63, 255),
           (0, 127, 63), (0, 127, 127), (0, 0, 127), (0, 0, 191), (0, 0, 255), (0, 191, 127),
           (0, 127, 191), (0, 127, 255), (0, 100, 155))
IGNORE_INDEX = common.IGNORE
#: ImageNet RGB statistics (0-255), as mmseg's iSAID configs.
NORMALIZATION = {"hr": IMAGENET}
PATCHED = True
#: mmseg summary key: mean IoU over all 16 classes, background included (mmseg/SkySense convention).
HEADLINE = "mIoU"
SPLITS = ("train", "val")
FOLDER = "iSAID"
MASK_SUFFIX = "_instance_color_RGB.png"
LAYOUT = ("iSAID/{train,val}/images/Pxxxx.png + iSAID/{train,val}/Semantic_masks/images/"
          "Pxxxx_instance_color_RGB.png (RGB colour masks; the root may be iSAID/ or its parent)")


def augmentation(crop: int) -> list[dict[str, Any]]:
    """mmseg's iSAID training augmentation (``configs/_base_/datasets/isaid.py``, which SkySense's
    iSAID config inherits), on the ``crop`` px patches: random rescale by 0.5-2.0 of the crop
    size (aspect kept), a random crop back to ``crop`` with at most 75 % of one class, horizontal
    flip, photometric distortion. Padding of a rescaled-down patch happens in the data
    preprocessor (image 0, label 255)."""
    return [dict(type="RandomResize", scale=(crop, crop), ratio_range=(0.5, 2.0), keep_ratio=True),
            dict(type="RandomCrop", crop_size=(crop, crop), cat_max_ratio=0.75),
            dict(type="RandomFlip", prob=0.5),
            dict(type="PhotoMetricDistortion")]


def find_root(root: Path) -> Path:
    return root / FOLDER if (root / FOLDER).is_dir() and not (root / "train").is_dir() else root


def check(root: Path) -> dict[str, Any]:
    """List (image, mask) pairs per split with image sizes; errors name the folder or file."""
    root = find_root(Path(root))
    splits: dict[str, list[dict[str, Any]]] = {}
    for split in SPLITS:
        images, masks = root / split / "images", root / split / "Semantic_masks" / "images"
        for folder in (images, masks):
            if not folder.is_dir():
                raise DataLayoutError(f"{folder}: missing folder; expected the iSAID layout {LAYOUT}")
        files = sorted(p for p in images.glob("P*.png") if "_instance_" not in p.name)
        if not files:
            raise DataLayoutError(f"{images}: no Pxxxx.png images")
        splits[split] = []
        for img in files:
            mask = masks / f"{img.stem}{MASK_SUFFIX}"
            if not mask.is_file():
                raise DataLayoutError(f"{mask}: missing mask for image {img}")
            w, h = common.image_size(img)
            if common.image_size(mask) != (w, h):
                raise DataLayoutError(f"{mask}: size {common.image_size(mask)} differs from image {img} ({w}x{h})")
            splits[split].append(common.sample(img.stem, mask, {"hr": img}, size=(h, w)))
    return {"root": str(root), "classes": list(CLASSES), "splits": splits}


def load(sample: dict[str, Any], modalities: Sequence[str],
         window: Sequence[int] | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The whole image, or with ``window`` only that patch (padded image 0, label 255), read
    from the tile cache (``common.read_window``: PNGs cannot be window-read)."""
    if window is not None:
        img = common.read_window(sample["modalities"]["hr"], window)[..., :3]
        label = common.read_label_window(sample["label"], window, PALETTE)
    else:
        img = common.read_tile(sample["modalities"]["hr"])[..., :3]
        label = common.colours_to_ids(common.read_tile(sample["label"]), PALETTE, sample["label"])
    if img.shape[2] != 3:
        raise DataLayoutError(f"{sample['modalities']['hr']}: expected an RGB image, found {img.shape[2]} band(s)")
    return {"hr": img}, label


load.windowed = True  # type: ignore[attr-defined]  (RSBLoadSample passes the patch window)


def write_fixture(out: Path, seed: int = 0, size: tuple[int, int] = (80, 96),
                  counts: dict[str, int] | None = None) -> Path:
    """A tiny iSAID: a few ~96x80 PNGs per split whose objects are class-coloured rectangles."""
    rng = np.random.default_rng(seed)
    colours = common.class_colours(len(CLASSES), 3)
    root = Path(out) / FOLDER
    for split, n in (counts or {"train": 6, "val": 3}).items():
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "Semantic_masks" / "images").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            name = f"P{(0 if split == 'train' else 1000) + i:04d}"
            label = common.paint_scene(rng, size, len(CLASSES), background=0, shapes=8)
            Image.fromarray(common.render(label, colours, rng)).save(root / split / "images" / f"{name}.png")
            rgb = np.asarray(PALETTE, dtype=np.uint8)[label]
            Image.fromarray(rgb).save(root / split / "Semantic_masks" / "images" / f"{name}{MASK_SUFFIX}")
    mark_fixture(Path(out), "isaid", seed)
    return Path(out)
