"""`rsbench data prepare` and `data fixture --archives`: fixture archives -> prepare -> check, reruns,
kills, and bad downloads. Pure Python (no torch); every fixture is tiny."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import time
import zipfile
from pathlib import Path

import pytest
from rich.console import Console

from rsbench.io import data_prepare as dp
from rsbench.io.data_prepare import Archive, PrepareError, Recipe, Variant
from rsbench.plugin_api.catalog import DatasetInfo


#: dataset -> (checker, fixture writer, recipe), as the plugins declare them in DatasetInfo.
def _reader(module: str, recipe: str) -> tuple[str, str, str]:
    return f"{module}:check", f"{module}:write_fixture", recipe


_DYNA = "rsbench_segmentation.dynamicearthnet"
RECIPES = {
    "levir-cd": _reader("rsbench_change.levir_cd", "rsbench_change.archives:LEVIR_CD"),
    "whu-cd": _reader("rsbench_change.whu_cd", "rsbench_change.archives:WHU_CD"),
    "aid": _reader("rsbench_classification.aid", "rsbench_classification.archives:AID"),
    "resisc45": _reader("rsbench_classification.resisc45", "rsbench_classification.archives:RESISC45"),
    "dior": _reader("rsbench_detection.dior", "rsbench_detection.archives:DIOR"),
    "isaid": _reader("rsbench_segmentation.isaid", "rsbench_segmentation.archives:ISAID"),
    "potsdam": _reader("rsbench_segmentation.potsdam", "rsbench_segmentation.archives:POTSDAM"),
    "deepglobe-road": _reader("rsbench_segmentation.deepglobe_road", "rsbench_segmentation.archives:DEEPGLOBE_ROAD"),
    "oscd": _reader("rsbench_change.oscd", "rsbench_change.archives:OSCD"),
    "fair1m": _reader("rsbench_detection.fair1m", "rsbench_detection.archives:FAIR1M"),
    "ben-s2": _reader("rsbench_classification.ben_s2", "rsbench_classification.archives:BEN_S2"),
    "ben-mm": _reader("rsbench_classification.ben_mm", "rsbench_classification.archives:BEN_MM"),
    "dfc25-t2": _reader("rsbench_change.dfc25", "rsbench_change.archives:DFC25_T2"),
    "dyna-s2-cd": _reader("rsbench_change.dyna_cd", "rsbench_change.archives:DYNA_S2_CD"),
    "sardet100k": _reader("rsbench_detection.sardet", "rsbench_detection.archives:SARDET100K"),
    "ubcv2": _reader("rsbench_detection.ubcv2", "rsbench_detection.archives:UBCV2"),
    "earthmiss": _reader("rsbench_segmentation.earthmiss", "rsbench_segmentation.archives:EARTHMISS"),
    "dyna-pla": (f"{_DYNA}:check_pla", f"{_DYNA}:write_pla", "rsbench_segmentation.archives:DYNA_PLA"),
    "dyna-s2": (f"{_DYNA}:check_s2", f"{_DYNA}:write_s2", "rsbench_segmentation.archives:DYNA_S2"),
    "dyna-mm": (f"{_DYNA}:check_mm", f"{_DYNA}:write_mm", "rsbench_segmentation.archives:DYNA_MM"),
    "guso": _reader("rsbench_crossmodal.guso", "rsbench_crossmodal.archives:GUSO"),
    "dfc23-t2": _reader("rsbench_crossmodal.dfc23", "rsbench_crossmodal.archives:DFC23_T2"),
    "fmow-s2": _reader("rsbench_classification.fmow_s2", "rsbench_classification.archives:FMOW_S2"),
}
#: Round trips left out because another one covers the same archives (asserted below): ben-s2's
#: are a subset of ben-mm's; the DynamicEarthNet recipes differ only in which archives are optional.
COVERED = {"ben-s2": "ben-mm", "dyna-pla": "dyna-mm", "dyna-s2": "dyna-mm", "dyna-s2-cd": "dyna-mm"}
CASES = [(name, v.name) for name in RECIPES if name not in COVERED
         for v in dp.load_object(RECIPES[name][2]).variants]
NEEDS_RASTERIO = {("whu-cd", "official"), ("oscd", "release"), ("ben-s2", "v1"), ("ben-mm", "v1"), ("ben-mm", "v2"),
                  ("dfc25-t2", "zenodo"), ("dfc25-t2", "torchgeo"), ("ubcv2", "rgb-sar"), ("earthmiss", "zenodo"),
                  ("dyna-pla", "mediatum"), ("dyna-mm", "mediatum"), ("dfc23-t2", "dataport"), ("fmow-s2", "sdr")}
#: Variants published as .tar.zst (read with the zstandard package) or holding a parquet file.
NEEDS_ZSTD = {("ben-s2", "v2"), ("ben-mm", "v2")}


def info_of(name: str) -> DatasetInfo:
    checker, fixture, recipe = RECIPES[name]
    return DatasetInfo(name=name, title=name, layout="", classes=(), checker=checker, fixture=fixture,
                       archives=recipe)


def tree(root: Path) -> dict[str, bytes]:
    """Every layout file under ``root`` with its bytes (the engine's state and markers left out)."""
    skip = (dp.STATE_DIR, dp.PREPARED_MARKER, ".rsbench-fixture")
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.relative_to(root).as_posix().startswith(skip)}


def snapshot(folder: Path) -> dict[str, tuple[int, int, str]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns,
                                                hashlib.md5(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def plain_fixture(info: DatasetInfo, variant: str, tmp: Path) -> tuple[Path, dict[str, bytes]]:
    """The variant's plain fixture (written once) and its layout, as the prepared root must hold it."""
    chosen = dp.recipe_of(info).variant(variant)
    out = tmp / "plain"
    (dp.load_object(chosen.fixture) if chosen.fixture else info.write_fixture)(out, seed=0)
    return out, tree(out / chosen.fixture_dir if chosen.fixture_dir else out)


def expected_tree(info: DatasetInfo, variant: str, tmp: Path) -> dict[str, bytes]:
    return plain_fixture(info, variant, tmp)[1]


@pytest.mark.parametrize("name,variant", CASES)
def test_fixture_archives_prepare_check(name: str, variant: str, tmp_path: Path) -> None:
    if (name, variant) in NEEDS_RASTERIO:
        pytest.importorskip("rasterio")
    if (name, variant) in NEEDS_ZSTD:
        pytest.importorskip("zstandard")
        pytest.importorskip("pyarrow")
    info = info_of(name)
    plain, expected = plain_fixture(info, variant, tmp_path)
    downloads = dp.write_archive_fixture(info, tmp_path / "dl", seed=0, variant=variant, source=plain)
    before = snapshot(downloads)
    summary = dp.prepare(info, downloads, tmp_path / "root", variant=variant, progress=False)
    assert summary["variant"] == variant and summary["check"]
    assert all(a.startswith("prepared") for a in summary["actions"].values())
    assert tree(tmp_path / "root") == expected
    assert (tmp_path / "root" / ".rsbench-fixture").is_file()  # runs on it are flagged as fixture runs
    # a second prepare does nothing: every archive up to date, no file rewritten
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "root").rglob("*") if p.is_file()
              and dp.STATE_DIR not in p.parts and p.name != dp.PREPARED_MARKER}
    start = time.perf_counter()
    again = dp.prepare(info, downloads, tmp_path / "root", variant=variant, progress=False, check=False)
    assert set(again["actions"].values()) == {"up to date"}
    assert time.perf_counter() - start < 2
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert snapshot(downloads) == before  # the downloads are never modified
    assert not (tmp_path / "root" / dp.STATE_DIR / "staging").exists()


@pytest.mark.parametrize("variant,s1", [("v1", "BigEarthNet-S1-v1.0.tar.gz"), ("v2", "BigEarthNet-S1.tar.zst")])
def test_ben_s2_archives_are_ben_mm_s(variant: str, s1: str) -> None:
    s2, mm = (dp.load_object(RECIPES[n][2]).variant(variant).archives for n in ("ben-s2", "ben-mm"))
    assert set(s2) < set(mm) and {a.name for a in set(mm) - set(s2)} == {s1}


def test_dynamicearthnet_recipes_differ_only_in_what_is_required() -> None:
    """The three recipes left out of the round trips hold dyna-mm's archives; each requires its modality."""
    recipes = {n: dp.load_object(RECIPES[n][2]).variants[0].archives for n in ("dyna-pla", "dyna-s2", "dyna-s2-cd",
                                                                               "dyna-mm")}
    names = {n: [a.name for a in archives] for n, archives in recipes.items()}
    assert all(v == names["dyna-mm"] for v in names.values())
    required = {n: {a.name for a in archives if not a.optional} for n, archives in recipes.items()}
    common = {"labels.zip", *(f"dynnet_training_splits/{s}.txt" for s in ("train", "val", "test"))}
    assert required["dyna-pla"] == common
    assert required["dyna-s2"] == required["dyna-s2-cd"] == common | {"sentinel2.zip"}
    assert required["dyna-mm"] == common | {"sentinel1.zip", "sentinel2.zip"}
    assert "planet.10N.zip" in names["dyna-mm"] and "planet.60S.zip" in names["dyna-mm"]


def test_dynamicearthnet_needs_only_the_modalities_read(tmp_path: Path) -> None:
    """A Planet-only download serves dyna-pla; dyna-s2 names its missing sentinel2.zip and where it comes from."""
    pytest.importorskip("rasterio")
    dl = dp.write_archive_fixture(info_of("dyna-mm"), tmp_path / "dl")
    assert (dl / "planet.10N.zip").is_file() and (dl / "dynnet_training_splits" / "train.txt").is_file()
    (dl / "sentinel1.zip").unlink()
    (dl / "sentinel2.zip").unlink()
    with pytest.raises(PrepareError, match=r"- sentinel2\.zip: from https://mediatum\.ub\.tum\.de/1650201") as err:
        dp.prepare(info_of("dyna-s2"), dl, tmp_path / "s2", progress=False)
    assert "- planet." not in str(err.value)  # the optional zone zips are not listed as missing
    summary = dp.prepare(info_of("dyna-pla"), dl, tmp_path / "pla", progress=False)
    assert summary["check"]["splits"]["train"] and not (tmp_path / "pla" / "sentinel2").exists()


def test_catalog_declares_the_recipes() -> None:
    """Every dataset with a recipe here declares it, and the checker and fixture the round trips used."""
    from rsbench.plugin_api.plugin_host import get_catalog

    catalog = get_catalog()
    declared = {n: catalog.datasets.get(n) for n in RECIPES if n in catalog.datasets}
    if not any(info.archives for info in declared.values()):
        pytest.skip("the plugins do not declare DatasetInfo.archives yet")
    assert set(declared) == set(RECIPES)
    for name, info in declared.items():
        checker, fixture, recipe = RECIPES[name]
        assert (info.archives, info.checker, info.fixture) == (recipe, checker, fixture), name
    assert "train.zip" in dp.describe(catalog.datasets.get("levir-cd"))


# -- killed midway ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def levir(tmp_path_factory: pytest.TempPathFactory) -> tuple[DatasetInfo, Path, dict[str, bytes]]:
    """LEVIR-CD's three archives and the tree a clean prepare gives."""
    info = info_of("levir-cd")
    tmp = tmp_path_factory.mktemp("levir")
    downloads = dp.write_archive_fixture(info, tmp / "dl")
    dp.prepare(info, downloads, tmp / "clean", progress=False, check=False)
    return info, downloads, tree(tmp / "clean")


def _fail_on_call(monkeypatch: pytest.MonkeyPatch, attr: str, n: int) -> None:
    real, calls = getattr(dp, attr), []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt(f"killed in {attr} call {n}")
        return real(*args, **kwargs)

    monkeypatch.setattr(dp, attr, wrapper)


@pytest.mark.parametrize("attr,n", [("_install", 2), ("_move", 20), ("_stage", 2)])
def test_killed_prepare_reruns_to_the_same_tree(levir, attr: str, n: int, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    info, downloads, clean = levir
    with monkeypatch.context() as m:
        _fail_on_call(m, attr, n)
        with pytest.raises(KeyboardInterrupt):
            dp.prepare(info, downloads, tmp_path / "root", progress=False)
    partial = tree(tmp_path / "root")
    if attr == "_stage":  # killed while unpacking: nothing of the layout is written yet
        assert partial == {}
    else:
        assert 0 < len(partial) < len(clean)
    summary = dp.prepare(info, downloads, tmp_path / "root", progress=False)
    assert tree(tmp_path / "root") == clean
    if attr == "_install":
        assert summary["actions"]["train.zip"] == "up to date"


# -- bad downloads ---------------------------------------------------------------------------------
def _copy(src: Path, dst: Path) -> Path:
    for p in src.rglob("*"):
        if p.is_file():
            (dst / p.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            (dst / p.relative_to(src)).write_bytes(p.read_bytes())
    return dst


@pytest.mark.parametrize("verify", [True, False])
def test_truncated_archive_is_named_and_nothing_written(levir, verify: bool, tmp_path: Path) -> None:
    info, downloads, _ = levir
    dl = _copy(downloads, tmp_path / "dl")
    data = (dl / "val.zip").read_bytes()
    (dl / "val.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(PrepareError, match="md5" if verify else "truncated") as err:
        dp.prepare(info, dl, tmp_path / "root", verify=verify, progress=False)
    assert str(dl / "val.zip") in str(err.value)
    assert tree(tmp_path / "root") == {}  # train.zip and test.zip were fine, yet nothing is half-written


def test_missing_archives_are_named_with_their_source(levir, tmp_path: Path) -> None:
    info, downloads, _ = levir
    dl = _copy(downloads, tmp_path / "dl")
    (dl / "val.zip").unlink()
    (dl / "test.zip").unlink()
    with pytest.raises(PrepareError) as err:
        dp.prepare(info, dl, tmp_path / "root", progress=False)
    message = str(err.value)
    assert "- val.zip: from https://justchenhao.github.io/LEVIR/" in message
    assert "- test.zip: from" in message and "- train.zip" not in message
    with pytest.raises(PrepareError, match=r"(?s)isprs-zips.*2_Ortho_RGB.zip.*potsdam-zip.*Potsdam.zip"):
        dp.prepare(info_of("potsdam"), tmp_path / "dl", tmp_path / "p", progress=False)


#: LEVIR-CD as tar.gz in two byte-split parts, a plain tar, and a zip in three parts.
SPLIT = Recipe(dataset="levir-cd", page="https://example.org/levir", variants=(Variant(
    name="split", fixture_dir="LEVIR-CD", archives=(
        Archive("train.tar.gz", url="https://example.org/train", dest="train",
                parts=("train.tar.gz.001", "train.tar.gz.002")),
        Archive("val.tar", url="https://example.org/val", dest="val"),
        Archive("test.zip", url="https://example.org/test", dest="test", parts=("test.z.1", "test.z.2", "test.z.3")),
    )),))


def test_multipart_and_tar_archives(levir, tmp_path: Path) -> None:
    info, _, clean = levir
    dl = dp.write_archive_fixture(info, tmp_path / "dl", recipe=SPLIT)
    assert (dl / "train.tar.gz.002").is_file() and not (dl / "train.tar.gz").exists()
    dp.prepare(info, dl, tmp_path / "root", recipe=SPLIT, progress=False)
    assert tree(tmp_path / "root") == clean
    # a missing part: named, with where it comes from; nothing written
    (dl / "test.z.2").unlink()
    with pytest.raises(PrepareError, match=r"test\.z\.2: missing part .*test\.zip.*https://example\.org/test"):
        dp.prepare(info, dl, tmp_path / "fresh", recipe=SPLIT, progress=False)
    assert tree(tmp_path / "fresh") == {}


@pytest.mark.parametrize("name", ["train.tar.gz.002", "val.tar"])
def test_truncated_tar_is_named(levir, name: str, tmp_path: Path) -> None:
    info, _, _ = levir
    dl = dp.write_archive_fixture(info, tmp_path / "dl", recipe=SPLIT)
    data = (dl / name).read_bytes()
    (dl / name).write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(PrepareError, match="truncated") as err:
        dp.prepare(info, dl, tmp_path / "root", recipe=SPLIT, verify=False, progress=False)
    assert name.split(".0")[0] in str(err.value)
    assert tree(tmp_path / "root") == {}


def test_published_checksum_is_verified(tmp_path: Path) -> None:
    """Outside fixtures the recipe's published md5 applies; --no-verify skips it."""
    info = info_of("resisc45")
    dl = dp.write_archive_fixture(info, tmp_path / "dl")
    (dl / ".rsbench-fixture").unlink()
    with pytest.raises(PrepareError, match="NWPU-RESISC45.zip: md5 .* differs from the published 75206b2e"):
        dp.prepare(info, dl, tmp_path / "root", progress=False)
    assert tree(tmp_path / "root") == {}
    assert dp.prepare(info, dl, tmp_path / "root", verify=False, progress=False)["check"]


def test_potsdam_labels_without_top_folder(tmp_path: Path) -> None:
    info = info_of("potsdam")
    dl = dp.write_archive_fixture(info, tmp_path / "dl")
    labels = dl / "5_Labels_all_noBoundary.zip"
    with zipfile.ZipFile(labels) as zf:
        flat = [(n.split("/", 1)[1], zf.read(n)) for n in zf.namelist()]
    assert all("/" not in n for n, _ in flat)
    labels.write_bytes(dp.pack(labels.name, flat))
    (dl / ".rsbench-fixture").write_text(json.dumps({"dataset": "potsdam", "seed": 0}))
    dp.prepare(info, dl, tmp_path / "root", progress=False)
    assert tree(tmp_path / "root") == expected_tree(info, "isprs-zips", tmp_path)


@pytest.fixture(scope="module")
def aid_unpacked(tmp_path_factory: pytest.TempPathFactory) -> tuple[DatasetInfo, Path, dict[str, bytes]]:
    """AID's downloads as a user who already unzipped AID.zip has them (AID/ in its place)."""
    info, tmp = info_of("aid"), tmp_path_factory.mktemp("aid")
    dl = dp.write_archive_fixture(info, tmp / "dl")
    with zipfile.ZipFile(dl / "AID.zip") as zf:
        zf.extractall(dl)
    (dl / "AID.zip").unlink()
    return info, dl, expected_tree(info, "release", tmp)


@pytest.mark.parametrize("link", ["symlink", "hardlink", "copy"])
def test_unpacked_download_is_linked_or_copied(aid_unpacked, link: str, tmp_path: Path) -> None:
    """A download the user already unzipped (AID/ next to where AID.zip was) is linked or copied."""
    info, dl, expected = aid_unpacked
    before = snapshot(dl)
    console = Console(file=io.StringIO(), width=100)
    dp.prepare(info, dl, tmp_path / "root", link=link, progress=True, console=console)
    assert f"{link} AID/" in console.file.getvalue()  # the rich progress bar ran
    target = tmp_path / "root" / "Airport" / "airport_1.jpg"
    source = dl / "AID" / "Airport" / "airport_1.jpg"
    assert target.is_symlink() == (link == "symlink")
    assert os.path.samefile(target, source) == (link != "copy")
    assert tree(tmp_path / "root") == expected
    assert snapshot(dl) == before
    again = dp.prepare(info, dl, tmp_path / "root", link=link, progress=False, check=False)
    assert again["actions"] == {"AID.zip": "up to date"}


def test_foreign_format_and_traversal_are_refused(tmp_path: Path) -> None:
    info = info_of("aid")
    dl = tmp_path / "dl"
    dl.mkdir()
    recipe = Recipe("aid", "https://example.org", (Variant("v", (Archive("AID.zip", url="u", top="AID"),)),))
    (dl / "AID.zip").write_bytes(dp.pack("AID.zip", [("AID/../../evil.txt", b"x")]))
    with pytest.raises(PrepareError, match="points outside"):
        dp.prepare(info, dl, tmp_path / "root", recipe=recipe, progress=False)
    assert not (tmp_path / "evil.txt").exists()
    rar = Recipe("aid", "https://example.org", (Variant("v", (Archive("AID.rar", url="u"),)),))
    (dl / "AID.rar").write_bytes(b"Rar!")
    with pytest.raises(PrepareError, match=r"AID\.rar: \.rar archives cannot be read.*AID/"):
        dp.prepare(info, dl, tmp_path / "root2", recipe=rar, progress=False)


def test_describe_lists_sources_and_checksums() -> None:
    text = dp.describe(info_of("resisc45"))
    assert "NWPU-RESISC45.zip" in text and "md5 75206b2e16446591afa88e2628744886" in text
    text = dp.describe(info_of("potsdam"))
    assert "member Potsdam/2_Ortho_RGB.zip of Potsdam.zip" in text and "no published checksum" in text
    with pytest.raises(PrepareError, match="declares no archive recipe"):
        dp.recipe_of(dataclasses.replace(info_of("aid"), archives=""))


def test_fixture_archives_are_deterministic(tmp_path: Path) -> None:
    info = info_of("deepglobe-road")
    a = dp.write_archive_fixture(info, tmp_path / "a", seed=3)
    b = dp.write_archive_fixture(info, tmp_path / "b", seed=3)
    assert snapshot(a).keys() == snapshot(b).keys()
    assert all(snapshot(a)[k][2] == snapshot(b)[k][2] for k in snapshot(a))
