"""Shared reader and fixture writer for the ``A/``, ``B/``, ``label/`` pair layout (LEVIR-CD's
``{split}/{A,B,label}/*.png``, and the BIT_CD-style 256 px crops with ``list/{split}.txt`` that
LEVIR-CD256 and the WHU-CD 256 re-pack use)."""

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


def scan_list(root: Path, lst: Path, title: str, layout: str) -> list[dict[str, Any]]:
    """Samples of a BIT_CD-style split list ``lst`` (one file name per line, blank lines skipped)
    found in ``root/{A,B,label}/``; a listed name missing from a folder is an error naming the
    list and its line (the list, not the folder, is what is wrong or stale)."""
    if not lst.is_file():
        raise DataLayoutError(f"{lst}: missing split list; {title} expects {layout}")
    listed = [(i, line.strip()) for i, line in enumerate(lst.read_text().splitlines(), start=1) if line.strip()]
    if not listed:
        raise DataLayoutError(f"{lst}: empty split list")
    dirs = {k: require_dir(root / k, f"{title}: the {k} images") for k in ("A", "B", "label")}
    for i, name in listed:
        for k, d in dirs.items():
            if not (d / name).is_file():
                raise DataLayoutError(f"{lst}, line {i}: lists {name!r}, but {d / name} is missing "
                                      f"({title} expects every listed name in A/, B/ and label/)")
    return scan_pairs(root, [name for _, name in listed], title)


def pair_arrays(rng: np.random.Generator, size: int, scale: int = 1) -> dict[str, np.ndarray]:
    """One size x size RGB pair with planted changes (``scale`` times the buildings, for a larger
    scene of the same density) and its 0/255 label, as uint8 arrays keyed A, B, label."""
    a, b, change = synth.change_pair(rng, (size, size), 3, kept=2 * scale, new=3 * scale, gone=2 * scale)
    return {"A": synth.to_uint8(a), "B": synth.to_uint8(b), "label": (change * 255).astype(np.uint8)}


def save_pair(folder: Path, name: str, arrays: dict[str, np.ndarray]) -> None:
    for k, arr in arrays.items():
        (folder / k).mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(folder / k / name)


def write_pair(folder: Path, name: str, rng: np.random.Generator, size: int) -> None:
    """One RGB pair with planted changes and its 0/255 label, as PNGs."""
    save_pair(folder, name, pair_arrays(rng, size))
