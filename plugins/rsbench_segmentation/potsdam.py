"""ISPRS Potsdam 2D semantic labelling: 38 true-orthophoto tiles of 6000 x 6000 px at 5 cm.

Official layout (release zips unpacked in place): ``2_Ortho_RGB/top_potsdam_<X>_<Y>_RGB.tif`` and
``5_Labels_all_noBoundary/top_potsdam_<X>_<Y>_label_noBoundary.tif`` (RGB colour labels whose
eroded class boundaries are black = ignored). The fixed split is 24 train / 14 test tiles (same
in mmseg's converter and torchgeo). As mmseg's converter, tiles are cut into 512 px patches with
stride 256 (options ``patch_size``/``overlap``); a training patch reads only its window
(``common.read_window``: the image in place, label ids from the tile cache).

Metric convention (made explicit, the ISPRS one): F1 per class on the noBoundary labels, averaged
over the 5 classes without clutter; clutter is still trained and predicted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rsbench.errors import DataLayoutError
from rsbench.io import raster
from rsbench.io.fixtures import mark_fixture
from rsbench.protocol.normalization import IMAGENET
from rsbench_segmentation import common

CLASSES = ("impervious_surface", "building", "low_vegetation", "tree", "car", "clutter")
PALETTE = ((255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0), (255, 255, 0), (255, 0, 0))
BOUNDARY = (0, 0, 0)
IGNORE_INDEX = common.IGNORE
NORMALIZATION = {"hr": IMAGENET}
PATCHED = True
HEADLINE = "mFscore.scored"
SCORED = CLASSES[:5]
TRAIN = ("2_10", "2_11", "2_12", "3_10", "3_11", "3_12", "4_10", "4_11", "4_12", "5_10", "5_11", "5_12",
         "6_7", "6_8", "6_9", "6_10", "6_11", "6_12", "7_7", "7_8", "7_9", "7_10", "7_11", "7_12")
TEST = ("2_13", "2_14", "3_13", "3_14", "4_13", "4_14", "4_15", "5_13", "5_14", "5_15", "6_13", "6_14",
        "6_15", "7_13")
IMAGES, LABELS = "2_Ortho_RGB", "5_Labels_all_noBoundary"
LAYOUT = (f"{IMAGES}/top_potsdam_<X>_<Y>_RGB.tif + {LABELS}/top_potsdam_<X>_<Y>_label_noBoundary.tif "
          "(24 train + 14 test tiles)")


def check(root: Path) -> dict[str, Any]:
    root = Path(root)
    for folder in (root / IMAGES, root / LABELS):
        if not folder.is_dir():
            raise DataLayoutError(f"{folder}: missing folder; expected the ISPRS Potsdam layout {LAYOUT}")
    splits: dict[str, list[dict[str, Any]]] = {}
    for split, tiles in (("train", TRAIN), ("test", TEST)):
        splits[split] = []
        for tile in tiles:
            img = root / IMAGES / f"top_potsdam_{tile}_RGB.tif"
            label = root / LABELS / f"top_potsdam_{tile}_label_noBoundary.tif"
            for path in (img, label):
                if not path.is_file():
                    raise DataLayoutError(f"{path}: missing {split} tile {tile}; expected {LAYOUT}")
            label_info = raster.raster_info(label)
            raster.require_lossless(label_info, "a colour label")
            if label_info.bands != 3:
                raise DataLayoutError(f"{label}: {label_info.bands} band(s); expected 3 (an RGB colour label)")
            w, h = common.image_size(img)
            splits[split].append(common.sample(f"{tile}", label, {"hr": img}, size=(h, w)))
    return {"root": str(root), "classes": list(CLASSES), "splits": splits}


def load(sample: dict[str, Any], modalities: Sequence[str],
         window: Sequence[int] | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The whole tile, or with ``window`` only that patch (padded image 0, label 255), read
    through ``common.read_window`` (the image in place, the label's ids from the tile cache)."""
    if window is not None:
        img = common.read_window(sample["modalities"]["hr"], window, 3)
        label = common.read_label_window(sample["label"], window, PALETTE, extra={BOUNDARY: common.IGNORE})
        return {"hr": img}, label
    img = common.read_tile(sample["modalities"]["hr"], 3)
    rgb = common.read_tile(sample["label"])
    label = common.colours_to_ids(rgb, PALETTE, sample["label"], extra={BOUNDARY: common.IGNORE})
    return {"hr": img}, label


load.windowed = True  # type: ignore[attr-defined]  (RSBLoadSample passes the patch window)


def write_fixture(out: Path, seed: int = 0, size: int = 96) -> Path:
    """All 38 tiles at ``size`` px: class-coloured regions, black (ignored) class boundaries."""
    rng = np.random.default_rng(seed)
    colours = common.class_colours(len(CLASSES), 3, seed=7)
    root = Path(out)
    (root / IMAGES).mkdir(parents=True, exist_ok=True)
    (root / LABELS).mkdir(parents=True, exist_ok=True)
    for tile in TRAIN + TEST:
        label = common.paint_scene(rng, (size, size), len(CLASSES), background=None, shapes=6)
        edge = np.zeros_like(label, dtype=bool)
        edge[:, 1:] |= label[:, 1:] != label[:, :-1]
        edge[1:] |= label[1:] != label[:-1]
        rgb = np.asarray(PALETTE, dtype=np.uint8)[label]
        rgb[edge] = BOUNDARY
        Image.fromarray(common.render(label, colours, rng)).save(root / IMAGES / f"top_potsdam_{tile}_RGB.tif")
        Image.fromarray(rgb).save(root / LABELS / f"top_potsdam_{tile}_label_noBoundary.tif")
    mark_fixture(root, "potsdam", seed)
    return root
