"""taskcache: content-addressed caching, a run catalog and lineage for notebooks.

Light on purpose: importing taskcache imports neither pandas, pyarrow nor ipywidgets;
public names load their modules on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "task": "taskcache.decorator",
    "runs": "taskcache.api",
    "run": "taskcache.api",
    "summary": "taskcache.api",
    "browse": "taskcache.browser",
    "RunBrowser": "taskcache.browser",
    "configure": "taskcache.api",
    "gc": "taskcache.lifecycle.maintenance",
    "Run": "taskcache.api",
    "on": "taskcache.events",
    "register_codec": "taskcache.codecs",
    "register_hasher": "taskcache.hashing",
    "KEY_VERSION": "taskcache.hashing",
    "Flow": "taskcache.flows",
    "TaskFuture": "taskcache.lifecycle.sweeps",
}

__all__ = [
    "KEY_VERSION",
    "Flow",
    "Run",
    "RunBrowser",
    "__version__",
    "browse",
    "configure",
    "gc",
    "load_ipython_extension",
    "on",
    "register_codec",
    "register_hasher",
    "run",
    "runs",
    "summary",
    "task",
    "TaskFuture",
    "unload_ipython_extension",
]

if TYPE_CHECKING:  # pragma: no cover
    from taskcache.api import Run, configure, run, runs, summary
    from taskcache.browser import RunBrowser, browse
    from taskcache.codecs import register_codec
    from taskcache.decorator import task
    from taskcache.events import on
    from taskcache.flows import Flow
    from taskcache.hashing import KEY_VERSION, register_hasher
    from taskcache.lifecycle.maintenance import gc
    from taskcache.lifecycle.sweeps import TaskFuture


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'taskcache' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def load_ipython_extension(ipython: Any) -> None:
    from taskcache.notebook.extension import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from taskcache.notebook.extension import unload_ipython_extension as unload

    unload(ipython)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Jupyter server finds the extension here (``jpserver_extensions: {"taskcache": true}``)."""
    return [{"module": "taskcache.server"}]
