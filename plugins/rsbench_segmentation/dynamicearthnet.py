"""DynamicEarthNet (Toker et al., CVPR 2022): 75 areas (cubes) of ~1024 x 1024 px at 3 m, daily
Planet Fusion imagery 2018-2019, monthly 7-class land-cover labels; SkySense's Dyna.-Pla (Planet),
Dyna.-S2 (monthly Sentinel-2) and Dyna.-MM (Planet + S2 + S1) evaluations.

Official layout (dynnet / PANGAEA / torchgeo conventions)::

    dynnet_training_splits/{train,val,test}.txt   lines "<planet dir> <label tif> <YYYY-MM>",
        paths starting with "/"; "/reprocess-cropped/UTM-24000/" means "<root>/planet/" (PANGAEA)
    planet/<zone>/<tile>/<cube>/PF-SR/<YYYY-MM-DD>.tif     4 bands in file order B, G, R, NIR
    labels/<cube>_<zone>/Labels/Raster/<scene>/<scene>-YYYY_MM_01.tif   7 one-hot bands (255 = class)
    sentinel2/<cube>/<cube>_YYYY_MM.tif   monthly composite, 12 bands, on the label grid
    sentinel1/<cube>/<cube>_YYYY_MM.tif   monthly composite, 8 bands, on the label grid

The Sentinel file naming follows torchgeo's DynamicEarthNet metadata (not verified against the
mediaTUM release; ``<YYYY>_<MM>.tif`` without the cube prefix is accepted too). S2 band order
is L2A's 12 bands (B1..B12 without B10) and the first two S1 bands are taken to be VV and VH;
the other six S1 bands are unnamed (reference notes [N]).

Time series: the Planet frames of the label's month on the dynnet "weekly" days 01, 05, 10, 15,
20, 25 (option ``temporal=single``: day 01), one S2 / S1 composite of that month (dated the
15th). Every frame's day of year and the cube's (lat, lon) travel with the sample: the cube id
``<x>_<y>_<z>`` is a web-mercator tile (1330_3107_13 is at 39.8 N, 121.6 W, matching its label
scene 10N-121W-39N), whose centre is the geo context SkySense receives.

Labels: band i at 255 is class i; snow & ice (band 7) is ignored, as are pixels that are not
exactly one-hot, so 6 classes are scored (mIoU with ignore 255, as dynnet's jaccard_index).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rsbench.errors import DataLayoutError
from rsbench.io import raster
from rsbench.io.fixtures import mark_fixture
from rsbench_segmentation import common

CLASSES = ("impervious surface", "agriculture", "forest & other vegetation", "wetlands", "soil", "water")
PALETTE = ((96, 96, 96), (204, 204, 0), (0, 204, 0), (0, 0, 153), (153, 76, 0), (0, 128, 255))
LABEL_BANDS = 7  # the 6 classes plus snow & ice (ignored)
IGNORE_INDEX = common.IGNORE
HEADLINE = "mIoU"
PLANET_BANDS = ("B", "G", "R", "NIR")
S2_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12")
S1_BANDS = ("VV", "VH", "S1_3", "S1_4", "S1_5", "S1_6", "S1_7", "S1_8")
BANDS = {"hr": PLANET_BANDS, "s2": S2_BANDS, "s1": S1_BANDS}
#: Planet statistics of dynnet's loader (R, G, B, NIR there), here in file order B, G, R, NIR.
#: S2 / S1 have no published DynamicEarthNet statistics: ``normalization_stats`` measures them.
NORMALIZATION = {"hr": ((671.26, 915.62, 1042.59, 2605.21), (596.94, 715.55, 957.96, 1059.90))}
NORMALIZATION_NOTE = ("hr: dynnet's Planet constants; s2, s1 where fed: measured on up to stats_samples seeded "
                      "training composites")
DAYS = {"weekly": ("01", "05", "10", "15", "20", "25"), "single": ("01",)}
SENTINEL_DAY = 15
SPLITS_DIR = "dynnet_training_splits"
PLANET_PREFIX = "reprocess-cropped/UTM-24000/"
LAYOUT = ("dynnet_training_splits/{train,val,test}.txt ('<planet dir> <label tif> <YYYY-MM>'), "
          "planet/<zone>/<tile>/<cube>/PF-SR/<YYYY-MM-DD>.tif (B,G,R,NIR), "
          "labels/<cube>_<zone>/Labels/Raster/<scene>/<scene>-YYYY_MM_01.tif (7 one-hot bands), "
          "sentinel2/<cube>/<cube>_YYYY_MM.tif (12 bands), sentinel1/<cube>/<cube>_YYYY_MM.tif (8 bands)")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_CUBE = re.compile(r"^(\d+)_(\d+)_(\d+)$")


# -- reading ------------------------------------------------------------------------
def read_raster(path: str | Path, bands: int) -> np.ndarray:
    """A GeoTIFF as (C, H, W); :class:`DataLayoutError` naming the file when it is unreadable
    or does not have ``bands`` bands."""
    return raster.read_raster(path, bands=bands, channels_last=False)


def read_label(path: str | Path) -> np.ndarray:
    """A label as class ids (:func:`decode_label`), refused when stored with lossy (JPEG) compression."""
    onehot = raster.read_raster(path, bands=LABEL_BANDS, lossless=True, channels_last=False, what="one-hot classes")
    return decode_label(onehot, path)


def decode_label(onehot: np.ndarray, path: str | Path) -> np.ndarray:
    """7-band one-hot (0/255) to class ids 0..5; snow & ice and pixels with no or several hot
    bands become 255 (ignored). Other values mean the file is not a label."""
    bad = (onehot != 0) & (onehot != 255)
    if bad.any():
        b, y, x = map(int, np.argwhere(bad)[0])
        raise DataLayoutError(f"{path}: value {int(onehot[b, y, x])} in band {b + 1} at (x={x}, y={y}); "
                              "expected a one-hot label of 0/255")
    hot = onehot == 255
    label = np.argmax(hot, axis=0).astype(np.uint8)
    label[(hot.sum(axis=0) != 1) | (label == LABEL_BANDS - 1)] = IGNORE_INDEX
    return label


def _check_label(path: Path, where: str) -> None:
    """From the header only: a label has the 7 one-hot bands and is stored losslessly."""
    info = raster.raster_info(path)
    raster.require_lossless(info, f"a label ({where})")
    if info.bands != LABEL_BANDS:
        raise DataLayoutError(f"{path}: expected {LABEL_BANDS} band(s) of one-hot classes, found {info.bands} "
                              f"({where})")


def tile_latlon(cube: str) -> tuple[float, float]:
    """Centre (lat, lon) of web-mercator tile ``<x>_<y>_<zoom>`` (the cube id)."""
    m = _CUBE.match(cube)
    if m is None:
        raise DataLayoutError(f"cube id {cube!r}: expected '<x>_<y>_<zoom>' (e.g. 1330_3107_13)")
    x, y, z = (int(v) for v in m.groups())
    n = 2.0 ** z
    lon = (x + 0.5) / n * 360.0 - 180.0
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 0.5) / n))))
    return round(lat, 4), round(lon, 4)


def day_of_year(year: int, month: int, day: int) -> int:
    return dt.date(year, month, day).timetuple().tm_yday


# -- the layout -----------------------------------------------------------------------
def _planet_dir(root: Path, entry: str, where: str) -> Path:
    rel = entry.lstrip("/")
    candidates = [root / rel]
    if rel.startswith(PLANET_PREFIX):
        candidates.append(root / "planet" / rel[len(PLANET_PREFIX):])
    for c in candidates:
        if c.is_dir():
            return c
    raise DataLayoutError(f"{where}: names planet dir {entry}, absent (looked for "
                          f"{' or '.join(str(c) for c in candidates)})")


def _sentinel(root: Path, folder: str, cube: str, year: int, month: int, where: str) -> Path:
    names = [f"{cube}_{year}_{month:02d}.tif", f"{year}_{month:02d}.tif"]
    for name in names:
        if (root / folder / cube / name).is_file():
            return root / folder / cube / name
    raise DataLayoutError(f"{root / folder / cube / names[0]}: missing {folder} composite of month "
                          f"{year}-{month:02d} ({where})")


def planet_frames(planet_dir: str | Path, month: str, temporal: str) -> list[str]:
    """The month's Planet files on the ``temporal`` sampling days; a missing day is an error."""
    if temporal not in DAYS:
        raise DataLayoutError(f"--option temporal={temporal}: expected one of {', '.join(DAYS)} "
                              "('daily' gives a different frame count per month, which cannot be batched)")
    frames = [Path(planet_dir) / f"{month}-{d}.tif" for d in DAYS[temporal]]
    for f in frames:
        if not f.is_file():
            raise DataLayoutError(f"{f}: missing Planet frame of month {month} ({temporal} sampling needs "
                                  f"days {', '.join(DAYS[temporal])})")
    return [str(f) for f in frames]


def check(root: Path, modalities: Sequence[str] = ("hr",), temporal: str = "weekly") -> dict[str, Any]:
    """Read the split files and resolve every sample's files for ``modalities``."""
    root = Path(root)
    split_dir = root / SPLITS_DIR
    if not (split_dir / "train.txt").is_file():
        raise DataLayoutError(f"{split_dir / 'train.txt'}: missing split file; expected {LAYOUT}")
    splits: dict[str, list[dict[str, Any]]] = {}
    for split in ("train", "val", "test"):
        path = split_dir / f"{split}.txt"
        if not path.is_file():
            continue
        splits[split] = [_sample(root, line, f"{path}:{i}", modalities, temporal)
                         for i, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
        if not splits[split]:
            raise DataLayoutError(f"{path}: no lines")
    return {"root": str(root), "classes": list(CLASSES), "splits": splits,
            "samples": [s for samples in splits.values() for s in samples]}


def _sample(root: Path, line: str, where: str, modalities: Sequence[str], temporal: str) -> dict[str, Any]:
    parts = line.split()
    if len(parts) != 3 or not _MONTH.match(parts[2]):
        raise DataLayoutError(f"{where}: expected '<planet dir> <label tif> <YYYY-MM>', got {line!r}")
    planet_entry, label_entry, month = parts
    year, mon = (int(v) for v in _MONTH.match(month).groups())  # type: ignore[union-attr]
    label = root / label_entry.lstrip("/")
    if not label.is_file():
        raise DataLayoutError(f"{where}: names label {label_entry}, absent ({label})")
    _check_label(label, where)
    planet = _planet_dir(root, planet_entry, where)
    cube = planet.parent.name if planet.name == "PF-SR" else planet.name
    paths: dict[str, Any] = {}
    dates: dict[str, list[int]] = {}
    if "hr" in modalities:
        paths["hr"] = planet_frames(planet, month, temporal)
        dates["hr"] = [day_of_year(year, mon, int(d)) for d in DAYS[temporal]]
    for m, folder in (("s2", "sentinel2"), ("s1", "sentinel1")):
        if m in modalities:
            paths[m] = str(_sentinel(root, folder, cube, year, mon, where))
            dates[m] = [day_of_year(year, mon, SENTINEL_DAY)]
    return dict(name=f"{cube}_{month}", label=str(label), modalities=paths, dates=dates,
                latlon=list(tile_latlon(cube)), month=month, planet_dir=str(planet))


def checker(modalities: Sequence[str]):  # noqa: ANN201 - a DatasetInfo checker
    def check_task(root: Path) -> dict[str, Any]:
        return check(root, modalities)
    check_task.__doc__ = f"DynamicEarthNet layout check for modalities {', '.join(modalities)}."
    return check_task


check_pla, check_s2, check_mm = checker(("hr",)), checker(("s2",)), checker(("hr", "s2", "s1"))


def partition(data: dict[str, Any], split: str, opts: dict[str, Any]) -> tuple[list, list]:
    """Train on train.txt, evaluate ``split``; Planet frames re-resolved for ``temporal``."""
    if split not in data["splits"]:
        raise DataLayoutError(f"{Path(data['root']) / SPLITS_DIR / (split + '.txt')}: missing split file")
    temporal = str(opts.get("temporal", "weekly"))

    def resolve(s: dict[str, Any]) -> dict[str, Any]:
        if "hr" not in s["modalities"] or temporal == "weekly":
            return s
        y, m = (int(v) for v in s["month"].split("-"))
        return dict(s, modalities=dict(s["modalities"], hr=planet_frames(s["planet_dir"], s["month"], temporal)),
                    dates=dict(s["dates"], hr=[day_of_year(y, m, int(d)) for d in DAYS[temporal]]))

    return [resolve(s) for s in data["splits"]["train"]], [resolve(s) for s in data["splits"][split]]


def frames(opts: dict[str, Any]) -> dict[str, int]:
    """Frames per modality in one sample (the time-series length T)."""
    return {"hr": len(DAYS[str(opts.get("temporal", "weekly"))]), "s2": 1, "s1": 1}


def normalization_stats(train: list[dict[str, Any]], opts: dict[str, Any]) -> dict[str, tuple[tuple, tuple]]:
    """Per-band mean/std: Planet from dynnet; S2 and S1 measured on up to ``stats_samples``
    training composites (seeded choice), for want of published DynamicEarthNet statistics."""
    stats = dict(NORMALIZATION)
    rng = np.random.default_rng(int(opts.get("split_seed", 0)))
    n = min(int(opts.get("stats_samples", 32)), len(train))
    chosen = [train[i] for i in sorted(rng.choice(len(train), n, replace=False))] if n else []
    for m in ("s2", "s1"):
        files = [s["modalities"][m] for s in chosen if m in s["modalities"]]
        if not files:
            continue
        arr = np.concatenate([read_raster(f, len(BANDS[m])).reshape(len(BANDS[m]), -1) for f in files], axis=1)
        arr = arr.astype(np.float64)
        stats[m] = (tuple(round(float(v), 2) for v in arr.mean(axis=1)),
                    tuple(round(max(float(v), 1e-6), 2) for v in arr.std(axis=1)))
    return stats


def load(sample: dict[str, Any], modalities: Sequence[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``{modality: H x W x (T * C)}`` (frames stacked frame-major, bands in file order) and the label."""
    label = read_label(sample["label"])
    arrays: dict[str, np.ndarray] = {}
    for m in modalities:
        files = sample["modalities"][m]
        stack = []
        for f in [files] if isinstance(files, str) else files:
            arr = read_raster(f, len(BANDS[m]))
            if arr.shape[1:] != label.shape:
                raise DataLayoutError(f"{f}: size {arr.shape[1:]} differs from label {label.shape} ({sample['label']})")
            stack.append(arr)
        arrays[m] = np.concatenate(stack, axis=0).transpose(1, 2, 0).astype(np.float32)
    return arrays, label


# -- fixture ------------------------------------------------------------------------
#: (cube, UTM zone, planet tile dir) per split: real-looking web-mercator tile ids.
FIXTURE_CUBES = {
    "train": (("1330_3107_13", "10N", "26E-183N"), ("2196_3885_13", "17N", "9E-42N"),
              ("4340_2850_13", "32N", "15E-121N"), ("1487_3335_13", "12N", "7E-140N"),
              ("2417_4730_13", "18S", "30E-61S"), ("5200_3900_13", "39N", "20E-9N")),
    "val": (("6011_3420_13", "45N", "22E-80N"), ("3700_2700_13", "28N", "4E-170N")),
    "test": (("4675_4103_13", "35S", "11E-3N"),),
}
FIXTURE_MONTHS = ("2018-03", "2019-07")


def _write_tif(path: Path, data: np.ndarray, zone: str) -> None:
    number, hemi = int(zone[:-1]), zone[-1]
    crs = f"EPSG:{(32600 if hemi == 'N' else 32700) + number}"
    raster.write_raster(path, data, crs=crs, origin=(500000, 4400000), gsd=3.0, compress="lzw")


def _scene(cube: str, zone: str) -> str:
    lat, lon = tile_latlon(cube)
    return f"{zone}-{abs(int(lon))}{'E' if lon >= 0 else 'W'}-{abs(int(lat))}{'N' if lat >= 0 else 'S'}-L3H-SR"


def write_fixture(out: Path, seed: int = 0, size: int = 64, dataset: str = "dyna-mm") -> Path:
    """Every cube of ``FIXTURE_CUBES`` for two months at ``size`` px: Planet on the weekly days,
    S2 and S1 composites, one-hot labels with a snow patch (ignored). Planet, S2 and S1 each
    carry the class signal (class-specific spectra plus noise that differs between frames)."""
    rng = np.random.default_rng(seed)
    # Classes kept apart in the bands an RGB backbone keeps (R, G, B) and in SkySense's 10 S2
    # bands; NIR, B1 and B9 carry a signal too. Reflectance-like DN (x10).
    rgb, nir = common.class_colours(LABEL_BANDS, 3, seed=23), common.class_colours(LABEL_BANDS, 1, seed=24)
    planet_col = np.concatenate([rgb[:, ::-1], nir], axis=1) * 10  # file order B, G, R, NIR
    s2_main, s2_edge = common.class_colours(LABEL_BANDS, 10, seed=22), common.class_colours(LABEL_BANDS, 2, seed=25)
    s2_col = np.concatenate([s2_edge[:, :1], s2_main[:, :8], s2_edge[:, 1:], s2_main[:, 8:]], axis=1) * 10
    s1_col = common.class_colours(LABEL_BANDS, 8, seed=23) / 10 - 25  # dB-like
    root = Path(out)
    (root / SPLITS_DIR).mkdir(parents=True, exist_ok=True)
    for split, cubes in FIXTURE_CUBES.items():
        lines = []
        for cube, zone, tile in cubes:
            scene = _scene(cube, zone)
            label = common.paint_scene(rng, (size, size), len(CLASSES), background=None, shapes=6)
            for month in FIXTURE_MONTHS:
                label = label.copy()
                y, x = (int(v) for v in rng.integers(0, size - size // 4, 2))
                label[y:y + size // 4, x:x + size // 4] = rng.integers(len(CLASSES))  # a change
                full = label.copy()
                sy, sx = (int(v) for v in rng.integers(0, size - 8, 2))
                full[sy:sy + 6, sx:sx + 6] = LABEL_BANDS - 1  # snow & ice
                onehot = (np.arange(LABEL_BANDS)[:, None, None] == full[None]).astype(np.uint8) * 255
                yy, mm = month.split("-")
                label_rel = f"labels/{cube}_{zone}/Labels/Raster/{scene}/{scene}-{yy}_{mm}_01.tif"
                _write_tif(root / label_rel, onehot, zone)
                planet = root / "planet" / zone / tile / cube / "PF-SR"
                for day in DAYS["weekly"]:
                    img = planet_col[full] + rng.normal(0, 150, (size, size, 4))
                    _write_tif(planet / f"{month}-{day}.tif",
                               np.clip(img, 0, 10000).astype(np.uint16).transpose(2, 0, 1), zone)
                s2 = s2_col[full] + rng.normal(0, 150, (size, size, 12))
                _write_tif(root / "sentinel2" / cube / f"{cube}_{yy}_{mm}.tif",
                           np.clip(s2, 0, 10000).astype(np.int16).transpose(2, 0, 1), zone)
                s1 = s1_col[full] + rng.normal(0, 1.5, (size, size, 8))
                _write_tif(root / "sentinel1" / cube / f"{cube}_{yy}_{mm}.tif",
                           s1.astype(np.float32).transpose(2, 0, 1), zone)
                lines.append(f"/{PLANET_PREFIX}{zone}/{tile}/{cube}/PF-SR /{label_rel} {month}")
        (root / SPLITS_DIR / f"{split}.txt").write_text("\n".join(lines) + "\n")
    mark_fixture(root, dataset, seed)
    return root


def fixture_writer(dataset: str):  # noqa: ANN201 - a DatasetInfo fixture writer
    def write(out: Path, seed: int = 0) -> Path:
        return write_fixture(out, seed=seed, dataset=dataset)
    write.__doc__ = f"The DynamicEarthNet fixture (all modalities), marked as dataset {dataset}."
    return write


write_pla, write_s2, write_mm = fixture_writer("dyna-pla"), fixture_writer("dyna-s2"), fixture_writer("dyna-mm")
