"""Input rules as data (rsbench.protocol.input_rules): every registered backbone x task pair is checked at
its default and smoke options without building a model; a run on data smaller than a backbone's
minimum adapts (scene classification) instead of failing at the first forward."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from rsbench import hookimpl
from rsbench.errors import SpecError
from rsbench.plugin_api.checked_data import CheckedData
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.protocol import input_rules

CATALOG = get_catalog()
PAIRS = [(b.name, t.name) for b in CATALOG.backbones for t in CATALOG.tasks]


def _native(size: int) -> CheckedData:
    """Checked data whose images are ``size`` px on their longer side."""
    return CheckedData(root=Path("."), classes=(), split="test", options={}, native_size=size)


def _options(task, mode: str) -> dict:
    return {**task.options, **(task.smoke_options if mode == "smoke" else {})}


def _fits(backbone, task, options) -> list[str]:
    """As rsbench.run.runner.modality_fit (not imported: it pulls the runner's dependencies)."""
    return [m for m, bands in task.provided_modalities(options).items()
            if m in backbone.modalities and set(backbone.modalities[m]) <= set(bands)]


def _outcome(backbone_name: str, task_name: str, mode: str):
    backbone, task = CATALOG.backbone(backbone_name), CATALOG.tasks.get(task_name)
    options = _options(task, mode)
    fits = _fits(backbone, task, options)
    try:
        return backbone, task, fits, input_rules.check(backbone, task, options, fits)
    except SpecError as exc:
        return backbone, task, fits, exc


@pytest.mark.parametrize("mode", ["default", "smoke"])
@pytest.mark.parametrize("backbone_name,task_name", PAIRS)
def test_every_pair_feeds_sizes_the_backbone_takes_or_stops_with_one_sentence(backbone_name, task_name, mode):
    backbone, task, fits, outcome = _outcome(backbone_name, task_name, mode)
    if isinstance(outcome, SpecError):
        message = str(outcome)
        assert "\n" not in message and message.count(". ") == 0, message
        assert f"backbone {backbone.name!r}" in message and f"task {task.name!r}" in message
        assert input_rules.rule_text(backbone) in message and " px (" in message
        assert "set -o " in message or "choose another backbone" in message
        return
    plan = outcome
    if not fits or not input_rules.ruled_modalities(backbone, task, fits):
        assert not plan.changed
        return
    for option, size in plan.sizes.items():
        assert size >= backbone.min_input_size, (option, size)
    for option, (was, now) in plan.changed.items():
        assert was < backbone.min_input_size <= now and now % max(1, backbone.input_multiple) == 0
        assert plan.options[option] == now


def _violations(mode: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for b, t in PAIRS:
        outcome = _outcome(b, t, mode)[-1]
        if isinstance(outcome, SpecError):
            out.setdefault(b, set()).add(t)
    return out


def test_at_default_settings_only_skysense_on_oscd_rgb_view_is_refused():
    """skysense/skysense-hr take every default size but OSCD's 96 px crop of its RGB view;
    full skysense gets OSCD's Sentinel-2 bands there (no rule: any size)."""
    assert _violations("default") == {"skysense-hr": {"oscd"}}


def test_at_smoke_settings_the_paper_size_swinv2_h_is_refused_on_small_crops_and_tiny_presets_pass():
    refused = _violations("smoke")
    assert set(refused) == {"skysense", "skysense-hr"}
    assert {"isaid", "potsdam", "deepglobe-road", "levir-cd", "whu-cd", "fair1m", "guso-reg"} <= refused["skysense"]
    # resizes adapt: scene classification and detection's resize are never refused
    assert not refused["skysense"] & {"aid", "resisc45", "dior", "dior-r", "ubcv2"}


def test_aid_resizes_to_256_for_swinv2_h_and_stays_224_for_the_others():
    aid = CATALOG.tasks.get("aid")
    for name in ("skysense", "skysense-hr"):
        plan = input_rules.check(CATALOG.backbone(name), aid, dict(aid.options), ["hr"])
        assert plan.sizes == {"max_size": 256} and not plan.changed
        assert "256 instead of 224" in plan.row_value()
    for name in ("resnet50", "vit-b", "swin-b", "mars", "skysense-tiny"):
        plan = input_rules.check(CATALOG.backbone(name), aid, dict(aid.options), ["hr"])
        assert plan.sizes == {"max_size": 224}


def test_resisc45_at_native_256_or_a_64_px_fixture_goes_to_256_for_swinv2_h():
    task, sky = CATALOG.tasks.get("resisc45"), CATALOG.backbone("skysense")
    assert input_rules.check(sky, task, dict(task.options), ["hr"], data=_native(256)).sizes == {"max_size": 256}
    assert input_rules.check(sky, task, dict(task.options), ["hr"], data=_native(64)).sizes == {"max_size": 256}
    resnet = CATALOG.backbone("resnet50")
    assert input_rules.check(resnet, task, dict(task.options), ["hr"], data=_native(64)).sizes == {"max_size": 64}


def test_a_detection_resize_adapts_but_images_smaller_than_the_rule_are_refused():
    dior, sky = CATALOG.tasks.get("dior"), CATALOG.backbone("skysense-hr")
    opts = {**dior.options, "img_size": 64}
    plan = input_rules.check(sky, dior, opts, ["hr"])
    assert plan.changed_options == {"img_size": 256} and plan.options["img_size"] == 256
    assert input_rules.check(sky, dior, plan.options, ["hr"], data=_native(256)).sizes == {"img_size": 256}
    with pytest.raises(SpecError, match=r"feeds 128 px \(img_size: .*\) at the native size of its images; "
                                         r"the images are smaller than that"):
        input_rules.check(sky, dior, plan.options, ["hr"], data=_native(128))


def test_crops_do_not_adapt_the_error_names_option_size_rule_and_fix():
    isaid = CATALOG.tasks.get("isaid")
    with pytest.raises(SpecError) as err:
        input_rules.check(CATALOG.backbone("skysense"), isaid, {**isaid.options, "patch_size": 200}, ["hr"])
    assert str(err.value) == (
        "backbone 'skysense' needs inputs of H, W >= 225 px, multiples of 32 but task 'isaid' feeds 200 px "
        "(patch_size: the patches cut from each scene); set -o patch_size=256 or choose another backbone")


def test_sentinel_inputs_and_views_are_not_ruled_and_unknown_options_are_named():
    sky = CATALOG.backbone("skysense")
    dyna_s2 = CATALOG.tasks.get("dyna-s2")
    assert input_rules.check(sky, dyna_s2, {**dyna_s2.options, "crop_size": 32}, ["s2"]).sizes == {}
    oscd = CATALOG.tasks.get("oscd")
    assert input_rules.ruled_modalities(sky, oscd, ["s2", "hr"]) == []
    assert input_rules.ruled_modalities(CATALOG.backbone("skysense-hr"), oscd, ["hr"]) == ["hr"]
    with pytest.raises(SpecError, match="--option crop_size='big': expected a size in pixels"):
        input_rules.check(sky, CATALOG.tasks.get("isaid"), {"crop_size": "big", "patch_size": 896}, ["hr"])


def test_a_zero_size_is_checked_at_the_native_size_and_off_multiples_are_noted():
    guso, sky = CATALOG.tasks.get("guso-reg"), CATALOG.backbone("skysense-hr")
    opts = {**guso.options, "img_size": 0}
    assert input_rules.check(sky, guso, opts, ["hr"]).notes == ["img_size 0: the native size"]
    assert input_rules.check(sky, guso, opts, ["hr"], data=_native(512)).sizes == {"img_size": 512}
    with pytest.raises(SpecError, match="feeds 200 px .* at the native size of its images"):
        input_rules.check(sky, guso, opts, ["hr"], data=_native(200))
    plan = input_rules.check(sky, guso, {**guso.options, "img_size": 240}, ["hr"])
    assert plan.sizes == {"img_size": 240}
    assert plan.row_value() == "240 px (img_size); img_size 240 is not a multiple of 32 (padded inside skysense-hr)"


def test_the_module_imports_no_torch():
    import subprocess

    code = "import sys, rsbench.protocol.input_rules; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_adapt_size_rounds_up_to_the_multiple_only_below_the_minimum():
    sky = CATALOG.backbone("skysense")
    assert [input_rules.adapt_size(sky, s) for s in (64, 224, 225, 240, 512)] == [256, 256, 225, 240, 512]
    assert input_rules.adapt_size(CATALOG.backbone("resnet50"), 7) == 7
    assert input_rules.rule_text(CATALOG.backbone("resnet50-tiny")) == "multiples of 32"


def test_the_scene_config_of_paper_size_skysense_resizes_aid_to_256(aid_root, tmp_path):
    """The adapted config, without building the 2 B-parameter model."""
    from rsbench.run.spec import RunSpec

    task_info = CATALOG.tasks.get("aid")
    task = task_info.load_task_class()(task_info, CATALOG.datasets.get("aid"), ["hr"])
    spec = RunSpec(backbone="skysense", task="aid", data_root=str(aid_root)).resolved_for(task_info)
    data = task.check_data(aid_root, spec)
    assert data.native_size == 64  # the fixture's native size
    for name, size in (("skysense", 256), ("resnet50-tiny", 64)):
        cfg = task.build_config(spec, CATALOG.backbone(name), data, tmp_path / name)
        resize = [s for s in cfg["train_dataloader"]["dataset"]["pipeline"] if s["type"] == "Resize"]
        assert resize == [dict(type="Resize", scale=(size, size))]
        assert task.row_fields(spec, CATALOG.backbone(name), data)["input_size"].startswith(f"{size} px")


# -- the declared rules are the models' own: forward on the meta device (shapes only, no memory) --
#: The tiny presets (same structures as the paper-size baselines and MaRS, whose rules are the
#: same) and skysense-hr, the SwinV2-H HR encoder of full skysense (its minimum is the model's
#: own check: SkySense raises a ValueError naming the rule below it).
RULED = [b.name for b in CATALOG.backbones if b.tiny] + ["skysense-hr"]


def _forward(name: str, size: int) -> None:
    """A forward at ``size`` px: paper sizes on the meta device (shapes only, no memory)."""
    import contextlib

    import torch
    from mmengine.registry import MODELS

    info = CATALOG.backbone(name)
    info.register_type()
    first = next(iter(info.modalities))
    device = torch.device("meta") if info.params > 120_000_000 else contextlib.nullcontext()
    with device, torch.no_grad():
        model = MODELS.build(info.config(in_modalities=[first])).eval()
        model({first: torch.rand(1, len(info.modalities[first]), size, size)})


@pytest.mark.parametrize("name", RULED)
def test_the_declared_minimum_is_where_the_forward_starts_to_work(name):
    info = CATALOG.backbone(name)
    if info.min_input_size > 1:
        _forward(name, info.min_input_size)
        with pytest.raises(Exception):
            _forward(name, info.min_input_size - 1)
    else:  # no minimum: below the deepest stride and no multiple of 32 (MaRS' timm patch embedding needs 4)
        _forward(name, 20)


# -- one in-process run: a preset whose minimum is above the fixture's 64 px ----------------------
#: skysense-tiny with a 4-token window: its last stage (stride 32) needs 4 tokens, so H, W >= 97;
#: at the fixture's 64 px its forward would fail.
WIDE_WINDOW = "skysense-tiny-w4"


@hookimpl
def rsbench_register_backbones(register):
    tiny = CATALOG.backbone("skysense-tiny")
    register(replace(tiny, name=WIDE_WINDOW, kwargs={**tiny.kwargs, "hr": {**tiny.kwargs["hr"], "window_size": 4}},
                     min_input_size=97, input_multiple=32, test_size=128,
                     description="skysense-tiny with window 4 (tests: a minimum above the fixture size)"))


@pytest.fixture(scope="module")
def small_aid(tmp_path_factory) -> Path:
    """AID's official layout, 64 px, 5 images per class (1 train, 4 test at the default ratio)."""
    from rsbench_classification import aid

    return aid.write_fixture(tmp_path_factory.mktemp("aid5"), per_class=5)


@pytest.mark.slow
def test_a_preset_whose_minimum_is_above_the_fixture_runs_aid_at_the_adapted_size(
        small_aid, tmp_path, fresh_host, monkeypatch, one_torch_thread):
    import torch
    from mmengine.registry import MODELS

    monkeypatch.setenv("RSBENCH_PLUGINS", __name__)
    info = fresh_host().catalog.backbone(WIDE_WINDOW)
    info.register_type()
    model = MODELS.build(info.config()).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 128, 128))[-1].shape[-1] == 4
        with pytest.raises(Exception):  # the rule is real: 64 px leaves the last stage 2 tokens
            model(torch.zeros(1, 3, 64, 64))

    from rsbench.run.runner import run_evaluation
    from rsbench.run.spec import RunSpec

    spec = RunSpec(backbone=WIDE_WINDOW, task="aid", data_root=str(small_aid), max_iters=2, batch_size=4,
                   protocol="linear", feature_cache=False, work_dir=str(tmp_path / "work"))
    outcome = run_evaluation(spec, results_dir=tmp_path / "results", show_progress=False)
    assert outcome.status == "ok", outcome.row["error"]
    assert outcome.row["input_size"].startswith("128 px (max_size); resized to 128 instead of 64")
    assert json.loads(outcome.row["options"])["max_size"] == 224
