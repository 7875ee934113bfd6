"""The taskcache internals the benchmarks reach into, imported in this one place.

taskcache's modules are moving into subpackages (issue 11). Each name is imported from its new
home first and from its old one otherwise, so the benchmarks run on either layout, and a later
move means editing this file only. Public API (``taskcache.task``, ``configure``, ``runs``,
``RunBrowser``) is imported from ``taskcache`` itself, not from here.

    hash_value(value) -> str   the content hash taskcache keys an input by
    SETTLED_NS: int            how old a file must be before the verified-file memo trusts it
    get_runner() -> Runner     the process's runner (its ``.store`` is the artifact store)
    reset_runner() -> None     drop the process's runner, so the next configure() takes effect
    Catalog                    the run catalog over an SQLAlchemy URL
    runs_table                 the ``runs`` table (SQLAlchemy Core), to check its columns
    SCHEMA_VERSION: int        the catalog schema version
"""

from __future__ import annotations

try:
    from taskcache.hashing import hash_value
except ImportError:
    from taskcache.fingerprint import hash_value

try:
    from taskcache.storage.verified import SETTLED_NS
except ImportError:
    from taskcache._verified import SETTLED_NS

try:
    from taskcache.lifecycle.runner import get_runner
    from taskcache.lifecycle.runner import reset as reset_runner
except ImportError:
    from taskcache.runner import get_runner
    from taskcache.runner import reset as reset_runner

try:
    from taskcache.catalog import Catalog
except ImportError:
    from taskcache.catalog.catalog import Catalog

try:
    from taskcache.catalog.tables import runs as runs_table
except ImportError:
    from taskcache._models import runs as runs_table

try:
    from taskcache.catalog.schema import SCHEMA_VERSION
except ImportError:
    from taskcache._schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "SETTLED_NS", "Catalog", "get_runner", "hash_value",
           "reset_runner", "runs_table"]
