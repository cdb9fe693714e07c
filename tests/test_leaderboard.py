"""The leaderboard CSV: atomic appends, widening header, identity lookup, concurrent writers."""

from __future__ import annotations

import multiprocessing as mp

import pandas as pd

from rsbench.results import leaderboard


def _row(i: int, **kw):
    base = dict(run_id=f"r{i}", backbone="b", checkpoint_sha256="", task="aid", split="test",
                protocol="finetune", precision="fp32", seed=i, options="{}", run_key="k", config_hash="h",
                status="ok", value=i)
    return base | kw


def test_rows_append_and_read_back_with_pandas(tmp_path):
    path = tmp_path / "leaderboard.csv"
    for i in range(3):
        leaderboard.append_row(path, _row(i, error="comma, \"quote\"\nnewline"))
    frame = leaderboard.load_frame([path])
    assert list(frame["run_id"]) == ["r0", "r1", "r2"]
    assert list(frame.columns[: len(leaderboard.COLUMNS)]) == list(leaderboard.COLUMNS)
    assert frame["error"][0] == "comma, \"quote\"\nnewline"
    assert not list(tmp_path.glob("*.tmp"))


def test_a_new_column_widens_the_header_without_losing_old_rows(tmp_path):
    path = tmp_path / "leaderboard.csv"
    leaderboard.append_row(path, _row(0))
    leaderboard.append_row(path, _row(1, gpu_hours=0.5))
    frame = pd.read_csv(path)
    assert len(frame) == 2 and "gpu_hours" in frame.columns
    assert pd.isna(frame["gpu_hours"][0]) and frame["gpu_hours"][1] == 0.5


def test_find_done_matches_identity_and_ignores_failed_rows(tmp_path):
    path = tmp_path / "leaderboard.csv"
    leaderboard.append_row(path, _row(0, status="failed"))
    assert leaderboard.find_done(path, _row(0)) is None
    leaderboard.append_row(path, _row(0))
    assert leaderboard.find_done(path, _row(0))["run_id"] == "r0"
    assert leaderboard.find_done(path, _row(0, run_key="other")) is None
    assert leaderboard.find_done(path, _row(0, precision="bf16")) is None


def _writer(args):
    path, start = args
    for i in range(start, start + 10):
        leaderboard.append_row(path, _row(i))


def test_concurrent_writers_never_lose_or_split_rows(tmp_path):
    path = tmp_path / "leaderboard.csv"
    with mp.get_context("fork").Pool(4) as pool:
        pool.map(_writer, [(path, k * 10) for k in range(4)])
    frame = pd.read_csv(path)
    assert sorted(frame["seed"]) == list(range(40))
