"""Shared pieces of the detection readers: class-name matching, per-object errors, and the
``--skip-bad`` bookkeeping, so every dataset reports bad input the same way.

A sample is a plain dict in mmengine's middle format (``img_path``, ``width``, ``height``,
``instances`` of ``bbox`` / ``bbox_label`` / ``ignore_flag``), which the tasks dump to JSON and
load with mmdet's ``BaseDetDataset``; readers never import torch.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsbench.errors import DataLayoutError
from rsbench.io.raster import raster_info


def normalize(name: str) -> str:
    """Case-, hyphen-, underscore- and space-insensitive key (``Expressway-Service-area``)."""
    return re.sub(r"[\s_\-]+", "", name).lower()


class ClassMatcher:
    """Maps the spellings found in annotation files onto one canonical class list."""

    def __init__(self, classes: Sequence[str]) -> None:
        self.classes = tuple(classes)
        self._index = {normalize(c): i for i, c in enumerate(self.classes)}

    def __call__(self, name: str, where: str) -> int:
        try:
            return self._index[normalize(name)]
        except KeyError:
            raise DataLayoutError(
                f"{where}: unknown class name {name!r}; expected one of {', '.join(self.classes)} "
                "(matched case- and hyphen-insensitively)") from None


@dataclass
class BadSamples:
    """With ``skip_bad`` a bad sample is counted and its reason kept; without it, it raises."""

    skip_bad: bool = False
    reasons: list[str] = field(default_factory=list)

    def handle(self, error: DataLayoutError) -> None:
        if not self.skip_bad:
            raise error
        self.reasons.append(str(error))

    def summary(self) -> dict[str, Any]:
        return {"bad_samples": len(self.reasons), "bad_reasons": list(self.reasons)}


def parse_xml(path: Path) -> ET.Element:
    if not path.is_file():
        raise DataLayoutError(f"{path}: annotation file missing")
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise DataLayoutError(f"{path}: malformed XML ({exc})") from exc


def number(node: ET.Element | None, tag: str, where: str) -> float:
    child = None if node is None else node.find(tag)
    try:
        return float(child.text)  # type: ignore[union-attr, arg-type]
    except (AttributeError, TypeError, ValueError):
        raise DataLayoutError(f"{where}: missing or non-numeric <{tag}>") from None


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DataLayoutError(f"{path}: folder missing — expected {what}")
    return path


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header (any image PIL reads, or a GeoTIFF of any band count and
    dtype); a missing or unreadable image is a layout error."""
    if not path.is_file():
        raise DataLayoutError(f"{path}: image missing on disk")
    info = raster_info(path)
    return info.width, info.height
