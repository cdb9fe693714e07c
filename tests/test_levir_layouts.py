"""LEVIR-CD in both layouts users have: the official 1024 px tiles and the BIT_CD/ChangeFormer
256 px crops with list/{train,val,test}.txt; which one was read is in the summary and the row."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rsbench.errors import DataLayoutError, SpecError
from rsbench_change import levir_cd


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("levir")
    return {"tiles": levir_cd.write_fixture(tmp / "tiles", seed=0),
            "crops": levir_cd.write_fixture(tmp / "crops", seed=0, layout=levir_cd.CROPS)}


def _crops_copy(roots: dict[str, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(roots["crops"] / levir_cd.CROPS_FOLDER, tmp_path / levir_cd.CROPS_FOLDER))


def test_crops_fixture_is_the_bit_cd_layout_cut_from_tiles(roots: dict[str, Path]) -> None:
    base = roots["crops"] / "LEVIR-CD256"
    names = (base / "list" / "test.txt").read_text().split()
    assert names[:4] == ["test_1_0000_0000.png", "test_1_0000_0064.png", "test_1_0064_0000.png", "test_1_0064_0064.png"]
    assert sorted(p.name for p in (base / "A").iterdir()) == sorted(p.name for p in (base / "label").iterdir())
    # the four crops of a tile are its quarters: the planted buildings cross crop borders
    label = np.block([[np.array(Image.open(base / "label" / n)) for n in names[:2]],
                      [np.array(Image.open(base / "label" / n)) for n in names[2:4]]])
    assert label.shape == (128, 128) and set(np.unique(label)) == {0, 255}
    a = np.array(Image.open(base / "A" / names[0])).astype(int)
    b = np.array(Image.open(base / "B" / names[0])).astype(int)
    change = np.array(Image.open(base / "label" / names[0])) == 255
    diff = np.abs(a - b).mean(-1)
    assert diff[change].mean() > 3 * diff[~change].mean()


def test_checker_detects_each_layout_and_records_it(roots: dict[str, Path]) -> None:
    crops = levir_cd.check(roots["crops"])
    assert crops["layout"] == "crops256" and crops["root"] == str(roots["crops"] / "LEVIR-CD256")
    assert [len(crops["splits"][s]) for s in levir_cd.SPLITS] == [48, 8, 16]
    listed = (roots["crops"] / "LEVIR-CD256" / "list" / "val.txt").read_text().split()
    assert [Path(s["id"]).name for s in crops["splits"]["val"]] == listed
    assert "crops256 layout: 64x64 px crops" in crops["protocol_note"]  # the row's adapter carries it
    assert levir_cd.check(roots["crops"] / "LEVIR-CD256")["layout"] == "crops256"  # the folder itself
    tiles = levir_cd.check(roots["tiles"])
    assert tiles["layout"] == "tiles1024" and "protocol_note" not in tiles
    assert [len(tiles["splits"][s]) for s in levir_cd.SPLITS] == [12, 2, 4]


def test_both_layouts_under_one_root_read_the_official_unless_asked(roots: dict[str, Path], tmp_path: Path) -> None:
    shutil.copytree(roots["tiles"] / "LEVIR-CD", tmp_path / "LEVIR-CD")
    shutil.copytree(roots["crops"] / "LEVIR-CD256", tmp_path / "LEVIR-CD256")
    assert levir_cd.check(tmp_path)["layout"] == "tiles1024"
    assert levir_cd.check(tmp_path, layout="crops256")["layout"] == "crops256"


def test_asking_for_a_layout_that_is_not_there_is_named(roots: dict[str, Path]) -> None:
    with pytest.raises(DataLayoutError, match=r"tiles/list: missing folder; LEVIR-CD crops are read as"):
        levir_cd.check(roots["tiles"], layout="crops256")
    with pytest.raises(DataLayoutError, match=r"LEVIR-CD256: holds LEVIR-CD's crops .* --option layout=crops256"):
        levir_cd.check(roots["crops"], layout="tiles1024")
    with pytest.raises(DataLayoutError, match=r"empty/train: missing folder; LEVIR-CD expects official tiles: .* \| or "):
        levir_cd.check(roots["crops"] / "empty")
    with pytest.raises(SpecError, match="layout=crops512: expected one of auto, tiles1024, crops256"):
        levir_cd.check(roots["crops"], layout="crops512")


def test_list_naming_a_missing_crop_names_the_list_and_line(roots: dict[str, Path], tmp_path: Path) -> None:
    root = _crops_copy(roots, tmp_path)
    lst = root / "list" / "test.txt"
    names = lst.read_text().split()
    (root / "B" / names[5]).unlink()
    with pytest.raises(DataLayoutError) as err:
        levir_cd.check(tmp_path)
    message = str(err.value)
    assert message.startswith(f"{lst}, line 6: lists '{names[5]}', but {root / 'B' / names[5]} is missing")
    lst.write_text("\n".join(names[:5]) + "\n\ntest_9_0000_0000.png\n")  # a blank line does not shift the count
    with pytest.raises(DataLayoutError, match=rf"test\.txt, line 7: lists 'test_9_0000_0000\.png', but .*A/"):
        levir_cd.check(tmp_path)


def test_missing_or_empty_list_is_named(roots: dict[str, Path], tmp_path: Path) -> None:
    root = _crops_copy(roots, tmp_path)
    (root / "list" / "val.txt").unlink()
    with pytest.raises(DataLayoutError, match=r"list/val\.txt: missing split list; LEVIR-CD crops expects"):
        levir_cd.check(tmp_path)
    (root / "list" / "val.txt").write_text("\n")
    with pytest.raises(DataLayoutError, match=r"list/val\.txt: empty split list"):
        levir_cd.check(tmp_path)


def test_crop_label_other_than_0_255_is_named(roots: dict[str, Path], tmp_path: Path) -> None:
    root = _crops_copy(roots, tmp_path)
    name = (root / "list" / "train.txt").read_text().split()[0]
    Image.fromarray(np.full((64, 64), 1, np.uint8)).save(root / "label" / name)
    with pytest.raises(DataLayoutError, match=rf"label/{name}: label values \[1\] not allowed"):
        levir_cd.check(tmp_path)


def test_fixture_layout_other_than_the_two_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataLayoutError, match="fixture layout 'v2': expected tiles1024 or crops256"):
        levir_cd.write_fixture(tmp_path, layout="v2")


@pytest.mark.slow
def test_run_on_the_crops_ends_ok_and_records_the_layout(roots: dict[str, Path], tmp_path: Path,
                                                         one_torch_thread) -> None:
    from rsbench.run.runner import run_evaluation
    from rsbench.run.spec import RunSpec

    work = tmp_path / "work"
    spec = RunSpec(backbone="resnet50-tiny", task="levir-cd", data_root=str(roots["crops"]), work_dir=str(work),
                   options=dict(crop_size=64, fusion="abs_diff"), max_iters=50, batch_size=4, lr=4e-3)
    outcome = run_evaluation(spec, results_dir=tmp_path / "results", show_progress=False)
    assert outcome.status == "ok", outcome.row["error"]
    assert "split protocol: crops256 layout" in outcome.row["adapter"]
    tested = json.loads((work / "splits" / "test.json").read_text())
    assert len(tested) == 16 and all("LEVIR-CD256/A/test_" in s["id"] for s in tested)
    assert float(outcome.row["value"]) > 50  # F1 of the change class: 84.85 when written; chance is below 30
