"""Optical-SAR pairs for MaRS pretraining: MaRS-16M's layout, reader, dataset and fixture.

The layout of the released pretraining code (``mars_dataset.py``: ``M2Dataset``)::

    <root>/Umbra_patches/rgb/<name>.tif     R, G, B    uint8   (H, W)
    <root>/Umbra_patches/sar/<name>.tif     SAR        uint8   (same H, W, co-registered)
    <root>/Capella_patches/rgb/<name>.tif   R, G, B    uint8
    <root>/Capella_patches/sar/<name>.tif   SAR        uint16

A pair is an RGB file with a SAR file of the same name (an RGB file without one is skipped, as
the released code does; the check reports how many). Either sensor folder may be absent.

Normalisation is the released code's: RGB mean/std (87.01, 91.52, 83.51) / (62.66, 54.58, 53.11)
on 0-255, SAR per sensor (Umbra 36.42 / 33.89, Capella 2353.35 / 4327.07). The augmentation is
its ``RandomResizedCrop(img_size, scale=(0.7, 1.0))`` and a horizontal flip, applied to the
stacked 4-channel pair so both modalities stay co-registered.

The fixture draws a scene per pair (bare ground, vegetation, water bodies, rectangular
buildings, roads) and renders it twice: colours in RGB; backscatter in SAR (bright buildings
from double bounce, dark water and roads, multiplicative 4-look speckle). The scene shared by
both images is what cross-modal contrast learns; its smooth layout is what masked pixels can be
reconstructed from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rsbench.errors import DataLayoutError
from rsbench.io.fixtures import mark_fixture
from rsbench.io.raster import raster_info, read_raster, write_geotiff

FIXTURE_NAME = "mars-pretrain"
RGB_MEAN = (87.01, 91.52, 83.51)
RGB_STD = (62.66, 54.58, 53.11)
#: sensor folder -> (SAR mean, SAR std, SAR dtype) of the released code.
SENSORS: dict[str, tuple[float, float, str]] = {
    "Umbra_patches": (36.42, 33.89, "uint8"),
    "Capella_patches": (2353.35, 4327.07, "uint16"),
}


def check(root: Path) -> dict[str, Any]:
    """Pairs under ``root``: ``pairs`` = [(rgb, sar, sensor)], ``unpaired`` = RGB files without SAR."""
    root = Path(root)
    if not root.is_dir():
        raise DataLayoutError(f"{root}: no such directory (expected {' and/or '.join(SENSORS)}/{{rgb,sar}}/*.tif)")
    pairs: list[tuple[str, str, str]] = []
    unpaired = 0
    present = [s for s in SENSORS if (root / s).is_dir()]
    if not present:
        raise DataLayoutError(f"{root}: neither {' nor '.join(SENSORS)} found; expected <sensor>/rgb/<name>.tif "
                              "with <sensor>/sar/<name>.tif (MaRS-16M layout)")
    for sensor in present:
        rgb_dir, sar_dir = root / sensor / "rgb", root / sensor / "sar"
        for d in (rgb_dir, sar_dir):
            if not d.is_dir():
                raise DataLayoutError(f"{d}: folder missing; expected {sensor}/rgb and {sensor}/sar with "
                                      "same-named GeoTIFFs")
        for rgb in sorted(rgb_dir.glob("*.tif")):
            sar = sar_dir / rgb.name
            if not sar.is_file():
                unpaired += 1
                continue
            a, b = raster_info(rgb), raster_info(sar)
            if a.bands != 3:
                raise DataLayoutError(f"{rgb}: {a.bands} bands; MaRS RGB tiles have 3 (R, G, B)")
            if b.bands != 1:
                raise DataLayoutError(f"{sar}: {b.bands} bands; MaRS SAR tiles have 1")
            if (a.height, a.width) != (b.height, b.width):
                raise DataLayoutError(f"{sar}: {b.height}x{b.width} px, but its RGB {rgb} is "
                                      f"{a.height}x{a.width}; a pair is co-registered, same size")
            pairs.append((str(rgb), str(sar), sensor))
    if not pairs:
        raise DataLayoutError(f"{root}: no RGB-SAR pairs (an RGB tile needs a SAR tile of the same name)")
    return dict(pairs=pairs, count=len(pairs), unpaired=unpaired, sensors=present)


class MaskGenerator:
    """SimMIM's random block mask, as the released ``MaskGenerator``.

    The image is cut into ``(input_size / mask_patch_size)^2`` blocks; ``ceil(blocks *
    mask_ratio)`` of them, drawn uniformly without replacement, are masked; the mask is returned
    on the model's token grid (``input_size / model_patch_size`` per side, each block covering
    ``(mask_patch_size / model_patch_size)^2`` tokens), 1 = masked.
    """

    def __init__(self, input_size: int = 64, mask_patch_size: int = 8, model_patch_size: int = 4,
                 mask_ratio: float = 0.6) -> None:
        if input_size % mask_patch_size or mask_patch_size % model_patch_size:
            raise ValueError(f"mask: input {input_size} must be a multiple of the mask patch {mask_patch_size}, "
                             f"which must be a multiple of the model patch {model_patch_size}")
        if not 0.0 <= mask_ratio <= 1.0:
            raise ValueError(f"mask ratio must lie in [0, 1]; got {mask_ratio}")
        self.rand_size = input_size // mask_patch_size
        self.scale = mask_patch_size // model_patch_size
        self.token_count = self.rand_size ** 2
        self.mask_count = int(np.ceil(self.token_count * mask_ratio))

    def __call__(self) -> Any:
        import torch

        mask = torch.zeros(self.token_count, dtype=torch.long)
        mask[torch.randperm(self.token_count)[: self.mask_count]] = 1
        mask = mask.view(self.rand_size, self.rand_size)
        return mask.repeat_interleave(self.scale, 0).repeat_interleave(self.scale, 1)


class MaRSPretrainDataset:
    """Pairs as normalised ``(4, img_size, img_size)`` tensors (RGB then SAR) plus a MIM mask.

    Items: ``{"image": (4, S, S) float, "mask": (S / p, S / p) long}`` with ``p`` the model patch.
    Tiles are read on first use and kept (the fixture is small; a real corpus would stream).
    """

    def __init__(self, root: Path, img_size: int, mask: MaskGenerator) -> None:
        self.pairs = check(root)["pairs"]
        self.img_size = img_size
        self.mask = mask
        self._cache: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.pairs)

    def _read(self, index: int) -> Any:
        import torch

        if index not in self._cache:
            rgb, sar, sensor = self.pairs[index]
            image = np.concatenate([read_raster(rgb, channels_last=False),
                                    read_raster(sar, channels_last=False)]).astype(np.float32)
            mean = torch.tensor(RGB_MEAN + (SENSORS[sensor][0],))[:, None, None]
            std = torch.tensor(RGB_STD + (SENSORS[sensor][1],))[:, None, None]
            self._cache[index] = (torch.from_numpy(image), mean, std)
        return self._cache[index]

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch
        from torchvision.transforms import RandomResizedCrop
        from torchvision.transforms.functional import resized_crop

        image, mean, std = self._read(index)
        top, left, h, w = RandomResizedCrop.get_params(image, scale=(0.7, 1.0), ratio=(3 / 4, 4 / 3))
        x = resized_crop(image, top, left, h, w, [self.img_size, self.img_size], antialias=True)
        if torch.rand(()) < 0.5:
            x = x.flip(-1)
        return dict(image=(x - mean) / std, mask=self.mask())


# -- fixture ----------------------------------------------------------------------------------
def _scene(rng: np.random.Generator, size: int) -> np.ndarray:
    """Class map: 0 ground, 1 vegetation, 2 water, 3 building, 4 road."""
    scene = np.zeros((size, size), dtype=np.int64)
    yy, xx = np.mgrid[:size, :size]
    for _ in range(rng.integers(1, 4)):  # vegetation patches
        cy, cx, r = rng.integers(0, size, 2).tolist() + [int(rng.integers(size // 8, size // 3))]
        scene[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 1
    if rng.random() < 0.6:  # a pond
        cy, cx, r = rng.integers(0, size, 2).tolist() + [int(rng.integers(size // 10, size // 4))]
        scene[(yy - cy) ** 2 / 1.5 + (xx - cx) ** 2 < r * r] = 2
    road = int(rng.integers(size // 4, 3 * size // 4))
    if rng.random() < 0.5:
        scene[road - 2:road + 2, :] = 4
    else:
        scene[:, road - 2:road + 2] = 4
    for _ in range(rng.integers(2, 7)):  # buildings
        h, w = rng.integers(size // 12, size // 5, 2)
        y, x = rng.integers(0, size - h), rng.integers(0, size - w)
        scene[y:y + h, x:x + w] = 3
    return scene


_RGB = np.array([(140, 120, 95), (60, 110, 55), (40, 70, 110), (200, 195, 190), (90, 90, 95)], dtype=np.float64)
_SAR_DB = np.array([-14.0, -9.0, -24.0, 2.0, -20.0])


def _write(path: Path, array: np.ndarray) -> None:
    write_geotiff(path, array)


def write_fixture(out: Path, seed: int = 0, pairs: int = 16, size: int = 64) -> Path:
    """``pairs`` pairs per sensor (Umbra uint8 SAR, Capella uint16 SAR) of ``size`` px, plus one
    RGB tile without SAR (which the reader skips)."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    for sensor, (mean, _, dtype) in SENSORS.items():
        for i in range(pairs):
            scene = _scene(rng, size)
            rgb = _RGB[scene].transpose(2, 0, 1) + rng.normal(0, 8, (3, size, size))
            power = 10 ** (_SAR_DB[scene] / 10) * rng.gamma(4.0, 0.25, (size, size))
            scaled = mean * np.sqrt(power * 10 ** 1.2)  # amplitude, -12 dB at the sensor's mean value
            info = np.iinfo(dtype)
            name = f"{sensor.split('_')[0].lower()}_{i:04d}.tif"
            _write(out / sensor / "rgb" / name, np.clip(rgb, 0, 255).astype(np.uint8))
            _write(out / sensor / "sar" / name, np.clip(scaled, 0, info.max)[None].astype(dtype))
    _write(out / "Umbra_patches" / "rgb" / "unpaired_0000.tif", np.zeros((3, size, size), dtype=np.uint8))
    mark_fixture(out, FIXTURE_NAME, seed)
    return out
