"""Small helpers several test modules share (tests/ is on sys.path, as for conftest.py)."""

from __future__ import annotations

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
