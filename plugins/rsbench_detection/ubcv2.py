"""UBCv2 (Urban Building Classification v2; the MaRS RGB+SAR roof detection evaluation): VHR
optical tiles with finely registered SAR, building polygons with 12 fine-grained roof classes,
COCO instance json, COCO AP.

Layout read here (the MaRS UBCv2 config's ``data_root``; file names as the DFC23 track-1
release of the RGB+SAR pack)::

    annotations/roof_fine_{train,val}_single_category.json   (MaRS protocol: one class, "roof")
    annotations/roof_fine_{train,val}.json                   (12 fine roof classes)
    images/{train,val}/rgb/<file_name>                       (optical, 3 bands)
    images/{train,val}/sar/<file_name>                       (registered SAR, 1 band)

    images/{train,val}/merge/<file_name>                     (or: the MaRS config's 4-band R, G, B, SAR tifs)

The reader pairs each COCO image's optical file with the SAR file of the same name (a missing
partner is a layout error naming it). Where a split has only ``merge/``, each 4-band tif is split
back into R, G, B and SAR on reading, so the backbone's dict input gets the same two modalities.
Only the MaRS released protocol has a val split with labels: train on train, score on val.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from rsbench.errors import DataLayoutError, SpecError
from rsbench.io.fixtures import mark_fixture
from rsbench.io.raster import raster_info, read_raster, read_rgb, write_geotiff
from rsbench.plugin_api.checked_data import CheckedData
from rsbench_detection.annotations import BadSamples, image_size, require_dir
from rsbench_detection.sardet import coco_samples

#: UBCv2 fine roof codes [V UBCv2 README]: flat, gable, gambrel, row, multiple-eave, hipped-1,
#: hipped-2, mansard, pyramid, arched, revolved, other (expansions probable, not official).
CLASSES = ("FL", "GA", "GM", "RO", "ME", "H1", "H2", "MA", "PM", "AR", "RE", "OT")
#: The MaRS protocol (``*_single_category.json``): every roof is one class.
SINGLE = ("roof",)
SPLITS = ("train", "val")
TITLE = "UBCv2"
LAYOUT = ("annotations/roof_fine_{train,val}[_single_category].json (COCO) and "
          "images/{train,val}/{rgb,sar}/<file_name> (optical + registered SAR, same names) or "
          "images/{train,val}/merge/<file_name> (4-band R, G, B, SAR); "
          "the root may be UBCv2/ or its parent")


def find_root(root: Path) -> Path:
    root = Path(root)
    return root / "UBCv2" if not (root / "annotations").is_dir() and (root / "UBCv2").is_dir() else root


def ann_path(root: Path, split: str, categories: str) -> Path:
    if categories not in ("single", "fine"):
        raise ValueError(f"categories={categories!r}; expected 'single' (MaRS protocol) or 'fine' (12 roof classes)")
    suffix = "_single_category" if categories == "single" else ""
    return root / "annotations" / f"roof_fine_{split}{suffix}.json"


def classes_of(categories: str) -> tuple[str, ...]:
    return SINGLE if categories == "single" else CLASSES


def _single_names(path: Path) -> tuple[str, ...]:
    """The single-category release's own category name is not documented: whatever categories
    a ``*_single_category.json`` declares are all read as ``roof``."""
    from rsbench_detection.sardet import load_coco

    names = tuple(dict.fromkeys(str(c.get("name")) for c in load_coco(path)["categories"] if isinstance(c, dict)))
    if not names:
        raise DataLayoutError(f"{path}: no categories — expected the single roof category")
    return names


def read(root: Path, splits: tuple[str, ...], skip_bad: bool = False, categories: str = "single") -> dict[str, Any]:
    """Middle-format samples: ``img_path`` = the optical file, ``sar_path`` = its SAR partner."""
    root = find_root(Path(root))
    bad, samples = BadSamples(skip_bad), []
    for split in splits:
        merged = _merged(root, split)
        rgb_dir = merged or require_dir(root / "images" / split / "rgb", f"the {split} optical images ({LAYOUT})")
        sar_dir = merged or require_dir(root / "images" / split / "sar", f"the {split} SAR images ({LAYOUT})")
        path = ann_path(root, split, categories)
        if not path.is_file():
            raise DataLayoutError(f"{path}: annotation file missing — expected a COCO json ({LAYOUT})")
        names = _single_names(path) if categories == "single" else CLASSES
        for s in coco_samples(path, rgb_dir, names, bad):
            if categories == "single":
                s["instances"] = [{**i, "bbox_label": 0} for i in s["instances"]]
            sar = sar_dir / Path(s["img_path"]).name
            try:
                samples.append(_merged_sample(s) if merged else _paired(s, sar))
            except DataLayoutError as exc:
                bad.handle(exc)
    if not samples:
        raise DataLayoutError(f"{root}: no usable images in split(s) {', '.join(splits)}")
    return {"root": str(root), "classes": list(classes_of(categories)), "samples": samples, **bad.summary()}


def _merged(root: Path, split: str) -> Path | None:
    """The split's ``merge/`` folder when it has no separate ``rgb/`` and ``sar/`` folders."""
    images = root / "images" / split
    if (images / "rgb").is_dir() or (images / "sar").is_dir() or not (images / "merge").is_dir():
        return None
    return images / "merge"


def _merged_sample(sample: dict[str, Any]) -> dict[str, Any]:
    """A ``merge/`` sample: one 4-band file is both the optical and the SAR source."""
    bands = raster_info(sample["img_path"]).bands
    if bands != 4:
        raise DataLayoutError(f"{sample['img_path']}: {bands} band(s); a merge/ tif holds 4 (R, G, B, SAR)")
    return {**sample, "sar_path": sample["img_path"]}


def _paired(sample: dict[str, Any], sar: Path) -> dict[str, Any]:
    """The sample with its SAR partner: same file name, same size (registered), or an error."""
    if not sar.is_file():
        raise DataLayoutError(f"{sar}: SAR image missing on disk (partner of {sample['img_path']})")
    size = image_size(sar)
    if size != (sample["width"], sample["height"]):
        raise DataLayoutError(f"{sar}: SAR size {size} differs from the optical "
                              f"{(sample['width'], sample['height'])} — expected registered pairs")
    return {**sample, "sar_path": str(sar)}


def check(root: Path) -> dict[str, Any]:
    root = find_root(Path(root))
    require_dir(root / "annotations", f"the {TITLE} layout: {LAYOUT}")
    counts = {}
    for split in SPLITS:
        for modality in () if _merged(root, split) else ("rgb", "sar"):
            require_dir(root / "images" / split / modality, f"the {split} {modality} images ({LAYOUT})")
        path = ann_path(root, split, "single")
        if not path.is_file():
            raise DataLayoutError(f"{path}: annotation file missing — expected a COCO json ({LAYOUT})")
        try:
            counts[split] = len(json.loads(path.read_text())["images"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataLayoutError(f"{path}: not a COCO json with 'images' ({exc})") from exc
    return {"root": str(root), "classes": list(CLASSES), "splits": counts}


def load_pair(rgb_path: str, sar_path: str) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) float32 optical in 0-255 and (H, W, 1) float32 SAR in the file's units (one
    4-band ``merge/`` tif when both paths are the same file)."""
    if rgb_path == sar_path:
        bands = read_raster(rgb_path).astype(np.float32)
        return bands[..., :3], bands[..., 3:4]
    return read_rgb(rgb_path).astype(np.float32), read_raster(sar_path)[..., :1].astype(np.float32)


# -- fixture -------------------------------------------------------------------------------
#: Fixture roofs: (fine class, RGB colour, SAR backscatter, width, height) — bright double-bounce
#: in SAR where the optical roof is, so both modalities carry the signal.
ROOFS = (("FL", (200, 200, 205), 2.5, 14, 14), ("GA", (190, 70, 50), 1.8, 18, 10), ("H1", (90, 90, 200), 1.2, 10, 18))


def write_fixture(out: Path, seed: int = 0, counts: tuple[int, int] = (12, 4), size: int = 64,
                  merged: bool = False) -> Path:
    """A tiny UBCv2: RGB uint8 tifs with 2-3 coloured roof polygons, float32 SAR tifs (speckled,
    mean about 0.26 like the MaRS statistics) with the same roofs bright, COCO jsons in both the
    fine (category ids out of order) and the single-category variant, with polygon segmentation.
    ``merged``: the same pixels as 4-band float32 ``merge/`` tifs (R, G, B, SAR) instead."""
    root = Path(out) / "UBCv2"
    rng = np.random.default_rng(seed)
    fine_ids = {c: 30 - k for k, c in enumerate(CLASSES)}
    fine_cats = [{"id": fine_ids[c], "name": c, "supercategory": "roof"} for c in CLASSES]
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    image_id = ann_id = 0
    for split, count in zip(SPLITS, counts):
        for modality in ("merge",) if merged else ("rgb", "sar"):
            (root / "images" / split / modality).mkdir(parents=True, exist_ok=True)
        images, fine, single = [], [], []
        for _ in range(count):
            image_id += 1
            name = f"P{image_id:04d}.tif"
            rgb = Image.fromarray(rng.normal(70, 10, (size, size, 3)).clip(0, 255).astype(np.uint8))
            sar = Image.fromarray(np.zeros((size, size), np.float32), mode="F")
            draw_rgb, draw_sar = ImageDraw.Draw(rgb), ImageDraw.Draw(sar)
            boxes: list[tuple[float, float, float, float]] = []
            for k in rng.permutation(len(ROOFS))[: int(rng.integers(2, 4))]:
                cls, colour, backscatter, w, h = ROOFS[int(k)]
                for _ in range(50):
                    x, y = (float(v) for v in rng.integers(2, size - max(w, h) - 2, 2))
                    if all(x + w + 3 < a or a + c + 3 < x or y + h + 3 < b or b + d + 3 < y for a, b, c, d in boxes):
                        break
                else:
                    continue
                boxes.append((x, y, w, h))
                poly = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
                draw_rgb.polygon(poly, fill=colour)
                draw_sar.polygon(poly, fill=backscatter)
                ann_id += 1
                seg = [float(v) for p in poly for v in p]
                ann = {"id": ann_id, "image_id": image_id, "bbox": [x, y, float(w), float(h)], "area": float(w * h),
                       "segmentation": [seg], "iscrowd": 0}
                fine.append({**ann, "category_id": fine_ids[cls]})
                single.append({**ann, "category_id": 1})
            speckle = rng.gamma(4.0, 0.25, (size, size)).astype(np.float32)
            sar_arr = (np.asarray(sar, dtype=np.float32) + 0.26) * speckle
            if merged:
                _write_merged(root / "images" / split / "merge" / name, np.asarray(rgb), sar_arr)
            else:
                rgb.save(root / "images" / split / "rgb" / name)
                Image.fromarray(sar_arr, mode="F").save(root / "images" / split / "sar" / name)
            images.append({"id": image_id, "file_name": name, "width": size, "height": size})
        (root / "annotations" / f"roof_fine_{split}.json").write_text(json.dumps(
            {"images": images, "annotations": fine, "categories": fine_cats}))
        (root / "annotations" / f"roof_fine_{split}_single_category.json").write_text(json.dumps(
            {"images": images, "annotations": single, "categories": [{"id": 1, "name": "building"}]}))
    mark_fixture(Path(out), "ubcv2", seed)
    return Path(out)


def _write_merged(path: Path, rgb: np.ndarray, sar: np.ndarray) -> None:
    stack = np.concatenate([rgb.astype(np.float32), sar[..., None].astype(np.float32)], axis=-1)
    write_geotiff(path, np.moveaxis(stack, -1, 0))


# -- task ------------------------------------------------------------------------------------
from rsbench_detection.det_task import RGB_MEAN, RGB_STD  # noqa: E402  (light: no torch)
from rsbench_detection.hbb_task import COCO_OPTIONS, CocoDetectionTask  # noqa: E402

#: MaRS UBCv2 config normalisation: ImageNet RGB (0-255) and the SAR band's own statistics.
SAR_MEAN, SAR_STD = (0.2634,), (0.5957,)
STATS = {"hr": (RGB_MEAN, RGB_STD), "sar": (SAR_MEAN, SAR_STD)}
BANDS = {"hr": 3, "sar": 1}

#: MaRS UBCv2 config: resize to 512 (keep ratio), batch 4.
UBC_OPTIONS = dict(COCO_OPTIONS, img_size=512, batch_size=4, categories="single", detector="faster")
UBC_METRIC = ("COCO bbox mAP@[.5:.95] (%), mmdet CocoMetric / pycocotools COCOeval (100 detections per image) "
              "against the val split's ground truth re-written as COCO json; categories=single (MaRS "
              "protocol: one roof class) or fine (12 roof classes); Faster R-CNN + FPN by default "
              "(-o detector=cascade: Cascade R-CNN, the MaRS config's detector, bbox only, no mask head)")


class UBCv2Task(CocoDetectionTask):
    """RGB+SAR roof detection: the fed modalities are stacked as channels through mmdet's
    transforms and split back into ``{"hr", "sar"}`` before the backbone (``RSBFasterRCNN``);
    optical-only backbones get ``hr`` alone (recorded in the row's adapter)."""

    train_splits = {"val": ("train",)}
    imports = (*CocoDetectionTask.imports, "rsbench_detection.ubcv2_mm")
    _categories = "single"

    def check_data(self, root: Path, spec: Any) -> CheckedData:
        self._categories = str(spec.options["categories"])
        if self._categories not in ("single", "fine"):
            raise SpecError(f"-o categories={self._categories!r}; expected 'single' (MaRS protocol) or 'fine'")
        return super().check_data(root, spec)

    def read(self, root: Path, splits: tuple[str, ...], skip_bad: bool) -> dict[str, Any]:
        return read(root, splits, skip_bad=skip_bad, categories=self._categories)

    def load_image(self) -> dict[str, Any]:
        # Normalised in the loader (the MaRS config's pipeline Normalize): mmengine's data
        # preprocessor accepts only 1 or 3 means, and R, G, B, SAR are 4.
        return dict(type="RSBLoadOpticalSAR", modalities=list(self.modalities),
                    mean=[v for m in self.modalities for v in STATS[m][0]],
                    std=[v for m in self.modalities for v in STATS[m][1]])

    def data_preprocessor(self, prefix: str = "", **extra: Any) -> dict[str, Any]:
        return dict(type=f"{prefix}DetDataPreprocessor", mean=None, std=None, bgr_to_rgb=False,
                    pad_size_divisor=32, **extra)

    def model(self, spec: Any, backbone: Any, data: CheckedData) -> dict[str, Any]:
        model = super().model(spec, backbone, data)
        detector = str(data.options["detector"])
        if detector not in ("faster", "cascade"):
            raise ValueError(f"detector={detector!r}; expected 'faster' or 'cascade'")
        model["modalities"] = [[m, BANDS[m]] for m in self.modalities]
        if detector == "faster":
            model["type"] = "RSBFasterRCNN"
            return model
        return cascade(model)

    def row_fields(self, spec: Any, backbone: Any, data: CheckedData) -> dict[str, Any]:
        fields = super().row_fields(spec, backbone, data)
        fields["normalization"] = "; ".join(f"{m}: mean={list(STATS[m][0])} std={list(STATS[m][1])}"
                                            for m in self.modalities) + " (MaRS UBCv2 config)"
        fed = "+".join(f"{m}({BANDS[m]})" for m in self.modalities)
        fields["adapter"] = (f"{fed} stacked, split to a dict before the backbone; {data.options['detector']} "
                             f"R-CNN; " + fields["adapter"])
        return fields


def cascade(faster: dict[str, Any]) -> dict[str, Any]:
    """mmdet's 3-stage Cascade R-CNN (IoU 0.5/0.6/0.7, stage weights 1/0.5/0.25, class-agnostic
    regression with tightening target stds) from the Faster R-CNN config's parts."""
    roi, train = faster["roi_head"], faster["train_cfg"]
    stds = ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])
    heads = [dict(roi["bbox_head"], reg_class_agnostic=True,
                  bbox_coder=dict(roi["bbox_head"]["bbox_coder"], target_stds=s)) for s in stds]
    rcnn = [dict(train["rcnn"], assigner=dict(train["rcnn"]["assigner"], pos_iou_thr=t, neg_iou_thr=t, min_pos_iou=t))
            for t in (0.5, 0.6, 0.7)]
    return dict(faster, type="RSBCascadeRCNN",
                roi_head=dict(type="CascadeRoIHead", num_stages=3, stage_loss_weights=[1, 0.5, 0.25],
                              bbox_roi_extractor=roi["bbox_roi_extractor"], bbox_head=heads),
                train_cfg=dict(train, rcnn=rcnn))
