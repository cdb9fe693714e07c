"""BigEarthNet-MM (Sumbul et al. 2021): BigEarthNet v1.0 S2 patches plus their Sentinel-1 twins.

Official layout: the S2 layout of :mod:`rsbench_imagelevel.ben_s2` plus
``BigEarthNet-S1-v1.0/<S1 patch>/<S1 patch>_{VV,VH}.tif`` (120x120, float32 backscatter in dB)
and ``<S1 patch>_labels_metadata.json`` (with ``corresponding_s2_patch``). The split CSVs pair
each S2 patch with its S1 patch; labels are read from the S2 JSON (they are the same).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rsbench_imagelevel import ben_s2

LAYOUT = ben_s2.LAYOUT + "; BigEarthNet-S1-v1.0/<S1 patch>/<S1 patch>_{VV,VH}.tif"
CLASSES = ben_s2.CLASSES


def check(root: Path) -> dict[str, Any]:
    return ben_s2.check(Path(root), with_s1=True)


def write_fixture(out: Path, seed: int = 0) -> Path:
    return ben_s2.write_fixture(Path(out), seed=seed, with_s1=True, dataset="ben-mm")
