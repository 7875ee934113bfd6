"""The run catalog: ``catalog`` (the Catalog: claims, leases, state changes, hits and every
query), ``tables`` (SQLAlchemy tables and row -> record converters), ``schema`` (creating
and migrating it) and ``engine`` (connections: SQLite pragmas, transactions, the driver-level
hit statement)."""

from taskcache.catalog.catalog import Catalog
from taskcache.catalog.schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "Catalog"]
