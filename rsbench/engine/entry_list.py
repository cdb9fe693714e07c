"""``RSBEntryListDataset``: the samples a task's ``build_config`` wrote as a JSON list.

Tasks whose samples are not images with a label file (band stacks, optical/SAR pairs, height
tiles) write each split's samples as a JSON list of plain records; this dataset hands each record
to the pipeline as it is, with the dataset's ``data_root``, so the task's loading transform reads
the files. Registered in mmengine's root registry, which every scope falls back to.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mmengine.dataset import BaseDataset
from mmengine.registry import DATASETS


@DATASETS.register_module(name="RSBEntryListDataset")
class EntryListDataset(BaseDataset):
    """One sample per record of the JSON list ``ann_file``, each with ``data_root`` added."""

    def load_data_list(self) -> list[dict[str, Any]]:
        return [dict(e, data_root=self.data_root) for e in json.loads(Path(self.ann_file).read_text())]
