"""WHU-CD (Ji et al. 2019), building change: one aerial pair (2012/2016) of 32507x15354 px.

Layout here: the common 256-px re-pack used by open-cd / BIT_CD: ``{A,B,label}/<tile>.png`` plus
``list/{train,val,test}.txt`` (one file name per line), labels 0/255. The split protocol (this
random-crop re-pack vs the official train/test areas) is recorded in the row's ``split_protocol``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rsbench.errors import DataLayoutError
from rsbench.fixtures import mark_fixture
from rsbench_change.pairs import BINARY_CLASSES, LABEL_MAP, scan_pairs, write_pair

FOLDER = "WHU-CD-256"
TITLE = "WHU-CD (256 re-pack)"
SPLITS = ("train", "val", "test")
LAYOUT = "{A,B,label}/<tile>.png + list/{train,val,test}.txt — 256 px RGB tiles, 0/255 labels (root may be WHU-CD-256/ or its parent)"


def find_root(root: Path) -> Path:
    return root / FOLDER if not (root / "list").is_dir() and (root / FOLDER).is_dir() else root


def check(root: Path) -> dict[str, Any]:
    root = find_root(Path(root))
    splits = {}
    for split in SPLITS:
        lst = root / "list" / f"{split}.txt"
        if not lst.is_file():
            raise DataLayoutError(f"{lst}: missing split list; {TITLE} expects {LAYOUT}")
        names = [line.strip() for line in lst.read_text().splitlines() if line.strip()]
        if not names:
            raise DataLayoutError(f"{lst}: empty split list")
        splits[split] = scan_pairs(root, names, TITLE)
    return dict(root=str(root), classes=list(BINARY_CLASSES), splits=splits, label_map=LABEL_MAP,
                date_modalities=["hr", "hr"], hr_uint8=True)


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
