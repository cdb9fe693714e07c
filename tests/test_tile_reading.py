"""Windowed tile reading (``rsbench_segmentation.common``): every training patch read through a
window is, pixel for pixel, the patch cut from the whole decoded tile (the old path), the tile
cache converts each tile once and atomically, and bad inputs name their file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rsbench.errors import DataLayoutError
from rsbench.io.raster import write_geotiff
from rsbench_segmentation import common, isaid, potsdam
from rsbench_segmentation.seg_task import SegmentationTask

#: Small windows on the ~96 px fixtures: several per tile, overlapping, the last flush with the
#: border; 128 px reaches past every border (one padded window per tile).
WINDOWS = ((40, 8), (64, 32), (128, 0))


@pytest.fixture(autouse=True)
def tile_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "tiles"
    monkeypatch.setenv("RSBENCH_TILE_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {"potsdam": potsdam.write_fixture(tmp_path_factory.mktemp("potsdam"), seed=3),
            "isaid": isaid.write_fixture(tmp_path_factory.mktemp("isaid"), seed=3, counts={"train": 3, "val": 1})}


def old_patch(load, sample: dict) -> tuple[np.ndarray, np.ndarray]:
    """What training read before: the whole tile through ``load``, then ``crop_pad`` (as
    ``RSBLoadSample`` cuts it)."""
    arrays, label = load(sample, ["hr"])
    return common.crop_pad(arrays["hr"], sample["window"], 0), common.crop_pad(label, sample["window"], 255)


@pytest.mark.parametrize("patch,overlap", WINDOWS)
def test_potsdam_patches_through_a_window_equal_the_cut_tile(roots, patch, overlap):
    summary = potsdam.check(roots["potsdam"])
    samples = SegmentationTask._patches(summary["splits"]["train"][:4], patch, overlap)
    assert len(samples) >= 4 and potsdam.load.windowed
    for s in samples:
        img, label = old_patch(potsdam.load, s)
        arrays, new_label = potsdam.load(s, ["hr"], window=s["window"])
        assert arrays["hr"].dtype == img.dtype and new_label.dtype == label.dtype
        np.testing.assert_array_equal(arrays["hr"], img, err_msg=s["name"])
        np.testing.assert_array_equal(new_label, label, err_msg=s["name"])
    assert (label == 255).any()  # black class boundaries and padding are ignored on both paths


@pytest.mark.parametrize("patch,overlap", WINDOWS)
def test_isaid_png_patches_from_the_tile_cache_equal_the_cut_tile(roots, tile_cache, patch, overlap):
    summary = isaid.check(roots["isaid"])
    samples = SegmentationTask._patches(summary["splits"]["train"], patch, overlap)
    for s in samples:
        img, label = old_patch(isaid.load, s)
        new_img = common.read_window(s["modalities"]["hr"], s["window"])[..., :3]
        new_label = common.read_label_window(s["label"], s["window"], isaid.PALETTE)
        np.testing.assert_array_equal(new_img, img, err_msg=s["name"])
        np.testing.assert_array_equal(new_label, label, err_msg=s["name"])
    # one cached image and one cached id map per tile, nothing else left behind
    assert len(list(tile_cache.rglob("*.tif"))) == 2 * len(summary["splits"]["train"])
    assert not list(tile_cache.rglob("*.tmp"))


def test_each_tile_is_decoded_once_however_many_patches(roots, monkeypatch):
    decoded: list[str] = []
    real = common.read_image
    monkeypatch.setattr(common, "read_image", lambda path, bands=None: decoded.append(str(path)) or real(path, bands))
    s = isaid.check(roots["isaid"])["splits"]["train"][0]
    for window in common.windows(*s["size"], 32, 16):
        common.read_window(s["modalities"]["hr"], window)
        common.read_label_window(s["label"], window, isaid.PALETTE)
    assert sorted(decoded) == sorted([s["modalities"]["hr"], s["label"]])


def test_geotiff_read_in_place_when_tiled_else_through_the_cache(tmp_path, tile_cache):
    data = np.random.default_rng(0).integers(0, 255, (3, 300, 280), dtype=np.uint8)
    tiled = write_geotiff(tmp_path / "tiled.tif", data, tiled=True, blockxsize=64, blockysize=64, compress="deflate")
    striped = write_geotiff(tmp_path / "striped.tif", data, compress="deflate")
    window = (250, 314, 200, 264)
    expected = common.crop_pad(data.transpose(1, 2, 0), window, 0)
    np.testing.assert_array_equal(common.read_window(tiled, window, 3), expected)
    assert not tile_cache.exists() or not list(tile_cache.rglob("*.tif"))
    np.testing.assert_array_equal(common.read_window(striped, window, 3), expected)
    assert len(list(tile_cache.rglob("*.tif"))) == 1
    with pytest.raises(DataLayoutError, match=r"tiled\.tif: expected 4 band\(s\), found 3"):
        common.read_window(tiled, window, 4)


def test_a_bad_label_colour_names_file_and_pixel_and_leaves_no_cache_entry(tmp_path, tile_cache):
    rgb = np.zeros((2100, 40, 3), dtype=np.uint8)
    rgb[2050, 7] = (1, 2, 3)  # a JPEG-like stray colour in the third conversion slice
    path = tmp_path / "mask.png"
    Image.fromarray(rgb).save(path)
    with pytest.raises(DataLayoutError, match=r"mask\.png: colour \(1, 2, 3\) at \(x=7, y=2050\)"):
        common.read_label_window(path, (0, 32, 0, 32), isaid.PALETTE)
    assert not [p for p in tile_cache.rglob("*") if p.is_file() and p.name != ".convert.lock"]


def test_a_killed_conversion_leaves_nothing_and_the_next_use_redoes_it(tmp_path, tile_cache, monkeypatch):
    img = np.random.default_rng(1).integers(0, 255, (50, 60, 3), dtype=np.uint8)
    path = tmp_path / "P0001.png"
    Image.fromarray(img).save(path)
    real = common._write_tiled

    def killed(target, rows, *args):
        def then_killed():
            yield from rows
            raise KeyboardInterrupt  # every slice written, the file not yet renamed into place

        real(target, then_killed(), *args)

    monkeypatch.setattr(common, "_write_tiled", killed)
    with pytest.raises(KeyboardInterrupt):
        common.read_window(path, (0, 16, 0, 16))
    assert not [p for p in tile_cache.rglob("*") if p.is_file() and p.name != ".convert.lock"]
    monkeypatch.setattr(common, "_write_tiled", real)
    np.testing.assert_array_equal(common.read_window(path, (40, 56, 50, 66)), common.crop_pad(img, (40, 56, 50, 66), 0))


def test_a_changed_source_is_converted_again(tmp_path):
    path = tmp_path / "P0002.png"
    Image.fromarray(np.full((20, 20, 3), 10, np.uint8)).save(path)
    assert common.read_window(path, (0, 4, 0, 4)).max() == 10
    Image.fromarray(np.full((20, 21, 3), 20, np.uint8)).save(path)  # another size: another key
    assert common.read_window(path, (0, 4, 0, 4)).max() == 20


def test_unreadable_source_names_the_file(tmp_path):
    bad = tmp_path / "P0003.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DataLayoutError, match=r"P0003\.png: unreadable image"):
        common.read_window(bad, (0, 8, 0, 8))
    with pytest.raises(DataLayoutError, match=r"missing\.tif"):
        common.read_window(tmp_path / "missing.tif", (0, 8, 0, 8))


def test_cache_tiles_converts_each_tile_once_before_training(roots, tile_cache):
    summary = potsdam.check(roots["potsdam"])
    samples = SegmentationTask._patches(summary["splits"]["train"][:2], 40, 8)
    extra = {potsdam.BOUNDARY: common.IGNORE}
    assert common.cache_tiles(samples, potsdam.PALETTE, extra) == 4  # 2 images (read in place) + 2 labels
    assert len(list(tile_cache.rglob("*.tif"))) == 2  # only the labels' ids: the GeoTIFF images are windowable
    before = sorted(p.stat().st_mtime_ns for p in tile_cache.rglob("*.tif"))
    potsdam.load(samples[0], ["hr"], window=samples[0]["window"])
    assert sorted(p.stat().st_mtime_ns for p in tile_cache.rglob("*.tif")) == before


def test_windows_of_one_tile_share_one_kept_open_handle(tmp_path, monkeypatch):
    """Figure 8's speed: a handle per tile stays open across its windows, not one open per patch."""
    import rasterio

    data = np.random.default_rng(2).integers(0, 255, (3, 200, 180), dtype=np.uint8)
    path = write_geotiff(tmp_path / "kept.tif", data, tiled=True, blockxsize=64, blockysize=64)
    opened: list[str] = []
    real = rasterio.open
    monkeypatch.setattr(rasterio, "open", lambda p, *a, **k: opened.append(str(p)) or real(p, *a, **k))
    for window in common.windows(200, 180, 64, 16):
        np.testing.assert_array_equal(common.read_window(path, window, 3),
                                      common.crop_pad(data.transpose(1, 2, 0), window, 0))
    assert opened == [str(path)]


def test_segmentation_readers_open_rasters_only_through_rsbench_io_raster():
    """One raster I/O module: no dataset reader of this plugin opens a raster itself."""
    folder = Path(common.__file__).parent
    offenders = [f"{p.name}:{i}" for p in sorted(folder.glob("*.py"))
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if "rasterio.open" in line or line.lstrip().startswith(("import rasterio", "from rasterio"))]
    assert not offenders, f"raster access outside rsbench.io.raster: {', '.join(offenders)}"
