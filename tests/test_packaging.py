"""A built wheel is all a user needs: installed into a fresh venv with no source tree, it lists
and dry-runs every built-in suite (the suites ship as the data package ``rsbench_suites``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.e2e
def test_an_installed_wheel_lists_and_dry_runs_every_suite(tmp_path):
    source = tmp_path / "source"  # built from a copy: setuptools writes build/ next to the sources
    source.mkdir()
    for part in ("pyproject.toml", "README.md", "rsbench", "plugins", "configs"):
        copy = shutil.copytree if (REPO / part).is_dir() else shutil.copy2
        copy(REPO / part, source / part, **({"ignore": shutil.ignore_patterns("__pycache__", "*.egg-info")}
                                            if (REPO / part).is_dir() else {}))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(source),
                    "-w", str(tmp_path / "dist")], check=True, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("rsbench-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    target = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True)
    # The dependencies (torch, OpenMMLab, ...) come from this venv's site-packages, appended
    # after the wheel's copy; that folder's own .pth files (the editable source tree) are not read.
    (target / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    python = venv / "bin" / "python"
    where = subprocess.run([python, "-c", "import rsbench, rsbench_suites; print(rsbench.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, check=True).stdout
    assert str(target) in where and str(REPO) not in where
    from rsbench.suites.suite import expand, load_suite

    for suite, tasks in (("all", 25), ("skysense16", 16), ("mars9", 9)):
        loaded = load_suite(suite)
        assert len({e.task for e in loaded.evaluations}) == tasks
        count = len(expand(loaded, ["resnet50-tiny"], [0], None, {}, smoke=True))
        out = subprocess.run([python, "-m", "rsbench.cli.main", "suite", "--suite", suite, "--backbones", "resnet50-tiny",
                              "--smoke", "--dry-run"], capture_output=True, text=True, env=dict(env, COLUMNS="200"),
                             cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert f"suite {suite}: {count} evaluations" in out.stdout
        assert all(e.task in out.stdout for e in loaded.evaluations)
