"""Engine setup: SQLite pragmas and explicit BEGIN / BEGIN IMMEDIATE; any other URL as is.

pysqlite's own transaction handling is switched off (``isolation_level = None``) and
SQLAlchemy's "begin" event emits the BEGIN itself, following SQLAlchemy's documented
recipe. A connection carrying the execution option ``taskcache_write=True`` begins with
``BEGIN IMMEDIATE`` (it takes the write lock up front, so the busy timeout applies and a
writer never fails half-way with "database is locked"); every other connection begins
with a plain deferred ``BEGIN``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

WRITE_OPTION = "taskcache_write"
SINGLE_STATEMENT_OPTION = "taskcache_single_statement"


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _is_file_db(url: URL) -> bool:
    db = url.database or ""
    return bool(db) and db != ":memory:" and not db.startswith("file::memory:")


def make_engine(url: str | URL, *, busy_timeout: float) -> Engine:
    """An Engine for ``url``; for SQLite with WAL, foreign keys and explicit BEGINs."""
    url = make_url(url)
    if not is_sqlite(url):
        return create_engine(url, pool_pre_ping=True)
    if _is_file_db(url) and not url.query.get("uri"):
        Path(url.database or "").expanduser().parent.mkdir(parents=True, exist_ok=True)
    timeout_ms = max(0, int(busy_timeout * 1000))
    engine = create_engine(url, connect_args={"timeout": busy_timeout})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_connection.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {timeout_ms}")  # first: the others may wait
            mode = cur.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() not in ("wal", "memory"):
                cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute("PRAGMA synchronous = NORMAL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get(SINGLE_STATEMENT_OPTION, False):
            return  # one SELECT in autocommit mode is atomic by itself: no BEGIN, no lock held
        if options.get(WRITE_OPTION, False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # may wait busy_timeout; errors wrapped
        else:  # a deferred BEGIN never waits; straight to the driver, it is the hit path
            conn.connection.driver_connection.execute("BEGIN")

    return engine


class Database:
    """A fork-aware engine; ``read()``/``write()`` yield a connection in one transaction."""

    def __init__(self, url: str | URL, *, busy_timeout: float) -> None:
        self.url = make_url(url)
        self.sqlite = is_sqlite(self.url)
        self._busy_timeout = busy_timeout
        self._engine = make_engine(self.url, busy_timeout=busy_timeout)
        self._pid = os.getpid()
        self._local = threading.local()
        self._held: list[Connection] = []  # single-statement connections, closed on dispose
        self._held_lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        if os.getpid() != self._pid:  # forked: the parent's pooled connections are not ours
            self._engine.dispose(close=False)
            self._engine = make_engine(self.url, busy_timeout=self._busy_timeout)
            self._pid = os.getpid()
        return self._engine

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def single_statement(self) -> Iterator[Connection]:
        """A connection for ONE read statement (the cache-hit lookup). On SQLite it is this
        thread's connection, kept checked out between calls so the hit path skips the pool
        and BEGIN/COMMIT: a lone SELECT in autocommit mode is atomic, and no transaction is
        ever left open on it. Other dialects use an ordinary read transaction."""
        if not self.sqlite:
            with self.read() as conn:
                yield conn
            return
        conn = self._held_connection()
        try:
            yield conn
        finally:
            conn.rollback()  # ends SQLAlchemy's bookkeeping; nothing was begun in SQLite

    def _held_connection(self) -> Connection:
        engine = self.engine
        held = getattr(self._local, "conn", None)
        if held is None or held[0] != os.getpid() or held[1] is not engine:
            conn = engine.connect().execution_options(**{SINGLE_STATEMENT_OPTION: True})
            self._local.conn = held = (os.getpid(), engine, conn)
            with self._held_lock:
                self._held.append(conn)
        return held[2]

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            if self.sqlite:
                conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        mine = os.getpid() == self._pid
        with self._held_lock:
            held, self._held = self._held, []
        if mine:
            for conn in held:
                conn.close()
        self._local = threading.local()
        self._engine.dispose(close=mine)
