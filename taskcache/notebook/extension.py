"""``%load_ext taskcache`` / ``%unload_ext taskcache``: register and remove everything."""

from __future__ import annotations

import warnings
from typing import Any

from taskcache.errors import CacheWarning, CatalogUnavailableError
from taskcache.lifecycle import runner as runner_module

_loaded: dict[int, Any] = {}  # id(shell) -> the TaskCache magics instance


def load_ipython_extension(ip: Any) -> None:
    from taskcache.notebook.magics import TaskCache

    if id(ip) in _loaded:
        return
    magics = TaskCache(shell=ip, parent=ip)
    ip.register_magics(magics)  # also makes it one of ip.configurables, for %config
    _loaded[id(ip)] = magics
    try:
        folder = runner_module.get_runner().settings.cache_dir
    except CatalogUnavailableError as exc:  # cells run uncached, each with a warning
        folder = runner_module.current_settings().cache_dir
        warnings.warn(f"taskcache: cells will run without the cache: {exc}", CacheWarning,
                      stacklevel=2)
    if not magics.quiet:
        print(f"taskcache: catalog at {folder}")


def unload_ipython_extension(ip: Any) -> None:
    magics = _loaded.pop(id(ip), None)
    if magics is None:
        return
    manager = ip.magics_manager
    manager.magics["cell"].pop("task", None)
    manager.magics["line"].pop("taskcache", None)
    manager.registry.pop(type(magics).__name__, None)
    ip.configurables[:] = [c for c in ip.configurables if c is not magics]
    runner_module.reset()
