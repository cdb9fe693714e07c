"""``rsbench score`` on the change tasks: label-named change maps (0/255 or class ids; per-month
class maps for dyna-s2-cd) through each task's own test evaluator. Perfect maps score the
maximum, random ones the chance value computed from the ground truth, errors name the file,
and what a run (or a scoring pass) writes to ``predictions/`` scores the same value again."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rsbench.errors import PredictionError
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.run.runner import run_evaluation
from rsbench.run.scoring import score_predictions
from rsbench.run.spec import RunSpec
from rsbench_change.io import read_raster
from rsbench_change.predictions import prediction_stem
from rsbench_segmentation import dynamicearthnet as den

BINARY = ("levir-cd", "whu-cd", "oscd")
TASKS = BINARY + ("dfc25-t2", "dyna-s2-cd")


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("score_change")


@pytest.fixture(scope="module")
def roots(base) -> dict[str, Path]:
    catalog = get_catalog()
    return {t: catalog.datasets.get(catalog.tasks.get(t).dataset).write_fixture(base / "data" / t, seed=0)
            for t in TASKS}


@pytest.fixture(scope="module")
def tests(roots) -> dict[str, list[dict]]:
    """Each task's scored samples, as its own ``check_data`` lists them."""
    catalog = get_catalog()
    out = {}
    for t, root in roots.items():
        info = catalog.tasks.get(t)
        task = info.load_task_class()(info, catalog.datasets.get(info.dataset), list(info.modalities))
        out[t] = list(task.check_data(root, RunSpec(backbone="external:x", task=t, data_root=str(root)).resolved_for(info)).test)
    return out


def score(base: Path, task: str, root: Path, preds: Path, name: str = "m") -> dict:
    row, _ = score_predictions(task, root, preds, name, results_dir=base / "results",
                               work_dir=base / "work" / f"{task}-{preds.name}", force=True)
    assert row["status"] == "ok"
    return row


def dyna_gt(pair: dict) -> tuple[np.ndarray, np.ndarray]:
    return tuple(den.decode_label(den.read_raster(p, den.LABEL_BANDS), p).astype(np.int64)
                 for p in (pair["prev_label"], pair["label"]))


def save(folder: Path, maps: dict[str, np.ndarray]) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, arr in maps.items():
        Image.fromarray(arr.astype(np.uint8)).save(folder / name)
    return folder


def truth(task: str, samples: list[dict]) -> dict[str, np.ndarray]:
    """Perfect predictions in the submission format. DynamicEarthNet's ignored pixels (255)
    become classes that reproduce the ground truth's change exactly (255 counts as a value)."""
    if task == "dyna-s2-cd":
        maps = {}
        for pair in samples:
            g0, g1 = dyna_gt(pair)
            maps[f"{Path(pair['prev_label']).stem}.png"] = np.where(g0 == 255, np.where(g1 == 255, 0, (g1 + 1) % 6), g0)
            maps[f"{Path(pair['label']).stem}.png"] = np.where(g1 == 255, np.where(g0 == 255, 0, (g0 + 1) % 6), g1)
        return maps
    return {f"{prediction_stem(task, s['id'])}.png": read_raster(s["label"])[..., 0] for s in samples}


def chance(task: str, samples: list[dict]) -> float:
    """The expected headline value of uniformly random maps, from the ground truth alone."""
    if task == "dyna-s2-cd":
        g0, g1 = (np.concatenate([dyna_gt(p)[k].ravel() for p in samples]) for k in (0, 1))
        changed = g0 != g1
        g = changed.mean()
        bc = 5 * g / (5 + g)  # predicted change with p = 5/6
        n = np.bincount(g1[changed & (g1 != 255)], minlength=6)
        sc = np.mean([c / (n.sum() + 5 * c) for c in n if c])  # month t+1 class uniform over 6
        return 50 * (bc + sc)
    gt = np.concatenate([read_raster(s["label"])[..., 0].ravel() for s in samples])
    if task == "dfc25-t2":
        q = np.bincount(gt, minlength=4) / gt.size
        return 100 * np.mean(q / (1 + 3 * q))  # IoU of class c: q/4 / (q/4 + (1-q)/4 + 3q/4)
    p = (gt == 255).mean()
    return 100 * (p / (1 + p) if task == "whu-cd" else 2 * p / (1 + 2 * p))  # IoU / F1 of change


def random_maps(task: str, samples: list[dict], rng: np.random.Generator) -> dict[str, np.ndarray]:
    classes = {"dfc25-t2": 4, "dyna-s2-cd": 6}.get(task, 2)
    return {name: rng.integers(0, classes, arr.shape) for name, arr in truth(task, samples).items()}


@pytest.mark.parametrize("task", TASKS)
def test_perfect_maps_score_the_maximum_and_random_maps_chance(base, roots, tests, task):
    perfect = score(base, task, roots[task], save(base / "p" / task / "perfect", truth(task, tests[task])))
    assert perfect["value"] == 100.0 and perfect["backbone"] == "external:m" and perfect["protocol"] == "external"
    rnd = score(base, task, roots[task], save(base / "p" / task / "random",
                                              random_maps(task, tests[task], np.random.default_rng(1))))
    assert rnd["value"] == pytest.approx(chance(task, tests[task]), abs=2)


@pytest.mark.parametrize("task", BINARY)
def test_binary_maps_of_class_ids_and_geotiffs_are_read_too(base, roots, tests, task):
    maps = {n: (a > 0).astype(np.uint8) for n, a in truth(task, tests[task]).items()}
    folder = save(base / "p" / task / "ids", maps)
    first = sorted(folder.iterdir())[0]
    import rasterio

    with rasterio.open(first.with_suffix(".tif"), "w", driver="GTiff", height=maps[first.name].shape[0],
                       width=maps[first.name].shape[1], count=1, dtype="uint8") as dst:
        dst.write(maps[first.name], 1)
    first.unlink()
    assert score(base, task, roots[task], folder)["value"] == 100.0


@pytest.mark.parametrize("task", TASKS)
def test_what_a_scoring_pass_writes_scores_the_same_value(base, roots, tests, task):
    """The evaluator a run uses writes ``predictions/``; reading that folder back reproduces the
    value (dyna-s2-cd: the per-pair maps, then the per-month maps alone)."""
    first = score(base, task, roots[task], save(base / "p" / task / "again",
                                                 random_maps(task, tests[task], np.random.default_rng(2))))
    written = Path(first["work_dir"]) / "predictions"
    copy = base / "p" / task / "written"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(written, copy)
    assert score(base, task, roots[task], copy)["value"] == first["value"]
    if task == "dyna-s2-cd":
        for f in copy.glob("*_t*.png"):
            f.unlink()
        assert score(base, task, roots[task], copy)["value"] == first["value"]
    if task == "levir-cd":
        assert {int(v) for f in copy.iterdir() for v in np.unique(np.array(Image.open(f)))} <= {0, 255}


def test_missing_maps_are_counted_and_the_first_is_named(base, roots, tests):
    folder = save(base / "p" / "missing", truth("levir-cd", tests["levir-cd"]))
    for name in ("test_2.png", "test_4.png"):
        (folder / name).unlink()
    with pytest.raises(PredictionError, match=r"missing prediction test_2\.png \(and 1 more of 4 samples\)"):
        score(base, "levir-cd", roots["levir-cd"], folder)
    maps = truth("dyna-s2-cd", tests["dyna-s2-cd"])
    last = sorted(maps)[-1]
    folder = save(base / "p" / "dyna-missing", {k: v for k, v in maps.items() if k != last})
    with pytest.raises(PredictionError, match=rf"missing prediction {last}$"):
        score(base, "dyna-s2-cd", roots["dyna-s2-cd"], folder)


@pytest.mark.parametrize("task, value, message", [
    ("levir-cd", 7, r"test_1\.png: values \[7\].*expected the label values 0, 255 or class ids 0\.\.1"),
    ("dfc25-t2", 4, r"building_damage\.png: values \[4\].*expected class ids 0\.\.3"),
    ("dyna-s2-cd", 6, r"-2018_03_01\.png: class ids \[6\] outside 0\.\.5"),
])
def test_values_outside_the_classes_name_the_file(base, roots, tests, task, value, message):
    maps = truth(task, tests[task])
    first = sorted(maps)[0]
    maps[first] = maps[first].copy()
    maps[first][0, 0] = value
    with pytest.raises(PredictionError, match=message):
        score(base, task, roots[task], save(base / "p" / "bad" / task, maps))


def test_mixed_encodings_wrong_sizes_and_colour_images_name_the_file(base, roots, tests):
    maps = truth("levir-cd", tests["levir-cd"])
    mixed = dict(maps, **{"test_1.png": np.where(maps["test_1.png"] > 0, 255, 1)})
    mixed["test_1.png"][0, :2] = 0
    with pytest.raises(PredictionError, match=r"test_1\.png: values \[0, 1, 255\] mix the label values and class ids"):
        score(base, "levir-cd", roots["levir-cd"], save(base / "p" / "mixed", mixed))
    small = dict(maps, **{"test_3.png": maps["test_3.png"][:32, :48]})
    with pytest.raises(PredictionError, match=r"test_3\.png: size \(32, 48\); the label is \(64, 64\)"):
        score(base, "levir-cd", roots["levir-cd"], save(base / "p" / "small", small))
    folder = save(base / "p" / "rgb", maps)
    Image.fromarray(np.stack([maps["test_2.png"]] * 3, -1).astype(np.uint8)).save(folder / "test_2.png")
    with pytest.raises(PredictionError, match=r"test_2\.png: shape \(64, 64, 3\); expected a single-band image"):
        score(base, "levir-cd", roots["levir-cd"], folder)
    (base / "p" / "a-file.png").write_bytes(b"")
    with pytest.raises(PredictionError, match="expected a folder of change maps"):
        score(base, "levir-cd", roots["levir-cd"], base / "p" / "a-file.png")


def test_the_submission_split_has_nothing_to_score(base, roots, tests):
    folder = save(base / "p" / "dfc", truth("dfc25-t2", tests["dfc25-t2"]))
    with pytest.raises(PredictionError, match="--split submission has no targets"):
        score_predictions("dfc25-t2", roots["dfc25-t2"], folder, "m", split="submission",
                          results_dir=base / "results", work_dir=base / "work" / "submission", force=True)


@pytest.mark.slow
def test_a_runs_predictions_folder_scores_the_runs_value(base, roots):
    info = get_catalog().tasks.get("levir-cd")
    work = base / "run"
    spec = RunSpec(backbone="resnet50-tiny", task="levir-cd", data_root=str(roots["levir-cd"]), work_dir=str(work),
                   max_iters=info.smoke_iters, batch_size=info.smoke_options["batch_size"],
                   lr=info.smoke_options["lr"],
                   options=dict(crop_size=info.smoke_options["crop_size"], fusion="abs_diff"))
    outcome = run_evaluation(spec, results_dir=base / "results", show_progress=False)
    assert outcome.status == "ok", outcome.row["error"]
    assert outcome.row["value"] > 50  # chance (random maps) is about 28
    assert sorted(p.name for p in (work / "predictions").iterdir()) == [f"test_{i}.png" for i in (1, 2, 3, 4)]
    scored = score(base, "levir-cd", roots["levir-cd"], work / "predictions")
    assert scored["value"] == outcome.row["value"]
