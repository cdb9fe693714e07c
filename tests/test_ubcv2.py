"""UBCv2 (RGB + registered SAR roofs, COCO): reader pairing optical and SAR files, the fixture
in the MaRS layout, errors naming the file, the multi-modal detector's channel split, and an
in-process mars-tiny run whose COCO mAP is far above chance and equals pycocotools on the
saved predictions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rsbench.errors import DataLayoutError, SpecError
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.run.runner import run_evaluation
from rsbench.run.spec import RunSpec
from rsbench_detection import ubcv2

#: Tiny heads, 64 px inputs: each run takes seconds on 2 shared cores.
SMALL = dict(img_size=64, anchor_scale=4, neck_channels=32, roi_fc_channels=128, rpn_proposals=300,
             roi_samples=128, nproc=1)


@pytest.fixture(scope="module")
def ubc_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ubcv2.write_fixture(tmp_path_factory.mktemp("ubcv2"), seed=0)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """One intra-op thread for this module (see conftest)."""


def _copy(root: Path, tmp: Path) -> Path:
    shutil.copytree(root / "UBCv2", tmp / "UBCv2")
    return tmp / "UBCv2"


# -- layout, reader, fixture ------------------------------------------------------------------
def test_fixture_layout_and_determinism(ubc_root, tmp_path):
    root = ubc_root / "UBCv2"
    for name in ("roof_fine_train.json", "roof_fine_val.json", "roof_fine_train_single_category.json",
                 "roof_fine_val_single_category.json"):
        assert (root / "annotations" / name).is_file()
    coco = json.loads((root / "annotations/roof_fine_train.json").read_text())
    first = coco["images"][0]["file_name"]
    assert first.startswith("P") and first.endswith(".tif")
    with Image.open(root / "images/train/rgb" / first) as rgb, Image.open(root / "images/train/sar" / first) as sar:
        assert rgb.mode == "RGB" and sar.mode == "F" and rgb.size == sar.size == (64, 64)
    assert all(a["segmentation"] and len(a["segmentation"][0]) == 8 for a in coco["annotations"])
    assert get_catalog().datasets.get("ubcv2").check(ubc_root)["splits"] == {"train": 12, "val": 4}
    again = ubcv2.write_fixture(tmp_path, seed=0) / "UBCv2"
    for rel in ("annotations/roof_fine_val.json", f"images/train/sar/{first}", "images/val/rgb/P0013.tif"):
        assert (again / rel).read_bytes() == (root / rel).read_bytes()


def test_reader_pairs_optical_and_sar_and_maps_categories(ubc_root):
    root = ubc_root / "UBCv2"
    single = ubcv2.read(ubc_root, ("train",))
    assert single["classes"] == ["roof"] and len(single["samples"]) == 12
    s = single["samples"][0]
    assert Path(s["img_path"]).parent.name == "rgb" and Path(s["sar_path"]).parent.name == "sar"
    assert Path(s["img_path"]).name == Path(s["sar_path"]).name
    assert {i["bbox_label"] for x in single["samples"] for i in x["instances"]} == {0}
    # Fine classes: category ids are out of order in the json, mapped by name.
    coco = json.loads((root / "annotations/roof_fine_train.json").read_text())
    ann = coco["annotations"][0]
    name = next(c["name"] for c in coco["categories"] if c["id"] == ann["category_id"])
    fine = ubcv2.read(ubc_root, ("train",), categories="fine")
    inst = fine["samples"][0]["instances"][0]
    assert fine["classes"] == list(ubcv2.CLASSES) and inst["bbox_label"] == ubcv2.CLASSES.index(name)
    x, y, w, h = ann["bbox"]
    assert inst["bbox"] == [x, y, x + w, y + h]
    # The SAR carries the roofs: brighter inside the boxes than outside.
    rgb, sar = ubcv2.load_pair(s["img_path"], s["sar_path"])
    assert rgb.shape == (64, 64, 3) and sar.shape == (64, 64, 1)
    x1, y1, x2, y2 = (int(v) for v in s["instances"][0]["bbox"])
    assert sar[y1 + 2:y2 - 2, x1 + 2:x2 - 2].mean() > 3 * np.median(sar)


def test_missing_sar_partner_raises_or_is_counted(ubc_root, tmp_path):
    root = _copy(ubc_root, tmp_path)
    (root / "images/train/sar/P0003.tif").unlink()
    with pytest.raises(DataLayoutError, match=r"sar/P0003.tif: SAR image missing on disk \(partner of .*rgb/P0003.tif\)"):
        ubcv2.read(tmp_path, ("train",))
    out = ubcv2.read(tmp_path, ("train",), skip_bad=True)
    assert out["bad_samples"] == 1 and len(out["samples"]) == 11 and "P0003" in out["bad_reasons"][0]


def test_unregistered_sar_size_is_an_error(ubc_root, tmp_path):
    root = _copy(ubc_root, tmp_path)
    Image.fromarray(np.zeros((32, 32), np.float32), mode="F").save(root / "images/val/sar/P0014.tif")
    with pytest.raises(DataLayoutError, match=r"P0014.tif: SAR size \(32, 32\) differs from the optical"):
        ubcv2.read(tmp_path, ("val",))


@pytest.mark.parametrize("edit, message", [
    (lambda c: "{not json", r"roof_fine_train.json: malformed JSON"),
    (lambda c: {**c, "categories": [{"id": 30, "name": "dome"}]}, r"roof_fine_train.json category 0: unknown class name 'dome'"),
    (lambda c: {**c, "annotations": [{**c["annotations"][0], "bbox": [1, 2, 3]}, *c["annotations"][1:]]},
     r"roof_fine_train.json annotation 0 \(image P0001.tif\): bbox must be \[x, y, w, h\]"),
])
def test_bad_fine_json_names_the_file_and_index(ubc_root, tmp_path, edit, message):
    root = _copy(ubc_root, tmp_path)
    path = root / "annotations/roof_fine_train.json"
    edited = edit(json.loads(path.read_text()))
    path.write_text(edited if isinstance(edited, str) else json.dumps(edited))
    with pytest.raises(DataLayoutError, match=message):
        ubcv2.read(tmp_path, ("train",), categories="fine")


def test_missing_folders_and_files_are_named(ubc_root, tmp_path):
    root = _copy(ubc_root, tmp_path)
    (root / "annotations/roof_fine_val_single_category.json").unlink()
    with pytest.raises(DataLayoutError, match=r"roof_fine_val_single_category.json: annotation file missing"):
        ubcv2.check(tmp_path)
    shutil.rmtree(root / "images/train/sar")
    with pytest.raises(DataLayoutError, match=r"images/train/sar: folder missing"):
        ubcv2.read(tmp_path, ("train",))


# -- the multi-modal detector -------------------------------------------------------------------
def test_merged_four_band_tifs_read_as_the_same_optical_and_sar(ubc_root, tmp_path):
    """The MaRS config's ``merge/`` layout (one R, G, B, SAR tif per image) gives the samples and
    pixels of the separate ``rgb/`` + ``sar/`` layout."""
    merged = ubcv2.write_fixture(tmp_path / "merged", seed=0, merged=True)
    assert ubcv2.check(merged)["splits"] == ubcv2.check(ubc_root)["splits"]
    a, b = (ubcv2.read(r, ("train",), categories="fine")["samples"] for r in (ubc_root, merged))
    assert [s["instances"] for s in a] == [s["instances"] for s in b]
    assert b[0]["img_path"] == b[0]["sar_path"] and "/merge/" in b[0]["img_path"]
    rgb_a, sar_a = ubcv2.load_pair(a[0]["img_path"], a[0]["sar_path"])
    rgb_b, sar_b = ubcv2.load_pair(b[0]["img_path"], b[0]["sar_path"])
    assert np.array_equal(rgb_a, rgb_b) and np.array_equal(sar_a, sar_b)
    three = merged / "UBCv2" / "images" / "val" / "merge" / Path(ubcv2.read(merged, ("val",))["samples"][0]["img_path"]).name
    import rasterio

    with rasterio.open(three) as src:
        arr = src.read()
    with rasterio.open(three, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=3,
                       dtype="float32") as dst:
        dst.write(arr[:3])
    with pytest.raises(DataLayoutError, match=r"3 band\(s\); a merge/ tif holds 4"):
        ubcv2.read(merged, ("val",))


def test_detector_splits_stacked_channels_into_the_modality_dict():
    from rsbench_detection.ubcv2_mm import ModalityFasterRCNN

    stacked = torch.arange(2 * 4 * 2 * 2, dtype=torch.float32).reshape(2, 4, 2, 2)
    splitter = ModalityFasterRCNN.__new__(ModalityFasterRCNN)
    splitter.split_spec = [("hr", 3), ("sar", 1)]
    out = splitter.split_modalities(stacked)
    assert torch.equal(out["hr"], stacked[:, :3]) and torch.equal(out["sar"], stacked[:, 3:])
    with pytest.raises(ValueError, match=r"expected 4 stacked channels"):
        splitter.split_modalities(stacked[:, :3])


def test_optical_only_backbone_gets_rgb_and_cascade_is_selectable(ubc_root, tmp_path):
    catalog = get_catalog()
    info = catalog.tasks.get("ubcv2")
    task = ubcv2.UBCv2Task(info, catalog.datasets.get("ubcv2"), modalities=("hr",))
    spec = RunSpec(backbone="resnet50-tiny", task="ubcv2", data_root=str(ubc_root), max_iters=2,
                   options=dict(SMALL, detector="cascade")).resolved_for(info)
    data = task.check_data(ubc_root, spec)
    cfg = task.build_config(spec, catalog.backbones.get("resnet50-tiny"), data, tmp_path)
    load = cfg["train_dataloader"]["dataset"]["pipeline"][0]
    assert load["modalities"] == ["hr"] and len(load["mean"]) == 3
    assert cfg["model"]["type"] == "RSBCascadeRCNN" and cfg["model"]["modalities"] == [["hr", 3]]
    assert [h["bbox_coder"]["target_stds"][0] for h in cfg["model"]["roi_head"]["bbox_head"]] == [0.1, 0.05, 0.033]
    with pytest.raises(SpecError, match=r"categories='coarse'"):
        task.check_data(ubc_root, RunSpec(backbone="resnet50-tiny", task="ubcv2", data_root=str(ubc_root),
                                          options=dict(categories="coarse")).resolved_for(info))


# -- the run ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mars_run(ubc_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ubcv2-run")
    spec = RunSpec(backbone="mars-tiny", task="ubcv2", data_root=str(ubc_root), max_iters=40, lr=2e-3,
                   batch_size=4, work_dir=str(tmp / "work"), options=dict(SMALL))
    return spec, run_evaluation(spec, results_dir=tmp / "results", show_progress=False)


def test_mars_rgb_sar_faster_rcnn_beats_chance_and_equals_pycocotools(mars_run):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    spec, outcome = mars_run
    assert outcome.status == "ok", outcome.row["error"]
    assert outcome.row["value"] > 15  # COCO mAP@[.5:.95]; random boxes score ~0
    assert "hr(3)+sar(1)" in outcome.row["adapter"] and "sar: mean=[0.2634]" in outcome.row["normalization"]
    work = Path(spec.work_dir)
    gt = COCO(str(work / "annotations/test_coco.json"))
    ev = COCOeval(gt, gt.loadRes(str(work / "predictions.bbox.json")), "bbox")
    ev.evaluate(), ev.accumulate(), ev.summarize()
    assert outcome.row["value"] == pytest.approx(100 * round(ev.stats[0], 3), abs=1e-6)  # mmdet rounds to 3
