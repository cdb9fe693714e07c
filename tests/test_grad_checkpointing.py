"""Activation checkpointing (``RSBackbone.set_grad_checkpointing``) on every cheap backbone:
same outputs, gradients and state as without it, recomputation in backward only while training
with grad, and the block counts of the paper-size presets (counted on the meta device)."""

from __future__ import annotations

import copy

import pytest
import torch
from mmengine.registry import MODELS
from torch import nn

from rsbench.errors import RsbenchError
from rsbench.plugin_api.backbone import RSBackbone, build_on_meta
from rsbench.plugin_api.plugin_host import get_catalog, list_backbones

#: timm backbones through the ``timm:`` prefix: one per block layout (Sequential stages,
#: ``blocks`` containers in stages, a ViT behind timm's FeatureGetterNet) -> build overrides.
TIMM = {
    "timm:resnet18": {},
    "timm:convnext_atto": {},
    "timm:vit_tiny_patch16_224": dict(timm_kwargs=dict(img_size=32)),
}
CHEAP = [n for n in list_backbones() if get_catalog().backbone(n).tiny] + list(TIMM)
#: Blocks checkpointed in the paper-size presets (e.g. SkySense: Swin-H 2+2+18+2, two ViT-L x 24,
#: fusion 24; MaRS: two Swin-V2-B 2+2+18+2, plus 4 MMA layers in mars-mma).
PAPER_BLOCKS = {"skysense": 96, "skysense-hr": 24, "mars": 48, "mars-mma": 52, "resnet50": 16, "vit-b": 12, "swin-b": 24}


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """One intra-op thread for this module (see conftest)."""


def _build(name: str) -> tuple[RSBackbone, int]:
    info = get_catalog().backbone(name)
    info.register_type()
    overrides = TIMM.get(name, {})
    torch.manual_seed(0)
    model = MODELS.build(info.config(**overrides))
    model.init_weights()
    return model, 32 if overrides else info.test_size


def _step(model: nn.Module, inputs) -> tuple[torch.Tensor, ...]:
    """One forward and backward from a fixed seed (drop path draws the same masks)."""
    torch.manual_seed(1)
    outs = model(inputs)
    sum((o.float() ** 2).mean() for o in outs).backward()
    return tuple(o.detach() for o in outs)


@pytest.mark.parametrize("name", CHEAP)
def test_checkpointing_keeps_outputs_gradients_and_state(name):
    model, size = _build(name)
    twin = copy.deepcopy(model)
    keys = list(twin.state_dict())
    blocks = list(twin.checkpoint_blocks())
    assert twin.set_grad_checkpointing(True) == len(blocks) > 0 and twin.grad_checkpointing
    assert list(twin.state_dict()) == keys
    torch.manual_seed(2)
    inputs = model.example_inputs(2, size)

    ref, got = _step(model.train(), inputs), _step(twin.train(), inputs)
    for a, b in zip(ref, got, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    grads = [(n, p.grad, q.grad) for (n, p), (_, q) in zip(model.named_parameters(), twin.named_parameters())]
    assert any(g is not None for _, g, _ in grads)
    for n, g, h in grads:
        assert (g is None) == (h is None), n
        if g is not None:
            torch.testing.assert_close(h, g, rtol=1e-5, atol=1e-6, msg=lambda m, n=n: f"{n}: {m}")
    # Buffers too: BatchNorm running statistics count the batch once, recomputation or not.
    for (n, a), (_, b) in zip(model.state_dict().items(), twin.state_dict().items(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=lambda m, n=n: f"{n}: {m}")

    model.eval(), twin.eval()
    with torch.no_grad():
        for a, b in zip(model(inputs), twin(inputs), strict=True):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def _count_block_runs(model: RSBackbone) -> tuple[list[int], list]:
    """A counter per block, ticked by the block's first module with parameters of its own
    (the block itself is called once; its inside runs again when recomputed)."""
    counts: list[int] = []
    handles = []
    for i, block in enumerate(model.checkpoint_blocks()):
        inner = next(m for m in block.modules() if m is not block and any(True for _ in m.parameters(recurse=False)))
        counts.append(0)
        handles.append(inner.register_forward_hook(lambda *_, i=i: counts.__setitem__(i, counts[i] + 1)))
    return counts, handles


@pytest.mark.parametrize("name", CHEAP)
def test_blocks_are_recomputed_only_while_training_with_grad(name):
    model, size = _build(name)
    torch.manual_seed(2)
    inputs = model.example_inputs(2, size)
    counts, _ = _count_block_runs(model)

    def runs(train: bool, grad: bool = True) -> list[int]:
        counts[:] = [0] * len(counts)
        model.train(train)
        with torch.set_grad_enabled(grad):
            outs = model(inputs)
            if grad:
                sum(o.mean() for o in outs).backward()
        return list(counts)

    plain = runs(train=True)
    assert sum(plain) > 0
    model.set_grad_checkpointing(True)
    assert runs(train=True) == [2 * n for n in plain]
    assert runs(train=False) == plain
    assert runs(train=True, grad=False) == plain
    with torch.inference_mode():
        assert runs(train=True, grad=False) == plain
    assert model.set_grad_checkpointing(False) == len(counts) and not model.grad_checkpointing
    assert not any("forward" in vars(b) for b in model.checkpoint_blocks())
    assert runs(train=True) == plain


def test_a_deep_copy_recomputes_its_own_blocks():
    """EMA hooks deep-copy the model: the copy's blocks must run the copy's weights."""
    model, size = _build("vit-tiny")
    model.set_grad_checkpointing(True)
    twin = copy.deepcopy(model)
    counts, _ = _count_block_runs(model)  # on the original only (hooks would be copied too)
    _step(twin.train(), twin.example_inputs(2, size))
    assert counts == [0] * len(counts)
    assert all(b.forward.args[0] is b for b in twin.checkpoint_blocks())


@pytest.mark.parametrize("name", sorted(PAPER_BLOCKS))
def test_paper_size_block_counts(name):
    """Counted on the meta device: nothing of the (up to 2B) parameters is allocated."""
    info = get_catalog().backbone(name)
    info.register_type()
    assert build_on_meta(info.config()).set_grad_checkpointing(True) == PAPER_BLOCKS[name]


def test_a_backbone_without_blocks_is_named():
    class Blockless(RSBackbone):
        pass

    with pytest.raises(RsbenchError, match="Blockless names no blocks"):
        Blockless().set_grad_checkpointing(True)
    info = get_catalog().backbone("timm:vgg11")
    info.register_type()
    with pytest.raises(RsbenchError, match="timm:vgg11: no repeated blocks"):
        build_on_meta(info.config()).set_grad_checkpointing(True)


@pytest.mark.slow
def test_the_run_option_checkpoints_the_backbone_and_keeps_the_metrics(aid_root, tmp_path):
    """``RunSpec.activation_checkpointing`` end to end: the hook turns it on, the config hash
    leaves it out (it changes no value), and a short fine-tuning run gives the same metrics as without it."""
    import json

    from rsbench.run.runner import run_evaluation
    from rsbench.run.spec import RunSpec

    rows, metrics = [], []
    for on in (False, True):
        work = tmp_path / f"work-{on}"
        spec = RunSpec(backbone="resnet50-tiny", task="aid", data_root=str(aid_root), max_iters=6,
                       activation_checkpointing=on, work_dir=str(work))
        # its own leaderboard: with the same run key the second would be found already done
        outcome = run_evaluation(spec, results_dir=tmp_path / f"results-{on}", show_progress=False)
        assert outcome.status == "ok", outcome.row["error"]
        rows.append(outcome.row)
        metrics.append(json.loads((work / "metrics.json").read_text()))
    assert metrics[0] == metrics[1]
    assert rows[0]["config_hash"] == rows[1]["config_hash"]  # same values: not in the hash
    assert "RSBActivationCheckpointHook" in (tmp_path / "work-True" / "config.py").read_text()
