"""``RunSpec.activation_checkpointing``: the run's backbone recomputes its block activations in
the backward pass (``RSBackbone.set_grad_checkpointing``), trading compute for the memory that a
paper-size backbone's activations take in fine-tuning. A hook turns it on once the model is
built, so every task and backbone gets it from the same run option."""

from __future__ import annotations

from typing import Any

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from rsbench.backbone import RSBackbone
from rsbench.errors import SpecError


def find_backbone(model: Any) -> RSBackbone:
    """The rsbench backbone inside a task model (wrapped, cached or siamese alike)."""
    module = model.module if is_model_wrapper(model) else model
    for sub in module.modules():
        if isinstance(sub, RSBackbone):
            return sub
    raise SpecError(f"--activation-checkpointing: model {type(module).__name__} holds no rsbench backbone")


@HOOKS.register_module(name="RSBActivationCheckpointHook", force=True)
class ActivationCheckpointHook(Hook):
    priority = "VERY_HIGH"

    def before_train(self, runner: Any) -> None:
        backbone = find_backbone(runner.model)
        blocks = backbone.set_grad_checkpointing(True)
        runner.logger.info(f"activation checkpointing: {blocks} blocks of {type(backbone).__name__}")
