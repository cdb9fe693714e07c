"""Shared, session-scoped fixtures: generated datasets are written once per test session."""

from __future__ import annotations

import os

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # before anything imports torch
# Frozen/linear runs in tests fill a throw-away feature cache, never the user's.
os.environ.setdefault("RSBENCH_FEATURE_CACHE", __import__("tempfile").mkdtemp(prefix="rsbench-features-"))
# Patch datasets' converted tiles (rsbench_segmentation.common) likewise.
os.environ.setdefault("RSBENCH_TILE_CACHE", __import__("tempfile").mkdtemp(prefix="rsbench-tiles-"))

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def aid_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rsbench.plugin_api.plugin_host import get_catalog

    root = tmp_path_factory.mktemp("aid")
    get_catalog().datasets.get("aid").write_fixture(root, seed=0)
    return root


@pytest.fixture
def fresh_host(monkeypatch: pytest.MonkeyPatch):
    """Reload plugins under the test's environment and restore the normal host afterwards."""
    from rsbench.plugin_api import plugin_host
    def load():
        return plugin_host.get_host(reload=True)

    yield load
    monkeypatch.undo()
    plugin_host.get_host(reload=True)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread while a module runs, restored afterwards.

    On 2 shared CPU cores, two contending OpenMP threads ran 3-6x slower than one (measured while
    other test processes were busy); the tests' models are small enough that one thread loses
    nothing. Modules that train opt in through an autouse fixture that requests this one.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def dataset_root(tmp_path_factory: pytest.TempPathFactory):
    """``dataset_root(name)``: the fixture of a registered dataset, written once per session."""
    from rsbench.plugin_api.plugin_host import get_catalog

    roots: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in roots:
            root = tmp_path_factory.mktemp(name)
            get_catalog().datasets.get(name).write_fixture(root, seed=0)
            roots[name] = root
        return roots[name]

    return get
