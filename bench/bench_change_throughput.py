"""Change-detection throughput: the bi-temporal pipeline against single-image segmentation.

Issue 8's goal: the second date may cost at most 2.1x, i.e. (seconds per pair of the change
model) / (seconds per image of the segmentation model) <= 2.1 on the same backbone and input
size. Two dates through one backbone cost about 2x by construction; the 0.1 is what the fusion
neck and the wider head (``concat`` doubles the channels UPerHead reads) may add.

Both models are the real pipelines: each task's own ``build_config`` on its fixture (change:
``levir-cd``, Siamese route, shared backbone per date + ``RSBFeatureFusionNeck`` + ``UPerHead``;
segmentation: ``potsdam``, mmseg UPerNet as ``seg_task.py`` builds it), built from the config's
``model`` under its default scope, timed through ``model.test_step`` (data preprocessor,
inference, resizing and argmax of the prediction), i.e. test mode. Inputs are synthetic 0-255
images of ``--size`` px (the fixtures are smaller than a CPU-sized benchmark input); the tasks'
options are set so that both predict the whole image in one window. Calls are interleaved
(change, segmentation, one-date backbone, ...) and the median of each is reported, so machine
drift hits both sides alike. The one-date backbone time shows how much of each side is backbone.

    python -m bench.bench_change_throughput                 # resnet50-tiny, 256 px, batch 2, 1 thread
    python -m bench.bench_change_throughput --size 512 --threads 2
"""

from __future__ import annotations

import argparse
import importlib
import json
import tempfile
from pathlib import Path
from typing import Any

from bench.common import interleaved, median

GOAL = 2.1


def build_model(task_name: str, backbone_name: str, size: int, tmp: Path, device: str) -> tuple[Any, dict[str, Any]]:
    """The task's model, built from its own generated config (fixture data, ``size`` px windows)."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope

    from rsbench.plugin_api.plugin_host import get_catalog
    from rsbench.run.runner import modality_fit
    from rsbench.run.spec import RunSpec

    catalog = get_catalog()
    info, backbone = catalog.tasks.get(task_name), catalog.backbone(backbone_name)
    dataset = catalog.datasets.get(info.dataset)
    root = dataset.write_fixture(tmp / f"data-{task_name}", seed=0)
    options: dict[str, Any] = {k: size for k in ("patch_size", "crop_size") if k in info.options}
    if "eval_crop" in info.options:
        options["eval_crop"] = 0  # whole-image inference, as the PATCHED segmentation task
    if "overlap" in info.options:
        options["overlap"] = 0  # how the fixture is cut into patches: no bearing on the model
    task = info.load_task_class()(info, dataset, modality_fit(backbone, info))
    spec = RunSpec(backbone=backbone_name, task=task_name, data_root=str(root), options=options).resolved_for(info)
    data = task.check_data(root, spec)
    cfg = task.build_config(spec, backbone, data, tmp / f"work-{task_name}")
    backbone.register_type()
    for module in task.imports:
        importlib.import_module(module)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(cfg["default_scope"]):
        model = MODELS.build(Config(cfg, format_python_code=False).model)  # ConfigDicts, as the Runner
    return model.to(device).eval(), cfg


def batch_of(channels: int, size: int, batch: int, device: str) -> dict[str, Any]:
    """What the test dataloader yields: uint8-valued CHW tensors and their data samples."""
    import torch
    from mmseg.structures import SegDataSample

    g = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 256, (channels, size, size), generator=g).float().to(device) for _ in range(batch)]
    samples = [SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size))) for _ in range(batch)]
    return dict(inputs=inputs, data_samples=samples)


def measure(backbone: str, size: int, batch: int, repeats: int, warmup: int, threads: int,
            device: str, change_task: str, seg_task: str) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="rsbench-bench-cd-") as tmp:
        change, change_cfg = build_model(change_task, backbone, size, Path(tmp), device)
        seg, seg_cfg = build_model(seg_task, backbone, size, Path(tmp), device)
    assert change.temporal == "siamese", change.temporal
    dates = [int(d["channels"]) for d in change.dates]
    seg_channels = sum(int(m[1]) for m in seg_cfg["model"]["modalities"])
    change_data = batch_of(sum(dates), size, batch, device)
    seg_data = batch_of(seg_channels, size, batch, device)
    one_date = torch.randn(batch, dates[0], size, size, device=device)
    with torch.inference_mode():
        out = change.test_step(change_data)
        assert out[0].pred_sem_seg.shape == (size, size)
        times = interleaved({"change": lambda: change.test_step(change_data),
                             "segmentation": lambda: seg.test_step(seg_data),
                             "backbone": lambda: change.backbone({change.dates[0]["modality"]: one_date})},
                            repeats, warmup, device)
    t = {k: median(v) for k, v in times.items()}
    ratio = t["change"] / t["segmentation"]
    return dict(
        figure="change throughput", backbone=backbone, size=size, batch=batch, threads=threads, device=device,
        repeats=repeats, change_task=change_task, seg_task=seg_task,
        change_model=f"{change_cfg['model']['type']} temporal=siamese, neck {change_cfg['model']['neck']['policy']}, "
                     f"UPerHead in {change_cfg['model']['decode_head']['in_channels']}",
        seg_model=f"{seg_cfg['model']['type']} UPerHead in {seg_cfg['model']['decode_head']['in_channels']}",
        pairs_per_s=round(batch / t["change"], 3), images_per_s=round(batch / t["segmentation"], 3),
        change_s=round(t["change"], 5), segmentation_s=round(t["segmentation"], 5),
        backbone_one_date_s=round(t["backbone"], 5), ratio=round(ratio, 3), goal=GOAL,
        verdict="met" if ratio <= GOAL else "not met",
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbone", default="resnet50-tiny")
    p.add_argument("--size", type=int, default=256, help="input px (both dates and the single image)")
    p.add_argument("--batch", type=int, default=2, help="pairs (change) and images (segmentation) per call")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--change-task", default="levir-cd")
    p.add_argument("--seg-task", default="potsdam")
    args = p.parse_args(argv)
    result = measure(args.backbone, args.size, args.batch, args.repeats, args.warmup, args.threads, args.device,
                     args.change_task, args.seg_task)
    print(json.dumps(result))
    print(f"| change throughput | {result['backbone']} {result['size']} px, batch {result['batch']}, "
          f"{result['threads']} thread(s), {result['device']} | {result['pairs_per_s']} pairs/s vs "
          f"{result['images_per_s']} images/s | ratio {result['ratio']}x (goal <= {GOAL}x) | {result['verdict']} |")
    return result


if __name__ == "__main__":
    main()
