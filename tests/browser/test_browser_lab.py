"""The run browser in a real browser: notebooks/browser.ipynb in JupyterLab, in Chromium.

A copy of the notebook is served by a JupyterLab started here (127.0.0.1, a free port, a
token, every Jupyter/IPython/taskcache folder inside the test's temporary folder), opened in
Debian's ``/usr/bin/chromium`` through Playwright, and run with Run > Run All Cells. The test
then uses the panel like a user: clicks run ids, opens the Lineage tab, follows a lineage
button, filters by status. It saves a screenshot to the test's temporary folder and to
``tests/artifacts/browser.png``.

Needs ``/usr/bin/chromium`` (``apt-get install chromium``) and the ``playwright`` and
``jupyterlab`` packages (the ``test`` extras); never ``playwright install``. Without them the
test is skipped, except on CI (``CI`` set) or with ``TASKCACHE_REQUIRE_BROWSER=1``, where it
fails and says what is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "browser.ipynb"
ARTIFACT = ROOT / "tests" / "artifacts" / "browser.png"
CHROMIUM = os.environ.get("TASKCACHE_CHROMIUM", "/usr/bin/chromium")
CHROME_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 60_000

pytestmark = pytest.mark.browser


def _missing() -> list[str]:
    missing = []
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    for package in ("playwright", "jupyterlab"):
        if importlib.util.find_spec(package) is None:
            missing.append(f"the Python package {package!r} (pip install -e '.[test]')")
    return missing


def _browser_required() -> bool:
    ci = os.environ.get("CI", "").strip().lower()
    return ci not in ("", "0", "false", "no") or os.environ.get("TASKCACHE_REQUIRE_BROWSER") == "1"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(url: str, method: str = "GET") -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as reply:
        body = reply.read()
    return json.loads(body) if body else None


class Lab:
    """A JupyterLab server of our own in ``folder``; ``stop()`` ends it and its kernels."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port, self.token = folder, _free_port(), "taskcache-browser-test"
        # no "Jupyter news?" toast and no update check over the page
        notification = (folder / "settings" / "@jupyterlab" / "apputils-extension"
                        / "notification.jupyterlab-settings")
        notification.parent.mkdir(parents=True)
        notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(folder / "config"),
                   JUPYTER_DATA_DIR=str(folder / "data"), JUPYTER_RUNTIME_DIR=str(folder / "rt"),
                   IPYTHONDIR=str(folder / "ipython"), TASKCACHE_DIR=str(folder / "cache"))
        env.pop("TASKCACHE_DB_URL", None)
        self.log_path = folder / "server.log"
        self._log = open(self.log_path, "w")  # closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
             "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
             "--ServerApp.port_retries=0", f"--ServerApp.token={self.token}",
             f"--ServerApp.root_dir={folder}", f"--LabApp.workspaces_dir={folder / 'ws'}",
             f"--LabApp.user_settings_dir={folder / 'settings'}", "--LabApp.news_url=None",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=folder)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def wait_ready(self, timeout: float = 90.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}:\n"
                                   + self.log_tail())
            try:
                _request(self.url("api/status"))
                return
            except (OSError, ValueError):
                time.sleep(0.25)
        raise TimeoutError(f"JupyterLab did not answer on port {self.port}:\n" + self.log_tail())

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            try:  # our server's kernels first, so no kernel outlives the server
                for kernel in _request(self.url("api/kernels")) or []:
                    _request(self.url(f"api/kernels/{kernel['id']}"), method="DELETE")
            except (OSError, ValueError):
                pass
            self.process.terminate()  # only the process started here
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    missing = _missing()
    if missing:
        message = "the browser test needs " + "; ".join(missing)
        if _browser_required():
            pytest.fail(message + " (required: CI or TASKCACHE_REQUIRE_BROWSER=1 is set)",
                        pytrace=False)
        pytest.skip(message)
    folder = tmp_path / "lab"
    folder.mkdir()
    shutil.copy(NOTEBOOK, folder / NOTEBOOK.name)  # Lab autosaves: never the source notebook
    server = Lab(folder)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_run_browser_in_jupyterlab(lab: Lab, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    shot = tmp_path / "browser.png"
    page_errors: list[str] = []
    console_errors: list[str] = []
    started = time.monotonic()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        page = chromium.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
        try:
            page.goto(lab.url(f"lab/tree/{NOTEBOOK.name}"))
            page.locator(".jp-Notebook .jp-Cell").first.wait_for()
            # a real kernel, not "No Kernel" (whose indicator also says idle)
            expect(page.locator("#jp-main-statusbar")).to_contain_text(
                re.compile(r"\(ipykernel\) \| Idle"))
            menu = page.locator("#jp-MainMenu")
            menu.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

            panel = page.locator(".tc-browser")
            expect(panel).to_be_visible()
            expect(panel.locator(".tc-run-table")).to_be_visible()
            # the notebook's last cell selects the daily run: wait for it, then for the kernel
            expect(page.locator(".jp-OutputArea-output", has_text="['load_orders']")
                   ).to_be_visible()
            expect(page.locator("#jp-main-statusbar")).to_contain_text(
                re.compile(r"\(ipykernel\) \| Idle"))
            rows = panel.locator(".tc-run-row:visible")
            expect(rows).to_have_count(4)
            for task in ("load_orders", "daily", "by_region", "top_days"):
                expect(_row(panel, task)).to_be_visible()
            title = panel.locator(".tc-detail .tc-detail-title")

            # a click on a run id (front end -> kernel -> front end) shows that run
            _row(panel, "load_orders").locator(".tc-run-select").click()
            expect(title).to_contain_text("load_orders")
            daily_button = _row(panel, "daily").locator(".tc-run-select")
            expect(daily_button).to_have_text(re.compile(r"#\d+"))
            daily_button.click()
            expect(panel.locator(".tc-detail")).to_be_visible()
            expect(title).to_contain_text("daily")
            expect(title).not_to_contain_text("load_orders")

            # the Lineage tab: a graph with daily and its neighbours, and buttons to move
            panel.locator(".tc-detail-tabs .lm-TabBar-tab",
                          has_text=re.compile(r"^\s*Lineage\s*$")).click()
            svg = panel.locator(".tc-lineage svg.tc-lineage-svg")
            expect(svg).to_be_visible()
            nodes = svg.locator("g.tc-lineage-node")
            expect(nodes.nth(1)).to_be_attached()  # at least 2 nodes
            assert nodes.count() >= 2
            expect(svg.locator("g.tc-lineage-node", has_text="load_orders")).to_be_attached()
            svg.scroll_into_view_if_needed()
            page.screenshot(path=str(shot))  # the table, daily's detail and its lineage
            goto = panel.locator(".tc-lineage-goto", has_text="load_orders")
            expect(goto).to_be_visible()
            goto.click()
            expect(title).to_contain_text("load_orders")

            # the status filter: only the failed run is left
            panel.locator(".tc-filter-status select").select_option("failed")
            expect(rows).to_have_count(1)
            expect(rows.first).to_contain_text("by_region")
        except Exception as exc:
            page.screenshot(path=str(shot))
            _publish(shot)
            raise AssertionError(
                f"browser test failed: {type(exc).__name__}: {exc}\n"
                f"screenshot {shot} (copied to {ARTIFACT}); "
                f"page errors: {page_errors or 'none'}; console errors: "
                f"{console_errors or 'none'}\nJupyterLab log:\n{lab.log_tail()}") from exc
        finally:
            chromium.close()
    _publish(shot)
    took = time.monotonic() - started
    print(f"browser cycle took {took:.1f} s; screenshot {shot} (and {ARTIFACT}); "
          f"console errors: {console_errors or 'none'}")
    assert not page_errors, f"uncaught errors in the page: {page_errors}"


def _row(panel: Any, task: str) -> Any:
    """The table row whose task column is exactly ``task``."""
    cell = panel.page.locator("b", has_text=re.compile(rf"^{re.escape(task)}$"))
    return panel.locator(".tc-run-row", has=cell)


def _publish(shot: Path) -> None:
    if shot.exists():
        ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, ARTIFACT)
