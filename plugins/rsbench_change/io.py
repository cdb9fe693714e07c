"""Reading rasters and checking pairs for the change datasets: one place that names the file in
every error, so each dataset module only says where its files are."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from rsbench.errors import DataLayoutError

TIF_SUFFIXES = (".tif", ".tiff")


def read_raster(path: str | Path) -> np.ndarray:
    """A raster as (H, W, C): GeoTIFFs through rasterio (any band count/dtype), others through PIL."""
    path = Path(path)
    if not path.is_file():
        raise DataLayoutError(f"{path}: no such file")
    try:
        if path.suffix.lower() in TIF_SUFFIXES:
            import rasterio

            with rasterio.open(path) as src:
                return np.moveaxis(src.read(), 0, -1)
        with Image.open(path) as img:
            arr = np.array(img)
    except (UnidentifiedImageError, OSError) as exc:
        raise DataLayoutError(f"{path}: unreadable image ({exc})") from exc
    except Exception as exc:  # rasterio raises its own RasterioIOError
        raise DataLayoutError(f"{path}: unreadable raster ({exc})") from exc
    return arr[..., None] if arr.ndim == 2 else arr


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


def read_date(files: Sequence[str | Path]) -> np.ndarray:
    """One acquisition as (H, W, C) float32: one multi-band file, or single-band files stacked."""
    arrays = [read_raster(f) for f in files]
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


def label_values(path: str | Path, allowed: Sequence[int]) -> None:
    """Reject labels with values outside ``allowed`` (e.g. 0/255), naming the file and the values."""
    values = np.unique(read_raster(path))
    bad = sorted(set(values.tolist()) - set(allowed))
    if bad:
        raise DataLayoutError(f"{path}: label values {bad[:10]} not allowed; expected only "
                              f"{', '.join(map(str, allowed))}")


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DataLayoutError(f"{path}: missing folder ({what})")
    return path
