"""Figure 8: loader throughput on paper-size inputs, rsbench's loader vs reading pre-cut patches.

Five inputs, generated at bench time into the run's scratch folder (never committed):

* **iSAID**: PNG tiles of 4,000-13,000 px with RGB colour masks, 896 px windows with 384 px
  overlap. rsbench: ``RSBLoadSample`` with ``rsbench_segmentation.isaid:load`` on the windows
  (windowed reading from the tile cache). Pre-cut: the same windows written once as mmseg's
  converter writes them (image PNG + class-id PNG), read by mmseg's ``LoadImageFromFile`` +
  ``LoadAnnotations``.
* **Potsdam**: 6,000 px RGB GeoTIFF tiles (uncompressed, striped, as released) with colour
  labels, 512 px windows, stride 256; rsbench through ``potsdam:load``; pre-cut as for iSAID.
* **FAIR1M**: 1,024 px patches (gap 200) of large PNG tiles. rsbench cuts them once
  (``fair1m.cut_patches``) and its pipeline reads them with ``LoadImageFromFile``; pre-cut:
  the same windows cut by plain PIL (mmrotate ``img_split`` style), decoded by PIL.
* **DynamicEarthNet**: 6 Planet frames of 1,024^2 x 4 bands (uint16 GeoTIFF) and a 7-band
  one-hot label per sample; the sample is the whole cube, as released. rsbench:
  ``RSBLoadSample`` with ``dynamicearthnet:load``; pre-cut: the same files read bare with
  rasterio (stack frames, argmax the label). Both then take mmseg's ``RandomCrop`` 512.
* **BigEarthNet**: 12 single-band GeoTIFFs per patch at 120/60/20 px. rsbench:
  ``RSBLoadBands`` (120 px grid, bilinear; its in-memory cache off, as it mostly misses over a
  shuffled 269k-patch epoch); pre-cut: the same files read bare with rasterio, resampled alike.

Each side runs in its own forked worker process (one worker, like one DataLoader worker), over
the same shuffled list of samples; the two sides alternate over rounds and the median
samples/s is kept. Peak RSS per worker is the kernel's high-water mark (``VmHWM``, reset at
the worker's start) and its growth over the worker's starting RSS (the imports it inherits).
The one-time work before the first epoch (tile cache conversion, FAIR1M cutting) runs in its
own worker too and is reported apart. Goal: rsbench >= 0.8x pre-cut for every input.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from typing import Any

import numpy as np

from bench.common import Context, Figure, check, combine, fmt_s, median

GOAL = 0.8
#: (iSAID tile sides, Potsdam tile side, FAIR1M tile side, DEN frame side, BEN patches,
#:  samples per side per round, rounds)
SIZES = {
    "quick": dict(isaid=(1500, 2100), potsdam=1200, fair1m=2000, den=384, ben=24, samples=8, rounds=3),
    "full": dict(isaid=(4000, 8000, 13000), potsdam=6000, fair1m=10000, den=1024, ben=96, samples=40, rounds=5),
}
DEN_FRAMES, DEN_CROP = 6, 512


# -- synthetic inputs ------------------------------------------------------------------------------
def scene(rng: np.random.Generator, side: int, n_classes: int, colours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(label, image): class rectangles, each class its colour plus uniform noise (+-12), about
    as compressible as aerial imagery; built in row slices so a 13,000 px tile stays cheap."""
    from rsbench_segmentation import common

    label = common.paint_scene(rng, (side, side), n_classes, background=0, shapes=12 + side // 300)
    image = np.empty((side, side, colours.shape[1]), np.uint8)
    lut = np.clip(colours, 12, 243).astype(np.int16)
    for r in range(0, side, 1024):
        noise = rng.integers(-12, 13, (min(1024, side - r), side, colours.shape[1]), dtype=np.int16)
        image[r:r + 1024] = (lut[label[r:r + 1024]] + noise).astype(np.uint8)
    return label, image


def save_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, compress_level=1)  # fast to write; decoding costs about the same


def seg_case(ctx: Context, name: str, sides: tuple[int, ...], patch: int, overlap: int,
             n: int, geotiff: bool) -> dict[str, Any]:
    """iSAID (PNG) or Potsdam (GeoTIFF) tiles, ``n`` of their windows drawn at random, and those
    windows pre-cut as mmseg's converters write them (image PNG + class-id PNG)."""
    from rsbench.io.raster import write_geotiff
    from rsbench_segmentation import common, isaid, potsdam

    mod = potsdam if geotiff else isaid
    rng, pick = np.random.default_rng(8), random.Random(0)
    folder = ctx.scratch(f"fig8/{name}")
    colours = common.class_colours(len(mod.CLASSES), 3)
    samples = []
    for i, side in enumerate(sides):
        label, image = scene(rng, side, len(mod.CLASSES), colours)
        rgb = np.asarray(mod.PALETTE, np.uint8)[label]
        if geotiff:
            img_path, lab_path = folder / f"top_potsdam_{i}_RGB.tif", folder / f"top_potsdam_{i}_label.tif"
            write_geotiff(img_path, image.transpose(2, 0, 1))
            write_geotiff(lab_path, rgb.transpose(2, 0, 1))
        else:
            img_path, lab_path = folder / f"P{i:04d}.png", folder / f"P{i:04d}_instance_color_RGB.png"
            save_png(img_path, image)
            save_png(lab_path, rgb)
        del rgb
        tile = common.sample(f"t{i}", lab_path, {"hr": img_path}, size=(side, side))
        windows = common.windows(side, side, patch, overlap)
        for w in pick.sample(windows, min(len(windows), -(-n // len(sides)))):
            stem = f"t{i}_{w[0]}_{w[1]}_{w[2]}_{w[3]}"
            save_png(folder / "precut" / f"{stem}.png", common.crop_pad(image, w, 0))
            save_png(folder / "precut" / f"{stem}_ids.png", common.crop_pad(label, w, common.IGNORE))
            samples.append(dict(tile, name=stem, window=list(w)))
        del label, image
    pick.shuffle(samples)
    return dict(module=mod, samples=samples[:n], folder=folder)


# -- the two sides ---------------------------------------------------------------------------------
def _vm(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _child(fn: Callable[[], int], queue: Any) -> None:
    warnings.simplefilter("ignore")  # rasterio's NotGeoreferencedWarning on the bare reads
    try:
        with open("/proc/self/clear_refs", "w") as fh:  # reset VmHWM to the current RSS
            fh.write("5")
    except OSError:
        pass
    start_rss = _vm("VmRSS")
    start = time.perf_counter()
    try:
        count = fn()
    except BaseException as exc:  # noqa: BLE001  (reported by the parent, which waits on the queue)
        queue.put(f"{type(exc).__name__}: {exc}")
        raise
    seconds = time.perf_counter() - start
    queue.put((count, seconds, _vm("VmHWM"), _vm("VmHWM") - start_rss))


def in_worker(fn: Callable[[], int]) -> tuple[int, float, int, int]:
    """Run ``fn`` (returns its sample count) in a forked process: (count, s, peak, growth)."""
    mpc = mp.get_context("fork")
    queue = mpc.Queue()
    proc = mpc.Process(target=_child, args=(fn, queue))
    proc.start()
    result: Any = None
    while result is None:  # a worker killed outright (out of memory) puts nothing
        try:
            result = queue.get(timeout=1.0)
        except Empty:
            if not proc.is_alive() and queue.empty():
                result = "no result"
    proc.join()
    if isinstance(result, str) or proc.exitcode:
        raise RuntimeError(f"loader worker failed (exit code {proc.exitcode}): {result}")
    return result


def compare(ours: Callable[[], int], precut: Callable[[], int], rounds: int) -> dict[str, Any]:
    runs: dict[str, list[tuple[int, float, int, int]]] = {"ours": [], "precut": []}
    in_worker(ours), in_worker(precut)  # warm-up: page cache, lazy imports
    for r in range(rounds):
        for side in (("ours", "precut") if r % 2 == 0 else ("precut", "ours")):
            runs[side].append(in_worker(ours if side == "ours" else precut))
    rate = {k: median([c / s for c, s, _, _ in v]) for k, v in runs.items()}
    peak = {k: max(p for _, _, p, _ in v) for k, v in runs.items()}
    growth = {k: max(g for _, _, _, g in v) for k, v in runs.items()}
    return dict(rate=rate, peak=peak, growth=growth, ratio=rate["ours"] / rate["precut"])


def mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def seg_rows(cfg: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    """rsbench's ``RSBLoadSample`` on the windows vs mmseg loading the pre-cut patches."""
    from mmcv.transforms import LoadImageFromFile
    from mmseg.datasets.transforms import LoadAnnotations

    from rsbench_segmentation import common
    from rsbench_segmentation.mm import LoadSample

    mod, samples = case["module"], case["samples"]
    order = list(range(len(samples)))
    precut = case["folder"] / "precut"

    def prepare() -> int:  # the tile cache, once per tile (the GeoTIFF images are read in place)
        extra = {mod.BOUNDARY: common.IGNORE} if hasattr(mod, "BOUNDARY") else None
        common.cache_tiles(samples, mod.PALETTE, extra)
        return len({s["label"] for s in samples})

    prep = in_worker(prepare)
    load = LoadSample(reader=f"{mod.__name__}:load", modalities=["hr"])
    image, annotations = LoadImageFromFile(to_float32=True), LoadAnnotations()

    def ours() -> int:
        for i in order:
            load.transform(dict(sample=samples[i], seg_fields=[]))
        return len(order)

    def pre() -> int:
        for i in order:
            name = samples[i]["name"]
            annotations.transform(image.transform(dict(img_path=str(precut / f"{name}.png"),
                                                       seg_map_path=str(precut / f"{name}_ids.png"),
                                                       reduce_zero_label=False, seg_fields=[])))
        return len(order)

    out = compare(ours, pre, cfg["rounds"])
    return dict(out, prep=prep)


def fair1m_rows(ctx: Context, cfg: dict[str, Any]) -> dict[str, Any]:
    """rsbench's cut patches read by its pipeline's ``LoadImageFromFile`` vs PIL-cut patches."""
    from mmcv.transforms import LoadImageFromFile
    from PIL import Image

    from rsbench_detection.fair1m import cut_patches, starts

    folder = ctx.scratch("fig8/fair1m")
    side, size, gap = cfg["fair1m"], 1024, 200
    _, image = scene(np.random.default_rng(9), side, 8, np.random.default_rng(9).uniform(20, 235, (8, 3)))
    save_png(folder / "0.png", image)
    tiles = [dict(img_path=str(folder / "0.png"), img_id="0", width=side, height=side, instances=[])]
    corners = [(x, y) for y in starts(side, size, size - gap) for x in starts(side, size, size - gap)]
    chosen = random.Random(1).choices(corners, k=cfg["samples"])
    for x, y in set(chosen):  # the reference: the same windows cut by plain PIL (mmrotate img_split style)
        save_png(folder / "precut" / f"0__{x}___{y}.png", image[y:y + size, x:x + size])
    del image
    prep = in_worker(lambda: len(cut_patches(tiles, folder / "rsbench", size, gap)))
    load = LoadImageFromFile(to_float32=True)

    def ours() -> int:
        for x, y in chosen:
            load.transform(dict(img_path=str(folder / "rsbench" / f"0__{x}___{y}.png")))
        return len(chosen)

    def pre() -> int:
        for x, y in chosen:
            with Image.open(folder / "precut" / f"0__{x}___{y}.png") as img:
                np.asarray(img.convert("RGB"), dtype=np.float32)
        return len(chosen)

    return dict(compare(ours, pre, cfg["rounds"]), prep=prep)


def den_rows(ctx: Context, cfg: dict[str, Any]) -> dict[str, Any]:
    """``RSBLoadSample`` on whole Planet cubes vs the same files read bare; both then crop 512."""
    import rasterio
    from mmseg.datasets.transforms import RandomCrop

    from rsbench.io.raster import write_geotiff
    from rsbench_segmentation import dynamicearthnet as den
    from rsbench_segmentation.mm import LoadSample

    folder, side, rng = ctx.scratch("fig8/den"), cfg["den"], np.random.default_rng(10)
    cubes = []
    for c in range(3):
        label = den.common.paint_scene(rng, (side, side), den.LABEL_BANDS - 1, background=None)
        onehot = (np.arange(den.LABEL_BANDS)[:, None, None] == label[None]).astype(np.uint8) * 255
        write_geotiff(folder / f"c{c}" / "label.tif", onehot, compress="deflate")
        frames = []
        for t in range(DEN_FRAMES):
            bands = (300 + 100 * label[None].astype(np.uint16) + rng.integers(0, 200, (4, side, side), dtype=np.uint16))
            frames.append(str(write_geotiff(folder / f"c{c}" / f"PF-SR/2018-01-{t + 1:02d}.tif", bands,
                                            compress="deflate")))
        cubes.append(dict(name=f"c{c}", label=str(folder / f"c{c}" / "label.tif"), modalities={"hr": frames}))
    order = random.Random(2).choices(range(len(cubes)), k=max(4, cfg["samples"] // 4))
    load = LoadSample(reader="rsbench_segmentation.dynamicearthnet:load", modalities=["hr"])
    crop = RandomCrop(crop_size=(min(DEN_CROP, side), min(DEN_CROP, side)), cat_max_ratio=0.75)

    def ours() -> int:
        for i in order:
            crop.transform(load.transform(dict(sample=cubes[i], seg_fields=[])))
        return len(order)

    def pre() -> int:
        for i in order:
            stack = []
            for f in cubes[i]["modalities"]["hr"]:
                with rasterio.open(f) as src:
                    stack.append(src.read())
            with rasterio.open(cubes[i]["label"]) as src:
                ids = den.decode_label(src.read(), cubes[i]["label"])
            img = np.concatenate(stack, axis=0).transpose(1, 2, 0).astype(np.float32)
            crop.transform(dict(img=img, gt_seg_map=ids, seg_fields=["gt_seg_map"]))
        return len(order)

    return dict(compare(ours, pre, cfg["rounds"]), prep=None)


def ben_rows(ctx: Context, cfg: dict[str, Any]) -> dict[str, Any]:
    """``RSBLoadBands`` (12 bands to 120 px, cache off) vs the same band files read bare."""
    import rasterio
    import torch
    from rasterio.enums import Resampling

    from rsbench_classification.ben_s2 import S2_FILES, write_s2_bands
    from rsbench_classification.multimodal import LoadBands

    folder, rng = ctx.scratch("fig8/ben"), np.random.default_rng(11)
    patches = []
    for p in range(cfg["ben"]):
        name = f"S2A_MSIL2A_20170613T101031_{p}_0"
        write_s2_bands(folder / name, name, rng.uniform(0, 1, 12), 120, rng)
        patches.append({"s2": [[f"{name}/{name}_{b}.tif", 1] for b in S2_FILES]})
    order = random.Random(3).choices(range(len(patches)), k=cfg["samples"] * 4)
    load = LoadBands(size=120, cache_mb=0)

    def ours() -> int:
        for i in order:
            load.transform(dict(bands=patches[i], data_root=str(folder)))
        return len(order)

    def pre() -> int:
        for i in order:
            bands = []
            for rel, index in patches[i]["s2"]:
                with rasterio.open(folder / rel) as src:
                    bands.append(src.read(index, out_shape=(120, 120), resampling=Resampling.bilinear)
                                 .astype(np.float32))
            torch.from_numpy(np.stack(bands))
        return len(order)

    return dict(compare(ours, pre, cfg["rounds"]), prep=None)


def run(ctx: Context) -> Figure:
    cfg = SIZES["quick" if ctx.quick else "full"]
    os.environ["RSBENCH_TILE_CACHE"] = str(ctx.scratch("fig8/tile-cache"))  # this run's own cache
    fig = Figure(8, "Loader throughput on paper-size inputs", f"rsbench / pre-cut >= {GOAL} samples/s per worker",
                 columns=["input", "samples/s rsbench", "samples/s pre-cut", "ratio", "peak RSS rsbench (growth)",
                          "peak RSS pre-cut (growth)", "one-time prepare"])
    verdicts = []
    cases = [
        ("iSAID PNG " + "/".join(f"{s:,}" for s in cfg["isaid"]) + " px, 896/384 windows",
         lambda: seg_rows(cfg, seg_case(ctx, "isaid", cfg["isaid"], 896, 384, cfg["samples"], False))),
        (f"Potsdam GeoTIFF {cfg['potsdam']:,} px, 512/256 windows",
         lambda: seg_rows(cfg, seg_case(ctx, "potsdam", (cfg["potsdam"],), 512, 256, cfg["samples"], True))),
        (f"FAIR1M PNG {cfg['fair1m']:,} px, 1,024 patches (gap 200)", lambda: fair1m_rows(ctx, cfg)),
        (f"DynamicEarthNet {DEN_FRAMES} x {cfg['den']:,}^2 x 4 bands, crop {min(DEN_CROP, cfg['den'])}",
         lambda: den_rows(ctx, cfg)),
        ("BigEarthNet 12 bands 120/60/20 px", lambda: ben_rows(ctx, cfg)),
    ]
    for title, measure in cases:
        res = measure()
        verdicts.append(check(res["ratio"], ">=", GOAL))
        prep = "none"
        if res["prep"] is not None:
            c, s, _, g = res["prep"]
            prep = f"{fmt_s(s)} for {c} {'patch(es)' if 'FAIR1M' in title else 'tile(s)'}, peak +{mib(g)}"
        fig.rows.append({"input": title, "samples/s rsbench": f"{res['rate']['ours']:.1f}",
                         "samples/s pre-cut": f"{res['rate']['precut']:.1f}", "ratio": f"{res['ratio']:.2f}x",
                         "peak RSS rsbench (growth)": f"{mib(res['peak']['ours'])} (+{mib(res['growth']['ours'])})",
                         "peak RSS pre-cut (growth)": f"{mib(res['peak']['precut'])} (+{mib(res['growth']['precut'])})",
                         "one-time prepare": prep})
    fig.verdict = combine(verdicts)
    worst = min(fig.rows, key=lambda r: float(r["ratio"][:-1]))
    fig.headline = f"worst {worst['ratio']} ({worst['input'].split(' ')[0]})"
    fig.method = __doc__.split("\n\n", 1)[1].strip()
    return fig
