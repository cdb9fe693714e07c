"""Dyna.-S2 CD: DynamicEarthNet semantic change segmentation on the monthly Sentinel-2 composites,
scored with DynamicEarthNet's SCS (``codalab_eval/semantic_change_segmentation.py`` of aysim/dynnet).

Data: the segmentation plugin's DynamicEarthNet reader (split files, ``sentinel2/<cube>/<cube>_YYYY_MM.tif``,
7-band one-hot labels); every cube's months in a split, sorted, give pairs of consecutive months (t, t+1).

Model (``RSBSemanticChangeSegmentor``): the change plugin's Siamese encoder-decoder (or SkySense's
native temporal path, below) predicts the 6 classes of the pair's *second* date. Month t's classes
come from the same model on the reversed pair (t+1, t), so predicted change is ``pred_t != pred_t+1``,
exactly as the official evaluation derives it from consecutive monthly maps; training swaps the
dates at random so the model learns both directions.

Native route (``-o temporal=native``, SkySense). The binary change tasks feed the head SkySense's
fused map ``F_mm`` of the pair alone. That cannot work here: the temporal fusion is a Transformer
over the frames whose only position signal is each frame's day-of-year encoding, so ``F_mm`` is a
function of the *set* {(frame, day)}. Reversing the pair together with its dates (how month t is
predicted) gives the same features (to float rounding), hence ``pred_t == pred_t+1`` and BC = 0;
in training, ``RSBSwapDates`` showed the same input with the two months' labels swapped, so SC
suffered too. A symmetric map can say *where* the pair differs, never *which month* a class
belongs to. So the native route here runs the backbone twice: once on the pair as a time series
(``(B, 2, C, H, W)`` with both days: the joint ``F_mm``, as in the binary tasks) and once on each
date alone through the same temporal path (``(2B, 1, C, H, W)``, each frame with its own day).
Per pyramid level the head gets ``[neck(date 1, date 2), joint]`` (the task's ``fusion`` policy,
``concat`` by default): the ordered per-date features say which month is the target, the joint
map carries the pair's temporal context. Cost: each frame goes through the S2 encoder twice
(once per call), the price of staying on the backbone's public contract.

Metric (``RSBSCSMetric``), as the official code: gt change = ``gt_t != gt_t+1`` over all pixels
(an ignored 255 pixel differs from a class), BC = IoU of the change class of the 2 x 2 binary
confusion; SC = mIoU of month t+1 classes on gt-changed pixels (ignored gt rows dropped, IoU
summed over classes and divided by the classes with intersection + FN > 0); SCS = (BC + SC) / 2.
Confusions are summed over all pairs of the split before the ratios.

Predictions on disk (``rsbench score``; a run writes both forms to ``<work dir>/predictions/``):

* the customary one, as DynamicEarthNet's Codalab evaluation reads them: one class-id PNG (values
  0-5) per month of each cube, named like the month's label, ``<scene>-YYYY_MM_01.png``
  (``10N-121W-39N-L3H-SR-2018_03_01.png``); a pair (t, t+1) is scored with month t's and month
  t+1's maps. A run writes month t+1's map from the pair (t, t+1), the first month's from the
  reversed first pair;
* the run's own, per pair: ``<pair id>_t.png`` and ``<pair id>_t1.png`` (pair id
  ``<cube>_<YYYY-MM>_<YYYY-MM>``), the two maps the model predicted for that pair. Where both
  exist they are used, so a run's folder scores exactly the run's SCS (a month inside a series
  is predicted once per pair it belongs to).
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.evaluator import BaseMetric
from mmengine.structures import PixelData
from mmseg.registry import DATASETS, METRICS, MODELS, TRANSFORMS
from torch import Tensor

from rsbench.errors import DataLayoutError, PredictionError
from rsbench.plugin_api.catalog import BackboneInfo
from rsbench.plugin_api.checked_data import CheckedData
from rsbench.run.spec import RunSpec
from rsbench_change.change_task import STATS_SAMPLES, ChangeDetectionTask
from rsbench_change.models import SiamEncoderDecoder
from rsbench_change.models_light import fused_channels
from rsbench_change.pipeline import ChangeDataset, PackChangeInputs
from rsbench_change.plugin import DYNA_SCS as METRIC_DEFINITION  # noqa: F401 - the definition, stated once
from rsbench_change.predictions import write
from rsbench_segmentation import dynamicearthnet as den

NUM_CLASSES = len(den.CLASSES)
IGNORE = den.IGNORE_INDEX
EPS = 1e-15


# -- data -----------------------------------------------------------------------------
def pairs(samples: Sequence[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """Consecutive months of each cube (by month order) as change pairs (t, t+1)."""
    cubes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in samples:
        cubes[s["name"].rsplit("_", 1)[0]].append(s)
    out = []
    for cube, series in sorted(cubes.items()):
        series = sorted(series, key=lambda s: s["month"])
        for a, b in zip(series, series[1:]):
            if a["month"] == b["month"]:
                raise DataLayoutError(f"{where}: cube {cube} lists month {a['month']} twice")
            out.append(dict(id=f"{cube}_{a['month']}_{b['month']}", dates=[[a["modalities"]["s2"]],
                                                                            [b["modalities"]["s2"]]],
                            label=b["label"], prev_label=a["label"], doy=[a["dates"]["s2"][0], b["dates"]["s2"][0]]))
    if not out:
        raise DataLayoutError(f"{where}: no cube has two months; semantic change needs consecutive months")
    return out


def check(root: Path) -> dict[str, Any]:
    """The DynamicEarthNet S2 layout, each split turned into consecutive-month pairs."""
    data = den.check(root, ("s2",))
    split_dir = Path(data["root"]) / den.SPLITS_DIR
    splits = {k: pairs(v, str(split_dir / f"{k}.txt")) for k, v in data["splits"].items()}
    return dict(root=data["root"], classes=list(den.CLASSES), splits=splits, date_modalities=("s2", "s2"),
                samples=[s for v in splits.values() for s in v])


def write_fixture(out: Path, seed: int = 0) -> Path:
    """The DynamicEarthNet fixture (two months per cube, each with a repainted patch), marked dyna-s2-cd."""
    return den.write_fixture(out, seed=seed, dataset="dyna-s2-cd")


def read_s2(path: str, index: Sequence[int]) -> np.ndarray:
    """One monthly composite's selected bands as (H, W, C) float32."""
    return den.read_raster(path, len(den.S2_BANDS))[list(index)].transpose(1, 2, 0).astype(np.float32)


@DATASETS.register_module(name="RSBDynaPairDataset")
class DynaPairDataset(ChangeDataset):
    """``ChangeDataset`` plus month t's label (``prev_label``) for the change metric."""

    def load_data_list(self) -> list[dict[str, Any]]:
        with open(self.ann_file) as f:
            prev = [s.get("prev_label") for s in json.load(f)]
        return [dict(d, prev_seg_map_path=p) for d, p in zip(super().load_data_list(), prev)]


@TRANSFORMS.register_module(name="RSBLoadDynaPair")
class LoadDynaPair(BaseTransform):
    """Both months' S2 bands ``band_index`` and both labels decoded (t+1: ``gt_seg_map``, t: ``gt_prev_seg_map``)."""

    def __init__(self, band_index: Sequence[int]) -> None:
        self.band_index = [int(i) for i in band_index]

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        imgs = [read_s2(files[0], self.band_index) for files in results["date_files"]]
        results["imgs"] = imgs
        results["img_shape"] = results["ori_shape"] = imgs[0].shape[:2]
        seg_fields = []
        for key, path in (("gt_seg_map", results.get("seg_map_path")),
                          ("gt_prev_seg_map", results.get("prev_seg_map_path"))):
            if path:
                results[key] = den.read_label(path)
                seg_fields.append(key)
        for (files, im) in zip(results["date_files"], imgs):
            for key in seg_fields:
                if im.shape[:2] != results[key].shape:
                    raise DataLayoutError(f"{files[0]}: size {im.shape[:2]} differs from label "
                                          f"{results[key].shape} of pair {results['img_path']}")
        results["seg_fields"] = seg_fields
        return results


@TRANSFORMS.register_module(name="RSBSwapDates")
class SwapDates(BaseTransform):
    """With ``prob``, reverse the pair (images, labels, day of year): the model then predicts month t
    from (t+1, t), the direction the evaluation uses for month t."""

    def __init__(self, prob: float = 0.5) -> None:
        self.prob = prob

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        if np.random.rand() < self.prob and "gt_prev_seg_map" in results:
            results["imgs"] = results["imgs"][::-1]
            results["gt_seg_map"], results["gt_prev_seg_map"] = results["gt_prev_seg_map"], results["gt_seg_map"]
            if results.get("doy"):
                results["doy"] = list(results["doy"])[::-1]
        return results


@TRANSFORMS.register_module(name="RSBPackDynaInputs")
class PackDynaInputs(PackChangeInputs):
    """``PackChangeInputs`` plus ``gt_prev_sem_seg`` (month t's label)."""

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        packed = super().transform(results)
        packed["data_samples"].set_metainfo(dict(prev_seg_map_path=results.get("prev_seg_map_path")))
        if "gt_prev_seg_map" in results:
            seg = np.ascontiguousarray(results["gt_prev_seg_map"])[None].astype(np.int64)
            packed["data_samples"].gt_prev_sem_seg = PixelData(data=torch.from_numpy(seg))
        return packed


# -- model ----------------------------------------------------------------------------
@MODELS.register_module(name="RSBSemanticChangeSegmentor")
class SemanticChangeSegmentor(SiamEncoderDecoder):
    """Predicts the second date's classes; ``predict`` also runs the reversed pair and stores the
    first date's classes as ``pred_prev_sem_seg``. ``temporal='native'`` needs the fusion ``neck``
    for the per-date features (module docstring: the joint fused map is the same for both orders)."""

    def __init__(self, dates: Sequence[dict[str, Any]], temporal: str = "siamese", **kwargs: Any) -> None:
        if temporal == "native" and not kwargs.get("neck"):
            raise ValueError("semantic change with temporal='native' needs a fusion neck for the per-date "
                             "features (neck=dict(type='RSBFeatureFusionNeck')): the pair's fused map alone "
                             "is the same for (t, t+1) and (t+1, t)")
        super().__init__(dates=dates, temporal=temporal, **kwargs)

    def extract_feat(self, inputs: Tensor) -> list[Tensor]:  # type: ignore[override]
        if self.temporal != "native":
            return super().extract_feat(inputs)
        xs = self.split_dates(inputs)
        m, b = self.dates[0]["modality"], inputs.shape[0]
        joint: dict[str, Any] = {m: torch.stack(xs, dim=1)}  # (B, 2, C, H, W): the pair as a series
        single: dict[str, Any] = {m: torch.cat(xs, dim=0)[:, None]}  # (2B, 1, C, H, W): each date alone
        doy = self._doy(b, inputs.device)
        if doy is not None:
            joint["dates"] = {m: doy}
            single["dates"] = {m: doy.t().reshape(-1, 1)}  # date 1 of every sample, then date 2
        pair = self.backbone(joint)
        first, second = zip(*(f.split(b, dim=0) for f in self.backbone(single)))
        return [torch.cat([f, p], dim=1) for f, p in zip(self.neck(first, second), pair)]

    def swap_dates(self, inputs: Tensor) -> Tensor:
        return torch.cat(self.split_dates(inputs)[::-1], dim=1)

    def predict(self, inputs: Tensor, data_samples: Any = None) -> Any:
        reversed_samples = copy.deepcopy(data_samples)
        out = super().predict(inputs, data_samples)
        metas = []
        for s in reversed_samples:
            doy = s.metainfo.get("doy")
            if doy:
                s.set_metainfo(dict(doy=list(doy)[::-1]))
            metas.append(s.metainfo)
        prev = self.postprocess_result(self.inference(self.swap_dates(inputs), metas), reversed_samples)
        for s, p in zip(out, prev):
            s.pred_prev_sem_seg = p.pred_sem_seg
        return out


# -- metric ---------------------------------------------------------------------------
def pair_confusions(gt_t: np.ndarray, gt_t1: np.ndarray, pred_t: np.ndarray,
                    pred_t1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The official per-frame statistics: the 2 x 2 binary change confusion (gt x pred) and the
    (C+1) x (C+1) month-t+1 confusion on gt-changed pixels (ignore -> index C)."""
    gt_change = (gt_t != gt_t1).ravel()
    pred_change = (pred_t != pred_t1).ravel()
    binary = np.bincount(gt_change.astype(np.int64) * 2 + pred_change, minlength=4).reshape(2, 2)
    n = NUM_CLASSES + 1
    label = np.where(gt_t1 == IGNORE, NUM_CLASSES, gt_t1).astype(np.int64).ravel()[gt_change]
    pred = np.where(pred_t1 == IGNORE, NUM_CLASSES, pred_t1).astype(np.int64).ravel()[gt_change]
    semantic = np.bincount(label * n + pred, minlength=n * n).reshape(n, n)
    return binary, semantic


def scs_scores(binary: np.ndarray, semantic: np.ndarray) -> dict[str, float]:
    """BC, SC, SCS (fractions) from summed confusions, as ``SCSMetric.result``."""
    semantic = semantic.copy()
    semantic[NUM_CLASSES:, :] = 0  # rows of the ignore label
    inter = np.diag(semantic).astype(np.float64)
    fps, fns = semantic.sum(0) - inter, semantic.sum(1) - inter
    present = np.count_nonzero(inter + fns)
    sc = float(np.sum(inter / np.maximum(inter + fps + fns, EPS)) / present) if present else 0.0
    tp, fp, fn = binary[1, 1], binary[0, 1], binary[1, 0]
    bc = float(tp / max(tp + fp + fn, EPS))
    return dict(SCS=0.5 * (bc + sc), BC=bc, SC=sc)


@METRICS.register_module(name="RSBSCSMetric")
class SCSMetric(BaseMetric):
    """DynamicEarthNet's semantic change segmentation score over the split's pairs; with
    ``output_dir`` the two predicted maps of each pair are saved as ``<pair>_t.png`` /
    ``<pair>_t1.png`` and every month's map as ``<label stem>.png`` (module docstring)."""

    default_prefix = None

    def __init__(self, output_dir: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.output_dir = output_dir
        self._months: set[str] = set()
        if output_dir:
            Path(output_dir).mkdir(parents=True, exist_ok=True)

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for s in data_samples:
            pred_t1 = s["pred_sem_seg"]["data"].squeeze(0).cpu().numpy().astype(np.uint8)
            pred_t = s["pred_prev_sem_seg"]["data"].squeeze(0).cpu().numpy().astype(np.uint8)
            if self.output_dir:
                self.save(s, pred_t, pred_t1)
            gt_t1 = s["gt_sem_seg"]["data"].squeeze(0).cpu().numpy()
            gt_t = s["gt_prev_sem_seg"]["data"].squeeze(0).cpu().numpy()
            self.results.append(pair_confusions(gt_t, gt_t1, pred_t, pred_t1))

    def save(self, s: dict, pred_t: np.ndarray, pred_t1: np.ndarray) -> None:
        """Both maps of the pair, then the months not yet written in this evaluation: month
        t+1 always (the forward prediction), month t only for a cube's first pair."""
        folder = Path(self.output_dir)
        stem = Path(s["img_path"]).name
        write(folder / f"{stem}_t.png", pred_t, None)
        write(folder / f"{stem}_t1.png", pred_t1, None)
        for label, pred in ((s.get("seg_map_path"), pred_t1), (s.get("prev_seg_map_path"), pred_t)):
            if label and Path(label).stem not in self._months:
                self._months.add(Path(label).stem)
                write(folder / f"{Path(label).stem}.png", pred, None)

    def compute_metrics(self, results: list) -> dict[str, float]:
        self._months.clear()
        binary = sum(r[0] for r in results)
        semantic = sum(r[1] for r in results)
        return {k: round(100 * v, 2) for k, v in scs_scores(binary, semantic).items()}


# -- task -----------------------------------------------------------------------------
class DynaSemanticChangeTask(ChangeDetectionTask):
    """``ChangeDetectionTask`` on consecutive-month S2 pairs with 6 semantic classes and SCS."""

    imports = ChangeDetectionTask.imports + ("rsbench_change.dyna_cd",)

    def _band_index(self, plan: dict[str, Any]) -> list[int]:
        return [den.S2_BANDS.index(b) for b in plan["dates"][0]["bands"]]

    def _stats(self, plan: dict[str, Any], data: CheckedData) -> tuple[list[float], list[float], str]:
        index = self._band_index(plan)
        train = data.train[:STATS_SAMPLES]
        pix = np.concatenate([read_s2(s["dates"][0][0], index).reshape(-1, len(index)) for s in train])
        mean = [round(float(v), 4) for v in pix.mean(0)]
        std = [round(max(float(v), 1e-6), 4) for v in pix.std(0)]
        return mean * 2, std * 2, f"per-band mean/std of {len(train)} training month-t S2 composites, both dates"

    def build_config(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData,
                     work_dir: Path) -> dict[str, Any]:
        cfg = super().build_config(spec, backbone, data, work_dir)
        plan = self.plan(spec, backbone, data)
        for name in ("train", "test"):
            (work_dir / "splits" / f"{name}.json").write_text(json.dumps(data.samples(name)))
        load = dict(type="RSBLoadDynaPair", band_index=self._band_index(plan))
        train = cfg["train_dataloader"]["dataset"]
        train["type"] = "RSBDynaPairDataset"
        train["pipeline"] = [load, *train["pipeline"][1:3], dict(type="RSBSwapDates", prob=0.5),
                             dict(type="RSBPackDynaInputs")]
        test = cfg["test_dataloader"]["dataset"]
        test["type"] = "RSBDynaPairDataset"
        test["pipeline"] = [load, dict(type="RSBPackDynaInputs")]
        cfg["model"]["type"] = "RSBSemanticChangeSegmentor"
        if plan["mode"] == "native":  # per-date features + the pair's fused map (module docstring)
            policy = str(data.options["fusion"])
            channels = list(backbone.out_channels)
            cfg["model"]["neck"] = dict(type="RSBFeatureFusionNeck", policy=policy)
            cfg["model"]["decode_head"]["in_channels"] = [
                f + c for f, c in zip(fused_channels(policy, channels), channels)]
            data.derived["adapter"] += (f"; plus each date alone through the same path, head on FeatureFusionNeck "
                                f"{policy} of the two dates + the pair's fused map")
        cfg["test_evaluator"] = dict(type="RSBSCSMetric", output_dir=str(work_dir / "predictions"))
        return cfg

    def prediction_reader(self, predictions: Path, data: CheckedData, cfg: dict[str, Any]) -> Any:
        """Month maps named like the labels, or the run's per-pair maps where both exist (module
        docstring); class ids 0-5 (the official evaluation rejects anything else), label-sized."""
        from rsbench.run.scoring import check_ids, find_prediction, read_id_map

        folder = Path(predictions)
        if not folder.is_dir():
            raise PredictionError(f"--predictions {folder}: expected a folder of class-id PNGs, one per month")
        pairs_by_id = {p["id"]: p for p in data.test}

        def load(path: Path, shape: tuple[int, ...]) -> torch.Tensor:
            ids = check_ids(read_id_map(path), NUM_CLASSES, path)
            if ids.shape != shape:
                raise PredictionError(f"{path}: size {ids.shape}; the label is {shape}")
            return torch.from_numpy(np.ascontiguousarray(ids))[None]

        def read(ds: Any) -> None:
            pair = pairs_by_id[Path(ds.img_path).name]
            own = [folder / f"{pair['id']}_{k}.png" for k in ("t", "t1")]
            if not all(p.is_file() for p in own):
                own = [find_prediction(folder, [Path(pair[k]).stem]) for k in ("prev_label", "label")]
            shape = tuple(ds.gt_sem_seg.shape)
            ds.pred_prev_sem_seg = PixelData(data=load(own[0], shape))
            ds.pred_sem_seg = PixelData(data=load(own[1], shape))

        return read

    def metric_value(self, metrics: dict[str, Any]) -> float:
        return float(metrics["SCS"])

    def row_fields(self, spec: RunSpec, backbone: BackboneInfo, data: CheckedData) -> dict[str, Any]:
        fields = super().row_fields(spec, backbone, data)
        fields["adapter"] += "; month t+1 classes from (t, t+1), month t from the reversed pair"
        return fields
