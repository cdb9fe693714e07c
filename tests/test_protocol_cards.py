"""Protocol cards: every evaluation has one with every setting sourced, and the default fine-tune
run of the tasks with an official recipe follows it (configs built on fixtures, no training)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.protocol import protocol_card as pc
from rsbench.run.spec import RunSpec
from task_configs import build_config

#: The ``TaskInfo.card`` each task declares.
CARD_PATHS = {
    "isaid": "rsbench_segmentation.cards:ISAID",
    "deepglobe-road": "rsbench_segmentation.cards:DEEPGLOBE_ROAD",
    "potsdam": "rsbench_segmentation.cards:POTSDAM",
    "earthmiss": "rsbench_segmentation.cards:EARTHMISS",
    "dyna-pla": "rsbench_segmentation.cards:DYNA_PLA",
    "dyna-s2": "rsbench_segmentation.cards:DYNA_S2",
    "dyna-mm": "rsbench_segmentation.cards:DYNA_MM",
    "dior": "rsbench_detection.cards:DIOR",
    "dior-r": "rsbench_detection.cards:DIOR_R",
    "sardet100k": "rsbench_detection.cards:SARDET100K",
    "ubcv2": "rsbench_detection.cards:UBCV2",
    "fair1m": "rsbench_detection.cards:FAIR1M",
    "whu-cd": "rsbench_change.cards:WHU_CD",
    "levir-cd": "rsbench_change.cards:LEVIR_CD",
    "oscd": "rsbench_change.cards:OSCD",
    "dfc25-t2": "rsbench_change.cards:DFC25_T2",
    "dyna-s2-cd": "rsbench_change.cards:DYNA_S2_CD",
    "aid": "rsbench_classification.cards:AID",
    "resisc45": "rsbench_classification.cards:RESISC45",
    "ben-s2": "rsbench_classification.cards:BEN_S2",
    "ben-mm": "rsbench_classification.cards:BEN_MM",
    "fmow-s2": "rsbench_classification.cards:FMOW_S2",
    "guso-reg": "rsbench_crossmodal.cards:GUSO_REG",
    "guso-trans": "rsbench_crossmodal.cards:GUSO_TRANS",
    "dfc23-t2": "rsbench_crossmodal.cards:DFC23_T2",
}
#: First-party evaluations (the test plugin's tasks are not paper evaluations).
PAPER_TASKS = sorted(t.name for t in get_catalog().tasks if t.evaluation_of)


def test_the_25_evaluations_are_exactly_the_carded_tasks():
    assert len(CARD_PATHS) == 25
    assert set(CARD_PATHS) <= set(PAPER_TASKS), sorted(set(CARD_PATHS) - set(PAPER_TASKS))
    assert set(PAPER_TASKS) <= set(CARD_PATHS), sorted(set(PAPER_TASKS) - set(CARD_PATHS))


@pytest.mark.parametrize("task", sorted(CARD_PATHS))
def test_each_card_sources_every_setting(task):
    card = pc.load_card(CARD_PATHS[task])
    assert card.task == task and card.version >= 1
    settings = card.settings()
    assert list(settings) == list(pc.SETTINGS)
    for name, s in settings.items():
        assert s.source in pc.SOURCES, (task, name)
        assert len(s.ref.strip()) > 10, (task, name, s.ref)  # a reference or a reason, not a stub
        assert s.shown() not in ("", "None"), (task, name)  # something to display
    if card.configures:  # a card that drives the config has the machine values it needs
        assert card.effective_batch.value["total"] >= card.effective_batch.value["per_process"] >= 1
        assert {"iters", "epochs"} & set(card.schedule.value)
        assert card.optimizer.value["type"] and card.lr.value > 0


@pytest.mark.parametrize("task", sorted(CARD_PATHS))
def test_each_task_declares_its_card(task):
    """The plugins' ``TaskInfo.card`` names the card (the runner's ``card`` column reads it)."""
    assert get_catalog().tasks.get(task).card == CARD_PATHS[task]


def test_a_setting_without_a_reason_or_source_is_refused():
    card = pc.load_card(CARD_PATHS["isaid"])
    with pytest.raises(pc.CardError, match="names no reason"):
        replace(card, lr=pc.harness(1e-4, "  "))
    with pytest.raises(pc.CardError, match="source 'folklore'"):
        replace(card, lr=pc.Setting(1e-4, "folklore", "someone said so"))
    with pytest.raises(pc.CardError, match="expected a Setting"):
        replace(card, lr=1e-4)
    with pytest.raises(pc.CardError, match="cannot load"):
        pc.load_card("rsbench_segmentation.cards:NOPE")


def test_render_shows_every_setting_with_its_source_as_text_and_as_a_rich_table():
    card = pc.load_card(CARD_PATHS["deepglobe-road"])
    text = pc.render(card)
    assert text.splitlines()[0] == "protocol card deepglobe-road@1"
    for label in pc.SETTINGS.values():
        assert f"  {label}" in text
    assert "[official config]" in text and "[harness default]" in text
    assert "MaRSFCN" in text  # which head the paper's number belongs to
    table = pc.render(card, rich=True)
    assert table.row_count == len(pc.SETTINGS)
    assert "MaRSFCN" in table.caption


@pytest.mark.parametrize("effective, batch, nproc, expected", [(16, 2, 1, 8), (16, 2, 8, 1), (16, 16, 1, 1),
                                                              (8, 1, 2, 4), (0, 4, 1, 1)])
def test_accumulation_keeps_the_effective_batch(effective, batch, nproc, expected):
    assert pc.accumulation(effective, batch, nproc) == expected


@pytest.mark.parametrize("effective, batch, nproc, message", [(16, 3, 1, "not a multiple"),
                                                              (16, 32, 1, "exceeds")])
def test_an_unreachable_effective_batch_is_a_clear_error(effective, batch, nproc, message):
    with pytest.raises(pc.CardError, match=message):
        pc.accumulation(effective, batch, nproc)


def test_drop_path_goes_where_each_backbone_family_takes_it():
    catalog = get_catalog()
    sky = pc.drop_path_overrides(catalog.backbone("skysense-tiny"), 0.2)
    assert sky["hr"]["drop_path_rate"] == 0.2 and sky["hr"]["window_size"] == 2  # rest of the preset kept
    assert pc.drop_path_overrides(catalog.backbone("mars-tiny"), 0.1)["encoder"]["drop_path_rate"] == 0.1
    assert pc.drop_path_overrides(catalog.backbone("vit-tiny"), 0.2)["net"]["drop_path_rate"] == 0.2
    assert pc.drop_path_overrides(catalog.backbone("resnet50-tiny"), 0.2) == {}  # CNN: not a transformer setting
    assert pc.drop_path_overrides(catalog.backbone("skysense-tiny"), None) == {}


# -- generated configs -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    catalog = get_catalog()
    out = {}
    for dataset in ("isaid", "dior", "deepglobe-road", "whu-cd", "sardet100k", "ubcv2"):
        out[dataset] = catalog.datasets.get(dataset).write_fixture(tmp_path_factory.mktemp(dataset), seed=0)
    return out


def build(task: str, backbone: str, root: Path, work: Path, **spec_kw: Any) -> tuple[dict[str, Any], Any, Any]:
    """The task's config for a resolved spec, with the card declared (independent of plugin.py)."""
    return build_config(task, backbone, root, work, info=replace(get_catalog().tasks.get(task), card=CARD_PATHS[task]),
                        **spec_kw)


def test_isaid_default_run_follows_the_skysense_config(roots, tmp_path):
    cfg, row, data = build("isaid", "skysense-tiny", roots["isaid"], tmp_path)
    ow = cfg["optim_wrapper"]
    assert ow["constructor"] == "RSBLayerDecayOptimWrapperConstructor"
    assert ow["paramwise_cfg"]["layer_decay_rate"] == 0.9 and ow["paramwise_cfg"]["num_layers"] == 24
    assert ow["optimizer"] == dict(type="AdamW", betas=(0.9, 0.999), weight_decay=0.01, lr=6e-5)
    # effective batch 16 on one process: batch 2 x 8 accumulated steps
    assert cfg["train_dataloader"]["batch_size"] == 2 and ow["accumulative_counts"] == 8
    assert cfg["model"]["backbone"]["hr"]["drop_path_rate"] == 0.2
    warm, poly = cfg["param_scheduler"]
    assert warm == dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=1500 * 8)
    assert poly["type"] == "PolyLR" and poly["end"] == cfg["train_cfg"]["max_iters"] == 80000 * 8
    types = [t["type"] for t in cfg["train_dataloader"]["dataset"]["pipeline"]]
    assert types == ["RSBLoadSample", "RandomResize", "RandomCrop", "RandomFlip", "PhotoMetricDistortion",
                     "PackSegInputs"]
    assert "card isaid@1 (effective batch 16 = 2 x 1 process(es) x 8 accumulation" in row["adapter"]


def test_isaid_on_eight_processes_needs_no_accumulation(roots, tmp_path):
    cfg, _, _ = build("isaid", "skysense-tiny", roots["isaid"], tmp_path, nproc=8)
    assert "accumulative_counts" not in cfg["optim_wrapper"] and cfg["train_cfg"]["max_iters"] == 80000
    assert cfg["param_scheduler"][0]["end"] == 1500


def test_a_shortened_run_keeps_the_harness_short_run_settings(roots, tmp_path):
    cfg, row, _ = build("isaid", "skysense-tiny", roots["isaid"], tmp_path, max_iters=100, batch_size=4)
    ow = cfg["optim_wrapper"]
    assert "constructor" not in ow and "accumulative_counts" not in ow
    assert "drop_path_rate" not in cfg["model"]["backbone"]["hr"] or \
        cfg["model"]["backbone"]["hr"]["drop_path_rate"] == 0.0  # the preset's
    assert cfg["param_scheduler"][0]["end"] == 10 and "card" not in row["adapter"]


@pytest.mark.parametrize("task", ["dior", "dior-r"])
def test_dior_default_runs_follow_the_skysense_dior_config(roots, tmp_path, task):
    cfg, row, data = build(task, "skysense-tiny", roots["dior"], tmp_path)
    ow = cfg["optim_wrapper"]
    assert ow["paramwise_cfg"]["layer_decay_rate"] == 0.9 and ow["optimizer"]["lr"] == 1e-4
    assert ow["optimizer"]["weight_decay"] == 0.05 and ow["accumulative_counts"] == 8  # 8 = 1 x 8
    assert cfg["train_dataloader"]["batch_size"] == 1
    assert cfg["model"]["backbone"]["hr"]["drop_path_rate"] == 0.2
    n = len(data.train)
    assert cfg["train_cfg"]["max_iters"] == 12 * n  # 12 epochs of batch-1 iterations
    warm, steps = cfg["param_scheduler"]
    assert warm["end"] == min(1000 * 8, 12 * n) and warm["start_factor"] == 0.001
    assert steps["milestones"] == [8 * n, 11 * n]
    assert f"card {task}@1" in row["adapter"]


def test_options_the_run_changes_override_the_card(roots, tmp_path):
    cfg, row, data = build("dior", "skysense-tiny", roots["dior"], tmp_path, options=dict(epochs=24, batch_size=4))
    n = -(-len(data.train) // 4)  # iterations per epoch at batch 4
    assert cfg["train_dataloader"]["batch_size"] == 4 and cfg["optim_wrapper"]["accumulative_counts"] == 2
    assert cfg["train_cfg"]["max_iters"] == 24 * n
    assert cfg["param_scheduler"][1]["milestones"] == [16 * n, 22 * n]  # the card's 8/12 and 11/12 kept


@pytest.mark.parametrize("task, dataset, batch, accumulate, epochs, step, optimizer", [
    ("deepglobe-road", "deepglobe-road", 6, 1, 80, 20, "Adam"),
    ("whu-cd", "whu-cd", 8, 1, 100, 25, "Adam"),
    ("sardet100k", "sardet100k", 2, 8, 12, None, "AdamW"),  # effective 16 = mmdet's 2 x 8 GPUs
    ("ubcv2", "ubcv2", 4, 1, 12, None, "AdamW"),
])
def test_mars_task_default_runs_follow_the_released_code(roots, tmp_path, task, dataset, batch, accumulate, epochs,
                                                         step, optimizer):
    cfg, row, data = build(task, "mars-tiny", roots[dataset], tmp_path)
    ow = cfg["optim_wrapper"]
    assert ow["optimizer"]["type"] == optimizer and ow["optimizer"]["lr"] == 1e-4
    assert "constructor" not in ow  # no layer decay in MaRS' released recipes
    assert cfg["train_dataloader"]["batch_size"] == batch
    assert ow.get("accumulative_counts", 1) == accumulate
    assert cfg["model"]["backbone"]["encoder"]["drop_path_rate"] == 0.1
    per_epoch = -(-len(data.train) // batch)
    assert cfg["train_cfg"]["max_iters"] == per_epoch * epochs
    sched = cfg["param_scheduler"]
    if step is not None:  # StepLR every epochs // 4, no warmup
        assert [s["type"] for s in sched] == ["StepLR"] and sched[0]["step_size"] == step * per_epoch
        loss = cfg["model"]["decode_head"]["loss_decode"]
        assert [(l["type"], l["loss_weight"]) for l in loss] == [("CrossEntropyLoss", 0.5), ("DiceLoss", 0.5)]
    else:  # mmdet schedule_1x: 500-iteration warmup from 0.001
        assert sched[0]["type"] == "LinearLR" and sched[0]["end"] == min(500 * accumulate, per_epoch * epochs)
    assert f"card {task}@1" in row["adapter"]


# -- the layer-decay constructor on the real backbones ---------------------------------------------------
def _optimizer_groups(backbone_name: str, **extra: Any) -> dict[str, float]:
    import torch
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS

    import rsbench.protocol.layer_decay  # noqa: F401  (registers the constructor)

    catalog = get_catalog()
    info = catalog.backbone(backbone_name)
    info.register_type()

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = MODELS.build(info.config(**extra))
            self.decode_head = torch.nn.Conv2d(4, 2, 1)

    card = pc.load_card(CARD_PATHS["isaid"])
    p = pc.Plan(batch=2, nproc=1, accumulate=8, max_iters=10, warmup_iters=0, lr=1.0)
    wrapper = build_optim_wrapper(Net(), pc.optim_wrapper(card, p))
    assert wrapper._accumulative_counts == 8
    return {g["param_name"]: (g["lr"], g["weight_decay"]) for g in wrapper.optimizer.param_groups}


def test_layer_decay_numbers_skysense_swinv2_blocks_by_depth():
    groups = _optimizer_groups("skysense-tiny", s2=None, s1=None, fusion=None, prototypes=None)
    # skysense-tiny's SwinV2: depths 2-2-6-2 -> 12 layers, top depth 13
    patch = next(v for k, v in groups.items() if k.startswith("backbone.encoders.hr.patch_embed"))
    assert patch[0] == pytest.approx(0.9 ** 13)
    first = next(v for k, v in groups.items() if k.startswith("backbone.encoders.hr.stages.0.blocks.0."))
    last = next(v for k, v in groups.items() if k.startswith("backbone.encoders.hr.stages.3.blocks.1."))
    merge = next(v for k, v in groups.items() if k.startswith("backbone.encoders.hr.stages.1.downsample."))
    assert first[0] == pytest.approx(0.9 ** 12) and last[0] == pytest.approx(0.9 ** 1)
    assert merge[0] == pytest.approx(0.9 ** 11)  # after stage 0's two blocks, before stage 1's
    assert groups["decode_head.weight"][0] == pytest.approx(1.0)
    norms = [v for k, v in groups.items() if ".norm" in k and k.startswith("backbone.")]
    assert norms and all(wd == 0.0 for _, wd in norms)
    assert groups["decode_head.weight"][1] == 0.01


def test_layer_decay_numbers_mars_timm_encoders_by_depth():
    groups = _optimizer_groups("mars-tiny")
    # mars-tiny: timm SwinV2 features_only, depths 2-2-2-2 -> top depth 9, names layers_<i>
    for m in ("hr", "sar"):
        patch = next(v for k, v in groups.items() if k.startswith(f"backbone.encoders.{m}.patch_embed"))
        block = next(v for k, v in groups.items() if k.startswith(f"backbone.encoders.{m}.layers_2.blocks.1."))
        assert patch[0] == pytest.approx(0.9 ** 9) and block[0] == pytest.approx(0.9 ** 3)
    other = [k for k in groups if k.startswith("backbone.") and not k.startswith("backbone.encoders.")]
    assert all(groups[k][0] == pytest.approx(1.0) for k in other)  # MMA and fusion: full LR


def test_layer_decay_leaves_a_cnn_at_the_base_lr():
    groups = _optimizer_groups("resnet50-tiny")
    assert {round(lr, 6) for lr, _ in groups.values()} == {1.0}


def test_the_card_as_json_data_round_trips():
    import json

    data = json.loads(json.dumps(pc.as_dict(pc.load_card(CARD_PATHS["isaid"]))))
    assert data["id"] == "isaid@1" and data["configures"] is True
    decay = data["settings"]["layer_decay"]
    assert decay["value"] == {"rate": 0.9, "num_layers": 24} and decay["source"] == "official config"
    assert decay["text"] == "0.9 over 24 layers (SwinV2/ViT encoders; CNNs: none)" and "isaid" in decay["ref"]
    assert set(data["settings"]) == set(pc.SETTINGS)


def test_the_row_record_says_when_a_card_was_not_applied():
    card = pc.load_card(CARD_PATHS["isaid"])
    spec = RunSpec(backbone="skysense-tiny", task="isaid")
    assert pc.applied(card, spec) == "isaid@1" and pc.applies(card, spec)
    assert pc.applied(card, replace(spec, max_iters=100)) == "isaid@1 (not applied: --max-iters, a shortened run)"
    assert pc.applied(card, replace(spec, protocol="frozen")) == "isaid@1 (not applied: protocol frozen)"
    assert not pc.applies(pc.load_card(CARD_PATHS["potsdam"]), spec)  # documents the task's own defaults
