"""Change detection on mmseg (LEVIR-CD, WHU-CD, OSCD, DFC25 track 2): one task class for all.

How the dates reach the backbone is decided per run and recorded in the row's ``adapter``:

* ``siamese``: both dates in a modality the backbone takes -> shared backbone per date + fusion
  neck (``fusion`` option: concat | sum | diff | abs_diff), open-cd's SiamEncoderDecoder.
* ``multimodal``: the dates are different modalities and the backbone takes both (MaRS on
  optical-before / SAR-after) -> one backbone call, the backbone's cross-modal fusion.
* ``native``: ``temporal=native`` and a temporal backbone (SkySense) -> the dates go through
  the backbone's temporal path with their day of year when the dataset has dates.
* adapters for single-modal backbones: a one-band SAR date is replicated to R, G, B and goes
  through the shared RGB backbone (siamese); a Sentinel-2 pair is shown to RGB backbones as its
  B4, B3, B2 bands (torchgeo's ``bands='rgb'``).

The decoder is the harness's uniform one (UPerHead), so backbones compare on one head. A task
declaring the ``head`` option (whu-cd) also offers ``head=mars``: MaRS' released change decoder
(:mod:`rsbench_change.mars_cd_head`) with its loss and input normalisation, and the protocol card
of that head (``TaskInfo.option_cards``), which MaRS' paper number belongs to.
"""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from rsbench.errors import DataLayoutError, PredictionError, SpecError
from rsbench.plugin_api.catalog import BackboneInfo, load_object
from rsbench.plugin_api.checked_data import CheckedData
from rsbench.plugin_api.task import Task
from rsbench.protocol import protocol_card as pc
from rsbench.protocol.normalization import IMAGENET_MEAN, IMAGENET_STD
from rsbench.run.spec import RunSpec
from rsbench_change.io import read_date
from rsbench_change.models_light import fused_channels
from rsbench_segmentation.cards import MARS_PIXEL_MEAN, MARS_PIXEL_STD

#: ImageNet statistics for 8-bit RGB (the convention of the VHR change-detection papers).
RGB_MEAN, RGB_STD = IMAGENET_MEAN, IMAGENET_STD
#: Images used to estimate per-band statistics of non-8-bit-RGB dates (S2, SAR).
STATS_SAMPLES = 16
SUBMISSION = "submission"
#: The mmseg metric key each task reports (ChangeMetric's per-class keys or IoUMetric's mean).
HEADLINE = {"levir-cd": "Fscore.changed", "whu-cd": "IoU.changed", "oscd": "Fscore.changed",
            "dfc25-t2": "mIoU"}
#: The row's record of MaRS' released change decoder (``head=mars``).
MARS_HEAD = ("head=mars: MaRS' released change decoder on the last fused stage (CDBlock + {n} up-blocks, one "
             "logit, changed where sigmoid > 0.5)")


class ChangeDetectionTask(Task):
    default_scope = "mmseg"
    imports = ("mmseg.models", "mmseg.datasets", "mmseg.evaluation", "rsbench_change.models",
               "rsbench_change.pipeline")

    # -- data --------------------------------------------------------------------
    def check_data(self, root: Path, spec: RunSpec) -> CheckedData:
        opts, split = spec.options, spec.split
        summary = self.check_dataset(root, opts)
        test_split = summary.get("submission_split", "test") if split == SUBMISSION else split
        if split not in summary["splits"] and test_split not in summary["splits"]:
            note = f"; {summary['split_note']}" if summary.get("split_note") else ""
            raise DataLayoutError(f"{summary['root']}: no {split!r} split (has {', '.join(summary['splits'])}){note}")
        train, test = summary["splits"][str(opts["train_split"])], summary["splits"][test_split]
        submission = split == SUBMISSION
        if submission:
            test = [dict(s, label=None) for s in test]
        elif any(s.get("label") is None for s in test):
            raise DataLayoutError(f"{summary['root']}: split {split!r} has no targets; use --split {SUBMISSION} "
                                  "to write predictions for the evaluation server")
        if not train:
            raise DataLayoutError(f"{summary['root']}: the {opts['train_split']!r} split is empty")
        return CheckedData.from_summary(summary, split=split, options=opts, train=train, test=test,
                                        facts=dict(submission=submission))

    def check_dataset(self, root: Path, opts: dict[str, Any]) -> dict[str, Any]:
        """The dataset's checker, given the task options it takes by name (WHU-CD's
        ``split_protocol`` and ``tile`` choose and cut its layout)."""
        checker = load_object(self.dataset.checker)
        params = inspect.signature(checker).parameters
        return checker(root, **{k: opts[k] for k in params if k != "root" and k in opts})

    # -- how the dates meet the backbone -----------------------------------------------
    def plan(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData) -> dict[str, Any]:
        """Per date: the modality fed, the files (band selection) and channel repeat; the mode."""
        opts = data.options
        mods = list(data.fact("date_modalities"))
        fed = set(self.modalities)
        temporal = str(opts["temporal"])
        if temporal not in ("siamese", "native"):
            raise SpecError(f"--option temporal={temporal}: expected siamese or native")
        if temporal == "native" and not backbone.temporal:
            raise SpecError(f"--option temporal=native: backbone {backbone.name!r} has no temporal path "
                            "(use temporal=siamese)")
        dates: list[dict[str, Any]] = []
        notes: list[str] = []
        for i, m in enumerate(mods):
            if m in fed:
                dates.append(dict(modality=m, bands=list(backbone.modalities[m]), repeat=1, source=m))
            elif m == "sar" and "hr" in fed:
                dates.append(dict(modality="hr", bands=["SAR"], repeat=3, source=m))
                notes.append(f"date {i + 1} SAR replicated to R,G,B for the RGB backbone")
            elif m == "s2" and "hr" in fed and data.fact("rgb_view", None):
                dates.append(dict(modality="hr", bands=list(data.fact("rgb_view")), repeat=1, source=m))
                notes.append(f"date {i + 1} Sentinel-2 shown as RGB ({','.join(data.fact('rgb_view'))})")
            else:
                raise SpecError(f"backbone {backbone.name!r} cannot take date {i + 1} ({m}) of task {self.info.name!r}")
        used = {d["modality"] for d in dates}
        if temporal == "native":
            if len(used) > 1:
                raise SpecError("--option temporal=native needs both dates in one modality")
            mode = "native"
            doy = all(s.get("doy") for s in [*data.train, *data.test])
            notes.insert(0, f"native temporal path of {backbone.name} over the dates"
                            + (" with day of year" if doy else " without dates (none in the data)"))
        elif len(used) > 1:
            mode = "multimodal"
            notes.insert(0, "one multimodal call: " + ", ".join(
                f"{d['modality']}=date {i + 1}" for i, d in enumerate(dates)) + " (backbone's own fusion)")
        else:
            mode = "siamese"
            notes.insert(0, f"siamese: shared backbone per date, FeatureFusionNeck {opts['fusion']}")
        self.modalities = tuple(m for m in self.modalities if m in used)
        return dict(mode=mode, dates=dates, adapter="; ".join(notes))

    def _files(self, sample: dict[str, Any], date: dict[str, Any], data: CheckedData, i: int) -> list[str]:
        files = sample["dates"][i]
        names = data.fact("band_files", None)  # one file per band: select the planned bands by name
        if names is None:
            return files
        index = {n: k for k, n in enumerate(names[date["source"]])}
        return [files[index[b]] for b in date["bands"]]

    def card(self, opts: dict[str, Any]) -> pc.ProtocolCard | None:
        """The protocol card of this run: the task's, or the variant its ``head`` option picks."""
        return pc.task_card(self.info, opts)

    def _stats(self, plan: dict[str, Any], data: CheckedData) -> tuple[list[float], list[float], str]:
        """Per-channel mean/std: 8-bit RGB dates take ImageNet's (``head=mars``: MaRS' 0.5/0.5 on
        0-1 pixels), other dates the statistics of the training images."""
        head = str(data.options.get("head", "uniform"))
        means: list[float] = []
        stds: list[float] = []
        notes = []
        for i, date in enumerate(plan["dates"]):
            if date["source"] == "hr" and data.fact("hr_uint8", False) and head == "mars":
                mean, std = [MARS_PIXEL_MEAN] * len(RGB_MEAN), [MARS_PIXEL_STD] * len(RGB_STD)
                notes.append(f"date {i + 1}: MaRS' mean/std 0.5 on 0-1 pixels ({MARS_PIXEL_MEAN}/{MARS_PIXEL_STD})")
            elif date["source"] == "hr" and data.fact("hr_uint8", False):
                mean, std = list(RGB_MEAN), list(RGB_STD)
                notes.append(f"date {i + 1}: ImageNet RGB mean/std (0-255)")
            else:
                arrays = [read_date(self._files(s, date, data, i), s.get("window"))
                          for s in data.train[:STATS_SAMPLES]]
                pix = np.concatenate([a.reshape(-1, a.shape[-1]) for a in arrays])
                mean = [round(float(v), 4) for v in pix.mean(0)]
                std = [round(max(float(v), 1e-6), 4) for v in pix.std(0)]
                notes.append(f"date {i + 1}: per-band mean/std of {len(arrays)} training images")
            means += mean * date["repeat"]
            stds += std * date["repeat"]
        return means, stds, "; ".join(notes)

    def _class_weight(self, opts: dict[str, Any], data: CheckedData) -> tuple[list[float] | None, str]:
        """The change head's cross-entropy class weights from the ``class_weight`` option:
        ``none`` (plain CE, open-cd's default), ``balanced`` (inverse pixel frequency of the
        training labels, ``n / (classes * n_c)`` as scikit-learn's ``balanced``) or explicit
        weights ``w0,w1,...``, one per class; tasks that do not declare the option train with plain
        CE. Under plain CE, rare change (OSCD) lets a short schedule settle on "unchanged
        everywhere" before it learns the change; the OSCD authors' FC-EF / FC-Siam training weights
        the two classes inversely to their pixel frequency for that reason. Returns the weights
        and the text the row's adapter records (empty for ``none``)."""
        value = str(opts.get("class_weight", "none")).strip().lower()
        n = len(data.classes)
        if value == "none":
            return None, ""
        if value == "balanced":
            from rsbench_change.io import read_raster

            label_map = {int(k): int(v) for k, v in (data.fact("label_map", None) or {}).items()}
            counts = np.zeros(n, np.int64)
            for s in data.train:
                raw = read_raster(s["label"], s.get("window"))[..., 0]
                if label_map:  # label values -> classes; values mapped to ignore (255) are not counted
                    for label_value, cls in label_map.items():
                        if cls < n:
                            counts[cls] += int(np.count_nonzero(raw == label_value))
                else:
                    ids = raw.astype(np.int64).ravel()
                    counts += np.bincount(ids[(ids >= 0) & (ids < n)], minlength=n)
            if (counts == 0).any():
                absent = [c for c, k in zip(data.classes, counts) if k == 0]
                raise SpecError(f"--option class_weight=balanced: class {', '.join(absent)} has no training pixel")
            weights = [round(float(counts.sum() / (n * k)), 4) for k in counts]
            how = "balanced: inverse pixel frequency of the training labels"
        else:
            try:
                weights = [float(v) for v in value.split(",")]
            except ValueError:
                weights = []
            if len(weights) != n or any(w <= 0 for w in weights):
                raise SpecError(f"--option class_weight={value}: expected none, balanced or {n} positive "
                                f"comma-separated weights (classes {', '.join(data.classes)})")
            how = "given"
        shown = ", ".join(f"{c} {w:g}" for c, w in zip(data.classes, weights))
        return weights, f"loss: cross-entropy, class weights {shown} ({how})"

    # -- config ---------------------------------------------------------------------
    def build_config(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData,
                     work_dir: Path) -> dict[str, Any]:
        opts = data.options
        head = str(opts.get("head", "uniform"))
        card = self.card(opts)
        plan = self.plan(spec, backbone, data)
        backbone_kwargs: dict[str, Any] = {}
        mean, std, data.derived["normalization"] = self._stats(plan, data)
        class_weight, data.derived["loss"] = self._class_weight(opts, data)
        data.derived["adapter"] = plan["adapter"]
        splits = work_dir / "splits"
        splits.mkdir(parents=True, exist_ok=True)
        for name in ("train", "test"):
            rows = [dict(id=s["id"], label=s.get("label"), doy=s.get("doy"), window=s.get("window"),
                         dates=[self._files(s, d, data, i) for i, d in enumerate(plan["dates"])])
                    for s in data.samples(name)]
            (splits / f"{name}.json").write_text(json.dumps(rows))

        classes = list(data.classes)
        batch = spec.batch_size or int(opts["batch_size"])
        max_iters = spec.max_iters or int(opts["iters"])
        lr = spec.lr or float(opts["lr"])
        card_plan = None
        self.imports = (*type(self).imports, *(("rsbench_change.mars_cd_head",) if head == "mars" else ()))
        if pc.applies(card, spec):  # the card's batch, accumulation, schedule, LR, drop path, loss
            declared = dict(self.info.options)
            batch, lr = pc.card_batch(card, spec, opts, declared), pc.card_lr(card, spec, opts, declared)
            card_plan = data.derived["card_plan"] = pc.plan(card, spec, batch, lr, len(data.train),
                                                    pc.changed_length(opts, declared, "iters", "iters"))
            max_iters = card_plan.max_iters
            self.imports = (*self.imports, *pc.imports(card))
            backbone_kwargs.update(pc.drop_path_overrides(backbone, card.drop_path.value))
        crop = int(opts["crop_size"])
        eval_crop = int(opts["eval_crop"])
        channels = list(backbone.out_channels)
        dates = [dict(modality=d["modality"], channels=len(d["bands"]) * d["repeat"]) for d in plan["dates"]]
        if plan["mode"] == "native":  # the dates as one time series: the backbone builds its temporal path
            backbone_kwargs["in_frames"] = {plan["dates"][0]["modality"]: len(plan["dates"])}
            if not all(s.get("doy") for s in [*data.train, *data.test]):
                backbone_kwargs["require_dates"] = False
        neck = None
        if plan["mode"] == "siamese":
            neck = dict(type="RSBFeatureFusionNeck", policy=str(opts["fusion"]))
            channels = fused_channels(str(opts["fusion"]), channels)
        head_channels = 64 if backbone.tiny else 512
        norm = dict(type="BN", requires_grad=True)

        load = dict(type="RSBLoadChangePair", label_map=data.fact("label_map", None),
                    repeat=[d["repeat"] for d in plan["dates"]])
        train_pipeline = [load, dict(type="RSBChangeRandomCrop", crop_size=crop),
                          dict(type="RSBChangeRandomFlip", prob=0.5), dict(type="RSBPackChangeInputs")]
        test_pipeline = [load, dict(type="RSBPackChangeInputs")]

        def dataset(name: str, pipeline: list[dict[str, Any]]) -> dict[str, Any]:
            return dict(type="RSBChangeDataset", ann_file=str(splits / f"{name}.json"),
                        metainfo=dict(classes=classes), pipeline=pipeline, serialize_data=False)

        test_cfg = (dict(mode="slide", crop_size=(eval_crop, eval_crop), stride=(eval_crop, eval_crop))
                    if eval_crop > 0 else dict(mode="whole"))
        extra = {"class_weight": class_weight} if class_weight else {}
        loss: Any = dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0, **extra)
        clip = dict(max_norm=5.0)
        if card_plan is not None:
            schedule = pc.param_scheduler(card, card_plan)
            # MaRS' released training clips no gradient; the uniform head keeps the harness's clipping
            optim_wrapper = pc.optim_wrapper(card, card_plan, base={} if head == "mars" else dict(clip_grad=clip))
            weights = card.loss.value or {}
            if weights and head != "mars":  # MaRS: 0.5 BCE + 0.5 Dice on one logit; the uniform head's two
                # classes take 0.5 CE + 0.5 Dice (head=mars builds the released loss in mars_head)
                loss = [dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=float(weights["ce"]),
                             loss_name="loss_ce", **extra),
                        dict(type="DiceLoss", use_sigmoid=False, loss_weight=float(weights["dice"]),
                             loss_name="loss_dice")]
        else:
            schedule = [dict(type="PolyLR", power=1.0, eta_min=0.0, by_epoch=False, begin=0, end=max_iters)]
            optim_wrapper = dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=lr, weight_decay=0.01),
                                 clip_grad=clip)
        if head == "mars":
            decode_head = self.mars_head(card, backbone, channels, classes, norm, data)
        else:
            decode_head = dict(type="UPerHead", in_channels=channels, in_index=list(range(len(channels))),
                               pool_scales=(1, 2, 3, 6), channels=head_channels, dropout_ratio=0.1,
                               num_classes=len(classes), norm_cfg=norm, align_corners=False, loss_decode=loss)
        model = dict(
            type="RSBSiamEncoderDecoder", dates=dates, temporal=plan["mode"],
            data_preprocessor=dict(type="SegDataPreProcessor", mean=mean, std=std, bgr_to_rgb=False,
                                   pad_val=0, seg_pad_val=255, size_divisor=32,
                                   test_cfg=dict(size_divisor=32)),
            backbone=self.backbone_config(spec, backbone, **backbone_kwargs),
            decode_head=decode_head,
            train_cfg=dict(), test_cfg=test_cfg,
        )
        if neck is not None:
            model["neck"] = neck
        return dict(
            default_scope=self.default_scope,
            model=model,
            train_dataloader=dict(batch_size=batch, num_workers=spec.num_workers,
                                  sampler=dict(type="InfiniteSampler", shuffle=True),
                                  dataset=dataset("train", train_pipeline)),
            train_cfg=dict(type="IterBasedTrainLoop", max_iters=max_iters),
            test_dataloader=dict(batch_size=1, num_workers=spec.num_workers,
                                 sampler=dict(type="DefaultSampler", shuffle=False),
                                 dataset=dataset("test", test_pipeline)),
            # Windows of large scenes: one change map per scene, assembled from the windows.
            test_evaluator=dict(type="RSBSceneChangeMetric" if any(s.get("window") for s in data.test)
                                else "RSBChangeMetric", iou_metrics=["mIoU", "mFscore"],
                                output_dir=str(work_dir / "predictions"), format_only=data.fact("submission"),
                                naming=self.dataset.name, label_map=data.fact("label_map", None)),
            test_cfg=dict(type="TestLoop"),
            optim_wrapper=optim_wrapper,
            param_scheduler=schedule,
            **self.runtime_config(spec, max_iters, int(opts["log_interval"])),
        )

    def mars_head(self, card: pc.ProtocolCard, backbone: BackboneInfo, channels: list[int], classes: list[str],
                  norm: dict[str, Any], data: CheckedData) -> dict[str, Any]:
        """MaRS' released change decoder (``head=mars``) on the last fused level: enough up-blocks
        for the backbone's last stride (the release: 5 for SwinV2's 32), one logit, and the released
        0.5 BCE + 0.5 Dice in mmseg's losses, whether or not the run follows the card's schedule."""
        if len(classes) != 2:
            raise SpecError(f"--option head=mars: MaRS' change decoder predicts one change logit; task "
                            f"{self.info.name!r} has {len(classes)} classes")
        stride = int(backbone.out_strides[-1])
        times = round(math.log2(stride)) if stride > 0 else -1
        if times < 0 or 2 ** times != stride:
            raise SpecError(f"--option head=mars: backbone {backbone.name!r} ends at stride {stride}; the decoder's "
                            "x2 up-blocks need a power of two")
        weights = card.loss.value
        data.derived["loss"] = f"loss: {weights['bce']:g} BCE + {weights['dice']:g} Dice on one logit (MaRS)"
        data.derived["head"] = MARS_HEAD.format(n=times)
        loss = [dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=float(weights["bce"]),
                     loss_name="loss_bce"),
                dict(type="DiceLoss", use_sigmoid=True, activate=False, naive_dice=True,
                     loss_weight=float(weights["dice"]), loss_name="loss_dice")]
        return dict(type="RSBMaRSChangeHead", in_channels=channels[-1], in_index=len(channels) - 1,
                    upsample_times=times, num_classes=2, out_channels=1, threshold=0.5, norm_cfg=norm,
                    align_corners=False, loss_decode=loss)

    # -- external predictions (rsbench score) -------------------------------------------
    def prediction_reader(self, predictions: Path, data: CheckedData, cfg: dict[str, Any]) -> Any:
        """One change map per test sample, named and encoded as :mod:`rsbench_change.predictions`
        documents (what a run writes to its work dir's ``predictions/``), the label's size; for a
        sample that is a window of a scene, the scene's map, read at the window."""
        import torch
        from mmengine.structures import PixelData

        from rsbench.run.scoring import find_prediction, read_id_map
        from rsbench_change.io import raster_shape
        from rsbench_change.predictions import decode, prediction_stem, read_scene_window, scene_stem

        folder = Path(predictions)
        if data.fact("submission"):
            raise PredictionError(f"--split {SUBMISSION} has no targets to score predictions against")
        if not folder.is_dir():
            raise PredictionError(f"--predictions {folder}: expected a folder of change maps (one PNG per sample)")
        label_map = data.fact("label_map", None)
        n_classes = len(data.classes)
        cache: dict[Path, np.ndarray] = {}

        def read(ds: Any) -> None:
            window = ds.metainfo.get("window")
            if window:
                path = find_prediction(folder, [scene_stem(self.dataset.name, ds.img_path, ds.seg_map_path)])
                raw = read_scene_window(path, window, raster_shape(ds.seg_map_path)[:2], cache)
            else:
                path = find_prediction(folder, [prediction_stem(self.dataset.name, ds.img_path)])
                raw = read_id_map(path)
            ids = decode(raw, label_map, n_classes, path)
            expected = tuple(ds.gt_sem_seg.shape)
            if ids.shape != expected:
                raise PredictionError(f"{path}: size {ids.shape}; the label is {expected}")
            ds.pred_sem_seg = PixelData(data=torch.from_numpy(np.ascontiguousarray(ids))[None])

        return read

    def metric_value(self, metrics: dict[str, Any]) -> float:
        key = HEADLINE[self.info.name]
        if key not in metrics:  # --split submission: predictions written, nothing scored
            return float("nan")
        return float(metrics[key])

    def row_fields(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData) -> dict[str, Any]:
        opts = data.options
        unit = "windows" if any(s.get("window") for s in data.test) else "images"
        evaluation = (f"eval on {opts['eval_crop']} px non-overlapping crops" if int(opts["eval_crop"]) > 0
                      else f"eval on full {unit}")
        protocol = f"; split protocol: {data.fact('protocol_note')}" if data.fact("protocol_note", None) else ""
        loss = f"; {data.derived['loss']}" if data.derived.get("loss") else ""
        head = f"; {data.derived['head']}" if data.derived.get("head") else ""
        card_plan = data.derived.get("card_plan")  # set only where the run followed its card
        card = f"; card {self.card(opts).id} ({card_plan.describe()})" if card_plan is not None else ""
        return {"adapter": f"{data.derived['adapter']}; {evaluation}{protocol}{head}{loss}{card}",
                "normalization": data.derived["normalization"]}
