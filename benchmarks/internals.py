"""The taskcache internals the benchmarks reach into, imported in this one place, so a later
move of a module means editing this file only. Public API (``taskcache.task``, ``configure``,
``runs``, ``RunBrowser``) is imported from ``taskcache`` itself, not from here.

    hash_value(value) -> str   the content hash taskcache keys an input by
    SETTLED_NS: int            how old a file must be before the file memos trust it
    get_runner() -> Runner     the process's runner (its ``.store`` is the artifact store)
    reset_runner() -> None     drop the process's runner, so the next configure() takes effect
    Catalog                    the run catalog over an SQLAlchemy URL
    runs_table                 the ``runs`` table (SQLAlchemy Core), to check its columns
    SCHEMA_VERSION: int        the catalog schema version
"""

from taskcache.catalog import SCHEMA_VERSION, Catalog
from taskcache.catalog.tables import runs as runs_table
from taskcache.fileio import SETTLED_NS
from taskcache.hashing import hash_value
from taskcache.lifecycle.runner import get_runner
from taskcache.lifecycle.runner import reset as reset_runner

__all__ = ["SCHEMA_VERSION", "SETTLED_NS", "Catalog", "get_runner", "hash_value",
           "reset_runner", "runs_table"]
