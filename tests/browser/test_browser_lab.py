"""The run browser in a real browser: notebooks/browser.ipynb in JupyterLab, in Chromium.

A copy of the notebook is served by a JupyterLab started here (127.0.0.1, a free port, a
token, every Jupyter/IPython/taskcache folder inside the test's temporary folder), opened in
Debian's ``/usr/bin/chromium`` through Playwright, and run with Run > Run All Cells. The test
then uses the panel like a user, in the light theme, the dark theme and a 900 px window, and
checks what a person would: one panel per ``tc.browse()`` cell; every text of the panel at a
WCAG contrast of at least 4.5:1 against the background it is drawn on (computed in the page);
no button, column header or tab title whose text is cut; the detail's top on screen after
clicking a run; a failed run's error line on screen without scrolling. A screenshot of each
state goes to ``tests/artifacts/`` (``browser-*.png``).

Needs ``/usr/bin/chromium`` (``apt-get install chromium``) and the ``playwright`` and
``jupyterlab`` packages (the ``test`` extras); never ``playwright install``. Without them the
test is skipped, except on CI (``CI`` set) or with ``TASKCACHE_REQUIRE_BROWSER=1``, where it
fails and says what is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import CHROME_ARGS, CHROMIUM, browser_missing, browser_required, free_port

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "browser.ipynb"
ARTIFACTS = ROOT / "tests" / "artifacts"
TIMEOUT_MS = 60_000
AMOUT = re.compile(r"KeyError: .*amout")  # the notebook's failing cell: a typo in a column

pytestmark = pytest.mark.browser


def _request(url: str, method: str = "GET") -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as reply:
        body = reply.read()
    return json.loads(body) if body else None


class Lab:
    """A JupyterLab server of our own in ``folder``; ``stop()`` ends it and its kernels."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port, self.token = folder, free_port(), "taskcache-browser-test"
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
    missing = browser_missing("jupyterlab")
    if missing:
        message = "the browser test needs " + "; ".join(missing)
        if browser_required():
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
    shots = tmp_path / "shots"
    shots.mkdir()
    page_errors: list[str] = []
    console_errors: list[str] = []
    started = time.monotonic()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
        try:
            _run_all(page, lab)
            _check_status_line_lines_up(page)
            panel = _one_panel_per_browse_cell(page)
            rows = panel.locator(".tc-run-row:visible")
            expect(rows).to_have_count(4)
            for task in ("load_orders", "daily", "by_region", "top_days"):
                expect(_row(panel, task)).to_be_visible()
            # the failed run's error is in its row
            expect(_row(panel, "by_region")).to_contain_text(AMOUT)

            # light theme, wide window: the detail opens beside the table
            _check_run_detail(page, panel, "daily", shots / "browser-light.png")
            _check_code_tab(page, panel, shots / "browser-light-code.png")
            _check_lineage(page, panel)
            _check_failed_run(page, panel, shots / "browser-light-failed.png")
            _check_delete_confirmation(page, panel)

            _switch_theme(page, "JupyterLab Dark")
            _check_failed_run(page, panel, shots / "browser-dark-failed.png")
            _check_run_detail(page, panel, "daily", shots / "browser-dark.png")
            _check_code_tab(page, panel, shots / "browser-dark-code.png")
            _check_lineage(page, panel)
            _check_delete_confirmation(page, panel)
            _switch_theme(page, "JupyterLab Light")

            # a 900 px window: the detail goes below the table and is brought into view
            page.set_viewport_size({"width": 900, "height": 800})
            _check_readable(page, panel, "900 px")
            _check_run_detail(page, panel, "load_orders", shots / "browser-narrow.png")
            _check_failed_run(page, panel, shots / "browser-narrow-failed.png")
            _check_delete_confirmation(page, panel)

            # the status filter: only the failed run is left
            panel.locator(".tc-filter-status select").select_option("failed")
            expect(rows).to_have_count(1)
            expect(rows.first).to_contain_text("by_region")
            panel.locator(".tc-filter-status select").select_option("any")
            expect(rows).to_have_count(4)
            _check_rerun(page, panel, shots / "browser-rerun.png")
        except Exception as exc:
            page.screenshot(path=str(shots / "browser-failure.png"))
            _publish(shots)
            raise AssertionError(
                f"browser test failed: {type(exc).__name__}: {exc}\n"
                f"screenshots in {shots} (copied to {ARTIFACTS}); "
                f"page errors: {page_errors or 'none'}; console errors: "
                f"{console_errors or 'none'}\nJupyterLab log:\n{lab.log_tail()}") from exc
        finally:
            chromium.close()
    _publish(shots)
    took = time.monotonic() - started
    print(f"browser test took {took:.1f} s; screenshots in {ARTIFACTS}; "
          f"console errors: {console_errors or 'none'}")
    assert not page_errors, f"uncaught errors in the page: {page_errors}"


# -- steps ------------------------------------------------------------------------------------

def _run_all(page: Any, lab: Lab) -> None:
    from playwright.sync_api import expect

    page.goto(lab.url(f"lab/tree/{NOTEBOOK.name}"))
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    # a real kernel, not "No Kernel" (whose indicator also says idle)
    idle = re.compile(r"\(ipykernel\) \| Idle")
    expect(page.locator("#jp-main-statusbar")).to_contain_text(idle)
    page.locator("#jp-MainMenu").get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    # the notebook's last cell selects the daily run: wait for it, then for the kernel
    expect(page.locator(".jp-OutputArea-output", has_text="['load_orders']")).to_be_visible()
    expect(page.locator("#jp-main-statusbar")).to_contain_text(idle)


def _one_panel_per_browse_cell(page: Any) -> Any:
    """Every cell that calls tc.browse() shows exactly one panel; returns the first."""
    from playwright.sync_api import expect

    cells = page.locator(".jp-CodeCell", has=page.locator(".jp-InputArea",
                                                          has_text="tc.browse("))
    expect(cells.first).to_be_visible()
    assert cells.count() >= 2, "the notebook has a tc.browse() cell and a scripted one"
    for index in range(cells.count()):
        expect(cells.nth(index).locator(".tc-run-table").first).to_be_visible()
        assert cells.nth(index).locator(".tc-browser").count() == 1, f"cell {index}"
    assert page.locator(".tc-browser").count() == cells.count()
    return cells.first.locator(".tc-browser")


def _check_run_detail(page: Any, panel: Any, task: str, shot: Path) -> None:
    """Click a run: its detail opens with its top on screen."""
    from playwright.sync_api import expect

    _scroll_to(panel)
    _row(panel, task).locator(".tc-run-select").click()
    title = panel.locator(".tc-detail .tc-detail-title")
    expect(title).to_contain_text(task)
    _wait_until(page, lambda: _on_screen(panel.locator(".tc-detail-title")),
                f"the top of run {task}'s detail is not on screen after clicking it")
    _check_readable(page, panel, f"run {task}")
    page.screenshot(path=str(shot))


def _check_code_tab(page: Any, panel: Any, shot: Path) -> None:
    from playwright.sync_api import expect

    _tab(panel, "Code").click()
    code = panel.locator(".tc-detail .tc-code")
    expect(code).to_be_visible()
    expect(code).to_contain_text("groupby")
    _check_readable(page, panel, "Code tab")
    code.scroll_into_view_if_needed()
    page.screenshot(path=str(shot))


def _check_lineage(page: Any, panel: Any) -> None:
    """The Lineage tab draws daily and its neighbours, with buttons to move along."""
    from playwright.sync_api import expect

    _tab(panel, "Lineage").click()
    svg = panel.locator(".tc-lineage svg.tc-lineage-svg")
    expect(svg).to_be_visible()
    nodes = svg.locator("g.tc-lineage-node")
    expect(nodes.nth(1)).to_be_attached()  # at least 2 nodes
    expect(svg.locator("g.tc-lineage-node", has_text="load_orders")).to_be_attached()
    _check_readable(page, panel, "Lineage tab")
    goto = panel.locator(".tc-lineage-goto", has_text="load_orders")
    expect(goto).to_be_visible()
    goto.click()
    expect(panel.locator(".tc-detail .tc-detail-title")).to_contain_text("load_orders")


def _check_failed_run(page: Any, panel: Any, shot: Path) -> None:
    """A failed run opens on its error: the error line is on screen, no scrolling."""
    from playwright.sync_api import expect

    _scroll_to(panel)
    _row(panel, "by_region").locator(".tc-run-select").click()
    expect(panel.locator(".tc-detail .tc-detail-title")).to_contain_text("by_region")
    error = panel.locator(".tc-detail .tc-error-line:visible")
    expect(error).to_have_count(1)
    expect(error).to_contain_text(AMOUT)
    _wait_until(page, lambda: _on_screen(error), "the failed run's error line is off screen")
    traceback = panel.locator(".tc-detail .tc-traceback")
    expect(traceback).to_contain_text("Cell In[")
    expect(traceback).not_to_contain_text("taskcache/")
    _check_readable(page, panel, "failed run")
    page.screenshot(path=str(shot))


def _check_delete_confirmation(page: Any, panel: Any) -> None:
    from playwright.sync_api import expect

    panel.locator(".tc-detail .tc-action-delete").click()
    confirm = panel.locator(".tc-delete-confirm")
    expect(confirm).to_be_visible()
    _check_readable(page, panel, "delete confirmation")
    panel.locator(".tc-delete-no").click()
    expect(confirm).to_be_hidden()


def _check_rerun(page: Any, panel: Any, shot: Path) -> None:
    """Re-run shows that it runs, then what the cell printed and its status line, and says
    what it did beside the buttons."""
    from playwright.sync_api import expect

    _scroll_to(panel)
    _row(panel, "load_orders").locator(".tc-run-select").click()
    panel.locator(".tc-detail .tc-action-rerun").click()
    output = panel.locator(".tc-detail .tc-action-output")
    expect(output).to_contain_text("200 orders over 7 days")
    expect(output).to_contain_text(re.compile(r"taskcache: miss load_orders #\d+"))
    message = panel.locator(".tc-detail .tc-action-message")
    expect(message).to_contain_text(re.compile(r"re-ran load_orders: run #\d+ \(completed\)"))
    expect(panel.locator(".tc-detail .tc-action-rerun")).to_be_enabled()
    expect(panel.locator(".tc-detail .tc-action-rerun")).to_have_text(re.compile("Re-run$"))
    _check_readable(page, panel, "after a re-run")
    page.screenshot(path=str(shot))


def _check_status_line_lines_up(page: Any) -> None:
    """The status line starts where the printed text above it starts."""
    cell = page.locator(".jp-CodeCell", has=page.locator(".jp-InputArea",
                                                         has_text="%%task load_orders"))
    cell.scroll_into_view_if_needed()
    lefts = cell.evaluate("""cell => {
        const left = el => {
            const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
            let t = walker.nextNode();
            while (t && !t.textContent.trim()) t = walker.nextNode();
            const at = t.textContent.search(/\\S/), range = document.createRange();
            range.setStart(t, at);
            range.setEnd(t, at + 1);
            return range.getBoundingClientRect().left;
        };
        const printed = cell.querySelector(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stdout']");
        return [left(printed), left(cell.querySelector(".taskcache-status"))];
    }""")
    assert abs(lefts[0] - lefts[1]) <= 1, f"printed text starts at {lefts[0]}, status at {lefts[1]}"


def _switch_theme(page: Any, theme: str) -> None:
    from playwright.sync_api import expect

    page.locator("#jp-MainMenu").get_by_role("menuitem", name="Settings", exact=True).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(rf"^{re.escape(theme)}$")).click()
    light = "false" if "Dark" in theme else "true"
    expect(page.locator(f"body[data-jp-theme-light='{light}']")).to_be_attached()
    page.wait_for_timeout(500)  # the theme's stylesheet is swapped asynchronously


def _check_readable(page: Any, panel: Any, state: str) -> None:
    """Every visible text at contrast >= 4.5:1; no button, header or tab title cut."""
    low = panel.evaluate(CONTRAST_JS)
    assert not low, f"{state}: text below 4.5:1 contrast: {low[:8]}"
    cut = panel.evaluate(CUT_JS)
    assert not cut, f"{state}: text cut short: {cut}"


# -- helpers ----------------------------------------------------------------------------------

def _row(panel: Any, task: str) -> Any:
    """The table row whose task column is exactly ``task``."""
    cell = panel.page.locator("b", has_text=re.compile(rf"^{re.escape(task)}$"))
    return panel.locator(".tc-run-row", has=cell)


def _tab(panel: Any, name: str) -> Any:
    return panel.locator(".tc-detail-tabs .lm-TabBar-tab",
                         has_text=re.compile(rf"^\s*{re.escape(name)}\s*$"))


def _scroll_to(panel: Any) -> None:
    """Scroll the notebook so that the panel starts at the top, as a user would."""
    panel.evaluate("e => e.scrollIntoView({block: 'start'})")


def _on_screen(locator: Any) -> bool:
    """The element lies inside both the window and the notebook's scrolled area."""
    return locator.evaluate("""e => {
        const r = e.getBoundingClientRect();
        let top = 0, bottom = window.innerHeight;
        for (let p = e.parentElement; p; p = p.parentElement) {
            const s = getComputedStyle(p);
            if (/(auto|scroll)/.test(s.overflowY) && p.scrollHeight > p.clientHeight) {
                const b = p.getBoundingClientRect();
                top = Math.max(top, b.top); bottom = Math.min(bottom, b.bottom);
            }
        }
        return r.height > 0 && r.top >= top - 1 && r.bottom <= bottom + 1;
    }""")


def _wait_until(page: Any, probe: Any, message: str, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > end:
            raise AssertionError(message)
        page.wait_for_timeout(100)


def _publish(shots: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for shot in shots.glob("*.png"):
        shutil.copy(shot, ARTIFACTS / shot.name)


#: Runs in the page on the panel: every visible text node (and SVG text) with a contrast
#: below 4.5:1 against the colour it is drawn on, with the text, the two colours and the
#: ratio. Colours are composited: translucent text and backgrounds over what is below them,
#: element opacity included. Disabled controls are exempt (WCAG 1.4.3).
CONTRAST_JS = """panel => {
    const parse = c => {
        const m = /rgba?\\(([^)]*)\\)/.exec(c || "");
        if (!m) return null;
        const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
        return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    };
    const over = (top, bottom) => {
        const a = top[3];
        return [0, 1, 2].map(i => top[i] * a + bottom[i] * (1 - a)).concat([1]);
    };
    const lum = c => {
        const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
    };
    const background = el => {
        const layers = [];
        for (let e = el; e; e = e.parentElement) {
            const node = e.closest && e.tagName === "g" && e.classList.contains("tc-lineage-node")
                ? e.querySelector("rect") : null;
            const c = node ? parse(getComputedStyle(node).fill)
                           : parse(getComputedStyle(e).backgroundColor);
            if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
        }
        let bg = [255, 255, 255, 1];
        for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
        return bg;
    };
    const opacity = el => {
        let o = 1;
        for (let e = el; e; e = e.parentElement) o *= Number(getComputedStyle(e).opacity);
        return o;
    };
    const low = [];
    const walker = document.createTreeWalker(panel, NodeFilter.SHOW_TEXT);
    for (let t = walker.nextNode(); t; t = walker.nextNode()) {
        const el = t.parentElement;
        if (!t.textContent.trim() || !el || ["STYLE", "SCRIPT", "title", "OPTION"].includes(el.tagName)) continue;
        if (el.closest("[disabled], :disabled")) continue;
        const range = document.createRange();
        range.selectNodeContents(t);
        const rect = range.getBoundingClientRect();
        const style = getComputedStyle(el);
        if (!rect.width || !rect.height || style.visibility !== "visible") continue;
        const svg = el instanceof SVGElement;
        const fg = parse(svg ? style.fill : style.color);
        if (!fg) continue;
        const bg = background(el);
        fg[3] *= opacity(el);
        const text = over(fg, bg);
        const [a, b] = [lum(text), lum(bg)];
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        if (ratio < 4.5) low.push({text: t.textContent.trim().slice(0, 40),
            ratio: Math.round(ratio * 100) / 100, color: text.map(Math.round).join(","),
            background: bg.map(Math.round).join(",")});
    }
    return low;
}"""

#: Buttons, column headers and tab titles whose text does not fit their box.
CUT_JS = """panel => {
    const cut = [];
    const selector = "button, .tc-col-title .widget-html-content, .lm-TabBar-tabLabel";
    for (const el of panel.querySelectorAll(selector)) {
        if (!el.getClientRects().length || !el.textContent.trim()) continue;
        if (el.scrollWidth > el.clientWidth + 1)
            cut.push(`${el.textContent.trim()} (${el.scrollWidth} > ${el.clientWidth})`);
    }
    return cut;
}"""
