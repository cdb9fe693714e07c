"""Checking the dates and labels of the change datasets' pairs, on top of the core raster reader
(:mod:`rsbench.io.raster`, whose names the dataset modules import from here): every error names the
file, so each dataset module only says where its files are."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from rsbench.errors import DataLayoutError
from rsbench.io.raster import STRIP_ROWS, TIF_SUFFIXES, Window, raster_info, raster_values, read_raster

__all__ = ["STRIP_ROWS", "TIF_SUFFIXES", "Window", "check_same_grid", "label_values", "raster_shape",
           "raster_values", "read_date", "read_raster", "require_dir"]


def raster_shape(path: str | Path) -> tuple[int, int, int]:
    """(H, W, bands) from the header only, so checking a whole dataset stays cheap."""
    return raster_info(path).shape


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


def label_values(path: str | Path, allowed: Sequence[int]) -> set[float]:
    """Reject labels stored lossily (JPEG) or with values outside ``allowed`` (e.g. 0/255), naming
    the file and the values; the values found otherwise."""
    values = raster_values(path, lossless=True)
    bad = sorted(values - set(allowed))
    if bad:
        raise DataLayoutError(f"{path}: label values {bad[:10]} not allowed; expected only "
                              f"{', '.join(map(str, allowed))}")
    return values


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DataLayoutError(f"{path}: missing folder ({what})")
    return path
