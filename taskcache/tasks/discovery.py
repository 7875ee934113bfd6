"""Finding the ``@task`` functions people can launch: those of the modules listed in
``[tool.taskcache] tasks = ["experiments.steps"]`` and of the packages that declare a
``taskcache.tasks`` entry point. A module that fails to import is listed with its error,
never hidden."""

from __future__ import annotations

import importlib
import importlib.metadata
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from taskcache.tasks.params import Param, describe_params

__all__ = ["DiscoveredTask", "Discovery", "ModuleError", "discover", "task_definition"]

ENTRY_POINT_GROUP = "taskcache.tasks"


def task_definition(obj: Any) -> Any | None:
    """The ``TaskDefinition`` behind a ``@task`` wrapper, or None for anything else."""
    return getattr(obj, "__taskcache__", None) if callable(obj) else None


@dataclass(frozen=True)
class DiscoveredTask:
    """One launchable task."""

    name: str                     # the task's name in the catalog
    module: str
    qualname: str
    function: Callable[..., Any]  # the @task wrapper
    params: list[Param]
    doc: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "module": self.module, "qualname": self.qualname,
                "doc": self.doc, "params": [p.to_json() for p in self.params]}


@dataclass(frozen=True)
class ModuleError:
    """A module that could not be imported (or scanned), with the reason."""

    module: str
    error: str
    traceback: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"module": self.module, "error": self.error, "traceback": self.traceback}


@dataclass
class Discovery:
    tasks: dict[str, DiscoveredTask] = field(default_factory=dict)
    errors: list[ModuleError] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"tasks": [t.to_json() for t in self.tasks.values()],
                "errors": [e.to_json() for e in self.errors]}


def _entry_point_modules() -> list[str]:
    return [ep.module for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)]


def _scan(module_name: str, found: Discovery) -> None:
    try:
        module = importlib.import_module(module_name)
    except BaseException as exc:  # SystemExit, a broken import: listed, never raised
        if isinstance(exc, KeyboardInterrupt):
            raise
        found.errors.append(ModuleError(module_name, f"{type(exc).__name__}: {exc}",
                                        traceback.format_exc(limit=8)))
        return
    for attr, obj in vars(module).items():
        definition = task_definition(obj)
        if definition is None or getattr(obj, "__module__", None) != module.__name__:
            continue  # not a task, or one imported from elsewhere (listed where defined)
        try:
            params = describe_params(definition.fn)
        except (TypeError, ValueError) as exc:
            found.errors.append(ModuleError(module_name, f"{attr}: {exc}"))
            continue
        found.tasks[definition.name] = DiscoveredTask(
            name=definition.name, module=module.__name__, qualname=obj.__qualname__,
            function=obj, params=params, doc=(definition.fn.__doc__ or "").strip())


def discover(modules: Iterable[str] = (), *, entry_points: bool = True) -> Discovery:
    """The tasks of ``modules`` (dotted names) and, with ``entry_points``, of every
    installed package's ``taskcache.tasks`` entry points. Import errors are collected."""
    names = list(dict.fromkeys([*modules, *(_entry_point_modules() if entry_points else [])]))
    found = Discovery()
    for name in names:
        _scan(name, found)
    return found
