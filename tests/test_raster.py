"""The core raster reader/writer, the atomic writer and the shared normalisation constants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rsbench.errors import DataLayoutError, PredictionError
from rsbench.io import atomic_write, raster
from rsbench.protocol.normalization import IMAGENET, IMAGENET_MEAN, IMAGENET_STD


@pytest.fixture
def tif(tmp_path: Path) -> tuple[Path, np.ndarray]:
    data = np.arange(2 * 30 * 40, dtype=np.uint16).reshape(2, 30, 40)
    return raster.write_raster(tmp_path / "a.tif", data, crs="EPSG:32632", origin=(500000, 4400000), gsd=3.0,
                               compress="deflate"), data


def test_geotiff_round_trip_keeps_values_dtype_and_grid(tif: tuple[Path, np.ndarray]) -> None:
    path, data = tif
    info = raster.raster_info(path)
    assert (info.shape, info.dtype, info.compression, info.res) == ((30, 40, 2), "uint16", "deflate", (3.0, 3.0))
    assert info.bounds == (500000.0, 4400000.0 - 90, 500000.0 + 120, 4400000.0) and not info.lossy
    hwc = raster.read_raster(path)
    assert hwc.dtype == np.uint16 and np.array_equal(hwc, data.transpose(1, 2, 0))
    assert np.array_equal(raster.read_raster(path, channels_last=False), data)
    assert np.array_equal(raster.read_raster(path, (5, 7, 10, 20), channels_last=False), data[:, 5:15, 7:27])


def test_bounds_put_the_raster_on_that_footprint(tmp_path: Path) -> None:
    path = raster.write_raster(tmp_path / "b.tif", np.zeros((3, 8, 4), np.float32), crs="EPSG:4326",
                               bounds=(10.0, 40.0, 10.4, 40.8))
    info = raster.raster_info(path)
    assert info.bounds == pytest.approx((10.0, 40.0, 10.4, 40.8)) and info.res == pytest.approx((0.1, 0.1))


def test_checks_name_the_file_and_what_was_expected(tif: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    path, _ = tif
    with pytest.raises(DataLayoutError, match=r"a\.tif: expected 1 band\(s\) of class ids, found 2"):
        raster.read_raster(path, bands=1, what="class ids")
    with pytest.raises(DataLayoutError, match=r"a\.tif: data type uint16; expected floating-point values"):
        raster.read_raster(path, kind="f")
    with pytest.raises(DataLayoutError, match=r"a\.tif: 30x40 px; expected 40x40"):
        raster.read_raster(path, size=(40, 40))
    with pytest.raises(DataLayoutError, match=r"a\.tif: window \(y=25, x=0, h=10, w=5\) outside the 30x40 raster"):
        raster.read_raster(path, (25, 0, 10, 5))
    with pytest.raises(PredictionError, match=r"nope\.png: no such file"):
        raster.read_raster(tmp_path / "nope.png", error=PredictionError)
    (tmp_path / "broken.tif").write_bytes(b"II*\x00 not really a tiff")
    with pytest.raises(DataLayoutError, match=r"broken\.tif: unreadable GeoTIFF"):
        raster.read_raster(tmp_path / "broken.tif")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG but cut")
    with pytest.raises(DataLayoutError, match=r"broken\.png: unreadable image"):
        raster.raster_info(tmp_path / "broken.png")


def test_png_read_as_hwc_and_windowed(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (12, 9, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "x.png")
    assert raster.raster_info(tmp_path / "x.png").shape == (12, 9, 3)
    assert np.array_equal(raster.read_raster(tmp_path / "x.png"), rgb)
    assert np.array_equal(raster.read_raster(tmp_path / "x.png", (2, 3, 4, 5)), rgb[2:6, 3:8])
    ids = (np.arange(12 * 9) % 5).astype(np.uint8).reshape(12, 9)
    Image.fromarray(ids).save(tmp_path / "ids.png")
    assert np.array_equal(raster.read_label(tmp_path / "ids.png"), ids)


def test_lossy_labels_are_refused_from_their_format_not_their_suffix(tmp_path: Path) -> None:
    ids = np.zeros((32, 32), np.uint8)
    ids[8:24, 8:24] = 1
    Image.fromarray(ids * 255).save(tmp_path / "label.png", format="JPEG")  # a JPEG under a .png name
    with pytest.raises(DataLayoutError, match=r"label\.png: stored as JPEG, which is lossy; class ids must be stored"):
        raster.read_label(tmp_path / "label.png")
    raster.write_raster(tmp_path / "label.tif", np.stack([ids * 255] * 3), compress="jpeg")
    info = raster.raster_info(tmp_path / "label.tif")
    assert info.lossy and info.storage() == "GeoTIFF with JPEG compression"
    with pytest.raises(DataLayoutError, match=r"label\.tif: stored as GeoTIFF with JPEG compression, which is lossy"):
        raster.read_raster(tmp_path / "label.tif", lossless=True)
    assert raster.read_raster(tmp_path / "label.tif").shape == (32, 32, 3)  # images may be JPEG


def test_raster_values_scan_in_strips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    label = np.zeros((50, 7), np.uint8)
    label[47, 3] = 255
    path = raster.write_raster(tmp_path / "l.tif", label)
    monkeypatch.setattr(raster, "STRIP_ROWS", 8)
    assert raster.raster_values(path) == {0, 255}


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tif: tuple[Path, np.ndarray]) -> None:
    path, data = tif
    before = path.read_bytes()
    with pytest.raises(Exception):
        raster.write_raster(path, np.zeros((1, 0, 5), np.uint8))  # GDAL refuses a 0-pixel raster
    assert path.read_bytes() == before and sorted(p.name for p in path.parent.iterdir()) == ["a.tif"]
    with pytest.raises(ValueError, match="expected an"):
        raster.write_raster(path.parent / "new.tif", np.zeros((2, 2, 2, 2)))
    assert not (path.parent / "new.tif").exists()


def test_atomic_writer(tmp_path: Path) -> None:
    path = atomic_write.write_text(tmp_path / "sub" / "x.json", "old", fsync=True)
    with pytest.raises(RuntimeError):
        with atomic_write.open_atomic(path) as fh:
            fh.write("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old" and [p.name for p in path.parent.iterdir()] == ["x.json"]
    with atomic_write.replacing(path) as tmp:
        assert tmp.parent == path.parent and tmp.name.startswith(".x.json.")
        tmp.write_bytes(b"new")
    assert path.read_bytes() == b"new"
    assert atomic_write.write_bytes(tmp_path / "y.bin", b"\x00\x01").read_bytes() == b"\x00\x01"


def test_read_band_resamples_on_read_as_gdal_does(tif: tuple[Path, np.ndarray]) -> None:
    import rasterio
    from rasterio.enums import Resampling

    path, data = tif
    assert np.array_equal(raster.read_band(path, 2), data[1])
    with rasterio.open(path) as src:  # the read the loaders made before this module existed
        want = src.read(2, out_shape=(60, 60), resampling=Resampling.bilinear)
    got = raster.read_band(path, 2, out_shape=(60, 60))
    assert got.dtype == np.uint16 and np.array_equal(got, want)
    with pytest.raises(DataLayoutError, match=r"a\.tif: has 2 band\(s\); band 3 was expected"):
        raster.read_band(path, 3)
    with pytest.raises(ValueError, match="resampling 'smooth'"):
        raster.read_band(path, 1, out_shape=(4, 4), resampling="smooth")


def test_read_rgb_renders_grey_alpha_and_palette_as_pil_does(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    grey = rgba[..., 0]
    images = {"rgba.png": Image.fromarray(rgba), "grey.png": Image.fromarray(grey),
              "pal.png": Image.fromarray(rgba[..., :3]).convert("P")}
    for name, img in images.items():
        img.save(tmp_path / name)
        got = raster.read_rgb(tmp_path / name)
        assert got.shape == (6, 5, 3) and got.dtype == np.uint8
        assert np.array_equal(got, np.asarray(img.convert("RGB"))), name
    Image.fromarray(rgba[..., :3]).save(tmp_path / "pil.tif")  # a plain TIFF, as UBCv2's optical tiles
    assert np.array_equal(raster.read_rgb(tmp_path / "pil.tif"), rgba[..., :3])
    raster.write_raster(tmp_path / "rgba.tif", np.moveaxis(rgba, -1, 0))
    raster.write_raster(tmp_path / "grey.tif", grey)
    assert np.array_equal(raster.read_rgb(tmp_path / "rgba.tif"), rgba[..., :3])
    assert np.array_equal(raster.read_rgb(tmp_path / "grey.tif"), np.repeat(grey[..., None], 3, -1))
    raster.write_raster(tmp_path / "f.tif", np.zeros((3, 4, 4), np.float32))
    with pytest.raises(DataLayoutError, match=r"f\.tif: 3 band\(s\) of float32; expected an RGB image of 8-bit"):
        raster.read_rgb(tmp_path / "f.tif")


def test_raster_writer_assembles_windows_atomically(tmp_path: Path) -> None:
    from rasterio.transform import from_origin

    scene = np.arange(20 * 30, dtype=np.uint8).reshape(20, 30)
    path = tmp_path / "scene.tif"
    with raster.raster_writer(path, 20, 30, crs="EPSG:32632", transform=from_origin(0, 0, 1, 1),
                              tiled=True, blockxsize=16, blockysize=16, compress="deflate") as put:
        for y in (0, 10):
            for x in (0, 15):
                put(scene[y:y + 10, x:x + 15], y, x)
        assert not path.exists()  # nothing at the final name until the last window is in
    info = raster.raster_info(path)
    assert np.array_equal(raster.read_raster(path)[..., 0], scene)
    assert (info.compression, str(info.crs)) == ("deflate", "EPSG:32632")
    with pytest.raises(ValueError, match=r"window \(y=15, x=0, h=10, w=15\) outside the 20x30 raster"):
        with raster.raster_writer(tmp_path / "bad.tif", 20, 30) as put:
            put(scene[:10, :15], 15, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.tif"]


def test_geotiff_writer_name_is_the_core_writer() -> None:
    assert raster.write_geotiff is raster.write_raster


def test_imagenet_constants_are_torchvisions_on_0_255() -> None:
    assert IMAGENET == (IMAGENET_MEAN, IMAGENET_STD)
    assert IMAGENET_MEAN == pytest.approx(tuple(v * 255 for v in (0.485, 0.456, 0.406)), abs=1e-9)
    assert IMAGENET_STD == pytest.approx(tuple(v * 255 for v in (0.229, 0.224, 0.225)), abs=1e-9)


def test_read_id_map_refuses_a_jpeg_prediction(tmp_path: Path) -> None:
    from rsbench.run.scoring import read_id_map

    ids = (np.arange(16 * 16) % 3).astype(np.uint8).reshape(16, 16)
    Image.fromarray(ids).save(tmp_path / "p.png")
    Image.fromarray(ids).save(tmp_path / "q.png", format="JPEG")
    raster.write_raster(tmp_path / "p.tif", ids)
    assert np.array_equal(read_id_map(tmp_path / "p.png"), ids) and np.array_equal(read_id_map(tmp_path / "p.tif"), ids)
    with pytest.raises(PredictionError, match=r"q\.png: stored as JPEG, which is lossy"):
        read_id_map(tmp_path / "q.png")
    raster.write_raster(tmp_path / "rgb.tif", np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(PredictionError, match=r"rgb\.tif: shape \(4, 4, 3\); expected a single-band image"):
        read_id_map(tmp_path / "rgb.tif")
