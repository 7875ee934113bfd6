"""``%load_ext taskcache`` / ``%unload_ext taskcache``: register and remove everything."""

from __future__ import annotations

from typing import Any

from taskcache.lifecycle import runner as runner_module
from taskcache.lifecycle.progress import set_progress_bar

_loaded: dict[int, Any] = {}  # id(shell) -> the TaskCache magics instance


def load_ipython_extension(ip: Any) -> None:
    from taskcache.notebook.magics import TaskCache

    if id(ip) in _loaded:
        return
    magics = TaskCache(shell=ip, parent=ip)
    ip.register_magics(magics)  # also makes it one of ip.configurables, for %config
    _loaded[id(ip)] = magics
    if getattr(ip, "kernel", None) is not None:  # a notebook: sweeps draw a widget bar
        from taskcache.browser.progress import WidgetProgressBar

        set_progress_bar(WidgetProgressBar)
    if not magics.quiet:
        print(f"taskcache: catalog at {runner_module.get_runner().settings.cache_dir}")


def unload_ipython_extension(ip: Any) -> None:
    magics = _loaded.pop(id(ip), None)
    if magics is None:
        return
    manager = ip.magics_manager
    manager.magics["cell"].pop("task", None)
    manager.magics["line"].pop("taskcache", None)
    manager.registry.pop(type(magics).__name__, None)
    ip.configurables[:] = [c for c in ip.configurables if c is not magics]
    set_progress_bar(None)
    runner_module.reset()
