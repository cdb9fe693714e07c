"""Plugin discovery: entry points of group ``rsbench`` plus modules named in ``RSBENCH_PLUGINS``.

Loading is lazy and idempotent (the first call to :func:`get_catalog` does it). A plugin that
fails to import, or raises inside a hook, is recorded with its error and skipped; the rest keep
working. Environment knobs:

``RSBENCH_DISABLE_PLUGIN_AUTOLOAD=1``  do not load entry points (only ``RSBENCH_PLUGINS``)
``RSBENCH_PLUGINS=mod1,mod2``          also load these importable modules as plugins
``RSBENCH_BLOCK_PLUGINS=name1,name2``  skip these plugins by name
"""

from __future__ import annotations

import importlib
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from rsbench.errors import RsbenchError
from rsbench.plugin_api import hookspecs
from rsbench.plugin_api.catalog import (
    BackboneInfo,
    BackbonePrefix,
    Catalog,
    DatasetInfo,
    ExecutorInfo,
    NameRegistry,
    TaskInfo,
)

ENTRY_POINT_GROUP = hookspecs.PROJECT
ENV_DISABLE_AUTOLOAD = "RSBENCH_DISABLE_PLUGIN_AUTOLOAD"
ENV_PLUGINS = "RSBENCH_PLUGINS"
ENV_BLOCK = "RSBENCH_BLOCK_PLUGINS"


@dataclass
class PluginRecord:
    """One plugin as ``rsbench plugins`` shows it."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    #: Plugins whose modules this one imports (its module's ``DEPENDS_ON``), by name.
    depends_on: list[str] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class PluginHost:
    manager: pluggy.PluginManager
    records: list[PluginRecord]
    catalog: Catalog


def _entry_points() -> list[EntryPoint]:
    """Entry points by name; a distribution seen twice on sys.path (an egg-info beside the
    installed metadata of an editable install) contributes its names once."""
    unique: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        unique.setdefault(ep.name, ep)
    return [unique[name] for name in sorted(unique)]


def _env_list(var: str) -> list[str]:
    return [x.strip() for x in os.environ.get(var, "").split(",") if x.strip()]


def _short_error(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def _load_modules(pm: pluggy.PluginManager) -> list[PluginRecord]:
    blocked = set(_env_list(ENV_BLOCK))
    candidates: list[tuple[str, str, Callable[[], Any], str | None, str | None]] = []
    if os.environ.get(ENV_DISABLE_AUTOLOAD, "") in ("", "0"):
        for ep in _entry_points():
            dist = ep.dist
            candidates.append(
                (ep.name, ep.value, ep.load, dist.name if dist else None, dist.version if dist else None)
            )
    for mod in _env_list(ENV_PLUGINS):
        candidates.append((mod, mod, lambda m=mod: importlib.import_module(m), None, None))

    records = []
    for name, module, load, dist_name, version in candidates:
        if name in blocked:
            pm.set_blocked(name)
            continue
        record = PluginRecord(name=name, module=module, distribution=dist_name, version=version)
        records.append(record)
        try:
            plugin = load()
            record.depends_on = [str(d) for d in getattr(plugin, "DEPENDS_ON", ())]
            pm.register(plugin, name=name)
        except Exception as exc:  # a broken plugin must not take the others down
            record.error = _short_error(exc)
    _check_dependencies(records, blocked)
    return records


def _check_dependencies(records: list[PluginRecord], blocked: set[str]) -> None:
    """Name a blocked, missing or failed dependency on the plugin that declares it, and
    refuse cycles: each plugin on one gets the cycle as its error."""
    by_name = {r.name: r for r in records}
    for record in records:
        for dep in record.depends_on:
            if dep in blocked:
                why = "is blocked (RSBENCH_BLOCK_PLUGINS)"
            elif dep not in by_name:
                why = "is not installed"
            elif by_name[dep].error:
                why = "failed to load"
            else:
                continue
            note = f"needs plugin {dep!r}, which {why}; its tasks that use it will not run"
            record.error = f"{record.error}; {note}" if record.error else note

    def cycle_from(start: str) -> list[str] | None:
        path, seen = [start], set()
        stack = [(start, iter(by_name[start].depends_on))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                continue
            if child == start:
                return [*path, start]
            if child in by_name and child not in seen and child not in path:
                seen.add(child)
                path.append(child)
                stack.append((child, iter(by_name[child].depends_on)))
        return None

    for record in records:
        cycle = cycle_from(record.name)
        if cycle:
            note = "dependency cycle " + " -> ".join(cycle)
            record.error = f"{record.error}; {note}" if record.error else note


_SPECS: dict[str, tuple[str, type, str]] = {
    # hook name -> (catalog attribute, record type, argument name)
    "rsbench_register_backbones": ("backbones", BackboneInfo, "register"),
    "rsbench_register_datasets": ("datasets", DatasetInfo, "register"),
    "rsbench_register_tasks": ("tasks", TaskInfo, "register"),
    "rsbench_register_executors": ("executors", ExecutorInfo, "register"),
}


def _collect(pm: pluggy.PluginManager, records: list[PluginRecord]) -> Catalog:
    """Call each plugin's hooks one plugin at a time, so every name knows its owner and a
    plugin that raises is reported without losing what the others declare."""
    catalog = Catalog()
    by_name = {r.name: r for r in records}
    for hook_name, (attr, record_type, _) in _SPECS.items():
        caller = getattr(pm.hook, hook_name)
        for impl in caller.get_hookimpls():  # registration order
            record = by_name.get(impl.plugin_name)
            if record is not None and hook_name not in record.hooks:
                record.hooks.append(hook_name)

            def register(item: Any, _plugin: str = impl.plugin_name, _attr: str = attr,
                         _type: type = record_type) -> None:
                registry: NameRegistry[Any]
                if isinstance(item, BackbonePrefix):
                    registry = catalog.backbone_prefixes
                elif isinstance(item, _type):
                    registry = getattr(catalog, _attr)
                else:
                    raise TypeError(f"plugin {_plugin!r}: expected {_type.__name__}, got {type(item).__name__}")
                registry.add(item, _plugin)

            try:
                impl.function(**{arg: register for arg in impl.argnames})
            except Exception as exc:
                rec = by_name.get(impl.plugin_name)
                if rec is not None:
                    rec.error = f"in {hook_name}: {_short_error(exc)}"
    return catalog


_HOST: PluginHost | None = None


def get_host(reload: bool = False) -> PluginHost:
    """Load plugins once and return the manager, their records and the catalog they declare."""
    global _HOST
    if _HOST is None or reload:
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        records = _load_modules(pm)
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise RsbenchError(f"a plugin implements an unknown hook: {exc}") from exc
        _HOST = PluginHost(pm, records, _collect(pm, records))
    return _HOST


def get_catalog() -> Catalog:
    return get_host().catalog


def list_backbones() -> list[str]:
    return get_catalog().backbones.names()


def list_tasks() -> list[str]:
    return get_catalog().tasks.names()


def list_datasets() -> list[str]:
    return get_catalog().datasets.names()
