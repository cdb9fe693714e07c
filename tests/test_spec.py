"""Run-spec validation: each bad value names its option and what was expected."""

from __future__ import annotations

import pytest

from rsbench.errors import SpecError
from rsbench.run.spec import RunSpec


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(protocol="probe"), "--protocol 'probe': expected one of finetune, frozen, linear"),
    (dict(device="tpu"), "--device 'tpu'"),
    (dict(max_iters=0), "--max-iters 0"),
    (dict(lr=-1.0), "--lr -1.0"),
    (dict(split="val"), "--split 'val': task 'aid' has splits test"),
    (dict(options={"ratio": "0.5"}), "--option ratio: task 'aid' takes train_ratio"),
])
def test_bad_values_are_named(kwargs, message):
    spec = RunSpec(backbone="resnet50", task="aid", **kwargs)
    with pytest.raises(SpecError) as err:
        spec.validate(("test",), {"train_ratio": 0.2})
    assert message in str(err.value)


def test_options_are_cast_to_the_defaults_types():
    spec = RunSpec(backbone="b", task="t", options={"train_ratio": "0.5", "epochs": "3", "flag": "true"})
    merged = spec.with_options({"train_ratio": 0.2, "epochs": 30, "flag": False, "other": 1})
    assert merged == {"train_ratio": 0.5, "epochs": 3, "flag": True, "other": 1}
    with pytest.raises(SpecError, match="--option epochs='x': expected int"):
        RunSpec(backbone="b", task="t", options={"epochs": "x"}).with_options({"epochs": 30})


def test_round_trip_and_unknown_fields():
    spec = RunSpec(backbone="b", task="t", seed=3, options={"k": 1})
    assert RunSpec.from_dict(spec.as_dict()) == spec
    with pytest.raises(SpecError, match="unknown field"):
        RunSpec.from_dict({"backbone": "b", "task": "t", "bogus": 1})


def test_an_option_can_add_a_modality_and_the_runner_fits_backbones_to_it():
    from rsbench.plugin_api.catalog import TaskInfo
    from rsbench.plugin_api.plugin_host import get_catalog
    from rsbench.run.runner import modality_fit

    info = TaskInfo(name="t", title="t", family="detection", dataset="d", task_class="x:y", metric="mAP",
                    metric_definition="", modalities={"sar": ("SAR",)}, options={"sar_as_rgb": False},
                    option_modalities={"sar_as_rgb": {"hr": ("R", "G", "B")}})
    rgb = get_catalog().backbone("resnet50-tiny")
    assert info.provided_modalities() == {"sar": ("SAR",)}
    assert modality_fit(rgb, info, {"sar_as_rgb": False}) == []
    assert info.provided_modalities({"sar_as_rgb": "true"}) == {"sar": ("SAR",), "hr": ("R", "G", "B")}
    assert modality_fit(rgb, info, {"sar_as_rgb": True}) == ["hr"]


def test_mixed_precision_is_cuda_only_and_uses_mmengines_amp():
    from rsbench.run.run_config import apply_precision

    with pytest.raises(SpecError, match="--precision fp16: mixed precision needs --device cuda"):
        RunSpec(backbone="b", task="t", precision="fp16").validate()
    with pytest.raises(SpecError, match="--precision 'int8': expected one of fp32, fp16, bf16"):
        RunSpec(backbone="b", task="t", precision="int8", device="cuda").validate()
    RunSpec(backbone="b", task="t", precision="bf16", device="cuda").validate()
    cfg = dict(optim_wrapper=dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=1.0), clip_grad=None),
               test_cfg=dict(type="TestLoop"))
    assert apply_precision(cfg, "fp32") is cfg
    amp = apply_precision(cfg, "bf16")
    assert amp["optim_wrapper"] == dict(type="AmpOptimWrapper", dtype="bfloat16", optimizer=dict(type="AdamW", lr=1.0),
                                        clip_grad=None)
    assert amp["test_cfg"] == dict(type="TestLoop", fp16=True)
    assert cfg["optim_wrapper"]["type"] == "OptimWrapper"  # the input is not changed
