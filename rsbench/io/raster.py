"""Reading and writing rasters: the one place every dataset reader, prediction reader and fixture
writer goes through, so each error names the file and what was expected, and each check (band
count, data type, size, lossless storage of labels) is written once.

GeoTIFFs (``.tif``/``.tiff``) are read through rasterio (any band count and dtype; a window reads
only that part of a large scene), other images (PNG, JPEG, BMP, ...) through PIL. Labels must be
stored losslessly: a JPEG-compressed label (a JPEG file, or a GeoTIFF with JPEG compression) has
values between its classes that are no class, so it is refused from the file's own format or
compression, before any value is read. Writing goes through :mod:`rsbench.io.atomic_write`: a raster
is either absent or complete.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rsbench.errors import DataLayoutError
from rsbench.io.atomic_write import replacing

TIF_SUFFIXES = (".tif", ".tiff")
#: A pixel window ``(y, x, h, w)`` of a raster (row, column of its top-left corner, height, width).
Window = Sequence[int]
#: Rows per strip when a whole raster is scanned for its values, so a 32507 x 15354 scene is never held at once.
STRIP_ROWS = 1024
#: PIL formats and GeoTIFF compressions whose decoded values are not the values that were stored.
LOSSY_FORMATS = frozenset({"JPEG", "MPO"})
LOSSY_COMPRESSIONS = frozenset({"jpeg", "ojpeg"})
#: numpy dtype of PIL modes that are not 8 bits per band.
_PIL_DTYPES = {"1": "bool", "I;16": "uint16", "I;16L": "uint16", "I;16B": "uint16", "I;16N": "uint16",
               "I": "int32", "F": "float32"}
_KINDS = {"b": "boolean", "i": "signed integer", "u": "unsigned integer", "f": "floating-point"}


@dataclass(frozen=True)
class RasterInfo:
    """What a raster's header says, read without decoding its pixels."""

    path: Path
    height: int
    width: int
    bands: int
    dtype: str
    format: str  # "GTiff", or PIL's format name ("PNG", "JPEG", ...)
    compression: str = ""  # GeoTIFF compression in lower case ("deflate", "jpeg"); "" when none / not a TIFF
    crs: Any = None
    transform: Any = None
    bounds: tuple[float, float, float, float] | None = None
    res: tuple[float, float] | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """(H, W, bands)."""
        return self.height, self.width, self.bands

    @property
    def lossy(self) -> bool:
        """True when the stored pixels went through lossy compression (JPEG)."""
        return self.format in LOSSY_FORMATS or self.compression in LOSSY_COMPRESSIONS

    def storage(self) -> str:
        """How the pixels are stored, in words ("GeoTIFF with JPEG compression", "JPEG")."""
        name = "GeoTIFF" if self.format == "GTiff" else self.format
        return f"{name} with {self.compression.upper()} compression" if self.compression else name


def is_geotiff(path: str | Path) -> bool:
    return Path(path).suffix.lower() in TIF_SUFFIXES


@contextmanager
def open_raster(path: str | Path, *args: Any, **kwargs: Any) -> Iterator[Any]:
    """``rasterio.open`` without its 'not georeferenced' warning (many releases ship plain TIFFs),
    for the few callers that need the dataset handle itself (its tags, its block layout); pixels
    and headers are read with :func:`read_raster` and :func:`raster_info`."""
    import rasterio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, *args, **kwargs) as src:
            yield src


def raster_info(path: str | Path, *, error: type[Exception] = DataLayoutError) -> RasterInfo:
    """The header of ``path`` (size, bands, dtype, format, compression, georeference); ``error``
    (default :class:`DataLayoutError`) naming the file when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such file")
    if is_geotiff(path):
        try:
            with open_raster(path) as src:
                compression = src.compression.value.lower() if src.compression is not None else ""
                structure = src.tags(ns="IMAGE_STRUCTURE").get("COMPRESSION", "")
                if "JPEG" in structure.upper():  # e.g. "YCbCr JPEG", which GDAL may not map to an enum
                    compression = "jpeg"
                return RasterInfo(path, src.height, src.width, src.count, str(src.dtypes[0]), src.driver,
                                  compression, src.crs, src.transform, tuple(src.bounds),
                                  (abs(src.res[0]), abs(src.res[1])))
        except Exception as exc:  # RasterioIOError, or GDAL's CPLE_* errors, which are not RasterioErrors
            raise error(f"{path}: unreadable GeoTIFF ({exc})") from exc
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            dtype = _PIL_DTYPES.get(img.mode, "uint8")
            return RasterInfo(path, img.height, img.width, len(img.getbands()), dtype, img.format or "")
    except (UnidentifiedImageError, OSError) as exc:
        raise error(f"{path}: unreadable image ({exc})") from exc


def require_lossless(info: RasterInfo, what: str = "a label", *, error: type[Exception] = DataLayoutError) -> None:
    """Refuse a raster stored with lossy compression: its values are not the ones written."""
    if info.lossy:
        raise error(f"{info.path}: stored as {info.storage()}, which is lossy; {what} must be stored "
                    "losslessly (PNG, or GeoTIFF without JPEG compression), since JPEG turns values at "
                    "edges into values that are no class")


def read_raster(path: str | Path, window: Window | None = None, *, bands: int | None = None,
                kind: str | None = None, size: tuple[int, int] | None = None, lossless: bool = False,
                channels_last: bool = True, what: str = "", error: type[Exception] = DataLayoutError) -> np.ndarray:
    """A raster's pixels in their stored dtype, (H, W, C) (``channels_last``) or (C, H, W).

    ``window`` ``(y, x, h, w)`` reads only that part (a windowed read for GeoTIFFs, a slice of the
    decoded image otherwise). Checks, each an ``error`` naming the file and what was expected
    (``what`` says what the raster should hold, e.g. "class ids"): ``bands`` the band count,
    ``kind`` numpy dtype kinds allowed (``"iu"``: integers), ``size`` the whole raster's
    (height, width), ``lossless`` no JPEG storage (labels)."""
    path = Path(path)
    of = f" of {what}" if what else ""
    need_header = bands is not None or kind is not None or size is not None or lossless
    if need_header or window is not None:
        info = raster_info(path, error=error)
        if lossless:
            require_lossless(info, what or "a label", error=error)
        if bands is not None and info.bands != bands:
            raise error(f"{path}: expected {bands} band(s){of}, found {info.bands}")
        if kind is not None and np.dtype(info.dtype).kind not in kind:
            allowed = " or ".join(_KINDS.get(k, k) for k in kind)
            raise error(f"{path}: data type {info.dtype}; expected {allowed} values{of}")
        if size is not None and (info.height, info.width) != tuple(size):
            raise error(f"{path}: {info.height}x{info.width} px; expected {size[0]}x{size[1]}{of}")
        if window is not None:
            window = _inside(path, window, (info.height, info.width), error)
    elif not path.is_file():
        raise error(f"{path}: no such file")
    arr = _read_geotiff(path, window, error) if is_geotiff(path) else _read_image(path, window, error)
    return arr if channels_last else np.moveaxis(arr, -1, 0)


def _read_geotiff(path: Path, window: tuple[int, int, int, int] | None, error: type[Exception]) -> np.ndarray:
    from rasterio.windows import Window as RioWindow

    try:
        with open_raster(path) as src:
            if window is None:
                return np.moveaxis(src.read(), 0, -1)
            y, x, h, w = window
            return np.moveaxis(src.read(window=RioWindow(x, y, w, h)), 0, -1)
    except Exception as exc:  # as in raster_info
        raise error(f"{path}: unreadable GeoTIFF ({exc})") from exc


def _read_image(path: Path, window: tuple[int, int, int, int] | None, error: type[Exception]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            arr = np.asarray(img)
    except (UnidentifiedImageError, OSError) as exc:
        raise error(f"{path}: unreadable image ({exc})") from exc
    arr = arr[..., None] if arr.ndim == 2 else arr
    if window is not None:
        y, x, h, w = window
        arr = arr[y:y + h, x:x + w]
    return arr


def _inside(path: Path, window: Window, size: tuple[int, int], error: type[Exception]) -> tuple[int, int, int, int]:
    y, x, h, w = (int(v) for v in window)
    if h <= 0 or w <= 0 or y < 0 or x < 0 or y + h > size[0] or x + w > size[1]:
        raise error(f"{path}: window (y={y}, x={x}, h={h}, w={w}) outside the {size[0]}x{size[1]} raster")
    return y, x, h, w


def read_label(path: str | Path, window: Window | None = None, *, what: str = "class ids",
               error: type[Exception] = DataLayoutError) -> np.ndarray:
    """A single-band label of integer ids as (H, W), stored losslessly (see :func:`read_raster`)."""
    return read_raster(path, window, bands=1, kind="iu", lossless=True, what=what, error=error)[..., 0]


def read_band(path: str | Path, index: int, *, out_shape: tuple[int, int] | None = None,
              resampling: str = "bilinear", what: str = "", error: type[Exception] = DataLayoutError) -> np.ndarray:
    """Band ``index`` (1-based) of a GeoTIFF as (H, W) in its stored dtype. With ``out_shape``
    (height, width) GDAL resamples it while reading (``resampling``: a rasterio ``Resampling``
    name), as a 20 m or 60 m Sentinel-2 band is put on the 10 m grid: the pixels read are the
    pixels the released pipelines saw."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such file")
    from rasterio.enums import Resampling

    if resampling not in Resampling.__members__:
        raise ValueError(f"resampling {resampling!r}: expected one of {', '.join(Resampling.__members__)}")
    band = None
    try:
        with open_raster(path) as src:  # one open per band: loaders call this for every band of every sample
            count = src.count
            if 1 <= index <= count:
                band = (src.read(index) if out_shape is None else
                        src.read(index, out_shape=tuple(out_shape), resampling=Resampling[resampling]))
    except Exception as exc:  # as in raster_info
        raise error(f"{path}: unreadable GeoTIFF ({exc})") from exc
    if band is None:
        of = f" of {what}" if what else ""
        raise error(f"{path}: has {count} band(s); band {index} was expected{of}")
    return band


def read_rgb(path: str | Path, *, what: str = "an RGB image", error: type[Exception] = DataLayoutError) -> np.ndarray:
    """An 8-bit image as (H, W, 3) uint8, the way PIL's ``convert("RGB")`` renders it: a grey band
    repeated, an alpha band dropped, a palette applied (optical inputs and targets stored as grey,
    RGBA or palette PNGs read as the RGB the models take). GeoTIFFs must hold 8-bit values in
    1 (grey), 2 (grey, alpha), 3 (RGB) or 4 (RGBA) bands."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such file")
    if not is_geotiff(path):
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                return np.asarray(img.convert("RGB"))
        except (UnidentifiedImageError, OSError) as exc:
            raise error(f"{path}: unreadable image ({exc})") from exc
    info = raster_info(path, error=error)
    if info.dtype != "uint8" or info.bands not in (1, 2, 3, 4):
        raise error(f"{path}: {info.bands} band(s) of {info.dtype}; expected {what} of 8-bit values in 3 bands "
                    "(RGB), 4 (RGBA), 1 (grey) or 2 (grey, alpha)")
    arr = _read_geotiff(path, None, error)
    return np.ascontiguousarray(np.repeat(arr[..., :1], 3, axis=-1) if info.bands <= 2 else arr[..., :3])


def raster_values(path: str | Path, *, lossless: bool = False, error: type[Exception] = DataLayoutError) -> set[float]:
    """The distinct values of a single-band raster. GeoTIFFs are scanned in strips of
    ``STRIP_ROWS`` rows (a whole-scene label of 500 M pixels is never loaded at once)."""
    info = raster_info(path, error=error)
    if lossless:
        require_lossless(info, error=error)
    if not is_geotiff(path):
        return set(np.unique(read_raster(path, error=error)).tolist())
    values: set[float] = set()
    for y in range(0, info.height, STRIP_ROWS):
        strip = read_raster(path, (y, 0, min(STRIP_ROWS, info.height - y), info.width), error=error)
        if strip.dtype == np.uint8:  # bincount: far faster than sorting for np.unique
            values |= {int(v) for v in np.flatnonzero(np.bincount(strip.ravel(), minlength=256))}
        else:
            values |= set(np.unique(strip).tolist())
    return values


def write_raster(path: str | Path, array: np.ndarray, crs: str | None = None,
                 origin: tuple[float, float] = (0.0, 0.0), gsd: float = 1.0,
                 bounds: tuple[float, float, float, float] | None = None, **options: Any) -> Path:
    """Write ``array``, (H, W) or band-first (C, H, W), in its own dtype as a GeoTIFF at ``path``
    (folders created), atomically. With ``crs`` the raster sits on that grid: its top-left corner
    at ``origin`` with square ``gsd`` pixels, or spanning ``bounds`` (west, south, east, north);
    without one it carries no georeference, as some releases ship their tiles. ``options``:
    further rasterio creation options (``compress="deflate"``)."""
    data = np.asarray(array)
    data = data[None] if data.ndim == 2 else data
    if data.ndim != 3:
        raise ValueError(f"{path}: expected an (H, W) or (C, H, W) array; got shape {data.shape}")
    if bounds is not None and not crs:
        raise ValueError(f"{path}: bounds {bounds} given without a crs to place them in")
    from rasterio.transform import from_bounds, from_origin

    grid: dict[str, Any] = {}
    if crs:
        transform = (from_bounds(*bounds, data.shape[2], data.shape[1]) if bounds is not None
                     else from_origin(*origin, gsd, gsd))
        grid = dict(crs=crs, transform=transform)
    with replacing(path) as tmp:
        with open_raster(tmp, "w", driver="GTiff", count=data.shape[0], height=data.shape[1],
                         width=data.shape[2], dtype=data.dtype, **grid, **options) as dst:
            dst.write(data)
    return Path(path)


@contextmanager
def raster_writer(path: str | Path, height: int, width: int, *, bands: int = 1, dtype: str = "uint8",
                  crs: Any = None, transform: Any = None,
                  **options: Any) -> Iterator[Callable[[np.ndarray, int, int], None]]:
    """A GeoTIFF of ``height`` x ``width`` written window by window, for a scene too large to hold
    whole: yields ``put(array, y, x)`` that writes an (h, w) or (C, h, w) ``array`` with its
    top-left corner at row ``y``, column ``x``. ``crs`` and ``transform`` georeference it (both or
    neither); ``options``: rasterio creation options (``tiled=True``, ``compress="deflate"``). The
    file appears at ``path`` only when the block ends without an exception."""
    if (crs is None) != (transform is None):
        given = "crs" if crs is not None else "transform"
        raise ValueError(f"{path}: crs and transform go together; got only the {given}")
    from rasterio.windows import Window as RioWindow

    grid = dict(crs=crs, transform=transform) if crs is not None else {}
    with replacing(path) as tmp:
        with open_raster(tmp, "w", driver="GTiff", count=bands, height=height, width=width, dtype=dtype,
                         **grid, **options) as dst:

            def put(array: np.ndarray, y: int, x: int) -> None:
                data = np.asarray(array)
                data = data[None] if data.ndim == 2 else data
                if data.ndim != 3 or data.shape[0] != bands:
                    raise ValueError(f"{path}: expected an (h, w) or ({bands}, h, w) array; got shape {data.shape}")
                h, w = data.shape[1:]
                _inside(Path(path), (y, x, h, w), (height, width), ValueError)
                dst.write(data, window=RioWindow(x, y, w, h))

            yield put


#: The name fixture and prediction writers have used (formerly ``rsbench.geotiff``).
write_geotiff = write_raster


#: Read handles :func:`cached_reader` keeps open per process; GDAL's block cache per process (MB) it sets.
OPEN_HANDLES, GDAL_BLOCK_CACHE_MB = 16, 64


def cached_reader(path: str | Path, *, error: type[Exception] = DataLayoutError) -> Any:
    """A rasterio handle of the GeoTIFF ``path`` kept open (``OPEN_HANDLES`` per process, least
    recently used dropped) for loaders reading many windows of one raster (an open costs more than
    a window); per process, as a handle inherited through ``fork`` shares its file offset. Read
    with :func:`read_padded`."""
    return _cached_reader(str(path), os.getpid(), error)


@lru_cache(maxsize=OPEN_HANDLES)
def _cached_reader(path: str, pid: int, error: type[Exception]) -> Any:
    import rasterio
    from rasterio.env import set_gdal_config

    if _cached_reader.cache_info().currsize == 0:  # GDAL's default, 5 % of RAM, in every loader worker
        set_gdal_config("GDAL_CACHEMAX", GDAL_BLOCK_CACHE_MB * 2**20)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            return rasterio.open(path)
    except Exception as exc:  # RasterioIOError, or GDAL's CPLE_* errors
        raise error(f"{path}: unreadable raster ({exc})") from exc


def read_padded(src: Any, window: Window, fill: float = 0, *, error: type[Exception] = DataLayoutError) -> np.ndarray:
    """Window ``(y, x, h, w)`` of the open raster ``src`` as (h, w, C), decoding only the blocks
    under it; where it reaches past the border (a patch at an image's edge) it holds ``fill``."""
    from rasterio.windows import Window as RioWindow

    y, x, h, w = (int(v) for v in window)
    out = np.full((h, w, src.count), fill, dtype=src.dtypes[0])
    ya, yb, xa, xb = max(y, 0), min(y + h, src.height), max(x, 0), min(x + w, src.width)
    if yb > ya and xb > xa:
        try:
            data = src.read(window=RioWindow(xa, ya, xb - xa, yb - ya))
        except Exception as exc:  # rasterio raises several types for damaged blocks
            raise error(f"{src.name}: unreadable window (y={y}, x={x}, h={h}, w={w}) ({exc})") from exc
        out[ya - y:yb - y, xa - x:xb - x] = np.moveaxis(data, 0, -1)
    return out
