"""Plugins cut by domain: a plugin imports another plugin's modules only through a declared
dependency (``DEPENDS_ON``), the declarations have no cycle, the core imports no plugin, no module
imports another module's private name, and blocking any one first-party plugin leaves every task
that does not need it listed and buildable."""

from __future__ import annotations

import ast
import importlib
import tomllib
from pathlib import Path

import pytest

from rsbench.plugin_api.plugin_host import get_host

REPO = Path(__file__).resolve().parent.parent
ENTRY_POINTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["rsbench"]
#: First-party plugin name -> its top-level package (``rsbench_change``, ...).
PACKAGES = {name: value.split(".")[0] for name, value in ENTRY_POINTS.items() if value.startswith("rsbench_")}


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """``(module, names)`` of every import statement in ``path`` (names empty for ``import x``)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out.extend((a.name, []) for a in node.names)
    return out


def _declared(name: str) -> tuple[str, ...]:
    return tuple(getattr(importlib.import_module(ENTRY_POINTS[name]), "DEPENDS_ON", ()))


def test_cross_plugin_imports_are_declared_and_acyclic():
    by_package = {pkg: name for name, pkg in PACKAGES.items()}
    graph: dict[str, set[str]] = {}
    for name, package in PACKAGES.items():
        used = set()
        for path in (REPO / "plugins" / package).rglob("*.py"):
            for module, _ in _imports(path):
                other = by_package.get(module.split(".")[0])
                if other and other != name:
                    used.add(other)
        assert used <= set(_declared(name)), f"plugin {name!r} imports {sorted(used)} but declares {_declared(name)}"
        graph[name] = used

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    assert not [n for n in graph if reaches(n, n, set())], graph


def test_the_core_imports_no_plugin_and_no_module_imports_private_names():
    for path in [*(REPO / "rsbench").rglob("*.py"), *(REPO / "plugins").rglob("*.py")]:
        for module, names in _imports(path):
            if path.is_relative_to(REPO / "rsbench"):
                assert not module.startswith("rsbench_"), f"{path} imports plugin module {module}"
            if module.startswith("rsbench"):
                private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                assert not private, f"{path} imports private names {private} from {module}"


@pytest.mark.parametrize("blocked", sorted(ENTRY_POINTS))
def test_blocking_one_plugin_leaves_the_others_tasks(blocked, monkeypatch):
    everything = get_host().catalog
    owners = everything.tasks.owner
    monkeypatch.setenv("RSBENCH_BLOCK_PLUGINS", blocked)
    try:
        host = get_host(reload=True)
        catalog = host.catalog
        assert blocked not in {r.name for r in host.records}
        for task in everything.tasks:
            if owners[task.name] == blocked:
                assert task.name not in catalog.tasks
                continue
            kept = catalog.tasks.get(task.name)  # listed
            kept.load_task_class()  # its task class imports
            assert kept.dataset in catalog.datasets, f"{task.name}: dataset {kept.dataset} gone with {blocked}"
    finally:
        monkeypatch.delenv("RSBENCH_BLOCK_PLUGINS")
        get_host(reload=True)
