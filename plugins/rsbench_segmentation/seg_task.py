"""One mmseg Task for every segmentation evaluation: UPerNet (mmseg's ``UPerHead`` with an
``FCNHead`` auxiliary head on stage 3, as SkySense's iSAID config) on any rsbench backbone,
trained with cross-entropy, AdamW and warmup + poly decay, scored by mmseg's ``IoUMetric``.

What differs between datasets lives in the dataset module (named by the dataset's ``checker``):
classes, palette, per-band normalization, label decoding, whether samples are cut into patch
windows (``PATCHED``, iSAID/Potsdam as mmseg's converters), how the evaluated split and the
training split are chosen (``partition``), the headline metric key (``HEADLINE``) and the classes
it averages (``SCORED``).

Time series (DynamicEarthNet): a module with ``frames(opts) -> {modality: T}`` and ``BANDS``
(the bands each modality's files hold) has every modality's frames stacked frame-major along
channels, only the backbone's bands kept, in the backbone's order (Planet B,G,R,NIR feeds an
R,G,B backbone R,G,B); the segmentor turns them back into (B, T, C, H, W). A temporal backbone
receives the series with its days of year and the sample's (lat, lon); a single-image backbone
gets the ``temporal_reduction`` option (``mean``: each frame encoded, features averaged over
time; ``last``: the last frame only), recorded in the row's adapter. A module with
``normalization_stats(train, opts)`` measures statistics the dataset does not publish.

A task declaring the ``head`` option (deepglobe-road) also offers ``head=mars``: MaRS' released
MaRSFCN decoder (:mod:`rsbench_segmentation.mars_fcn`, no auxiliary head) with its loss and input
normalisation, and that head's protocol card (``TaskInfo.option_cards``), which
MaRS' paper number belongs to.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from rsbench.errors import DataLayoutError, PredictionError, SpecError
from rsbench.plugin_api.catalog import BackboneInfo, load_object
from rsbench.plugin_api.checked_data import CheckedData
from rsbench.plugin_api.task import Task
from rsbench.protocol import protocol_card as pc
from rsbench.run.spec import RunSpec
from rsbench_segmentation.cards import MARS_PIXEL_MEAN, MARS_PIXEL_STD
from rsbench_segmentation.common import IGNORE, crop_pad, windows

#: Meta keys mmseg's ``PackSegInputs`` keeps by default, plus the time-series ones.
PACK_META = ("img_path", "seg_map_path", "ori_shape", "img_shape", "pad_shape", "scale_factor", "flip",
             "flip_direction", "reduce_zero_label", "dates", "latlon")

#: How the segmentor treats a time series, as the row's adapter records it.
TEMPORAL = {
    "native": "native (frames, day-of-year dates and (lat, lon) to the backbone)",
    "mean": "temporal_reduction=mean (per-frame encoder, features averaged over time)",
    "last": "temporal_reduction=last (last frame only)",
}
#: UPerHead width: the mmseg UPerNet default, or a small one for the tiny CPU backbones.
HEAD_CHANNELS, TINY_HEAD_CHANNELS = 512, 64
#: The row's record of MaRS' released decoder (``head=mars``).
MARS_HEAD = "head=mars: MaRS' released MaRSFCN (4 up-blocks from the last stage + final deconv; no auxiliary head)"


class SegmentationTask(Task):
    default_scope = "mmseg"
    imports = ("mmseg.models", "mmseg.datasets", "mmseg.evaluation", "rsbench_segmentation.mm")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: What the backbone can take; ``self.modalities`` becomes what this run feeds.
        self.available = tuple(self.modalities)

    @property
    def module(self) -> ModuleType:
        """The dataset module (reader, labels, normalization, metric choice)."""
        return importlib.import_module(self.dataset.checker.partition(":")[0])

    # -- data -------------------------------------------------------------------
    def check_data(self, root: Path, spec: RunSpec) -> CheckedData:
        opts, split = spec.options, spec.split
        summary = self.dataset.check(root)
        partition = getattr(self.module, "partition", None)
        if partition is not None:
            train, test = partition(summary, split, opts)
        else:
            train, test = summary["splits"]["train"], summary["splits"][split]
        if getattr(self.module, "PATCHED", False):
            patch, overlap = int(opts["patch_size"]), int(opts["overlap"])
            train, test = (self._patches(s, patch, overlap) for s in (train, test))
        if not train or not test:
            raise DataLayoutError(f"{summary['root']}: no samples for training ({len(train)}) or split "
                                  f"{split!r} ({len(test)})")
        self.modalities = self.fed_modalities(opts)
        stats = getattr(self.module, "normalization_stats", None)
        facts = dict(fed=list(self.modalities), normalization=stats(train, opts) if stats is not None else None)
        return CheckedData.from_summary(summary, split=split, options=opts, train=train, test=test, facts=facts)

    def fed_modalities(self, opts: dict[str, Any]) -> tuple[str, ...]:
        """The modalities this run feeds: those the backbone takes, minus ``missing_modality``."""
        missing = str(opts.get("missing_modality", "none"))
        if missing != "none" and missing not in self.info.modalities:
            raise SpecError(f"--option missing_modality={missing}: expected none or one of "
                            f"{', '.join(self.info.modalities)}")
        fed = tuple(m for m in self.available if m != missing)
        if not fed:
            raise SpecError(f"--option missing_modality={missing} leaves this backbone no modality "
                            f"(it takes {', '.join(self.available)})")
        return fed

    @staticmethod
    def _patches(samples: list[dict[str, Any]], patch: int, overlap: int) -> list[dict[str, Any]]:
        out = []
        for s in samples:
            for y0, y1, x0, x1 in windows(*s["size"], patch, overlap):
                out.append(dict(s, name=f"{s['name']}_{y0}_{y1}_{x0}_{x1}", window=[y0, y1, x0, x1]))
        return out

    # -- config -----------------------------------------------------------------
    @staticmethod
    def head(opts: dict[str, Any]) -> str:
        """The decoder the run's ``head`` option names (``uniform`` where the task has none)."""
        return str(opts.get("head", "uniform"))

    def card(self, opts: dict[str, Any]) -> pc.ProtocolCard | None:
        """The protocol card of this run: the task's, or the variant its ``head`` option picks."""
        return pc.task_card(self.info, opts)

    def head_channels(self, backbone: BackboneInfo, opts: dict[str, Any]) -> int:
        return int(opts.get("head_channels") or (TINY_HEAD_CHANNELS if backbone.tiny else HEAD_CHANNELS))

    # -- bands and frames (identity for single-image datasets) ----------------------
    def frames(self, opts: dict[str, Any]) -> dict[str, int]:
        fn = getattr(self.module, "frames", None)
        return {m: int(fn(opts).get(m, 1)) if fn else 1 for m in self.modalities}

    def band_index(self, modality: str, backbone: BackboneInfo | None) -> list[int]:
        """Positions, in the dataset's files, of the bands fed for ``modality``: the backbone's
        bands in its order where the module declares ``BANDS``, else all of the task's."""
        task_bands = list(self.info.modalities[modality])
        file_bands = list(getattr(self.module, "BANDS", {}).get(modality, task_bands))
        wanted = list(backbone.modalities.get(modality, task_bands)) if backbone and hasattr(self.module, "BANDS") \
            else task_bands
        return [file_bands.index(b) for b in wanted]

    def channels(self, backbone: BackboneInfo, opts: dict[str, Any]) -> dict[str, list[int]] | None:
        """Stacked-channel indices kept per modality (None: all, the single-image case)."""
        frames = self.frames(opts)
        out = {}
        for m in self.modalities:
            idx = self.band_index(m, backbone)
            n = len(getattr(self.module, "BANDS", {}).get(m, self.info.modalities[m]))
            out[m] = [t * n + i for t in range(frames[m]) for i in idx]
        identity = all(v == list(range(len(self.info.modalities[m]))) for m, v in out.items())
        return None if identity else out

    def temporal(self, backbone: BackboneInfo, opts: dict[str, Any]) -> str | None:
        """How the segmentor treats time series: None (not a time-series dataset), ``native``
        (temporal backbone) or the ``temporal_reduction`` option."""
        if getattr(self.module, "frames", None) is None:
            return None
        if backbone.temporal:
            return "native"
        reduction = str(opts.get("temporal_reduction", "mean"))
        if reduction not in ("mean", "last"):
            raise SpecError(f"--option temporal_reduction={reduction}: expected mean or last")
        return reduction

    def band_stats(self, data: CheckedData | None) -> dict[str, Any]:
        """Per modality (means, stds) of the file bands: ``head=mars`` takes MaRS' 0.5/0.5 on 0-1
        pixels (8-bit images), else the measured or published statistics."""
        if data is not None and self.head(data.options) == "mars":
            return {m: ([MARS_PIXEL_MEAN] * len(b), [MARS_PIXEL_STD] * len(b)) for m, b in self.info.modalities.items()}
        return (data.fact("normalization", None) if data is not None else None) or self.module.NORMALIZATION

    def normalization(self, backbone: BackboneInfo | None = None,
                      data: CheckedData | None = None) -> tuple[list[float], list[float]]:
        """Per stacked channel: each fed band's mean/std, repeated for every frame."""
        stats = self.band_stats(data)
        frames = self.frames(data.options if data is not None else {})
        mean: list[float] = []
        std: list[float] = []
        for m in self.modalities:
            idx = self.band_index(m, backbone)
            mean += [float(stats[m][0][i]) for i in idx] * frames[m]
            std += [float(stats[m][1][i]) for i in idx] * frames[m]
        return mean, std

    def build_config(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData,
                     work_dir: Path) -> dict[str, Any]:
        opts = data.options
        mod = self.module
        classes, n_classes = list(mod.CLASSES), len(mod.CLASSES)
        splits = work_dir / "splits"
        splits.mkdir(parents=True, exist_ok=True)
        for name in ("train", "test"):
            (splits / f"{name}.json").write_text(json.dumps(data.samples(name)))

        crop = int(opts["patch_size"] if getattr(mod, "PATCHED", False) else opts["crop_size"])
        head = self.head(opts)
        card = self.card(opts)
        follow = pc.applies(card, spec)
        self.imports = (*type(self).imports, *(("rsbench_segmentation.mars_fcn",) if head == "mars" else ()))
        batch = spec.batch_size or int(opts["batch_size"])
        max_iters = spec.max_iters or int(opts["max_iters"])
        lr = spec.lr or float(opts["lr"])
        if follow:  # the card's batch, accumulation, schedule and LR (rsbench.protocol.protocol_card)
            declared = dict(self.info.options)
            batch, lr = pc.card_batch(card, spec, opts, declared), pc.card_lr(card, spec, opts, declared)
            plan = pc.plan(card, spec, batch, lr, len(data.train),
                           pc.changed_length(opts, declared, "max_iters", "iters"))
            max_iters = plan.max_iters
            data.derived["card_plan"] = plan
            self.imports = (*self.imports, *pc.imports(card))
        hc = self.head_channels(backbone, opts)
        mean, std = self.normalization(backbone, data)
        load = dict(type="RSBLoadSample", reader=f"{mod.__name__}:load", modalities=list(self.modalities))
        channels, temporal, frames = self.channels(backbone, opts), self.temporal(backbone, opts), self.frames(opts)
        pack = dict(type="PackSegInputs")
        if channels is not None:
            load["channels"] = channels
        if temporal is not None:
            pack["meta_keys"] = list(PACK_META)
        model_extra: dict[str, Any] = {} if temporal is None else {"temporal": temporal}
        train_pipeline: list[dict[str, Any]] = [load]
        augment = card.augmentation.value if follow else None
        if augment:  # the card's augmentation ("pkg.mod:fn" -> fn(crop) -> transforms)
            train_pipeline += load_object(augment)(crop)
        else:
            if not getattr(mod, "PATCHED", False):
                train_pipeline.append(dict(type="RandomCrop", crop_size=(crop, crop), cat_max_ratio=0.75))
            train_pipeline.append(dict(type="RandomFlip", prob=0.5))
        train_pipeline.append(pack)
        test_pipeline = [load, pack]

        def loader(name: str, pipeline: list[dict[str, Any]], bs: int, train: bool) -> dict[str, Any]:
            return dict(batch_size=bs, num_workers=spec.num_workers,
                        sampler=dict(type="InfiniteSampler" if train else "DefaultSampler", shuffle=train),
                        dataset=dict(type="RSBSegDataset", ann_file=str(splits / f"{name}.json"), classes=classes,
                                     palette=[list(c) for c in mod.PALETTE], pipeline=pipeline))

        norm = dict(type="BN", requires_grad=True)
        out = list(backbone.out_channels)
        paramwise = dict(custom_keys={"norm": dict(decay_mult=0.0)})
        decode_loss: Any = dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0)
        backbone_overrides: dict[str, Any] = {}
        if temporal == "native":  # the frames each modality feeds: the backbone builds its temporal path
            backbone_overrides["in_frames"] = {m: frames[m] for m in self.modalities}
        if follow:
            schedule = pc.param_scheduler(card, plan)
            optim_wrapper = pc.optim_wrapper(card, plan, base=dict(paramwise_cfg=paramwise))
            backbone_overrides.update(pc.drop_path_overrides(backbone, card.drop_path.value))
            weights = card.loss.value or {}
            if weights:  # weighted sum of mmseg losses (MaRS: 0.5 CE + 0.5 Dice)
                decode_loss = [dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=float(weights["ce"]),
                                    loss_name="loss_ce"),
                               dict(type="DiceLoss", use_sigmoid=False, loss_weight=float(weights["dice"]),
                                    ignore_index=IGNORE, loss_name="loss_dice")]
        else:
            warmup = min(1500, max_iters // 10)
            schedule = [dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=warmup)] if warmup else []
            schedule.append(dict(type="PolyLR", power=1.0, eta_min=0.0, by_epoch=False, begin=warmup, end=max_iters))
            optim_wrapper = dict(type="OptimWrapper",
                                 optimizer=dict(type="AdamW", lr=lr, betas=(0.9, 0.999), weight_decay=0.01),
                                 paramwise_cfg=paramwise)
        heads: dict[str, Any] = dict(
            decode_head=dict(type="UPerHead", in_channels=out, in_index=list(range(len(out))),
                             pool_scales=(1, 2, 3, 6), channels=hc, dropout_ratio=0.1, num_classes=n_classes,
                             norm_cfg=norm, align_corners=False, ignore_index=IGNORE, loss_decode=decode_loss),
            auxiliary_head=dict(type="FCNHead", in_channels=out[2], in_index=2, channels=max(hc // 2, 16),
                                num_convs=1, concat_input=False, dropout_ratio=0.1, num_classes=n_classes,
                                norm_cfg=norm, align_corners=False, ignore_index=IGNORE,
                                loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=0.4)))
        if head == "mars":
            heads = dict(decode_head=self.mars_head(card, out, n_classes, norm))
        return dict(
            default_scope=self.default_scope,
            model=dict(
                type="RSBEncoderDecoder",
                modalities=[[m, len(self.band_index(m, backbone))] + ([frames[m]] if temporal else [])
                            for m in self.modalities],
                **model_extra,
                data_preprocessor=dict(type="SegDataPreProcessor", mean=mean, std=std, bgr_to_rgb=False,
                                       pad_val=0, seg_pad_val=IGNORE, size=(crop, crop)),
                backbone=self.backbone_config(spec, backbone, **backbone_overrides),
                **heads,
                train_cfg=dict(),
                test_cfg=self.test_cfg(opts, crop),
            ),
            train_dataloader=loader("train", train_pipeline, batch, True),
            train_cfg=dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=max_iters + 1),
            test_dataloader=loader("test", test_pipeline, 1, False),
            test_evaluator=dict(type="RSBSegMetric", iou_metrics=["mIoU", "mFscore"], ignore_index=IGNORE,
                                scored_classes=list(getattr(mod, "SCORED", ())),
                                output_dir=str(work_dir / "predictions")),
            test_cfg=dict(type="TestLoop"),
            optim_wrapper=optim_wrapper,
            param_scheduler=schedule,
            **self.runtime_config(spec, max_iters),
        )

    @staticmethod
    def mars_head(card: pc.ProtocolCard, out: list[int], n_classes: int, norm: dict[str, Any]) -> dict[str, Any]:
        """MaRS' released MaRSFCN (``head=mars``) on the backbone's four stages, with the released
        0.5 CE + 0.5 Dice in mmseg's losses, whether or not the run follows the card's schedule."""
        if len(out) != 4:
            raise SpecError(f"--option head=mars: MaRSFCN decodes four stages; the backbone has {len(out)} ({out})")
        weights = card.loss.value
        loss = [dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=float(weights["ce"]), loss_name="loss_ce"),
                dict(type="DiceLoss", use_sigmoid=False, activate=False, naive_dice=True,
                     loss_weight=float(weights["dice"]), loss_name="loss_dice")]
        return dict(type="RSBMaRSFCNHead", in_channels=list(out), in_index=list(range(len(out))), num_classes=n_classes,
                    norm_cfg=norm, align_corners=False, ignore_index=IGNORE, loss_decode=loss)

    def test_cfg(self, opts: dict[str, Any], crop: int) -> dict[str, Any]:
        """Patched datasets are predicted patch by patch (``whole``); the others by a sliding
        window of the training crop with ``slide_stride`` (DeepGlobe/MaRS: stride = crop)."""
        if getattr(self.module, "PATCHED", False):
            return dict(mode="whole")
        stride = int(opts.get("slide_stride") or crop)
        return dict(mode="slide", crop_size=(crop, crop), stride=(stride, stride))

    # -- external predictions ---------------------------------------------------------------
    def prediction_reader(self, predictions: Path, data: CheckedData, cfg: dict[str, Any]) -> Any:
        """Class-id images (PNG or single-band GeoTIFF), one per label image, of its size, at the
        label's path relative to the data root (suffix swapped) or, where label names are unique
        in the split, flat as ``<label stem>.png``; patched datasets are cut into the same windows
        as the labels. A file per evaluated sample (``<sample name>.png``, what ``rsbench run``
        writes to its work dir's ``predictions/``) is taken as it is."""
        import torch
        from mmengine.structures import PixelData

        from rsbench.run.scoring import check_ids, find_prediction, read_id_map

        folder = Path(predictions)
        if not folder.is_dir():
            raise PredictionError(f"--predictions {folder}: expected a folder of class-id images")
        samples = {s["name"]: s for s in data.test}
        n_classes = len(self.module.CLASSES)
        cache: dict[Path, Any] = {}
        root = data.root.resolve()
        stems = [Path(s["label"]).stem for s in data.test]
        labels_per_stem = {st: len({s["label"] for s in data.test if Path(s["label"]).stem == st}) for st in stems}

        def candidates(sample: dict[str, Any]) -> list[str]:
            label = Path(sample["label"])
            out = []
            if root is not None and label.resolve().is_relative_to(root):
                out.append(str(label.resolve().relative_to(root).with_suffix("")))
            if labels_per_stem[label.stem] == 1:
                out.insert(0, label.stem)
            return out + [sample["name"]]

        def read(ds: Any) -> None:
            sample = samples[Path(ds.img_path).stem]
            gt_shape = tuple(ds.gt_sem_seg.shape)
            path = find_prediction(folder, candidates(sample))
            if path not in cache:
                cache.clear()
                cache[path] = check_ids(read_id_map(path), n_classes, path)
            ids = cache[path]
            if path == folder / f"{sample['name']}{path.suffix}" and path.stem != Path(sample["label"]).stem:
                expected = gt_shape
            else:
                expected = tuple(sample.get("size") or gt_shape)
                ids = crop_pad(ids, sample.get("window"), IGNORE)
            if tuple(cache[path].shape) != expected:
                raise PredictionError(f"{path}: size {tuple(cache[path].shape)}; the label is {expected}")
            ds.pred_sem_seg = PixelData(data=torch.from_numpy(np.ascontiguousarray(ids))[None])

        return read

    # -- results ----------------------------------------------------------------
    def metric_value(self, metrics: dict[str, Any]) -> float:
        return float(metrics[self.module.HEADLINE])

    def row_fields(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData) -> dict[str, Any]:
        opts = data.options
        hc = self.head_channels(backbone, opts)
        mode = self.test_cfg(opts, int(opts.get("patch_size") or opts["crop_size"]))
        stats = self.band_stats(data)
        norm = "; ".join(f"{m}: mean={[stats[m][0][i] for i in self.band_index(m, backbone)]} "
                         f"std={[stats[m][1][i] for i in self.band_index(m, backbone)]}" for m in self.modalities)
        note = ("MaRS' mean/std 0.5 on 0-1 pixels" if self.head(opts) == "mars"
                else getattr(self.module, "NORMALIZATION_NOTE", ""))
        norm += f" ({note})" if note else ""
        temporal = self.temporal(backbone, opts)
        if temporal is not None:
            frames = self.frames(opts)
            series = ", ".join(f"{m} T={frames[m]} bands {','.join(backbone.modalities[m])}" for m in self.modalities)
        missing = opts.get("missing_modality")
        plan = data.derived.get("card_plan")  # set only where the run followed its card
        record = f"{self.card(opts).id} ({plan.describe()})" if plan is not None else ""
        decoder = (MARS_HEAD if self.head(opts) == "mars"
                   else f"UPerHead(channels={hc}, pool_scales=1,2,3,6) + FCNHead aux (stage 3, weight 0.4)")
        slide = f" {mode['crop_size'][0]}/{mode['stride'][0]}" if mode["mode"] == "slide" else ""
        adapter = (f"{decoder}; inference {mode['mode']}{slide}"
                   + f"; modalities fed: {', '.join(self.modalities)}"
                   + (f"; missing modality: {missing}" if missing is not None else "")
                   + (f"; time series ({series}): {TEMPORAL[temporal]}" if temporal is not None else "")
                   + (f"; card {record}" if record else ""))
        return {"adapter": adapter, "normalization": norm}
