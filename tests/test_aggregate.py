"""Aggregation of leaderboard rows: seeds pooled per evaluation, robust statistics, paper delta."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rsbench import leaderboard
from rsbench.aggregate import bootstrap_ci, iqm, summarize, write_tables


def _row(seed, value, status="ok", options=None, backbone="resnet50"):
    return dict(run_id=f"r{seed}{status}", backbone=backbone, task="aid", split="test", protocol="finetune",
                metric="OA", seed=seed, status=status, value=value, fixture=False,
                options=json.dumps(options or {"train_ratio": 0.2}))


def test_seeds_are_pooled_and_unscored_or_failed_rows_left_out(tmp_path):
    path = tmp_path / "leaderboard.csv"
    for seed, value in enumerate([90.0, 92.0, 94.0]):
        leaderboard.append_row(path, _row(seed, value))
    leaderboard.append_row(path, _row(9, "", status="ok"))        # a submission: written, not scored
    leaderboard.append_row(path, _row(8, "", status="failed"))
    leaderboard.append_row(path, _row(0, 50.0, options={"train_ratio": 0.5}))
    (tmp_path / "paper_results.csv").write_text(
        "task,backbone,metric,value,setting,notes,source,verified\n"
        "aid,resnet50,OA,95.0,train_ratio=0.2,,test,no\n")
    table = summarize(tmp_path).set_index("options")
    main = table.loc[json.dumps({"train_ratio": 0.2})]
    assert main["n"] == 3 and main["mean"] == pytest.approx(92.0) and main["std"] == pytest.approx(2.0)
    assert main["ci_low"] <= 92.0 <= main["ci_high"]
    assert main["paper"] == 95.0 and main["delta"] == pytest.approx(-3.0)
    other = table.loc[json.dumps({"train_ratio": 0.5})]
    assert other["n"] == 1 and np.isnan(other["paper"])  # the paper row's setting does not match
    written = write_tables(tmp_path)
    assert set(written) == {"all", "classification"} and written["classification"].exists()
    leaderboard.append_row(path, _row(0, 91.0, backbone="resnet50-tiny"))
    tiny = summarize(tmp_path).set_index("backbone").loc["resnet50-tiny"]
    assert np.isnan(tiny["paper"])  # a tiny variant is not compared with the paper-size number


def test_iqm_ignores_the_outer_quartiles_and_ci_of_one_run_is_a_point():
    assert iqm(np.array([0.0, 10.0, 11.0, 12.0, 13.0, 100.0, 11.5, 12.5])) == pytest.approx(11.75)
    assert bootstrap_ci(np.array([5.0])) == (5.0, 5.0)
    low, high = bootstrap_ci(np.array([1.0, 2.0, 3.0, 4.0]))
    assert 1.0 <= low < 2.5 < high <= 4.0
