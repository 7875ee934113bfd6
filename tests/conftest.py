from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from taskcache.lifecycle import runner

# tests/data/corpus/*.ipynb are inputs of tests/test_differential.py, not nbval tests
collect_ignore_glob = ["data/*"]


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own catalog folder; nothing leaks into the repository."""
    monkeypatch.delenv("TASKCACHE_DB_URL", raising=False)
    folder = tmp_path / "cache"
    monkeypatch.setenv("TASKCACHE_DIR", str(folder))
    runner.reset()
    yield folder
    runner.reset()


@pytest.fixture
def ip(cache_dir: Path) -> Iterator[Any]:
    """A real IPython shell with the extension loaded; display output is captured in
    ``ip.display_pub.outputs``."""
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.reset(new_session=False)
    shell.display_pub = CapturingDisplayPublisher()
    shell.run_line_magic("load_ext", "taskcache")
    yield shell
    shell.run_line_magic("unload_ext", "taskcache")
    shell.config.pop("TaskCache", None)  # %config TaskCache.x would outlive the test


@pytest.fixture
def make_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], ModuleType]:
    """Write ``source`` to a real module file and import it fresh (user code, not a mock)."""
    folder = tmp_path / "usercode"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    created: list[str] = []

    def make(name: str, source: str) -> ModuleType:
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
        sys.modules.pop(name, None)
        importlib.invalidate_caches()
        created.append(name)
        return importlib.import_module(name)

    yield make
    for name in created:
        sys.modules.pop(name, None)
