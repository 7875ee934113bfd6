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
    "gc": "taskcache.maintenance",
    "Run": "taskcache.api",
    "on": "taskcache.events",
    "register_codec": "taskcache.codecs",
    "register_hasher": "taskcache.fingerprint",
    "KEY_VERSION": "taskcache.fingerprint",
}

__all__ = [
    "KEY_VERSION",
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
    "unload_ipython_extension",
]

if TYPE_CHECKING:  # pragma: no cover
    from .api import Run, configure, run, runs, summary
    from .browser import RunBrowser, browse
    from .codecs import register_codec
    from .decorator import task
    from .events import on
    from .fingerprint import KEY_VERSION, register_hasher
    from .maintenance import gc


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'taskcache' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def load_ipython_extension(ipython: Any) -> None:
    from ._extension import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from ._extension import unload_ipython_extension as unload

    unload(ipython)
