"""Image-level family: readers, fixtures and bad-input errors (no training)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from rsbench.errors import DataLayoutError
from rsbench_classification import ben_mm, ben_s2, fmow_s2, resisc45
from rsbench_classification.bands_task import sample_fraction
from rsbench_classification.metrics import multilabel_ap
from rsbench_crossmodal import guso
from rsbench_crossmodal.registration import crop_h, fit_affine, map_points, registration_rmse
from rsbench_crossmodal.translation import psnr, ssim


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("imagelevel_data")
    return dict(resisc45=resisc45.write_fixture(base / "resisc45"), ben=ben_mm.write_fixture(base / "ben"),
                fmow=fmow_s2.write_fixture(base / "fmow"))


def test_resisc45_fixture_layout_and_check(roots):
    root = roots["resisc45"] / "NWPU-RESISC45"
    assert sorted(p.name for p in root.iterdir()) == sorted(resisc45.CLASSES) and len(resisc45.CLASSES) == 45
    assert (root / "sea_ice" / "sea_ice_007.jpg").is_file()
    summary = resisc45.check(roots["resisc45"])
    assert len(summary["samples"]) == 45 * 10 and summary["image_size"] == (64, 64)
    shutil.rmtree(root / "wetland")
    with pytest.raises(DataLayoutError, match=r"missing class folder\(s\) wetland"):
        resisc45.check(roots["resisc45"])


def test_ben_fixture_is_the_official_layout(roots):
    root = roots["ben"]
    summary = ben_mm.check(root)
    first = summary["samples"]["train"][0]
    folder = root / ben_s2.S2_FOLDER / first["s2"]
    assert sorted(p.name.rsplit("_", 1)[1] for p in folder.glob("*.tif")) == sorted(f"{b}.tif" for b in ben_s2.S2_FILES)
    import rasterio

    sizes = {b: rasterio.open(folder / f"{first['s2']}_{b}.tif").shape for b in ("B02", "B05", "B01")}
    assert sizes == {"B02": (24, 24), "B05": (12, 12), "B01": (4, 4)} and summary["size"] == 24
    assert (root / ben_s2.S1_FOLDER / first["s1"] / f"{first['s1']}_VH.tif").is_file()
    assert {len(v) for v in summary["samples"].values()} == {57, 19, 38}
    test_labels = {y for s in summary["samples"]["test"] for y in s["gt_label"]}
    assert test_labels == set(range(19))  # every class has a defined AP in the fixture's test split


def test_ben_43_to_19_mapping_drops_and_merges(tmp_path):
    path = tmp_path / "p_labels_metadata.json"
    path.write_text(json.dumps({"labels": ["Continuous urban fabric", "Discontinuous urban fabric", "Airports",
                                           "Sea and ocean"]}))
    assert ben_s2.labels_19(path) == [0, 18]
    assert len(ben_s2.CLASSES_43) == 43 and len(ben_s2.CLASSES) == 19
    assert sorted(set(ben_s2.LABEL_43_TO_19.values())) == list(range(19))


@pytest.mark.parametrize("content, message", [
    ({"coordinates": {}}, r"no 'labels' list"),
    ({"labels": ["Urban fabric"]}, r"label 'Urban fabric' is not one of the 43 CLC classes"),
])
def test_ben_bad_json_names_the_file(tmp_path, content, message):
    path = tmp_path / "x_labels_metadata.json"
    path.write_text(json.dumps(content))
    with pytest.raises(DataLayoutError, match=rf"x_labels_metadata.json: {message}"):
        ben_s2.labels_19(path)


def test_ben_missing_band_split_or_s1_file_is_named(roots, tmp_path):
    root = tmp_path / "ben"
    shutil.copytree(roots["ben"], root)
    patch = ben_s2.read_split(root, "val")[3]
    (root / ben_s2.S1_FOLDER / patch[1] / f"{patch[1]}_VV.tif").unlink()
    ben_s2.check(root)  # the S2 task does not need S1
    with pytest.raises(DataLayoutError, match=rf"{patch[1]}_VV.tif: S1 band file missing"):
        ben_mm.check(root)
    (root / ben_s2.S2_FOLDER / patch[0] / f"{patch[0]}_B8A.tif").unlink()
    with pytest.raises(DataLayoutError, match=rf"{patch[0]}_B8A.tif: band file missing"):
        ben_s2.check(root)
    (root / "test.csv").unlink()
    with pytest.raises(DataLayoutError, match=r"test.csv: split file missing"):
        ben_s2.check(root)
    with pytest.raises(DataLayoutError, match=r"no BigEarthNet-v1.0/ folder"):
        ben_s2.check(tmp_path)


def test_ben_band_of_wrong_size_is_named(roots, tmp_path):
    root = tmp_path / "ben"
    shutil.copytree(roots["ben"], root)
    s2 = ben_s2.read_split(root, "train")[0][0]
    folder = root / ben_s2.S2_FOLDER / s2
    shutil.copy(folder / f"{s2}_B02.tif", folder / f"{s2}_B11.tif")
    with pytest.raises(DataLayoutError, match=rf"{s2}_B11.tif: 24x24 px; expected 12 px"):
        ben_s2.check(root)


def test_fmow_fixture_layout_check_and_errors(roots, tmp_path):
    summary = fmow_s2.check(roots["fmow"])
    assert {k: len(v) for k, v in summary["samples"].items()} == {"train": 186, "val": 62, "test": 62}
    assert summary["samples"]["val"][5] == dict(path="val/archaeological_site/archaeological_site_50/"
                                                     "archaeological_site_50_0.tif", gt_label=[5])
    assert fmow_s2.band_ref(summary["samples"]["val"][0], "s2", "B8A") == (summary["samples"]["val"][0]["path"], 9)
    root = tmp_path / "fmow"
    shutil.copytree(roots["fmow"], root)
    csv = root / fmow_s2.FOLDER / "val.csv"
    csv.write_text(csv.read_text().replace("airport,0,0", "spaceport,0,0", 1))
    with pytest.raises(DataLayoutError, match=r"val.csv:2: category 'spaceport' is not one of the 62"):
        fmow_s2.check(root)
    csv.write_text(csv.read_text().replace("spaceport,0,0", "airport,0,0", 1))
    (root / fmow_s2.FOLDER / "test" / "zoo" / "zoo_610" / "zoo_610_0.tif").unlink()
    with pytest.raises(DataLayoutError, match=r"zoo_610_0.tif: image listed in the split CSV is missing"):
        fmow_s2.check(root)


def test_label_fraction_is_per_class_seeded_and_keeps_every_class():
    samples = [dict(id=i, gt_label=[i % 5] + ([5] if i % 3 == 0 else [])) for i in range(100)]
    kept = sample_fraction(samples, 0.1, seed=0)
    assert 8 <= len(kept) <= 12
    assert {y for s in kept for y in s["gt_label"]} >= set(range(5))
    assert sample_fraction(samples, 0.1, seed=0) == kept and sample_fraction(samples, 0.1, seed=1) != kept
    assert sample_fraction(samples, 1.0, seed=0) == samples
    with pytest.raises(DataLayoutError, match="label_fraction 0"):
        sample_fraction(samples, 0, seed=0)


def test_multilabel_ap_matches_definitions():
    """Macro and micro AP against hand-computed values (sklearn is not installed)."""
    pred = torch.tensor([[0.9, 0.2], [0.8, 0.7], [0.1, 0.6]])
    target = torch.tensor([[1, 0], [0, 1], [1, 0]])
    # class 0: ranks 0.9(+) 0.8(-) 0.1(+) -> AP = (1/1 + 2/3) / 2; class 1: 0.7(+) 0.6(-) 0.2(-) -> 1
    ap0 = (1 + 2 / 3) / 2
    # pooled: 0.9+ 0.8- 0.7+ 0.6- 0.2- 0.1+ -> (1/1 + 2/3 + 3/6) / 3
    micro = (1 + 2 / 3 + 3 / 6) / 3
    out = multilabel_ap(pred, target)
    assert out["mAP_macro"] == pytest.approx(100 * (ap0 + 1) / 2)
    assert out["mAP_micro"] == pytest.approx(100 * micro)
    # a class with no positive has no AP and is left out of the macro mean
    out = multilabel_ap(torch.cat([pred, torch.rand(3, 1)], 1), torch.cat([target, torch.zeros(3, 1, dtype=torch.long)], 1))
    assert out["mAP_macro"] == pytest.approx(100 * (ap0 + 1) / 2)


def test_psnr_and_ssim_follow_their_definitions():
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    assert torch.allclose(ssim(x, x), torch.ones(2, dtype=torch.float64))
    y = (x + 0.1).clamp(0, 1)
    mse = (x - y).pow(2).flatten(1).mean(1)
    assert torch.allclose(psnr(x, y), 10 * torch.log10(1 / mse))
    # a constant shift d of a constant image: SSIM = (2 m (m + d) + C1) / (m^2 + (m + d)^2 + C1)
    m, d, c1 = 0.4, 0.2, 0.01 ** 2
    a = torch.full((1, 1, 16, 16), m, dtype=torch.float64)
    assert float(ssim(a, a + d)) == pytest.approx((2 * m * (m + d) + c1) / (m * m + (m + d) ** 2 + c1))
    assert float(ssim(x, torch.rand_like(x)).mean()) < 0.1


def test_guso_fixture_plants_exact_transforms(tmp_path):
    root = guso.write_fixture(tmp_path, counts=dict(train=2, val=1, test=1))
    summary = guso.check(root)
    h = torch.tensor(summary["samples"]["test"][0]["H"], dtype=torch.float64)[None]
    assert float(registration_rmse(h, h, 64)) == 0.0
    shift = torch.eye(3, dtype=torch.float64)[None].clone()
    shift[0, 0, 2] = 3.0
    assert float(registration_rmse(shift @ h, h, 64)) == pytest.approx(3.0)  # a 3 px shift everywhere
    # the fitted affine recovers a planted one from exact correspondences
    pts = torch.rand(1, 50, 2, dtype=torch.float64) * 64
    fit = fit_affine(pts.float(), map_points(h, pts).float(), torch.ones(1, 50), ridge=0.0)
    assert torch.allclose(fit.double(), h, atol=1e-3)
    # cropping keeps H consistent: a point and its image move by the same offset
    p = torch.tensor([[10.0, 20.0]], dtype=torch.float64)
    hc = torch.tensor(crop_h(h[0].numpy(), 5), dtype=torch.float64)[None]
    assert torch.allclose(map_points(hc, p - 5), map_points(h, p) - 5)


def test_translation_reads_the_sar_resampled_into_the_optical_frame(tmp_path):
    """With ``align``, a pair's SAR is moved into the optical frame by its H: it then lines up
    with the scene's backscatter, which the raw, warped SAR does not."""
    from PIL import Image

    from rsbench_crossmodal.registration import LoadPair

    rng = np.random.default_rng(3)
    _, backscatter = guso.scene(64, rng)
    h = guso.random_affine(64, rng, max_angle=10, max_shift=4)
    sar = guso.sar_from(backscatter, h, rng)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "0_opt.png")
    Image.fromarray((sar * 255).astype(np.uint8)).save(tmp_path / "0_sar.png")
    row = dict(data_root=str(tmp_path), opt="0_opt.png", sar="0_sar.png", id="0", H=h.tolist())
    aligned = LoadPair(64, align=True).transform(dict(row))
    raw = LoadPair(64).transform(dict(row))
    assert "H" not in aligned["data_samples"] and "H" in raw["data_samples"]
    inside = aligned["inputs"]["sar"][0].numpy() > 0

    def corr(image):
        return np.corrcoef(image[inside], np.log(backscatter[inside]))[0, 1]
    assert corr(aligned["inputs"]["sar"][0].numpy()) > corr(raw["inputs"]["sar"][0].numpy()) + 0.3  # 0.60 vs 0.17


def test_guso_missing_h_and_bad_h_are_named(tmp_path):
    root = guso.write_fixture(tmp_path, counts=dict(train=1, val=1, test=1))
    (root / "val" / "1_H.txt").write_text("1 0\n0 1\n")
    with pytest.raises(DataLayoutError, match=r"1_H.txt: expected an invertible 3x3 homography"):
        guso.check(root)
    (root / "val" / "1_H.txt").unlink()
    with pytest.raises(DataLayoutError, match=r"1_H.txt: ground-truth homography missing"):
        guso.check(root)
    assert "H" not in guso.check_translation(root)["samples"]["val"][0]  # translation reads H only if there
    (root / "test" / "2_sar.png").unlink()
    with pytest.raises(DataLayoutError, match=r"2_sar.png: image missing"):
        guso.check_translation(root)
