"""Kept so existing imports work: GeoTIFF writing lives in :mod:`rsbench.raster`
(``write_raster``, also exported there as ``write_geotiff``). Import from there; this module goes
once no caller is left."""

from __future__ import annotations

from rsbench.raster import write_geotiff

__all__ = ["write_geotiff"]
