"""iSAID's two layouts (the release's ``Semantic_masks/images/`` and iSAID_Devkit's masks next to
the images): both read to the same samples and pixels, the summary and row say which was read,
and a root that is neither, or mixes them, is refused naming the file and what each expects."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rsbench.errors import DataLayoutError
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench_segmentation import isaid
from rsbench_segmentation.seg_task import SegmentationTask

SEED, COUNTS = 4, {"train": 3, "val": 2}


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {layout: isaid.write_fixture(tmp_path_factory.mktemp(layout), seed=SEED, counts=COUNTS, layout=layout)
            for layout in isaid.FIXTURE_LAYOUTS}


def copy(roots: dict[str, Path], layout: str, tmp_path: Path) -> Path:
    shutil.copytree(roots[layout], tmp_path / layout)
    return tmp_path / layout / isaid.FOLDER


def test_devkit_fixture_keeps_masks_next_to_the_images_and_is_read_as_devkit(roots):
    images = roots["devkit"] / "iSAID/train/images"
    assert {p.name for p in images.iterdir()} >= {"P0000.png", "P0000_instance_color_RGB.png",
                                                  "P0000_instance_id_RGB.png"}
    assert not (roots["devkit"] / "iSAID/train/Semantic_masks").exists()
    summary = isaid.check(roots["devkit"])
    assert summary["layout"] == "devkit"
    assert [s["name"] for s in summary["splits"]["train"]] == ["P0000", "P0001", "P0002"]  # no mask taken as an image
    assert all(Path(s["label"]).parent == images for s in summary["splits"]["train"])
    release = isaid.check(roots["release"])
    assert release["layout"] == "release"


def test_release_stays_the_default_fixture_and_the_catalog_writes_either(roots, tmp_path):
    assert (roots["release"] / "iSAID/val/Semantic_masks/images/P1000_instance_color_RGB.png").is_file()
    written = get_catalog().datasets.get("isaid").write_fixture(tmp_path / "cli", seed=SEED, layout="devkit")
    assert isaid.check(written)["layout"] == "devkit"  # what `rsbench data fixture isaid --layout devkit` calls
    with pytest.raises(DataLayoutError, match=r"layout 'patches': expected one of release, devkit"):
        isaid.write_fixture(tmp_path / "bad", layout="patches")


def test_both_layouts_of_one_seed_give_the_same_samples_and_pixels(roots):
    release, devkit = isaid.check(roots["release"]), isaid.check(roots["devkit"])
    for split in isaid.SPLITS:
        a, b = release["splits"][split], devkit["splits"][split]
        assert [(s["name"], s["size"]) for s in a] == [(s["name"], s["size"]) for s in b]
        for sa, sb in zip(a, b):
            (img_a, label_a), (img_b, label_b) = isaid.load(sa, ["hr"]), isaid.load(sb, ["hr"])
            np.testing.assert_array_equal(img_a["hr"], img_b["hr"])
            np.testing.assert_array_equal(label_a, label_b)
    # the training windows (read through the tile cache) too
    pa, pb = (SegmentationTask._patches(s["splits"]["train"], 64, 16) for s in (release, devkit))
    assert [s["window"] for s in pa] == [s["window"] for s in pb] and len(pa) > 3
    for sa, sb in zip(pa, pb):
        (img_a, label_a), (img_b, label_b) = (isaid.load(s, ["hr"], window=s["window"]) for s in (sa, sb))
        np.testing.assert_array_equal(img_a["hr"], img_b["hr"])
        np.testing.assert_array_equal(label_a, label_b)


def test_a_mask_next_to_the_images_of_a_release_root_is_refused_naming_it(roots, tmp_path):
    root = copy(roots, "release", tmp_path)
    stray = root / "train/images/P0001_instance_color_RGB.png"
    shutil.copy(root / "train/Semantic_masks/images/P0001_instance_color_RGB.png", stray)
    with pytest.raises(DataLayoutError, match=rf"{stray}: a mask next to the images \(devkit layout\) while "
                                              rf".*train/Semantic_masks holds the release's masks"):
        isaid.check(root)


def test_splits_in_different_layouts_are_refused_naming_both(roots, tmp_path):
    root = copy(roots, "release", tmp_path)
    shutil.rmtree(root / "val")
    shutil.copytree(roots["devkit"] / "iSAID/val", root / "val")
    with pytest.raises(DataLayoutError, match=r"different iSAID layouts, masks in .*train/Semantic_masks/images "
                                              r"\(release\), .*val/images \(devkit\)"):
        isaid.check(root)


def test_no_masks_names_what_each_layout_expects(roots, tmp_path):
    root = copy(roots, "devkit", tmp_path)
    for mask in (root / "train/images").glob("*_instance_*"):
        mask.unlink()
    with pytest.raises(DataLayoutError, match=r"train: no masks in either iSAID layout .* expected release: "
                                              r"iSAID/train/images/Pxxxx.png \+ iSAID/train/Semantic_masks/images/"
                                              r"Pxxxx_instance_color_RGB.png; devkit: iSAID/train/images/ holding"):
        isaid.check(root)


def test_a_missing_devkit_mask_and_devkit_patches_name_the_file(roots, tmp_path):
    root = copy(roots, "devkit", tmp_path)
    (root / "val/images/P1001_instance_color_RGB.png").unlink()
    with pytest.raises(DataLayoutError, match=r"val/images/P1001_instance_color_RGB.png: missing mask for image "
                                              r".*P1001.png \(devkit layout"):
        isaid.check(root)
    shutil.copy(root / "val/images/P1000.png", root / "val/images/P1000_0_800_0_800.png")
    with pytest.raises(DataLayoutError, match=r"P1000_0_800_0_800.png: a patch written by iSAID_Devkit's split.py"):
        isaid.check(root)


def test_mmsegs_converted_patches_are_refused_naming_the_folder(tmp_path):
    for folder in ("img_dir/train", "ann_dir/train"):
        (tmp_path / "iSAID" / folder).mkdir(parents=True)
    with pytest.raises(DataLayoutError, match=r"iSAID/img_dir: mmseg's converted patches"):
        isaid.check(tmp_path)


# -- a run on the devkit layout -------------------------------------------------------------------
@pytest.fixture(scope="module")
def devkit_run(roots, tmp_path_factory, one_torch_thread):
    from rsbench.run.runner import run_evaluation
    from rsbench.run.spec import RunSpec

    spec = RunSpec(backbone="resnet50-tiny", task="isaid", data_root=str(roots["devkit"]), max_iters=4, lr=1e-2,
                   options=dict(patch_size=64, overlap=16, batch_size=2),
                   work_dir=str(tmp_path_factory.mktemp("work")))
    return run_evaluation(spec, results_dir=tmp_path_factory.mktemp("results"), show_progress=False)


@pytest.mark.slow
def test_a_few_iterations_on_the_devkit_layout_end_ok(devkit_run):
    assert devkit_run.status == "ok", devkit_run.row["error"]
    assert 0 <= devkit_run.row["value"] <= 100


@pytest.mark.slow
def test_the_row_records_the_layout_read(devkit_run):
    assert devkit_run.row["data_layout"] == "devkit"
