"""BigEarthNet (v1.0, Sumbul et al. 2019; v2.0 reBEN), Sentinel-2 part: 12-band 120x120 patches, multi-label.

:func:`check` detects the layout: v1 (below) or v2 / reBEN (:mod:`rsbench_classification.reben`,
chosen when ``metadata.parquet`` or ``BigEarthNet-S2/`` is present); the row records which
(``ben_version``), since the two releases differ in patches, labels and splits.

Official v1 layout (``<root>`` holds the extracted archive and the split CSVs)::

    BigEarthNet-v1.0/<S2 patch>/<S2 patch>_B01.tif ... _B12.tif (12 single-band GeoTIFFs: B01..B09,
                                 B8A, B11, B12; no B10) and <S2 patch>_labels_metadata.json
    {train,val,test}.csv        rows "<S2 patch>,<S1 patch>" (BigEarthNet-MM_19-classes_models)

Band sizes follow the ground sampling distance: 10 m bands (B02, B03, B04, B08) are S x S
(120), 20 m bands (B05, B06, B07, B8A, B11, B12) S/2 (60), 60 m bands (B01, B09) S/6 (20).
Labels in the JSON are CLC-2018 level-3 names (43 classes); the 19-class nomenclature maps
them with the official ``label_indices.json`` table (``LABEL_43_TO_19``), dropping 11 classes.

Checking reads every listed patch's JSON (labels are needed to split and to sample label
fractions). Band files are checked for every patch on small datasets and for the first patch
of each split on large ones; any other missing band file is reported by the loader, by path.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from rsbench.errors import DataLayoutError
from rsbench.io.fixtures import mark_fixture
from rsbench.io.raster import raster_info, write_geotiff

S2_FOLDER = "BigEarthNet-v1.0"
S1_FOLDER = "BigEarthNet-S1-v1.0"
SPLITS = ("train", "val", "test")
#: File suffixes in the archive, and the names rsbench uses (those of the SkySense presets).
S2_FILES = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
S2_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12")
#: Size divisor of each band relative to the 10 m grid.
S2_DIVISOR = dict(zip(S2_FILES, (6, 1, 1, 1, 2, 2, 2, 1, 2, 6, 2, 2)))
EXHAUSTIVE_CHECK_LIMIT = 5000

CLASSES_43 = (
    "Continuous urban fabric", "Discontinuous urban fabric", "Industrial or commercial units",
    "Road and rail networks and associated land", "Port areas", "Airports", "Mineral extraction sites",
    "Dump sites", "Construction sites", "Green urban areas", "Sport and leisure facilities",
    "Non-irrigated arable land", "Permanently irrigated land", "Rice fields", "Vineyards",
    "Fruit trees and berry plantations", "Olive groves", "Pastures", "Annual crops associated with permanent crops",
    "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas", "Broad-leaved forest", "Coniferous forest", "Mixed forest", "Natural grassland",
    "Moors and heathland", "Sclerophyllous vegetation", "Transitional woodland/shrub", "Beaches, dunes, sands",
    "Bare rock", "Sparsely vegetated areas", "Burnt areas", "Inland marshes", "Peatbogs", "Salt marshes",
    "Salines", "Intertidal flats", "Water courses", "Water bodies", "Coastal lagoons", "Estuaries",
    "Sea and ocean",
)
CLASSES = (
    "Urban fabric", "Industrial or commercial units", "Arable land", "Permanent crops", "Pastures",
    "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas", "Broad-leaved forest", "Coniferous forest", "Mixed forest",
    "Natural grassland and sparsely vegetated areas", "Moors, heathland and sclerophyllous vegetation",
    "Transitional woodland, shrub", "Beaches, dunes, sands", "Inland wetlands", "Coastal wetlands",
    "Inland waters", "Marine waters",
)
#: Official 43 -> 19 table (index in CLASSES_43 -> index in CLASSES); absent indices are dropped.
LABEL_43_TO_19 = {
    0: 0, 1: 0, 2: 1, 11: 2, 12: 2, 13: 2, 14: 3, 15: 3, 16: 3, 18: 3, 17: 4, 19: 5, 20: 6, 21: 7,
    22: 8, 23: 9, 24: 10, 25: 11, 31: 11, 26: 12, 27: 12, 28: 13, 29: 14, 33: 15, 34: 15, 35: 16,
    36: 16, 38: 17, 39: 17, 40: 18, 41: 18, 42: 18,
}
LAYOUT_V1 = ("BigEarthNet-v1.0/<patch>/<patch>_Bxx.tif (12 bands at 120/60/20 px) + <patch>_labels_metadata.json; "
             "{train,val,test}.csv with rows '<S2 patch>,<S1 patch>'")
#: reBEN's layout in one line (spelled out in :mod:`rsbench_classification.reben`).
LAYOUT_V2 = ("metadata.parquet (columns patch_id, labels as 19-class names, split in train/validation/test, "
             "s1_name); BigEarthNet-S2/<tile>/<patch_id>/<patch_id>_Bxx.tif (12 bands)")
LAYOUT = f"v1: {LAYOUT_V1} | or v2 (reBEN): {LAYOUT_V2}"
TITLE = "BigEarthNet v1.0"


def labels_19(json_path: Path) -> list[int]:
    """The 19-class indices of a patch's ``labels_metadata.json`` (43-class names mapped)."""
    if not json_path.is_file():
        raise DataLayoutError(f"{json_path}: labels metadata missing (expected <patch>_labels_metadata.json)")
    try:
        meta = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataLayoutError(f"{json_path}: not valid JSON ({exc})") from exc
    names = meta.get("labels") if isinstance(meta, dict) else None
    if not isinstance(names, list) or not names:
        raise DataLayoutError(f"{json_path}: no 'labels' list (expected CLC-2018 level-3 class names)")
    out: set[int] = set()
    for name in names:
        if name not in CLASSES_43:
            raise DataLayoutError(f"{json_path}: label {name!r} is not one of the 43 CLC classes of BigEarthNet")
        idx = LABEL_43_TO_19.get(CLASSES_43.index(name))
        if idx is not None:
            out.add(idx)
    return sorted(out)


def find_root(root: Path) -> Path:
    if (root / S2_FOLDER).is_dir():
        return root
    raise DataLayoutError(f"{root}: not the {TITLE} layout — no {S2_FOLDER}/ folder; expected {LAYOUT_V1}")


def layout_version(root: Path) -> str:
    """``"v1"`` or ``"v2"`` (reBEN) from the folders present; an error naming both layouts otherwise."""
    from rsbench_classification import reben

    v1, v2 = (root / S2_FOLDER).is_dir(), reben.is_layout(root)
    if v1 and v2:
        raise DataLayoutError(f"{root}: holds both BigEarthNet v1 ({S2_FOLDER}/) and v2 ({reben.METADATA} or "
                              f"{reben.S2_FOLDER}/); point the data root at a folder with one release")
    if v1 or v2:
        return "v1" if v1 else "v2"
    raise DataLayoutError(f"{root}: neither BigEarthNet layout — no {S2_FOLDER}/ folder ({TITLE}: {LAYOUT_V1}) "
                          f"and no {reben.METADATA} ({reben.TITLE}: {reben.LAYOUT})")


def read_split(root: Path, split: str) -> list[tuple[str, str]]:
    path = root / f"{split}.csv"
    if not path.is_file():
        raise DataLayoutError(f"{path}: split file missing (expected rows '<S2 patch>,<S1 patch>')")
    rows = [r for r in csv.reader(path.read_text().splitlines()) if r and r[0].strip()]
    if not rows:
        raise DataLayoutError(f"{path}: empty split file")
    return [(r[0].strip(), r[1].strip() if len(r) > 1 else "") for r in rows]


def check_s2_bands(root: Path, patch: str, folder: Path | None = None, grid_ok: bool = False) -> int:
    """Check a patch's 12 band files (in ``folder``, default v1's ``<root>/BigEarthNet-v1.0/<patch>``)
    and their sizes; return its 10 m grid size. ``grid_ok``: a band may also come resampled to
    the 10 m grid (reBEN copies are found both ways)."""
    folder = folder or root / S2_FOLDER / patch
    sizes = {}
    for suffix in S2_FILES:
        path = folder / f"{patch}_{suffix}.tif"
        if not path.is_file():
            raise DataLayoutError(f"{path}: band file missing (a patch holds 12 files _B01.._B12 and _B8A, no B10)")
        info = raster_info(path)
        sizes[suffix] = (info.height, info.width)
    size = sizes["B02"][0]
    for suffix, (h, w) in sizes.items():
        native = size // S2_DIVISOR[suffix]
        if h == w and (h == native or (grid_ok and h == size)):
            continue
        also = f" or {size} px (the 10 m grid)" if grid_ok else ""
        raise DataLayoutError(f"{folder / f'{patch}_{suffix}.tif'}: {h}x{w} px; expected {native} px "
                              f"(1/{S2_DIVISOR[suffix]} of B02's {size}){also}")
    return size


def check(root: Path, with_s1: bool = False) -> dict[str, Any]:
    """The samples of the BigEarthNet release under ``root``, v1 or v2 (see :func:`layout_version`)."""
    root = Path(root)
    if layout_version(root) == "v2":
        from rsbench_classification import reben

        return reben.check(root, with_s1=with_s1)
    return check_v1(root, with_s1)


def check_v1(root: Path, with_s1: bool = False) -> dict[str, Any]:
    root = find_root(Path(root))
    splits = {s: read_split(root, s) for s in SPLITS}
    total = sum(len(v) for v in splits.values())
    samples: dict[str, list[dict[str, Any]]] = {}
    size = 0
    for split, rows in splits.items():
        samples[split] = []
        for n, (s2, s1) in enumerate(rows):
            folder = root / S2_FOLDER / s2
            if not folder.is_dir():
                raise DataLayoutError(f"{folder}: S2 patch folder listed in {root / f'{split}.csv'} is missing")
            if n == 0 or total <= EXHAUSTIVE_CHECK_LIMIT:
                size = check_s2_bands(root, s2)
            if with_s1:
                check_s1(root, s1, split)
            samples[split].append(dict(s2=s2, s1=s1, gt_label=labels_19(folder / f"{s2}_labels_metadata.json")))
    return {"root": str(root), "classes": list(CLASSES), "samples": samples, "size": size,
            "band_ref": "rsbench_classification.ben_s2:band_ref",
            "row_fields": {"ben_version": "v1", "ben_splits": "BigEarthNet-MM_19-classes_models {train,val,test}.csv"}}


def check_s1(root: Path, s1: str, split: str) -> None:
    if not s1:
        raise DataLayoutError(f"{root / f'{split}.csv'}: a row has no S1 patch name (BigEarthNet-MM pairs S2,S1)")
    for pol in ("VV", "VH"):
        path = root / S1_FOLDER / s1 / f"{s1}_{pol}.tif"
        if not path.is_file():
            raise DataLayoutError(f"{path}: S1 band file missing (expected <S1 patch>_VV.tif and _VH.tif)")


def band_ref(sample: dict[str, Any], modality: str, band: str) -> tuple[str, int]:
    """(relative GeoTIFF path, 1-based band index) of one band of a sample."""
    if modality == "s2":
        s2 = sample["s2"]
        return f"{S2_FOLDER}/{s2}/{s2}_{S2_FILES[S2_BANDS.index(band)]}.tif", 1
    s1 = sample["s1"]
    return f"{S1_FOLDER}/{s1}/{s1}_{band}.tif", 1


# -- fixture ------------------------------------------------------------------------------
#: One 43-class name per 19-class label (the first that maps to it), for the fixture's JSONs.
REPRESENTATIVE = {v: CLASSES_43[k] for k, v in sorted(LABEL_43_TO_19.items(), reverse=True)}
FIXTURE_COUNTS = dict(train=57, val=19, test=38)


def _write_tif(path: Path, array: np.ndarray, gsd: float) -> None:
    write_geotiff(path, array, crs="EPSG:32633", origin=(500000, 5800000), gsd=gsd)


def fixture_labels(index: int, rng: np.random.Generator) -> list[int]:
    """Primary class cycles through all 19 (every split sees each class); half get a second."""
    first = index % len(CLASSES)
    labels = {first}
    if rng.random() < 0.5:
        labels.add(int(rng.integers(len(CLASSES))))
    return sorted(labels)


def fixture_signatures(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-class spectral bumps: a distinct pair of the 12 S2 bands, and one S1 polarisation."""
    pairs = [(a, b) for a in range(len(S2_FILES)) for b in range(a + 1, len(S2_FILES))]
    chosen = rng.choice(len(pairs), len(CLASSES), replace=False)
    sig_s2 = np.zeros((len(CLASSES), len(S2_FILES)))
    for k, j in enumerate(chosen):
        sig_s2[k, list(pairs[j])] = 1.0
    sig_s1 = np.eye(2)[np.arange(len(CLASSES)) % 2] * (1 + np.arange(len(CLASSES))[:, None] / len(CLASSES))
    return sig_s2, sig_s1


def write_s2_bands(folder: Path, patch: str, spectrum: np.ndarray, size: int, rng: np.random.Generator) -> None:
    """The 12 band files of one patch at native GSD sizes (10 m grid ``size`` px)."""
    folder.mkdir(parents=True, exist_ok=True)
    for b, suffix in enumerate(S2_FILES):
        px = size // S2_DIVISOR[suffix]
        band = 500 + 2000 * spectrum[b] + rng.normal(0, 150, (px, px))
        _write_tif(folder / f"{patch}_{suffix}.tif", np.clip(band, 0, 10000).astype(np.uint16),
                   10.0 * S2_DIVISOR[suffix])


def write_s1_bands(folder: Path, patch: str, backscatter: np.ndarray, size: int, rng: np.random.Generator) -> None:
    """VV and VH (float32 dB) of one S1 patch."""
    folder.mkdir(parents=True, exist_ok=True)
    for p, pol in enumerate(("VV", "VH")):
        db = -20 + 4 * backscatter[p] + rng.normal(0, 1.0, (size, size))
        _write_tif(folder / f"{patch}_{pol}.tif", db.astype(np.float32), 10.0)


#: ``layout`` values of :func:`write_fixture`.
FIXTURE_LAYOUTS = ("v1", "v2")


def write_fixture(out: Path, seed: int = 0, size: int = 24, with_s1: bool = False,
                  dataset: str = "ben-s2", layout: str = "v1") -> Path:
    """A tiny BigEarthNet (114 patches, 10 m grid ``size`` px) whose labels set the spectrum;
    ``layout="v2"`` writes it as reBEN (:func:`rsbench_classification.reben.write_fixture`).

    Each class raises its own pair of bands (19 distinct pairs of the 12; and one S1
    polarisation): a patch's reflectance is a base level plus the sum of its labels' bumps plus
    noise, so each label is linearly recoverable from band means. Some v1 JSONs also hold a
    class the 19-class table drops.
    """
    if layout not in FIXTURE_LAYOUTS:
        raise DataLayoutError(f"BigEarthNet fixture layout {layout!r}: expected one of {', '.join(FIXTURE_LAYOUTS)}")
    if layout == "v2":
        from rsbench_classification import reben

        return reben.write_fixture(out, seed=seed, size=size, with_s1=with_s1, dataset=dataset)
    out = Path(out)
    rng = np.random.default_rng(seed)
    sig_s2, sig_s1 = fixture_signatures(rng)
    n = 0
    for split, count in FIXTURE_COUNTS.items():
        rows = []
        for _ in range(count):
            r, c = divmod(n, 100)
            s2 = f"S2A_MSIL2A_20170613T101031_{r}_{c}"
            s1 = f"S1A_IW_GRDH_1SDV_20170613T165043_33UUP_{r}_{c}"
            labels = fixture_labels(n, rng)
            names = [REPRESENTATIVE[k] for k in labels] + (["Airports"] if n % 7 == 3 else [])
            folder = out / S2_FOLDER / s2
            write_s2_bands(folder, s2, sig_s2[labels].sum(0), size, rng)
            meta = dict(labels=names, coordinates=dict(ulx=500000, uly=5800000, lrx=501200, lry=5798800),
                        projection="EPSG:32633", tile_source="S2A_MSIL1C_20170613T101031_N0205_R022_T33UUP",
                        acquisition_date="2017-06-13 10:10:31")
            (folder / f"{s2}_labels_metadata.json").write_text(json.dumps(meta))
            if with_s1:
                s1_folder = out / S1_FOLDER / s1
                write_s1_bands(s1_folder, s1, sig_s1[labels].sum(0), size, rng)
                s1_meta = dict(labels=names, corresponding_s2_patch=s2, projection="EPSG:32633",
                               scene_source="S1A_IW_GRDH_1SDV_20170613T165043", acquisition_time="2017-06-13T16:50:43")
                (s1_folder / f"{s1}_labels_metadata.json").write_text(json.dumps(s1_meta))
            rows.append(f"{s2},{s1}\n")
            n += 1
        (out / f"{split}.csv").write_text("".join(rows))
    mark_fixture(out, dataset, seed)
    return out
