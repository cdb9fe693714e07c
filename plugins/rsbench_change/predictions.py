"""Change maps on disk: what ``rsbench run`` writes to ``<work dir>/predictions/`` and what
``rsbench score`` reads back, in one place so the two cannot drift apart.

One single-band PNG (or GeoTIFF) per test sample, named as the dataset's customary submission:

* levir-cd, whu-cd: ``<label stem>.png`` (``test_7.png``, ``whu_0001_0002.png``), 0/255 like
  the label (0/1 class ids accepted);
* oscd: ``<city>.png`` (``brasilia.png``; every city's label is called ``cm/cm.png``), 0/255
  like the label (0/1 accepted);
* dfc25-t2: ``<event>_<id>_building_damage.png`` (the label's stem, as BRIGHT's Codalab wants),
  class ids 0-3 like the target;
* dyna-s2-cd: class ids 0-5 per month, named like the month's label (see
  :mod:`rsbench_change.dyna_cd`).

A run writes every map in the label's own encoding (class ids through the inverse of the
dataset's label map), so its predictions folder is a valid submission and scores the run's
value. Reading accepts either the label encoding or plain class ids; a map mixing the two
(e.g. 0, 1 and 255) is an error naming the file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from rsbench.errors import PredictionError

_MAPS = ("a folder of change maps, one single-band PNG (or GeoTIFF) per {what}, of the label's size, "
         "{values}; what a run writes to <work_dir>/predictions")
_BINARY = "0/255 like the label (or 0/1 class ids)"
#: The formats as ``rsbench info task`` states them (TaskInfo.predictions).
FORMATS = {
    "levir-cd": _MAPS.format(what="test pair, named like its label (<name>.png)", values=_BINARY),
    "whu-cd": _MAPS.format(what="test tile, named like its label (<tile>.png)", values=_BINARY),
    "oscd": _MAPS.format(what="test city, named <city>.png (the city folder's name)", values=_BINARY),
    "dfc25-t2": _MAPS.format(what="holdout sample, named like its target (<event>_<id>_building_damage.png, "
                                  "the BRIGHT Codalab naming)",
                             values="class ids 0-3 (background, intact, damaged, destroyed)"),
    "dyna-s2-cd": ("a folder of class-id PNGs (0-5), one per month of each test cube, named like the month's "
                   "label (<scene>-YYYY_MM_01.png, as DynamicEarthNet's Codalab evaluation), of the label's size; "
                   "pair (t, t+1) is scored from months t and t+1. A run's per-pair maps "
                   "<cube>_<YYYY-MM>_<YYYY-MM>_t.png / _t1.png are used instead where both exist; a run writes "
                   "both forms to <work_dir>/predictions"),
}
#: Per dataset: the prediction file stem of a test sample, from its ``img_path`` (the sample id:
#: the first date's file for the pair layouts and BRIGHT, the city folder for OSCD).
_STEMS: dict[str, Callable[[str], str]] = {
    "levir-cd": lambda p: Path(p).stem,
    "whu-cd": lambda p: Path(p).stem,
    "oscd": lambda p: Path(p).name,
    "dfc25-t2": lambda p: Path(p).stem.removesuffix("_pre_disaster") + "_building_damage",
}


def prediction_stem(dataset: str, img_path: str) -> str:
    """The file stem (no suffix) of the prediction for the sample whose id is ``img_path``."""
    try:
        return _STEMS[dataset](img_path)
    except KeyError:
        raise PredictionError(f"dataset {dataset!r} has no change-map naming rule "
                              f"(known: {', '.join(_STEMS)})") from None


def encode(ids: np.ndarray, label_map: Mapping[int, int] | None) -> np.ndarray:
    """Class ids -> the label's raw values (``{0: 0, 255: 1}`` writes change as 255), uint8."""
    if not label_map:
        return ids.astype(np.uint8)
    out = np.zeros(ids.shape, np.uint8)
    for raw, cls in label_map.items():
        if int(cls) != 255:
            out[ids == int(cls)] = int(raw)
    return out


def decode(raw: np.ndarray, label_map: Mapping[int, int] | None, n_classes: int, path: Path) -> np.ndarray:
    """A read map -> class ids (int64): values in the label's encoding are mapped, a map of plain
    class ids is kept; anything else names the file and the values found."""
    values = {int(v) for v in np.unique(raw)}
    classes = set(range(n_classes))
    encoded = {int(k) for k, v in (label_map or {}).items() if int(v) != 255}
    if label_map and values <= encoded:
        out = np.zeros(raw.shape, np.int64)
        for src, dst in label_map.items():
            out[raw == int(src)] = int(dst)
        return out
    if values <= classes:
        return raw.astype(np.int64)
    allowed = f"class ids 0..{n_classes - 1}"
    if encoded:
        allowed = f"the label values {', '.join(map(str, sorted(encoded)))} or {allowed}"
    bad = sorted(values - classes - encoded)
    if bad:
        raise PredictionError(f"{path}: values {bad[:5]}; expected {allowed}")
    raise PredictionError(f"{path}: values {sorted(values)[:8]} mix the label values and class ids; "
                          f"expected {allowed}, not both")


def write(path: Path, ids: np.ndarray, label_map: Mapping[int, int] | None) -> None:
    """One predicted map, ``ids`` (H, W), as a PNG in the label's encoding."""
    from PIL import Image

    Image.fromarray(encode(np.asarray(ids), label_map)).save(path)
