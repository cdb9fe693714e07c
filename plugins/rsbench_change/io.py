"""Reading rasters and checking pairs for the change datasets: one place that names the file in
every error, so each dataset module only says where its files are."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from rsbench.errors import DataLayoutError

TIF_SUFFIXES = (".tif", ".tiff")


#: A pixel window ``(y, x, h, w)`` of a raster (row, column of its top-left corner, height, width).
Window = Sequence[int]
#: Rows per strip when a whole raster is scanned (label values), so a 32507 x 15354 scene is never held at once.
STRIP_ROWS = 1024


def read_raster(path: str | Path, window: Window | None = None) -> np.ndarray:
    """A raster as (H, W, C): GeoTIFFs through rasterio (any band count/dtype), others through PIL.

    ``window`` ``(y, x, h, w)`` reads only that part: a windowed rasterio read for GeoTIFFs (the
    WHU-CD whole-split scenes are too large to load whole), a slice of the decoded image otherwise.
    A window outside the raster is an error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataLayoutError(f"{path}: no such file")
    try:
        if path.suffix.lower() in TIF_SUFFIXES:
            import rasterio
            from rasterio.windows import Window as RioWindow

            with rasterio.open(path) as src:
                if window is None:
                    return np.moveaxis(src.read(), 0, -1)
                y, x, h, w = _inside(path, window, (src.height, src.width))
                return np.moveaxis(src.read(window=RioWindow(x, y, w, h)), 0, -1)
        with Image.open(path) as img:
            arr = np.array(img)
    except DataLayoutError:
        raise
    except (UnidentifiedImageError, OSError) as exc:
        raise DataLayoutError(f"{path}: unreadable image ({exc})") from exc
    except Exception as exc:  # rasterio raises its own RasterioIOError
        raise DataLayoutError(f"{path}: unreadable raster ({exc})") from exc
    arr = arr[..., None] if arr.ndim == 2 else arr
    if window is not None:
        y, x, h, w = _inside(path, window, arr.shape[:2])
        arr = arr[y:y + h, x:x + w]
    return arr


def _inside(path: Path, window: Window, size: tuple[int, int]) -> tuple[int, int, int, int]:
    y, x, h, w = (int(v) for v in window)
    if h <= 0 or w <= 0 or y < 0 or x < 0 or y + h > size[0] or x + w > size[1]:
        raise DataLayoutError(f"{path}: window (y={y}, x={x}, h={h}, w={w}) outside the "
                              f"{size[0]}x{size[1]} raster")
    return y, x, h, w


def raster_shape(path: str | Path) -> tuple[int, int, int]:
    """(H, W, bands) from the header only, so checking a whole dataset stays cheap."""
    path = Path(path)
    if not path.is_file():
        raise DataLayoutError(f"{path}: no such file")
    try:
        if path.suffix.lower() in TIF_SUFFIXES:
            import rasterio

            with rasterio.open(path) as src:
                return src.height, src.width, src.count
        with Image.open(path) as img:
            return img.height, img.width, len(img.getbands())
    except Exception as exc:
        raise DataLayoutError(f"{path}: unreadable image ({exc})") from exc


def read_date(files: Sequence[str | Path], window: Window | None = None) -> np.ndarray:
    """One acquisition as (H, W, C) float32: one multi-band file, or single-band files stacked;
    ``window`` as in :func:`read_raster`."""
    arrays = [read_raster(f, window) for f in files]
    shapes = {a.shape[:2] for a in arrays}
    if len(shapes) > 1:
        raise DataLayoutError(f"bands of one date differ in size: "
                              + ", ".join(f"{f} {a.shape[:2]}" for f, a in zip(files, arrays)))
    return np.concatenate(arrays, axis=-1).astype(np.float32)


def check_same_grid(items: Iterable[tuple[str | Path, tuple[int, int, int]]], bands: Sequence[int | None]) -> None:
    """The dates (and label) of one sample must share H x W; date ``i`` must have ``bands[i]`` bands."""
    items = list(items)
    sizes = {shape[:2] for _, shape in items}
    if len(sizes) > 1:
        raise DataLayoutError("dates of one sample differ in size: "
                              + ", ".join(f"{p} {s[0]}x{s[1]}" for p, s in items))
    for (path, shape), expected in zip(items, bands):
        if expected is not None and shape[2] != expected:
            raise DataLayoutError(f"{path}: {shape[2]} band(s), expected {expected}")


def raster_values(path: str | Path) -> set[float]:
    """The distinct values of a single-band raster. GeoTIFFs are scanned in strips of
    ``STRIP_ROWS`` rows (a whole-scene label of 500 M pixels is never loaded at once)."""
    path = Path(path)
    if path.suffix.lower() not in TIF_SUFFIXES:
        return set(np.unique(read_raster(path)).tolist())
    height, width, _ = raster_shape(path)
    values: set[float] = set()
    for y in range(0, height, STRIP_ROWS):
        strip = read_raster(path, (y, 0, min(STRIP_ROWS, height - y), width))
        if strip.dtype == np.uint8:  # bincount: far faster than sorting for np.unique
            values |= {int(v) for v in np.flatnonzero(np.bincount(strip.ravel(), minlength=256))}
        else:
            values |= set(np.unique(strip).tolist())
    return values


def label_values(path: str | Path, allowed: Sequence[int]) -> set[float]:
    """Reject labels with values outside ``allowed`` (e.g. 0/255), naming the file and the values;
    the values found otherwise."""
    values = raster_values(path)
    bad = sorted(values - set(allowed))
    if bad:
        raise DataLayoutError(f"{path}: label values {bad[:10]} not allowed; expected only "
                              f"{', '.join(map(str, allowed))}")
    return values


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DataLayoutError(f"{path}: missing folder ({what})")
    return path
