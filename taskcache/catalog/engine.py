"""Engine setup: SQLite pragmas and explicit BEGIN / BEGIN IMMEDIATE; PostgreSQL writes
serialized by a transaction-scoped advisory lock; any other URL as is.

pysqlite's own transaction handling is switched off (``isolation_level = None``) and
SQLAlchemy's "begin" event emits the BEGIN itself, following SQLAlchemy's documented
recipe. A connection carrying the execution option ``taskcache_write=True`` begins with
``BEGIN IMMEDIATE`` (it takes the write lock up front, so the busy timeout applies and a
writer never fails half-way with "database is locked"); every other connection begins
with a plain deferred ``BEGIN``.

On PostgreSQL a write transaction first takes ``pg_advisory_xact_lock(WRITE_LOCK)``
(waiting at most the busy timeout, as ``lock_timeout``), so catalog writes are serialized
exactly as SQLite's write lock serializes them: a claim reads "is anyone computing this
fingerprint?" and inserts its run with no other writer in between (single-flight across
machines), whatever the isolation level. Reads are never blocked. The lock is released by
COMMIT or ROLLBACK, also when the client dies (the server ends its session).

Errors that mean "the catalog cannot be used right now" (locked beyond the busy timeout,
disk full, I/O error, file that cannot be opened; any OperationalError of a server) become
:class:`~taskcache.errors.CatalogUnavailableError` here, in ``read``/``write``/
``single_statement``, and nowhere else. Other database errors propagate unchanged.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from taskcache.errors import CatalogDamagedError, CatalogUnavailableError
from taskcache.fileio import SQLITE_SUFFIXES

WRITE_OPTION = "taskcache_write"
#: the advisory lock key of catalog writes on PostgreSQL (any constant; "taskcach" in ASCII)
WRITE_LOCK = 0x7461736B63616368
SINGLE_STATEMENT_OPTION = "taskcache_single_statement"


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def is_postgresql(url: URL) -> bool:
    return url.get_backend_name() == "postgresql"


def _is_file_db(url: URL) -> bool:
    db = url.database or ""
    return bool(db) and db != ":memory:" and not db.startswith("file::memory:")


# SQLite primary result codes that mean the catalog is unusable now, not that a statement is wrong
_BUSY, _NOMEM, _READONLY, _IOERR, _FULL, _CANTOPEN = "busy", "nomem", "readonly", "ioerr", "full", "cantopen"
_DAMAGED = "damaged"
_UNAVAILABLE_CODES = {5: _BUSY, 6: _BUSY, 7: _NOMEM, 8: _READONLY, 10: _IOERR, 11: _DAMAGED,
                      13: _FULL, 14: _CANTOPEN, 15: _BUSY, 26: _DAMAGED}
_UNAVAILABLE_TEXT = (("database is locked", _BUSY), ("database table is locked", _BUSY),
                     ("disk i/o error", _IOERR), ("database or disk is full", _FULL),
                     ("unable to open database file", _CANTOPEN), ("readonly database", _READONLY),
                     ("out of memory", _NOMEM), ("file is not a database", _DAMAGED),
                     ("database disk image is malformed", _DAMAGED))


#: what keeps a new connection from opening the catalog for writing while it can still be
#: read (e.g. a full disk: SQLite cannot create the -shm file a WAL reader needs)
_READABLE_KINDS = frozenset({_FULL, _IOERR, _CANTOPEN, _READONLY})


def _cause(exc: BaseException) -> str:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    return str(orig).strip() or type(orig).__name__


def _sqlite_kind(exc: BaseException) -> str | None:
    """Which of the "unavailable" kinds a SQLite driver error is; None for another error."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return _UNAVAILABLE_CODES.get(code & 0xFF)
    return next((k for text, k in _UNAVAILABLE_TEXT if text in _cause(exc).lower()), None)


def unavailable_error(url: URL, exc: BaseException, busy_timeout: float) -> CatalogUnavailableError | None:
    """The CatalogUnavailableError for a driver error that means the catalog cannot be used
    right now, naming the catalog and what to do; None for any other error."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    cause = _cause(exc)
    if not is_sqlite(url):
        if not isinstance(exc, OperationalError):
            return None
        where = f"at {url.render_as_string(hide_password=True)}"
        if getattr(orig, "sqlstate", None) == "55P03":  # lock_timeout: the write lock
            return CatalogUnavailableError(where, cause, (
                f"another process kept the catalog's write lock longer than the busy timeout "
                f"({busy_timeout:g} s); re-run when it is done, or raise the timeout with "
                f"taskcache.configure(busy_timeout_seconds=...)"))
        return CatalogUnavailableError(where, cause, "check that the database server is "
                                       "reachable, then re-run")
    kind = _sqlite_kind(exc)
    if kind is None:
        return None
    database = Path(url.database or "").expanduser()
    folder = database.parent
    advice = {
        _BUSY: f"another process kept it locked longer than the busy timeout "
               f"({busy_timeout:g} s); re-run when it is done, or raise the timeout with "
               f"taskcache.configure(busy_timeout_seconds=...)",
        _FULL: f"free space on the disk holding {folder} and re-run",
        _IOERR: f"check the disk holding {folder} (free space if it is full) and re-run",
        _CANTOPEN: f"check that {folder} exists and is writable, or point TASKCACHE_DIR at "
                   f"another folder",
        _READONLY: f"make it writable with: chmod u+w {_existing_files(database)} (its folder "
                   f"{folder} must be writable too), or point TASKCACHE_DIR at another folder",
        _NOMEM: "free memory and re-run",
        _DAMAGED: f"the file is damaged: move it aside (mv {shlex.quote(str(database))} "
                  f"{shlex.quote(str(database) + '.broken')}) and taskcache starts a new "
                  f"catalog (its artifacts are recomputed); taskcache verify reports the "
                  f"damage",
    }[kind]
    error = CatalogDamagedError if kind == _DAMAGED else CatalogUnavailableError
    return error(f"at {database}", cause, advice)


def _existing_files(database: Path) -> str:
    """The database file with its -wal and -shm files where they exist (SQLite creates them
    with the database's mode, so a read-only catalog leaves a read-only -shm behind)."""
    files = [database] + [database.with_name(database.name + suffix)
                          for suffix in SQLITE_SUFFIXES if suffix]
    return " ".join(shlex.quote(str(f)) for f in files if f == database or f.exists())


def make_engine(url: str | URL, *, busy_timeout: float) -> Engine:
    """An Engine for ``url``; for SQLite with WAL, foreign keys and explicit BEGINs."""
    url = make_url(url)
    if is_postgresql(url):
        return _postgresql_engine(url, busy_timeout=busy_timeout)
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


def _postgresql_engine(url: URL, *, busy_timeout: float) -> Engine:
    """Pooled connections (checked before use); writes take the catalog's write lock."""
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    timeout_ms = max(1, int(busy_timeout * 1000))

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(WRITE_OPTION, False):
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {timeout_ms}")
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")

    return engine


class ChangeCounter:
    """SQLite's ``PRAGMA data_version`` on a connection of its own: a number that changes
    whenever any other connection -- in this process or another -- commits to the database
    file. Readers use it to know that what they read earlier still holds."""

    def __init__(self, url: URL, *, busy_timeout: float) -> None:
        self._url = url
        self._timeout = busy_timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()

    def read(self) -> int | None:
        """The current value; None when it cannot be read (the caller then queries)."""
        with self._lock:
            try:
                if self._conn is None or self._pid != os.getpid():
                    self._conn = sqlite3.connect(
                        self._url.database or "", timeout=self._timeout, isolation_level=None,
                        check_same_thread=False, uri=bool(self._url.query.get("uri")))
                    self._pid = os.getpid()
                return int(self._conn.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error:
                self.close()
                return None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and self._pid == os.getpid():
            conn.close()


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
        #: None where no cheap change counter exists (a server, an in-memory database)
        self.changes = (ChangeCounter(self.url, busy_timeout=busy_timeout)
                        if self.sqlite and _is_file_db(self.url) else None)

    @property
    def engine(self) -> Engine:
        if os.getpid() != self._pid:  # forked: the parent's pooled connections are not ours
            self._engine.dispose(close=False)
            self._engine = make_engine(self.url, busy_timeout=self._busy_timeout)
            self._pid = os.getpid()
        return self._engine

    def _unavailable(self, exc: BaseException) -> CatalogUnavailableError | None:
        return unavailable_error(self.url, exc, self._busy_timeout)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            try:
                conn: Connection | None = self.engine.connect()
            except (DBAPIError, sqlite3.Error) as exc:
                if not self._readable_frozen(exc):
                    raise
                conn = None
            if conn is None:  # outside the except: the caller's errors are not chained to it
                with self._frozen_read() as frozen:
                    yield frozen
                return
            with conn, conn.begin():
                yield conn
        except (DBAPIError, sqlite3.Error) as exc:
            if (error := self._unavailable(exc)) is None:
                raise
            raise error from None

    # -- reading a catalog that cannot be opened for writing (a full disk) ----------------
    def _wal_is_empty(self) -> bool:
        wal = Path(self.url.database or "").expanduser()
        wal = wal.with_name(wal.name + "-wal")
        try:
            return wal.stat().st_size == 0
        except FileNotFoundError:
            return True

    def _readable_frozen(self, exc: BaseException) -> bool:
        """Whether a connection that failed with ``exc`` may be replaced by a frozen read
        (:meth:`_frozen_read`): a SQLite file that cannot be opened for writing (full disk,
        read-only file or folder) and whose write-ahead log is empty, so that every
        committed change is in the database file itself."""
        return (self.sqlite and _is_file_db(self.url) and not self.url.query.get("uri")
                and _sqlite_kind(exc) in _READABLE_KINDS and self._wal_is_empty())

    @contextmanager
    def _frozen_read(self) -> Iterator[Connection]:
        """One read of the database file as SQLite's ``immutable`` URI opens it: no -shm, no
        locks, nothing written. Safe while the write-ahead log stays empty (nobody commits:
        on a full disk, nobody can); checked again afterwards, and a read that overlapped a
        commit raises CatalogUnavailableError (SQLITE_BUSY) instead of returning."""
        path = Path(self.url.database or "").expanduser().absolute()
        uri = f"file:{quote(str(path))}?immutable=1"
        engine = create_engine("sqlite://", poolclass=NullPool, creator=lambda: sqlite3.connect(
            uri, uri=True, check_same_thread=False))
        try:
            with engine.connect() as conn, conn.begin():
                yield conn
        finally:
            engine.dispose()
        if not self._wal_is_empty():
            busy = sqlite3.OperationalError("database is locked (written while read)")
            busy.sqlite_errorcode = 5  # type: ignore[attr-defined]
            raise busy

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
        try:
            try:
                conn: Connection | None = self._held_connection()
            except (DBAPIError, sqlite3.Error) as exc:
                if not self._readable_frozen(exc):
                    raise
                conn = None
            if conn is None:  # a new one each time, never held; outside the except (see read)
                with self._frozen_read() as frozen:
                    yield frozen
                return
            try:
                yield conn
            finally:
                conn.rollback()  # ends SQLAlchemy's bookkeeping; nothing was begun in SQLite
        except (DBAPIError, sqlite3.Error) as exc:
            if (error := self._unavailable(exc)) is None:
                raise
            raise error from None

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
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    yield conn
        except (DBAPIError, sqlite3.Error) as exc:
            if (error := self._unavailable(exc)) is None:
                raise
            raise error from None

    def dispose(self) -> None:
        if self.changes is not None:
            self.changes.close()
        mine = os.getpid() == self._pid
        with self._held_lock:
            held, self._held = self._held, []
        if mine:
            for conn in held:
                conn.close()
        self._local = threading.local()
        self._engine.dispose(close=mine)


class DriverStatement:
    """A Core SELECT compiled once for a dialect and run on the DBAPI connection directly,
    its rows passed through the same result processors SQLAlchemy would apply: the cache
    hit lookup without SQLAlchemy's per-execution work (SQLite only)."""

    def __init__(self, stmt: Any, dialect: Any, name: str) -> None:
        compiled = stmt.compile(dialect=dialect)
        defaults = compiled.construct_params({name: None})
        self.sql = str(compiled)
        self._name = name
        self._params = [(key, defaults[key]) for key in compiled.positiontup or ()]
        processors = [col.type.dialect_impl(dialect).result_processor(dialect, None)
                      for col in stmt.selected_columns]
        self._processors = [(i, proc) for i, proc in enumerate(processors) if proc is not None]

    def rows(self, driver: Any, value: Any) -> list[list[Any]]:
        params = tuple(value if key == self._name else default for key, default in self._params)
        out = []
        for raw in driver.execute(self.sql, params).fetchall():
            row = list(raw)
            for i, proc in self._processors:
                row[i] = proc(row[i])
            out.append(row)
        return out
