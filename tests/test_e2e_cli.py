"""End to end, as a user types it: the ``rsbench`` executable in subprocesses.

Each process that imports torch and OpenMMLab costs 8-14 s here, so these are few.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

pytestmark = pytest.mark.e2e
RSBENCH = os.path.join(os.path.dirname(sys.executable), "rsbench")


def rsbench(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([RSBENCH, *args], capture_output=True, text=True, timeout=900,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def test_listing_is_fast_and_never_imports_the_stack():
    code = ("import sys; from click.testing import CliRunner; from rsbench.cli.main import main; "
            "r = CliRunner().invoke(main, ['list']); r2 = CliRunner().invoke(main, ['info', 'task', 'aid']); "
            "assert r.exit_code == 0 and r2.exit_code == 0, r.output; "
            "heavy = [m for m in ('torch', 'mmengine', 'mmcv', 'mmpretrain', 'timm') if m in sys.modules]; "
            "assert not heavy, heavy")
    start = time.monotonic()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert time.monotonic() - start < 3.0  # includes interpreter start; "well under a second" of work


def test_a_broken_plugin_does_not_break_list_and_is_reported():
    env = {"RSBENCH_PLUGINS": "rsbench_plugin_that_does_not_exist"}
    listed = rsbench("list", "--json", env=env)
    assert listed.returncode == 0 and "aid" in json.loads(listed.stdout)["tasks"]
    plugins = {p["name"]: p for p in json.loads(rsbench("plugins", "--json", env=env).stdout)}
    assert "No module named 'rsbench_plugin_that_does_not_exist'" in plugins["rsbench_plugin_that_does_not_exist"]["error"]
    assert {"baselines", "classification", "testplugin"} <= set(plugins)


@pytest.mark.slow
def test_run_resnet50_on_aid_then_skip_the_identical_rerun(aid_root, tmp_path):
    """The issue's acceptance path with the default schedule: far above chance, then skipped."""
    args = ("run", "--backbone", "resnet50", "--task", "aid", "--data-root", str(aid_root),
            "--work-dir", str(tmp_path / "work"), "--results", str(tmp_path / "results"))
    first = rsbench(*args, "--json")
    assert first.returncode == 0, first.stderr[-3000:]
    row = json.loads(first.stdout)
    assert row["status"] == "ok" and row["value"] > 30.0  # chance is 3.3 %
    second = rsbench(*args)
    assert second.returncode == 0 and "already done" in second.stdout
    frame = pd.read_csv(tmp_path / "results" / "leaderboard.csv")
    assert len(frame) == 1 and frame["status"][0] == "ok"


def test_doctor_reports_compiled_mmcv_ops():
    res = rsbench("doctor", "--json")
    report = json.loads(res.stdout)
    assert res.returncode == 0, res.stderr[-2000:]
    assert report["mmcv_ops"]["ok"] and report["versions"]["mmcv"] == "2.1.0"


def test_a_missing_data_root_is_one_clear_line(tmp_path):
    res = rsbench("run", "-b", "resnet50-tiny", "-t", "aid", "--data-root", str(tmp_path / "none"),
                  "--results", str(tmp_path))
    assert res.returncode == 2
    assert f"--data-root {tmp_path / 'none'}: no such directory" in res.stderr
    assert "Traceback" not in res.stderr
