"""Creating and migrating the catalog schema, safely when several processes open it at once."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import DBAPIError

from taskcache.catalog.engine import Database
from taskcache.catalog.tables import Base, run_files, schema_info
from taskcache.errors import CatalogUnavailableError, SchemaVersionError

SCHEMA_VERSION = 3


def _add_task_status_index(conn: Connection) -> None:
    """1 -> 2: filtering runs by task and status (the run browser, taskcache.runs) used the
    task index alone and scanned every run of the task."""
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_runs_task_status ON runs (task, status)")


def _add_run_files(conn: Connection) -> None:
    """2 -> 3: the files and folders each run read and wrote (a hit checks the reads and
    puts back the writes). Existing runs have none recorded, so they stay servable as
    before."""
    run_files.create(conn, checkfirst=True)  # with its index


# version -> function upgrading a catalog from that version to the next, in one write
# transaction; tables new in a later version are then added by create_all.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _add_task_status_index,
                                                       2: _add_run_files}

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "ensure_schema"]


def ensure_schema(db: Database) -> None:
    """Create the tables of a new catalog, migrate an older one, refuse a newer one."""
    try:
        with db.read() as conn:
            found = conn.scalar(select(schema_info.c.version))
    except (DBAPIError, CatalogUnavailableError):
        # no schema_info table yet, or a brand-new file another process is switching to
        # WAL right now (SQLite then answers "locked" at once, without waiting): the write
        # below, one creator at a time, settles both
        found = None
    if found == SCHEMA_VERSION:
        return
    _check_version(db, found)
    for attempt in range(5):
        try:
            with db.write() as conn:  # BEGIN IMMEDIATE: one creator at a time
                _create_or_migrate(db, conn)
            return
        except CatalogUnavailableError:  # locked without waiting (see above): try again
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))
        except DBAPIError as exc:  # another process created it first (non-SQLite)
            if attempt == 4 or "exist" not in str(exc.orig).lower():
                raise


def _check_version(db: Database, found: int | None) -> None:
    if found is not None and found > SCHEMA_VERSION:
        raise SchemaVersionError(found, SCHEMA_VERSION, db.url.render_as_string(hide_password=True))


def _create_or_migrate(db: Database, conn: Connection) -> None:
    found = None
    if conn.dialect.has_table(conn, schema_info.name):
        found = conn.scalar(select(schema_info.c.version))
    _check_version(db, found)
    if found is not None:
        for version in range(found, SCHEMA_VERSION):
            MIGRATIONS[version](conn)
    Base.metadata.create_all(conn)
    if found is None:
        conn.execute(insert(schema_info).values(id=1, version=SCHEMA_VERSION))
    elif found < SCHEMA_VERSION:
        conn.execute(update(schema_info).values(version=SCHEMA_VERSION))
