"""From a task's config to the config that runs, in one place, and the run's identity.

A task plugin returns the mmengine config of its evaluation and nothing more. :func:`finalise`
then applies every concern of the core, in a fixed order, and hashes the result **last**, over
exactly what can change the numbers:

1. the test loop (``RSBTestLoop``: inference mode) and the distributed settings of ``nproc``;
2. mixed precision (``AmpOptimWrapper``, autocast testing);
3. the config hash, over the config so far;
4. what changes how values are computed but never the values: activation checkpointing and
   channels-last memory (hooks), then the frozen-feature cache.

:func:`run_key` is the identity a finished row is found by. It is computed from the resolved spec
and the checkpoints' bytes, before any data is read, so an evaluation already done costs no
data work.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsbench.engine import feature_cache
from rsbench.run import distributed
from rsbench.run.provenance import config_hash
from rsbench.run.spec import RunSpec

#: Spec fields that can change a run's numbers (with the checkpoints' bytes and the task's card).
#: Left out on purpose: ``work_dir``, ``track``, ``activation_checkpointing`` and
#: ``memory_format`` (same values by design; tests check it), ``feature_cache`` on/off (same
#: values; its float16 storage does change them, so the dtype is in).
IDENTITY_FIELDS = ("backbone", "task", "data_root", "split", "protocol", "seed", "options", "max_iters",
                   "batch_size", "lr", "strict_load", "device", "precision", "nproc", "num_workers",
                   "feature_cache_dtype")


def run_key(spec: RunSpec, checkpoint_digests: dict[str, str], card_version: str = "") -> str:
    """A short hash of what defines the evaluation of the resolved ``spec``
    (:meth:`RunSpec.resolved`): its number-changing fields, the sha256 of every weight file
    (``part -> digest``) and the version of the task's protocol card."""
    fields = {name: getattr(spec, name) for name in IDENTITY_FIELDS}
    if fields["data_root"]:
        fields["data_root"] = str(Path(fields["data_root"]).resolve())
    ident = dict(fields, checkpoints=dict(sorted(checkpoint_digests.items())), card=card_version)
    text = json.dumps(ident, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FinalConfig:
    """The config that runs, its hash, and what the feature cache will do."""

    cfg: dict[str, Any]
    config_hash: str
    feature_cache: str


def finalise(cfg: dict[str, Any], spec: RunSpec, work_dir: Path) -> FinalConfig:
    """``cfg`` (the task's) with every core concern applied; see the module docstring."""
    cfg = distributed.configure(cfg, spec.nproc, spec.device)
    if isinstance(cfg.get("test_cfg"), dict) and cfg["test_cfg"].get("type") == "TestLoop":
        cfg = dict(cfg, test_cfg=dict(cfg["test_cfg"], type="RSBTestLoop"))  # rsbench.engine.loops: inference_mode
    cfg = apply_precision(cfg, spec.precision)
    digest = config_hash(cfg, str(work_dir))
    hooks = []
    if spec.activation_checkpointing:
        hooks.append(dict(type="RSBActivationCheckpointHook"))
    if spec.memory_format != "contiguous":
        hooks.append(dict(type="RSBChannelsLastHook", force=spec.memory_format == "channels_last"))
    if hooks:
        cfg = dict(cfg, custom_hooks=[*cfg.get("custom_hooks", []), *hooks])
    cfg, cache = feature_cache.plan(cfg, spec.protocol, spec.feature_cache, dtype=spec.feature_cache_dtype)
    return FinalConfig(cfg, digest, cache)


def apply_precision(cfg: dict[str, Any], precision: str) -> dict[str, Any]:
    """``cfg`` trained with mmengine's ``AmpOptimWrapper`` in ``precision`` and tested under
    autocast (``TestLoop(fp16=True)``); unchanged for ``fp32``."""
    if precision == "fp32":
        return cfg
    out = dict(cfg)
    if isinstance(cfg.get("optim_wrapper"), dict):
        wrapper = {k: v for k, v in cfg["optim_wrapper"].items() if k != "type"}
        out["optim_wrapper"] = dict(wrapper, type="AmpOptimWrapper", dtype="bfloat16" if precision == "bf16" else "float16")
    if isinstance(cfg.get("test_cfg"), dict):
        out["test_cfg"] = dict(cfg["test_cfg"], fp16=True)
    return out
