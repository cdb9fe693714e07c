"""FAIR1M v1.0 (Sun et al. 2022; the SkySense fine-grained oriented detection evaluation):
15k+ RGB ``.tif`` images of 1k-10k px, 37 classes (names with spaces), oriented boxes.

Official layout: ``train/part1/{images,labelXml}``, ``train/part2/{images,labelXml}``,
``validation/{images,labelXml}``, ``test/images`` (test labels are server-only). Each XML holds
``<objects><object><possibleresult><name>`` and ``<points>`` with a closed ring of five
``<point>x,y</point>``.

The images are far larger than a detector input, so the task cuts them into overlapping patches
(mmrotate's DOTA split: 1024 px, gap 200) written beside the run, trains Oriented R-CNN on
patches and merges each image's patch detections back with rotated NMS before scoring on whole
images. ``split=validation`` is the offline number (trained on train); ``split=submission``
trains on train + validation and writes the official result XMLs of ``test`` with no metric.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image

from rsbench.errors import DataLayoutError
from rsbench.io.fixtures import mark_fixture
from rsbench.io.raster import read_rgb
from rsbench.plugin_api.checked_data import CheckedData
from rsbench_detection.annotations import BadSamples, ClassMatcher, image_size, parse_xml, require_dir
from rsbench_detection.scenes import scene

CLASSES = (
    "Passenger Ship", "Motorboat", "Fishing Boat", "Tugboat", "other-ship", "Engineering Ship",
    "Liquid Cargo Ship", "Dry Cargo Ship", "Warship",
    "Small Car", "Bus", "Cargo Truck", "Dump Truck", "other-vehicle", "Van", "Trailer", "Tractor",
    "Excavator", "Truck Tractor",
    "Boeing737", "Boeing747", "Boeing777", "Boeing787", "ARJ21", "C919", "A220", "A321", "A330", "A350",
    "other-airplane",
    "Baseball Field", "Basketball Court", "Football Field", "Tennis Court",
    "Roundabout", "Intersection", "Bridge",
)
TITLE = "FAIR1M"
#: Split -> folders holding ``images/`` (and ``labelXml/`` except for test).
SPLIT_DIRS = {"train": ("train/part1", "train/part2"), "validation": ("validation",), "test": ("test",)}
LAYOUT = ("train/part1/{images,labelXml}, train/part2/{images,labelXml}, validation/{images,labelXml}, "
          "test/images (.tif images, .xml labels; the root may be FAIR1M/ or its parent)")


def find_root(root: Path) -> Path:
    root = Path(root)
    return root / "FAIR1M" if not (root / "train").is_dir() and (root / "FAIR1M").is_dir() else root


def check(root: Path) -> dict[str, Any]:
    root = find_root(Path(root))
    counts = {}
    for split, folders in SPLIT_DIRS.items():
        counts[split] = 0
        for folder in folders:
            counts[split] += len(list(require_dir(root / folder / "images", f"the {TITLE} layout: {LAYOUT}").glob("*.tif")))
            if split != "test":
                require_dir(root / folder / "labelXml", f"the {TITLE} layout: {LAYOUT}")
    return {"root": str(root), "classes": list(CLASSES), "splits": counts}


def _point(text: str | None, where: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in (text or "").split(","))
    except ValueError:
        raise DataLayoutError(f"{where}: <point> must be 'x,y'; got {text!r}") from None
    return x, y


def objects(xml: Path, match: ClassMatcher) -> list[dict[str, Any]]:
    """Instances of one label XML: qbox corners (the first four ring points) and the label."""
    tree = parse_xml(xml)
    instances = []
    for k, obj in enumerate(tree.iter("object")):
        where = f"{xml} object {k}"
        name = obj.findtext("possibleresult/name")
        if name is None:
            raise DataLayoutError(f"{where}: missing <possibleresult><name>")
        label = match(name.strip(), where)
        pts = [_point(p.text, where) for p in obj.iter("point")]
        if len(pts) == 5 and pts[0] == pts[4]:
            pts = pts[:4]  # the release closes the ring
        if len(pts) != 4:
            raise DataLayoutError(f"{where}: expected 4 corners (5-point closed ring); got {len(pts)} points")
        instances.append({"bbox": [v for p in pts for v in p], "bbox_label": label, "ignore_flag": 0})
    return instances


def read(root: Path, splits: tuple[str, ...], skip_bad: bool = False) -> dict[str, Any]:
    """Whole-image samples (qbox corners) of ``splits``; ``test`` has images only."""
    root = find_root(Path(root))
    match, bad, samples = ClassMatcher(CLASSES), BadSamples(skip_bad), []
    for split in splits:
        for folder in SPLIT_DIRS[split]:
            image_dir = require_dir(root / folder / "images", f"the {TITLE} layout: {LAYOUT}")
            for img in sorted(image_dir.glob("*.tif")):
                try:
                    width, height = image_size(img)
                    instances = [] if split == "test" else objects(root / folder / "labelXml" / f"{img.stem}.xml", match)
                except DataLayoutError as exc:
                    bad.handle(exc)
                    continue
                samples.append({"img_path": str(img), "img_id": img.stem, "width": width, "height": height,
                                "instances": instances})
    if not samples:
        raise DataLayoutError(f"{root}: no usable .tif images in split(s) {', '.join(splits)}")
    return {"root": str(root), "classes": list(CLASSES), "samples": samples, **bad.summary()}


# -- fixture -------------------------------------------------------------------------------
def label_xml(filename: str, width: int, height: int, objs: list[tuple[str, list[tuple[float, float]]]],
              scores: list[float] | None = None) -> str:
    """A FAIR1M label XML; with ``scores`` the result-submission form (``<probability>``)."""
    parts = [f"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<annotation><source><filename>{escape(filename)}"
             "</filename><origin>GF2/GF3</origin></source>"
             f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size><objects>"]
    for k, (name, pts) in enumerate(objs):
        # Full precision: a run's own XMLs must score exactly the run's value (ties and order).
        prob = "" if scores is None else f"<probability>{float(scores[k])!r}</probability>"
        ring = "".join(f"<point>{x:.6f},{y:.6f}</point>" for x, y in [*pts, pts[0]])
        parts.append("<object><coordinate>pixel</coordinate><type>rectangle</type><description>None</description>"
                     f"<possibleresult><name>{escape(name)}</name>{prob}</possibleresult>"
                     f"<points>{ring}</points></object>")
    return "".join(parts) + "</objects></annotation>\n"


#: Fixture classes: four names with spaces or digits.
FIXTURE_CLASSES = ("Small Car", "Boeing737", "Tennis Court", "Dry Cargo Ship")


def write_fixture(out: Path, seed: int = 0, counts: tuple[int, int, int, int] = (5, 5, 4, 3),
                  size: int = 192) -> Path:
    """A tiny FAIR1M: 192 px RGB .tif images (larger than the test patch) with 5-6 rotated
    objects of four classes, in train/part1, train/part2, validation and test/images."""
    root = Path(out) / "FAIR1M"
    rng = np.random.default_rng(seed)
    n = 0
    for folder, count in zip(("train/part1", "train/part2", "validation", "test"), counts):
        (root / folder / "images").mkdir(parents=True, exist_ok=True)
        if folder != "test":
            (root / folder / "labelXml").mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            slots = [int(s) for s in rng.integers(0, len(FIXTURE_CLASSES), int(rng.integers(5, 7)))]
            img, objs = scene(rng, size, slots)
            Image.fromarray(img).save(root / folder / "images" / f"{n}.tif")
            if folder != "test":
                named = [(FIXTURE_CLASSES[s], pts) for s, pts, _ in objs]
                (root / folder / "labelXml" / f"{n}.xml").write_text(label_xml(f"{n}.tif", size, size, named))
            n += 1
    mark_fixture(Path(out), "fair1m", seed)
    return Path(out)


# -- patching ------------------------------------------------------------------------------
def starts(length: int, size: int, step: int) -> list[int]:
    """Patch origins along one axis: every ``step`` px, the last one flush with the border."""
    if length <= size:
        return [0]
    return sorted({*range(0, length - size, step), length - size})


def cut_patches(samples: list[dict[str, Any]], out: Path, size: int, overlap: int) -> list[dict[str, Any]]:
    """Write ``size`` px patches (``overlap`` px shared) of every image as PNG under ``out`` and
    return their samples. An object wholly inside a patch is a target there; one whose centre
    lies in the patch but which is cut by its border is kept as ignored (not a false positive)."""
    out.mkdir(parents=True, exist_ok=True)
    step = max(1, size - overlap)
    patches = []
    for s in samples:
        img = None  # decoded once per scene, and only where a patch is missing
        for y in starts(s["height"], size, step):
            for x in starts(s["width"], size, step):
                w, h = min(size, s["width"] - x), min(size, s["height"] - y)
                name = f"{s['img_id']}__{x}___{y}"
                path = out / f"{name}.png"
                if not path.is_file():  # via a temporary name: a killed cut leaves no partial patch
                    img = read_rgb(s["img_path"], what="a FAIR1M scene") if img is None else img
                    tmp = path.with_name(f"{name}.{os.getpid()}.tmp.png")
                    Image.fromarray(img[y:y + h, x:x + w]).save(tmp)
                    os.replace(tmp, path)
                instances = []
                for inst in s["instances"]:
                    xs, ys = np.array(inst["bbox"][0::2]) - x, np.array(inst["bbox"][1::2]) - y
                    inside = xs.min() >= 0 and ys.min() >= 0 and xs.max() <= w and ys.max() <= h
                    if inside or (0 <= xs.mean() < w and 0 <= ys.mean() < h):
                        box = [float(v) for p in zip(xs, ys) for v in p]
                        instances.append({**inst, "bbox": box, "ignore_flag": int(inst["ignore_flag"] or not inside)})
                patches.append({"img_path": str(path), "img_id": name, "width": w, "height": h,
                                "instances": instances, "ori_name": str(s["img_id"]), "patch_xy": [x, y]})
    return patches


# -- task ------------------------------------------------------------------------------------
from rsbench_detection.obb_task import OBB_OPTIONS, OrientedDetectionTask  # noqa: E402  (light: no torch)

FAIR1M_OPTIONS = dict(OBB_OPTIONS, img_size=1024, patch_size=1024, patch_overlap=200, merge_iou=0.1)
FAIR1M_METRIC = ("mAP@0.5 over classes with ground truth (%), rotated IoU on whole images after merging "
                 "patch detections (rotated NMS, -o merge_iou); mmrotate eval_rbbox_map, VOC07 11-point AP "
                 "by default (-o eval_mode=area); Oriented R-CNN le90 + FPN on 1024 px patches, gap 200")
FAIR1M_PREDICTIONS = ("a folder of FAIR1M result XMLs <image stem>.xml (the label XML with <probability> in "
                      "each <possibleresult>) for whole images in original pixels, scored without a merge")


class Fair1MTask(OrientedDetectionTask):
    """``validation``: trained on train (part1 + part2), scored offline; the merged detections
    are also written as result XMLs ``predictions/<image>.xml``. ``submission``: trained on
    train + validation, writes ``submission/<image>.xml`` for the test images; no metric."""

    train_splits = {"validation": ("train",), "submission": ("train", "validation")}

    def read(self, root: Path, splits: tuple[str, ...], skip_bad: bool) -> dict[str, Any]:
        return read(root, tuple("test" if s == "submission" else s for s in splits), skip_bad=skip_bad)

    def build_config(self, spec: Any, backbone: Any, data: CheckedData, work_dir: Path) -> dict[str, Any]:
        opts = data.options
        size, overlap = int(opts["patch_size"]), int(opts["patch_overlap"])
        if not 0 <= overlap < size:
            raise ValueError(f"patch_overlap={overlap} must be in [0, patch_size={size})")
        train = [p for p in cut_patches(data.train, work_dir / "patches" / "train", size, overlap)
                 if any(not i["ignore_flag"] for i in p["instances"])]
        test = cut_patches(data.test, work_dir / "patches" / "test", size, overlap)
        gt = {str(s["img_id"]): {"size": [s["width"], s["height"]], "instances": s["instances"]}
              for s in data.test}
        (work_dir / "annotations").mkdir(parents=True, exist_ok=True)
        (work_dir / "annotations" / "test_whole_images.json").write_text(json.dumps(gt))
        # The detector sees patches: their size is the native size its resize is capped at; the
        # derived facts (the card's plan) stay shared with ``data`` for row_fields.
        patched = replace(data, train=train, test=test, native_size=size)
        return super().build_config(spec, backbone, patched, work_dir)

    def pipelines(self, size: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        train, test = super().pipelines(size)
        pack = test[-1]
        test[-1] = dict(pack, meta_keys=(*pack["meta_keys"], "ori_name", "patch_xy"))
        return train, test

    def evaluator(self, data: CheckedData, work_dir: Path) -> dict[str, Any]:
        opts = data.options
        submission = data.split == "submission"
        return dict(type="RSBFair1MMetric", gt_file=str(work_dir / "annotations" / "test_whole_images.json"),
                    merge_iou=float(opts["merge_iou"]), eval_mode=str(opts["eval_mode"]), nproc=int(opts["nproc"]),
                    format_only=submission, outfile_dir=str(work_dir / ("submission" if submission else "predictions")),
                    dump_path=str(work_dir / "predictions.pkl"))

    def score(self, spec: Any, backbone: Any, data: CheckedData, cfg: dict[str, Any],
              predictions: Path) -> dict[str, Any]:
        """Result XMLs of whole validation images (``<image stem>.xml``, the FAIR1M submission
        form: label XML plus ``<probability>``; original pixels) scored by the run's own
        ``RSBFair1MMetric`` on the whole-image ground truth. The generic loop does not fit: the
        run's test samples are patches whose detections the metric merges (rotated NMS), and
        whole-image predictions must be scored as they are, not merged again, so they go
        straight to :meth:`~rsbench_detection.metrics.Fair1MMetric.evaluate_whole_images`."""
        import importlib

        from mmengine.logging import MMLogger

        from rsbench.errors import PredictionError
        from rsbench.run.scoring import MissingPrediction
        from rsbench_detection.obb_task import rboxes
        from rsbench_detection.predictions import read_fair1m_xml

        if data.split == "submission":
            raise PredictionError("split 'submission' has no labels (the FAIR1M test split is scored by the "
                                  "benchmark server); score split 'validation'")
        folder = Path(predictions)
        if not folder.is_dir():
            raise PredictionError(f"--predictions {folder}: expected a folder of FAIR1M result XMLs <image stem>.xml")
        for module in self.imports:
            importlib.import_module(module)
        from rsbench_detection.metrics import Fair1MMetric

        MMLogger.get_instance(f"rsbench-score-fair1m-{id(data)}", log_level="WARNING")  # quiet AP table
        kwargs = {k: v for k, v in cfg["test_evaluator"].items() if k != "type"}
        metric = Fair1MMetric(**dict(kwargs, outfile_dir=None))  # score, do not write XMLs again
        classes = list(data.classes)
        metric.dataset_meta = {"classes": classes}
        dets, missing = {}, []
        for s in data.test:
            name = str(s["img_id"])
            try:
                det = read_fair1m_xml(folder, name, classes)
            except MissingPrediction as exc:
                missing.append(str(exc))
                continue
            rbox = rboxes(det.boxes).numpy()
            both = np.hstack([rbox, det.scores.astype(np.float32)[:, None]]).astype(np.float32)
            dets[name] = [both[det.labels == c] for c in range(len(classes))]
        if missing:
            more = f" (and {len(missing) - 1} more of {len(data.test)} samples)" if len(missing) > 1 else ""
            raise PredictionError(f"{folder}: missing prediction {missing[0]}{more}")
        return {f"{metric.prefix}/{k}": v for k, v in metric.evaluate_whole_images(dets).items()}

    def metric_value(self, metrics: dict[str, Any]) -> float | None:  # type: ignore[override]
        """``None`` for the submission split: the runner then writes an empty value."""
        if not metrics:
            return None
        return super().metric_value(metrics)

    def row_fields(self, spec: Any, backbone: Any, data: CheckedData) -> dict[str, Any]:
        fields = super().row_fields(spec, backbone, data)
        opts = data.options
        fields["adapter"] += (f"; patches {opts['patch_size']} px overlap {opts['patch_overlap']}, "
                              f"merged by rotated NMS {opts['merge_iou']}")
        if data.split == "submission":
            fields["adapter"] += "; submission: result XMLs of test written, no metric (server-only labels)"
        return fields
