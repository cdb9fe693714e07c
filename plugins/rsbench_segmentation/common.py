"""Helpers shared by the segmentation datasets: reading images with clear errors, turning colour
labels into class ids through a palette, patch windows, windowed tile reading, and the fixture
painter.

Every dataset module exposes the same small surface, which ``seg_task`` relies on:
``CLASSES``, ``PALETTE``, ``IGNORE_INDEX``, ``NORMALIZATION`` ({modality: (mean, std)} per band),
``check(root) -> summary`` (``summary["splits"][split]`` is a list of sample dicts) and
``load(sample, modalities) -> ({modality: HxWxC array}, HxW uint8 label)``. A patch dataset's
``load`` also takes ``window=(y0, y1, x0, x1)`` and then returns only that window, padded
(image 0, label 255) exactly as ``crop_pad`` of the whole tile would be (``load.windowed = True``
says so to the loading transform).

Windowed reading (why: iSAID PNGs reach 13,000 px, Potsdam tiles 6,000 px; decoding a whole tile
for each random 512-896 px training patch makes the loader, not the GPU, set the pace):

* A GeoTIFF stored in tiles, or uncompressed, is read in place with a windowed read through a
  handle kept open (``rsbench.io.raster.cached_reader`` / ``read_padded``): only the blocks
  under the window are decoded.
* Anything else (PNG, JPEG, a compressed striped GeoTIFF, and every colour label) is converted
  once per tile into the tile cache: a tiled (256 px blocks), zstd-compressed GeoTIFF of the
  image, and for labels a single-band uint8 GeoTIFF of class ids (the colour -> id conversion
  done once per tile, never per patch). Windows are then read from it as above. One cached file
  per source tile, so every patch window of every ``patch_size``/``overlap`` reads pixel for
  pixel what cutting the decoded tile gives, without the overlap's duplicated pixels on disk.
  Files are keyed by the source's resolved path, size and mtime; each is written to a temporary
  name and renamed into place (a killed conversion leaves no partial entry; the next use redoes
  that tile only). The cache lives under ``$RSBENCH_TILE_CACHE``, else ``<rsbench cache>/tiles``.

Memory bound per loader worker: the arrays of one window (image + label, e.g. 896 x 896 x 3 B +
896 x 896 B = 3.2 MB for iSAID, 13 MB once the loader makes the image float32), GDAL's block
cache capped at ``raster.GDAL_BLOCK_CACHE_MB`` (64 MB) and up to ``raster.OPEN_HANDLES`` (16)
open file handles; no decoded tile is kept (figure 8 measures +125 MiB RSS per worker on 4,000-13,000 px
iSAID tiles, +69 MiB on 6,000 px Potsdam). Converting a tile into the cache (first use only)
decodes that one tile: about (4 + C) x H x W bytes while PIL's image and its array coexist,
plus a 1,024-row slice of the conversion (figure 8: +1.7 GB for a 13,000 px RGB PNG).
Conversions are serialised by a lock file in the cache, so at most one tile is decoded at a
time on the machine whatever the number of workers; ``cache_tiles`` does them all up front.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rsbench.errors import DataLayoutError
from rsbench.io import raster

#: Class id for pixels excluded from loss and metric (mmseg's convention).
IGNORE = 255


def read_image(path: str | Path, bands: int | None = None) -> np.ndarray:
    """An image as H x W x C (:func:`rsbench.io.raster.read_raster`): a :class:`DataLayoutError`
    naming the file when it is unreadable or has another band count than ``bands``."""
    return raster.read_raster(path, bands=bands)


@lru_cache(maxsize=4)
def read_tile(path: str, bands: int | None = None) -> np.ndarray:
    """``read_image`` with a small cache: patch datasets (iSAID, Potsdam) cut many windows from
    one large image, and a loader reading a tile for each window would decode it many times."""
    arr = read_image(path, bands)
    arr.setflags(write=False)
    return arr


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the header only."""
    info = raster.raster_info(path)
    return info.width, info.height


def colours_to_ids(rgb: np.ndarray, palette: Sequence[Sequence[int]], path: str | Path,
                   extra: dict[tuple[int, int, int], int] | None = None, row0: int = 0) -> np.ndarray:
    """Map an H x W x 3 colour label to class ids (palette index; ``extra`` colours to given ids).

    A colour outside the palette is a layout error (wrong file, or a JPEG-compressed label);
    ``row0`` is the first row of ``rgb`` in the file, for the message."""
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise DataLayoutError(f"{path}: expected an RGB colour label, found shape {rgb.shape}")
    code = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    table = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in enumerate(palette)}
    table.update({(r << 16) | (g << 8) | b: i for (r, g, b), i in (extra or {}).items()})
    keys = np.array(sorted(table), dtype=np.int32)
    values = np.array([table[k] for k in keys], dtype=np.uint8)
    pos = np.clip(np.searchsorted(keys, code), 0, len(keys) - 1)
    bad = keys[pos] != code
    if bad.any():
        y, x = map(int, np.argwhere(bad)[0])
        raise DataLayoutError(f"{path}: colour {tuple(int(c) for c in rgb[y, x, :3])} at (x={x}, y={y + row0}) "
                              f"is not in the palette ({bad.sum()} pixel(s))")
    return values[pos]


def windows(height: int, width: int, patch: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Patch windows (y0, y1, x0, x1) as mmseg's iSAID/Potsdam converters cut them: step
    ``patch - overlap``, the last window flush with the border, images smaller than a patch
    covered by one window that reaches past the border (the loader pads it)."""
    if not 0 <= overlap < patch:
        raise DataLayoutError(f"patch overlap {overlap}: expected 0 <= overlap < patch size {patch}")
    step = patch - overlap

    def starts(n: int) -> list[int]:
        if n <= patch:
            return [0]
        s = list(range(0, n - patch, step))
        return s + [n - patch]

    return [(y, y + patch, x, x + patch) for y in starts(height) for x in starts(width)]


def crop_pad(arr: np.ndarray, window: Sequence[int] | None, fill: float) -> np.ndarray:
    """Cut ``window`` from ``arr`` (H x W[ x C]), padding with ``fill`` where it leaves the image."""
    if window is None:
        return arr
    y0, y1, x0, x1 = window
    out = np.full((y1 - y0, x1 - x0, *arr.shape[2:]), fill, dtype=arr.dtype)
    part = arr[y0:y1, x0:x1]
    out[: part.shape[0], : part.shape[1]] = part
    return out


# -- windowed tile reading (see the module docstring) -------------------------------------------
#: Block size of the cached tiled GeoTIFFs, and rows decoded per step while converting.
CACHE_BLOCK, CONVERT_ROWS = 256, 1024


def tile_cache_dir() -> Path:
    """Where converted tiles live: ``$RSBENCH_TILE_CACHE`` or ``<rsbench cache>/tiles``."""
    from rsbench.io.fixtures import cache_dir

    return Path(os.environ.get("RSBENCH_TILE_CACHE") or cache_dir() / "tiles")


def _in_place(src: Any) -> bool:
    """Window reads of this open GeoTIFF decode about the window: tiled, or not compressed."""
    block_h, block_w = src.block_shapes[0]
    return block_w < src.width or src.compression is None


def _read(src: Any, window: Sequence[int], fill: float) -> np.ndarray:
    """``window`` (y0, y1, x0, x1) of an open raster as H x W x C, ``fill`` outside it."""
    y0, y1, x0, x1 = (int(v) for v in window)
    return raster.read_padded(src, (y0, x0, y1 - y0, x1 - x0), fill)


@contextmanager
def _conversion_lock(folder: Path) -> Iterator[None]:
    """One conversion at a time per cache folder, across processes (bounds memory: see above)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".convert.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _cache_path(path: str | Path, kind: str) -> Path:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise DataLayoutError(f"{path}: unreadable image ({exc})") from exc
    key = hashlib.sha1(f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}|{kind}".encode()).hexdigest()
    return tile_cache_dir() / key[:2] / f"{Path(path).stem}.{key[:20]}.tif"


def _write_tiled(target: Path, rows: Iterator[tuple[int, np.ndarray]], height: int, width: int,
                 bands: int, dtype: Any) -> None:
    """A tiled, zstd-compressed GeoTIFF written slice by slice (``rows``: (first row, H x W x C)),
    atomically: it appears at ``target`` only once every slice is written."""
    with raster.raster_writer(target, height, width, bands=bands, dtype=str(np.dtype(dtype)), tiled=True,
                              blockxsize=CACHE_BLOCK, blockysize=CACHE_BLOCK, compress="zstd",
                              zstd_level=1) as put:
        for row0, arr in rows:
            put(np.moveaxis(arr, -1, 0), row0, 0)


def cached_tile(path: str | Path, palette: Sequence[Sequence[int]] | None = None,
                extra: dict[tuple[int, int, int], int] | None = None) -> Path:
    """The cached tiled copy of ``path`` (converted on first use, atomically): the image as
    ``read_image`` decodes it, or with ``palette`` its class ids as ``colours_to_ids`` maps them."""
    kind = "image" if palette is None else f"ids {[list(c) for c in palette]} {sorted((extra or {}).items())}"
    target = _cache_path(path, kind)
    if target.is_file():
        return target
    with _conversion_lock(tile_cache_dir()):
        if target.is_file():  # converted by another process while this one waited
            return target
        arr = read_image(path)
        if palette is None:
            rows = ((r, arr[r:r + CONVERT_ROWS]) for r in range(0, arr.shape[0], CONVERT_ROWS))
            bands, dtype = arr.shape[2], arr.dtype
        else:
            rows = ((r, colours_to_ids(arr[r:r + CONVERT_ROWS], palette, path, extra, row0=r)[..., None])
                    for r in range(0, arr.shape[0], CONVERT_ROWS))
            bands, dtype = 1, np.uint8
        _write_tiled(target, rows, arr.shape[0], arr.shape[1], bands, dtype)
    return target


def read_window(path: str | Path, window: Sequence[int], bands: int | None = None, fill: float = 0) -> np.ndarray:
    """``window`` (y0, y1, x0, x1) of an image as H x W x C, ``fill`` where it leaves the image:
    the pixels ``crop_pad(read_image(path, bands), window, fill)`` gives, decoding about the
    window only (in place for a windowable GeoTIFF, else from the tile cache)."""
    src = None
    if raster.is_geotiff(path):
        src = raster.cached_reader(path)
        if not _in_place(src):
            src = None
    if src is None:
        src = raster.cached_reader(cached_tile(path))
    if bands is not None and src.count != bands:
        raise DataLayoutError(f"{path}: expected {bands} band(s), found {src.count} "
                              f"(shape {(src.height, src.width, src.count)})")
    return _read(src, window, fill)


def read_label_window(path: str | Path, window: Sequence[int], palette: Sequence[Sequence[int]],
                      extra: dict[tuple[int, int, int], int] | None = None) -> np.ndarray:
    """``window`` of a colour label as class ids (H x W uint8, ``IGNORE`` outside the label):
    ``crop_pad(colours_to_ids(read_image(path), ...), window, IGNORE)``, from the tile cache."""
    return _read(raster.cached_reader(cached_tile(path, palette, extra)), window, IGNORE)[..., 0]


def cache_tiles(samples: Sequence[dict[str, Any]], palette: Sequence[Sequence[int]],
                extra: dict[tuple[int, int, int], int] | None = None, modality: str = "hr") -> int:
    """Convert, before training, every tile of ``samples`` that windowed reading would take from
    the tile cache (so loader workers never wait on a conversion); returns the tiles converted
    or found. Each tile is done once however many patch samples name it."""
    done: set[str] = set()
    for s in samples:
        image, label = s["modalities"][modality], s["label"]
        if image not in done:
            done.add(image)
            if not raster.is_geotiff(image) or not _in_place(raster.cached_reader(image)):
                cached_tile(image)
        if label and label not in done:
            done.add(label)
            cached_tile(label, palette, extra)
    return len(done)


def paint_scene(rng: np.random.Generator, size: tuple[int, int], n_classes: int, background: int | None,
                shapes: int = 6) -> np.ndarray:
    """A class map of rectangles (and a background class, or a random base class) for fixtures."""
    h, w = size
    base = background if background is not None else int(rng.integers(n_classes))
    label = np.full((h, w), base, dtype=np.uint8)
    for _ in range(shapes):
        cls = int(rng.integers(n_classes))
        bh, bw = int(rng.integers(h // 6, h // 2)), int(rng.integers(w // 6, w // 2))
        y, x = int(rng.integers(0, h - bh)), int(rng.integers(0, w - bw))
        label[y:y + bh, x:x + bw] = cls
    return label


def class_colours(n_classes: int, bands: int, seed: int = 1234) -> np.ndarray:
    """Per-class mean values (n_classes x bands, 20..235) that make a fixture learnable: the
    candidate set that keeps classes farthest apart among a few seeded draws."""
    rng = np.random.default_rng(seed)
    best, best_gap = None, -1.0
    for _ in range(64):
        cols = rng.uniform(20, 235, (n_classes, bands))
        gap = min(np.abs(cols[i] - cols[j]).max() for i in range(n_classes) for j in range(i))
        if gap > best_gap:
            best, best_gap = cols, gap
    assert best is not None
    return best.astype(np.float32)


def render(label: np.ndarray, colours: np.ndarray, rng: np.random.Generator, noise: float = 12.0,
           ignore_fill: float = 0.0) -> np.ndarray:
    """The image of a class map: each class its colour plus Gaussian noise (uint8 H x W x C)."""
    safe = np.where(label == IGNORE, 0, label)
    img = colours[safe] + rng.normal(0, noise, (*label.shape, colours.shape[1]))
    img[label == IGNORE] = ignore_fill
    return np.clip(img, 0, 255).astype(np.uint8)


def sample(name: str, label: Path | None, modalities: dict[str, Path], **extra: Any) -> dict[str, Any]:
    """A sample record (plain data, written to the run's split file)."""
    return dict(name=name, label=str(label) if label else None,
                modalities={m: str(p) for m, p in modalities.items()}, **extra)
