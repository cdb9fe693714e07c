"""BigEarthNet v2 (reBEN) next to v1: layout detection, metadata.parquet checks with errors
naming the file, and ben-s2 / ben-mm runs on a reBEN fixture that record the release."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rsbench.errors import DataLayoutError
from rsbench_classification import ben_mm, ben_s2, reben


@pytest.fixture(scope="module")
def v2(tmp_path_factory) -> Path:
    return ben_mm.write_fixture(tmp_path_factory.mktemp("reben") / "reben", layout="v2")


@pytest.fixture(scope="module")
def v1(tmp_path_factory) -> Path:
    return ben_s2.write_fixture(tmp_path_factory.mktemp("ben_v1") / "ben")


def mini_root(v2: Path, out: Path, rows: pd.DataFrame) -> Path:
    """A reBEN root holding only ``rows`` (their patch folders copied, the parquet rewritten)."""
    for patch, s1 in zip(rows["patch_id"], rows["s1_name"]):
        for folder in (reben.s2_folder(patch), reben.s1_folder(s1)):
            if (v2 / folder).is_dir():
                shutil.copytree(v2 / folder, out / folder)
    rows.to_parquet(out / reben.METADATA, index=False)
    return out


def one_per_split(v2: Path) -> pd.DataFrame:
    frame = pd.read_parquet(v2 / reben.METADATA)
    return frame.groupby("split", sort=False).head(1).reset_index(drop=True)


def test_v2_fixture_is_the_reben_layout(v2):
    import rasterio

    frame = pd.read_parquet(v2 / reben.METADATA)
    assert list(frame.columns) == ["patch_id", "labels", "split", "country", "s1_name", "s2v1_name",
                                   "contains_seasonal_snow", "contains_cloud_or_shadow"]
    assert frame["split"].value_counts().to_dict() == {"train": 57, "test": 38, "validation": 19}
    patch, s1 = frame["patch_id"][1], frame["s1_name"][1]
    assert patch == "S2B_MSIL2A_20170615T102019_N9999_R122_T32TNS_0_1"
    folder = v2 / "BigEarthNet-S2" / "S2B_MSIL2A_20170615T102019_N9999_R122_T32TNS" / patch
    sizes = {b: rasterio.open(folder / f"{patch}_{b}.tif").shape for b in ("B02", "B05", "B01")}
    assert sizes == {"B02": (24, 24), "B05": (12, 12), "B01": (4, 4)}
    assert len(list(folder.glob("*.tif"))) == 12
    assert (v2 / "BigEarthNet-S1" / "S1A_IW_GRDH_1SDV_20170615T170156" / s1 / f"{s1}_VH.tif").is_file()
    assert set(np.concatenate(frame["labels"].to_numpy())) <= set(ben_s2.CLASSES)


def test_v2_check_uses_official_splits_and_records_the_release(v2):
    summary = ben_mm.check(v2)
    assert {k: len(v) for k, v in summary["samples"].items()} == {"train": 57, "val": 19, "test": 38}
    assert summary["row_fields"]["ben_version"] == "v2" and summary["size"] == 24
    assert summary["row_fields"]["ben_flagged_dropped"] == 0
    assert {y for s in summary["samples"]["test"] for y in s["gt_label"]} == set(range(19))
    frame = pd.read_parquet(v2 / reben.METADATA)
    first = summary["samples"]["val"][0]
    row = frame[frame["patch_id"] == first["s2"]].iloc[0]
    assert row["split"] == "validation" and first["s1"] == row["s1_name"]
    assert [ben_s2.CLASSES[k] for k in first["gt_label"]] == sorted(row["labels"], key=ben_s2.CLASSES.index)
    for modality, band in (("s2", "B8A"), ("s2", "B1"), ("s1", "VV")):
        path, index = reben.band_ref(first, modality, band)
        assert (v2 / path).is_file() and index == 1
    assert reben.band_ref(first, "s2", "B8A")[0].endswith(f"/{first['s2']}/{first['s2']}_B8A.tif")


def test_v1_is_still_read_and_recorded(v1):
    summary = ben_s2.check(v1)
    assert summary["row_fields"]["ben_version"] == "v1"
    assert summary["band_ref"] == "rsbench_classification.ben_s2:band_ref"
    assert {k: len(v) for k, v in summary["samples"].items()} == {"train": 57, "val": 19, "test": 38}


def test_neither_or_both_layouts_are_named(v1, tmp_path):
    with pytest.raises(DataLayoutError, match=r"neither BigEarthNet layout — no BigEarthNet-v1.0/ folder .* "
                                              r"and no metadata.parquet"):
        ben_s2.check(tmp_path)
    (tmp_path / "BigEarthNet-S2").mkdir()
    with pytest.raises(DataLayoutError, match=rf"{tmp_path / 'metadata.parquet'}: missing"):
        ben_s2.check(tmp_path)
    both = tmp_path / "both"
    (both / "BigEarthNet-v1.0").mkdir(parents=True)
    (both / "metadata.parquet").write_bytes(b"")
    with pytest.raises(DataLayoutError, match=r"holds both BigEarthNet v1 .* and v2"):
        ben_mm.check(both)


def test_damaged_parquet_and_missing_column_name_the_file(v2, tmp_path):
    root = mini_root(v2, tmp_path / "r", one_per_split(v2))
    (root / "metadata.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(DataLayoutError, match=r"metadata.parquet: not a readable parquet file"):
        ben_s2.check(root)
    one_per_split(v2).drop(columns=["split"]).to_parquet(root / "metadata.parquet")
    with pytest.raises(DataLayoutError, match=r"metadata.parquet: no column\(s\) split; has patch_id, labels"):
        ben_s2.check(root)
    one_per_split(v2).drop(columns=["s1_name"]).to_parquet(root / "metadata.parquet")
    assert ben_s2.check(root)["row_fields"]["ben_version"] == "v2"  # S2 alone needs no S1 pairing
    with pytest.raises(DataLayoutError, match=r"no column\(s\) s1_name"):
        ben_mm.check(root)


@pytest.mark.parametrize("column, value, message", [
    ("labels", ["Arable land", "Sea and ocean"], r"patch S2\w+: label 'Sea and ocean' is not one of the 19"),
    ("split", "holdout", r"metadata.parquet: split value\(s\) holdout; expected train, validation, test"),
    ("patch_id", "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_9_9",
     r"T33UUP/S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_9_9: S2 patch folder of .* is missing"),
])
def test_bad_row_is_named(v2, tmp_path, column, value, message):
    rows = one_per_split(v2)
    root = mini_root(v2, tmp_path / "r", rows)
    rows.at[2, column] = value
    rows.to_parquet(root / "metadata.parquet", index=False)
    with pytest.raises(DataLayoutError, match=message):
        ben_s2.check(root)


def test_flagged_rows_are_dropped_and_counted(v2, tmp_path):
    rows = pd.concat([one_per_split(v2), pd.read_parquet(v2 / reben.METADATA).iloc[[3, 4]]], ignore_index=True)
    root = mini_root(v2, tmp_path / "r", rows)
    rows.loc[3, "contains_seasonal_snow"] = True
    rows.loc[4, "contains_cloud_or_shadow"] = True
    rows.to_parquet(root / "metadata.parquet", index=False)
    summary = ben_s2.check(root)
    assert summary["row_fields"]["ben_flagged_dropped"] == 2
    assert sum(len(v) for v in summary["samples"].values()) == 3
    rows.loc[0, "contains_seasonal_snow"] = True  # the only train row
    rows.to_parquet(root / "metadata.parquet", index=False)
    with pytest.raises(DataLayoutError, match=r"no usable patch in split\(s\) train \(3 snow/cloud-flagged"):
        ben_s2.check(root)


def test_band_and_s1_files_are_checked(v2, tmp_path):
    rows = one_per_split(v2)
    root = mini_root(v2, tmp_path / "r", rows)
    patch, s1 = rows["patch_id"][1], rows["s1_name"][1]
    folder = root / reben.s2_folder(patch)
    shutil.copy(folder / f"{patch}_B02.tif", folder / f"{patch}_B01.tif")  # on the 10 m grid: accepted
    assert ben_mm.check(root)["size"] == 24
    shutil.copy(folder / f"{patch}_B05.tif", folder / f"{patch}_B01.tif")
    with pytest.raises(DataLayoutError, match=rf"{patch}_B01.tif: 12x12 px; expected 4 px .* or 24 px"):
        ben_s2.check(root)
    (folder / f"{patch}_B01.tif").unlink()
    with pytest.raises(DataLayoutError, match=rf"{patch}_B01.tif: band file missing"):
        ben_s2.check(root)
    shutil.copy(v2 / reben.s2_folder(patch) / f"{patch}_B01.tif", folder)
    (root / reben.s1_folder(s1) / f"{s1}_VV.tif").unlink()
    ben_s2.check(root)  # the S2 task does not read S1
    with pytest.raises(DataLayoutError, match=rf"{s1}_VV.tif: S1 band file missing"):
        ben_mm.check(root)


def test_fixture_layout_option(tmp_path):
    with pytest.raises(DataLayoutError, match=r"fixture layout 'v3': expected one of v1, v2"):
        ben_s2.write_fixture(tmp_path, layout="v3")


# -- runs --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def one_thread(one_torch_thread):
    """One intra-op thread for the runs (see conftest)."""


def run(base: Path, task: str, root: Path, **kw) -> tuple[dict, Path]:
    from rsbench.run.runner import run_evaluation
    from rsbench.run.spec import RunSpec

    work = base / "work" / task
    spec = RunSpec(backbone="skysense-tiny", task=task, data_root=str(root), work_dir=str(work), max_iters=40,
                   batch_size=16, lr=1e-3, **kw)
    return run_evaluation(spec, results_dir=base / "results", show_progress=False).row, work


@pytest.mark.slow
@pytest.mark.parametrize("task", ["ben-s2", "ben-mm"])
def test_run_on_reben_beats_chance_and_records_v2(v2, one_thread, tmp_path, task):
    row, work = run(tmp_path, task, v2)
    assert row["status"] == "ok", row["error"]
    metrics = json.loads((work / "metrics.json").read_text())
    assert row["value"] == round(metrics["multi-label/mAP_micro"], 4)
    assert row["value"] > 30  # chance (the fixture's label prevalence) is about 8 %
    assert row.get("ben_version") == "v2", "the task's row_fields must pass the checker's data['row_fields'] on"
    assert row["ben_splits"].startswith("official")
    if task == "ben-mm":
        assert '"s1": ["VV", "VH"]' in row["adapter"]
    ids = (work / "predictions.csv").read_text().splitlines()[1].split(",")[0]
    assert ids in set(pd.read_parquet(v2 / reben.METADATA).query("split == 'test'")["patch_id"])
