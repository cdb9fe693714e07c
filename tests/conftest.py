"""Shared, session-scoped fixtures: generated datasets are written once per test session."""

from __future__ import annotations

import os

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # before anything imports torch

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def aid_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rsbench.plugins import get_catalog

    root = tmp_path_factory.mktemp("aid")
    get_catalog().datasets.get("aid").write_fixture(root, seed=0)
    return root


@pytest.fixture
def fresh_host(monkeypatch: pytest.MonkeyPatch):
    """Reload plugins under the test's environment and restore the normal host afterwards."""
    from rsbench import plugins

    def load():
        return plugins.get_host(reload=True)

    yield load
    monkeypatch.undo()
    plugins.get_host(reload=True)
