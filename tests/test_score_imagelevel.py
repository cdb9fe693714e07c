"""``rsbench score`` on the image-level regression tasks: GUSO registration (a CSV of per-pair
transforms), GUSO translation (optical images named like the targets) and DFC23 track 2 (height
GeoTIFFs named like the labels). Perfect predictions score the metric's best value, bad ones
clearly worse, bad files are named, and a run's own written predictions score the run's value."""

from __future__ import annotations

import csv
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rsbench.errors import PredictionError
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.run.runner import run_evaluation
from rsbench.run.scoring import score_predictions
from rsbench.run.spec import RunSpec
from rsbench_crossmodal import dfc23, guso
from rsbench_crossmodal.height import holdout
from rsbench_crossmodal.registration import AFFINE_COLUMNS, H_COLUMNS, read_transforms, registration_rmse

pytestmark = pytest.mark.slow

#: The registration fixture is 64 px; a 48 px crop makes the scorer move transforms by 8 px.
CROP48 = {"img_size": "48", "search_px": "16"}


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("score_imagelevel")


@pytest.fixture(scope="module")
def guso_root(base) -> Path:
    return guso.write_fixture(base / "guso", counts=dict(train=8, val=2, test=6))


@pytest.fixture(scope="module")
def dfc_root(base) -> Path:
    return dfc23.write_fixture(base / "dfc23", counts=dict(train=10, val=2, test=2))


def score(base: Path, task: str, root: Path, preds: Path, name: str, **options) -> tuple[dict, dict]:
    """(leaderboard row, metrics.json) of scoring ``preds``."""
    work = base / "score" / name
    row, reused = score_predictions(task, root, preds, name, results_dir=base / "results", work_dir=work,
                                    options=options, force=True)
    assert not reused and row["status"] == "ok", row["error"]
    return row, json.loads((work / "metrics.json").read_text())


def smoke_run(base: Path, backbone: str, info, root: Path) -> tuple[dict, Path]:
    """A short run (30 iterations) with the task's smoke options; (row, work dir). Scoring a
    run's own predictions needs a trained model, not a good one."""
    work = base / "run" / info.name
    spec = RunSpec(backbone=backbone, task=info.name, data_root=str(root), work_dir=str(work),
                   max_iters=30, options=dict(info.smoke_options))
    row = run_evaluation(spec, results_dir=base / "results", show_progress=False).row
    assert row["status"] == "ok", row["error"]
    return row, work


def load_pickle(path: Path):
    with open(path, "rb") as f:
        return pickle.load(f)


def pair_ids(root: Path) -> list[str]:
    return sorted(p.name[: -len("_opt.png")] for p in (root / "test").glob("*_opt.png"))


def write_csv(path: Path, header: tuple[str, ...], rows: list[list]) -> Path:
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows(rows)
    return path


def truth(root: Path, key: str) -> np.ndarray:
    return np.loadtxt(root / "test" / f"{key}_H.txt")


# -- registration ---------------------------------------------------------------------------------
def test_registration_true_transforms_score_zero_and_identity_scores_worse(base, guso_root, tmp_path):
    ids = pair_ids(guso_root)
    full = write_csv(tmp_path / "h.csv", ("id", *H_COLUMNS), [[k, *truth(guso_root, k).ravel()] for k in ids])
    row, metrics = score(base, "guso-reg", guso_root, full, "reg-true", **CROP48)
    assert row["value"] == 0.0 and metrics["registration/success_rate"] == 100.0
    affine = write_csv(tmp_path / "a.csv", ("id", *AFFINE_COLUMNS),
                       [[k, *truth(guso_root, k)[:2].ravel()] for k in ids])
    assert score(base, "guso-reg", guso_root, affine, "reg-affine", **CROP48)[0]["value"] == 0.0
    # scoring rewrites the transforms it read (the run's writer): back in full-image pixels
    rewritten = read_transforms(base / "score" / "reg-affine" / "predictions" / "registration.csv")
    assert all(np.allclose(rewritten[k], truth(guso_root, k), atol=1e-4) for k in ids)
    ident = write_csv(tmp_path / "i.csv", ("id", *AFFINE_COLUMNS), [[k, 1, 0, 0, 0, 1, 0] for k in ids])
    row, metrics = score(base, "guso-reg", guso_root, ident, "reg-identity", **CROP48)
    assert row["value"] > 1.0 and metrics["registration/RMSE"] == pytest.approx(metrics["registration/RMSE_identity"])


def test_registration_missing_ids_are_counted(base, guso_root, tmp_path):
    ids = pair_ids(guso_root)
    path = write_csv(tmp_path / "h.csv", ("id", *H_COLUMNS), [[k, *truth(guso_root, k).ravel()] for k in ids[2:]])
    with pytest.raises(PredictionError, match=rf"missing prediction row for id '{ids[0]}' \(and 1 more of 6 samples\)"):
        score_predictions("guso-reg", guso_root, path, "reg-missing", results_dir=base / "results",
                          work_dir=base / "score" / "reg-missing", options=CROP48)


@pytest.mark.parametrize("text, message", [
    ("id,h00,h01\n0,1,0\n", r"1: header 'id,h00,h01'; expected a header 'id,h00,"),
    ("id,a00,a01,a02,a10,a11,a12\n0,1,0,0,0,1\n", r"2: 6 field\(s\); the header has 7"),
    ("id,a00,a01,a02,a10,a11,a12\n0,1,0,0,0,1,0\n\n0,1,0,0,0,1,0\n", r"4: id '0' again \(first on line 2\)"),
    ("id,a00,a01,a02,a10,a11,a12\n0,1,0,x,0,1,0\n", r"2: could not convert .*expected numbers"),
    ("id,a00,a01,a02,a10,a11,a12\n0,1,0,nan,0,1,0\n", r"2: non-finite value"),
    ("id,a00,a01,a02,a10,a11,a12\n,1,0,0,0,1,0\n", r"2: empty id"),
    ("", r"1: header ''"),
])
def test_malformed_registration_csv_names_file_and_line(base, guso_root, tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(PredictionError, match=rf"bad\.csv:{message}"):
        score_predictions("guso-reg", guso_root, path, "reg-bad", results_dir=base / "results",
                          work_dir=base / "score" / "reg-bad", options=CROP48)


def test_registration_run_writes_predictions_that_score_its_value(base, guso_root):
    """A short run in the smoke options writes registration.csv; scoring it gives
    the run's RMSE and success rate, recomputed from its dumped predictions to the last bit."""
    info = get_catalog().tasks.get("guso-reg")
    run, work = smoke_run(base, "resnet50-tiny", info, guso_root)
    preds = work / "predictions"
    assert sorted(r["id"] for r in csv.DictReader(open(preds / "registration.csv"))) == pair_ids(guso_root)
    row, metrics = score(base, "guso-reg", guso_root, preds, "reg-run", **info.smoke_options)
    assert row["value"] == run["value"]
    dumped = load_pickle(work / "predictions.pkl")
    written = read_transforms(preds / "registration.csv")
    for p in dumped:  # the CSV holds the model's float32 transforms exactly (capped pairs included)
        assert np.array_equal(written[p["id"]].astype(np.float32), p["pred_H"].numpy())
    pred = torch.stack([p["pred_H"] for p in dumped]).double()
    gt = torch.stack([p["gt_H"] for p in dumped]).double()
    rmse = registration_rmse(pred, gt, int(dumped[0]["size"]))
    assert metrics["registration/RMSE"] == float(rmse.clamp(max=5).mean())  # the very same numbers
    assert metrics["registration/success_rate"] == float(100 * (rmse < 3).double().mean())


# -- translation ----------------------------------------------------------------------------------
def test_translation_targets_score_perfectly_and_grey_images_do_not(base, guso_root, tmp_path):
    perfect, grey = tmp_path / "perfect", tmp_path / "grey"
    perfect.mkdir(), grey.mkdir()
    for key in pair_ids(guso_root):
        shutil.copy(guso_root / "test" / f"{key}_opt.png", perfect)
        Image.new("RGB", (64, 64), (128, 128, 128)).save(grey / f"{key}_opt.png")
    row, metrics = score(base, "guso-trans", guso_root, perfect, "trans-true", img_size="48")
    assert row["value"] == pytest.approx(120.0) and metrics["translation/SSIM"] == pytest.approx(1.0)
    # the writer pastes the scored 48 px centre into a zero image of the target's size
    key = pair_ids(guso_root)[0]
    written = np.asarray(Image.open(base / "score" / "trans-true" / "predictions" / f"{key}_opt.png"))
    target = np.asarray(Image.open(guso_root / "test" / f"{key}_opt.png"))
    assert written.shape == target.shape and np.array_equal(written[8:56, 8:56], target[8:56, 8:56])
    assert written[:8].max() == 0 and written[56:].max() == 0
    row, metrics = score(base, "guso-trans", guso_root, grey, "trans-grey", img_size="48")
    assert row["value"] < 20 and metrics["translation/SSIM"] < 0.5


def test_translation_missing_and_malformed_images_are_named(base, guso_root, tmp_path):
    ids = pair_ids(guso_root)
    folder = tmp_path / "p"
    folder.mkdir()
    for key in ids[2:]:
        shutil.copy(guso_root / "test" / f"{key}_opt.png", folder)
    kw = dict(results_dir=base / "results", work_dir=base / "score" / "trans-bad", options={"img_size": "48"})
    with pytest.raises(PredictionError, match=rf"missing prediction {ids[0]}_opt.png \(and 1 more of 6 samples\)"):
        score_predictions("guso-trans", guso_root, folder, "trans-missing", **kw)
    for key in ids[:2]:
        shutil.copy(guso_root / "test" / f"{key}_opt.png", folder)
    Image.new("RGB", (32, 32)).save(folder / f"{ids[1]}_opt.png")
    with pytest.raises(PredictionError, match=rf"{ids[1]}_opt.png: 32x32 px; the target is 64x64"):
        score_predictions("guso-trans", guso_root, folder, "trans-size", **kw)
    Image.new("L", (64, 64)).save(folder / f"{ids[1]}_opt.png")
    with pytest.raises(PredictionError, match=rf"{ids[1]}_opt.png: 1 band\(s\) of uint8; expected 8-bit RGB"):
        score_predictions("guso-trans", guso_root, folder, "trans-grey", **kw)


def test_translation_run_writes_images_that_score_its_value(base, guso_root):
    """A short run writes {id}_opt.png; scoring them gives the run's PSNR / SSIM up to the 8-bit
    rounding the image format implies (the run scores its unrounded output)."""
    info = get_catalog().tasks.get("guso-trans")
    run, work = smoke_run(base, "resnet50-tiny", info, guso_root)
    preds = work / "predictions"
    assert sorted(p.name for p in preds.glob("*.png")) == sorted(f"{k}_opt.png" for k in pair_ids(guso_root))
    row, metrics = score(base, "guso-trans", guso_root, preds, "trans-run", **info.smoke_options)
    assert row["value"] == pytest.approx(run["value"], abs=0.01)
    dumped = load_pickle(work / "predictions.pkl")
    assert metrics["translation/SSIM"] == pytest.approx(float(np.mean([p["ssim"] for p in dumped])), abs=1e-3)


# -- building height ------------------------------------------------------------------------------
def scored_tiles(root: Path) -> list[str]:
    """The tiles the default ``holdout`` split scores (20 % of train, seed 42), in its order."""
    return [r["id"] for r in holdout(dfc23.check(root)["samples"]["train"])[1]]


def test_height_labels_score_perfectly_and_zeros_do_not(base, dfc_root, tmp_path):
    perfect, flat = tmp_path / "perfect", tmp_path / "flat"
    perfect.mkdir(), flat.mkdir()
    for key in scored_tiles(dfc_root):
        shutil.copy(dfc_root / "train" / "height" / f"{key}.tif", perfect)
        dfc23.write_tif(flat / f"{key}.tif", np.zeros((1, 64, 64), np.float32))
    row, metrics = score(base, "dfc23-t2", dfc_root, perfect, "height-true", img_size="64")
    assert row["value"] == 0.0 and metrics["height/delta1"] == 100.0 and metrics["height/MAE"] == 0.0
    row, metrics = score(base, "dfc23-t2", dfc_root, flat, "height-flat", img_size="64")
    assert row["value"] > 3 and metrics["height/delta1"] == 0.0


def test_height_missing_and_malformed_maps_are_named(base, dfc_root, tmp_path):
    tiles = scored_tiles(dfc_root)
    assert len(tiles) == 2
    folder = tmp_path / "p"
    folder.mkdir()
    kw = dict(results_dir=base / "results", work_dir=base / "score" / "height-bad", options={"img_size": "64"})
    with pytest.raises(PredictionError, match=rf"missing prediction {tiles[0]}.tif \(and 1 more of 2 samples\)"):
        score_predictions("dfc23-t2", dfc_root, folder, "height-missing", **kw)
    dfc23.write_tif(folder / f"{tiles[0]}.tif", np.zeros((1, 64, 64), np.float32))
    dfc23.write_tif(folder / f"{tiles[1]}.tif", np.zeros((1, 32, 64), np.float32))
    with pytest.raises(PredictionError, match=rf"{tiles[1]}.tif: 32x64 px; the height label is 64x64"):
        score_predictions("dfc23-t2", dfc_root, folder, "height-size", **kw)
    dfc23.write_tif(folder / f"{tiles[1]}.tif", np.zeros((3, 64, 64), np.float32))
    with pytest.raises(PredictionError, match=rf"{tiles[1]}.tif: 3 bands; expected one band of heights"):
        score_predictions("dfc23-t2", dfc_root, folder, "height-bands", **kw)
    (folder / f"{tiles[1]}.tif").write_text("not a tiff")
    with pytest.raises(PredictionError, match=rf"{tiles[1]}.tif: unreadable"):
        score_predictions("dfc23-t2", dfc_root, folder, "height-junk", **kw)


def test_height_run_writes_maps_that_score_its_value(base, dfc_root):
    """mars-tiny (optical + SAR) smoke run: its written GeoTIFFs score exactly the run's metrics,
    which equal the definitions recomputed from its dumped height maps."""
    info = get_catalog().tasks.get("dfc23-t2")
    run, work = smoke_run(base, "mars-tiny", info, dfc_root)
    preds = work / "predictions"
    assert sorted(p.stem for p in preds.glob("*.tif")) == sorted(scored_tiles(dfc_root))
    row, metrics = score(base, "dfc23-t2", dfc_root, preds, "height-run", **info.smoke_options)
    assert row["value"] == run["value"]
    dumped = load_pickle(work / "predictions.pkl")
    gt = {k: dfc23.read_tif(dfc_root / "train" / "height" / f"{k}.tif")[0] for k in scored_tiles(dfc_root)}
    err = np.concatenate([(p["pred"].astype(np.float64) - gt[p["id"]]).ravel() for p in dumped])
    assert metrics["height/RMSE"] == pytest.approx(float(np.sqrt(np.mean(err ** 2))), rel=1e-12)
    assert metrics["height/MAE"] == pytest.approx(float(np.mean(np.abs(err))), rel=1e-12)
