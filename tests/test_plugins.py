"""Plugin discovery: entry points, the third-party test plugin, failures and the env knobs."""

from __future__ import annotations

import pytest

from rsbench.errors import DuplicateNameError, UnknownNameError
from rsbench.plugin_api.catalog import BackboneInfo, Catalog
from rsbench.plugin_api.plugin_host import get_host

BUILT_IN = {"executors", "baselines", "classification", "skysense", "mars", "segmentation", "detection",
            "change", "crossmodal"}


def test_builtin_and_third_party_plugins_are_discovered_through_entry_points():
    records = {r.name: r for r in get_host().records}
    assert BUILT_IN | {"testplugin"} <= set(records)
    assert records["testplugin"].distribution == "rsbench-testplugin"
    assert records["testplugin"].version == "0.0.1"
    assert records["testplugin"].hooks == ["rsbench_register_backbones"]
    assert records["baselines"].distribution == "rsbench"
    assert get_host().catalog.backbones.owner["test-resnet18-nir"] == "testplugin"


def test_every_first_party_plugin_loads_without_error():
    errors = {r.name: r.error for r in get_host().records if r.name in BUILT_IN and r.error}
    assert not errors


def test_a_plugin_that_fails_to_import_is_reported_and_the_rest_keep_working(fresh_host, monkeypatch):
    monkeypatch.setenv("RSBENCH_PLUGINS", "rsbench_no_such_plugin_module")
    host = fresh_host()
    broken = [r for r in host.records if r.name == "rsbench_no_such_plugin_module"]
    assert broken and "ModuleNotFoundError" in broken[0].error
    assert "resnet50" in host.catalog.backbones and "aid" in host.catalog.tasks


def test_a_plugin_that_raises_inside_a_hook_loses_only_its_own_declarations(fresh_host, monkeypatch, tmp_path):
    (tmp_path / "rsb_raising_plugin.py").write_text(
        "from rsbench import hookimpl\n"
        "@hookimpl\n"
        "def rsbench_register_tasks(register):\n"
        "    raise RuntimeError('boom in hook')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("RSBENCH_PLUGINS", "rsb_raising_plugin")
    host = fresh_host()
    record = next(r for r in host.records if r.name == "rsb_raising_plugin")
    assert "boom in hook" in record.error and "rsbench_register_tasks" in record.error
    assert "aid" in host.catalog.tasks


def test_autoload_can_be_disabled_and_plugins_blocked(fresh_host, monkeypatch):
    monkeypatch.setenv("RSBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert len(fresh_host().catalog.backbones) == 0
    monkeypatch.delenv("RSBENCH_DISABLE_PLUGIN_AUTOLOAD")
    monkeypatch.setenv("RSBENCH_BLOCK_PLUGINS", "testplugin")
    host = fresh_host()
    assert "test-resnet18-nir" not in host.catalog.backbones
    assert "resnet50" in host.catalog.backbones


def test_duplicate_names_are_refused_with_both_owners():
    catalog = Catalog()
    info = BackboneInfo(name="x", module="m", mm_type="T", modalities={"hr": ("R",)}, out_channels=(1,),
                        out_strides=(1,), pooled_channels=1, params=1)
    catalog.backbones.add(info, "first")
    with pytest.raises(DuplicateNameError, match="'second'.*already registered by plugin 'first'"):
        catalog.backbones.add(info, "second")


def test_unknown_names_suggest_close_matches():
    catalog = get_host().catalog
    with pytest.raises(UnknownNameError, match="Did you mean: resnet50"):
        catalog.backbone("resnet5")
    with pytest.raises(UnknownNameError, match="unknown task 'aidd'.*Did you mean: aid"):
        catalog.tasks.get("aidd")
