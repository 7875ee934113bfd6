"""What a run records about where it ran: Python, packages, host, pid, git commit, and for a
notebook cell the notebook and the cell's number."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: where front ends tell the kernel which notebook it runs: VS Code and JupyterLab (in the
#: user namespace), then Jupyter Server (in the kernel's environment)
_NOTEBOOK_NAMES = ("__vsc_ipynb_file__", "__session__")
_NOTEBOOK_ENV = "JPY_SESSION_NAME"


@functools.lru_cache(maxsize=32)
def git_commit(folder: str) -> str | None:
    """HEAD of the git work tree containing ``folder`` (None outside git or without git)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=3
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


@functools.lru_cache(maxsize=1)
def _hostname() -> str:
    return socket.gethostname()


def notebook_path(namespace: Mapping[str, Any]) -> str | None:
    """The notebook a kernel runs, as its front end told it (a path, or for JupyterLab the
    session name, which is the notebook's path); None in a plain IPython or a script."""
    for name in _NOTEBOOK_NAMES:
        value = namespace.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return os.environ.get(_NOTEBOOK_ENV) or None


def cell_number(shell: Any) -> int:
    """The ``In[n]`` number of the cell an IPython ``shell`` is running now. (IPython 9
    moves ``shell.execution_count`` to the next cell before running this one; the running
    cell's own number is on its execution result.)"""
    result = getattr(getattr(shell, "displayhook", None), "exec_result", None)
    number = getattr(result, "execution_count", None)
    return number if isinstance(number, int) else shell.execution_count


def capture_environment(packages: dict[str, str] | None = None, path: str | None = None) -> dict[str, Any]:
    """The environment record of a run started now, in this process (``path``: the
    function's source file, or the notebook of a cell)."""
    cwd = os.getcwd()
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(terse=True),
        "host": _hostname(),
        "pid": os.getpid(),
        "cwd": cwd,
        "path": path or "",
        "git_commit": git_commit(str(Path(path).parent) if path and Path(path).exists() else cwd),
        "packages": dict(sorted((packages or {}).items())),
    }
