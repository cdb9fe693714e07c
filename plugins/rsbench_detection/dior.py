"""DIOR / DIOR-R (Li et al. 2020; Cheng et al. 2022): 23,463 800x800 JPEGs, 20 classes.

Official layout (one root serves both tasks):
``JPEGImages-trainval/<id>.jpg``, ``JPEGImages-test/<id>.jpg``,
``Annotations/Horizontal Bounding Boxes/<id>.xml`` (VOC ``<bndbox>``),
``Annotations/Oriented Bounding Boxes/<id>.xml`` (``<robndbox>`` with four corners and ``<angle>``),
``ImageSets/Main/{train,val,test}.txt`` (5-digit ids). Class spellings in the XMLs vary
(``Expressway-Service-area``), so names are matched case- and hyphen-insensitively against
mmrotate's lower-case order below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image

from rsbench.errors import DataLayoutError
from rsbench.io.fixtures import mark_fixture
from rsbench_detection.annotations import BadSamples, ClassMatcher, image_size, number, parse_xml, require_dir
from rsbench_detection.scenes import scene

CLASSES = (
    "airplane", "airport", "baseballfield", "basketballcourt", "bridge", "chimney",
    "expressway-service-area", "expressway-toll-station", "dam", "golffield", "groundtrackfield",
    "harbor", "overpass", "ship", "stadium", "storagetank", "tenniscourt", "trainstation",
    "vehicle", "windmill",
)
#: XML spellings the fixture writes, as in the release (mixed case and hyphens).
XML_NAMES = {"expressway-service-area": "Expressway-Service-area",
             "expressway-toll-station": "Expressway-toll-station"}
TITLE = "DIOR"
HBB_DIR = "Annotations/Horizontal Bounding Boxes"
OBB_DIR = "Annotations/Oriented Bounding Boxes"
LAYOUT = ("JPEGImages-trainval/, JPEGImages-test/ (<id>.jpg, 800x800), "
          f"'{HBB_DIR}/<id>.xml' (VOC bndbox), '{OBB_DIR}/<id>.xml' (robndbox corners + angle), "
          "ImageSets/Main/{train,val,test}.txt (the root may be DIOR/ or its parent)")
SPLITS = ("train", "val", "test")


def find_root(root: Path) -> Path:
    root = Path(root)
    return root / "DIOR" if not (root / "ImageSets").is_dir() and (root / "DIOR").is_dir() else root


def split_ids(root: Path, split: str) -> list[str]:
    path = root / "ImageSets" / "Main" / f"{split}.txt"
    if not path.is_file():
        raise DataLayoutError(f"{path}: split file missing — expected ImageSets/Main/{split}.txt of image ids "
                              f"(the {TITLE} layout: {LAYOUT})")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def check(root: Path) -> dict[str, Any]:
    """Check folders and split files; annotations are read by :func:`read` per task."""
    root = find_root(Path(root))
    for folder in ("JPEGImages-trainval", "JPEGImages-test", "ImageSets/Main"):
        require_dir(root / folder, f"the {TITLE} layout: {LAYOUT}")
    if not (root / HBB_DIR).is_dir() and not (root / OBB_DIR).is_dir():
        raise DataLayoutError(f"{root / 'Annotations'}: neither '{HBB_DIR}' nor '{OBB_DIR}' found")
    return {"root": str(root), "classes": list(CLASSES),
            "splits": {s: len(split_ids(root, s)) for s in SPLITS}}


def image_path(root: Path, split: str, image_id: str) -> Path:
    return root / ("JPEGImages-test" if split == "test" else "JPEGImages-trainval") / f"{image_id}.jpg"


def _objects(xml: Path, oriented: bool, match: ClassMatcher) -> list[dict[str, Any]]:
    tree = parse_xml(xml)
    instances = []
    for k, obj in enumerate(tree.iter("object")):
        where = f"{xml} object {k}"
        name = obj.findtext("name")
        if name is None:
            raise DataLayoutError(f"{where}: missing <name>")
        label = match(name, where)
        if oriented:
            box = obj.find("robndbox")
            if box is None:
                raise DataLayoutError(f"{where}: missing <robndbox> (expected 4 corners)")
            bbox = [number(box, f"{axis}_{corner}", where)
                    for corner in ("left_top", "right_top", "right_bottom", "left_bottom")
                    for axis in ("x", "y")]
        else:
            box = obj.find("bndbox")
            if box is None:
                raise DataLayoutError(f"{where}: missing <bndbox>")
            bbox = [number(box, t, where) for t in ("xmin", "ymin", "xmax", "ymax")]
            if bbox[2] <= bbox[0] or bbox[3] <= bbox[1]:
                raise DataLayoutError(f"{where}: empty box {bbox}")
        difficult = obj.findtext("difficult", "0").strip() == "1"
        instances.append({"bbox": bbox, "bbox_label": label, "ignore_flag": int(difficult)})
    return instances


def read(root: Path, splits: tuple[str, ...], oriented: bool, skip_bad: bool = False) -> dict[str, Any]:
    """Samples of ``splits`` in mmengine's middle format (qbox corners when ``oriented``)."""
    root = find_root(Path(root))
    ann_dir = require_dir(root / (OBB_DIR if oriented else HBB_DIR), f"{TITLE} XML annotations")
    match, bad, samples = ClassMatcher(CLASSES), BadSamples(skip_bad), []
    for split in splits:
        for image_id in split_ids(root, split):
            try:
                img = image_path(root, split, image_id)
                width, height = image_size(img)
                instances = _objects(ann_dir / f"{image_id}.xml", oriented, match)
            except DataLayoutError as exc:
                bad.handle(exc)
                continue
            samples.append({"img_path": str(img), "img_id": image_id, "width": width, "height": height,
                            "instances": instances})
    if not samples:
        raise DataLayoutError(f"{root}: no usable images in split(s) {', '.join(splits)}")
    return {"root": str(root), "classes": list(CLASSES), "samples": samples, **bad.summary()}


# -- fixture -------------------------------------------------------------------------------
def _xml(image_id: str, size: int, objects: list[tuple[int, list[tuple[float, float]], float]],
         oriented: bool) -> str:
    parts = [f"<annotation><filename>{image_id}.jpg</filename><source><database>DIOR</database></source>"
             f"<size><width>{size}</width><height>{size}</height><depth>3</depth></size>"]
    for label, pts, angle in objects:
        name = escape(XML_NAMES.get(CLASSES[label], CLASSES[label]))
        head = (f"<object>{'<type>robndbox</type>' if oriented else ''}<name>{name}</name>"
                "<pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>")
        if oriented:
            names = ("left_top", "right_top", "right_bottom", "left_bottom")
            box = "".join(f"<x_{n}>{x:g}</x_{n}><y_{n}>{y:g}</y_{n}>" for n, (x, y) in zip(names, pts))
            parts.append(f"{head}<robndbox>{box}</robndbox><angle>{angle:g}</angle></object>")
        else:
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            box = (f"<xmin>{int(min(xs))}</xmin><ymin>{int(min(ys))}</ymin>"
                   f"<xmax>{int(np.ceil(max(xs)))}</xmax><ymax>{int(np.ceil(max(ys)))}</ymax>")
            parts.append(f"{head}<bndbox>{box}</bndbox></object>")
    return "".join(parts) + "</annotation>\n"


#: Fixture classes: airplane, expressway-service-area (mixed-case spelling), ship, vehicle.
FIXTURE_CLASSES = (0, 6, 13, 18)


def write_fixture(out: Path, seed: int = 0, counts: tuple[int, int, int] = (10, 4, 6), size: int = 128) -> Path:
    """A tiny DIOR: 128 px JPEGs with 3-4 objects of four classes, both annotation kinds."""
    root = Path(out) / "DIOR"
    rng = np.random.default_rng(seed)
    for folder in ("JPEGImages-trainval", "JPEGImages-test", HBB_DIR, OBB_DIR, "ImageSets/Main"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    n = 0
    for split, count in zip(SPLITS, counts):
        ids = []
        for _ in range(count):
            n += 1
            image_id = f"{n:05d}"
            slots = list(rng.permutation(len(FIXTURE_CLASSES))[: int(rng.integers(3, 5))])
            img, objects = scene(rng, size, slots)
            objects = [(FIXTURE_CLASSES[s], pts, a) for s, pts, a in objects]
            Image.fromarray(img).save(image_path(root, split, image_id), quality=95)
            (root / OBB_DIR / f"{image_id}.xml").write_text(_xml(image_id, size, objects, True))
            (root / HBB_DIR / f"{image_id}.xml").write_text(_xml(image_id, size, objects, False))
            ids.append(image_id)
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
    mark_fixture(Path(out), "dior", seed)
    return Path(out)


# -- tasks -----------------------------------------------------------------------------------
from rsbench_detection.hbb_task import HorizontalDetectionTask  # noqa: E402  (light: no torch)
from rsbench_detection.obb_task import OrientedDetectionTask  # noqa: E402

#: The DIOR protocol (mmrotate config, SkySense): train on train + val, test on test.
DIOR_TRAIN_SPLITS = {"test": ("train", "val"), "val": ("train",)}


class DiorRTask(OrientedDetectionTask):
    train_splits = DIOR_TRAIN_SPLITS

    def read(self, root: Path, splits: tuple[str, ...], skip_bad: bool) -> dict[str, Any]:
        return read(root, splits, oriented=True, skip_bad=skip_bad)


class DiorTask(HorizontalDetectionTask):
    train_splits = DIOR_TRAIN_SPLITS

    def read(self, root: Path, splits: tuple[str, ...], skip_bad: bool) -> dict[str, Any]:
        return read(root, splits, oriented=False, skip_bad=skip_bad)
