"""DFC25 track 2 = BRIGHT (Chen et al. 2025): building damage from optical pre-event and SAR
post-event images, GeoTIFF 1024x1024 at 0.3-1 m.

Official release layout (``dfc25_track2_trainval``; torchgeo's ``BRIGHTDFC2025`` reads the same)::

    {train,val,test}/pre-event/<event>_<8 digits>_pre_disaster.tif    3 bands, uint8 optical
    {train,val,test}/post-event/<event>_<8 digits>_post_disaster.tif  1 band SAR
    {train,val,test}/target/<event>_<8 digits>_building_damage.tif    0 bg, 1 intact, 2 damaged, 3 destroyed
    {train,holdout,val,test}_setlevel.txt                            one <event>_<id> per line

``train/`` holds the train and holdout ids; the val and test ids come without targets, so they
are scored by the evaluation server: rsbench writes their predictions with ``--split submission``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rsbench.errors import DataLayoutError
from rsbench.io.fixtures import mark_fixture
from rsbench.io.raster import write_geotiff
from rsbench_change import synth
from rsbench_change.io import check_same_grid, label_values, raster_shape

FOLDER = "dfc25_track2_trainval"
CLASSES = ("background", "intact", "damaged", "destroyed")
LISTS = ("train", "holdout", "val", "test")
IMAGE_DIRS = ("train", "val", "test")
TITLE = "DFC25 track 2 (BRIGHT)"
LAYOUT = ("{train,val,test}/{pre-event,post-event,target}/<event>_<id>_{pre_disaster,post_disaster,"
          "building_damage}.tif + {train,holdout,val,test}_setlevel.txt (root may be dfc25_track2_trainval/ or its parent)")


def find_root(root: Path) -> Path:
    return root / FOLDER if not (root / "train_setlevel.txt").is_file() and (root / FOLDER).is_dir() else root


def locate(root: Path, sid: str, lst: Path) -> dict[str, Any]:
    for d in IMAGE_DIRS:
        pre = root / d / "pre-event" / f"{sid}_pre_disaster.tif"
        if pre.is_file():
            break
    else:
        raise DataLayoutError(f"{sid} (listed in {lst}): no {{train,val,test}}/pre-event/{sid}_pre_disaster.tif under {root}")
    post = root / d / "post-event" / f"{sid}_post_disaster.tif"
    target = root / d / "target" / f"{sid}_building_damage.tif"
    shapes = [(pre, raster_shape(pre)), (post, raster_shape(post))]
    has_target = target.is_file()
    if has_target:
        shapes.append((target, raster_shape(target)))
        label_values(target, range(len(CLASSES)))
    check_same_grid(shapes, (3, 1, 1))
    return dict(id=str(pre), dates=[[str(pre)], [str(post)]], label=str(target) if has_target else None)


def check(root: Path) -> dict[str, Any]:
    root = find_root(Path(root))
    splits: dict[str, list[dict[str, Any]]] = {}
    for name in LISTS:
        lst = root / f"{name}_setlevel.txt"
        if lst.is_file():
            ids = [line.strip() for line in lst.read_text().splitlines() if line.strip()]
            splits[name] = [locate(root, sid, lst) for sid in ids]
        elif name in ("train", "holdout"):
            raise DataLayoutError(f"{lst}: missing split list; {TITLE} expects {LAYOUT}")
    unlabeled = [n for n in ("test", "val") if n in splits]
    return dict(root=str(root), classes=list(CLASSES), splits=splits, label_map=None,
                date_modalities=["hr", "sar"], hr_uint8=True, submission_split=unlabeled[0] if unlabeled else "holdout")


TRAIN = [f"bata-explosion_{i:08d}" for i in (3, 14, 21, 47, 49)] + [f"hawaii-wildfire_{i:08d}" for i in (5, 8, 12)]
HOLDOUT = [f"turkey-earthquake_{i:08d}" for i in (101, 413, 420)]
VAL = [f"val-disaster_{i:08d}" for i in (1, 2)]


def damage_scene(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(optical (H, W, 3) uint8, SAR (H, W, 1) uint8, target (H, W) uint8): buildings visible in the
    optical image; their SAR brightness after the event tells intact (bright), damaged (medium)
    and destroyed (dark)."""
    opt = synth.background(rng, (size, size), 3)
    sar = np.clip(0.3 + rng.normal(0, 0.05, (size, size, 1)), 0, 1)
    target = np.zeros((size, size), np.uint8)
    roof = rng.uniform(0.8, 0.95, 3)
    for box in synth.boxes(rng, (size, size), 6):
        cls = int(rng.integers(1, 4))
        synth.paint(opt, box, roof)
        synth.paint(sar, box, {1: 0.9, 2: 0.6, 3: 0.05}[cls])
        synth.paint(target, box, cls)
    return synth.to_uint8(opt), synth.to_uint8(sar), target


def write_fixture(out: Path, seed: int = 0, size: int = 64) -> Path:
    """A tiny release: 8 train + 3 holdout ids with targets, 2 val ids without."""
    rng = np.random.default_rng(seed)
    root = Path(out) / FOLDER

    def tif(path: Path, arr: np.ndarray) -> None:
        bands = arr if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
        write_geotiff(path, bands.astype(np.uint8), crs="EPSG:4326", gsd=1e-5)

    for name, ids, folder, with_target in (("train", TRAIN, "train", True), ("holdout", HOLDOUT, "train", True),
                                           ("val", VAL, "val", False)):
        root.mkdir(parents=True, exist_ok=True)
        (root / f"{name}_setlevel.txt").write_text("".join(f"{i}\n" for i in ids))
        for sid in ids:
            opt, sar, target = damage_scene(rng, size)
            tif(root / folder / "pre-event" / f"{sid}_pre_disaster.tif", opt)
            tif(root / folder / "post-event" / f"{sid}_post_disaster.tif", sar)
            if with_target:
                tif(root / folder / "target" / f"{sid}_building_damage.tif", target)
    mark_fixture(Path(out), "dfc25-t2", seed)
    return Path(out)
