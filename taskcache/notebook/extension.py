"""``%load_ext taskcache`` / ``%unload_ext taskcache``: register and remove everything."""

from __future__ import annotations

import ast
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

from taskcache.errors import CacheWarning, CatalogUnavailableError
from taskcache.lifecycle import random_state
from taskcache.lifecycle import runner as runner_module
from taskcache.lifecycle.progress import set_progress_bar
from taskcache.notebook.cell import has_top_level_await

_loaded: dict[int, Any] = {}  # id(shell) -> the TaskCache magics instance

#: the line of a cell that loads taskcache
_LOAD_LINE = re.compile(r"^\s*%(re)?load_ext\s+taskcache\b", re.MULTILINE)
#: code that could seed a global random generator or copy its state
_RANDOM_WORDS = re.compile(r"seed|random|state", re.IGNORECASE)
#: startup settings that run code before the first cell
_STARTUP = ("exec_lines", "exec_files", "code_to_run", "file_to_run", "module_to_run", "extensions")

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


def nothing_could_have_seeded(ip: Any) -> bool:
    """Whether no code that could seed the global random generators (or keep a copy of their
    state) has run in this kernel before ``%load_ext taskcache``: no startup files, startup
    code or other extensions, no earlier cell, and before that line in its own cell only
    comments and imports of standard-library modules, none of them mentioning random, seed or
    state. When true, the generators already imported are still in the state the OS seeded
    them with (see lifecycle/random_state.py); when unsure, false."""
    if os.environ.get("PYTHONSTARTUP"):
        return False
    for section in ("InteractiveShellApp", "IPKernelApp", "TerminalIPythonApp"):
        options = ip.config.get(section, {})
        if any(options.get(name) for name in _STARTUP):
            return False
    profile = getattr(ip, "profile_dir", None)
    if profile is not None and any(Path(profile.startup_dir).glob("*.*py")):
        return False
    *earlier, cell = getattr(getattr(ip, "history_manager", None), "input_hist_raw", None) or [""]
    load = _LOAD_LINE.search(cell)
    if load is None or any(text.strip() for text in earlier):
        return False  # loaded from outside a cell (a script, a config), or after other cells
    before = cell[:load.start()]
    if _RANDOM_WORDS.search(before):
        return False
    try:
        statements = ast.parse(before).body
    except SyntaxError:  # IPython syntax (a magic, !cmd) before the line
        return False
    for statement in statements:
        if isinstance(statement, ast.Import):
            modules = [alias.name for alias in statement.names]
        elif isinstance(statement, ast.ImportFrom) and statement.level == 0 and statement.module:
            modules = [statement.module]
        else:
            return False
        if any(m.partition(".")[0] not in sys.stdlib_module_names for m in modules):
            return False  # a library may seed a generator when it is imported
    return True


def _observe_generators(result: Any) -> None:
    """After each cell: the global random generators it moved or could have copied are no
    longer fresh entropy."""
    random_state.observe(getattr(result.info, "raw_cell", None) or "")


def load_ipython_extension(ip: Any) -> None:
    if id(ip) in _loaded:
        return
    random_state.watch_imports()  # first: the modules taskcache imports now are seen too
    from taskcache.notebook.magics import TaskCache

    magics = TaskCache(shell=ip, parent=ip)
    ip.register_magics(magics)  # also makes it one of ip.configurables, for %config
    magics.transformer = AwaitAsyncTask(ip)
    ip.input_transformers_post.append(magics.transformer)
    _loaded[id(ip)] = magics
    if nothing_could_have_seeded(ip):
        random_state.trust(["random", "numpy"])
    ip.events.register("post_run_cell", _observe_generators)
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
    if _observe_generators in ip.events.callbacks["post_run_cell"]:
        ip.events.unregister("post_run_cell", _observe_generators)
    random_state.unwatch()
