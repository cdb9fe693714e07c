"""dyna-s2-cd: the SCS metric against hand-computed values, consecutive-month pairing on the
DynamicEarthNet fixture, bad input, the native route's per-date features (SkySense's fused map
alone is the same for both date orders, which gave BC = 0), and in-process SkySense runs (Siamese
and native) whose SCS is far above the "no change" prediction and equals SCS recomputed from the
saved prediction PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rsbench.errors import DataLayoutError
from rsbench.plugin_api.plugin_host import get_catalog
from rsbench.run.runner import run_evaluation
from rsbench.run.spec import RunSpec
from rsbench_change import dyna_cd
from rsbench_segmentation import dynamicearthnet as den


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """One intra-op thread for this module (see conftest), not for the whole session."""


# -- metric ---------------------------------------------------------------------------
def test_scs_matches_hand_computed_values():
    gt_t = np.array([[0, 0, 1, 1], [2, 2, 255, 3]])
    gt_t1 = np.array([[0, 1, 1, 2], [2, 5, 4, 255]])  # changed: (0,1) (0,3) (1,1) (1,2) (1,3)
    pred_t = np.array([[0, 0, 1, 1], [2, 2, 4, 3]])
    pred_t1 = np.array([[0, 1, 1, 1], [2, 2, 4, 0]])  # predicted change: (0,1) (1,3)
    binary, semantic = dyna_cd.pair_confusions(gt_t, gt_t1, pred_t, pred_t1)
    assert binary.tolist() == [[3, 0], [3, 2]]  # BC = 2 / (2 + 0 + 3)
    # changed pixels, gt t+1 -> pred t+1: 1->1, 2->1, 5->2, 4->4, ignore->0 (row dropped)
    # IoU: class1 1/(1+1+0)=0.5, class2 0/(0+1+1)=0, class4 1, class5 0; present (TP+FN>0): 1,2,4,5
    scores = dyna_cd.scs_scores(binary, semantic)
    assert scores["BC"] == pytest.approx(0.4)
    assert scores["SC"] == pytest.approx((0.5 + 0 + 1 + 0) / 4)
    assert scores["SCS"] == pytest.approx(0.5 * (0.4 + 0.375))


def test_scs_metric_sums_confusions_over_pairs_before_the_ratios():
    metric = dyna_cd.SCSMetric()
    a = np.zeros((2, 2), np.int64)
    b = np.array([[1, 1], [0, 0]])

    def sample(gt_t, gt_t1, p_t, p_t1):
        pix = lambda x: {"data": torch.as_tensor(x)[None]}  # noqa: E731
        return dict(img_path="x", gt_prev_sem_seg=pix(gt_t), gt_sem_seg=pix(gt_t1),
                    pred_prev_sem_seg=pix(p_t), pred_sem_seg=pix(p_t1))
    metric.process({}, [sample(a, b, a, b), sample(a, b, a, a)])  # 2 TP, then 2 FN
    out = metric.compute_metrics(metric.results)
    assert out == {"SCS": 50.0, "BC": 50.0, "SC": 50.0}  # BC 2/4; SC class 1: 2/(2+2)


# -- data -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    return get_catalog().datasets.get("dyna-s2-cd").write_fixture(tmp_path_factory.mktemp("dyna-cd"), seed=0)


def test_fixture_pairs_consecutive_months_of_each_cube(fixture_root):
    data = get_catalog().datasets.get("dyna-s2-cd").check(fixture_root)
    assert {k: len(v) for k, v in data["splits"].items()} == {"train": 6, "val": 2, "test": 1}
    pair = data["splits"]["test"][0]
    assert pair["id"] == "4675_4103_13_2018-03_2019-07"
    assert pair["dates"][0][0].endswith("sentinel2/4675_4103_13/4675_4103_13_2018_03.tif")
    assert pair["dates"][1][0].endswith("4675_4103_13_2019_07.tif")
    assert pair["prev_label"].endswith("-2018_03_01.tif") and pair["label"].endswith("-2019_07_01.tif")
    assert pair["doy"] == [den.day_of_year(2018, 3, 15), den.day_of_year(2019, 7, 15)]
    gt_t = den.decode_label(den.read_raster(pair["prev_label"], 7), pair["prev_label"])
    gt_t1 = den.decode_label(den.read_raster(pair["label"], 7), pair["label"])
    assert 0.02 < (gt_t != gt_t1).mean() < 0.5  # planted changes, not everything
    assert json.loads((fixture_root / ".rsbench-fixture").read_text())["dataset"] == "dyna-s2-cd"


def test_a_split_without_two_months_per_cube_is_an_error(fixture_root, tmp_path):
    one_month = den.check(fixture_root, ("s2",))["splits"]["test"][:1]
    with pytest.raises(DataLayoutError, match="test.txt: no cube has two months"):
        dyna_cd.pairs(one_month, str(tmp_path / "test.txt"))


def test_missing_s2_composite_is_named(tmp_path_factory):
    root = dyna_cd.write_fixture(tmp_path_factory.mktemp("dyna-bad"), seed=1)
    missing = root / "sentinel2" / "4675_4103_13" / "4675_4103_13_2019_07.tif"
    missing.unlink()
    with pytest.raises(DataLayoutError, match=str(missing)):
        dyna_cd.check(root)


def test_loader_rejects_s2_on_another_grid(fixture_root, tmp_path):
    pair = dyna_cd.check(fixture_root)["splits"]["test"][0]
    small = tmp_path / "small.tif"
    den._write_tif(small, np.zeros((12, 32, 32), np.int16), "35S")
    results = dict(img_path=pair["id"], date_files=[[str(small)], pair["dates"][1]],
                   seg_map_path=pair["label"], prev_seg_map_path=pair["prev_label"])
    with pytest.raises(DataLayoutError, match="small.tif: size"):
        dyna_cd.LoadDynaPair(band_index=range(10)).transform(results)


# -- model ----------------------------------------------------------------------------
def _native_config(fixture_root: Path, work: Path) -> tuple[dict, dict]:
    from rsbench.run.runner import modality_fit

    catalog = get_catalog()
    info, backbone = catalog.tasks.get("dyna-s2-cd"), catalog.backbone("skysense-tiny")
    task = info.load_task_class()(info, catalog.datasets.get(info.dataset), modality_fit(backbone, info))
    spec = RunSpec(backbone="skysense-tiny", task="dyna-s2-cd", data_root=str(fixture_root),
                   options=dict(temporal="native")).resolved_for(info)
    data = task.check_data(fixture_root, spec)
    return task.build_config(spec, backbone, data, work), data


def test_native_route_gives_the_head_each_date_and_the_pair(fixture_root, tmp_path):
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    import rsbench_skysense.model  # noqa: F401 - registers RSBSkySense

    register_all_modules(init_default_scope=False)
    cfg, data = _native_config(fixture_root, tmp_path)
    assert cfg["model"]["temporal"] == "native" and cfg["model"]["neck"]["policy"] == "concat"
    assert cfg["model"]["decode_head"]["in_channels"] == [16 + 16 + 16, 64 + 32, 128 + 64, 256 + 128]
    assert "native temporal path" in data.derived["adapter"] and "each date alone" in data.derived["adapter"]
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope("mmseg"):
        model = MODELS.build(cfg["model"]).eval()
    x1, x2 = torch.randn(2, 10, 32, 32), torch.randn(2, 10, 32, 32)
    doy = torch.tensor([[74, 196], [100, 300]])
    meta = lambda d: dict(doy=d, img_shape=(32, 32), ori_shape=(32, 32))  # noqa: E731
    with torch.no_grad():
        # the root cause of BC = 0: the fused map of the pair ignores the order of (frame, day)
        joint = model.backbone({"s2": torch.stack([x1, x2], 1), "dates": {"s2": doy}})
        flipped = model.backbone({"s2": torch.stack([x2, x1], 1), "dates": {"s2": doy.flip(1)}})
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(joint, flipped))
        model._metas = [meta(d) for d in doy.tolist()]
        feats = model.extract_feat(torch.cat([x1, x2], 1))
        one = model.backbone({"s2": x1[:, None], "dates": {"s2": doy[:, :1]}})
        two = model.backbone({"s2": x2[:, None], "dates": {"s2": doy[:, 1:]}})
        for level, (f, a, b, j) in enumerate(zip(feats, one, two, joint)):
            c = a.shape[1]
            assert torch.allclose(f[:, :c], a, atol=1e-5), level  # date 1 alone, its own day
            assert torch.allclose(f[:, c:2 * c], b, atol=1e-5), level
            assert torch.allclose(f[:, 2 * c:], j, atol=1e-5), level
        forward = model.encode_decode(torch.cat([x1, x2], 1), [meta(d) for d in doy.tolist()])
        backward = model.encode_decode(torch.cat([x2, x1], 1), [meta(d) for d in doy.flip(1).tolist()])
    assert (forward - backward).abs().max() > 1e-3  # month t and month t+1 can now differ
    without_neck = dict(cfg["model"])
    without_neck.pop("neck")
    with pytest.raises(ValueError, match="needs a fusion neck for the per-date features"), \
            DefaultScope.overwrite_default_scope("mmseg"):
        MODELS.build(without_neck)


# -- run ------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("temporal, adapter", [
    ("siamese", "siamese: shared backbone per date"),
    ("native", "native temporal path of skysense-tiny over the dates with day of year; plus each date alone"),
], ids=["siamese", "native"])
def test_skysense_semantic_change_beats_no_change_and_matches_saved_predictions(fixture_root, tmp_path_factory,
                                                                                temporal, adapter):
    work = tmp_path_factory.mktemp("work")
    task = get_catalog().tasks.get("dyna-s2-cd")
    spec = RunSpec(backbone="skysense-tiny", task="dyna-s2-cd", data_root=str(fixture_root), work_dir=str(work),
                   max_iters=task.smoke_iters, options=dict(task.smoke_options, temporal=temporal))
    outcome = run_evaluation(spec, results_dir=tmp_path_factory.mktemp("results"), show_progress=False)
    assert outcome.status == "ok", outcome.row["error"]
    metrics = json.loads((work / "metrics.json").read_text())

    binary = np.zeros((2, 2), np.int64)
    inter = np.zeros(6)
    fp = np.zeros(6)
    fn = np.zeros(6)
    no_change = [np.zeros((2, 2), np.int64), np.zeros((7, 7), np.int64)]
    for pair in json.loads((work / "splits" / "test.json").read_text()):
        gt_t = den.decode_label(den.read_raster(pair["prev_label"], 7), pair["prev_label"]).astype(int)
        gt_t1 = den.decode_label(den.read_raster(pair["label"], 7), pair["label"]).astype(int)
        p_t = np.array(Image.open(work / "predictions" / f"{pair['id']}_t.png")).astype(int)
        p_t1 = np.array(Image.open(work / "predictions" / f"{pair['id']}_t1.png")).astype(int)
        change, pchange = gt_t != gt_t1, p_t != p_t1
        binary += [[np.sum(~change & ~pchange), np.sum(~change & pchange)],
                   [np.sum(change & ~pchange), np.sum(change & pchange)]]
        for c in range(6):
            g, p = change & (gt_t1 == c), change & (gt_t1 != 255) & (p_t1 == c)
            inter[c] += np.sum(g & p)
            fp[c] += np.sum(p & ~g)
            fn[c] += np.sum(g & ~p)
        keep = np.where(gt_t == 255, 0, gt_t)  # "no change": both months predicted as month t's labels
        for acc, part in zip(no_change, dyna_cd.pair_confusions(gt_t, gt_t1, keep, keep)):
            acc += part
    bc = binary[1, 1] / (binary[1, 1] + binary[0, 1] + binary[1, 0])
    sc = np.sum(inter / np.maximum(inter + fp + fn, 1e-15)) / np.count_nonzero(inter + fn)
    assert metrics["BC"] == pytest.approx(100 * bc, abs=0.006)
    assert metrics["SC"] == pytest.approx(100 * sc, abs=0.006)
    assert outcome.row["value"] == pytest.approx(50 * (bc + sc), abs=0.006) == metrics["SCS"]
    trivial = 100 * dyna_cd.scs_scores(*no_change)["SCS"]
    assert trivial < 10  # no predicted change: BC = 0, and month t's classes are wrong where gt changed
    assert outcome.row["value"] > trivial + 25 and metrics["BC"] > 20
    assert outcome.row["adapter"].startswith(adapter)
    assert "reversed pair" in outcome.row["adapter"] and outcome.row["metric"] == "SCS"
