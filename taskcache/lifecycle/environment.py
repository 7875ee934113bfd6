"""What a run records about where it ran: Python, packages, host, pid, git commit."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any


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


def capture_environment(packages: dict[str, str] | None = None, path: str | None = None) -> dict[str, Any]:
    """The environment record of a run started now, in this process."""
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
