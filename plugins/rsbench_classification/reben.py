"""BigEarthNet v2.0 (reBEN, Clasen et al. 2025), the current official release: S2 + S1 patch pairs
with 19-class labels and official geographic splits in ``metadata.parquet``.

Official layout (``<root>`` holds the extracted Zenodo 10891137 archives)::

    metadata.parquet       one row per patch pair: patch_id, labels (19-class names), split
                           (train / validation / test), country, s1_name, s2v1_name,
                           contains_seasonal_snow, contains_cloud_or_shadow
    BigEarthNet-S2/<tile>/<patch_id>/<patch_id>_B01.tif ... _B12.tif
                           (12 single-band GeoTIFFs, B8A, no B10; <tile> is patch_id less its
                           trailing _<row>_<col>, e.g. S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP)
    BigEarthNet-S1/<scene>/<s1_name>/<s1_name>_VV.tif, _VH.tif
                           (<scene> is s1_name less its _<tile>_<row>_<col>)
    Reference_Maps/...     pixel-level CLC maps (not needed here)

Unlike v1, labels are already the 19-class nomenclature (the names of ``ben_s2.CLASSES``) and
the splits are the release's own (``validation`` is rsbench's ``val``). The release's
``metadata.parquet`` lists only patches without seasonal snow, cloud or shadow (flagged ones
ship in a separate file); rows flagged in either column are dropped and counted in the row.
Band files are checked as in v1 (every patch on small datasets, the first per split on large
ones); they keep native GSD sizes (120/60/20 px) and are also accepted all on the 10 m grid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rsbench.errors import DataLayoutError, RsbenchError
from rsbench.io.fixtures import mark_fixture
from rsbench_classification import ben_s2

METADATA = "metadata.parquet"
S2_FOLDER = "BigEarthNet-S2"
S1_FOLDER = "BigEarthNet-S1"
#: The release's split names -> rsbench's.
SPLIT_NAMES = {"train": "train", "validation": "val", "test": "test"}
REQUIRED = ("patch_id", "labels", "split")
FLAGS = ("contains_seasonal_snow", "contains_cloud_or_shadow")
LAYOUT = ben_s2.LAYOUT_V2 + f"; {S1_FOLDER}/<scene>/<s1_name>/<s1_name>_{{VV,VH}}.tif for BigEarthNet-MM"
TITLE = "BigEarthNet v2.0 (reBEN)"


def s2_folder(patch: str) -> str:
    """``BigEarthNet-S2/<tile>/<patch>``: the tile folder is the name less ``_<row>_<col>``."""
    return f"{S2_FOLDER}/{patch.rsplit('_', 2)[0]}/{patch}"


def s1_folder(s1: str) -> str:
    """``BigEarthNet-S1/<scene>/<s1>``: the scene folder is the name less ``_<tile>_<row>_<col>``."""
    return f"{S1_FOLDER}/{s1.rsplit('_', 3)[0]}/{s1}"


def is_layout(root: Path) -> bool:
    return (root / METADATA).is_file() or (root / S2_FOLDER).is_dir()


def read_metadata(root: Path, with_s1: bool) -> Any:
    """``metadata.parquet`` as a DataFrame, its required columns checked."""
    import pandas as pd

    path = root / METADATA
    if not path.is_file():
        raise DataLayoutError(f"{path}: missing; the {TITLE} layout needs it for labels and splits ({LAYOUT})")
    try:
        frame = pd.read_parquet(path)
    except ImportError as exc:  # an environment problem, not a layout one
        raise RsbenchError(f"{path}: reading parquet needs pyarrow, which is not installed (pip install pyarrow)") from exc
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for a damaged file
        raise DataLayoutError(f"{path}: not a readable parquet file ({type(exc).__name__}: {exc})") from exc
    need = REQUIRED + (("s1_name",) if with_s1 else ())
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise DataLayoutError(f"{path}: no column(s) {', '.join(missing)}; has {', '.join(map(str, frame.columns))}")
    return frame


def labels_19(names: Any, path: Path, patch: str) -> list[int]:
    """Indices in ``ben_s2.CLASSES`` of one row's ``labels`` (reBEN's 19-class names)."""
    if isinstance(names, str) or not hasattr(names, "__iter__"):
        raise DataLayoutError(f"{path}: patch {patch}: labels {names!r} is not a list of class names")
    out = set()
    for name in names:
        if name not in ben_s2.CLASSES:
            raise DataLayoutError(f"{path}: patch {patch}: label {name!r} is not one of the 19 BigEarthNet "
                                  f"classes ({', '.join(ben_s2.CLASSES)})")
        out.add(ben_s2.CLASSES.index(name))
    return sorted(out)


def check_s2_bands(root: Path, patch: str) -> int:
    """Check a patch's 12 band files (native sizes or all on the 10 m grid); return its grid size."""
    return ben_s2.check_s2_bands(root, patch, folder=root / s2_folder(patch), grid_ok=True)


def check_s1(root: Path, s1: str, patch: str) -> None:
    if not isinstance(s1, str) or not s1:
        raise DataLayoutError(f"{root / METADATA}: patch {patch} has no s1_name (BigEarthNet-MM pairs S2 and S1)")
    for pol in ("VV", "VH"):
        path = root / s1_folder(s1) / f"{s1}_{pol}.tif"
        if not path.is_file():
            raise DataLayoutError(f"{path}: S1 band file missing (expected <s1_name>_VV.tif and _VH.tif)")


def check(root: Path, with_s1: bool = False) -> dict[str, Any]:
    root = Path(root)
    frame = read_metadata(root, with_s1)
    meta = root / METADATA
    unknown = sorted(set(map(str, frame["split"].unique())) - set(SPLIT_NAMES))
    if unknown:
        raise DataLayoutError(f"{meta}: split value(s) {', '.join(unknown)}; expected {', '.join(SPLIT_NAMES)}")
    flagged = np.zeros(len(frame), dtype=bool)
    for column in FLAGS:
        if column in frame.columns:
            flagged |= frame[column].fillna(False).astype(bool).to_numpy()
    kept = frame[~flagged]
    samples: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLIT_NAMES.values()}
    total = len(kept)
    size = 0
    s1_names = kept["s1_name"] if "s1_name" in kept.columns else [""] * total
    for patch, names, split, s1 in zip(kept["patch_id"], kept["labels"], kept["split"], s1_names):
        ours = SPLIT_NAMES[split]
        folder = root / s2_folder(patch)
        if not folder.is_dir():
            raise DataLayoutError(f"{folder}: S2 patch folder of {patch} (listed in {meta}, split {split}) is missing")
        if not samples[ours] or total <= ben_s2.EXHAUSTIVE_CHECK_LIMIT:
            size = check_s2_bands(root, patch)
        if with_s1:
            check_s1(root, s1, patch)
        samples[ours].append(dict(s2=patch, s1=s1 if isinstance(s1, str) else "",
                                  gt_label=labels_19(names, meta, patch)))
    empty = [s for s, rows in samples.items() if not rows]
    if empty:
        raise DataLayoutError(f"{meta}: no usable patch in split(s) {', '.join(empty)} "
                              f"({int(flagged.sum())} snow/cloud-flagged rows dropped)")
    return {"root": str(root), "classes": list(ben_s2.CLASSES), "samples": samples, "size": size,
            "band_ref": "rsbench_classification.reben:band_ref",
            "row_fields": {"ben_version": "v2", "ben_splits": f"official ({METADATA} split column)",
                           "ben_flagged_dropped": int(flagged.sum())}}


def band_ref(sample: dict[str, Any], modality: str, band: str) -> tuple[str, int]:
    """(relative GeoTIFF path, 1-based band index) of one band of a sample."""
    if modality == "s2":
        s2 = sample["s2"]
        return f"{s2_folder(s2)}/{s2}_{ben_s2.S2_FILES[ben_s2.S2_BANDS.index(band)]}.tif", 1
    s1 = sample["s1"]
    return f"{s1_folder(s1)}/{s1}_{band}.tif", 1


# -- fixture ------------------------------------------------------------------------------
#: (S2 tile product, S1 scene, tile id, country) of the fixture's two tiles.
FIXTURE_TILES = (("S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP", "S1A_IW_GRDH_1SDV_20170613T165043", "33UUP",
                  "Austria"),
                 ("S2B_MSIL2A_20170615T102019_N9999_R122_T32TNS", "S1A_IW_GRDH_1SDV_20170615T170156", "32TNS",
                  "Switzerland"))


def write_fixture(out: Path, seed: int = 0, size: int = 24, with_s1: bool = False,
                  dataset: str = "ben-s2") -> Path:
    """A tiny reBEN (114 patch pairs over two tiles, 57/19/38 train/validation/test) with the
    same label-set spectra as the v1 fixture (:func:`ben_s2.write_fixture`); ``metadata.parquet``
    written with pandas (pyarrow). S1 patches are written only ``with_s1``."""
    import pandas as pd

    out = Path(out)
    rng = np.random.default_rng(seed)
    sig_s2, sig_s1 = ben_s2.fixture_signatures(rng)
    records = []
    n = 0
    for split, count in zip(SPLIT_NAMES, ben_s2.FIXTURE_COUNTS.values()):
        for _ in range(count):
            product, scene, tile, country = FIXTURE_TILES[n % 2]
            r, c = divmod(n, 100)
            patch, s1 = f"{product}_{r}_{c}", f"{scene}_{tile}_{r}_{c}"
            labels = ben_s2.fixture_labels(n, rng)
            ben_s2.write_s2_bands(out / s2_folder(patch), patch, sig_s2[labels].sum(0), size, rng)
            if with_s1:
                ben_s2.write_s1_bands(out / s1_folder(s1), s1, sig_s1[labels].sum(0), size, rng)
            records.append(dict(patch_id=patch, labels=[ben_s2.CLASSES[k] for k in labels], split=split,
                                country=country, s1_name=s1, s2v1_name=f"S2A_MSIL2A_20170613T101031_{r}_{c}",
                                contains_seasonal_snow=False, contains_cloud_or_shadow=False))
            n += 1
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame.from_records(records).to_parquet(out / METADATA, index=False)
    mark_fixture(out, dataset, seed)
    return out


def write_mm_fixture(out: Path, seed: int = 0) -> Path:
    """The reBEN fixture with its S1 patches, as BigEarthNet-MM reads it (the ``v2`` archives of ben-mm)."""
    return write_fixture(out, seed=seed, with_s1=True, dataset="ben-mm")
