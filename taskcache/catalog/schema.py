"""Creating and migrating the catalog schema with Alembic, safely when several processes
open a catalog at once.

Each schema version is an Alembic revision named by its number (``migrations/versions``).
``schema_info.version`` keeps the number too, so every taskcache, including those from
before Alembic, can tell a catalog newer than itself and refuse it. A new catalog is created
from the models and stamped at the head; an older one (also one from before Alembic, which
has no ``alembic_version`` yet) is stamped at its version and upgraded. Both happen in one
write transaction, so a second process opening the same new catalog waits and then finds
it done.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import DBAPIError

from taskcache.catalog.engine import Database
from taskcache.catalog.tables import Base, schema_info
from taskcache.errors import CatalogUnavailableError, SchemaVersionError

#: the schema this taskcache writes: the number of the head revision
SCHEMA_VERSION = 5
MIGRATIONS_DIR = Path(__file__).with_name("migrations")

__all__ = ["MIGRATIONS_DIR", "SCHEMA_VERSION", "ensure_schema", "revision_of"]


def revision_of(version: int) -> str:
    """The Alembic revision of schema version ``version``."""
    return f"{version:04d}"


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
            with db.write() as conn:  # one creator at a time (see engine.py)
                _create_or_migrate(db, conn)
            return
        except CatalogUnavailableError:  # locked without waiting (see above): try again
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))
        except DBAPIError as exc:  # another process created it first (a server without locks)
            if attempt == 4 or "exist" not in str(exc.orig).lower():
                raise


def _check_version(db: Database, found: int | None) -> None:
    if found is not None and found > SCHEMA_VERSION:
        raise SchemaVersionError(found, SCHEMA_VERSION, db.url.render_as_string(hide_password=True))


def _alembic(conn: Connection):  # -> alembic.config.Config
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    return config


def _create_or_migrate(db: Database, conn: Connection) -> None:
    from alembic import command

    found = None
    if conn.dialect.has_table(conn, schema_info.name):
        found = conn.scalar(select(schema_info.c.version))
    _check_version(db, found)
    config = _alembic(conn)
    if found is None:  # a new catalog: the current models, stamped at the head
        Base.metadata.create_all(conn)
        conn.execute(insert(schema_info).values(id=1, version=SCHEMA_VERSION))
        command.stamp(config, revision_of(SCHEMA_VERSION))
        return
    if found < SCHEMA_VERSION:
        command.stamp(config, revision_of(found), purge=True)  # from before Alembic, too
        command.upgrade(config, revision_of(SCHEMA_VERSION))
        conn.execute(update(schema_info).values(version=SCHEMA_VERSION))
