"""nbval runs each notebook here in its own kernel against a fresh, empty taskcache catalog.

The notebooks' stored outputs were made from an empty catalog (notebooks/execute.py), so each
kernel must start from one too: run ids then start at 1 and every first ``%%task`` is a miss.
The kernel inherits this process's environment when nbval starts it (while setting up the
notebook's first cell), so ``TASKCACHE_DIR`` is pointed at a new temporary folder just for that
moment and restored afterwards. tests/conftest.py does the same per test for tests/.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_folders: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    # addopts names notebooks/sanitize.cfg relative to the repository; make it work from anywhere
    sanitize = getattr(config.option, "nbval_sanitize_with", None)
    if sanitize and not os.path.exists(sanitize):
        candidate = Path(config.rootpath) / sanitize
        if candidate.exists():
            config.option.nbval_sanitize_with = str(candidate)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item):
    notebook = item.parent
    starts_kernel = item.path.suffix == ".ipynb" and getattr(notebook, "kernel", False) is None
    if not starts_kernel:
        yield
        return
    folder = tempfile.mkdtemp(prefix=f"taskcache-nbval-{item.path.stem}-")
    _folders.append(folder)
    saved = {name: os.environ.get(name) for name in ("TASKCACHE_DIR", "TASKCACHE_DB_URL")}
    os.environ["TASKCACHE_DIR"] = folder
    os.environ.pop("TASKCACHE_DB_URL", None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def pytest_sessionfinish(session: pytest.Session) -> None:
    for folder in _folders:
        shutil.rmtree(folder, ignore_errors=True)
