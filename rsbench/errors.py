"""Errors rsbench reports to users: one clear message naming the file, field or option."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RsbenchError(Exception):
    """Base class; the CLI prints these without a traceback."""


class UnknownNameError(RsbenchError, KeyError):
    """A backbone, task, dataset or executor name that no plugin registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        super().__init__(f"unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(known) or '(none)'}")
        self.kind, self.name, self.close_matches = kind, name, close

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicateNameError(RsbenchError):
    """Two plugins registered the same name."""


class DataLayoutError(RsbenchError):
    """The data root does not hold the dataset's official layout."""


class CheckpointError(RsbenchError):
    """A checkpoint is unreadable or does not match the model."""


class ModalityMismatch(RsbenchError):
    """A backbone cannot take the modalities a task provides."""


class SpecError(RsbenchError):
    """A run spec field has a value outside what it accepts."""


class PredictionError(RsbenchError):
    """External predictions are missing, malformed or do not match the split (``rsbench score``)."""
