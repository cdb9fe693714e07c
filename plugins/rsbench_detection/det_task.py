"""What horizontal (mmdet) and oriented (mmrotate) detection tasks share: reading the dataset's
splits into mmengine's middle format, dumping them beside the run, the dataloaders, schedule
and hooks. Subclasses add the detector, pipelines and metric; dataset modules add the reader.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rsbench.errors import DataLayoutError
from rsbench.plugin_api.catalog import BackboneInfo
from rsbench.plugin_api.checked_data import CheckedData
from rsbench.plugin_api.task import Task
from rsbench.protocol import protocol_card as pc
from rsbench.protocol.normalization import IMAGENET_MEAN, IMAGENET_STD
from rsbench.run.spec import RunSpec

#: ImageNet statistics on 0-255 RGB, the convention of the detection papers' configs.
RGB_MEAN, RGB_STD = IMAGENET_MEAN, IMAGENET_STD

#: Task defaults shared by the family (the paper schedule: 12 epochs; SkySense's AdamW 1e-4).
DETECTION_OPTIONS: dict[str, Any] = dict(
    epochs=12, batch_size=2, lr=1e-4, weight_decay=0.05, img_size=800, neck_channels=256,
    roi_fc_channels=1024, anchor_scale=8, rpn_proposals=2000, roi_samples=512, score_thr=0.05, nproc=4,
    skip_bad=False,
)


class DetectionTask(Task):
    #: mmdet / mmrotate heads run mmcv's RoIAlign, NMS and rotated-box ops.
    needs_mmcv_ops = True
    #: eval split -> the splits trained on (e.g. DIOR: test <- train + val).
    train_splits: dict[str, tuple[str, ...]] = {"test": ("train",)}
    #: Backbone config overrides of the run's protocol card (drop path), set by build_config.
    card_overrides: dict[str, Any] = {}

    def backbone_config(self, spec: RunSpec, backbone: BackboneInfo, **overrides: Any) -> dict[str, Any]:
        return super().backbone_config(spec, backbone, **{**self.card_overrides, **overrides})

    def read(self, root: Path, splits: tuple[str, ...], skip_bad: bool) -> dict[str, Any]:
        """The dataset's samples of ``splits`` (``root``, ``classes``, ``samples``, bad counts)."""
        raise NotImplementedError

    def check_data(self, root: Path, spec: RunSpec) -> CheckedData:
        opts, split = spec.options, spec.split
        if split not in self.train_splits:
            raise DataLayoutError(f"split {split!r}: task {self.info.name!r} evaluates on "
                                  f"{', '.join(self.train_splits)}")
        skip_bad = bool(opts["skip_bad"])
        train = self.read(root, self.train_splits[split], skip_bad)
        test = self.read(root, (split,), skip_bad)
        # Like mmdet's filter_empty_gt: images without objects teach the RPN nothing here.
        train_samples = [s for s in train["samples"] if s["instances"]]
        if not train_samples:
            raise DataLayoutError(f"{root}: no annotated objects in split(s) {', '.join(self.train_splits[split])}")
        native = max(max(s["width"], s["height"]) for s in train_samples + test["samples"])
        return CheckedData(root=Path(train["root"]), classes=tuple(train["classes"]), split=split, options=opts,
                           train=train_samples, test=test["samples"], native_size=native,
                           facts=dict(bad_samples=train["bad_samples"] + test["bad_samples"],
                                      bad_reasons=train["bad_reasons"] + test["bad_reasons"]))

    @staticmethod
    def fed_size(data: CheckedData) -> int:
        """The resize's longer side: ``img_size`` capped at the images' native size."""
        return min(data.native_size, int(data.options["img_size"]))

    # -- pieces the subclasses fill in ------------------------------------------------------
    def model(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData) -> dict[str, Any]:
        raise NotImplementedError

    def pipelines(self, size: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        raise NotImplementedError

    def evaluator(self, data: CheckedData, work_dir: Path) -> dict[str, Any]:
        raise NotImplementedError

    dataset_type = "mmdet.BaseDetDataset"

    # -- the config ---------------------------------------------------------------------------
    def write_annotations(self, data: CheckedData, work_dir: Path) -> dict[str, str]:
        out = work_dir / "annotations"
        out.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name in ("train", "test"):
            paths[name] = str(out / f"{name}.json")
            Path(paths[name]).write_text(json.dumps(
                {"metainfo": {"classes": list(data.classes)}, "data_list": data.samples(name)}))
        return paths

    def build_config(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData,
                     work_dir: Path) -> dict[str, Any]:
        opts = data.options
        anns = self.write_annotations(data, work_dir)
        batch = spec.batch_size or int(opts["batch_size"])
        epochs = int(opts["epochs"])
        iters_per_epoch = math.ceil(len(data.train) / batch)
        max_iters = spec.max_iters or iters_per_epoch * epochs
        lr = spec.lr or float(opts["lr"])
        card = pc.task_card(self.info)
        plan = None
        self.card_overrides = {}
        if pc.applies(card, spec):  # the card's batch, accumulation, schedule, LR and drop path
            declared = dict(self.info.options)
            batch, lr = pc.card_batch(card, spec, opts, declared), pc.card_lr(card, spec, opts, declared)
            plan = data.derived["card_plan"] = pc.plan(card, spec, batch, lr, len(data.train),
                                               pc.changed_length(opts, declared, "epochs", "epochs"))
            max_iters = plan.max_iters
            self.card_overrides = pc.drop_path_overrides(backbone, card.drop_path.value)
            self.imports = (*type(self).imports, *pc.imports(card))
        train_pipeline, test_pipeline = self.pipelines(self.fed_size(data))

        def dataset(name: str, pipeline: list[dict[str, Any]], test_mode: bool) -> dict[str, Any]:
            return dict(type=self.dataset_type, data_root="", ann_file=anns[name], data_prefix=dict(img_path=""),
                        metainfo=dict(classes=list(data.classes)), test_mode=test_mode, pipeline=pipeline)

        clip = dict(max_norm=35, norm_type=2)
        if plan is not None:
            schedule = pc.param_scheduler(card, plan)
            optim_wrapper = pc.optim_wrapper(card, plan, base=dict(clip_grad=clip))
        else:
            warmup = min(500, max_iters // 10)
            # mmdet's 1x schedule: linear warm-up, then x0.1 at 8/12 and 11/12 of training.
            schedule = ([dict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=warmup)]
                        if warmup else [])
            schedule.append(dict(type="MultiStepLR", by_epoch=False, begin=0, end=max_iters, gamma=0.1,
                                 milestones=[max_iters * 8 // 12, max_iters * 11 // 12]))
            optim_wrapper = dict(type="OptimWrapper",
                                 optimizer=dict(type="AdamW", lr=lr, weight_decay=float(opts["weight_decay"])),
                                 clip_grad=clip)
        return dict(
            default_scope=self.default_scope,
            model=self.model(spec, backbone, data),
            train_dataloader=dict(batch_size=batch, num_workers=spec.num_workers,
                                  sampler=dict(type="InfiniteSampler", shuffle=True),
                                  batch_sampler=dict(type="mmdet.AspectRatioBatchSampler"),
                                  dataset=dataset("train", train_pipeline, False)),
            train_cfg=dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=max_iters + 1),
            test_dataloader=dict(batch_size=batch, num_workers=spec.num_workers, drop_last=False,
                                 sampler=dict(type="DefaultSampler", shuffle=False),
                                 dataset=dataset("test", test_pipeline, True)),
            test_evaluator=self.evaluator(data, work_dir),
            test_cfg=dict(type="TestLoop"),
            optim_wrapper=optim_wrapper,
            param_scheduler=schedule,
            **self.runtime_config(spec, max_iters),
        )

    def neck(self, backbone: BackboneInfo, data: CheckedData, prefix: str = "") -> dict[str, Any]:
        """mmdet's FPN over the backbone's maps (in_channels = the backbone's out_channels)."""
        return dict(type=f"{prefix}FPN", in_channels=list(backbone.out_channels),
                    out_channels=int(data.options["neck_channels"]), num_outs=5)

    def data_preprocessor(self, prefix: str = "", **extra: Any) -> dict[str, Any]:
        return dict(type=f"{prefix}DetDataPreprocessor", mean=list(RGB_MEAN), std=list(RGB_STD),
                    bgr_to_rgb=True, pad_size_divisor=32, **extra)

    # -- external predictions -----------------------------------------------------------------
    @staticmethod
    def pred_instances(boxes: Any, scores: Any, labels: Any) -> Any:
        """The ``pred_instances`` a detector returns: float32 boxes and scores, int64 labels."""
        import torch
        from mmengine.structures import InstanceData

        return InstanceData(bboxes=torch.as_tensor(boxes, dtype=torch.float32),
                            scores=torch.as_tensor(scores, dtype=torch.float32),
                            labels=torch.as_tensor(labels, dtype=torch.int64))

    def metric_value(self, metrics: dict[str, Any]) -> float:
        keys = [k for k in metrics if k.endswith("/mAP") or k == "mAP"]
        if not keys:
            raise KeyError(f"no mAP in the test metrics {sorted(metrics)}")
        return 100.0 * float(metrics[keys[0]])

    def row_fields(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData) -> dict[str, Any]:
        fields = {"normalization": f"mean={list(RGB_MEAN)} std={list(RGB_STD)} (RGB, 0-255)",
                  "adapter": f"FPN({list(backbone.out_channels)} -> {data.options['neck_channels']})"}
        # --skip-bad (-o skip_bad=true): skipped samples are counted in the row, never dropped silently.
        plan = data.derived.get("card_plan")  # set only where the run followed its card
        if plan is not None:
            fields["adapter"] += f"; card {pc.task_card(self.info).id} ({plan.describe()})"
        fields["bad_samples"] = data.fact("bad_samples")
        if data.fact("bad_samples"):
            fields["bad_reasons"] = " | ".join(data.fact("bad_reasons")[:5])
        return fields
