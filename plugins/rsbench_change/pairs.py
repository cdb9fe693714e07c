"""Shared reader and fixture writer for the ``A/``, ``B/``, ``label/`` pair layout (LEVIR-CD's
``{split}/{A,B,label}/*.png`` and the WHU-CD 256 re-pack with ``list/{split}.txt``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rsbench.errors import DataLayoutError
from rsbench_change import synth
from rsbench_change.io import check_same_grid, label_values, raster_shape, require_dir

BINARY_CLASSES = ("unchanged", "changed")
#: Official 0/255 change labels -> class indices.
LABEL_MAP = {0: 0, 255: 1}


def scan_pairs(folder: Path, names: Sequence[str], title: str, check_labels: bool = True) -> list[dict[str, Any]]:
    """Samples ``folder/{A,B,label}/<name>``; every date and label must exist, share H x W, be RGB
    (label single band, 0/255)."""
    dirs = {k: require_dir(folder / k, f"{title}: the {k} images of this split") for k in ("A", "B", "label")}
    samples = []
    for name in names:
        paths = {k: d / name for k, d in dirs.items()}
        for k, p in paths.items():
            if not p.is_file():
                raise DataLayoutError(f"{p}: missing ({title} expects {name} in A/, B/ and label/)")
        shapes = {k: raster_shape(p) for k, p in paths.items()}
        check_same_grid([(paths[k], shapes[k]) for k in ("A", "B", "label")], (3, 3, 1))
        if check_labels:
            label_values(paths["label"], tuple(LABEL_MAP))
        samples.append(dict(id=str(paths["A"]), dates=[[str(paths["A"])], [str(paths["B"])]],
                            label=str(paths["label"])))
    return samples


def write_pair(folder: Path, name: str, rng: np.random.Generator, size: int) -> None:
    """One RGB pair with planted changes and its 0/255 label, as PNGs."""
    a, b, change = synth.change_pair(rng, (size, size), 3)
    for k, arr in (("A", synth.to_uint8(a)), ("B", synth.to_uint8(b)), ("label", change * 255)):
        (folder / k).mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr.astype(np.uint8)).save(folder / k / name)
