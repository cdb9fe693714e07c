"""Co-registered multi-modal series for SkySense pretraining: layout, reader, dataset and fixture.

SkySense's pretraining corpus (21.5M sequences of an HR image, a Sentinel-2 and a Sentinel-1
series over one footprint) is not public, so rsbench defines a plain layout of GeoTIFFs, one
folder per footprint::

    <root>/<sample>/hr/<YYYYMMDD>.tif   R, G, B            uint8, very high resolution
    <root>/<sample>/s2/<YYYYMMDD>.tif   B2 B3 B4 B5 B6 B7 B8 B8A B11 B12 (SkySense's order),
                                        uint16 surface reflectance x 10000, 10 m
    <root>/<sample>/s1/<YYYYMMDD>.tif   VV, VH             float32 backscatter in dB, 10 m

The file name is the acquisition date (the model reads day of year); every raster of a sample
covers the HR footprint (checked to half a pixel of the coarser raster); the sample's (lat, lon)
is the centre of that footprint, reprojected to EPSG:4326 from the rasters' own CRS.

The fixture (:func:`write_fixture`) draws a land-cover map per sample (water, vegetation, bare
soil, built-up as smooth random blobs; class proportions depend on which of four sites it is
near) and renders it in all three modalities: HR colours and textures, S2 class spectra mixed
per 10 m pixel with a seasonal vegetation cycle, S1 class backscatter with speckle. The shared
map is what pixel-level, cross-modal and cross-view contrast can learn.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rsbench.errors import DataLayoutError
from rsbench.io import raster
from rsbench.io.fixtures import mark_fixture
from rsbench.protocol.normalization import IMAGENET_MEAN, IMAGENET_STD

FIXTURE_NAME = "skysense-pretrain"
MODALITY_BANDS = {"hr": 3, "s2": 10, "s1": 2}
DATE = re.compile(r"^(\d{8})\.tif$")

CLASSES = ("water", "vegetation", "soil", "built")
#: Sites (lat, lon) in four different regions of skysense-tiny's 4 x 4 equal-area grid, with
#: their land-cover proportions (the geo context a region's prototypes can learn).
SITES = (
    ((48.14, 11.58), (0.10, 0.55, 0.20, 0.15)),
    ((30.59, 114.31), (0.30, 0.25, 0.10, 0.35)),
    ((-23.55, -46.63), (0.05, 0.30, 0.15, 0.50)),
    ((40.71, -74.00), (0.35, 0.10, 0.10, 0.45)),
)
HR_COLOURS = np.array([(35, 70, 120), (45, 115, 45), (160, 125, 85), (175, 175, 170)], dtype=np.float64)
#: Surface reflectance of each class in the 10 S2 bands (vegetation's red-edge/NIR follow the season).
S2_SPECTRA = np.array([
    (0.07, 0.06, 0.04, 0.03, 0.02, 0.02, 0.02, 0.02, 0.01, 0.01),
    (0.04, 0.07, 0.04, 0.10, 0.25, 0.32, 0.35, 0.36, 0.20, 0.10),
    (0.10, 0.13, 0.16, 0.19, 0.22, 0.24, 0.25, 0.26, 0.30, 0.27),
    (0.14, 0.15, 0.16, 0.17, 0.18, 0.19, 0.20, 0.20, 0.22, 0.21),
])
S1_DB = np.array([(-22.0, -28.0), (-10.0, -16.0), (-14.0, -22.0), (-5.0, -12.0)])


# -- reading ----------------------------------------------------------------------------------
def _doy(path: Path) -> int:
    match = DATE.match(path.name)
    if match is None:
        raise DataLayoutError(f"{path}: expected a GeoTIFF named by its acquisition date, YYYYMMDD.tif")
    try:
        return dt.datetime.strptime(match.group(1), "%Y%m%d").timetuple().tm_yday
    except ValueError:
        raise DataLayoutError(f"{path}: {match.group(1)} is not a valid YYYYMMDD date") from None


def _info(path: Path) -> dict[str, Any]:
    info = raster.raster_info(path)
    return dict(count=info.bands, bounds=info.bounds, res=max(info.res), crs=info.crs,
                shape=(info.height, info.width))


def _latlon(info: dict[str, Any], path: Path) -> tuple[float, float]:
    from rasterio.warp import transform_bounds

    if info["crs"] is None:
        raise DataLayoutError(f"{path}: no georeference (CRS); the sample's lat/lon comes from it")
    west, south, east, north = transform_bounds(info["crs"], "EPSG:4326", *info["bounds"])
    return (south + north) / 2, (west + east) / 2


def check(root: Path, modalities: tuple[str, ...] = ("hr", "s2", "s1")) -> dict[str, Any]:
    """Check the layout under ``root``; returns ``samples``: per sample its files and days of
    year per modality, and its (lat, lon)."""
    root = Path(root)
    if not root.is_dir():
        raise DataLayoutError(f"{root}: no such directory (expected <sample>/{{hr,s2,s1}}/YYYYMMDD.tif)")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        raise DataLayoutError(f"{root}: no sample folders; expected <sample>/{{{','.join(modalities)}}}/YYYYMMDD.tif")
    samples = []
    for folder in folders:
        entry: dict[str, Any] = dict(id=folder.name)
        ref: dict[str, Any] | None = None
        for m in modalities:
            sub = folder / m
            files = sorted(sub.glob("*.tif")) if sub.is_dir() else []
            if not files:
                raise DataLayoutError(f"{sub}: {'no GeoTIFFs' if sub.is_dir() else 'folder missing'}; expected "
                                      f"{m} rasters named YYYYMMDD.tif with {MODALITY_BANDS[m]} bands")
            entry[m] = [(str(f), _doy(f)) for f in files]
            for f in files:
                info = _info(f)
                if info["count"] != MODALITY_BANDS[m]:
                    raise DataLayoutError(f"{f}: {info['count']} bands; {m} rasters have {MODALITY_BANDS[m]}")
                if ref is None:
                    ref = dict(info, path=f)
                    entry["latlon"] = _latlon(info, f)
                    continue
                tol = 0.5 * max(ref["res"], info["res"])
                if info["crs"] != ref["crs"] or max(abs(a - b) for a, b in zip(info["bounds"], ref["bounds"])) > tol:
                    raise DataLayoutError(f"{f}: not co-registered with {ref['path']} (bounds {info['bounds']} vs "
                                          f"{ref['bounds']}, CRS {info['crs']} vs {ref['crs']}); every raster of "
                                          "a sample must cover the same footprint")
        samples.append(entry)
    return dict(samples=samples, count=len(samples), modalities=list(modalities))


def read_raster(path: str) -> np.ndarray:
    """All bands as float32 (C, H, W)."""
    return raster.read_raster(path, channels_last=False).astype(np.float32)


class SkySensePretrainDataset:
    """Samples of the layout above as tensors, normalised, with a shared random flip/rotation.

    ``frames`` is the number of frames per modality in every sample (a batch needs equal T;
    default: the shortest series of the data): a longer series gives a random subset in date
    order, a shorter one repeats frames. HR uses
    ImageNet statistics on 0-255 (as every rsbench optical task); S2 reflectance (/ 10000) and
    S1 dB are standardised per band with this dataset's statistics. Everything is read once.
    """

    def __init__(self, root: Path, frames: Mapping[str, int] | None = None,
                 modalities: tuple[str, ...] = ("hr", "s2", "s1")) -> None:
        import torch

        self.modalities = modalities
        self.samples = check(root, modalities)["samples"]
        self.frames = dict(frames) if frames else {m: min(len(s[m]) for s in self.samples) for m in modalities}
        self.data: list[dict[str, Any]] = []
        for entry in self.samples:
            item: dict[str, Any] = dict(latlon=torch.tensor(entry["latlon"], dtype=torch.float32))
            for m in modalities:
                stack = np.stack([read_raster(path) for path, _ in entry[m]])
                if m == "s2":
                    stack = stack / 10000.0
                item[m] = torch.from_numpy(stack)
                item[f"doy_{m}"] = torch.tensor([doy for _, doy in entry[m]], dtype=torch.long)
            self.data.append(item)
        self.mean: dict[str, Any] = {"hr": torch.tensor(IMAGENET_MEAN)}
        self.std: dict[str, Any] = {"hr": torch.tensor(IMAGENET_STD)}
        for m in modalities:
            if m != "hr":
                allv = torch.cat([d[m].transpose(0, 1).flatten(1) for d in self.data], dim=1)  # (C, N)
                self.mean[m], self.std[m] = allv.mean(1), allv.std(1).clamp_min(1e-6)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        item = self.data[index]
        out: dict[str, Any] = dict(latlon=item["latlon"])
        flip_h, flip_v = bool(torch.rand(()) < 0.5), bool(torch.rand(()) < 0.5)
        turns = int(torch.randint(0, 4, ()))
        for m in self.modalities:
            x, doy = item[m], item[f"doy_{m}"]
            k, t = self.frames[m], x.shape[0]
            idx = torch.randperm(t)[:k].sort().values if t >= k else torch.randint(0, t, (k,)).sort().values
            x = (x[idx] - self.mean[m][:, None, None]) / self.std[m][:, None, None]
            if flip_h:
                x = x.flip(-1)
            if flip_v:
                x = x.flip(-2)
            out[m] = torch.rot90(x, turns, dims=(-2, -1)).contiguous()
            out[f"doy_{m}"] = doy[idx]
        return out


# -- fixture -----------------------------------------------------------------------------------
def _smooth_field(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """A smooth random field: ``cells + 1`` squared normal values bilinearly upsampled to ``size``."""
    low = rng.normal(size=(cells + 1, cells + 1))
    x = np.linspace(0, cells, size, endpoint=False)
    i = x.astype(int)
    f = x - i
    rows = low[i] * (1 - f)[:, None] + low[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None] + rows[:, i + 1] * f[None]


def land_cover(rng: np.random.Generator, size: int, prior: tuple[float, ...]) -> np.ndarray:
    """A class map (0..3) of smooth blobs whose proportions lean toward ``prior``."""
    logits = np.stack([_smooth_field(rng, size, 4) for _ in CLASSES]) * 1.5
    logits += np.log(np.asarray(prior))[:, None, None]
    return logits.argmax(0)


def _season(doy: int) -> float:
    """Vegetation vigour over the year: low in winter, peak in early summer (0..1)."""
    return 0.5 + 0.5 * np.sin(2 * np.pi * (doy - 80) / 365)


def _fractions(cover: np.ndarray, size: int) -> np.ndarray:
    """Per coarse pixel, the fraction of each class among the HR pixels it covers: (K, size, size)."""
    block = cover.shape[0] // size
    onehot = np.stack([(cover == k) for k in range(len(CLASSES))]).astype(np.float64)
    return onehot.reshape(len(CLASSES), size, block, size, block).mean(axis=(2, 4))


def _dates(rng: np.random.Generator, n: int, year: int = 2023) -> list[dt.date]:
    """``n`` distinct dates, one in each of ``n`` equal parts of the year."""
    edges = np.linspace(1, 366, n + 1).astype(int)
    days = [int(rng.integers(edges[i], edges[i + 1])) for i in range(n)]
    return [dt.date(year, 1, 1) + dt.timedelta(days=d - 1) for d in days]


def _write(path: Path, array: np.ndarray, bounds: tuple[float, float, float, float]) -> None:
    raster.write_raster(path, array, crs="EPSG:4326", bounds=bounds)


def write_fixture(out: Path, seed: int = 0, samples: int = 24, hr_size: int = 64, ts_size: int = 16,
                  s2_frames: int = 4, s1_frames: int = 3) -> Path:
    """A small pretraining set in the layout above: ``samples`` footprints of 160 m (HR at
    ``160 / hr_size`` m, 2.5 m by default; S2/S1 at 10 m for ``ts_size`` = 16), spread over
    four sites. HR 64 px is the least skysense-tiny takes (its Swin needs >= 33 px)."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    if hr_size % ts_size:
        raise ValueError(f"hr_size {hr_size} must be a multiple of ts_size {ts_size}")
    for i in range(samples):
        (lat0, lon0), prior = SITES[i % len(SITES)]
        lat, lon = lat0 + rng.uniform(-0.05, 0.05), lon0 + rng.uniform(-0.05, 0.05)
        half_lat = 80.0 / 111_320.0
        half_lon = half_lat / np.cos(np.deg2rad(lat))
        bounds = (lon - half_lon, lat - half_lat, lon + half_lon, lat + half_lat)
        cover = land_cover(rng, hr_size, prior)
        folder = out / f"s{i:04d}"

        (hr_date,) = _dates(rng, 1)
        rgb = HR_COLOURS[cover].transpose(2, 0, 1)  # (3, H, W)
        yy, xx = np.mgrid[:hr_size, :hr_size]
        rgb = rgb + ((cover == 3) * 25.0 * np.sign(np.sin(xx / 2.0) * np.sin(yy / 2.0)))[None]  # roofs/streets
        rgb = rgb + ((cover == 1) * rng.normal(0, 12, (hr_size, hr_size)))[None]  # canopy texture
        rgb = rgb + rng.normal(0, 6, rgb.shape)
        _write(folder / "hr" / f"{hr_date:%Y%m%d}.tif", np.clip(rgb, 0, 255).astype(np.uint8), bounds)

        frac = _fractions(cover, ts_size)  # (K, h, w)
        for date in _dates(rng, s2_frames):
            vigour = _season(date.timetuple().tm_yday)
            spectra = S2_SPECTRA.copy()
            spectra[1, 3:8] *= 0.4 + 0.6 * vigour
            refl = np.einsum("kb,khw->bhw", spectra, frac) + rng.uniform(0, 0.02)  # + haze
            refl = refl + rng.normal(0, 0.005, refl.shape)
            _write(folder / "s2" / f"{date:%Y%m%d}.tif", np.clip(refl * 10000, 0, 10000).astype(np.uint16), bounds)
        for date in _dates(rng, s1_frames):
            vigour = _season(date.timetuple().tm_yday)
            db = S1_DB.copy()
            db[1] += 3.0 * vigour
            power = np.einsum("kp,khw->phw", 10 ** (db / 10), frac)
            power = power * rng.gamma(4.0, 1 / 4.0, power.shape)  # 4-look speckle
            _write(folder / "s1" / f"{date:%Y%m%d}.tif", (10 * np.log10(power)).astype(np.float32), bounds)
    mark_fixture(out, FIXTURE_NAME, seed)
    return out
