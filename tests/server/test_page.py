"""The /taskcache page in a real Chromium, served by ``taskcache serve`` (a real Jupyter
server in a subprocess): fill a task's form, launch, watch the run complete and its result
appear, launch a failing one and see its traceback, cancel a slow one. Screenshots go to
``tests/artifacts/``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import free_port

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
TOKEN = "taskcache-page-test"


class Served:
    """``taskcache serve`` in ``folder`` with the test tasks configured in pyproject.toml."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        shutil.copy(Path(__file__).with_name("tc_steps.py"), folder / "tc_steps.py")
        (folder / "pyproject.toml").write_text('[tool.taskcache]\ntasks = ["tc_steps"]\n')
        env = dict(os.environ, JUPYTER_TOKEN=TOKEN, PYTHONPATH=os.pathsep.join(
            [str(folder), os.environ.get("PYTHONPATH", "")]),
            JUPYTER_CONFIG_DIR=str(folder / "config"), JUPYTER_DATA_DIR=str(folder / "data"),
            JUPYTER_RUNTIME_DIR=str(folder / "rt"), TASKCACHE_DIR=str(folder / "cache"))
        env.pop("TASKCACHE_DB_URL", None)
        self.log_path = folder / "server.log"
        self._log = open(self.log_path, "w")  # closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "taskcache.cli", "serve", "--no-browser", "--allow-root",
             f"--port={self.port}"],
            cwd=folder, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def url(self, path: str = "taskcache") -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={TOKEN}"

    def wait_ready(self, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError("taskcache serve exited:\n" + self.log())
            try:
                urllib.request.urlopen(self.url("api/status"), timeout=2).read()
                return
            except OSError:
                time.sleep(0.25)
        raise TimeoutError("taskcache serve did not answer:\n" + self.log())

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


@pytest.fixture
def served(tmp_path: Path, chromium: Any) -> Iterator[Served]:
    server = Served(tmp_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_launch_from_the_page(served: Served, chromium: Any) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(served.url())
        expect(page.locator("#tc-live")).to_contain_text("live")
        page.get_by_role("button", name="Tasks", exact=True).click()
        page.locator("#tc-task-list li", has_text="scale").click()
        form = page.locator("#tc-launch-form")
        form.locator("#tc-p-n").fill("4")
        form.locator("#tc-p-factor").fill("2.5")
        form.locator("#tc-p-mode").select_option(label="down")
        form.locator("#tc-p-loud").check()
        form.get_by_role("button", name="Launch").click()
        result = page.locator("#tc-launch-result")
        expect(result).to_contain_text(re.compile(r"run #\d+"))
        expect(result).to_have_attribute("data-status", "completed")
        expect(result).to_contain_text("return = 1.6")
        _shot(page, "page-launch-completed.png")

        page.locator("#tc-task-list li", has_text="broken").click()
        page.locator("#tc-p-x").fill("5")
        page.locator("#tc-launch-form").get_by_role("button", name="Launch").click()
        expect(result).to_have_attribute("data-status", "failed")
        expect(result.locator(".tc-error-line")).to_contain_text("bad input 5")
        expect(result.locator("pre")).to_contain_text("raise ValueError")
        _shot(page, "page-launch-failed.png")

        page.locator("#tc-task-list li", has_text="scale").click()
        page.locator("#tc-p-n").fill("")  # n is required: the server says which field
        page.locator("#tc-launch-form").get_by_role("button", name="Launch").click()
        expect(result).to_contain_text("parameter 'n'")

        page.get_by_role("button", name="Runs", exact=True).click()
        rows = page.locator("#tc-runs tbody tr")
        expect(rows).to_have_count(2)
        rows.filter(has_text="broken").click()
        expect(page.locator("#tc-detail .tc-error-line")).to_contain_text("bad input 5")
        _shot(page, "page-runs.png")
    except Exception as exc:
        _shot(page, "page-failure.png")
        raise AssertionError(f"page test failed: {exc}; server log:\n{served.log()}") from exc
    assert not errors, errors
