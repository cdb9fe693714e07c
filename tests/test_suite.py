"""Suites: grid expansion, the local and Ray executors, fault isolation, kill -9 and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from rsbench.errors import SpecError
from rsbench.results import leaderboard
from rsbench.run.spec import RunSpec
from rsbench.suites.suite import Evaluation, Suite, expand, load_suite
from rsbench.suites.suite_run import run_suite

RSBENCH = os.path.join(os.path.dirname(sys.executable), "rsbench")


def test_builtin_suites_hold_16_and_9_and_25_evaluations():
    assert len(load_suite("skysense16").evaluations) == 16
    assert len(load_suite("mars9").evaluations) == 9
    assert {e.task for e in load_suite("all").evaluations} == (
        {e.task for e in load_suite("skysense16").evaluations} | {e.task for e in load_suite("mars9").evaluations})


def test_expand_crosses_options_protocols_backbones_and_seeds(tmp_path):
    suite = Suite("s", "", (Evaluation("aid", ("finetune", "linear"), {"train_ratio": [0.2, 0.5]}),))
    specs = expand(suite, ["a", "b"], seeds=[0, 1], data_roots={"aid": "/d"}, work_root=tmp_path)
    assert len(specs) == 2 * 2 * 2 * 2
    assert len({s.work_dir for s in specs}) == len(specs)
    assert {s.options["train_ratio"] for s in specs} == {"0.2", "0.5"} and specs[0].data_root == "/d"
    assert len(expand(suite, ["a"], protocols=["frozen"])) == 2
    with pytest.raises(SpecError, match="--protocol 'probe'"):
        expand(suite, ["a"], protocols=["probe"])
    assert {s.nproc for s in expand(suite, ["a"], nproc=4)} == {4}


def test_suite_files_are_checked(tmp_path):
    (tmp_path / "bad.py").write_text("EVALUATIONS = [dict(task='aid', seeds=[1])]\n")
    with pytest.raises(SpecError, match=r"EVALUATIONS\[0\] has unknown key\(s\) seeds"):
        load_suite(str(tmp_path / "bad.py"))
    with pytest.raises(SpecError, match="built-in suites: all, demo, mars9, skysense16"):
        load_suite("nope")


def _grid(aid_root: Path, work: Path, seeds=(0, 1)) -> list[RunSpec]:
    return [RunSpec(backbone="resnet50-tiny", task="aid", data_root=str(aid_root), max_iters=4, seed=s,
                    work_dir=str(work / f"seed{s}")) for s in seeds]


@pytest.mark.slow
def test_a_broken_dataset_fails_alone_and_missing_tasks_are_recorded(aid_root, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    specs = [*_grid(aid_root, tmp_path / "w", seeds=(0,)),
             RunSpec(backbone="resnet50-tiny", task="aid", data_root=str(broken), seed=7, work_dir=str(tmp_path / "b")),
             RunSpec(backbone="resnet50-tiny", task="not-installed", seed=0)]
    counts = run_suite(specs, executor="local", results_dir=tmp_path / "r", jobs=1)
    assert counts == {"ok": 1, "failed": 1, "skipped": 1}
    rows = {r["seed"]: r for r in leaderboard.read_rows(tmp_path / "r" / "leaderboard.csv") if r["task"] == "aid"}
    assert rows["0"]["status"] == "ok" and rows["7"]["status"] == "failed"
    assert "missing class folder" in rows["7"]["error"]


@pytest.mark.slow
def test_ray_executor_gives_the_same_rows_as_the_local_one(aid_root, tmp_path):
    local, ray_ = tmp_path / "local", tmp_path / "ray"
    run_suite(_grid(aid_root, local / "w"), executor="local", results_dir=local, jobs=1)
    run_suite(_grid(aid_root, ray_ / "w"), executor="ray", results_dir=ray_, jobs=2)
    cols = ["backbone", "task", "seed", "protocol", "options", "config_hash", "status", "value"]
    a = pd.read_csv(local / "leaderboard.csv")[cols].sort_values("seed").reset_index(drop=True)
    b = pd.read_csv(ray_ / "leaderboard.csv")[cols].sort_values("seed").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.slow
@pytest.mark.e2e
def test_sigkill_mid_suite_then_rerun_loses_and_duplicates_no_row(aid_root, tmp_path):
    suite_file = tmp_path / "three.py"
    suite_file.write_text("EVALUATIONS = [dict(task='aid', options=dict(train_ratio=[0.2, 0.3, 0.5]))]\n")
    args = [RSBENCH, "suite", "--suite", str(suite_file), "--backbones", "resnet50-tiny", "--jobs", "1", "--smoke",
            "--results", str(tmp_path / "r"), "--work-root", str(tmp_path / "w")]
    env = {**os.environ, "RSBENCH_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path, env=env)
    csv = tmp_path / "r" / "leaderboard.csv"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not (csv.exists() and len(leaderboard.read_rows(csv)) >= 1):
        time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(leaderboard.read_rows(csv)) < 3  # killed mid-grid
    rerun = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    rows = leaderboard.read_rows(csv)
    assert sorted(r["options"] for r in rows) == sorted(set(r["options"] for r in rows))
    assert len(rows) == 3 and all(r["status"] == "ok" for r in rows)


@pytest.mark.parametrize("task", __import__("rsbench").list_tasks())
def test_every_tasks_smoke_settings_are_options_it_takes(task):
    from rsbench.plugin_api.plugin_host import get_catalog

    info = get_catalog().tasks.get(task)
    assert set(info.smoke_options) <= set(info.options), sorted(set(info.smoke_options) - set(info.options))
    assert info.smoke_iters >= 1
