"""Generated fixture datasets: the marker that tells a fixture from real data, and the cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

#: File at a fixture's root; runs on such data are flagged ``fixture=True`` in the leaderboard.
FIXTURE_MARKER = ".rsbench-fixture"


def mark_fixture(root: Path, dataset: str, seed: int) -> None:
    Path(root).mkdir(parents=True, exist_ok=True)
    (Path(root) / FIXTURE_MARKER).write_text(json.dumps({"dataset": dataset, "seed": seed}))


def is_fixture(root: str | Path | None) -> bool:
    return bool(root) and (Path(str(root)) / FIXTURE_MARKER).exists()


def cache_dir() -> Path:
    """``$RSBENCH_CACHE`` or ``~/.cache/rsbench``: fixtures for the demo live here."""
    return Path(os.environ.get("RSBENCH_CACHE", Path.home() / ".cache" / "rsbench"))


def ensure_fixture(task: str, seed: int = 0) -> Path:
    """The cached fixture of ``task``'s dataset, generated on first use."""
    from rsbench.plugin_api.plugin_host import get_catalog

    catalog = get_catalog()
    dataset = catalog.datasets.get(catalog.tasks.get(task).dataset)
    root = cache_dir() / "fixtures" / f"{dataset.name}-{_writer_digest(dataset.fixture)}"
    if not is_fixture(root):
        dataset.write_fixture(root, seed=seed)
    return root


def _writer_digest(fixture: str) -> str:
    """A short hash of the module that writes the fixture, so a cached fixture is regenerated
    when its writer changes (a size or layout fix) instead of being reused stale."""
    import hashlib
    import importlib.util

    spec = importlib.util.find_spec(fixture.split(":")[0])
    source = Path(spec.origin).read_bytes() if spec and spec.origin else fixture.encode()
    return hashlib.sha256(source).hexdigest()[:10]
