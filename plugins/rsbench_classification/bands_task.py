"""Image-level classification on multi-band, multi-modal GeoTIFF data (BigEarthNet, fMoW-S2).

The run feeds the backbone the task modalities it can take (``self.modalities``, from the
runner's modality fit), each with exactly the bands the backbone declares, in its order (a
subset of the task's bands). Every band is resampled bilinearly to one square grid
(``img_size``; 0 = the dataset's native 10 m grid) and standardised per band with mean/std
measured on up to ``stats_samples`` training samples (recorded in the row).

Predictions (``rsbench score``; a run writes ``<work dir>/predictions.csv`` with its scores): the
CSV of :mod:`rsbench_classification.prediction_csv`. The id is the BigEarthNet S2 patch name
(``S2A_MSIL2A_20170613T101031_0_45``, also for BigEarthNet-MM) or the fMoW-Sentinel image's file
stem (``airport_0_0`` from ``airport_0_0.tif``). fMoW: ``id,class`` scores top-1 only; the score
layout gives top-5 too. BigEarthNet: one score per class (``id,<19 class names>``) or
``id,labels`` with ``;``-separated names (scored as 0/1).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rsbench.errors import DataLayoutError
from rsbench.plugin_api.catalog import BackboneInfo, load_object
from rsbench.plugin_api.checked_data import CheckedData
from rsbench.plugin_api.task import Task
from rsbench.run.spec import RunSpec
from rsbench_classification.prediction_csv import FILE, CSVPredictions, write_ids, writer_config

IMPORTS = ("mmpretrain.models", "mmpretrain.datasets", "mmpretrain.evaluation", "rsbench.engine.entry_list",
           "rsbench_classification.multimodal", "rsbench_classification.metrics", "rsbench_classification.prediction_writer")
#: A sample's id in prediction CSVs, per dataset.
SAMPLE_ID = {"ben-s2": lambda s: s["s2"], "ben-mm": lambda s: s["s2"], "fmow-s2": lambda s: Path(s["path"]).stem}


def sample_fraction(samples: list[dict[str, Any]], fraction: float, seed: int) -> list[dict[str, Any]]:
    """Keep ``fraction`` of the samples per class with a fixed seed. A multi-label sample is
    counted in the stratum of its rarest label (label-less samples form their own stratum);
    each stratum keeps at least one sample."""
    if not 0 < fraction <= 1:
        raise DataLayoutError(f"label_fraction {fraction}: expected a fraction in (0, 1]")
    if fraction == 1:
        return list(samples)
    counts: dict[int, int] = {}
    for s in samples:
        for y in s["gt_label"]:
            counts[y] = counts.get(y, 0) + 1
    strata: dict[int, list[int]] = {}
    for i, s in enumerate(samples):
        key = min(s["gt_label"], key=lambda y: (counts[y], y)) if s["gt_label"] else -1
        strata.setdefault(key, []).append(i)
    rng = random.Random(seed)
    keep: list[int] = []
    for key in sorted(strata):
        idx = strata[key]
        rng.shuffle(idx)
        keep += idx[:max(1, round(len(idx) * fraction))]
    return [samples[i] for i in sorted(keep)]


class BandsClassificationTask(CSVPredictions, Task):
    """Single-label (top-1/top-5) by default; :class:`MultiLabelBandsTask` for BigEarthNet.

    Heads keep PyTorch's default ``nn.Linear`` initialisation (``init_cfg=None``): mmpretrain's
    default Normal(std=0.01) leaves the backbone almost no gradient signal for the first tens of
    iterations, which stalled short schedules in our checks (BEN fixture, 40 iterations: mAP
    micro 10 with std 0.01 vs 51 with the default).
    """

    default_scope = "mmpretrain"
    imports = IMPORTS
    multilabel = False

    def check_data(self, root: Path, spec: RunSpec) -> CheckedData:
        summary = self.dataset.check(root)
        opts = spec.options
        train = sample_fraction(summary["samples"]["train"], float(opts.get("label_fraction", 1.0)),
                                int(opts.get("split_seed", 0)))
        return CheckedData.from_summary(summary, split=spec.split, options=opts, train=train,
                                        test=summary["samples"][spec.split])

    @staticmethod
    def grid(data: CheckedData) -> int:
        """The pixel grid every band is resampled to: ``img_size``, or 0 for the dataset's own."""
        return int(data.options["img_size"]) or int(data.fact("size"))

    # -- helpers -------------------------------------------------------------------
    def sample_ids(self, data: CheckedData) -> list[str]:
        """The test samples' ids (module docstring), in dataset order."""
        if self.dataset.name not in SAMPLE_ID:
            raise DataLayoutError(f"dataset {self.dataset.name!r} has no prediction id rule")
        return [SAMPLE_ID[self.dataset.name](s) for s in data.test]

    def bands_for(self, backbone: BackboneInfo) -> dict[str, tuple[str, ...]]:
        """The bands fed per modality: the backbone's, which the modality fit made a subset."""
        return {m: tuple(backbone.modalities[m]) for m in self.modalities}

    def entries(self, data: CheckedData, samples: Sequence[dict[str, Any]],
                bands: dict[str, tuple[str, ...]]) -> list[dict[str, Any]]:
        ref = load_object(data.fact("band_ref"))
        return [dict(bands={m: [list(ref(s, m, b)) for b in bs] for m, bs in bands.items()},
                     gt_label=list(s["gt_label"])) for s in samples]

    def band_stats(self, data: CheckedData, entries: list[dict[str, Any]]) -> tuple[dict, dict]:
        """Per-band mean/std over up to ``stats_samples`` training samples (seeded choice)."""
        from rsbench_classification.multimodal import read_band

        n = int(data.options["stats_samples"])
        chosen = random.Random(0).sample(entries, min(n, len(entries)))
        root, grid = data.root, self.grid(data)
        mean: dict[str, list[float]] = {}
        std: dict[str, list[float]] = {}
        for m in chosen[0]["bands"]:
            stacks = [np.stack([read_band(root / p, i, grid) for p, i in e["bands"][m]]) for e in chosen]
            arr = np.stack(stacks).astype(np.float64)
            mean[m] = [round(float(v), 4) for v in arr.mean(axis=(0, 2, 3))]
            std[m] = [round(max(float(v), 1e-6), 4) for v in arr.std(axis=(0, 2, 3))]
        return mean, std

    def head(self, backbone: BackboneInfo, num_classes: int) -> dict[str, Any]:
        return dict(type="LinearClsHead", num_classes=num_classes, in_channels=backbone.pooled_channels,
                    loss=dict(type="CrossEntropyLoss", loss_weight=1.0), topk=(1, 5), init_cfg=None)

    def evaluator(self, num_classes: int) -> dict[str, Any]:
        return dict(type="Accuracy", topk=(1, min(5, num_classes)))

    # -- the config ----------------------------------------------------------------
    def build_config(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData,
                     work_dir: Path) -> dict[str, Any]:
        opts = spec.options
        classes = data.classes
        grid = self.grid(data)
        bands = self.bands_for(backbone)
        ann = work_dir / "ann"
        ann.mkdir(parents=True, exist_ok=True)
        train_entries = self.entries(data, data.train, bands)
        for name, entries in (("train", train_entries), ("test", self.entries(data, data.test, bands))):
            (ann / f"{name}.json").write_text(json.dumps(entries))
        mean, std = self.band_stats(data, train_entries)
        data.derived.update(normalization=dict(mean=mean, std=std), bands_fed={m: list(b) for m, b in bands.items()})

        batch = spec.batch_size or int(opts["batch_size"])
        max_iters = spec.max_iters or math.ceil(len(train_entries) / batch) * int(opts["epochs"])
        lr = spec.lr or float(opts["lr"])

        def dataset(name: str, flip: bool) -> dict[str, Any]:
            return dict(type="RSBEntryListDataset", data_root=str(data.root), ann_file=str(ann / f"{name}.json"),
                        metainfo=dict(classes=classes), serialize_data=False,
                        pipeline=[dict(type="RSBLoadBands", size=grid, flip=flip),
                                  dict(type="RSBPackMultiModal")])

        warmup = max_iters // 20
        schedule = [dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=warmup)] if warmup else []
        schedule.append(dict(type="CosineAnnealingLR", by_epoch=False, begin=warmup, end=max_iters, eta_min=lr * 0.01))
        return dict(
            default_scope=self.default_scope,
            model=dict(type="RSBMultiModalClassifier", backbone=self.backbone_config(spec, backbone),
                       head=self.head(backbone, len(classes)),
                       data_preprocessor=dict(type="RSBMultiModalPreprocessor", mean=mean, std=std)),
            train_dataloader=dict(batch_size=batch, num_workers=spec.num_workers,
                                  sampler=dict(type="InfiniteSampler", shuffle=True),
                                  dataset=dataset("train", spec.protocol != "linear")),
            train_cfg=dict(by_epoch=False, max_iters=max_iters),
            test_dataloader=dict(batch_size=max(batch, 32), num_workers=spec.num_workers,
                                 sampler=dict(type="DefaultSampler", shuffle=False),
                                 dataset=dataset("test", False)),
            # the predictions are kept next to the metrics so the value can be recomputed independently
            test_evaluator=[self.evaluator(len(classes)),
                            dict(type="DumpResults", out_file_path=str(work_dir / "predictions.pkl")),
                            writer_config(work_dir / FILE, write_ids(ann / "test_ids.json", self.sample_ids(data)),
                                          classes, scores=True)],
            test_cfg=dict(),
            optim_wrapper=dict(optimizer=dict(type="AdamW", lr=lr, weight_decay=0.05), clip_grad=dict(max_norm=5.0)),
            param_scheduler=schedule,
            **self.runtime_config(spec, max_iters),
        )

    def metric_value(self, metrics: dict[str, Any]) -> float:
        return float(metrics["accuracy/top1"])

    def row_fields(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData) -> dict[str, Any]:
        norm, grid = data.derived.get("normalization", {}), self.grid(data)
        return {
            "normalization": (f"per-band mean/std of {spec.options['stats_samples']} training samples "
                              f"(bilinear grid {grid} px): {json.dumps(norm, sort_keys=True)}"),
            "adapter": (f"bands fed {json.dumps(data.derived.get('bands_fed', {}))}; every band resampled bilinearly "
                        f"to {grid}x{grid} px; train samples {len(data.train)}"),
            **data.fact("row_fields", {}),  # the dataset's own facts (BigEarthNet: which release)
        }


class MultiLabelBandsTask(BandsClassificationTask):
    """Multi-label (BigEarthNet): sigmoid BCE head, mAP macro and micro; the headline per option."""

    multilabel = True

    def head(self, backbone: BackboneInfo, num_classes: int) -> dict[str, Any]:
        return dict(type="MultiLabelLinearClsHead", num_classes=num_classes, in_channels=backbone.pooled_channels,
                    loss=dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0), init_cfg=None)

    def evaluator(self, num_classes: int) -> dict[str, Any]:
        return dict(type="RSBMultiLabelAP", num_classes=num_classes)

    def metric_value(self, metrics: dict[str, Any]) -> float:
        return float(metrics["multi-label/mAP_micro"])
