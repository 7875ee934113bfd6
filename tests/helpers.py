"""Small helpers several test modules share (tests/ is on sys.path, as for conftest.py)."""

from __future__ import annotations

import importlib.util
import os
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def write_lock(catalog_db: Path) -> Iterator[None]:
    """Another connection holds the catalog's write lock, as another process would."""
    other = sqlite3.connect(catalog_db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


# -- shared by the tests that start servers or drive a browser --------------------------------
CHROMIUM = os.environ.get("TASKCACHE_CHROMIUM", "/usr/bin/chromium")
CHROME_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def on_ci() -> bool:
    """CI (``CI`` set) requires the optional test servers and the browser: missing is a failure."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def browser_required() -> bool:
    return on_ci() or os.environ.get("TASKCACHE_REQUIRE_BROWSER") == "1"


def browser_missing(*packages: str) -> list[str]:
    """What a browser test needs (Chromium, playwright, ``packages``) and this machine lacks."""
    missing = []
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    for package in ("playwright", *packages):
        if importlib.util.find_spec(package) is None:
            missing.append(f"the Python package {package!r} (pip install -e '.[test]')")
    return missing


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**env: str) -> dict[str, str]:
    """This process's environment without taskcache's own settings (``TASKCACHE_*``), plus
    ``env``: for a subprocess that must take its settings from the test alone."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TASKCACHE_")}
    clean.update(env)
    return clean
