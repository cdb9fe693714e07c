"""LEVIR-CD (Chen & Shi 2020): 637 Google-Earth pairs of 1024x1024 PNG at 0.5 m, Texas.

Two layouts are read; which one was is the summary's ``layout``, recorded in the row:

* ``tiles1024``, the official release: ``{train,val,test}/{A,B,label}/<name>.png`` (445 / 64 / 128
  pairs of full 1024 px tiles), labels 0/255 (255 = change). The root may be the dataset folder
  or its parent ``LEVIR-CD/``. The papers' LEVIR-CD test set is these 128 tiles.
* ``crops256``, the crops many repositories ship (BIT_CD / ChangeFormer's ``LEVIR-CD256.zip``):
  every tile cut into 16 non-overlapping 256 px crops named ``<split>_<n>_<row>_<col>.png``
  (pixel offsets, 4 digits: ``test_2_0000_0512.png``) in one ``A/``, ``B/``, ``label/``, and
  ``list/{train,val,test}.txt`` naming each split's crops (one file name per line). The root may
  be the dataset folder or its parent ``LEVIR-CD256/``. Scoring 2048 test crops instead of 128
  tiles moves F1 by about 0.4-1 point (open-cd issue #148), so such a run is not the papers'.

``layout="auto"`` (the default) takes the official tiles where they are, else the crops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rsbench.errors import DataLayoutError, SpecError
from rsbench.io.fixtures import mark_fixture
from rsbench_change.io import raster_shape
from rsbench_change.pairs import (
    BINARY_CLASSES,
    LABEL_MAP,
    pair_arrays,
    save_pair,
    scan_list,
    scan_pairs,
    write_pair,
)

FOLDER = "LEVIR-CD"
CROPS_FOLDER = "LEVIR-CD256"
TITLE = "LEVIR-CD"
SPLITS = ("train", "val", "test")
#: The layouts read (``auto`` picks one); the name a run's summary and row record.
TILES, CROPS = "tiles1024", "crops256"
LAYOUTS = ("auto", TILES, CROPS)
LAYOUT_TILES = ("{train,val,test}/{A,B,label}/<name>.png — the official 1024 px RGB pairs and 0/255 change "
                "labels (root may be LEVIR-CD/ or its parent)")
LAYOUT_CROPS = ("{A,B,label}/<split>_<n>_<row>_<col>.png + list/{train,val,test}.txt — the 256 px crops of "
                "BIT_CD/ChangeFormer's LEVIR-CD256.zip (root may be LEVIR-CD256/ or its parent)")
LAYOUT = f"official tiles: {LAYOUT_TILES} | or crops: {LAYOUT_CROPS}"


def find_root(root: Path) -> Path:
    """The official layout's folder: ``root`` or ``root/LEVIR-CD``."""
    return root / FOLDER if not (root / "train").is_dir() and (root / FOLDER).is_dir() else root


def find_crops(root: Path) -> Path:
    """The crops layout's folder: ``root`` or ``root/LEVIR-CD256``."""
    return root / CROPS_FOLDER if not (root / "list").is_dir() and (root / CROPS_FOLDER).is_dir() else root


def detect(root: Path) -> str:
    """Which layout ``root`` holds: the official tiles where any split folder is there, else the
    crops where their ``list/`` is, else the official one (whose errors then say what is missing)."""
    tiles = find_root(root)
    if any((tiles / split).is_dir() for split in SPLITS):
        return TILES
    return CROPS if (find_crops(root) / "list").is_dir() else TILES


def check(root: Path, layout: str = "auto") -> dict[str, Any]:
    root = Path(root)
    if layout not in LAYOUTS:
        raise SpecError(f"--option layout={layout}: expected one of {', '.join(LAYOUTS)}")
    found = detect(root)
    if layout == TILES and found == CROPS:
        raise DataLayoutError(f"{find_crops(root)}: holds {TITLE}'s crops (list/{{train,val,test}}.txt), not the "
                              f"official tiles; read them with --option layout={CROPS} (the row then records it, and "
                              "its F1 is not compared with the papers' full-tile numbers)")
    return check_crops(root) if (found if layout == "auto" else layout) == CROPS else check_tiles(root)


def _summary(root: Path, splits: dict[str, list[dict[str, Any]]], layout: str) -> dict[str, Any]:
    return dict(root=str(root), classes=list(BINARY_CLASSES), splits=splits, label_map=LABEL_MAP,
                date_modalities=["hr", "hr"], hr_uint8=True, layout=layout)


def check_tiles(root: Path) -> dict[str, Any]:
    root = find_root(Path(root))
    splits = {}
    for split in SPLITS:
        folder = root / split
        if not folder.is_dir():
            raise DataLayoutError(f"{folder}: missing folder; {TITLE} expects {LAYOUT}")
        a = folder / "A"
        names = sorted(p.name for p in a.glob("*.png")) if a.is_dir() else []
        if a.is_dir() and not names:
            raise DataLayoutError(f"{a}: no .png images")
        splits[split] = scan_pairs(folder, names, TITLE)
    return _summary(root, splits, TILES)


def check_crops(root: Path) -> dict[str, Any]:
    root = find_crops(Path(root))
    if not (root / "list").is_dir():
        raise DataLayoutError(f"{root / 'list'}: missing folder; {TITLE} crops are read as {LAYOUT_CROPS}")
    title = f"{TITLE} crops"
    splits = {split: scan_list(root, root / "list" / f"{split}.txt", title, LAYOUT_CROPS) for split in SPLITS}
    h, w, _ = raster_shape(splits["test"][0]["dates"][0][0])
    data = _summary(root, splits, CROPS)
    data["protocol_note"] = (f"{CROPS} layout: {h}x{w} px crops listed in list/{{train,val,test}}.txt, not the "
                             "official 1024 px test tiles")
    return data


def write_fixture(out: Path, seed: int = 0, size: int = 64, counts: tuple[int, int, int] = (12, 2, 4),
                  layout: str = TILES) -> Path:
    """A tiny LEVIR-CD: ``size`` px pairs named like the official ``train_1.png``; with
    ``layout="crops256"`` the crops layout instead (:func:`write_crops_fixture`)."""
    if layout == CROPS:
        return write_crops_fixture(out, seed=seed, crop=size, counts=counts)
    if layout != TILES:
        raise DataLayoutError(f"LEVIR-CD fixture layout {layout!r}: expected {TILES} or {CROPS}")
    rng = np.random.default_rng(seed)
    root = Path(out) / FOLDER
    for split, n in zip(SPLITS, counts):
        for i in range(1, n + 1):
            write_pair(root / split, f"{split}_{i}.png", rng, size)
    mark_fixture(Path(out), "levir-cd", seed)
    return Path(out)


def write_crops_fixture(out: Path, seed: int = 0, crop: int = 64, per_side: int = 2,
                        counts: tuple[int, int, int] = (12, 2, 4)) -> Path:
    """A tiny LEVIR-CD256 under ``out/LEVIR-CD256``: ``counts`` tiles per split of
    ``per_side * crop`` px (same building density as the tile fixture), each cut as the
    release's tiles are into ``per_side**2`` crops ``<split>_<n>_<row>_<col>.png``, plus
    ``list/{train,val,test}.txt``."""
    rng = np.random.default_rng(seed)
    root = Path(out) / CROPS_FOLDER
    (root / "list").mkdir(parents=True, exist_ok=True)
    tile = per_side * crop
    for split, n in zip(SPLITS, counts):
        names = []
        for i in range(1, n + 1):
            arrays = pair_arrays(rng, tile, scale=per_side ** 2)
            for y in range(0, tile, crop):
                for x in range(0, tile, crop):
                    name = f"{split}_{i}_{y:04d}_{x:04d}.png"
                    save_pair(root, name, {k: np.ascontiguousarray(a[y:y + crop, x:x + crop])
                                          for k, a in arrays.items()})
                    names.append(name)
        (root / "list" / f"{split}.txt").write_text("".join(f"{name}\n" for name in names))
    mark_fixture(Path(out), "levir-cd", seed)
    return Path(out)
