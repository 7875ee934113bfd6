from __future__ import annotations

import importlib
import importlib.util
import os
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


# -- a real browser ----------------------------------------------------------------------
CHROMIUM = os.environ.get("TASKCACHE_CHROMIUM", "/usr/bin/chromium")
CHROME_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def browser_missing() -> list[str]:
    """What a browser test needs and this machine lacks."""
    missing = []
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("the Python package 'playwright' (pip install -e '.[test]')")
    return missing


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Debian's Chromium through Playwright (never ``playwright install``). Skipped when
    missing, except on CI (``CI`` set) or with ``TASKCACHE_REQUIRE_BROWSER=1``: then failed."""
    missing = browser_missing()
    if missing:
        message = "the browser test needs " + "; ".join(missing)
        required = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no") \
            or os.environ.get("TASKCACHE_REQUIRE_BROWSER") == "1"
        if required:
            pytest.fail(message + " (required: CI or TASKCACHE_REQUIRE_BROWSER=1 is set)",
                        pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        try:
            yield browser
        finally:
            browser.close()
