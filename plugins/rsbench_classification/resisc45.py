"""NWPU-RESISC45 (Cheng et al. 2017): 31,500 RGB scenes of 256x256 px, 45 classes x 700.

Official layout: ``NWPU-RESISC45/<class>/<class>_NNN.jpg`` (lower-case snake-case class names,
three-digit numbers). No official split: SkySense samples a training ratio per class (TR 10 % / 20 %),
so the task reuses AID's per-class split and scene-classification task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rsbench_classification import folder_per_class

CLASSES = (
    "airplane", "airport", "baseball_diamond", "basketball_court", "beach", "bridge", "chaparral",
    "church", "circular_farmland", "cloud", "commercial_area", "dense_residential", "desert", "forest",
    "freeway", "golf_course", "ground_track_field", "harbor", "industrial_area", "intersection", "island",
    "lake", "meadow", "medium_residential", "mobile_home_park", "mountain", "overpass", "palace",
    "parking_lot", "railway", "railway_station", "rectangular_farmland", "river", "roundabout", "runway",
    "sea_ice", "ship", "snowberg", "sparse_residential", "stadium", "storage_tank", "tennis_court",
    "terrace", "thermal_power_station", "wetland",
)
FOLDER = "NWPU-RESISC45"
TITLE = "NWPU-RESISC45"
LAYOUT = ("NWPU-RESISC45/<class>/<class>_NNN.jpg — 45 class folders of 256x256 RGB JPEGs "
          "(the root may be NWPU-RESISC45/ or its parent)")


def check(root: Path) -> dict[str, Any]:
    return folder_per_class.scan(Path(root), FOLDER, CLASSES, TITLE)


def write_fixture(out: Path, seed: int = 0, per_class: int = 10, size: int = 64) -> Path:
    """A tiny RESISC-45: ``per_class`` JPEGs of ``size`` px per class in the official layout (64 px:
    the smallest input every tiny backbone takes, SkySense's Swin window included)."""
    return folder_per_class.write_fixture(
        Path(out), FOLDER, CLASSES, lambda cls, n: f"{cls}_{n:03d}.jpg",
        per_class=per_class, size=size, seed=seed, dataset="resisc45",
    )
