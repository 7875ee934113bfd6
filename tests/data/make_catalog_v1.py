"""Regenerate catalog_v1.db, the golden schema-v1 catalog test_catalog.py must keep loading.

Run once per schema version bump with the taskcache of that version; never edit the .db.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from taskcache.catalog import SCHEMA_VERSION, Catalog
from taskcache.records import ArtifactRecord, InputRecord, RunSpec

HERE = Path(__file__).parent


def main() -> None:
    assert SCHEMA_VERSION == 1
    path = HERE / "catalog_v1.db"
    path.unlink(missing_ok=True)
    cat = Catalog(f"sqlite:///{path}")
    a = cat.claim(RunSpec("load", "cell", "golden-fp-a", "code-a", source="raw = load()",
                          tags=("golden",)), lease_seconds=60)
    cat.complete(a, [ArtifactRecord("raw", "parquet", "aa/raw.parquet", 1234, "sum-a",
                                    "h-raw", "pandas.DataFrame", (3, 2), 3, ("x", "y"))],
                 duration=1.5)
    b = cat.claim(RunSpec("clean", "cell", "golden-fp-b", "code-b", source="df = raw",
                          tags=("golden",), inputs=(InputRecord("raw", "h-raw",
                                                                "pandas.DataFrame"),)),
                  lease_seconds=60)
    cat.complete(b, [ArtifactRecord("df", "parquet", "bb/df.parquet", 99, "sum-b", "h-df",
                                    "pandas.DataFrame", (3, 2), 3, ("x", "y"))],
                 duration=0.5)
    c = cat.claim(RunSpec("fit", "function", "golden-fp-c", "code-c"), lease_seconds=60)
    cat.finish_failed(c, status="failed", error_type="ValueError", error_message="bad",
                      traceback="Traceback ...", duration=0.1)
    cat.dispose()
    with sqlite3.connect(path) as con:
        stamp = "2024-01-02 03:04:05.000000"
        con.execute("UPDATE runs SET created_at = ?, started_at = ?", (stamp, stamp))
        con.execute("UPDATE runs SET finished_at = ? WHERE finished_at IS NOT NULL", (stamp,))
        con.execute("UPDATE state_history SET at = ?", (stamp,))
        con.execute("UPDATE runs SET host = 'golden', pid = 1, lease_owner = NULL")
    con.close()
    with sqlite3.connect(path, isolation_level=None) as con:
        con.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        con.execute("VACUUM")
    con.close()


if __name__ == "__main__":
    main()
