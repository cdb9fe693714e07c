"""BigEarthNet-MM (Sumbul et al. 2021): BigEarthNet S2 patches plus their Sentinel-1 twins.

Either release (detected as in :mod:`rsbench_classification.ben_s2`). v2 (reBEN): the pairs are the
rows of ``metadata.parquet`` (``patch_id``, ``s1_name``), S1 files under
``BigEarthNet-S1/<scene>/<s1_name>/`` (:mod:`rsbench_classification.reben`).

v1 layout: the S2 layout of :mod:`rsbench_classification.ben_s2` plus
``BigEarthNet-S1-v1.0/<S1 patch>/<S1 patch>_{VV,VH}.tif`` (120x120, float32 backscatter in dB)
and ``<S1 patch>_labels_metadata.json`` (with ``corresponding_s2_patch``). The split CSVs pair
each S2 patch with its S1 patch; labels are read from the S2 JSON (they are the same).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rsbench_classification import ben_s2

LAYOUT = (f"v1: {ben_s2.LAYOUT_V1}; BigEarthNet-S1-v1.0/<S1 patch>/<S1 patch>_{{VV,VH}}.tif | or v2 (reBEN): "
          f"{ben_s2.LAYOUT_V2}; BigEarthNet-S1/<scene>/<s1_name>/<s1_name>_{{VV,VH}}.tif")
CLASSES = ben_s2.CLASSES


def check(root: Path) -> dict[str, Any]:
    return ben_s2.check(Path(root), with_s1=True)


def write_fixture(out: Path, seed: int = 0, layout: str = "v1") -> Path:
    """The BigEarthNet fixture with S1 patches, as v1 or (``layout="v2"``) reBEN."""
    return ben_s2.write_fixture(Path(out), seed=seed, with_s1=True, dataset="ben-mm", layout=layout)
