"""Change maps on disk: what ``rsbench run`` writes to ``<work dir>/predictions/`` and what
``rsbench score`` reads back, in one place so the two cannot drift apart.

One single-band PNG (or GeoTIFF) per test sample, named as the dataset's customary submission:

* levir-cd, whu-cd: ``<label stem>.png`` (``test_7.png``, ``whu_0001_0002.png``), 0/255 like
  the label (0/1 class ids accepted);
* whu-cd on the official release (samples are windows of one scene per split): one map per
  test scene named like its label, ``change_label.tif`` (or ``.png``), of the scene's size. A run
  saves each predicted window as a part (every process its own) and the main process assembles
  the parts into the scene's GeoTIFF (:func:`assemble_scenes`); ``rsbench score`` reads windows
  of it (:func:`read_scene_window`);
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

import shutil
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from pathlib import Path

import numpy as np

from rsbench.errors import PredictionError
from rsbench.io import raster
from rsbench.io.atomic_write import replacing, write_text

_MAPS = ("a folder of change maps, one single-band PNG (or GeoTIFF) per {what}, of the label's size, "
         "{values}; what a run writes to <work_dir>/predictions")
_BINARY = "0/255 like the label (or 0/1 class ids)"
#: The formats as ``rsbench info task`` states them (TaskInfo.predictions).
FORMATS = {
    "levir-cd": _MAPS.format(what="test pair, named like its label (<name>.png)", values=_BINARY),
    "whu-cd": _MAPS.format(what="test tile, named like its label (<tile>.png)", values=_BINARY)
              + "; on the official release (split_protocol=official) one map per test scene instead, named like "
                "its label (change_label.tif or .png), of the whole scene's size (a run assembles it from its "
                "windows)",
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
    """One predicted map, ``ids`` (H, W), as a PNG in the label's encoding (atomically: a scoring
    pass killed mid-write leaves no truncated map to be scored later)."""
    from PIL import Image

    with replacing(path) as tmp:
        Image.fromarray(encode(np.asarray(ids), label_map)).save(tmp, format="PNG")


# -- whole-scene maps of window samples (WHU-CD official) -----------------------------------
#: Folder under the predictions where a run keeps predicted windows until they are assembled.
PARTS = ".scene-windows"


def scene_stem(dataset: str, img_path: str, seg_map_path: str | None) -> str:
    """The file stem of the change map of the scene a window sample (id ``<scene>#<y>_<x>``) is
    part of: its label's stem (``change_label``), else the dataset's rule on the scene."""
    if seg_map_path:
        return Path(seg_map_path).stem
    return prediction_stem(dataset, img_path.split("#", 1)[0])


#: In a scene's parts folder: the label path, whose georeferencing the assembled map copies.
REFERENCE = "reference.txt"


def write_part(output_dir: Path, stem: str, window: Sequence[int], ids: np.ndarray,
               label_map: Mapping[int, int] | None, reference: str | None = None) -> None:
    """One predicted window ``[y, x, h, w]`` of scene ``stem``, kept until :func:`assemble_scenes`;
    ``reference`` (the label) lends the map its georeferencing."""
    y, x, h, w = (int(v) for v in window)
    if tuple(ids.shape) != (h, w):
        raise ValueError(f"prediction of window {list(window)} of {stem} is {ids.shape}, expected {(h, w)}")
    folder = Path(output_dir) / PARTS / stem
    folder.mkdir(parents=True, exist_ok=True)
    if reference and not (folder / REFERENCE).exists():
        write_text(folder / REFERENCE, str(reference))
    write(folder / f"{y}_{x}.png", ids, label_map)


def _georeference(folder: Path, height: int, width: int) -> dict:
    """The label's CRS and transform when it is a GeoTIFF of the scene's size (else none)."""
    ref = folder / REFERENCE
    if not ref.is_file():
        return {}
    path = Path(ref.read_text().strip())
    if path.suffix.lower() not in (".tif", ".tiff") or not path.is_file():
        return {}
    info = raster.raster_info(path)
    if (info.height, info.width) != (height, width) or info.crs is None:
        return {}
    return dict(crs=info.crs, transform=info.transform)


def assemble_scenes(output_dir: Path) -> list[Path]:
    """Every scene's saved windows as one single-band GeoTIFF ``<output_dir>/<stem>.tif`` (deflate,
    tiled, written window by window: the scene is never held whole); the parts are removed. The
    windows must tile the scene exactly (a leftover of an interrupted run with another window
    size would not: the error names the folder to delete)."""
    root = Path(output_dir) / PARTS
    if not root.is_dir():
        return []
    written = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        boxes = []
        for part in sorted(folder.glob("*.png")):
            y, x = (int(v) for v in part.stem.split("_"))
            info = raster.raster_info(part)
            boxes.append((part, y, x, info.height, info.width))
        if not boxes:
            continue
        height = max(y + h for _, y, _, h, _ in boxes)
        width = max(x + w for _, _, x, _, w in boxes)
        if sum(h * w for *_, h, w in boxes) != height * width:
            raise ValueError(f"{folder}: the saved windows do not tile a {height}x{width} scene exactly "
                             "(left from an interrupted run? delete the folder and test again)")
        out = Path(output_dir) / f"{folder.name}.tif"
        with raster.raster_writer(out, height, width, dtype="uint8", tiled=True, blockxsize=256, blockysize=256,
                                  compress="deflate", **_georeference(folder, height, width)) as put:
            for part, y, x, _, _ in boxes:
                put(raster.read_raster(part, bands=1)[..., 0].astype(np.uint8, copy=False), y, x)
        shutil.rmtree(folder)
        written.append(out)
    shutil.rmtree(root, ignore_errors=True)
    return written


def read_scene_window(path: Path, window: Sequence[int], scene_shape: Sequence[int],
                      cache: MutableMapping[Path, np.ndarray]) -> np.ndarray:
    """Window ``[y, x, h, w]`` of a whole-scene map (2-D raw values), after checking the map has
    the scene's size: a windowed read from a GeoTIFF; a PNG is decoded once into ``cache``."""
    from rsbench.run.scoring import read_id_map

    y, x, h, w = (int(v) for v in window)
    expected = (int(scene_shape[0]), int(scene_shape[1]))
    if raster.is_geotiff(path):
        info = raster.raster_info(path, error=PredictionError)
        if info.bands != 1:
            raise PredictionError(f"{path}: {info.bands} bands; expected one band of change values")
        if (info.height, info.width) != expected:
            raise PredictionError(f"{path}: size {(info.height, info.width)}; the label is {expected}")
        return raster.read_raster(path, (y, x, h, w), error=PredictionError)[..., 0]
    if path not in cache:
        cache.clear()  # one scene at a time: the test windows come scene by scene
        cache[path] = read_id_map(path)
    arr = cache[path]
    if arr.shape != expected:
        raise PredictionError(f"{path}: size {arr.shape}; the label is {expected}")
    return arr[y:y + h, x:x + w]
