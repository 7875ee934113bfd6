"""The caches measured beside taskcache that need care to set up: marimo's persistent_cache.

marimo's cache is built for marimo notebooks; outside one it still works as a library when
the function is passed in (``mo.persistent_cache(fn, save_path=...)``), keyed like in a
notebook by the function's code and the content of its arguments, pickled to disk. It logs
a warning per decorated function that no marimo app is in scope; the benchmarks mute it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any


def marimo_cache(fn: Callable[..., Any], folder: Path) -> Callable[..., Any] | str:
    """``fn`` under marimo's persistent_cache saving to ``folder``; or, when marimo is not
    installed, a note saying so (the case then runs without it)."""
    try:
        import marimo
    except ImportError:
        return "marimo is not installed: its persistent_cache is not measured (pip install marimo)"
    logging.getLogger("marimo").setLevel(logging.ERROR)
    return marimo.persistent_cache(fn, save_path=str(folder))


def marimo_version() -> str | None:
    """marimo's version, or None when it is not installed."""
    try:
        import marimo
    except ImportError:
        return None
    return str(marimo.__version__)
