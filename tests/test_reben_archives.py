"""BigEarthNet v2 (reBEN) from its published archives: ``BigEarthNet-S2.tar.zst`` (+ S1 for ben-mm)
and ``metadata.parquet`` -> ``rsbench data prepare`` -> check; truncated, corrupt and multi-frame
.tar.zst downloads. No torch; the fixture is written once per module."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

pytest.importorskip("zstandard")
pytest.importorskip("rasterio")
pytest.importorskip("pyarrow")

import zstandard  # noqa: E402

from rsbench.io import data_prepare as dp  # noqa: E402
from rsbench.io.data_prepare import PrepareError  # noqa: E402
from rsbench.plugin_api.catalog import DatasetInfo  # noqa: E402

S2 = "BigEarthNet-S2.tar.zst"
BEN_S2 = DatasetInfo(name="ben-s2", title="BigEarthNet-S2", layout="", classes=(),
                     checker="rsbench_classification.ben_s2:check",
                     fixture="rsbench_classification.ben_s2:write_fixture",
                     archives="rsbench_classification.archives:BEN_S2")


def tree(root: Path) -> dict[str, bytes]:
    skip = (dp.STATE_DIR, dp.PREPARED_MARKER, ".rsbench-fixture")
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.relative_to(root).as_posix().startswith(skip)}


@pytest.fixture(scope="module")
def reben(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    """ben-s2's v2 downloads as Zenodo has them, and the layout a clean prepare gives."""
    tmp = tmp_path_factory.mktemp("reben")
    downloads = dp.write_archive_fixture(BEN_S2, tmp / "dl", variant="v2")
    summary = dp.prepare(BEN_S2, downloads, tmp / "clean", progress=False)
    assert summary["variant"] == "v2"
    return downloads, tree(tmp / "clean")


def _downloads_with(reben, tmp_path: Path, data: bytes) -> Path:
    """A copy of the downloads whose S2 archive holds ``data``."""
    dl = tmp_path / "dl"
    shutil.copytree(reben[0], dl)
    (dl / S2).write_bytes(data)
    return dl


def test_fixture_is_the_zenodo_file_set() -> None:
    variant = dp.load_object(BEN_S2.archives).variant("v2")
    assert [a.name for a in variant.archives] == [S2, "metadata.parquet"]
    assert variant.archives[0].url == "https://zenodo.org/records/10891137/files/" + S2


def test_prepare_from_tar_zst_then_check_then_nothing_to_do(reben, tmp_path: Path) -> None:
    downloads, clean = reben
    assert sorted(p.name for p in downloads.iterdir() if not p.name.startswith(".")) == [S2, "metadata.parquet"]
    data = (downloads / S2).read_bytes()
    assert data[:4] == b"\x28\xb5\x2f\xfd"  # a zstd frame, as the provider's file
    with open(downloads / S2, "rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as r:
        names = [m.name for m in tarfile.open(fileobj=r, mode="r|")]
    assert all(n.startswith("BigEarthNet-S2/S2") and n.count("/") == 3 for n in names)  # <tile>/<patch>/<band>
    summary = dp.prepare(BEN_S2, downloads, tmp_path / "root", progress=False)
    check = summary["check"]
    assert check["row_fields"]["ben_version"] == "v2"
    assert [len(check["samples"][s]) for s in ("train", "val", "test")] == [57, 19, 38]
    assert tree(tmp_path / "root") == clean
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "root").rglob("*.tif")}
    again = dp.prepare(BEN_S2, downloads, tmp_path / "root", progress=False, check=False)
    assert set(again["actions"].values()) == {"up to date"}
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


@pytest.mark.parametrize("cut", ["half", "last bytes"])
@pytest.mark.parametrize("verify", [True, False])
def test_truncated_tar_zst_is_named_and_nothing_written(reben, cut: str, verify: bool, tmp_path: Path) -> None:
    data = (reben[0] / S2).read_bytes()
    dl = _downloads_with(reben, tmp_path, data[: len(data) // 2] if cut == "half" else data[:-3])
    with pytest.raises(PrepareError, match="md5" if verify else "truncated") as err:
        dp.prepare(BEN_S2, dl, tmp_path / "root", verify=verify, progress=False)
    assert str(dl / S2) in str(err.value)
    if not verify:
        assert "cut short" in str(err.value) and "zenodo.org/records/10891137" in str(err.value)
    assert tree(tmp_path / "root") == {}  # metadata.parquet was fine, yet nothing is half-written


def test_corrupt_tar_zst_is_named(reben, tmp_path: Path) -> None:
    data = bytearray((reben[0] / S2).read_bytes())
    data[len(data) // 3] ^= 0x55
    dl = _downloads_with(reben, tmp_path, bytes(data))
    with pytest.raises(PrepareError, match="damaged") as err:
        dp.prepare(BEN_S2, dl, tmp_path / "root", verify=False, progress=False)
    assert str(dl / S2) in str(err.value)
    assert tree(tmp_path / "root") == {}
    dl = _downloads_with(reben, tmp_path / "b", b"<html>Zenodo: file not found</html>")
    with pytest.raises(PrepareError, match=r"BigEarthNet-S2\.tar\.zst: not a readable tar archive .*does not decode"):
        dp.prepare(BEN_S2, dl, tmp_path / "root", verify=False, progress=False)


def test_multi_frame_tar_zst_reads_as_one(reben, tmp_path: Path) -> None:
    """zstd -T / pzstd write several frames; they are one stream."""
    raw = zstandard.ZstdDecompressor().decompressobj().decompress((reben[0] / S2).read_bytes())
    third = len(raw) // 3
    frames = b"".join(zstandard.ZstdCompressor(write_checksum=True).compress(piece)
                      for piece in (raw[:third], raw[third:2 * third], raw[2 * third:]))
    dl = _downloads_with(reben, tmp_path, frames)
    dp.prepare(BEN_S2, dl, tmp_path / "root", verify=False, progress=False)
    assert tree(tmp_path / "root") == reben[1]
    (dl / S2).write_bytes(frames[:-10])  # cut inside the last frame
    with pytest.raises(PrepareError, match=r"cut short \(ZstdDataError: the input ends inside zstd frame 3"):
        dp.prepare(BEN_S2, dl, tmp_path / "fresh", verify=False, progress=False)


def test_killed_prepare_reruns_to_the_same_tree(reben, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    downloads, clean = reben
    real, calls = dp._move, []

    def killed(*args, **kwargs):
        calls.append(1)
        if len(calls) == 100:
            raise KeyboardInterrupt("killed while moving files into place")
        return real(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(dp, "_move", killed)
        with pytest.raises(KeyboardInterrupt):
            dp.prepare(BEN_S2, downloads, tmp_path / "root", progress=False)
    assert 0 < len(tree(tmp_path / "root")) < len(clean)
    dp.prepare(BEN_S2, downloads, tmp_path / "root", progress=False)
    assert tree(tmp_path / "root") == clean


def test_unpacked_by_hand_is_still_read(reben, tmp_path: Path) -> None:
    """A user who ran ``tar --zstd -xf`` has BigEarthNet-S2/ next to the archive's place."""
    downloads, clean = reben
    dl = tmp_path / "dl"
    shutil.copytree(downloads, dl)
    with open(dl / S2, "rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as r:
        tarfile.open(fileobj=r, mode="r|").extractall(dl, filter="data")
    (dl / S2).unlink()
    summary = dp.prepare(BEN_S2, dl, tmp_path / "root", link="symlink", progress=False)
    assert summary["actions"][S2].startswith("prepared")
    assert tree(tmp_path / "root") == clean
