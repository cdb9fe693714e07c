"""OSCD, Onera Satellite Change Detection (Daudt et al. 2018): 24 city pairs of Sentinel-2 L1C.

Official layout (three zips unpacked side by side; torchgeo's ``OSCD`` reads the same)::

    Onera Satellite Change Detection dataset - Images/<city>/imgs_{1,2}_rect/B01.tif ... B12.tif, B8A.tif
    Onera Satellite Change Detection dataset - Images/<city>/dates.txt   ("date_1: YYYYMMDD")
    Onera Satellite Change Detection dataset - Images/{train,test}.txt   (comma-separated cities)
    Onera Satellite Change Detection dataset - {Train,Test} Labels/<city>/cm/cm.png  (0/255)

One single-band GeoTIFF per band, resampled to a common 10 m grid (``_rect``); 14 train / 10
test cities. Without the split lists, a city's split is the labels folder that holds it.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from rsbench.errors import DataLayoutError
from rsbench.io.fixtures import mark_fixture
from rsbench.io.raster import write_geotiff
from rsbench_change import synth
from rsbench_change.io import check_same_grid, label_values, raster_shape

IMAGES = "Onera Satellite Change Detection dataset - Images"
LABELS = {"train": "Onera Satellite Change Detection dataset - Train Labels",
          "test": "Onera Satellite Change Detection dataset - Test Labels"}
#: Band names as rsbench's s2 modality spells them, in the official file order.
BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
RGB_VIEW = ("B4", "B3", "B2")
TITLE = "OSCD"
LAYOUT = (f"'{IMAGES}/<city>/imgs_{{1,2}}_rect/B01..B12,B8A.tif' + dates.txt, "
          f"'... - {{Train,Test}} Labels/<city>/cm/cm.png' (0/255); root holds the three folders")


def band_file(band: str) -> str:
    """``B1`` -> ``B01.tif``, ``B8A`` -> ``B8A.tif`` (the official file names)."""
    return f"B{band[1:].zfill(2)}.tif" if band[1:].isdigit() else f"{band}.tif"


def read_dates(path: Path) -> list[int]:
    """Day of year of ``date_1`` and ``date_2`` from ``dates.txt``."""
    if not path.is_file():
        raise DataLayoutError(f"{path}: missing (expected lines 'date_1: YYYYMMDD' and 'date_2: YYYYMMDD')")
    found = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("date_1", "date_2"):
            v = value.strip()
            try:
                found[key.strip()] = date(int(v[:4]), int(v[4:6]), int(v[6:8])).timetuple().tm_yday
            except ValueError as exc:
                raise DataLayoutError(f"{path}: bad date {v!r} (expected YYYYMMDD)") from exc
    if set(found) != {"date_1", "date_2"}:
        raise DataLayoutError(f"{path}: expected lines 'date_1: YYYYMMDD' and 'date_2: YYYYMMDD'")
    return [found["date_1"], found["date_2"]]


def city_splits(root: Path) -> dict[str, list[str]]:
    splits = {}
    for split, folder in LABELS.items():
        lst = root / IMAGES / f"{split}.txt"
        if lst.is_file():
            splits[split] = [c.strip() for c in lst.read_text().replace("\n", ",").split(",") if c.strip()]
        elif (root / folder).is_dir():
            splits[split] = sorted(p.name for p in (root / folder).iterdir() if p.is_dir())
        else:
            raise DataLayoutError(f"{root / folder}: missing folder and no {lst.name}; {TITLE} expects {LAYOUT}")
    return splits


def scan_city(root: Path, city: str, split: str) -> dict[str, Any]:
    folder = root / IMAGES / city
    if not folder.is_dir():
        raise DataLayoutError(f"{folder}: missing city folder (listed in the {split} split)")
    dates = []
    for k in (1, 2):
        d = folder / f"imgs_{k}_rect"
        if not d.is_dir():
            raise DataLayoutError(f"{d}: missing date folder (expected {', '.join(band_file(b) for b in BANDS[:3])}, ...)")
        dates.append([str(d / band_file(b)) for b in BANDS])
    label = root / LABELS[split] / city / "cm" / "cm.png"
    if not label.is_file():
        raise DataLayoutError(f"{label}: missing change map (0/255 PNG)")
    shapes = [(f, raster_shape(f)) for files in dates for f in files] + [(label, raster_shape(label))]
    check_same_grid(shapes, [1] * (2 * len(BANDS)) + [None])
    label_values(label, (0, 255))
    return dict(id=str(folder), dates=dates, label=str(label), doy=read_dates(folder / "dates.txt"))


def check(root: Path) -> dict[str, Any]:
    root = Path(root)
    if not (root / IMAGES).is_dir():
        raise DataLayoutError(f"{root / IMAGES}: missing folder; {TITLE} expects {LAYOUT}")
    splits = {split: [scan_city(root, c, split) for c in cities] for split, cities in city_splits(root).items()}
    return dict(root=str(root), classes=["unchanged", "changed"], splits=splits, label_map={0: 0, 255: 1},
                date_modalities=["s2", "s2"], band_files={"s2": list(BANDS)}, rgb_view=list(RGB_VIEW))


TRAIN = ("aguasclaras", "bercy", "bordeaux", "nantes", "paris", "rennes")
TEST = ("brasilia", "montpellier", "norcia")


def write_fixture(out: Path, seed: int = 0) -> Path:
    """A tiny OSCD: 6 train / 3 test cities of 64-80 px, 13 uint16 band tifs per date, planted
    changes in every band (reflectance x 10000 scale)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = Path(out)
    for split, cities in (("train", TRAIN), ("test", TEST)):
        (out / IMAGES).mkdir(parents=True, exist_ok=True)
        (out / IMAGES / f"{split}.txt").write_text(",".join(cities))
        for i, city in enumerate(cities):
            size = (64 + 8 * (i % 3), 64 + 8 * ((i + 1) % 2))
            a, b, change = synth.change_pair(rng, size, len(BANDS))
            for k, img in ((1, a), (2, b)):
                d = out / IMAGES / city / f"imgs_{k}_rect"
                d.mkdir(parents=True, exist_ok=True)
                for c, band in enumerate(BANDS):
                    arr = (img[..., c] * 3000).astype(np.uint16)
                    write_geotiff(d / band_file(band), arr, crs="EPSG:32631", origin=(500000, 5000000), gsd=10)
            (out / IMAGES / city / "dates.txt").write_text(f"date_1: 2016{3 + i % 6:02d}15\ndate_2: 2017{4 + i % 5:02d}20\n")
            cm = out / LABELS[split] / city / "cm"
            cm.mkdir(parents=True, exist_ok=True)
            Image.fromarray((change * 255).astype(np.uint8)).save(cm / "cm.png")
    mark_fixture(out, "oscd", seed)
    return out
