"""GUSO registration as an rsbench task (see :mod:`rsbench_crossmodal.registration` for the head)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rsbench.errors import DataLayoutError, PredictionError
from rsbench.plugin_api.catalog import BackboneInfo
from rsbench.plugin_api.checked_data import CheckedData
from rsbench.plugin_api.task import Task
from rsbench.protocol.normalization import IMAGENET_MEAN, IMAGENET_STD
from rsbench.run.spec import RunSpec


def schedule(max_iters: int, lr: float) -> list[dict[str, Any]]:
    warmup = max_iters // 20
    out = [dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=warmup)] if warmup else []
    out.append(dict(type="CosineAnnealingLR", by_epoch=False, begin=warmup, end=max_iters, eta_min=lr * 0.01))
    return out


class RegistrationTask(Task):
    # mmpretrain scope: the baseline backbones build mmpretrain networks; rsbench's own pieces
    # live in the root registries, which every scope falls back to.
    default_scope = "mmpretrain"
    imports = ("mmpretrain.models", "rsbench.engine.entry_list", "rsbench_crossmodal.registration")
    #: Resample each SAR into its optical frame by the pair's H before use (``RSBLoadPair``'s ``align``).
    align_pairs = False

    def check_data(self, root: Path, spec: RunSpec) -> CheckedData:
        summary = self.dataset.check(root)
        data = CheckedData.from_summary(summary, split=spec.split, options=spec.options,
                                        train=summary["samples"]["train"], test=summary["samples"][spec.split],
                                        native_size=int(summary["size"]))
        crop = self.crop(data)
        for rows in summary["samples"].values():
            for row in rows:
                if row["size"] < crop:
                    raise DataLayoutError(f"{data.root / row['opt']}: {row['size']} px is smaller than "
                                          f"the crop img_size={crop}")
        return data

    @staticmethod
    def crop(data: CheckedData) -> int:
        """The centre crop of every pair: ``img_size``, or 0 for the images' own size."""
        return int(data.options["img_size"]) or data.native_size

    def sar_input(self) -> str:
        return "sar" if "sar" in self.modalities else "sar-as-rgb"

    def build_config(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData,
                     work_dir: Path) -> dict[str, Any]:
        opts = spec.options
        ann = work_dir / "ann"
        ann.mkdir(parents=True, exist_ok=True)
        for name, rows in (("train", data.train), ("test", data.test)):
            (ann / f"{name}.json").write_text(json.dumps(list(rows)))
        strides = list(backbone.out_strides)
        want = int(opts.get("feature_stride", 8))  # tasks without the option (translation) keep stride 8
        level = strides.index(want) if want in strides else strides.index(min(strides))
        batch = spec.batch_size or int(opts["batch_size"])
        max_iters = spec.max_iters or math.ceil(len(data.train) / batch) * int(opts["epochs"])
        lr = spec.lr or float(opts["lr"])

        def dataset(name: str) -> dict[str, Any]:
            return dict(type="RSBEntryListDataset", data_root=str(data.root), ann_file=str(ann / f"{name}.json"),
                        serialize_data=False, pipeline=[dict(type="RSBLoadPair", size=self.crop(data),
                                                 **({"align": True} if self.align_pairs else {}))])

        return dict(
            default_scope=self.default_scope,
            model=dict(type="RSBRegistrationModel", backbone=self.backbone_config(spec, backbone),
                       sar_input=self.sar_input(), level=level, stride=strides[level],
                       in_channels=backbone.out_channels[level], search_px=int(opts["search_px"])),
            train_dataloader=dict(batch_size=batch, num_workers=spec.num_workers,
                                  sampler=dict(type="InfiniteSampler", shuffle=True), dataset=dataset("train")),
            train_cfg=dict(by_epoch=False, max_iters=max_iters),
            test_dataloader=dict(batch_size=batch, num_workers=spec.num_workers,
                                 sampler=dict(type="DefaultSampler", shuffle=False), dataset=dataset("test")),
            test_evaluator=[dict(type="RSBRegistrationMetric"),
                            dict(type="RSBRegistrationWriter", out_file=str(work_dir / "predictions" / "registration.csv"),
                                 ann_file=str(ann / "test.json")),
                            dict(type="DumpResults", out_file_path=str(work_dir / "predictions.pkl"))],
            test_cfg=dict(),
            optim_wrapper=dict(optimizer=dict(type="AdamW", lr=lr, weight_decay=0.01), clip_grad=dict(max_norm=5.0)),
            param_scheduler=schedule(max_iters, lr),
            **self.runtime_config(spec, max_iters),
        )

    def metric_value(self, metrics: dict[str, Any]) -> float:
        return float(metrics["registration/RMSE"])

    @staticmethod
    def test_rows(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The scored pairs by id, as ``build_config`` wrote them for the test dataset."""
        return {str(r["id"]): r for r in json.loads(Path(cfg["test_dataloader"]["dataset"]["ann_file"]).read_text())}

    def prediction_reader(self, predictions: Path, data: CheckedData, cfg: dict[str, Any]) -> Any:
        """A CSV of per-pair transforms (``registration.csv`` when ``predictions`` is a folder, as a
        run writes it): ``id,h00..h22`` (3x3 ``H_0to1``, optical -> SAR pixels of the full
        images, like ``{id}_H.txt``) or ``id,a00..a12`` (its 2x3 affine part); see
        :mod:`rsbench_crossmodal.registration`. Each is moved into the run's centre crop and
        given to the metric as a float32 ``pred_H``, as the model's would be."""
        import numpy as np
        import torch

        from rsbench.run.scoring import MissingPrediction
        from rsbench_crossmodal.registration import PREDICTION_FILE, crop_h, read_transforms

        path = Path(predictions)
        path = path / PREDICTION_FILE if path.is_dir() else path
        if not path.is_file():
            raise PredictionError(f"{path}: missing; expected a CSV of per-pair transforms (id,h00,...,h22)")
        transforms = read_transforms(path)
        rows, crop = self.test_rows(cfg), self.crop(data)

        def read(sample: dict[str, Any]) -> None:
            key = str(sample["id"])
            if key not in transforms:
                raise MissingPrediction(f"row for id {key!r}")
            h = crop_h(np.asarray(transforms[key]), (int(rows[key]["size"]) - crop) // 2)
            sample.update(pred_H=torch.tensor(h, dtype=torch.float32), gt_H=sample["H"], size=crop)

        return read

    def row_fields(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData) -> dict[str, Any]:
        adapter = ("sar-as-rgb: SAR repeated to 3 channels and encoded by the RGB branch"
                   if self.sar_input() == "sar-as-rgb" else "none: SAR fed as modality 'sar'")
        return {"adapter": f"{adapter}; centre crop {self.crop(data)} px",
                "normalization": f"optical mean={list(IMAGENET_MEAN)} std={list(IMAGENET_STD)}; "
                                 "SAR (x - 127.5) / 64"}


class TranslationTask(RegistrationTask):
    """SAR -> optical translation (see :mod:`rsbench_crossmodal.translation`): PSNR headline, SSIM too.

    Only the SAR image is fed: a backbone taking ``sar`` is configured with
    ``in_modalities=['sar']``; an RGB-only backbone gets the ``sar-as-rgb`` adapter."""

    imports = ("mmpretrain.models", "rsbench.engine.entry_list", "rsbench_crossmodal.registration",
               "rsbench_crossmodal.translation")
    align_pairs = True  # translation is scored pixel to pixel (guso.py)

    def build_config(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData,
                     work_dir: Path) -> dict[str, Any]:
        cfg = super().build_config(spec, backbone, data, work_dir)
        fed = ["sar"] if self.sar_input() == "sar" else ["hr"]
        cfg["model"] = dict(type="RSBTranslationModel", sar_input=self.sar_input(),
                            backbone=self.backbone_config(spec, backbone) | {"in_modalities": fed},
                            in_channels=list(backbone.out_channels))
        cfg["test_evaluator"] = [dict(type="RSBTranslationMetric"),
                                 dict(type="RSBTranslationWriter", output_dir=str(work_dir / "predictions"),
                                      ann_file=cfg["test_dataloader"]["dataset"]["ann_file"]),
                                 dict(type="DumpResults", out_file_path=str(work_dir / "predictions.pkl"))]
        return cfg

    def metric_value(self, metrics: dict[str, Any]) -> float:
        return float(metrics["translation/PSNR"])

    def prediction_reader(self, predictions: Path, data: CheckedData, cfg: dict[str, Any]) -> Any:
        """A folder of predicted optical images named like the targets (``{id}_opt.png``), each
        8-bit RGB of its target's size; PSNR / SSIM over the run's centre crop (see
        :mod:`rsbench_crossmodal.translation`). The targets are read from the dataset here
        because the reader sees only the data sample, which holds no image."""
        from rsbench.io.raster import read_rgb
        from rsbench.run.scoring import find_prediction
        from rsbench_crossmodal.translation import read_rgb8, score_pair

        folder = Path(predictions)
        if not folder.is_dir():
            raise PredictionError(f"--predictions {folder}: expected a folder of {{id}}_opt.png images")
        rows, crop, root = self.test_rows(cfg), self.crop(data), data.root

        def read(sample: dict[str, Any]) -> None:
            row = rows[str(sample["id"])]
            path = find_prediction(folder, [Path(row["opt"]).stem], (".png",))
            pred = read_rgb8(path, int(row["size"]))
            sample.update(score_pair(pred, read_rgb(root / row["opt"]), crop))

        return read
