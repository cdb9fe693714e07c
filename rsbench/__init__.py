"""rsbench: benchmark remote-sensing backbones on every standard downstream evaluation.

The package root stays light (no torch, no OpenMMLab) so that the CLI's listing commands
answer instantly; heavy modules are imported when a run starts.
"""

from rsbench.plugin_api.catalog import BackboneInfo, BackbonePrefix, DatasetInfo, ExecutorInfo, SizeOption, TaskInfo
from rsbench.plugin_api.hookspecs import hookimpl
from rsbench.plugin_api.plugin_host import get_catalog, list_backbones, list_datasets, list_tasks

__version__ = "0.1.0"

__all__ = [
    "BackboneInfo",
    "BackbonePrefix",
    "DatasetInfo",
    "ExecutorInfo",
    "SizeOption",
    "TaskInfo",
    "__version__",
    "get_catalog",
    "hookimpl",
    "list_backbones",
    "list_datasets",
    "list_tasks",
]
