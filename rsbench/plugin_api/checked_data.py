"""The checked data of one run: what a task's ``check_data`` found, typed.

It travels ``check_data -> build_config -> row_fields -> prediction_reader/score`` (see
:class:`rsbench.plugin_api.task.Task`). What every task has is a typed field; what only one
dataset has (a label map, a band reference, a grid) is a named *fact* from its checker; what
``build_config`` works out from the data and the leaderboard row reports (normalisation
statistics, the protocol card's plan) is *derived*, written once and read by ``row_fields``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsbench.errors import DataLayoutError

#: Keys of a dataset checker's summary that become typed fields rather than facts.
TYPED_KEYS = ("root", "classes")


@dataclass
class CheckedData:
    """One run's checked data.

    ``root``: the dataset folder the checker resolved (it may be below ``--data-root``);
    ``classes``: class names in label order; ``split``: the evaluated split; ``options``: the
    run's resolved task options; ``train``/``test``: the samples trained on and evaluated, in the
    form the task's datasets take them; ``native_size``: the longest side, in pixels, of the
    images as stored, where a task option's size depends on it (0: does not apply); ``layout``:
    which on-disk layout was read where a dataset has more than one (recorded in the row).
    """

    root: Path
    classes: tuple[str, ...]
    split: str
    options: Mapping[str, Any]
    train: Sequence[Any] = ()
    test: Sequence[Any] = ()
    native_size: int = 0
    layout: str = ""
    facts: Mapping[str, Any] = field(default_factory=dict)
    derived: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any], *, split: str, options: Mapping[str, Any],
                     **fields: Any) -> CheckedData:
        """From a dataset checker's summary (``DatasetInfo.check``): its ``root`` and
        ``classes`` become fields, its ``layout`` too where it names one, every other key a fact;
        ``fields`` sets the rest (``train``, ``test``, ``native_size``, more ``facts``)."""
        missing = [k for k in TYPED_KEYS if k not in summary]
        if missing:
            raise DataLayoutError(f"the dataset checker's summary lacks {', '.join(missing)} "
                                  f"(it has {', '.join(sorted(summary)) or 'nothing'})")
        facts = {k: v for k, v in summary.items() if k not in (*TYPED_KEYS, "layout")}
        facts.update(fields.pop("facts", {}))
        return cls(root=Path(summary["root"]), classes=tuple(summary["classes"]), split=split,
                   options=dict(options), layout=str(summary.get("layout", "") or ""), facts=facts, **fields)

    def samples(self, part: str) -> list[Any]:
        """The ``train`` or ``test`` samples, as a list (what a task writes its split files from)."""
        if part not in ("train", "test"):
            raise ValueError(f"part {part!r}: expected 'train' or 'test'")
        return list(self.train if part == "train" else self.test)

    def fact(self, key: str, default: Any = ...) -> Any:
        """The dataset's own fact ``key``; without a default, a missing one is an error naming
        the facts there are (a task asking its checker for something it does not report)."""
        if key in self.facts:
            return self.facts[key]
        if default is not ...:
            return default
        raise DataLayoutError(f"the checked data of {self.root} has no {key!r} "
                              f"(facts: {', '.join(sorted(self.facts)) or 'none'})")
