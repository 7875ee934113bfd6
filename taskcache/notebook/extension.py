"""``%load_ext taskcache`` / ``%unload_ext taskcache``: register and remove everything."""

from __future__ import annotations

import ast
import warnings
from typing import Any

from taskcache.errors import CacheWarning, CatalogUnavailableError
from taskcache.lifecycle import runner as runner_module
from taskcache.lifecycle.progress import set_progress_bar
from taskcache.notebook.cell import has_top_level_await

_loaded: dict[int, Any] = {}  # id(shell) -> the TaskCache magics instance

#: what IPython turns a ``%%task`` cell into
_TASK_CALL = "get_ipython().run_cell_magic('task', "


class AwaitAsyncTask:
    """An input transformer: IPython turns a ``%%task`` cell into
    ``get_ipython().run_cell_magic('task', line, body)``; when the body awaits at top
    level, the magic returns a coroutine and this makes the cell ``await`` it, so IPython
    runs the cell in its event loop and the body's awaits run there, as in a plain cell."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell

    def __call__(self, lines: list[str]) -> list[str]:
        text = "".join(lines)
        if not text.startswith(_TASK_CALL) or not self.shell.autoawait:
            return lines
        try:
            (stmt,) = ast.parse(text).body
        except (SyntaxError, ValueError):
            return lines
        call = stmt.value if isinstance(stmt, ast.Expr) else None
        if not (isinstance(call, ast.Call) and len(call.args) == 3
                and isinstance(call.args[2], ast.Constant) and isinstance(call.args[2].value, str)):
            return lines
        if not has_top_level_await(self.shell.transform_cell(call.args[2].value)):
            return lines
        return ["await " + text]


def load_ipython_extension(ip: Any) -> None:
    from taskcache.notebook.magics import TaskCache

    if id(ip) in _loaded:
        return
    magics = TaskCache(shell=ip, parent=ip)
    ip.register_magics(magics)  # also makes it one of ip.configurables, for %config
    magics.transformer = AwaitAsyncTask(ip)
    ip.input_transformers_post.append(magics.transformer)
    _loaded[id(ip)] = magics
    if getattr(ip, "kernel", None) is not None:  # a notebook: sweeps draw a widget bar
        from taskcache.browser.progress import WidgetProgressBar

        set_progress_bar(WidgetProgressBar)
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
    ip.input_transformers_post[:] = [t for t in ip.input_transformers_post if t is not magics.transformer]
    ip.configurables[:] = [c for c in ip.configurables if c is not magics]
    set_progress_bar(None)
    runner_module.reset()
