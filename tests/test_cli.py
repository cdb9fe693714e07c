"""The CLI in-process (click's runner): listing, info, fixtures, errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rsbench.cli.main import main


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_list_json_holds_every_registry():
    out = json.loads(invoke("list", "--json").output)
    assert {"resnet50", "resnet50-tiny", "vit-b", "vit-tiny", "test-resnet18-nir"} <= set(out["backbones"])
    assert "aid" in out["tasks"] and "aid" in out["datasets"]


def test_plugins_json_lists_versions_and_hooks():
    plugins = {p["name"]: p for p in json.loads(invoke("plugins", "--json").output)}
    assert plugins["classification"]["hooks"] == ["rsbench_register_datasets", "rsbench_register_tasks"]
    assert plugins["testplugin"]["version"] == "0.0.1"


def test_info_backbone_and_task():
    backbone = json.loads(invoke("info", "backbone", "resnet50", "--json").output)
    assert backbone["out_channels"] == [256, 512, 1024, 2048] and backbone["params"] == 23_508_032
    task = json.loads(invoke("info", "task", "aid", "--json").output)
    assert task["metric"] == "OA" and len(task["classes"]) == 30 and "AID/<Class>" in task["layout"]
    assert "modalities" in invoke("info", "backbone", "vit-tiny").output


def test_info_count_counts_on_the_meta_device():
    out = json.loads(invoke("info", "backbone", "resnet50-tiny", "--count", "--json").output)
    assert out["params_counted"] == out["params"]


def test_unknown_names_exit_2_with_close_matches():
    result = CliRunner().invoke(main, ["info", "backbone", "resnet-50"])
    assert result.exit_code == 2
    assert "unknown backbone 'resnet-50'" in result.output and "resnet50" in result.output
    result = CliRunner().invoke(main, ["run", "--backbone", "resnet50", "--task", "aid2"])
    assert result.exit_code == 2 and "Did you mean: aid" in result.output


def test_bad_option_syntax_is_named():
    result = CliRunner().invoke(main, ["run", "-b", "resnet50-tiny", "-t", "aid", "-o", "train_ratio"])
    assert result.exit_code == 2 and "--option 'train_ratio': expected KEY=VALUE" in result.output


@pytest.mark.parametrize("flags,message", [
    (["--nproc", "0"], "--nproc 0: expected a positive integer"),
    (["--memory-format", "nhwc"], "--memory-format 'nhwc': expected one of"),
    (["--nproc", "2", "--track", "tensorboard"], "--track with --nproc > 1"),
    (["--precision", "bf16"], "--precision bf16: mixed precision needs --device cuda"),
])
def test_bad_run_settings_are_named_before_anything_runs(flags, message, tmp_path):
    result = CliRunner().invoke(main, ["run", "-b", "resnet50-tiny", "-t", "aid", "--results", str(tmp_path), *flags])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "leaderboard.csv").exists()


def test_data_fixture_writes_the_layout(tmp_path):
    result = invoke("data", "fixture", "aid", "--out", str(tmp_path / "fx"))
    assert "wrote AID fixture" in result.output
    assert (tmp_path / "fx" / "AID" / "Airport" / "airport_1.jpg").is_file()
    assert "600 samples" in invoke("data", "check", "aid", str(tmp_path / "fx")).output


def test_archives_fixture_then_prepare_then_check_as_a_user_types_it(tmp_path):
    downloads, root = tmp_path / "downloads", tmp_path / "LEVIR-CD"
    assert "providers' archives" in invoke("data", "fixture", "levir-cd", "--archives", "--out", str(downloads)).output
    first = invoke("data", "prepare", "levir-cd", "--from", str(downloads), "--out", str(root)).output
    assert "train.zip: prepared" in first and "prepared and checked" in first
    again = invoke("data", "prepare", "levir-cd", "--from", str(downloads), "--out", str(root)).output
    assert "train.zip: up to date" in again
    assert "ok levir-cd" in invoke("data", "check", "levir-cd", str(root)).output


def test_info_task_prints_the_protocol_card_with_its_sources():
    out = CliRunner().invoke(main, ["info", "task", "isaid"], catch_exceptions=False, terminal_width=200).output
    assert "protocol card isaid@" in out and "drop path" in out and "official config" in out
    card = json.loads(invoke("info", "task", "isaid", "--json").output)["protocol_card"]
    assert card["settings"]["drop_path"]["value"] == 0.2 and card["settings"]["drop_path"]["source"]


def test_a_checkpoint_part_the_backbone_lacks_is_named(aid_root, tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"not read: the part name is refused first")
    result = CliRunner().invoke(main, ["run", "-b", "resnet50-tiny", "-t", "aid", "--data-root", str(aid_root),
                                       "--checkpoint", f"hr={weights}", "--max-iters", "1",
                                       "--results", str(tmp_path), "--work-dir", str(tmp_path / "w")])
    assert result.exit_code == 2
    assert f"--checkpoint hr={weights}" in result.output and "no per-encoder parts" in result.output


def test_info_task_shows_each_head_card_and_data_check_names_the_layout_read(tmp_path):
    text = invoke("info", "task", "whu-cd").output
    assert "with -o head=mars" in text and "whu-cd/head=mars@1" in text
    task = json.loads(invoke("info", "task", "whu-cd", "--json").output)
    assert task["protocol_card_variants"]["head=mars"]["id"] == "whu-cd/head=mars@1"
    for dataset, layout in (("levir-cd", "crops256"), ("isaid", "devkit")):
        out = tmp_path / dataset
        assert invoke("data", "fixture", dataset, "--layout", layout, "--out", str(out)).exit_code == 0
        result = invoke("data", "check", dataset, str(out))
        assert result.exit_code == 0 and f"in the {layout} layout" in " ".join(result.output.split())
