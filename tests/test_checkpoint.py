"""Weights-only checkpoint reading and key-checked loading."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rsbench.errors import CheckpointError
from rsbench.io.checkpoint import load_into, read_state_dict


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


@pytest.mark.parametrize("wrap", [lambda sd: sd, lambda sd: {"state_dict": sd}, lambda sd: {"model": sd, "epoch": 3},
                                  lambda sd: {"state_dict": {f"backbone.{k}": v for k, v in sd.items()} | {"head.w": torch.ones(1)}}])
def test_wrappers_and_backbone_prefix_are_unwrapped(tmp_path, wrap):
    sd = _net().state_dict()
    torch.save(wrap(sd), tmp_path / "w.pth")
    loaded = read_state_dict(tmp_path / "w.pth")
    assert set(loaded) == set(sd)


def test_safetensors_are_read(tmp_path):
    from safetensors.torch import save_file

    sd = {k: v.contiguous() for k, v in _net().state_dict().items()}
    save_file(sd, str(tmp_path / "w.safetensors"))
    assert set(read_state_dict(tmp_path / "w.safetensors")) == set(sd)


class Evil:
    """Any class outside torch's allow-list stands for arbitrary pickled code."""


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"w": torch.ones(1), "obj": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="evil.pth: cannot be read as a weights-only state dict"):
        read_state_dict(tmp_path / "evil.pth")


def test_missing_file_and_non_tensor_content_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="nope.pth: no such file"):
        read_state_dict(tmp_path / "nope.pth")
    torch.save({"a": 1}, tmp_path / "ints.pth")
    with pytest.raises(CheckpointError, match="ints.pth: expected a mapping of parameter names to tensors"):
        read_state_dict(tmp_path / "ints.pth")


def test_strict_loading_reports_missing_unexpected_and_shape_mismatch():
    net = _net()
    sd = dict(net.state_dict())
    sd.pop("1.weight")
    sd["extra"] = torch.zeros(1)
    sd["0.bias"] = torch.zeros(7)
    with pytest.raises(CheckpointError) as err:
        load_into(net, sd, strict=True, source="ckpt")
    text = str(err.value)
    assert "1 missing: 1.weight" in text and "1 unexpected: extra" in text and "0.bias (7,) vs model (4,)" in text
    before = net[0].weight.clone()
    sd["0.weight"] = torch.full_like(before, 2.0)
    report = load_into(net, sd, strict=False)
    assert not report.clean and torch.all(net[0].weight == 2.0)


def test_interval_checkpoints_are_throttled_but_the_final_one_is_always_written(monkeypatch):
    from types import SimpleNamespace

    from rsbench.run import resume
    clock = [0.0]
    monkeypatch.setattr(resume.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(resume.CheckpointHook, "_save_checkpoint", lambda self, runner: None)

    def run(min_seconds: float, seconds_per_iter: float) -> int:
        hook = resume.ThrottledCheckpointHook(min_seconds=min_seconds, by_epoch=False, interval=2, save_last=True)
        runner = SimpleNamespace(iter=0, max_iters=8, train_loop=SimpleNamespace(max_iters=8),
                                 logger=SimpleNamespace(info=lambda *a: None))
        hook._last_save = clock[0]
        for it in range(8):
            runner.iter = it
            clock[0] += seconds_per_iter
            hook.after_train_iter(runner, it)
        return hook.saves

    assert run(min_seconds=60, seconds_per_iter=1) == 1  # a short run: only the final save
    assert run(min_seconds=60, seconds_per_iter=100) == 4  # a long one: every interval (2, 4, 6, 8)
    assert run(min_seconds=0, seconds_per_iter=0) == 4


def test_report_records_loaded_not_used_and_fresh_keys():
    from rsbench.io.checkpoint import loaded_from

    net = nn.Sequential(_net(), nn.Conv2d(4, 2, 1))
    sd = {k: v for k, v in net.state_dict().items() if not k.startswith("1.")}
    report = load_into(net, sd, strict=True, source="ckpt", path="/w.pth", not_used=["mask_token"], fresh=("1.",))
    assert report.clean and report.not_used == ["mask_token"] and "1 not used: mask_token" in report.summary()
    assert report.loaded == sorted(sd)
    assert loaded_from(net[0][0].weight) == "/w.pth" and loaded_from(net[1].weight) is None
    with pytest.raises(CheckpointError, match="2 missing: 1.bias, 1.weight"):
        load_into(net, sd, strict=True)
