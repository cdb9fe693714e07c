"""WHU-CD (Ji et al. 2019), building change: one aerial pair (2012/2016) of 32507x15354 px at 0.3 m.

Two layouts are read; which one a run used is its *split protocol*, recorded in the row:

* ``repack``: the common 256-px re-pack of open-cd / BIT_CD: ``WHU-CD-256/{A,B,label}/<tile>.png``
  plus ``list/{train,val,test}.txt`` (one file name per line), labels 0/255 — random tiles, so
  its test set is not the official test area.
* ``official``: the release itself (``Building change detection dataset_add.zip``), folder
  ``1. The two-period image data/``: ``{2012,2016}/whole_image/{train,test}/image/<one>.tif`` (the
  whole train and test areas, RGB) and ``change_label/{train,test}/change_label.tif`` (one band,
  0/255; 0/1 is accepted too and recorded). There is no official val split. A scene is far too
  large to be one sample, so each split scene is tiled into ``tile`` px windows without overlap
  (the last row and column are narrower): every pixel is evaluated exactly once, and the
  windows are read from the GeoTIFFs with windowed reads.

``split_protocol`` (task option) picks one: ``auto`` takes the re-pack where it exists, else
the official release.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rsbench.errors import DataLayoutError, SpecError
from rsbench.io.fixtures import mark_fixture
from rsbench.io.raster import write_geotiff
from rsbench_change import synth
from rsbench_change.io import TIF_SUFFIXES, check_same_grid, raster_shape, raster_values
from rsbench_change.pairs import BINARY_CLASSES, LABEL_MAP, scan_list, write_pair

FOLDER = "WHU-CD-256"
TITLE = "WHU-CD (256 re-pack)"
SPLITS = ("train", "val", "test")
#: The official release: the zip's folder and the image-data folder inside it.
RELEASE = "Building change detection dataset_add"
OFFICIAL = "1. The two-period image data"
YEARS = ("2012", "2016")
OFFICIAL_SPLITS = ("train", "test")
PROTOCOLS = ("auto", "official", "repack")
#: Default window size on the official scenes: the release's own crop size (splited_images).
TILE = 512
#: Label encodings of the official change masks -> class indices.
LABEL_MAPS = {"0/255": LABEL_MAP, "0/1": {0: 0, 1: 1}}
LAYOUT = ("re-pack: {A,B,label}/<tile>.png + list/{train,val,test}.txt — 256 px RGB tiles, 0/255 labels "
          "(root may be WHU-CD-256/ or its parent); or the official release: '1. The two-period image data/"
          "{2012,2016}/whole_image/{train,test}/image/<scene>.tif' + 'change_label/{train,test}/change_label.tif' "
          "(root may be that folder, 'Building change detection dataset_add/' or its parent)")
NO_VAL = ("the official WHU-CD release has no val split (train and test areas only): use --split test, "
          "or the re-pack's lists with -o split_protocol=repack")


def find_root(root: Path) -> Path:
    """The re-pack folder: ``root`` or ``root/WHU-CD-256``."""
    return root / FOLDER if not (root / "list").is_dir() and (root / FOLDER).is_dir() else root


def find_official(root: Path) -> Path | None:
    """The official image-data folder at one of the three levels a user may point at, or None."""
    for base in (root, root / OFFICIAL, root / RELEASE / OFFICIAL):
        if any((base / sub).is_dir() for sub in (*YEARS, "change_label")):
            return base
    return None


def check(root: Path, split_protocol: str = "auto", tile: int = TILE) -> dict[str, Any]:
    """The layout under ``root`` as ``split_protocol`` chooses (see the module doc)."""
    root = Path(root)
    if split_protocol not in PROTOCOLS:
        raise SpecError(f"--option split_protocol={split_protocol}: expected one of {', '.join(PROTOCOLS)}")
    official = find_official(root)
    repack = (find_root(root) / "list").is_dir()
    if split_protocol == "official" or (split_protocol == "auto" and official is not None and not repack):
        if official is None:
            raise DataLayoutError(f"{root}: no official WHU-CD release (looked for '{OFFICIAL}/' here, in "
                                  f"'{RELEASE}/' and at this level); expected {LAYOUT}")
        return check_official(official, tile)
    data = check_repack(root)
    if split_protocol == "auto" and official is not None:
        data["protocol_note"] += f" (the official release in {official} is also there: -o split_protocol=official)"
    return data


def check_repack(root: Path) -> dict[str, Any]:
    root = find_root(Path(root))
    splits = {split: scan_list(root, root / "list" / f"{split}.txt", TITLE, LAYOUT) for split in SPLITS}
    return dict(root=str(root), classes=list(BINARY_CLASSES), splits=splits, label_map=LABEL_MAP,
                date_modalities=["hr", "hr"], hr_uint8=True, split_protocol="repack",
                protocol_note="re-pack lists list/{train,val,test}.txt of 256 px tiles")


def scene_file(folder: Path, what: str) -> Path:
    """The single GeoTIFF in ``folder`` (the release's file names are not relied on)."""
    if not folder.is_dir():
        raise DataLayoutError(f"{folder}: missing folder ({what})")
    tifs = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in TIF_SUFFIXES)
    if len(tifs) != 1:
        found = f" ({', '.join(p.name for p in tifs)})" if tifs else ""
        raise DataLayoutError(f"{folder}: {len(tifs)} .tif files{found}; expected exactly one: {what}")
    return tifs[0]


def windows(height: int, width: int, tile: int) -> list[list[int]]:
    """``[y, x, h, w]`` windows of ``tile`` px tiling a ``height`` x ``width`` scene without
    overlap, row-major; the last row and column are smaller where the size is not a multiple."""
    return [[y, x, min(tile, height - y), min(tile, width - x)]
            for y in range(0, height, tile) for x in range(0, width, tile)]


def label_encoding(path: Path) -> str | None:
    """``0/255`` or ``0/1`` (scanned in strips; None for a mask of zeros only, which is either);
    any other value is an error naming the file."""
    values = raster_values(path)
    if not (values <= {0, 255} or values <= {0, 1}):
        raise DataLayoutError(f"{path}: label values {sorted(values)[:10]} not allowed; expected only 0, 255 "
                              "(or only 0, 1)")
    return "0/1" if 1 in values else "0/255" if 255 in values else None


def check_official(base: Path, tile: int = TILE) -> dict[str, Any]:
    """The train and test scenes of the release under ``base`` (the image-data folder), as windows."""
    tile = int(tile)
    if tile < 1:
        raise SpecError(f"--option tile={tile}: expected a window size of at least 1 px")
    splits: dict[str, list[dict[str, Any]]] = {}
    encodings: dict[str, tuple[str, Path]] = {}
    for split in OFFICIAL_SPLITS:
        dates = [scene_file(base / year / "whole_image" / split / "image",
                            f"the {year} {split} scene, e.g. {year}_{split}.tif") for year in YEARS]
        label = scene_file(base / "change_label" / split, f"the {split} change mask change_label.tif")
        shapes = [raster_shape(p) for p in (*dates, label)]
        check_same_grid(list(zip((*dates, label), shapes)), (3, 3, 1))
        encoding = label_encoding(label)
        if encoding is not None:
            encodings[split] = (encoding, label)
        height, width = shapes[0][:2]
        splits[split] = [dict(id=f"{dates[0]}#{y}_{x}", dates=[[str(dates[0])], [str(dates[1])]],
                              label=str(label), window=[y, x, h, w])
                         for y, x, h, w in windows(height, width, tile)]
    found = {e for e, _ in encodings.values()}
    if len(found) > 1:
        raise DataLayoutError("change labels differ in encoding: " + ", ".join(
            f"{p} {e}" for e, p in encodings.values()) + "; expected all 0/255 (or all 0/1)")
    encoding = found.pop() if found else "0/255"
    return dict(root=str(base), classes=list(BINARY_CLASSES), splits=splits, label_map=LABEL_MAPS[encoding],
                date_modalities=["hr", "hr"], hr_uint8=True, split_protocol="official", split_note=NO_VAL,
                label_encoding=encoding,
                protocol_note=f"official train/test areas (whole-split scenes), {tile} px windows without "
                              f"overlap, labels {encoding}")


def write_fixture(out: Path, seed: int = 0, size: int = 64, counts: tuple[int, int, int] = (12, 2, 4)) -> Path:
    """A tiny re-pack: ``size`` px tiles named ``whu_<row>_<col>.png`` and the three lists."""
    rng = np.random.default_rng(seed)
    root = Path(out) / FOLDER
    (root / "list").mkdir(parents=True, exist_ok=True)
    k = 0
    for split, n in zip(SPLITS, counts):
        names = []
        for _ in range(n):
            name = f"whu_{k // 8:04d}_{k % 8:04d}.png"
            write_pair(root, name, rng, size)
            names.append(name)
            k += 1
        (root / "list" / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
    mark_fixture(Path(out), "whu-cd", seed)
    return Path(out)


def write_official_fixture(out: Path, seed: int = 0, size: tuple[int, int] = (300, 260),
                           crop: int = 64, crops: int = 2) -> Path:
    """A tiny official release under ``out/Building change detection dataset_add/1. The two-period
    image data/``: a ``size`` (H, W) train scene and a test scene half as wide (the release's two
    areas differ in size too), RGB GeoTIFFs and 0/255 change masks with planted building changes,
    plus ``crops`` ``crop`` px ``splited_images`` per split and year (read by nobody, as in the
    release's own use here)."""
    rng = np.random.default_rng(seed)
    base = Path(out) / RELEASE / OFFICIAL
    h, w = size
    for split, shape in (("train", (h, w)), ("test", (h, max(w // 2, 1)))):
        scale = max(1, shape[0] * shape[1] // 4096)  # the re-pack's change density on a larger scene
        a, b, change = synth.change_pair(rng, shape, 3, kept=2 * scale, new=3 * scale, gone=2 * scale)
        for year, img in zip(YEARS, (synth.to_uint8(a), synth.to_uint8(b))):
            _write_tif(base / year / "whole_image" / split / "image" / f"{year}_{split}.tif", img)
            for i in range(crops):
                y = int(rng.integers(0, max(shape[0] - crop, 0) + 1))
                x = int(rng.integers(0, max(shape[1] - crop, 0) + 1))
                _write_tif(base / year / "splited_images" / split / "image" / f"0_{i}.tif",
                           img[y:y + crop, x:x + crop])
        _write_tif(base / "change_label" / split / "change_label.tif", (change * 255).astype(np.uint8))
    mark_fixture(Path(out), "whu-cd", seed)
    return Path(out)


def _write_tif(path: Path, arr: np.ndarray) -> None:
    """(H, W) or (H, W, C) uint8 as a tiled GeoTIFF on NZGD2000 / NZTM (the release's Christchurch grid)."""
    bands = arr if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
    write_geotiff(path, bands.astype(np.uint8), crs="EPSG:2193", origin=(1570000.0, 5180000.0), gsd=0.3,
                  compress="deflate")
