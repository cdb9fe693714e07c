"""The hooks a plugin may implement. This module is the plugin API's documentation.

Every hook is a *registration callback*: rsbench calls it once with a ``register``
function and the plugin calls ``register(...)`` for each thing it offers. Keeping the
callback in the host lets rsbench check names for collisions and close-match errors in
one place, and lets hooks grow arguments without breaking plugins (pluggy passes an
implementation only the arguments it names).

Declarations must be cheap: the CLI's ``list``, ``plugins`` and ``info`` read them without
importing torch or OpenMMLab. Anything heavy is referenced by an import path string
(``"package.module:attribute"``) and imported only when a run starts.

A minimal plugin module::

    from rsbench import hookimpl, BackboneInfo
    @hookimpl
    def rsbench_register_backbones(register):
        register(BackboneInfo(name="my-net", module="my_pkg.net", mm_type="MyNet", ...))

and in its ``pyproject.toml``::

    [project.entry-points.rsbench]
    my_plugin = "my_pkg.rsbench_plugin"

A plugin that imports another plugin's modules declares it, by entry-point name, in a module
attribute ``DEPENDS_ON = ("segmentation",)``. ``rsbench plugins`` shows the declarations, a
cycle among them is reported as an error of each plugin in it, and a dependency that is blocked
or missing is named on the dependent plugin (its own declarations stay available: a task that
does not use the dependency keeps working).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from rsbench.plugin_api.catalog import BackboneInfo, DatasetInfo, ExecutorInfo, TaskInfo

PROJECT = "rsbench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def rsbench_register_backbones(register: Callable[[BackboneInfo], None]) -> None:
    """Declare backbones: modalities and bands, out channels and strides, parameter count,
    and the import path of the class that builds them (registered into mmengine's root
    ``MODELS`` when imported, so any OpenMMLab config can name it without a scope)."""


@hookspec
def rsbench_register_datasets(register: Callable[[DatasetInfo], None]) -> None:
    """Declare datasets: on-disk layout, classes, and import paths of the layout checker and
    of the fixture generator that writes a tiny copy in the official layout."""


@hookspec
def rsbench_register_tasks(register: Callable[[TaskInfo], None]) -> None:
    """Declare tasks, one per evaluation: dataset, family, metric and its exact definition,
    required modalities, and the import path of the class that turns a run spec into an
    mmengine config."""


@hookspec
def rsbench_register_executors(register: Callable[[ExecutorInfo], None]) -> None:
    """Declare executors that run a grid of evaluations (local process pool, Ray, ...)."""

