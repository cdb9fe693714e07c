"""Writing a file so that it is either absent, its old self, or complete: the new content goes to a
temporary file next to it and replaces it in one rename (``os.replace``). A crash, a kill or an
exception mid-write never leaves half a file where a reader (a resumed run, a rerun of ``data
prepare``, the leaderboard) would take it for a whole one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def temporary_name(path: str | Path) -> Path:
    """A hidden name next to ``path``, unique per process and call (two writers never share one)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


@contextmanager
def replacing(path: str | Path, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path for a writer that needs a file name (rasterio, ``torch.save``,
    ``np.save``); on leaving the block it replaces ``path`` (folders created), on an exception it
    is removed and ``path`` is untouched. ``fsync`` flushes it to disk first (for files whose loss
    after a power cut would lose work, such as the leaderboard)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def open_atomic(path: str | Path, mode: str = "w", *, fsync: bool = False, **kwargs: Any) -> Iterator[IO[Any]]:
    """``open(path, mode, **kwargs)`` whose content appears at ``path`` only when the block ends
    without an exception (``mode`` ``"w"`` or ``"wb"``)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"open_atomic mode {mode!r}: expected 'w' or 'wb'")
    with replacing(path, fsync=fsync) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def write_text(path: str | Path, text: str, *, fsync: bool = False, encoding: str = "utf-8") -> Path:
    """``Path.write_text``, atomically."""
    with open_atomic(path, "w", fsync=fsync, encoding=encoding) as fh:
        fh.write(text)
    return Path(path)


def write_bytes(path: str | Path, data: bytes, *, fsync: bool = False) -> Path:
    """``Path.write_bytes``, atomically."""
    with open_atomic(path, "wb", fsync=fsync) as fh:
        fh.write(data)
    return Path(path)
