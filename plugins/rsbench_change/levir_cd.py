"""LEVIR-CD (Chen & Shi 2020): 637 Google-Earth pairs of 1024x1024 PNG at 0.5 m, Texas.

Official layout: ``{train,val,test}/{A,B,label}/<name>.png`` (445 / 64 / 128 pairs), labels 0/255
(255 = change). The root may be the dataset folder or its parent ``LEVIR-CD/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rsbench.errors import DataLayoutError
from rsbench.fixtures import mark_fixture
from rsbench_change.pairs import BINARY_CLASSES, LABEL_MAP, scan_pairs, write_pair

FOLDER = "LEVIR-CD"
TITLE = "LEVIR-CD"
SPLITS = ("train", "val", "test")
LAYOUT = "{train,val,test}/{A,B,label}/<name>.png — RGB pairs and 0/255 change labels (root may be LEVIR-CD/ or its parent)"


def find_root(root: Path) -> Path:
    return root / FOLDER if not (root / "train").is_dir() and (root / FOLDER).is_dir() else root


def check(root: Path) -> dict[str, Any]:
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
    return dict(root=str(root), classes=list(BINARY_CLASSES), splits=splits, label_map=LABEL_MAP,
                date_modalities=["hr", "hr"], hr_uint8=True)


def write_fixture(out: Path, seed: int = 0, size: int = 64, counts: tuple[int, int, int] = (12, 2, 4)) -> Path:
    """A tiny LEVIR-CD: ``size`` px pairs named like the official ``train_1.png``."""
    rng = np.random.default_rng(seed)
    root = Path(out) / FOLDER
    for split, n in zip(SPLITS, counts):
        for i in range(1, n + 1):
            write_pair(root / split, f"{split}_{i}.png", rng, size)
    mark_fixture(Path(out), "levir-cd", seed)
    return Path(out)
