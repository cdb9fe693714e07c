"""AID (Aerial Image Dataset, Xia et al. 2017): 10,000 RGB scenes of 600x600 px, 30 classes.

Official layout: ``AID/<Class>/<class>_<n>.jpg`` (lower-case class name in the file name).
There is no official split: papers sample a training ratio per class (TR = 20 % or 50 %).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rsbench_classification import folder_per_class

CLASSES = (
    "Airport", "BareLand", "BaseballField", "Beach", "Bridge", "Center", "Church", "Commercial",
    "DenseResidential", "Desert", "Farmland", "Forest", "Industrial", "Meadow", "MediumResidential",
    "Mountain", "Park", "Parking", "Playground", "Pond", "Port", "RailwayStation", "Resort", "River",
    "School", "SparseResidential", "Square", "Stadium", "StorageTanks", "Viaduct",
)
FOLDER = "AID"
TITLE = "AID"
LAYOUT = "AID/<Class>/<class>_<n>.jpg — 30 class folders of 600x600 RGB JPEGs (the root may be AID/ or its parent)"


def check(root: Path) -> dict[str, Any]:
    return folder_per_class.scan(Path(root), FOLDER, CLASSES, TITLE)


def write_fixture(out: Path, seed: int = 0, per_class: int = 20, size: int = 64) -> Path:
    """A tiny AID: ``per_class`` 64x64 JPEGs per class in the official layout."""
    return folder_per_class.write_fixture(
        Path(out), FOLDER, CLASSES, lambda cls, n: f"{cls.lower()}_{n}.jpg",
        per_class=per_class, size=size, seed=seed, dataset="aid",
    )
