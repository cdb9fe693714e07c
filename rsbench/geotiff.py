"""Writing GeoTIFFs: one function for the fixture generators and prediction writers, which differ
only in the grid each dataset's release uses."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np


def write_geotiff(path: str | Path, array: np.ndarray, crs: str | None = None,
                  origin: tuple[float, float] = (0.0, 0.0), gsd: float = 1.0, **options: Any) -> Path:
    """Write ``array``, (H, W) or band-first (C, H, W), in its own dtype as a GeoTIFF at ``path``
    (folders created). With ``crs`` the raster sits on that grid, its top-left corner at ``origin``
    with square ``gsd`` pixels; without one it carries no georeference, as some releases ship
    their tiles. ``options``: further rasterio creation options (``compress="deflate"``)."""
    import rasterio
    from rasterio.transform import from_origin

    data = np.asarray(array)
    data = data[None] if data.ndim == 2 else data
    if data.ndim != 3:
        raise ValueError(f"{path}: expected an (H, W) or (C, H, W) array; got shape {data.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = dict(crs=crs, transform=from_origin(*origin, gsd, gsd)) if crs else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="GTiff", count=data.shape[0], height=data.shape[1],
                           width=data.shape[2], dtype=data.dtype, **grid, **options) as dst:
            dst.write(data)
    return path
