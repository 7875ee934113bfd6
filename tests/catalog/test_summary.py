"""The summary table (schema 4) stays equal to a full scan through every kind of write."""

from __future__ import annotations

import shutil
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from taskcache.catalog import Catalog, summary
from taskcache.records import ArtifactRecord, RunSpec

DATA = Path(__file__).parents[1] / "data"


def _spec(task: str, fp: str) -> RunSpec:
    return RunSpec(task=task, kind="cell", fingerprint=fp, code_hash="c", source="x = 1")


def _art(name: str, size: int) -> ArtifactRecord:
    return ArtifactRecord(name=name, codec="json", relpath=f"{name}.json", size=size,
                          checksum="c", value_hash=f"v-{name}", type_name="int")


def _kept(cat: Catalog) -> list[tuple]:
    with cat._db.read() as conn:
        return summary.read(conn)


def _scanned(cat: Catalog) -> list[tuple]:
    """What recompute gives, in a transaction rolled back afterwards."""
    with cat._db.engine.connect() as conn, conn.begin() as txn:
        summary.recompute(conn)
        rows = summary.read(conn)
        txn.rollback()
    return rows


def _same(a: list[tuple], b: list[tuple]) -> bool:
    return len(a) == len(b) and all(
        x[:4] == y[:4] and x[5] == y[5] and abs(x[4] - y[4]) < 1e-9 for x, y in zip(a, b, strict=True))


def test_summary_follows_every_write(tmp_path: Path) -> None:
    cat = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    checks = []

    def check() -> None:
        kept, scanned = _kept(cat), _scanned(cat)
        assert _same(kept, scanned), (kept, scanned)
        checks.append(kept)

    a = cat.claim(_spec("load", "a"), lease_seconds=60)
    check()  # one running run
    cat.complete(a, [_art("a1", 100), _art("a2", 50)], duration=2.0)
    check()
    b = cat.claim(_spec("train", "b"), lease_seconds=60)
    cat.finish_failed(b, status="failed", error_type="E", error_message="m", traceback="t",
                      duration=1.0)
    c = cat.claim(_spec("train", "c"), lease_seconds=60)
    cat.transition(c.run_id, "cancelled")
    check()
    cat.record_hit(a.run_id)
    cat.record_hits({a.run_id: (3, datetime.now(UTC))})
    check()
    assert cat.summary()["hits"] == 4 and cat.summary()["time_saved"] == 8.0
    d = cat.claim(_spec("train", "d"), lease_seconds=60)
    assert cat.expire_abandoned(datetime.now(UTC) + timedelta(minutes=5)) == [d.run_id]
    e = cat.claim(_spec("train", "e"), lease_seconds=0.001)
    time.sleep(0.01)  # past its lease
    joined = cat.claim_or_join(_spec("train", "e"), lease_seconds=60,
                               max_abandoned=3)  # expires e, claims anew
    assert joined.run_id != e.run_id
    check()
    cat.invalidate(a.run_id, "test")
    cat.delete_runs([a.run_id, b.run_id])
    check()
    assert cat.summary() == {
        "runs": 4, "by_status": {"cancelled": 1, "failed": 2, "running": 1},
        "by_task": {"train": 4}, "hits": 0, "time_saved": 0.0, "disk_bytes": 0}
    assert cat.count_runs() == 4 and cat.count_runs(task="train", status="failed") == 2
    assert cat.count_runs(task="load") == 0 and cat.task_names() == ["train"]
    assert cat.change_marker()[2] == 4
    cat.dispose()


def test_a_failed_write_leaves_the_summary_as_it_was(tmp_path: Path) -> None:
    cat = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    claim = cat.claim(_spec("load", "a"), lease_seconds=60)
    before = _kept(cat)
    bad = ArtifactRecord(name="x", codec="json", relpath="x", size=None,  # type: ignore[arg-type]
                         checksum="c", value_hash="v", type_name="int")
    with pytest.raises(Exception):  # noqa: B017 -- NOT NULL: the transaction rolls back
        cat.complete(claim, [bad], duration=1.0)
    assert _kept(cat) == before and cat.get_run(claim.run_id).status == "running"
    cat.dispose()


def test_older_catalogs_get_their_summary_on_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    shutil.copy(DATA / "catalog_v1.db", path)
    with sqlite3.connect(path) as con:
        scanned = con.execute("SELECT task, status, count(*) FROM runs GROUP BY task, status "
                              "ORDER BY task, status").fetchall()
        disk = con.execute("SELECT coalesce(sum(size), 0) FROM artifacts").fetchone()[0]
    cat = Catalog(f"sqlite:///{path}")
    assert [row[:3] for row in _kept(cat)] == scanned
    assert cat.summary()["disk_bytes"] == disk
    cat.dispose()
