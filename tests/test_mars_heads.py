"""``head=mars`` on whu-cd and deepglobe-road: MaRS' released decoders (WanderRainy/MaRS@5da1a5a,
``downtasks/terratorch/changemodel.py`` and ``segmodel.py``) as mmseg heads, the released recipe in
the generated config, the paper numbers attached to that head only, and a short run of each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rsbench.errors import SpecError
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.protocol import protocol_card as pc
from rsbench.run.spec import RunSpec
from task_configs import build_config

TASKS = {"whu-cd": "RSBMaRSChangeHead", "deepglobe-road": "RSBMaRSFCNHead"}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """One intra-op thread for this module (see conftest)."""


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    catalog = get_catalog()
    return {t: catalog.datasets.get(t).write_fixture(tmp_path_factory.mktemp(t), seed=0) for t in TASKS}


def build(task: str, backbone: str, root: Path, work: Path, **spec_kw: Any) -> tuple[dict[str, Any], Any, Any]:
    """The task's config for a resolved spec, as the runner builds it (no training)."""
    return build_config(task, backbone, root, work, **spec_kw)


# -- the decoders against the released architecture ----------------------------------------------------
def _head(cfg: dict[str, Any]) -> Any:
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import rsbench_change.mars_cd_head  # noqa: F401  (registers both heads)

    init_default_scope("mmseg")
    return MODELS.build(cfg)


def _conv(out: int, inp: int, k: int, transposed: bool = False) -> list[tuple[int, ...]]:
    """Weight and bias shapes of a released nn.Conv2d / nn.ConvTranspose2d (bias kept)."""
    return [(inp, out, k, k) if transposed else (out, inp, k, k), (out,)]


def _bn(c: int) -> list[tuple[int, ...]]:
    return [(c,), (c,)]


def _up_block(inp: int, out: int) -> list[tuple[int, ...]]:
    """The released DecoderBlock: 1x1 to in/4, deconv 3x3 x2, 1x1 to out, BN after each."""
    q = inp // 4
    return _conv(q, inp, 1) + _bn(q) + _conv(q, q, 3, True) + _bn(q) + _conv(out, q, 1) + _bn(out)


def _shapes(module: Any) -> list[tuple[int, ...]]:
    """Parameter shapes in the released order (mmseg registers the classifier ``conv_seg`` first)."""
    params = dict(module.named_parameters())
    seg = [tuple(params.pop(k).shape) for k in ("conv_seg.weight", "conv_seg.bias")]
    return [tuple(p.shape) for p in params.values()] + seg


def _losses(sigmoid: bool) -> list[dict[str, Any]]:
    return [dict(type="CrossEntropyLoss", use_sigmoid=sigmoid, loss_weight=0.5, loss_name="loss_ce"),
            dict(type="DiceLoss", use_sigmoid=sigmoid, activate=False, naive_dice=True, loss_weight=0.5,
                 loss_name="loss_dice")]


def test_change_head_is_the_released_mars_change_decoder():
    import torch

    mars = get_catalog().backbone("mars")
    width, stride = mars.out_channels[-1], mars.out_strides[-1]
    assert (width, stride) == (1024, 32)  # feat_dim 1024, upsample_times 5 in the release's mars_change
    head = _head(dict(type="RSBMaRSChangeHead", in_channels=2 * width, in_index=3, upsample_times=5, num_classes=2,
                      out_channels=1, threshold=0.5, norm_cfg=dict(type="BN"), loss_decode=_losses(True)))
    released = (_conv(256, 2 * width, 3) + _bn(256) + _conv(256, 256, 3) + _bn(256)  # CDBlock on the concat
                + _up_block(256, 128) + _up_block(128, 64) + _up_block(64, 32) + _up_block(32, 32)
                + _up_block(32, 32) + _conv(1, 32, 1))  # widths halve to >= 32, then one logit
    assert _shapes(head) == released
    head.eval()
    feats = [torch.zeros(1, 1, 1, 1)] * 3 + [torch.randn(1, 2 * width, 2, 2)]
    with torch.no_grad():
        assert head(feats).shape == (1, 1, 64, 64)  # x32: back to the input size


def test_fcn_head_is_the_released_marsfcn_on_the_last_stage_only():
    import torch

    widths = list(get_catalog().backbone("mars").out_channels)
    head = _head(dict(type="RSBMaRSFCNHead", in_channels=widths, in_index=[0, 1, 2, 3], num_classes=2,
                      norm_cfg=dict(type="BN"), loss_decode=_losses(False)))
    c1, c2, c3, c4 = widths
    released = (_up_block(c4, c3) + _up_block(c3, c2) + _up_block(c2, c1) + _up_block(c1, c1)
                + _conv(32, c1, 3, True) + _conv(32, 32, 3) + _conv(2, 32, 1))
    assert _shapes(head) == released
    head.eval()
    feats = [torch.randn(1, c, 64 // s, 64 // s) for c, s in zip(widths, (4, 8, 16, 32))]
    with torch.no_grad():
        out = head(feats)
        other = head([torch.randn_like(f) for f in feats[:3]] + feats[3:])
    assert out.shape == (1, 2, 64, 64)
    assert torch.equal(out, other)  # the released skip additions are commented out: stage 4 alone


def _samples(label: Any) -> list[Any]:
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    out = []
    for lab in label:
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=lab[None])
        out.append(s)
    return out


def test_one_logit_dice_scores_the_change_class_and_skips_ignored_pixels():
    """mmseg's DiceLoss alone would one-hot a one-channel target as class 0; the head hands it the
    change class, and ignored pixels count in neither loss."""
    import torch

    head = _head(dict(type="RSBMaRSChangeHead", in_channels=8, in_index=0, upsample_times=0, num_classes=2,
                      out_channels=1, threshold=0.5, loss_decode=_losses(True)))
    label = torch.zeros(2, 16, 16, dtype=torch.long)
    label[:, 4:10] = 1
    right = (label.float() * 2 - 1)[:, None] * 20  # confident and correct everywhere
    losses = head.loss_by_feat(right, _samples(label))
    assert losses["loss_ce"] < 1e-3 and losses["loss_dice"] < 1e-3 and float(losses["acc_seg"]) == 100.0
    assert head.loss_by_feat(-right, _samples(label))["loss_dice"] > 0.45  # inverted: Dice near its weight 0.5
    ignored = label.clone()
    ignored[:, :2] = 255
    wrong_there = right.clone()
    wrong_there[:, :, :2] = 20  # wrong, but only where the label is ignored
    kept = head.loss_by_feat(wrong_there, _samples(ignored))
    assert kept["loss_ce"] < 1e-3 and kept["loss_dice"] < 1e-3


def test_two_class_dice_is_per_class_over_the_batch_as_released():
    """segmentation_models_pytorch's multiclass Dice: a thin road class missed entirely costs half
    the Dice term, however much background is right (mmseg's joint Dice would barely notice)."""
    import torch

    head = _head(dict(type="RSBMaRSFCNHead", in_channels=[8, 8, 8, 8], in_index=[0, 1, 2, 3], num_classes=2,
                      loss_decode=_losses(False)))
    label = torch.zeros(2, 32, 32, dtype=torch.long)
    label[:, 10:12] = 1  # a road of 2 rows in 32
    background_only = torch.stack([torch.full((2, 32, 32), 20.0), torch.full((2, 32, 32), -20.0)], dim=1)
    dice = float(head.loss_by_feat(background_only, _samples(label))["loss_dice"])
    background = 1 - 2 * 30 / (32 + 30)  # naive Dice: 2|X∩Y| / (|X| + |Y|) per row of 32 pixels
    assert dice == pytest.approx(0.5 * (1.0 + background) / 2, abs=1e-3)  # weight 0.5 x mean over road, background
    no_road = torch.zeros_like(label)
    assert float(head.loss_by_feat(background_only, _samples(no_road))["loss_dice"]) < 1e-3  # absent class: 0


def test_a_dice_loss_the_head_cannot_mask_is_refused():
    with pytest.raises(ValueError, match="activate=False"):
        _head(dict(type="RSBMaRSFCNHead", in_channels=[8, 8, 8, 8], in_index=[0, 1, 2, 3], num_classes=2,
                   loss_decode=[dict(type="DiceLoss", use_sigmoid=False)]))


# -- the generated configs ------------------------------------------------------------------------------
@pytest.mark.parametrize("task, batch, epochs, step", [("whu-cd", 8, 100, 25), ("deepglobe-road", 6, 80, 20)])
def test_head_mars_config_follows_the_released_recipe(roots, tmp_path, task, batch, epochs, step):
    cfg, row, data = build(task, "mars-tiny", roots[task], tmp_path, options=dict(head="mars"))
    ow = cfg["optim_wrapper"]
    assert ow["optimizer"] == dict(type="Adam", betas=(0.9, 0.999), weight_decay=0.0, lr=1e-4)
    assert "constructor" not in ow and ow.get("accumulative_counts", 1) == 1
    per_epoch = -(-len(data.train) // batch)
    assert cfg["train_dataloader"]["batch_size"] == batch and cfg["train_cfg"]["max_iters"] == epochs * per_epoch
    assert [(s["type"], s["step_size"], s["gamma"]) for s in cfg["param_scheduler"]] == \
        [("StepLR", step * per_epoch, 0.5)]  # StepLR(epochs // 4, 0.5), stepped by iteration
    model = cfg["model"]
    head = model["decode_head"]
    assert head["type"] == TASKS[task] and "auxiliary_head" not in model
    loss = [(l["type"], l["use_sigmoid"], l["loss_weight"]) for l in head["loss_decode"]]
    n_rgb = 6 if task == "whu-cd" else 3
    assert model["data_preprocessor"]["mean"] == model["data_preprocessor"]["std"] == [127.5] * n_rgb
    assert model["backbone"]["encoder"]["drop_path_rate"] == 0.1
    assert f"card {task}/head=mars@1" in row["adapter"] and "head=mars" in row["adapter"]
    assert "0.5 on 0-1 pixels" in row["normalization"]
    if task == "whu-cd":  # one logit: 0.5 BCE + 0.5 Dice, sigmoid > 0.5; no gradient clipping
        assert loss == [("CrossEntropyLoss", True, 0.5), ("DiceLoss", True, 0.5)]
        assert (head["out_channels"], head["threshold"], head["upsample_times"]) == (1, 0.5, 5)
        assert head["in_channels"] == 2 * 256 and head["in_index"] == 3  # mars-tiny's last stage, both dates
        assert model["neck"]["policy"] == "concat" and "clip_grad" not in ow
    else:  # two classes: 0.5 CE + 0.5 Dice; sliding window stride = crop; the released augmentation
        assert loss == [("CrossEntropyLoss", False, 0.5), ("DiceLoss", False, 0.5)]
        assert head["in_channels"] == [32, 64, 128, 256] and head["num_classes"] == 2
        assert model["test_cfg"] == dict(mode="slide", crop_size=(512, 512), stride=(512, 512))
        assert "RandomRotate" in [t["type"] for t in cfg["train_dataloader"]["dataset"]["pipeline"]]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_the_default_head_config_is_the_uniform_one_and_unchanged(roots, tmp_path, task):
    cfg, row, _ = build(task, "mars-tiny", roots[task], tmp_path)
    again, _, _ = build(task, "mars-tiny", roots[task], tmp_path, options=dict(head="uniform"))
    assert cfg == again
    model = cfg["model"]
    assert model["decode_head"]["type"] == "UPerHead"
    assert model["data_preprocessor"]["mean"][:3] == [123.675, 116.28, 103.53]  # ImageNet
    assert f"card {task}@1 (" in row["adapter"] and "head=mars" not in row["adapter"]
    if task == "whu-cd":
        assert cfg["optim_wrapper"]["clip_grad"] == dict(max_norm=5.0)
    else:
        assert model["auxiliary_head"]["type"] == "FCNHead"


def test_an_unknown_head_is_a_clear_error(roots, tmp_path):
    with pytest.raises(SpecError, match="--option head=upernet: task 'whu-cd' offers head uniform or mars"):
        build("whu-cd", "mars-tiny", roots["whu-cd"], tmp_path, options=dict(head="upernet"))


# -- the cards and the paper numbers --------------------------------------------------------------------
def test_each_head_card_sources_every_setting_and_the_task_card_names_it():
    for task in ("whu-cd", "deepglobe-road"):
        info = get_catalog().tasks.get(task)
        card, mars = pc.task_card(info), pc.task_card(info, {"head": "mars"})
        assert pc.variant_cards(info) == {"head=mars": mars}
        assert mars.id == f"{task}/head=mars@1" and mars.configures
        for name, s in mars.settings().items():
            assert s.source in pc.SOURCES and len(s.ref.strip()) > 10, (task, name)
        assert mars.head.source == pc.OFFICIAL and card.head.source == pc.HARNESS
        assert "this head" in mars.paper_head
        # rsbench info task shows the uniform card: it says which head the paper's number belongs to
        text = pc.render(card)
        assert "belongs to head=mars" in card.paper_head and f"card {task}/head=mars@1" in text


def test_the_mars_paper_numbers_compare_only_with_head_mars_runs():
    from rsbench.results.aggregate import read_paper, setting_differences

    paper = read_paper(REPO / "results" / "paper_results.csv")
    for task, value in (("whu-cd", "87.02"), ("deepglobe-road", "68.44")):
        row = paper[(paper["task"] == task) & (paper["backbone"] == "mars")]
        assert list(row["value"]) == [value] and list(row["setting"]) == ["head=mars"]
        options = dict(get_catalog().tasks.get(task).options)
        assert setting_differences("head=mars", json.dumps(options)) == ["head=uniform (paper: head=mars)"]
        assert setting_differences("head=mars", json.dumps(dict(options, head="mars"))) == []


# -- short runs -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task, backbone", [("whu-cd", "resnet50-tiny"), ("deepglobe-road", "mars-tiny")])
def test_a_short_head_mars_run_ends_ok(roots, tmp_path, task, backbone):
    from rsbench.run.runner import run_evaluation

    info = get_catalog().tasks.get(task)
    spec = RunSpec(backbone=backbone, task=task, data_root=str(roots[task]), work_dir=str(tmp_path / "work"),
                   options=dict(info.smoke_options, head="mars"), max_iters=4, batch_size=2)
    outcome = run_evaluation(spec, results_dir=tmp_path / "results", show_progress=False)
    assert outcome.status == "ok", outcome.row["error"]
    assert 0.0 <= float(outcome.row["value"]) <= 100.0
    assert "head=mars" in outcome.row["adapter"] and json.loads(outcome.row["options"])["head"] == "mars"
    assert "not applied: --max-iters" in outcome.row["card"]


def test_the_rows_card_and_run_identity_follow_the_head_option():
    """The row's ``card`` names the variant a head=mars run follows, so its identity differs too."""
    from rsbench.run.runner import card_record
    from rsbench.run.spec import RunSpec

    info = get_catalog().tasks.get("whu-cd")
    spec = RunSpec(backbone="mars", task="whu-cd", options=dict(head="mars")).resolved_for(info)
    assert card_record(info, spec) == "whu-cd/head=mars@1"
    assert card_record(info, RunSpec(backbone="mars", task="whu-cd").resolved_for(info)) == "whu-cd@1"
