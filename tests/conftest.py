from __future__ import annotations

import importlib
import importlib.util
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from helpers import CHROME_ARGS, CHROMIUM, browser_missing, browser_required, on_ci

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
@pytest.fixture
def chromium() -> Iterator[Any]:
    """Debian's Chromium through Playwright (never ``playwright install``). Skipped when
    missing, except on CI (``CI`` set) or with ``TASKCACHE_REQUIRE_BROWSER=1``: then failed."""
    missing = browser_missing()
    if missing:
        message = "the browser test needs " + "; ".join(missing)
        if browser_required():
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


# -- a real PostgreSQL --------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Any]:
    """One throwaway PostgreSQL cluster for the session (tests/postgres.py). Skipped when
    Debian's postgresql or psycopg is missing, except on CI, where that fails."""
    from postgres import Cluster, server_binaries

    missing = [] if importlib.util.find_spec("psycopg") else ["psycopg (pip install -e '.[test]')"]
    binaries = server_binaries()
    if binaries is None:
        missing.append("PostgreSQL's server (apt-get install postgresql)")
    if missing:
        message = "PostgreSQL tests need " + "; ".join(missing)
        if on_ci():
            pytest.fail(message + " (required on CI)", pytrace=False)
        pytest.skip(message)
    cluster = Cluster(binaries)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty database of the session's cluster, as the catalog of this test
    (``TASKCACHE_DB_URL``); artifacts stay in the test's cache folder."""
    import uuid

    url = postgres_cluster.create_database(f"t_{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("TASKCACHE_DB_URL", url)
    runner.reset()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest, cache_dir: Path) -> str:
    """Each test using it runs against SQLite and against PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{cache_dir / 'catalog.db'}"
    return request.getfixturevalue("postgres_url")


# -- a real S3 endpoint ---------------------------------------------------------------------
@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's standalone S3 server on 127.0.0.1 for the session (skipped without moto)."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("s3fs") is None:
        message = "S3 tests need moto[server] and s3fs (pip install -e '.[test]')"
        if on_ci():
            pytest.fail(message + " (required on CI)", pytrace=False)
        pytest.skip(message)
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new empty bucket; the AWS variables (endpoint included) point every client of this
    process and its children at the moto server, as a user's would at their S3."""
    import uuid

    import boto3

    for name, value in (("AWS_ENDPOINT_URL", s3_endpoint), ("AWS_ACCESS_KEY_ID", "testing"),
                        ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    bucket = f"tc-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return bucket
