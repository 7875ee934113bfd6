"""The run catalog on real SQLite files: claims, fencing, lineage, queries, concurrency."""

from __future__ import annotations

import multiprocessing
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from taskcache import events
from taskcache.catalog import SCHEMA_VERSION, Catalog
from taskcache.catalog.schema import MIGRATIONS_DIR, revision_of
from taskcache.errors import (
    CatalogUnavailableError,
    InvalidTransitionError,
    LeaseLostError,
    RunNotFoundError,
    SchemaVersionError,
)
from taskcache.records import ArtifactRecord, InputRecord, RunSpec

DATA = Path(__file__).parents[1] / "data"


def url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "catalog.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def cat(request: pytest.FixtureRequest, db_path: Path):
    """The catalog, once on SQLite and once on a real PostgreSQL; a test that reads the
    SQLite file itself (``sqlite_only``) runs on SQLite only."""
    if request.param == "sqlite":
        catalog_url = url(db_path)
    elif request.node.get_closest_marker("sqlite_only"):
        pytest.skip("reads the SQLite file directly")
    else:
        catalog_url = request.getfixturevalue("postgres_url")
    catalog = Catalog(catalog_url, busy_timeout=5)
    yield catalog
    catalog.dispose()


def spec(task: str = "clean", fp: str = "fp1", *, tags: tuple[str, ...] = (),
         inputs: tuple[InputRecord, ...] = ()) -> RunSpec:
    return RunSpec(task=task, kind="cell", fingerprint=fp, code_hash="code-" + fp,
                   source="df = raw.copy()", tags=tags, inputs=inputs,
                   env={"python": "3.11", "packages": {"pandas": "2.2"}})


def art(name: str = "df", value_hash: str = "v1", size: int = 100) -> ArtifactRecord:
    return ArtifactRecord(name=name, codec="parquet", relpath=f"ab/{value_hash}.parquet",
                          size=size, checksum="c-" + value_hash, value_hash=value_hash,
                          type_name="pandas.DataFrame", shape=(10, 2), rows=10,
                          columns=("a", "b"), repr="<df>")


def run_ok(cat: Catalog, fp: str = "fp1", *, task: str = "clean", out: str = "v1",
           inputs: tuple[InputRecord, ...] = (), tags: tuple[str, ...] = (),
           duration: float = 2.0):
    claim = cat.claim(spec(task, fp, tags=tags, inputs=inputs), lease_seconds=60)
    return cat.complete(claim, [art(value_hash=out)], duration=duration)


def raw_count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# -- engine --

def test_pragmas_and_parent_folder(db_path: Path) -> None:
    cat = Catalog(url(db_path), busy_timeout=1.5)
    assert db_path.exists()
    with cat._db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1500
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    cat.dispose()


def test_writes_take_the_lock_up_front_reads_do_not(db_path: Path) -> None:
    cat = Catalog(url(db_path), busy_timeout=0.3)
    done = run_ok(cat)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        assert cat.find_completed("fp1") is not None  # a deferred read is not blocked
        assert cat.get_run(done.id).status == "completed"
        started = time.perf_counter()
        with pytest.raises(CatalogUnavailableError, match=r"locked.*busy timeout \(0.3 s\)"):
            cat.record_hit(done.id)  # BEGIN IMMEDIATE waits busy_timeout, then gives up
        assert time.perf_counter() - started >= 0.25
    finally:
        other.execute("ROLLBACK")
        other.close()
    cat.record_hit(done.id)
    assert cat.get_run(done.id).hit_count == 1
    cat.dispose()


# -- the lifecycle --

def test_claim_complete_then_find_completed(cat: Catalog) -> None:
    claim = cat.claim(spec(tags=("exp1", "fast")), lease_seconds=30)
    running = cat.get_run(claim.run_id)
    assert running.status == "running" and running.lease_owner == claim.lease_token
    assert running.lease_expires_at == claim.lease_expires_at
    assert running.pid is not None and running.host
    assert cat.find_completed("fp1") is None
    assert cat.find_running("fp1") == running

    done = cat.complete(claim, [art("df", "v1"), art("n", "v2", size=5)], duration=1.25)
    assert done.status == "completed" and done.duration == 1.25
    assert done.lease_expires_at is None and cat.find_running("fp1") is None
    found = cat.find_completed("fp1")
    assert found == done
    assert cat.find_completed("fp1", inputs=False) == done  # done has no inputs
    assert [a.name for a in found.artifacts] == ["df", "n"]
    first = found.artifacts[0]
    assert first.shape == (10, 2) and first.columns == ("a", "b") and first.run_id == done.id
    assert found.tags == ("exp1", "fast")
    assert found.env == {"python": "3.11", "packages": {"pandas": "2.2"}}
    for stamp in (found.created_at, found.started_at, found.finished_at):
        assert stamp is not None and stamp.tzinfo is not None
        assert abs(stamp - datetime.now(UTC)) < timedelta(minutes=1)
    assert found.finished_at >= found.started_at


def test_find_completed_serves_only_the_newest_usable_run(cat: Catalog) -> None:
    failed = cat.claim(spec(fp="fp"), lease_seconds=60)
    cat.finish_failed(failed, status="failed", error_type="ValueError",
                      error_message="boom", traceback="Traceback...", duration=0.1)
    cat.claim(spec(fp="fp"), lease_seconds=60)  # still running
    assert cat.find_completed("fp") is None
    older = run_ok(cat, "fp", out="old")
    newer = run_ok(cat, "fp", out="new")
    run_ok(cat, "other-fp", out="x")
    assert cat.find_completed("fp").id == newer.id
    cat.invalidate(newer.id, "checksum mismatch")
    assert cat.find_completed("fp").id == older.id
    cat.invalidate(older.id, "file missing")
    assert cat.find_completed("fp") is None
    assert cat.get_run(older.id).invalid_reason == "file missing"
    assert cat.get_run(older.id).status == "completed"  # not a status change
    last = cat.history(older.id)[-1]
    assert (last.from_status, last.to_status) == ("completed", "completed")
    assert last.reason == "invalidated: file missing"


@pytest.mark.sqlite_only
def test_wrong_token_is_fenced_and_changes_nothing(cat: Catalog, db_path: Path) -> None:
    claim = cat.claim(spec(), lease_seconds=60)
    before = cat.get_run(claim.run_id)
    thief = type(claim)(claim.run_id, "not-the-token", claim.lease_expires_at)
    with pytest.raises(LeaseLostError) as info:
        cat.complete(thief, [art()], duration=1.0)
    assert info.value.run_id == claim.run_id
    with pytest.raises(LeaseLostError):
        cat.finish_failed(thief, status="failed", error_type="E", error_message="m",
                          traceback=None, duration=None)
    assert cat.renew_leases([thief], 60) == (set(), {claim.run_id})
    assert cat.get_run(claim.run_id) == before
    assert raw_count(db_path, "artifacts") == 0
    assert len(cat.history(claim.run_id)) == 2
    assert cat.complete(claim, [art()], duration=1.0).status == "completed"


def test_invalid_transitions(cat: Catalog) -> None:
    claim = cat.claim(spec(), lease_seconds=60)
    failed = cat.finish_failed(claim, status="failed", error_type="KeyError",
                               error_message="'x'", traceback="tb", duration=0.5,
                               reason="exception")
    assert failed.error_type == "KeyError" and failed.traceback == "tb"
    with pytest.raises(InvalidTransitionError) as info:
        cat.complete(claim, [art()], duration=1.0)
    assert (info.value.current, info.value.requested) == ("failed", "completed")
    with pytest.raises(InvalidTransitionError):
        cat.transition(claim.run_id, "running")
    with pytest.raises(ValueError):
        cat.finish_failed(claim, status="completed", error_type=None, error_message=None,
                          traceback=None, duration=None)
    with pytest.raises(RunNotFoundError):
        cat.transition(999, "failed")
    assert cat.get_run(claim.run_id).status == "failed"


def test_cancel_and_history_in_order(cat: Catalog) -> None:
    claim = cat.claim(spec(), lease_seconds=60)
    cat.finish_failed(claim, status="cancelled", error_type="KeyboardInterrupt",
                      error_message="", traceback=None, duration=3.0, reason="interrupted")
    steps = cat.history(claim.run_id)
    assert [(s.from_status, s.to_status) for s in steps] == [
        (None, "pending"), ("pending", "running"), ("running", "cancelled")]
    assert steps[-1].reason == "interrupted"
    assert all(s.at.tzinfo is not None for s in steps)
    assert steps[0].at <= steps[1].at <= steps[2].at
    with pytest.raises(RunNotFoundError):
        cat.history(12345)


def test_events_fire_after_commit(cat: Catalog) -> None:
    seen: list[tuple[str, str, str]] = []

    def on_running(run) -> None:
        seen.append(("running", run.status, cat.get_run(run.id).status))

    def on_completed(run) -> None:
        found = cat.find_completed(run.fingerprint)
        seen.append(("completed", run.status, found.status if found else "missing"))

    def on_hit(run) -> None:
        seen.append(("hit", str(run.hit_count), str(cat.get_run(run.id).hit_count)))

    offs = [events.on("running", on_running), events.on("completed", on_completed),
            events.on("hit", on_hit)]
    try:
        done = run_ok(cat)
        cat.record_hit(done.id, run=done)
        cat.record_hit(done.id)
    finally:
        for off in offs:
            off()
    assert seen == [("running", "running", "running"),
                    ("completed", "completed", "completed"),
                    ("hit", "1", "1"), ("hit", "2", "2")]
    assert cat.get_run(done.id).last_hit_at is not None
    with pytest.raises(RunNotFoundError):
        cat.record_hit(4242)


# -- lineage --

def test_lineage_through_value_hashes(cat: Catalog) -> None:
    a = run_ok(cat, "fpA", task="load", out="h-raw")
    b = run_ok(cat, "fpB", task="clean", out="h-clean",
               inputs=(InputRecord("raw", "h-raw", "pandas.DataFrame", "<raw>"),
                       InputRecord("threshold", "h-orphan", "float", "0.5")))
    assert b.inputs[0].producer_run_id == a.id
    assert b.inputs[0].producer_artifact_id == a.artifacts[0].id
    assert b.inputs[1].producer_run_id is None
    assert [r.id for r in cat.upstream(b.id)] == [a.id]
    assert [r.id for r in cat.downstream(a.id)] == [b.id]
    assert cat.upstream(a.id) == [] and cat.downstream(b.id) == []
    assert cat.upstream(b.id)[0].artifacts == a.artifacts
    with pytest.raises(RunNotFoundError):
        cat.upstream(777)


@pytest.mark.sqlite_only
def test_inputs_link_only_to_completed_runs(cat: Catalog, db_path: Path) -> None:
    done = run_ok(cat, "fpA", out="h-shared")
    cat.invalidate(done.id, "checksum")  # still completed: lineage is history
    # An artifact row of a failed run (written by hand: complete() is the only API path).
    claim = cat.claim(spec("p", "fpP"), lease_seconds=60)
    with sqlite3.connect(db_path) as con:
        con.execute("INSERT INTO artifacts (run_id, name, codec, relpath, size, checksum,"
                    " value_hash, type_name, repr) VALUES (?, 'x', 'json', 'p', 1, 'c',"
                    " 'h-running', 'int', '')", (claim.run_id,))
    cat.finish_failed(claim, status="failed", error_type="E", error_message="",
                      traceback=None, duration=None)
    b = run_ok(cat, "fpB", out="h-b", inputs=(
        InputRecord("x", "h-running", "int"), InputRecord("y", "h-shared", "int")))
    assert b.inputs[0].producer_run_id is None
    assert b.inputs[1].producer_run_id == done.id


# -- queries --

def test_query_runs_filters_and_paging(cat: Catalog) -> None:
    t0 = datetime.now(UTC)
    r1 = run_ok(cat, "f1", task="load", tags=("exp1",))
    r2 = run_ok(cat, "f2", task="clean", tags=("exp1", "exp2"))
    failed = cat.claim(spec("clean", "f3", tags=("exp2",)), lease_seconds=60)
    cat.finish_failed(failed, status="failed", error_type="E", error_message="",
                      traceback=None, duration=None)
    r4 = run_ok(cat, "f2", task="clean")

    def ids(**kw) -> list[int]:
        return [r.id for r in cat.query_runs(**kw)]

    assert ids() == [r4.id, failed.run_id, r2.id, r1.id]
    assert ids(task="clean") == [r4.id, failed.run_id, r2.id]
    assert ids(status="failed") == [failed.run_id]
    assert ids(tag="exp1") == [r2.id, r1.id]
    assert ids(tag="exp2", task="clean") == [failed.run_id, r2.id]
    assert ids(fingerprint="f2") == [r4.id, r2.id]
    assert ids(since=t0 - timedelta(seconds=1)) == ids()
    assert ids(since=datetime.now(UTC) + timedelta(hours=1)) == []
    assert ids(since=datetime.now() - timedelta(minutes=5)) == ids()  # naive = local time
    assert ids(limit=2) == [r4.id, failed.run_id]
    assert ids(limit=2, offset=2) == [r2.id, r1.id]
    assert cat.count_runs() == 4
    assert cat.count_runs(task="clean", status="completed") == 2
    assert cat.count_runs(tag="exp2") == 2
    listed = cat.query_runs(limit=1)[0]
    assert listed.inputs == () and listed.artifacts == ()


@pytest.mark.sqlite_only
def test_sql_injection_values_are_just_values(cat: Catalog, db_path: Path) -> None:
    run_ok(cat, "f1", tags=("t",))
    evil = "x' OR '1'='1'; DROP TABLE runs; --"
    for key in ("task", "status", "tag", "fingerprint"):
        assert cat.query_runs(**{key: evil}) == []
        assert cat.count_runs(**{key: evil}) == 0
    assert cat.find_completed(evil) is None
    assert raw_count(db_path, "runs") == 1


def test_summary(cat: Catalog) -> None:
    assert cat.summary() == {"runs": 0, "by_status": {}, "by_task": {}, "hits": 0,
                             "time_saved": 0.0, "disk_bytes": 0}
    a = run_ok(cat, "f1", task="load", duration=2.0)
    b = run_ok(cat, "f2", task="clean", duration=0.5, out="v2")
    claim = cat.claim(spec("clean", "f3"), lease_seconds=60)
    cat.complete(claim, [art("x", "v3", size=7), art("y", "v4", size=3)], duration=1.0)
    for _ in range(3):
        cat.record_hit(a.id)
    cat.record_hit(b.id)
    assert cat.summary() == {"runs": 3, "by_status": {"completed": 3},
                             "by_task": {"load": 1, "clean": 2}, "hits": 4,
                             "time_saved": 6.5, "disk_bytes": 210}


@pytest.mark.sqlite_only
def test_delete_runs_cascades(cat: Catalog, db_path: Path) -> None:
    a = run_ok(cat, "fA", out="h-a", tags=("x",))
    b = run_ok(cat, "fB", out="h-b", inputs=(InputRecord("a", "h-a", "int"),))
    removed = cat.delete_runs([a.id, a.id, 999])
    assert removed == list(a.artifacts)
    with pytest.raises(RunNotFoundError):
        cat.get_run(a.id)
    for table, n in (("runs", 1), ("artifacts", 1), ("run_inputs", 1), ("run_tags", 0),
                     ("state_history", 3)):
        assert raw_count(db_path, table) == n, table
    kept = cat.get_run(b.id)
    assert kept.inputs[0].producer_artifact_id is None  # ON DELETE SET NULL
    assert cat.upstream(b.id) == []
    assert cat.artifact_relpaths() == {b.artifacts[0].relpath}
    assert run_ok(cat, "fC").id > b.id  # ids of deleted runs are never reused


# -- leases --

def test_expire_abandoned_and_renew(cat: Catalog) -> None:
    dead = cat.claim(spec(fp="f-dead"), lease_seconds=0.05)
    alive = cat.claim(spec(fp="f-alive"), lease_seconds=60)
    done = run_ok(cat, "f-done")
    time.sleep(0.1)
    assert cat.find_running("f-dead") is None  # expired, though not yet marked
    failed_events: list[int] = []
    off = events.on("failed", lambda run: failed_events.append(run.id))
    try:
        assert cat.expire_abandoned() == [dead.run_id]
    finally:
        off()
    assert failed_events == [dead.run_id]
    gone = cat.get_run(dead.run_id)
    assert gone.status == "failed" and gone.lease_owner is None
    assert "abandoned" in (gone.error_message or "")
    assert cat.history(dead.run_id)[-1].reason == "abandoned"
    assert cat.get_run(alive.run_id).status == "running"
    assert cat.get_run(done.id).status == "completed"
    with pytest.raises(LeaseLostError):  # the slow owner comes back too late
        cat.complete(dead, [art()], duration=1.0)
    assert cat.renew_leases([dead, alive], 600) == ({alive.run_id}, {dead.run_id})
    renewed = cat.get_run(alive.run_id).lease_expires_at
    assert renewed > alive.lease_expires_at
    assert cat.expire_abandoned(now=renewed - timedelta(seconds=1)) == []
    assert cat.expire_abandoned(now=renewed + timedelta(seconds=1)) == [alive.run_id]


# -- schema --

def test_newer_schema_is_refused(db_path: Path) -> None:
    Catalog(url(db_path)).dispose()
    with sqlite3.connect(db_path) as con:
        con.execute("UPDATE schema_info SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(SchemaVersionError) as info:
        Catalog(url(db_path))
    message = str(info.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in message and "upgrade taskcache" in message
    assert str(db_path) in message
    assert info.value.found == SCHEMA_VERSION + 1


def test_older_schema_runs_the_alembic_revisions(db_path: Path) -> None:
    """A catalog at schema 1 without the index of schema 2 and the column of schema 3 (and,
    like every catalog from before Alembic, without alembic_version) is stamped at 0001 and
    upgraded to the head."""
    Catalog(url(db_path)).dispose()
    with sqlite3.connect(db_path) as con:
        con.execute("UPDATE schema_info SET version = 1")
        con.execute("DROP INDEX ix_runs_task_status")
        con.execute("ALTER TABLE artifacts DROP COLUMN restored_hash")
        con.execute("DROP TABLE run_files")
        con.execute("DROP TABLE alembic_version")
    cat = Catalog(url(db_path))
    assert cat.schema_version() == SCHEMA_VERSION
    cat.dispose()
    with sqlite3.connect(db_path) as con:
        indexes = {row[1] for row in con.execute("PRAGMA index_list(runs)")}
        columns = {row[1] for row in con.execute("PRAGMA table_info(artifacts)")}
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        (revision,) = con.execute("SELECT version_num FROM alembic_version").fetchone()
    assert "ix_runs_task_status" in indexes and revision == revision_of(SCHEMA_VERSION)
    assert "restored_hash" in columns and "run_files" in tables


def test_the_head_revision_is_the_schema_version() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(config)
    assert script.get_heads() == [revision_of(SCHEMA_VERSION)]
    chain = [r.revision for r in script.walk_revisions()]
    assert chain == [revision_of(v) for v in range(SCHEMA_VERSION, 0, -1)]  # one per version


def test_new_catalog_is_stamped_at_the_head(cat: Catalog) -> None:
    from sqlalchemy import text

    with cat._read() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() \
            == revision_of(SCHEMA_VERSION)
    assert cat.schema_version() == SCHEMA_VERSION


def test_golden_v1_catalog_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    shutil.copy(DATA / "catalog_v1.db", path)
    cat = Catalog(url(path))
    assert cat.schema_version() == SCHEMA_VERSION  # migrated on open
    with sqlite3.connect(path) as con:
        indexes = {row[1] for row in con.execute("PRAGMA index_list(runs)")}
    assert "ix_runs_task_status" in indexes
    with sqlite3.connect(path) as con:  # schema 5: the files runs read and wrote
        columns = {row[1] for row in con.execute("PRAGMA table_info(run_files)")}
        file_indexes = {row[1] for row in con.execute("PRAGMA index_list(run_files)")}
    assert {"run_id", "role", "path", "size", "mtime_ns", "ctime_ns", "inode",
            "content_hash", "racy"} <= columns and file_indexes
    assert cat.completed_runs("golden-fp-b")[0].files == ()  # recorded none: servable as before
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from taskcache.catalog.tables import Base

    with cat._read() as conn:  # revision 0005 builds the table the models describe
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if "run_files" in repr(d)] == []
    found = cat.find_completed("golden-fp-b")
    assert found is not None and found.task == "clean" and found.tags == ("golden",)
    assert found.inputs[0].producer_run_id == cat.find_completed("golden-fp-a").id
    assert found.artifacts[0].shape == (3, 2)
    assert found.created_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert cat.summary()["runs"] == 3
    cat.dispose()


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_all(procs: list[subprocess.Popen[str]], timeout: float = 120) -> None:
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err
        assert "locked" not in err


OPEN_AT = """
    import sys, time
    from taskcache.catalog import Catalog
    start = float(sys.argv[2])
    while time.time() < start:
        pass
    Catalog("sqlite:///" + sys.argv[1]).find_completed("x")
"""


def test_brand_new_catalog_opened_by_six_processes_at_once(db_path: Path) -> None:
    start = str(time.time() + 1.5)
    _wait_all([_spawn(OPEN_AT, str(db_path), start) for _ in range(6)])
    assert raw_count(db_path, "schema_info") == 1


CYCLES = """
    import sys
    from taskcache.catalog import Catalog
    from taskcache.records import ArtifactRecord, InputRecord, RunSpec
    cat = Catalog("sqlite:///" + sys.argv[1], busy_timeout=60)
    worker, n = sys.argv[2], int(sys.argv[3])
    for i in range(n):
        inputs = (InputRecord("prev", f"h-{worker}-{i - 1}", "int"),) if i else ()
        claim = cat.claim(RunSpec("t" + worker, "function", f"fp-{worker}-{i}", "c",
                                  inputs=inputs), lease_seconds=60)
        art = ArtifactRecord("return", "json", f"{worker}/{i}.json", 10, "c",
                             f"h-{worker}-{i}", "int")
        cat.complete(claim, [art], duration=0.01)
        assert cat.find_completed(f"fp-{worker}-{i}").id == claim.run_id
"""


def test_eight_processes_claim_and_complete(db_path: Path) -> None:
    Catalog(url(db_path)).dispose()
    workers, cycles = 8, 50
    _wait_all([_spawn(CYCLES, str(db_path), str(w), str(cycles)) for w in range(workers)])
    total = workers * cycles
    assert raw_count(db_path, "runs") == total
    assert raw_count(db_path, "artifacts") == total
    assert raw_count(db_path, "state_history") == 3 * total
    with sqlite3.connect(db_path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT count(*) FROM runs WHERE status != 'completed'"
                           ).fetchone()[0] == 0
        linked = con.execute("SELECT count(*) FROM run_inputs"
                             " WHERE producer_artifact_id IS NOT NULL").fetchone()[0]
    assert linked == workers * (cycles - 1)


def _child(cat: Catalog, queue) -> None:
    done = run_ok(cat, "fp-child", out="h-child")
    queue.put((done.id, cat.find_completed("fp-parent").id))


def test_catalog_works_after_fork(cat: Catalog) -> None:
    parent = run_ok(cat, "fp-parent")  # the parent's pool now holds a connection
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(cat, queue))
    proc.start()
    child_id, seen_parent = queue.get(timeout=60)
    proc.join(timeout=60)
    assert proc.exitcode == 0
    assert seen_parent == parent.id
    assert cat.get_run(child_id).status == "completed"  # the parent's engine still works
    assert cat.find_completed("fp-child").id == child_id


@pytest.mark.sqlite_only
def test_the_hit_lookup_holds_no_transaction_and_works_in_threads_and_forks(
    cat: Catalog, db_path: Path
) -> None:
    import threading

    run_id = run_ok(cat).id
    assert cat.find_completed("fp1", inputs=False).id == run_id
    held = cat._db._local.conn[2]
    assert not held.connection.driver_connection.in_transaction  # nothing left open
    writer = sqlite3.connect(db_path, timeout=0)  # a writer is not blocked by the held read
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE runs SET hit_count = 7 WHERE id = ?", (run_id,))
    writer.commit()
    writer.close()
    assert cat.find_completed("fp1", inputs=False).hit_count == 7  # sees the new commit
    seen = []
    thread = threading.Thread(target=lambda: seen.append(cat.find_completed("fp1", inputs=False).id))
    thread.start()
    thread.join()
    assert seen == [run_id]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=lambda: queue.put(cat.find_completed("fp1", inputs=False).id))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0 and queue.get(timeout=5) == run_id


# ---------------------------------------------------------------- the hit path's memo


def _in_other_process(db_path: Path, code: str) -> None:
    """Run ``code`` with ``cat`` = a Catalog on ``db_path`` in a fresh interpreter."""
    prog = f"from taskcache.catalog import Catalog\ncat = Catalog({url(db_path)!r})\n{code}\n"
    subprocess.run([sys.executable, "-c", prog], check=True, timeout=60)


@pytest.mark.sqlite_only
def test_remembered_hits_follow_commits_of_other_processes(cat: Catalog, db_path: Path) -> None:
    first = run_ok(cat, "fp-memo", out="v1")
    for _ in range(3):  # served from the memo after the first read
        assert cat.find_completed("fp-memo", inputs=False).id == first.id
    _in_other_process(db_path, f"cat.invalidate({first.id}, 'corrupt file')")
    assert cat.find_completed("fp-memo", inputs=False) is None
    second = run_ok(cat, "fp-memo", out="v2")
    assert cat.find_completed("fp-memo", inputs=False).id == second.id
    _in_other_process(db_path, f"cat.delete_runs([{second.id}])")
    assert cat.find_completed("fp-memo", inputs=False) is None
    # a newer run committed elsewhere replaces the remembered one at once
    third = run_ok(cat, "fp-memo", out="v3")
    assert cat.find_completed("fp-memo", inputs=False).id == third.id
    _in_other_process(db_path, textwrap.dedent("""
        from taskcache.records import RunSpec, ArtifactRecord
        spec = RunSpec(task="clean", kind="cell", fingerprint="fp-memo", code_hash="c", source="")
        claim = cat.claim(spec, lease_seconds=60)
        art = ArtifactRecord(name="df", codec="json", relpath="x/v4.json", size=1,
                             checksum="c", value_hash="v4", type_name="int")
        cat.complete(claim, [art], duration=1.0)
    """))
    newest = cat.find_completed("fp-memo", inputs=False)
    assert newest.id > third.id and newest.artifacts[0].value_hash == "v4"


@pytest.mark.sqlite_only
def test_remembered_hits_follow_commits_of_another_catalog_in_this_process(
        cat: Catalog, db_path: Path) -> None:
    run = run_ok(cat, "fp-same", out="v1")
    assert cat.find_completed("fp-same", inputs=False).id == run.id
    other = Catalog(url(db_path))
    try:
        other.invalidate(run.id, "gone")
    finally:
        other.dispose()
    assert cat.find_completed("fp-same", inputs=False) is None
    assert cat.find_completed("fp-same") is None


def test_hit_path_record_equals_the_full_record(cat: Catalog) -> None:
    """The hit path reads through the SQLite driver directly; its record must be the one
    SQLAlchemy builds (datetimes, JSON columns, tuples), inputs aside."""
    from dataclasses import replace

    inputs = (InputRecord(name="raw", value_hash="v0", type_name="int", repr="1"),)
    run_ok(cat, "fp-raw", inputs=inputs, tags=("exp", "b"))
    fast = cat.find_completed("fp-raw", inputs=False)
    full = cat.find_completed("fp-raw")
    assert fast == replace(full, inputs=())
    assert full.inputs and full.started_at.tzinfo is not None and fast.tags == ("exp", "b")
    assert fast.artifacts[0].shape == (10, 2) and fast.env["packages"] == {"pandas": "2.2"}


def test_runs_of_one_fingerprint_with_their_files(cat: Catalog) -> None:
    """Schema 3: each completed run keeps the files it read and wrote; the hit path hands
    out every usable run of the fingerprint, newest first, files included (as the full
    record has them), and the files read are listed among the inputs, linked by content to
    the run that wrote them."""
    from dataclasses import replace

    from taskcache.records import FileRecord

    written = FileRecord("/w/out.csv", "written", "file", size=3, mtime_ns=10**18, ctime_ns=10**18,
                         inode=2**40, mode=0o644, content_hash="file:xxh3_128:aa")
    writer_claim = cat.claim(spec("write", "fp-w"), lease_seconds=60)
    copy = ArtifactRecord(name="file:/w/out.csv", codec="file", relpath="w/1/file0-out.csv",
                          size=3, checksum="xxh3_128:aa", value_hash="file:xxh3_128:aa",
                          type_name="file")
    writer = cat.complete(writer_claim, [copy], duration=1.0, files=[written])
    old = replace(written, role="read", content_hash="file:xxh3_128:00", racy=True)
    new = replace(written, role="read")
    first = cat.complete(cat.claim(spec("read", "fp-r"), lease_seconds=60), [art()],
                         duration=1.0, files=[old])
    second = cat.complete(cat.claim(spec("read", "fp-r"), lease_seconds=60), [art()],
                          duration=1.0, files=[new])
    found = cat.completed_runs("fp-r")
    assert [r.id for r in found] == [second.id, first.id]
    assert [r.files for r in found] == [(new,), (old,)]
    assert found[0] == replace(cat.get_run(second.id), inputs=())
    (file_input,) = cat.get_run(second.id).inputs
    assert (file_input.name, file_input.type_name, file_input.producer_run_id) == (
        "/w/out.csv", "file", writer.id)
    assert [r.id for r in cat.upstream(second.id)] == [writer.id]
    assert cat.get_run(first.id).inputs[0].producer_run_id is None  # other content
