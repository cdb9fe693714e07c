"""One config-finalising step and the run identity: what changes the numbers is in the hash and
the key, what only changes how they are computed is not; the device is checked before any row."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner

from rsbench.errors import SpecError
from rsbench.results import leaderboard
from rsbench.run.run_config import finalise, run_key
from rsbench.run.spec import RunSpec, parse_checkpoints

TASK_CFG = dict(
    model=dict(type="ImageClassifier", backbone=dict(type="RSBMMPretrainBackbone", frozen=False)),
    optim_wrapper=dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=1e-3)),
    train_cfg=dict(type="IterBasedTrainLoop", max_iters=10),
    test_cfg=dict(type="TestLoop"),
)
BASE = RunSpec(backbone="resnet50-tiny", task="aid", data_root="/data/AID", device="cuda",
               options={"train_ratio": 0.2})


def _final(spec, tmp_path):
    return finalise(json.loads(json.dumps(TASK_CFG)), spec, tmp_path)


def test_precision_changes_the_identity_and_the_hash(tmp_path):
    fp32, bf16 = _final(BASE, tmp_path), _final(replace(BASE, precision="bf16"), tmp_path)
    assert fp32.config_hash != bf16.config_hash
    assert bf16.cfg["optim_wrapper"]["type"] == "AmpOptimWrapper" and bf16.cfg["test_cfg"]["fp16"]
    assert run_key(BASE, {}) != run_key(replace(BASE, precision="bf16"), {})
    assert "precision" in leaderboard.IDENTITY and "run_key" in leaderboard.IDENTITY


@pytest.mark.parametrize("change", [dict(activation_checkpointing=True), dict(memory_format="channels_last"),
                                    dict(memory_format="auto"), dict(track=("tensorboard",)),
                                    dict(work_dir="/elsewhere")])
def test_compute_only_settings_keep_the_hash_and_the_key(change, tmp_path):
    plain, other = _final(BASE, tmp_path), _final(replace(BASE, **change), tmp_path)
    assert plain.config_hash == other.config_hash
    assert run_key(BASE, {}) == run_key(replace(BASE, **change), {})
    if "activation_checkpointing" in change or "memory_format" in change:
        assert other.cfg["custom_hooks"] and "custom_hooks" not in plain.cfg  # still applied, after the hash


@pytest.mark.parametrize("change", [dict(seed=1), dict(nproc=2), dict(lr=0.1), dict(options={"train_ratio": 0.5}),
                                    dict(feature_cache_dtype="float16"), dict(split="val")])
def test_number_changing_settings_change_the_key(change):
    assert run_key(BASE, {}) != run_key(replace(BASE, **change), {})


def test_checkpoint_bytes_and_card_version_are_in_the_key():
    assert run_key(BASE, {"": "a" * 64}) != run_key(BASE, {"": "b" * 64})
    assert run_key(BASE, {"hr": "a" * 64}) != run_key(BASE, {"s2": "a" * 64})
    assert run_key(BASE, {}, "isaid@1") != run_key(BASE, {}, "isaid@2")


def test_the_test_loop_and_distribution_are_applied_before_the_hash(tmp_path):
    one, two = _final(BASE, tmp_path), _final(replace(BASE, nproc=2), tmp_path)
    assert one.cfg["test_cfg"]["type"] == "RSBTestLoop"
    assert two.cfg["launcher"] == "pytorch" and one.config_hash != two.config_hash


def test_resolved_merges_options_once_and_fills_the_split():
    spec = RunSpec(backbone="b", task="t", options={"epochs": "3"}).resolved({"epochs": 30, "k": 1}, "test")
    assert spec.options == {"epochs": 3, "k": 1} and spec.split == "test"
    assert spec.resolved({"epochs": 30, "k": 1}, "test") == spec  # idempotent


def test_checkpoint_parts_parse():
    assert parse_checkpoints(["w.pth"]) == ("w.pth", {})
    assert parse_checkpoints(["hr=a.pth", "s2=b.pth"]) == (None, {"hr": "a.pth", "s2": "b.pth"})
    assert parse_checkpoints(["/x/a=b.pth"]) == ("/x/a=b.pth", {})  # a path with '=' stays a path
    with pytest.raises(SpecError, match="part 'hr' given twice"):
        parse_checkpoints(["hr=a.pth", "hr=b.pth"])
    with pytest.raises(SpecError, match="2 whole-backbone files"):
        parse_checkpoints(["a.pth", "b.pth"])


def test_cuda_without_a_gpu_is_one_sentence_and_no_row(tmp_path, monkeypatch):
    """``test.sh`` hides GPUs (CUDA_VISIBLE_DEVICES=''), as a machine without one."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    from rsbench.cli.main import main
    from rsbench.run.runner import run_evaluation

    spec = RunSpec(backbone="resnet50-tiny", task="aid", data_root=str(tmp_path), device="cuda")
    with pytest.raises(SpecError, match="--device cuda: .*; run with --device cpu"):
        run_evaluation(spec, results_dir=tmp_path, show_progress=False)
    result = CliRunner().invoke(main, ["run", "-b", "resnet50-tiny", "-t", "aid", "--data-root", str(tmp_path),
                                       "--device", "cuda", "--results", str(tmp_path)])
    assert result.exit_code == 2 and "--device cuda" in result.output
    assert not (tmp_path / "leaderboard.csv").exists()
