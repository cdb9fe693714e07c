"""SARDet-100K (Li et al., NeurIPS 2024; the MaRS SAR detection evaluation): 116,598 SAR chips
merged from ten sources, 6 classes, horizontal boxes, COCO mAP@[.5:.95].

Official layout: ``JPEGImages/{train,val,test}/<file_name>`` (grey SAR stored as 3-channel
JPEG) and COCO ``Annotations/{train,val,test}.json`` (``images``, ``annotations`` with
``bbox`` = [x, y, w, h], ``categories``). Category names are matched case- and
hyphen-insensitively against the canonical list below, as MSFA's ``SAR_Det.py`` maps them by name.

The task feeds the image as modality ``sar`` (one band, the JPEG read as greyscale), so only
backbones that take SAR run (MaRS); optical-only backbones are skipped by the runner's modality
fit instead of silently treating SAR as RGB.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rsbench.errors import DataLayoutError
from rsbench.io.fixtures import mark_fixture
from rsbench.plugin_api.checked_data import CheckedData
from rsbench_detection.annotations import BadSamples, ClassMatcher, image_size, require_dir
from rsbench_detection.scenes import scene

CLASSES = ("ship", "aircraft", "car", "tank", "bridge", "harbor")
SPLITS = ("train", "val", "test")
TITLE = "SARDet-100K"
LAYOUT = ("JPEGImages/{train,val,test}/<file_name> and COCO Annotations/{train,val,test}.json "
          "(the root may be SARDet_100K/ or its parent)")


def find_root(root: Path) -> Path:
    root = Path(root)
    return root / "SARDet_100K" if not (root / "Annotations").is_dir() and (root / "SARDet_100K").is_dir() else root


def load_coco(path: Path) -> dict[str, Any]:
    """A COCO json with ``images``, ``annotations`` and ``categories`` lists, or a clear error."""
    if not path.is_file():
        raise DataLayoutError(f"{path}: annotation file missing — expected a COCO json ({LAYOUT})")
    try:
        coco = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataLayoutError(f"{path}: malformed JSON ({exc})") from exc
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco, dict) or not isinstance(coco.get(key), list):
            raise DataLayoutError(f"{path}: not a COCO detection json — missing list {key!r}")
    return coco


def coco_samples(ann_path: Path, image_dir: Path, classes: tuple[str, ...], bad: BadSamples,
                 extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Samples (middle format, ``img_id`` = the COCO image id) of one COCO json; a bad image or
    annotation raises naming the json, image and annotation index (or is counted with skip_bad)."""
    coco = load_coco(ann_path)
    match = ClassMatcher(classes)
    labels: dict[Any, int] = {}
    for k, cat in enumerate(coco["categories"]):
        if "id" not in cat or "name" not in cat:
            raise DataLayoutError(f"{ann_path} category {k}: needs 'id' and 'name'")
        labels[cat["id"]] = match(str(cat["name"]), f"{ann_path} category {k}")
    by_image: dict[Any, list[tuple[int, dict[str, Any]]]] = {}
    images = {img.get("id"): img for img in coco["images"]}
    for k, ann in enumerate(coco["annotations"]):
        if ann.get("image_id") not in images:
            bad.handle(DataLayoutError(f"{ann_path} annotation {k}: image_id {ann.get('image_id')!r} "
                                       "is not in 'images'"))
            continue
        by_image.setdefault(ann["image_id"], []).append((k, ann))
    samples = []
    for img in coco["images"]:
        try:
            samples.append(_sample(ann_path, image_dir, img, by_image.get(img.get("id"), []), labels, extra))
        except DataLayoutError as exc:
            bad.handle(exc)
    return samples


def _sample(ann_path: Path, image_dir: Path, img: dict[str, Any], anns: list[tuple[int, dict[str, Any]]],
            labels: dict[Any, int], extra: dict[str, Any] | None) -> dict[str, Any]:
    if "file_name" not in img or "id" not in img:
        raise DataLayoutError(f"{ann_path} image {img!r}: needs 'id' and 'file_name'")
    path = image_dir / str(img["file_name"])
    width, height = image_size(path)
    instances = []
    for k, ann in anns:
        where = f"{ann_path} annotation {k} (image {img['file_name']})"
        box = ann.get("bbox")
        if not isinstance(box, list) or len(box) != 4 or not all(isinstance(v, (int, float)) for v in box):
            raise DataLayoutError(f"{where}: bbox must be [x, y, w, h] numbers; got {box!r}")
        x, y, w, h = (float(v) for v in box)
        if w <= 0 or h <= 0:
            raise DataLayoutError(f"{where}: empty box {box}")
        if ann.get("category_id") not in labels:
            raise DataLayoutError(f"{where}: category_id {ann.get('category_id')!r} not in 'categories'")
        instances.append({"bbox": [x, y, x + w, y + h], "bbox_label": labels[ann["category_id"]],
                          "ignore_flag": int(bool(ann.get("iscrowd", 0)))})
    return {"img_path": str(path), "img_id": img["id"], "width": width, "height": height,
            "instances": instances, **(extra or {})}


def check(root: Path) -> dict[str, Any]:
    root = find_root(Path(root))
    require_dir(root / "JPEGImages", f"the {TITLE} layout: {LAYOUT}")
    require_dir(root / "Annotations", f"the {TITLE} layout: {LAYOUT}")
    counts = {}
    for split in SPLITS:
        require_dir(root / "JPEGImages" / split, f"the {split} images ({LAYOUT})")
        counts[split] = len(load_coco(root / "Annotations" / f"{split}.json")["images"])
    return {"root": str(root), "classes": list(CLASSES), "splits": counts}


def read(root: Path, splits: tuple[str, ...], skip_bad: bool = False) -> dict[str, Any]:
    root = find_root(Path(root))
    bad, samples = BadSamples(skip_bad), []
    for split in splits:
        image_dir = require_dir(root / "JPEGImages" / split, f"the {split} images ({LAYOUT})")
        samples += coco_samples(root / "Annotations" / f"{split}.json", image_dir, CLASSES, bad)
    if not samples:
        raise DataLayoutError(f"{root}: no usable images in split(s) {', '.join(splits)}")
    return {"root": str(root), "classes": list(CLASSES), "samples": samples, **bad.summary()}


# -- fixture -------------------------------------------------------------------------------
def write_fixture(out: Path, seed: int = 0, counts: tuple[int, int, int] = (14, 4, 6), size: int = 128) -> Path:
    """A tiny SARDet-100K: speckled grey 3-channel JPEGs (brightness and shape per class),
    COCO jsons with 1-based ids and categories in a shuffled order with a capitalised name."""
    root = Path(out) / "SARDet_100K"
    rng = np.random.default_rng(seed)
    # Category ids deliberately not in CLASSES order: readers must map by name.
    cat_ids = {c: 10 + k for k, c in enumerate(reversed(CLASSES))}
    categories = [{"id": cat_ids[c], "name": c.capitalize() if c == "ship" else c, "supercategory": "none"}
                  for c in CLASSES]
    image_id = ann_id = 0
    for split, count in zip(SPLITS, counts):
        (root / "JPEGImages" / split).mkdir(parents=True, exist_ok=True)
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for _ in range(count):
            image_id += 1
            name = f"{image_id:07d}.jpg"
            slots = list(rng.permutation(len(CLASSES))[: int(rng.integers(3, 5))])
            img, objects = scene(rng, size, slots, rotate=False, grey=True)
            Image.fromarray(img).save(root / "JPEGImages" / split / name, quality=95)
            images.append({"id": image_id, "file_name": name, "width": size, "height": size})
            for slot, pts, _ in objects:
                ann_id += 1
                xs, ys = [p[0] for p in pts], [p[1] for p in pts]
                box = [min(xs), min(ys), round(max(xs) - min(xs), 1), round(max(ys) - min(ys), 1)]
                annotations.append({"id": ann_id, "image_id": image_id, "category_id": cat_ids[CLASSES[slot]],
                                    "bbox": box, "area": round(box[2] * box[3], 2), "iscrowd": 0})
        (root / "Annotations" / f"{split}.json").write_text(json.dumps(
            {"images": images, "annotations": annotations, "categories": categories}))
    mark_fixture(Path(out), "sardet100k", seed)
    return Path(out)


# -- task ------------------------------------------------------------------------------------
from rsbench_detection.hbb_task import CocoDetectionTask  # noqa: E402  (light: no torch)

#: One grey band: ImageNet's 0-255 statistics averaged over R, G, B.
SAR_MEAN, SAR_STD = (117.8,), (57.6,)


class SARDetTask(CocoDetectionTask):
    """Faster R-CNN + FPN on the SAR band; trained on train, tested on val or test (the
    SARDet-100K release labels all three splits)."""

    train_splits = {"test": ("train",), "val": ("train",)}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # ``-o sar_as_rgb=true`` also offers the SAR band as R,G,B (for RGB-only backbones, as the
        # paper's ImageNet baselines see it); a backbone that takes SAR is always fed the SAR band.
        if "sar" in self.modalities:
            self.modalities = ("sar",)

    @property
    def sar_as_rgb(self) -> bool:
        return self.modalities == ("hr",)

    def read(self, root: Path, splits: tuple[str, ...], skip_bad: bool) -> dict[str, Any]:
        return read(root, splits, skip_bad=skip_bad)

    def load_image(self) -> dict[str, Any]:
        # The release stores grey SAR as 3 equal channels: one band, or all three for sar_as_rgb.
        return dict(type="LoadImageFromFile", color_type="color" if self.sar_as_rgb else "grayscale")

    def data_preprocessor(self, prefix: str = "", **extra: Any) -> dict[str, Any]:
        k = 3 if self.sar_as_rgb else 1
        return dict(type=f"{prefix}DetDataPreprocessor", mean=list(SAR_MEAN) * k, std=list(SAR_STD) * k,
                    bgr_to_rgb=False, pad_size_divisor=32, **extra)

    def row_fields(self, spec: Any, backbone: Any, data: CheckedData) -> dict[str, Any]:
        fields = super().row_fields(spec, backbone, data)
        how = "replicated to R,G,B (sar_as_rgb)" if self.sar_as_rgb else "SAR band"
        fields["normalization"] = f"mean={list(SAR_MEAN)} std={list(SAR_STD)} ({how}, 0-255 grey JPEG)"
        return fields
