"""Single-label scene classification (AID, RESISC-45, ...) on mmpretrain: OA on the test part
of a per-class training-ratio split.

Predictions (``rsbench score``; a run writes ``<work dir>/predictions.csv``): the CSV of
:mod:`rsbench_classification.prediction_csv`, ``id,class`` with id = the image's file stem as in the
dataset (AID ``airport_12``, RESISC-45 ``airplane_001``; the extension and class folder dropped)
and class = the class folder name (``Airport``) or its 0-based index in the task's class list;
score columns per class are accepted too."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rsbench.plugin_api.catalog import BackboneInfo
from rsbench.plugin_api.checked_data import CheckedData
from rsbench.plugin_api.task import Task
from rsbench.protocol import input_rules
from rsbench.protocol.normalization import IMAGENET_MEAN, IMAGENET_STD
from rsbench.run.spec import RunSpec
from rsbench_classification.folder_per_class import split_per_class
from rsbench_classification.prediction_csv import FILE, CSVPredictions, write_ids, writer_config

#: Per-band RGB statistics (ImageNet's, the convention of the scene-classification papers).
RGB_MEAN, RGB_STD = IMAGENET_MEAN, IMAGENET_STD


class SceneClassificationTask(CSVPredictions, Task):
    default_scope = "mmpretrain"
    imports = ("mmpretrain.models", "mmpretrain.datasets", "mmpretrain.evaluation",
               "rsbench_classification.classifier", "rsbench_classification.prediction_writer")

    def sample_ids(self, data: CheckedData) -> list[str]:
        """The test images' file stems, in the order of the test split file."""
        return [Path(p).stem for p, _ in data.test]

    def check_data(self, root: Path, spec: RunSpec) -> CheckedData:
        summary = self.dataset.check(root)
        opts = spec.options
        train, test = split_per_class(summary["samples"], float(opts["train_ratio"]), int(opts["split_seed"]))
        return CheckedData.from_summary(summary, split=spec.split, options=opts, train=train, test=test,
                                        native_size=max(summary["image_size"]))

    @staticmethod
    def input_size(backbone: BackboneInfo, data: CheckedData) -> int:
        """The square size fed: native capped at ``max_size`` (AID's 600 px -> 224), raised to the
        backbone's input rule where it is below (SwinV2-H needs >= 225 px: AID goes to 256)."""
        return input_rules.adapt_size(backbone, min(data.native_size, int(data.options["max_size"])))

    def build_config(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData,
                     work_dir: Path) -> dict[str, Any]:
        opts = spec.options
        classes = data.classes
        splits = work_dir / "splits"
        splits.mkdir(parents=True, exist_ok=True)
        for name, samples in (("train", data.train), ("test", data.test)):
            (splits / f"{name}.txt").write_text("".join(f"{p} {y}\n" for p, y in samples))

        batch = spec.batch_size or int(opts["batch_size"])
        iters_per_epoch = math.ceil(len(data.train) / batch)
        max_iters = spec.max_iters or iters_per_epoch * int(opts["epochs"])
        lr = spec.lr or float(opts["lr"])
        size = self.input_size(backbone, data)

        def dataset(name: str, pipeline: list[dict[str, Any]]) -> dict[str, Any]:
            return dict(type="CustomDataset", data_root=str(data.root), data_prefix="",
                        ann_file=str(splits / f"{name}.txt"), with_label=True,
                        metainfo=dict(classes=classes), pipeline=pipeline)

        load = [dict(type="LoadImageFromFile"), dict(type="Resize", scale=(size, size))]
        # The linear probe sees the unaugmented images (so its frozen features can be cached).
        augment = [] if spec.protocol == "linear" else [dict(type="RandomFlip", prob=0.5, direction="horizontal")]
        train_pipeline = [*load, *augment, dict(type="PackInputs")]
        test_pipeline = [*load, dict(type="PackInputs")]
        warmup = max_iters // 20
        schedule = [dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=warmup)] if warmup else []
        schedule.append(dict(type="CosineAnnealingLR", by_epoch=False, begin=warmup, end=max_iters, eta_min=lr * 0.01))
        return dict(
            default_scope=self.default_scope,
            model=dict(
                type="RSBPooledClassifier",
                backbone=self.backbone_config(spec, backbone),
                head=dict(type="LinearClsHead", num_classes=len(classes), in_channels=backbone.pooled_channels,
                          loss=dict(type="CrossEntropyLoss", loss_weight=1.0), topk=(1,)),
                data_preprocessor=dict(type="ClsDataPreprocessor", mean=list(RGB_MEAN), std=list(RGB_STD),
                                       to_rgb=True, num_classes=len(classes)),
            ),
            train_dataloader=dict(batch_size=batch, num_workers=spec.num_workers,
                                  sampler=dict(type="InfiniteSampler", shuffle=True),
                                  dataset=dataset("train", train_pipeline)),
            train_cfg=dict(by_epoch=False, max_iters=max_iters),
            test_dataloader=dict(batch_size=max(batch, 32), num_workers=spec.num_workers,
                                 sampler=dict(type="DefaultSampler", shuffle=False),
                                 dataset=dataset("test", test_pipeline)),
            test_evaluator=[dict(type="Accuracy", topk=(1,)),
                            writer_config(work_dir / FILE, write_ids(splits / "test_ids.json", self.sample_ids(data)),
                                          classes, scores=False)],
            test_cfg=dict(),
            optim_wrapper=dict(optimizer=dict(type="AdamW", lr=lr, weight_decay=0.05),
                               clip_grad=dict(max_norm=5.0)),
            param_scheduler=schedule,
            **self.runtime_config(spec, max_iters),
        )

    def metric_value(self, metrics: dict[str, Any]) -> float:
        return float(metrics["accuracy/top1"])

    def row_fields(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData) -> dict[str, Any]:
        plan = input_rules.check(backbone, self.info, spec.options, self.modalities, data=data)
        return {"normalization": f"mean={list(RGB_MEAN)} std={list(RGB_STD)} (RGB, 0-255)",
                "adapter": "none; linear probe without augmentation" if spec.protocol == "linear" else "none",
                "input_size": plan.row_value() or str(self.input_size(backbone, data))}
