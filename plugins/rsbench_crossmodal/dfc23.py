"""IEEE GRSS DFC 2023 track 2 (building height from optical + SAR): reader and fixture writer.

Official layout (``track2/README.md``)::

    annotations/buildings_only_{train,val,test}.json   COCO building instances
    {train,val,test}/rgb/Pxxxx.tif                       3-band optical, 512 x 512
    {train,val,test}/sar/Pxxxx.tif                       1-band SAR, same grid
    {train,val,test}/height/Pxxxx.tif                    1-band per-pixel height (m; 0 off buildings)

``train`` must be complete (rgb, sar, height and its annotation JSON); ``val`` / ``test`` are read
when present, and a split whose ``height`` folder is missing cannot be scored (the task says so).
The fixture writes the same files at 64 px with heights that are a learnable function of the
optical roof brightness and the SAR backscatter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rsbench.errors import DataLayoutError
from rsbench.io import raster
from rsbench.io.fixtures import mark_fixture

SPLITS = ("train", "val", "test")
BANDS = {"rgb": 3, "sar": 1, "height": 1}
LAYOUT = ("annotations/buildings_only_{train,val,test}.json (COCO) + {train,val,test}/{rgb,sar,height}/Pxxxx.tif "
          "(rgb 3 bands, sar 1 band, height 1 band in m, equal square size)")


def tif_shape(path: Path, bands: int) -> tuple[int, int]:
    """(height, width) of a GeoTIFF after checking (header only) it opens and has ``bands`` bands."""
    if not path.is_file():
        raise DataLayoutError(f"{path}: missing (expected a {bands}-band GeoTIFF; layout {LAYOUT})")
    info = raster.raster_info(path)
    if info.bands != bands:
        raise DataLayoutError(f"{path}: has {info.bands} band(s); expected {bands}")
    return info.height, info.width


def read_tif(path: Path) -> np.ndarray:
    """All bands of a GeoTIFF as float32 (C, H, W)."""
    return raster.read_raster(path, channels_last=False).astype(np.float32)


def check_annotations(path: Path) -> None:
    if not path.is_file():
        raise DataLayoutError(f"{path}: missing (expected the COCO building annotations; layout {LAYOUT})")
    try:
        coco = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataLayoutError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list):
        raise DataLayoutError(f"{path}: expected a COCO object with an 'images' list")


def read_split(root: Path, split: str) -> list[dict[str, Any]]:
    """The split's tiles (id, relative paths, size); height paths only where the folder exists."""
    folder = root / split
    for kind in ("rgb", "sar"):
        if not (folder / kind).is_dir():
            raise DataLayoutError(f"{folder / kind}: folder missing; expected {LAYOUT}")
    with_height = (folder / "height").is_dir()
    if split == "train" and not with_height:
        raise DataLayoutError(f"{folder / 'height'}: folder missing; the train split needs heights")
    ids = sorted(p.stem for p in (folder / "rgb").glob("*.tif"))
    if not ids:
        raise DataLayoutError(f"{folder / 'rgb'}: no Pxxxx.tif tiles")
    rows = []
    for i in ids:
        kinds = ("rgb", "sar", "height") if with_height else ("rgb", "sar")
        shapes = {kind: tif_shape(folder / kind / f"{i}.tif", BANDS[kind]) for kind in kinds}
        if len(set(shapes.values())) != 1:
            raise DataLayoutError(f"{folder / 'sar' / (i + '.tif')}: sizes {shapes} differ within tile {i}")
        h, w = shapes["rgb"]
        if h != w:
            raise DataLayoutError(f"{folder / 'rgb' / (i + '.tif')}: {h}x{w} px; expected a square tile")
        row: dict[str, Any] = dict(id=i, rgb=f"{split}/rgb/{i}.tif", sar=f"{split}/sar/{i}.tif", size=h)
        if with_height:
            row["height"] = f"{split}/height/{i}.tif"
        rows.append(row)
    return rows


def check(root: Path) -> dict[str, Any]:
    root = Path(root)
    if not (root / "train").is_dir():
        raise DataLayoutError(f"{root / 'train'}: split folder missing; expected {LAYOUT}")
    check_annotations(root / "annotations" / "buildings_only_train.json")
    samples = {s: read_split(root, s) for s in SPLITS if (root / s).is_dir()}
    return {"root": str(root), "samples": samples, "size": samples["train"][0]["size"], "classes": []}


# -- fixture ------------------------------------------------------------------------------
def tile(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[list[int]]]:
    """One synthetic tile: (rgb uint8 (3,H,W), sar float32 (1,H,W), height float32 (1,H,W), boxes).

    Buildings are rectangles of height 3..30 m on 0 m ground; the roof is grey with brightness
    rising with height, the SAR backscatter is proportional to height (speckled), the ground is a
    green-brown texture with dark SAR: height is recoverable from either modality, best from both."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    ground = 0.35 + 0.1 * np.sin(2 * np.pi * (rng.uniform(1, 3) * xx + rng.uniform())) * np.cos(2 * np.pi * 2 * yy)
    rgb = np.stack([ground * 0.8, ground * 1.1, ground * 0.6])
    height = np.zeros((size, size), np.float32)
    boxes = []
    for _ in range(rng.integers(2, 5)):
        h, w = rng.integers(size // 8, size // 3, 2)
        y, x = rng.integers(0, size - h), rng.integers(0, size - w)
        z = rng.uniform(3, 30)
        height[y:y + h, x:x + w] = z
        rgb[:, y:y + h, x:x + w] = 0.3 + 0.6 * z / 30
        boxes.append([int(x), int(y), int(w), int(h)])
    rgb = np.clip(rgb + rng.normal(0, 0.02, rgb.shape), 0, 1)
    sar = (0.05 + height / 30) * rng.gamma(16.0, 1 / 16.0, height.shape)
    return (rgb * 255).astype(np.uint8), sar[None].astype(np.float32), height[None], boxes


def write_tif(path: Path, array: np.ndarray) -> None:
    raster.write_raster(path, array)  # the tiles carry no georeference


def write_fixture(out: Path, seed: int = 0, size: int = 64, counts: dict[str, int] | None = None) -> Path:
    """A tiny DFC23 track 2 in the official layout (ids Pxxxx numbered across splits)."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    n = 0
    for split, k in (counts or dict(train=20, val=4, test=6)).items():
        images, annotations = [], []
        for _ in range(k):
            rgb, sar, height, boxes = tile(size, rng)
            name = f"P{n:04d}"
            for kind, array in (("rgb", rgb), ("sar", sar), ("height", height)):
                write_tif(out / split / kind / f"{name}.tif", array)
            images.append(dict(id=n, file_name=f"{name}.tif", width=size, height=size))
            for x, y, w, h in boxes:
                annotations.append(dict(id=len(annotations) + 1, image_id=n, category_id=1, bbox=[x, y, w, h],
                                        area=w * h, iscrowd=0,
                                        segmentation=[[x, y, x + w, y, x + w, y + h, x, y + h]]))
            n += 1
        coco = dict(images=images, annotations=annotations, categories=[dict(id=1, name="building")])
        (out / "annotations").mkdir(parents=True, exist_ok=True)
        (out / "annotations" / f"buildings_only_{split}.json").write_text(json.dumps(coco))
    mark_fixture(out, "dfc23-t2", seed)
    return out
