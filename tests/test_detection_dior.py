"""DIOR / DIOR-R reader and fixture: official layout, class-name matching, errors naming the
file and object, and --skip-bad counting."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rsbench.errors import DataLayoutError
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench_detection import dior

OBB = dior.OBB_DIR
HBB = dior.HBB_DIR


@pytest.fixture(scope="module")
def dior_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dior.write_fixture(tmp_path_factory.mktemp("dior"), seed=0)


def _copy(dior_root: Path, tmp_path: Path) -> Path:
    shutil.copytree(dior_root / "DIOR", tmp_path / "DIOR")
    return tmp_path / "DIOR"


def test_fixture_is_in_the_official_layout_and_deterministic(dior_root, tmp_path):
    root = dior_root / "DIOR"
    for folder in ("JPEGImages-trainval", "JPEGImages-test", OBB, HBB):
        assert (root / folder).is_dir()
    assert (root / "ImageSets/Main/test.txt").read_text().split()[0] == "00015"
    assert (root / "JPEGImages-test/00015.jpg").is_file() and (root / "JPEGImages-trainval/00001.jpg").is_file()
    xml = (root / OBB / "00001.xml").read_text()
    assert "<robndbox><x_left_top>" in xml and "<angle>" in xml
    again = dior.write_fixture(tmp_path / "again", seed=0)
    assert (again / "DIOR" / OBB / "00007.xml").read_bytes() == (root / OBB / "00007.xml").read_bytes()
    assert (again / "DIOR/JPEGImages-test/00016.jpg").read_bytes() == (root / "JPEGImages-test/00016.jpg").read_bytes()


def test_check_and_read_both_annotation_kinds(dior_root):
    summary = get_catalog().datasets.get("dior").check(dior_root)
    assert summary["splits"] == {"train": 10, "val": 4, "test": 6}
    obb = dior.read(dior_root, ("train", "val"), oriented=True)
    hbb = dior.read(dior_root / "DIOR", ("train", "val"), oriented=False)
    assert len(obb["samples"]) == len(hbb["samples"]) == 14 and obb["bad_samples"] == 0
    first_o, first_h = obb["samples"][0]["instances"][0], hbb["samples"][0]["instances"][0]
    assert len(first_o["bbox"]) == 8 and len(first_h["bbox"]) == 4
    xs, ys = first_o["bbox"][0::2], first_o["bbox"][1::2]
    # The horizontal box encloses the oriented one (DIOR's HBB/OBB relation).
    assert first_h["bbox"][0] <= min(xs) and first_h["bbox"][2] >= max(xs)
    assert first_h["bbox"][1] <= min(ys) and first_h["bbox"][3] >= max(ys)
    assert first_o["bbox_label"] == first_h["bbox_label"]


def test_class_names_are_matched_case_and_hyphen_insensitively(dior_root):
    xmls = "".join(p.read_text() for p in (dior_root / "DIOR" / OBB).glob("*.xml"))
    assert "Expressway-Service-area" in xmls  # the release's spelling
    labels = {i["bbox_label"] for s in dior.read(dior_root, ("train",), True)["samples"] for i in s["instances"]}
    assert dior.CLASSES.index("expressway-service-area") in labels
    assert labels <= {dior.CLASSES.index(dior.CLASSES[k]) for k in dior.FIXTURE_CLASSES}


def test_missing_folder_and_split_file_are_named(dior_root, tmp_path):
    root = _copy(dior_root, tmp_path)
    (root / "ImageSets/Main/val.txt").unlink()
    with pytest.raises(DataLayoutError, match=r"val.txt: split file missing"):
        dior.check(tmp_path)
    shutil.rmtree(root / "JPEGImages-test")
    with pytest.raises(DataLayoutError, match=r"JPEGImages-test: folder missing"):
        dior.check(tmp_path)


@pytest.mark.parametrize("edit, message", [
    (lambda x: x.replace("</annotation>", ""), r"00002.xml: malformed XML"),
    (lambda x: x.replace("<x_right_bottom>", "<x_rb>").replace("</x_right_bottom>", "</x_rb>"),
     r"00002.xml object 0: missing or non-numeric <x_right_bottom>"),
    (lambda x: x.replace("<name>", "<name>Spaceship", 1), r"00002.xml object 0: unknown class name 'Spaceship"),
])
def test_bad_annotations_name_the_file_and_object(dior_root, tmp_path, edit, message):
    root = _copy(dior_root, tmp_path)
    xml = root / OBB / "00002.xml"
    xml.write_text(edit(xml.read_text()))
    with pytest.raises(DataLayoutError, match=message):
        dior.read(root, ("train",), oriented=True)


def test_missing_image_raises_or_is_counted_with_skip_bad(dior_root, tmp_path):
    root = _copy(dior_root, tmp_path)
    (root / "JPEGImages-trainval/00003.jpg").unlink()
    (root / HBB / "00004.xml").write_text("<annotation>")
    with pytest.raises(DataLayoutError, match=r"00003.jpg: image missing on disk"):
        dior.read(root, ("train",), oriented=False)
    out = dior.read(root, ("train",), oriented=False, skip_bad=True)
    assert out["bad_samples"] == 2 and len(out["samples"]) == 8
    assert "00003.jpg" in out["bad_reasons"][0] and "00004.xml: malformed XML" in out["bad_reasons"][1]


def test_tasks_are_registered_with_their_protocol():
    tasks = get_catalog().tasks
    assert tasks.get("dior-r").dataset == tasks.get("dior").dataset == "dior"
    assert "DOTAMetric" in tasks.get("dior-r").metric_definition
    assert "VOCMetric" in tasks.get("dior").metric_definition
    assert tasks.get("dior-r").options["nproc"] == 4
