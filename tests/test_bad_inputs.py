"""Bad real-world inputs, one file corrupted in a dataset's official layout: the dataset's own
``check`` refuses it with an error naming that file and what was expected, and leaves the tree as
it was. Inputs: a JPEG-compressed label (lossy: values between classes that are no class), a
GeoTIFF with the wrong band count, a split file naming a sample that is not there."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rsbench.errors import DataLayoutError
from rsbench.io import raster
from rsbench.plugin_api.plugin_host import get_catalog


@pytest.fixture(scope="session")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each dataset's fixture, written once; tests corrupt a copy."""
    base = tmp_path_factory.mktemp("bad-inputs")
    out = {}
    for name in ("levir-cd", "whu-cd", "dyna-pla", "dfc23-t2", "potsdam"):
        info = get_catalog().datasets.get(name)
        info.write_fixture(base / name)
        info.check(base / name)  # intact, it passes
        out[name] = base / name
    return out


def copy_of(fixtures: dict[str, Path], name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(fixtures[name], tmp_path / name))


def tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def refused(name: str, root: Path, pattern: str) -> None:
    """``check`` raises a DataLayoutError matching ``pattern`` and changes nothing under ``root``."""
    before = tree(root)
    with pytest.raises(DataLayoutError, match=pattern):
        get_catalog().datasets.get(name).check(root)
    assert tree(root) == before


def as_jpeg_tiff(path: Path) -> None:
    """Rewrite a GeoTIFF label with JPEG compression (same bands, same size)."""
    data = raster.read_raster(path, channels_last=False)
    raster.write_raster(path, data, compress="jpeg", interleave="band")


# -- a JPEG-compressed label ----------------------------------------------------------------
def test_levir_label_saved_as_jpeg(fixtures: dict[str, Path], tmp_path: Path) -> None:
    root = copy_of(fixtures, "levir-cd", tmp_path)
    label = root / "LEVIR-CD" / "test" / "label" / "test_2.png"
    with Image.open(label) as img:
        grey = img.convert("L")
    grey.save(label, format="JPEG", quality=90)  # the .png name stays
    refused("levir-cd", root,
            r"test/label/test_2\.png: stored as JPEG, which is lossy; a label must be stored losslessly")


def test_dynamicearthnet_label_with_jpeg_compression(fixtures: dict[str, Path], tmp_path: Path) -> None:
    root = copy_of(fixtures, "dyna-pla", tmp_path)
    label = sorted((root / "labels").rglob("*.tif"))[0]
    as_jpeg_tiff(label)
    refused("dyna-pla", root, rf"{label.name}: stored as GeoTIFF with JPEG compression, which is lossy")


def test_potsdam_label_with_jpeg_compression(fixtures: dict[str, Path], tmp_path: Path) -> None:
    root = copy_of(fixtures, "potsdam", tmp_path)
    label = root / "5_Labels_all_noBoundary" / "top_potsdam_2_13_label_noBoundary.tif"
    as_jpeg_tiff(label)
    refused("potsdam", root, r"top_potsdam_2_13_label_noBoundary\.tif: stored as GeoTIFF with JPEG compression")


# -- a GeoTIFF with the wrong band count ----------------------------------------------------------
def test_dfc23_height_with_three_bands(fixtures: dict[str, Path], tmp_path: Path) -> None:
    root = copy_of(fixtures, "dfc23-t2", tmp_path)
    height = root / "val" / "height" / "P0021.tif"
    raster.write_raster(height, np.repeat(raster.read_raster(height, channels_last=False), 3, axis=0))
    refused("dfc23-t2", root, r"val/height/P0021\.tif: has 3 band\(s\); expected 1")


def test_dynamicearthnet_label_with_three_bands(fixtures: dict[str, Path], tmp_path: Path) -> None:
    root = copy_of(fixtures, "dyna-pla", tmp_path)
    label = sorted((root / "labels").rglob("*.tif"))[-1]
    raster.write_raster(label, raster.read_raster(label, channels_last=False)[:3])
    refused("dyna-pla", root, rf"{label.name}: expected 7 band\(s\) of one-hot classes, found 3 \(.*\.txt:\d+\)")


def test_potsdam_label_with_one_band(fixtures: dict[str, Path], tmp_path: Path) -> None:
    root = copy_of(fixtures, "potsdam", tmp_path)
    label = root / "5_Labels_all_noBoundary" / "top_potsdam_3_14_label_noBoundary.tif"
    raster.write_raster(label, raster.read_raster(label, channels_last=False)[:1])
    refused("potsdam", root, r"top_potsdam_3_14_label_noBoundary\.tif: .*1 band.*expected 3")


# -- a split file naming a missing sample ---------------------------------------------------------
def test_whu_list_names_a_missing_tile(fixtures: dict[str, Path], tmp_path: Path) -> None:
    root = copy_of(fixtures, "whu-cd", tmp_path)
    lst = next(root.rglob("list/test.txt"))
    lst.write_text(lst.read_text() + "whu_9999_0000.png\n")
    refused("whu-cd", root,
            r"list/test\.txt, line \d+: lists 'whu_9999_0000\.png', but .*A/whu_9999_0000\.png is missing "
            r"\(WHU-CD .*expects every listed name in A/, B/ and label/\)")


def test_dynamicearthnet_split_names_a_missing_label(fixtures: dict[str, Path], tmp_path: Path) -> None:
    root = copy_of(fixtures, "dyna-pla", tmp_path)
    split = root / "dynnet_training_splits" / "val.txt"
    planet, label, month = split.read_text().splitlines()[0].split()
    split.write_text(split.read_text() + f"{planet} {label.replace('2018_03', '2018_04')} 2018-04\n")
    refused("dyna-pla", root, r"val\.txt:5: names label /labels/.*-2018_04_01\.tif, absent")
