"""iSAID (Waqas Zamir et al. 2019): the DOTA-v1.0 images with pixel-wise labels of 15 object
classes plus background.

Two layouts are read, detected from where the masks are (``check`` says which in the summary's
``layout``, which the row records as ``data_layout``; both give the same samples):

* ``release``, the downloads unzipped (what mmseg's converter unzips): ``iSAID/<split>/images/Pxxxx.png``
  from DOTA's ``part*.zip`` and ``iSAID/<split>/Semantic_masks/images/Pxxxx_instance_color_RGB.png``.
* ``devkit``, as CAPTAIN-WHU/iSAID_Devkit asks for before its ``split.py``: the masks next to the
  images, ``iSAID/<split>/images/{Pxxxx.png, Pxxxx_instance_color_RGB.png, Pxxxx_instance_id_RGB.png}``.
  The devkit's own 800 px patches (``iSAID_patches``, ``Pxxxx_<y0>_<y1>_<x0>_<x1>.png``) and mmseg's
  converted ``img_dir/``, ``ann_dir/`` are refused: the windows are cut from whole images.

Splits ``train``/``val`` (``test`` has no masks). The masks are RGB colour codes (palette below,
black = background). Images are 800 to 13,000 px, so mmseg's converter cuts 896 px patches with
384 px overlap, padding small images with 0 (image) and 255 (label); the task cuts the same
windows at load time (options ``patch_size``/``overlap``), each read from a tiled copy of its image
and label ids made once per image (``common.read_window``), instead of writing patches to disk.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rsbench.errors import DataLayoutError
from rsbench.io.fixtures import mark_fixture
from rsbench.protocol.normalization import IMAGENET
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
ID_SUFFIX = "_instance_id_RGB.png"
#: What each layout holds (``{split}``: train, val); the root may be iSAID/ or its parent.
LAYOUTS = {
    "release": "iSAID/{split}/images/Pxxxx.png + iSAID/{split}/Semantic_masks/images/Pxxxx_instance_color_RGB.png",
    "devkit": "iSAID/{split}/images/ holding Pxxxx.png next to Pxxxx_instance_color_RGB.png (iSAID_Devkit)",
}
LAYOUT = ("release: iSAID/{train,val}/images/Pxxxx.png + iSAID/{train,val}/Semantic_masks/images/"
          "Pxxxx_instance_color_RGB.png, or devkit: the masks next to the images in iSAID/{train,val}/images/ "
          "(RGB colour masks; the root may be iSAID/ or its parent)")
#: ``layout`` values of :func:`write_fixture` (the release first: the default).
FIXTURE_LAYOUTS = tuple(LAYOUTS)
IMAGE_NAME = re.compile(r"P\d+\.png")
#: iSAID_Devkit ``split.py``'s patch names (``Pxxxx_<y0>_<y1>_<x0>_<x1>[...].png``).
PATCH_NAME = re.compile(r"P\d+(_\d+){4}(_instance_(color|id)_RGB)?\.png")


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


def mask_folder(root: Path, split: str, layout: str) -> Path:
    return root / split / ("Semantic_masks/images" if layout == "release" else "images")


def split_layout(root: Path, split: str) -> str:
    """The layout of one split, from where its masks are; an error naming the folder and what each
    layout expects when neither or both are there."""
    images = root / split / "images"
    expected = "; ".join(f"{k}: {v.format(split=split)}" for k, v in LAYOUTS.items())
    if not images.is_dir():
        raise DataLayoutError(f"{images}: missing folder; expected an iSAID layout, {expected}")
    patch = next((p for p in sorted(images.glob("P*_*.png")) if PATCH_NAME.fullmatch(p.name)), None)
    if patch is not None:
        raise DataLayoutError(f"{patch}: a patch written by iSAID_Devkit's split.py; expected the whole images "
                              "(the windows are cut at load time): point the data root at the folder split.py "
                              "read (dataset/iSAID), not at iSAID_patches")
    release = (root / split / "Semantic_masks").is_dir()
    beside = next(iter(sorted(images.glob(f"P*{MASK_SUFFIX}"))), None)
    if release and beside is not None:
        raise DataLayoutError(f"{beside}: a mask next to the images (devkit layout) while "
                              f"{root / split / 'Semantic_masks'} holds the release's masks; keep one layout")
    if release:
        if not mask_folder(root, split, "release").is_dir():
            raise DataLayoutError(f"{mask_folder(root, split, 'release')}: missing folder; expected the release "
                                  f"layout {LAYOUTS['release'].format(split=split)}")
        return "release"
    if beside is not None:
        return "devkit"
    raise DataLayoutError(f"{root / split}: no masks in either iSAID layout (no Semantic_masks/ folder, no "
                          f"Pxxxx{MASK_SUFFIX} in images/); expected {expected}")


def detect_layout(root: Path) -> str:
    """``"release"`` or ``"devkit"``: the layout every split of ``root`` (as :func:`find_root` gives
    it) is in; a root mixing the two is an error naming both."""
    if (root / "img_dir").is_dir() and (root / "ann_dir").is_dir():
        raise DataLayoutError(f"{root / 'img_dir'}: mmseg's converted patches (tools/dataset_converters/isaid.py "
                              "output); expected the whole images in the release or devkit layout (the windows "
                              "are cut at load time): point the data root at the converter's input folder")
    found = {split: split_layout(root, split) for split in SPLITS}
    if len(set(found.values())) > 1:
        shown = ", ".join(f"{mask_folder(root, s, k)} ({k})" for s, k in found.items())
        raise DataLayoutError(f"{root}: the splits are in different iSAID layouts, masks in {shown}; "
                              "expected one layout for all splits")
    return found[SPLITS[0]]


def check(root: Path) -> dict[str, Any]:
    """List (image, mask) pairs per split with image sizes, in either layout (see the module doc);
    errors name the folder or file."""
    root = find_root(Path(root))
    kind = detect_layout(root)
    splits: dict[str, list[dict[str, Any]]] = {}
    for split in SPLITS:
        images, masks = root / split / "images", mask_folder(root, split, kind)
        files = sorted(p for p in images.glob("P*.png") if IMAGE_NAME.fullmatch(p.name))
        if not files:
            raise DataLayoutError(f"{images}: no Pxxxx.png images")
        splits[split] = []
        for img in files:
            mask = masks / f"{img.stem}{MASK_SUFFIX}"
            if not mask.is_file():
                raise DataLayoutError(f"{mask}: missing mask for image {img} ({kind} layout: "
                                      f"{LAYOUTS[kind].format(split=split)})")
            w, h = common.image_size(img)
            if common.image_size(mask) != (w, h):
                raise DataLayoutError(f"{mask}: size {common.image_size(mask)} differs from image {img} ({w}x{h})")
            splits[split].append(common.sample(img.stem, mask, {"hr": img}, size=(h, w)))
    return {"root": str(root), "classes": list(CLASSES), "splits": splits, "layout": kind}


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
                  counts: dict[str, int] | None = None, layout: str = "release") -> Path:
    """A tiny iSAID: a few ~96x80 PNGs per split whose objects are class-coloured rectangles, in
    the ``release`` layout or (``layout="devkit"``) the devkit's, with the same pixels for a seed
    (the devkit's copy adds an instance-id mask per image, which the reader ignores)."""
    if layout not in FIXTURE_LAYOUTS:
        raise DataLayoutError(f"iSAID fixture layout {layout!r}: expected one of {', '.join(FIXTURE_LAYOUTS)}")
    rng = np.random.default_rng(seed)
    colours = common.class_colours(len(CLASSES), 3)
    root = Path(out) / FOLDER
    for split, n in (counts or {"train": 6, "val": 3}).items():
        images, masks = root / split / "images", mask_folder(root, split, layout)
        images.mkdir(parents=True, exist_ok=True)
        masks.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            name = f"P{(0 if split == 'train' else 1000) + i:04d}"
            label = common.paint_scene(rng, size, len(CLASSES), background=0, shapes=8)
            Image.fromarray(common.render(label, colours, rng)).save(images / f"{name}.png")
            Image.fromarray(np.asarray(PALETTE, dtype=np.uint8)[label]).save(masks / f"{name}{MASK_SUFFIX}")
            if layout == "devkit":  # a stand-in instance map (one id per class), as the devkit keeps one
                ids = np.stack([label, np.zeros_like(label), np.zeros_like(label)], axis=-1)
                Image.fromarray(ids).save(images / f"{name}{ID_SUFFIX}")
    mark_fixture(Path(out), "isaid", seed)
    return Path(out)
