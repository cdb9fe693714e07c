"""Aggregation of leaderboard rows: seeds pooled per evaluation (never across splits, precisions or
weights), robust statistics, and a paper delta only where the paper measured exactly that."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rsbench.results import leaderboard
from rsbench.results.aggregate import (
    NO_PAPER,
    PaperResultsError,
    bootstrap_ci,
    iqm,
    match_paper,
    read_paper,
    summarize,
    write_tables,
)

PAPER = ("task,backbone,metric,value,split,protocol,setting,notes,source,verified\n"
         "aid,resnet50,OA,95.0,test,finetune,train_ratio=0.2,,a paper,no\n"
         "aid,resnet50,OA,96.0,val,finetune,train_ratio=0.2,,a paper,yes\n")


def _row(seed, value, status="ok", options=None, backbone="resnet50", **extra):
    row = dict(run_id=f"r{seed}{status}", backbone=backbone, task="aid", split="test", protocol="finetune",
               metric="OA", seed=seed, status=status, value=value, fixture=False,
               checkpoint="r50.pth", checkpoint_sha256="abc", options=json.dumps(options or {"train_ratio": 0.2}))
    return {**row, **extra}


def test_seeds_are_pooled_and_unscored_or_failed_rows_left_out(tmp_path):
    path = tmp_path / "leaderboard.csv"
    for seed, value in enumerate([90.0, 92.0, 94.0]):
        leaderboard.append_row(path, _row(seed, value))
    leaderboard.append_row(path, _row(9, "", status="ok"))        # a submission: written, not scored
    leaderboard.append_row(path, _row(8, "", status="failed"))
    leaderboard.append_row(path, _row(0, 50.0, options={"train_ratio": 0.5}))
    (tmp_path / "paper_results.csv").write_text(PAPER)
    table = summarize(tmp_path).set_index("options")
    main = table.loc[json.dumps({"train_ratio": 0.2})]
    assert main["n"] == 3 and main["mean"] == pytest.approx(92.0) and main["std"] == pytest.approx(2.0)
    assert main["ci_low"] <= 92.0 <= main["ci_high"]
    assert main["paper"] == 95.0 and main["delta"] == pytest.approx(-3.0) and main["paper_note"] == ""
    other = table.loc[json.dumps({"train_ratio": 0.5})]
    assert other["n"] == 1 and np.isnan(other["paper"])  # the paper row's setting does not match
    assert other["paper_note"] == f"{NO_PAPER}: train_ratio=0.5 (paper: train_ratio=0.2)"
    written = write_tables(tmp_path)
    assert set(written) == {"all", "classification"} and written["classification"].exists()
    leaderboard.append_row(path, _row(0, 91.0, backbone="resnet50-tiny"))
    tiny = summarize(tmp_path).set_index("backbone").loc["resnet50-tiny"]
    # a tiny variant is not compared with the paper-size number, but keeps its source and says why
    assert np.isnan(tiny["paper"]) and np.isnan(tiny["delta"]) and tiny["paper_source"] == "a paper"
    assert tiny["paper_note"] == f"{NO_PAPER}: preset resnet50-tiny (paper: resnet50)"


def test_splits_precisions_and_checkpoints_are_never_pooled(tmp_path):
    path = tmp_path / "leaderboard.csv"
    leaderboard.append_row(path, _row(0, 90.0))  # no precision column yet: an fp32 row
    leaderboard.append_row(path, _row(1, 92.0, precision="fp32"))
    leaderboard.append_row(path, _row(2, 80.0, split="val"))
    leaderboard.append_row(path, _row(3, 70.0, precision="bf16"))
    leaderboard.append_row(path, _row(4, 60.0, checkpoint_sha256="other"))
    leaderboard.append_row(path, _row(5, 50.0, fixture=True))
    leaderboard.append_row(path, _row(6, 40.0, card="aid@2"))  # another protocol card version: another recipe
    (tmp_path / "paper_results.csv").write_text(PAPER)
    table = summarize(tmp_path)
    assert sorted(table["mean"]) == [40.0, 50.0, 60.0, 70.0, 80.0, 91.0]
    pooled = table[table["n"] == 2].iloc[0]
    assert (pooled["split"], pooled["precision"], pooled["paper"]) == ("test", "fp32", 95.0)
    val = table[table["split"] == "val"].iloc[0]
    assert val["paper"] == 96.0 and val["paper_verified"] == "yes"  # the val number, for the val run
    fixture = table[table["fixture"]].iloc[0]
    assert np.isnan(fixture["paper"]) and fixture["paper_note"].endswith("generated fixture data")


def test_weights_at_initialisation_are_not_the_paper_setting(tmp_path):
    (tmp_path / "paper_results.csv").write_text(PAPER)
    frame = read_paper(tmp_path / "paper_results.csv")
    run = dict(task="aid", metric="OA", backbone="resnet50", split="test", protocol="finetune",
               options=json.dumps({"train_ratio": 0.2}), fixture=False, checkpoint_sha256="abc")
    assert match_paper(frame, run).value == 95.0
    assert match_paper(frame, {**run, "backbone_params_random": 0, "backbone_params_loaded": 10}).value == 95.0
    partial = match_paper(frame, {**run, "backbone_params_random": 1234567})
    assert partial.value is None and partial.note == f"{NO_PAPER}: 1,234,567 backbone parameters at initialisation"
    assert "no checkpoint" in match_paper(frame, {**run, "checkpoint_sha256": ""}).note
    assert match_paper(frame, {**run, "backbone": "vit-b"}).row is None  # nothing published for this preset
    assert "protocol linear (paper: finetune)" in match_paper(frame, {**run, "protocol": "linear"}).note


def test_paper_results_without_split_is_a_clear_error(tmp_path):
    bad = tmp_path / "paper_results.csv"
    bad.write_text("task,backbone,metric,value,setting,source,verified\naid,resnet50,OA,95.0,,x,no\n")
    with pytest.raises(PaperResultsError, match=r"paper_results.csv: missing column\(s\) split, protocol"):
        read_paper(bad)
    bad.write_text("task,backbone,metric,value,split,protocol,setting,source,verified\naid,r,OA,n/a,test,finetune,,x,no\n")
    with pytest.raises(PaperResultsError, match="line 2: value 'n/a' is not a number"):
        read_paper(bad)


def test_the_shipped_paper_results_state_split_and_protocol():
    from pathlib import Path

    paper = read_paper(Path(__file__).resolve().parents[1] / "results" / "paper_results.csv")
    assert len(paper) >= 32 and (paper["split"] != "").all() and (paper["protocol"] != "").all()
    assert paper.set_index("task").loc["fair1m", "split"] == "submission"  # the test server
    assert paper.set_index("task").loc["isaid", "split"] == "val"


def test_iqm_ignores_the_outer_quartiles_and_ci_of_one_run_is_a_point():
    assert iqm(np.array([0.0, 10.0, 11.0, 12.0, 13.0, 100.0, 11.5, 12.5])) == pytest.approx(11.75)
    assert bootstrap_ci(np.array([5.0])) == (5.0, 5.0)
    low, high = bootstrap_ci(np.array([1.0, 2.0, 3.0, 4.0]))
    assert 1.0 <= low < 2.5 < high <= 4.0
