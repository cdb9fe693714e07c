"""fMoW-Sentinel (Cong et al., SatMAE 2022): 13-band Sentinel-2 GeoTIFFs of variable size, 62 classes.

Official layout (``<root>`` is ``fmow-sentinel/`` or its parent)::

    fmow-sentinel/train.csv, val.csv, test_gt.csv   columns category, location_id, image_id,
                                                    timestamp, (polygon, image_path, ...)
    fmow-sentinel/<split>/<category>/<category>_<location_id>/<category>_<location_id>_<image_id>.tif

The ``image_path`` column of the released CSVs points at the authors' disks, so paths are rebuilt
from category, location and image ids (as SatMAE's README advises). Images hold 13 bands in the
order B1..B8, B8A, B9..B12 (B10 included) and are resampled bilinearly to ``img_size``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from rsbench.errors import DataLayoutError
from rsbench.io.fixtures import mark_fixture
from rsbench.io.raster import raster_info, write_geotiff

FOLDER = "fmow-sentinel"
CSVS = {"train": "train.csv", "val": "val.csv", "test": "test_gt.csv"}
BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
CLASSES = (
    "airport", "airport_hangar", "airport_terminal", "amusement_park", "aquaculture", "archaeological_site",
    "barn", "border_checkpoint", "burial_site", "car_dealership", "construction_site", "crop_field", "dam",
    "debris_or_rubble", "educational_institution", "electric_substation", "factory_or_powerplant",
    "fire_station", "flooded_road", "fountain", "gas_station", "golf_course", "ground_transportation_station",
    "helipad", "hospital", "impoverished_settlement", "interchange", "lake_or_pond", "lighthouse",
    "military_facility", "multi-unit_residential", "nuclear_powerplant", "office_building",
    "oil_or_gas_facility", "park", "parking_lot_or_garage", "place_of_worship", "police_station", "port",
    "prison", "race_track", "railway_bridge", "recreational_facility", "road_bridge", "runway", "shipyard",
    "shopping_mall", "single-unit_residential", "smokestack", "solar_farm", "space_facility", "stadium",
    "storage_tank", "surface_mine", "swimming_pool", "toll_booth", "tower", "tunnel_opening",
    "waste_disposal", "water_treatment_facility", "wind_farm", "zoo",
)
LAYOUT = ("fmow-sentinel/{train.csv,val.csv,test_gt.csv} + fmow-sentinel/<split>/<category>/<category>_<loc>/"
          "<category>_<loc>_<img>.tif (13-band GeoTIFF, variable size)")
EXHAUSTIVE_CHECK_LIMIT = 5000


def find_root(root: Path) -> Path:
    for candidate in (root, root / FOLDER):
        if (candidate / CSVS["train"]).is_file():
            return candidate
    raise DataLayoutError(f"{root}: not the fMoW-Sentinel layout — no {CSVS['train']} here or in {FOLDER}/; "
                          f"expected {LAYOUT}")


def read_csv(root: Path, split: str) -> list[dict[str, Any]]:
    path = root / CSVS[split]
    if not path.is_file():
        raise DataLayoutError(f"{path}: split file missing (expected columns category, location_id, image_id)")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"category", "location_id", "image_id"} - set(reader.fieldnames or ())
        if missing:
            raise DataLayoutError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        rows = list(reader)
    out = []
    for n, row in enumerate(rows, start=2):
        cat = row["category"]
        if cat not in CLASSES:
            raise DataLayoutError(f"{path}:{n}: category {cat!r} is not one of the 62 fMoW classes")
        stem = f"{cat}_{row['location_id']}"
        rel = f"{split}/{cat}/{stem}/{stem}_{row['image_id']}.tif"
        out.append(dict(path=rel, gt_label=[CLASSES.index(cat)]))
    return out


def check_image(path: Path) -> tuple[int, int]:
    if not path.is_file():
        raise DataLayoutError(f"{path}: image listed in the split CSV is missing")
    info = raster_info(path)
    if info.bands != len(BANDS):
        raise DataLayoutError(f"{path}: {info.bands} bands; expected 13 (B1..B12 with B8A and B10)")
    return info.height, info.width


def check(root: Path) -> dict[str, Any]:
    root = find_root(Path(root))
    samples = {s: read_csv(root, s) for s in CSVS}
    total = sum(len(v) for v in samples.values())
    sizes = []
    for rows in samples.values():
        for n, row in enumerate(rows):
            if n == 0 or total <= EXHAUSTIVE_CHECK_LIMIT:
                sizes.append(check_image(root / row["path"]))
    return {"root": str(root), "classes": list(CLASSES), "samples": samples,
            "size": int(np.median([min(s) for s in sizes])), "band_ref": "rsbench_classification.fmow_s2:band_ref"}


def band_ref(sample: dict[str, Any], modality: str, band: str) -> tuple[str, int]:
    return sample["path"], BANDS.index(band) + 1


def write_fixture(out: Path, seed: int = 0, per_split: dict[str, int] | None = None) -> Path:
    """A tiny fMoW-Sentinel: per class 3 train, 1 val, 1 test images of 20-32 px.

    Each class has a fixed random 13-band spectrum; images are that spectrum times a random
    brightness plus noise, so the class is recoverable from band ratios.
    """
    counts = per_split or {"train": 3, "val": 1, "test": 1}
    root = Path(out) / FOLDER
    rng = np.random.default_rng(seed)
    spectra = rng.uniform(0.1, 1.0, (len(CLASSES), len(BANDS)))
    for split, k in counts.items():
        root.mkdir(parents=True, exist_ok=True)
        lines = ["category,location_id,image_id,timestamp,polygon,image_path\n"]
        for label, cat in enumerate(CLASSES):
            for j in range(k):
                loc, img = label * 10 + j, 0
                stem = f"{cat}_{loc}"
                folder = root / split / cat / stem
                folder.mkdir(parents=True, exist_ok=True)
                h, w = (int(v) for v in rng.integers(20, 33, 2))
                data = 3000 * spectra[label][:, None, None] * rng.uniform(0.9, 1.1) + rng.normal(0, 60, (13, h, w))
                write_geotiff(folder / f"{stem}_{img}.tif", np.clip(data, 0, 10000).astype(np.uint16),
                              crs="EPSG:4326", origin=(10, 50), gsd=1e-4)
                lines.append(f'{cat},{loc},{img},2017-06-01T10:00:00Z,"POLYGON ((10 50, 10.001 50, 10.001 49.999, '
                             f'10 50))",/data/fmow-sentinel/{split}/{cat}/{stem}/{stem}_{img}.tif\n')
        (root / CSVS[split]).write_text("".join(lines))
    mark_fixture(Path(out), "fmow-s2", seed)
    return Path(out)
