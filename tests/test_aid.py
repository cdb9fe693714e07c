"""AID reader and fixture: official layout, clear errors, per-class split."""

from __future__ import annotations

import shutil

import pytest

from rsbench.errors import DataLayoutError
from rsbench_classification import aid
from rsbench_classification.folder_per_class import split_per_class


def test_fixture_is_in_the_official_layout_and_deterministic(aid_root, tmp_path):
    assert sorted(p.name for p in (aid_root / "AID").iterdir()) == sorted(aid.CLASSES)
    assert (aid_root / "AID" / "DenseResidential" / "denseresidential_1.jpg").is_file()
    again = aid.write_fixture(tmp_path / "again", seed=0)
    a = (aid_root / "AID" / "Airport" / "airport_3.jpg").read_bytes()
    assert (again / "AID" / "Airport" / "airport_3.jpg").read_bytes() == a


def test_check_accepts_the_folder_or_its_parent(aid_root):
    for root in (aid_root, aid_root / "AID"):
        summary = aid.check(root)
        assert len(summary["samples"]) == 30 * 20 and summary["image_size"] == (64, 64)


def test_missing_class_folder_and_unreadable_image_are_named(aid_root, tmp_path):
    broken = tmp_path / "AID"
    shutil.copytree(aid_root / "AID", broken)
    shutil.rmtree(broken / "Viaduct")
    with pytest.raises(DataLayoutError, match=r"missing class folder\(s\) Viaduct"):
        aid.check(tmp_path)
    shutil.copytree(aid_root / "AID" / "Viaduct", broken / "Viaduct")
    (broken / "Pond" / "pond_2.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataLayoutError, match=r"pond_2.jpg: unreadable image"):
        aid.check(tmp_path)


def test_per_class_split_follows_the_ratio_and_seed():
    samples = [(f"c{c}/{i}.jpg", c) for c in range(3) for i in range(10)]
    train, test = split_per_class(samples, 0.2, seed=0)
    assert len(train) == 6 and len(test) == 24
    assert {y for _, y in train} == {0, 1, 2}
    assert split_per_class(samples, 0.2, seed=0) == (train, test)
    assert split_per_class(samples, 0.2, seed=1)[0] != train
    with pytest.raises(DataLayoutError, match="train_ratio 1.5"):
        split_per_class(samples, 1.5, seed=0)
