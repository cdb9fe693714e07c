"""Run options that change how the backbone computes, never what: hooks that act on the built
model, so every task and backbone gets them from the same run option.

* ``RunSpec.activation_checkpointing``: the backbone recomputes its block activations in the
  backward pass (``RSBackbone.set_grad_checkpointing``), trading compute for the memory that a
  paper-size backbone's activations take in fine-tuning.
* ``RunSpec.memory_format``: channels-last weights (and so activations) for backbones whose
  convolutions dominate (``RSBackbone.prefers_channels_last``; ``auto``), or for any backbone.
"""

from __future__ import annotations

from typing import Any

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from rsbench.plugin_api.backbone import find_backbone


@HOOKS.register_module(name="RSBActivationCheckpointHook", force=True)
class ActivationCheckpointHook(Hook):
    priority = "VERY_HIGH"

    def before_train(self, runner: Any) -> None:
        backbone = find_backbone(runner.model)
        blocks = backbone.set_grad_checkpointing(True)
        runner.logger.info(f"activation checkpointing: {blocks} blocks of {type(backbone).__name__}")


@HOOKS.register_module(name="RSBChannelsLastHook", force=True)
class ChannelsLastHook(Hook):
    """``force=False`` (``--memory-format auto``): only where the backbone prefers it.

    Only the backbone computes channels-last: its output maps are handed on as contiguous NCHW,
    because compiled ops downstream (mmcv's RoIAlign on the CPU among them) read raw NCHW memory
    and would silently compute on scrambled features."""

    priority = "VERY_HIGH"

    def __init__(self, force: bool = False) -> None:
        self.force = force

    def before_run(self, runner: Any) -> None:
        backbone = find_backbone(runner.model)
        if getattr(backbone, "_rsb_channels_last", False) or not (self.force or backbone.prefers_channels_last()):
            return
        backbone.to(memory_format=torch.channels_last)
        backbone.register_forward_hook(_contiguous_outputs)
        backbone._rsb_channels_last = True
        runner.logger.info(f"channels-last memory format inside {type(backbone).__name__}")


def _contiguous_outputs(module: Any, args: Any, output: Any) -> Any:
    if isinstance(output, torch.Tensor):
        return output.contiguous()
    if isinstance(output, (tuple, list)):
        return type(output)(o.contiguous() if isinstance(o, torch.Tensor) else o for o in output)
    return output
