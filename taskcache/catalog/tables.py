"""SQLAlchemy 2.0 models of the run catalog, and row -> record converters.

The models define the schema (and serve ad-hoc ORM queries); the Catalog itself talks to
the tables through SQLAlchemy Core, which is faster on the hit path and hands out plain
records from records.py, never live ORM objects.

Times are stored as naive UTC (portable across SQLite and PostgreSQL) and come back as
timezone-aware UTC datetimes; a naive datetime passed in is read as local time, like
``datetime.astimezone`` does.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    Connection,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    Row,
    String,
    Text,
    TypeDecorator,
    bindparam,
    func,
    insert,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from taskcache.catalog.engine import DriverStatement
from taskcache.describe import display_path, format_bytes
from taskcache.errors import RunNotFoundError
from taskcache.records import (
    ArtifactRecord,
    Claim,
    FileRecord,
    InputRecord,
    RunRecord,
    RunSpec,
    StateChange,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetime in, naive UTC in the database, aware UTC out."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[str]: JSON,
        list[int]: JSON,
    }


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_fingerprint_status", "fingerprint", "status"),
        Index("ix_runs_task_status", "task", "status"),  # schema 2: runs(task=..., status=...)
        {"sqlite_autoincrement": True},  # never reuse the id of a deleted run
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "cell" | "function"
    fingerprint: Mapped[str] = mapped_column(String(128), index=True)
    code_hash: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    duration: Mapped[float | None]
    source: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(default=list)  # filtering goes through run_tags
    user_version: Mapped[str | None] = mapped_column(String(255))
    error_type: Mapped[str | None] = mapped_column(String(255))
    error_message: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None]
    env: Mapped[dict[str, Any]] = mapped_column(default=dict)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    hit_count: Mapped[int] = mapped_column(default=0)
    last_hit_at: Mapped[datetime | None]
    parent_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    invalid_reason: Mapped[str | None] = mapped_column(Text)


class RunTag(Base):
    __tablename__ = "run_tags"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


class Artifact(Base):
    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    codec: Mapped[str] = mapped_column(String(64))
    relpath: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    checksum: Mapped[str] = mapped_column(String(128))
    value_hash: Mapped[str] = mapped_column(String(128), index=True)
    type_name: Mapped[str] = mapped_column(String(255))
    shape: Mapped[list[int] | None] = mapped_column(JSON)
    rows: Mapped[int | None] = mapped_column(BigInteger)
    columns: Mapped[list[str] | None] = mapped_column(JSON)
    repr: Mapped[str] = mapped_column(Text, default="")
    # hash of the decoded value when it differs from value_hash (see ArtifactRecord)
    restored_hash: Mapped[str | None] = mapped_column(String(128))


class RunInput(Base):
    __tablename__ = "run_inputs"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    value_hash: Mapped[str] = mapped_column(String(128), index=True)
    type_name: Mapped[str] = mapped_column(String(255))
    repr: Mapped[str] = mapped_column(Text, default="")
    producer_artifact_id: Mapped[int | None] = mapped_column(
        ForeignKey("artifacts.id", ondelete="SET NULL"), index=True
    )


class RunFile(Base):
    """A file or folder a run read or wrote (schema 3); see records.FileRecord."""

    __tablename__ = "run_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(8))
    size: Mapped[int | None] = mapped_column(BigInteger)
    mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    ctime_ns: Mapped[int | None] = mapped_column(BigInteger)
    inode: Mapped[int | None] = mapped_column(BigInteger)
    mode: Mapped[int | None] = mapped_column(Integer)
    content_hash: Mapped[str | None] = mapped_column(String(128))
    racy: Mapped[bool] = mapped_column(Boolean, default=False)


class StateHistory(Base):
    __tablename__ = "state_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(Text)


class RunSummary(Base):
    """Schema 3: what the summary shows, per (task, status), kept up to date in the same
    transactions that change runs (see catalog/summary.py), so that reading it does not scan
    a million runs."""

    __tablename__ = "run_summary"

    task: Mapped[str] = mapped_column(String(255), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    runs: Mapped[int] = mapped_column(BigInteger, default=0)
    hits: Mapped[int] = mapped_column(BigInteger, default=0)
    time_saved: Mapped[float] = mapped_column(default=0.0)  # sum of hit_count * duration
    disk_bytes: Mapped[int] = mapped_column(BigInteger, default=0)  # sum of artifact sizes


class SchemaInfo(Base):
    """One row (id = 1): the schema version of this catalog."""

    __tablename__ = "schema_info"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    version: Mapped[int]


runs = RunRow.__table__
run_tags = RunTag.__table__
artifacts = Artifact.__table__
run_inputs = RunInput.__table__
state_history = StateHistory.__table__
run_files = RunFile.__table__
schema_info = SchemaInfo.__table__
run_summary = RunSummary.__table__

# Columns selected for a RunRecord, in field order (inputs/artifacts are loaded apart).
RUN_COLUMNS = tuple(
    runs.c[name]
    for name in (
        "id", "task", "kind", "fingerprint", "code_hash", "status", "created_at",
        "started_at", "finished_at", "duration", "source", "tags", "user_version",
        "error_type", "error_message", "traceback", "host", "pid", "env", "lease_owner",
        "lease_expires_at", "hit_count", "last_hit_at", "parent_run_id", "invalid_reason",
    )
)
ARTIFACT_COLUMNS = tuple(
    artifacts.c[name]
    for name in (
        "name", "codec", "relpath", "size", "checksum", "value_hash", "type_name", "shape",
        "rows", "columns", "repr", "restored_hash", "id", "run_id",  # run_id last: see load_completed
    )
)


FILE_COLUMNS = tuple(
    run_files.c[name]
    for name in ("path", "role", "kind", "size", "mtime_ns", "ctime_ns", "inode", "mode",
                 "content_hash", "racy")
)


def file_record(row: Row[Any]) -> FileRecord:
    path, role, kind, size, mtime_ns, ctime_ns, inode, mode, content_hash, racy = row
    return FileRecord(path, role, kind, size, mtime_ns, ctime_ns, inode, mode, content_hash,
                      bool(racy))


def file_rows(run_id: int, files: Sequence[FileRecord]) -> list[dict[str, Any]]:
    """run_files rows of ``files``."""
    return [{"run_id": run_id, "path": f.path, "role": f.role, "kind": f.kind, "size": f.size,
             "mtime_ns": f.mtime_ns, "ctime_ns": f.ctime_ns, "inode": f.inode, "mode": f.mode,
             "content_hash": f.content_hash, "racy": f.racy} for f in files]


def file_input_rows(conn: Connection, run_id: int, files: Sequence[FileRecord]) -> list[dict[str, Any]]:
    """run_inputs rows for the files and folders a run read, so that they show among its
    inputs and link (by content hash) to the run that wrote the same content."""
    rows = []
    for f in files:
        if f.role != "read" or f.content_hash is None or f.kind == "missing":
            continue
        when = datetime.fromtimestamp((f.mtime_ns or 0) / 1e9).strftime("%Y-%m-%d %H:%M:%S")
        shown = f"{format_bytes(f.size)}, modified {when}" if f.kind == "file" else f"folder, modified {when}"
        rows.append({"run_id": run_id, "name": display_path(f.path), "value_hash": f.content_hash,
                     "type_name": f.kind, "repr": shown,
                     "producer_artifact_id": producer_of(conn, f.content_hash)})
    return rows


def run_record(
    row: Row[Any],
    inputs: tuple[InputRecord, ...] = (),
    artifacts: tuple[ArtifactRecord, ...] = (),
    files: tuple[FileRecord, ...] = (),
) -> RunRecord:
    (id_, task, kind, fingerprint, code_hash, status, created_at, started_at, finished_at,
     duration, source, tags, user_version, error_type, error_message, traceback, host, pid,
     env, lease_owner, lease_expires_at, hit_count, last_hit_at, parent_run_id,
     invalid_reason) = row
    return RunRecord(
        id_, task, kind, fingerprint, code_hash, status, created_at, started_at, finished_at,
        duration, source or "", tuple(tags or ()), user_version, error_type, error_message,
        traceback, host, pid, dict(env or {}), lease_owner, lease_expires_at, hit_count or 0,
        last_hit_at, parent_run_id, invalid_reason, inputs, artifacts, files,
    )


def artifact_record(row: Row[Any]) -> ArtifactRecord:
    (name, codec, relpath, size, checksum, value_hash, type_name, shape, rows, columns,
     repr_, restored_hash, id_, run_id) = row
    return ArtifactRecord(
        name, codec, relpath, size, checksum, value_hash, type_name,
        None if shape is None else tuple(shape), rows,
        None if columns is None else tuple(columns), repr_ or "", id_, run_id, restored_hash,
    )


def input_record(row: Row[Any]) -> InputRecord:
    name, value_hash, type_name, repr_, producer_artifact_id, producer_run_id = row
    return InputRecord(
        name, value_hash, type_name, repr_ or "", producer_artifact_id, producer_run_id
    )


def state_change(row: Row[Any]) -> StateChange:
    run_id, from_status, to_status, at, reason = row
    return StateChange(run_id, from_status, to_status, at, reason)


# -- loading records (SQLAlchemy Core; statements built once, so their cache key is too) --
INPUT_COLUMNS = (
    run_inputs.c.name, run_inputs.c.value_hash, run_inputs.c.type_name, run_inputs.c.repr,
    run_inputs.c.producer_artifact_id, artifacts.c.run_id.label("producer_run_id"),
)
INPUTS_FROM = run_inputs.outerjoin(artifacts, run_inputs.c.producer_artifact_id == artifacts.c.id)

# the hit path: the usable runs of a fingerprint (several: one per state of the files they
# read), newest first, with their artifacts and how many files they recorded, in one
# statement; then their files, only when they have some; their inputs only when asked
#: completed runs of one fingerprint a hit looks at (an older state of the files is a miss)
HIT_CANDIDATES = 16
_COMPLETED_IDS = (
    select(runs.c.id)
    .where(runs.c.fingerprint == bindparam("fingerprint"), runs.c.status == "completed",
           runs.c.invalid_reason.is_(None))
    .order_by(runs.c.id.desc()).limit(HIT_CANDIDATES).correlate(None)
)
_N_FILES = (select(func.count(run_files.c.id)).where(run_files.c.run_id == runs.c.id)
            .correlate(runs).scalar_subquery())
_HIT_RUN = (
    select(*RUN_COLUMNS, _N_FILES, *ARTIFACT_COLUMNS)
    .outerjoin_from(runs, artifacts, artifacts.c.run_id == runs.c.id)
    .where(runs.c.id.in_(_COMPLETED_IDS)).order_by(runs.c.id.desc(), artifacts.c.id)
)
_HIT_INPUTS = (
    select(*INPUT_COLUMNS).select_from(INPUTS_FROM)
    .where(run_inputs.c.run_id == bindparam("run_id")).order_by(run_inputs.c.id)
)
_N_RUN = len(RUN_COLUMNS)


_DRIVER_HIT: dict[tuple[str, str], DriverStatement] = {}


def _hit_rows(conn: Connection, fingerprint: str) -> list[Any]:
    if conn.dialect.name != "sqlite" or conn.in_transaction():
        return list(conn.execute(_HIT_RUN, {"fingerprint": fingerprint}).all())
    key = (conn.dialect.name, conn.dialect.driver)
    stmt = _DRIVER_HIT.get(key)
    if stmt is None:
        stmt = _DRIVER_HIT[key] = DriverStatement(_HIT_RUN, conn.dialect, "fingerprint")
    return stmt.rows(conn.connection.driver_connection, fingerprint)


def load_completed(conn: Connection, fingerprint: str, *, inputs: bool) -> tuple[RunRecord, ...]:
    """The usable completed runs of ``fingerprint``, newest first (at most HIT_CANDIDATES),
    with artifacts and files, and inputs if asked. A run whose files cannot all be read back
    (deleted between two statements of an autocommit read) is left out."""
    return _hit_records(conn, _hit_rows(conn, fingerprint), inputs=inputs)


_HIT_RANKED = (
    select(runs.c.id, func.row_number().over(partition_by=runs.c.fingerprint,
                                             order_by=runs.c.id.desc()).label("rank"))
    .where(runs.c.fingerprint.in_(bindparam("fingerprints", expanding=True)),
           runs.c.status == "completed", runs.c.invalid_reason.is_(None))
    .subquery()
)
_HIT_RUNS_OF_MANY = (
    select(*RUN_COLUMNS, _N_FILES, *ARTIFACT_COLUMNS)
    .outerjoin_from(runs, artifacts, artifacts.c.run_id == runs.c.id)
    .where(runs.c.id.in_(select(_HIT_RANKED.c.id).where(_HIT_RANKED.c.rank <= HIT_CANDIDATES)))
    .order_by(runs.c.id.desc(), artifacts.c.id)
)


def load_completed_many(conn: Connection, fingerprints: Sequence[str],
                        ) -> dict[str, tuple[RunRecord, ...]]:
    """:func:`load_completed` (without inputs) of many fingerprints, in one statement per
    IN_CHUNK of them (two when runs recorded files); fingerprints without a usable run are
    left out."""
    found: dict[str, list[RunRecord]] = {}
    unique = list(dict.fromkeys(fingerprints))
    for start in range(0, len(unique), IN_CHUNK):
        rows = conn.execute(_HIT_RUNS_OF_MANY,
                            {"fingerprints": unique[start:start + IN_CHUNK]}).all()
        for record in _hit_records(conn, rows, inputs=False):
            found.setdefault(record.fingerprint, []).append(record)
    return {fingerprint: tuple(records) for fingerprint, records in found.items()}


def _hit_records(conn: Connection, rows: Sequence[Any], *, inputs: bool) -> tuple[RunRecord, ...]:
    """Records of the rows of _HIT_RUN (a run, its number of files, one of its artifacts),
    in their order, with their files (and inputs if asked); a run whose files are not all
    there any more is left out."""
    by_run: dict[int, tuple[Any, int, list[ArtifactRecord]]] = {}
    for row in rows:
        run_id = row[0]
        if run_id not in by_run:
            by_run[run_id] = (row[:_N_RUN], int(row[_N_RUN] or 0), [])
        if row[-1] is not None:
            by_run[run_id][2].append(artifact_record(row[_N_RUN + 1:]))
    files: dict[int, list[FileRecord]] = {}
    with_files = [run_id for run_id, (_, n, _) in by_run.items() if n]
    for chunk in chunks(with_files):
        stmt = (select(run_files.c.run_id, *FILE_COLUMNS)
                .where(run_files.c.run_id.in_(chunk)).order_by(run_files.c.id))
        for row in conn.execute(stmt):
            files.setdefault(row[0], []).append(file_record(row[1:]))
    found = []
    for run_id, (row, n_files, arts) in by_run.items():
        if len(files.get(run_id, ())) != n_files:
            continue
        ins: tuple[InputRecord, ...] = ()
        if inputs:
            ins = tuple(map(input_record, conn.execute(_HIT_INPUTS, {"run_id": run_id})))
        found.append(run_record(row, ins, tuple(arts), tuple(files.get(run_id, ()))))
    return tuple(found)


#: ids per ``IN (...)`` list, below every database's limit on bound parameters
IN_CHUNK = 500


def chunks(ids: Sequence[int], size: int = IN_CHUNK) -> Iterator[Sequence[int]]:
    """``ids`` in slices short enough for one ``IN (...)`` list."""
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


_IDS = bindparam("ids", expanding=True)
# statements built once (a sweep loads the records of every batch it writes)
_RUNS_BY_ID = select(*RUN_COLUMNS).where(runs.c.id.in_(_IDS)).order_by(runs.c.id.desc())
_INPUTS_OF = (select(run_inputs.c.run_id, *INPUT_COLUMNS).select_from(INPUTS_FROM)
              .where(run_inputs.c.run_id.in_(_IDS)).order_by(run_inputs.c.id))
_ARTIFACTS_OF = (select(*ARTIFACT_COLUMNS).where(artifacts.c.run_id.in_(_IDS))
                 .order_by(artifacts.c.id))
_FILES_OF = (select(run_files.c.run_id, *FILE_COLUMNS).where(run_files.c.run_id.in_(_IDS))
             .order_by(run_files.c.id))


def load_runs(
    conn: Connection, where: Sequence[ColumnElement[bool]], *, full: bool,
    limit: int | None = None, offset: int = 0, order: Sequence[Any] = (runs.c.id.desc(),),
) -> list[RunRecord]:
    """Runs matching ``where`` (newest first unless ``order`` says otherwise); ``full`` also
    loads inputs and artifacts."""
    stmt = select(*RUN_COLUMNS).where(*where).order_by(*order)
    if limit is not None:
        stmt = stmt.limit(limit).offset(offset)
    rows = conn.execute(stmt).all()
    return _full_records(conn, rows) if full else [run_record(row) for row in rows]


def load_runs_by_id(conn: Connection, run_ids: Sequence[int]) -> list[RunRecord]:
    """The full records of these runs (those that exist), newest first."""
    rows = [row for chunk in chunks(list(run_ids))
            for row in conn.execute(_RUNS_BY_ID, {"ids": list(chunk)})]
    rows.sort(key=lambda row: row[0], reverse=True)
    return _full_records(conn, rows)


def _full_records(conn: Connection, rows: Sequence[Any]) -> list[RunRecord]:
    """Records of ``rows`` (of RUN_COLUMNS) with their inputs, artifacts and files."""
    ins: dict[int, list[InputRecord]] = {}
    arts: dict[int, list[ArtifactRecord]] = {}
    files: dict[int, list[FileRecord]] = {}
    for chunk in chunks([row[0] for row in rows]):
        for row in conn.execute(_INPUTS_OF, {"ids": list(chunk)}):
            ins.setdefault(row[0], []).append(input_record(row[1:]))
        for artifact in load_artifacts(conn, chunk):
            arts.setdefault(artifact.run_id or 0, []).append(artifact)
        for row in conn.execute(_FILES_OF, {"ids": list(chunk)}):
            files.setdefault(row[0], []).append(file_record(row[1:]))
    return [run_record(row, tuple(ins.get(row[0], ())), tuple(arts.get(row[0], ())),
                       tuple(files.get(row[0], ()))) for row in rows]


def load_run(conn: Connection, run_id: int) -> RunRecord:
    found = load_runs_by_id(conn, [run_id])
    if not found:
        raise RunNotFoundError(run_id)
    return found[0]


def load_artifacts(conn: Connection, run_ids: Sequence[int]) -> list[ArtifactRecord]:
    result: list[ArtifactRecord] = []
    for chunk in chunks(run_ids):
        result += map(artifact_record, conn.execute(_ARTIFACTS_OF, {"ids": list(chunk)}))
    return result


def utc_now() -> datetime:
    """The current time in UTC, as every timestamp of the catalog is."""
    return datetime.now(UTC)


def insert_running(conn: Connection, specs: Sequence[RunSpec], lease_seconds: float) -> list[Claim]:
    """Insert one run per spec in 'running', each with a new lease token, inputs linked to
    their producers, in a few statements whatever their number; their claims, in order."""
    if not specs:
        return []
    now = utc_now()
    expires = now + timedelta(seconds=lease_seconds)
    host, pid = socket.gethostname(), os.getpid()
    tokens = [uuid.uuid4().hex for _ in specs]
    rows = [dict(task=spec.task, kind=spec.kind, fingerprint=spec.fingerprint,
                 code_hash=spec.code_hash, status="running", created_at=now, started_at=now,
                 source=spec.source, tags=list(spec.tags), user_version=spec.user_version,
                 host=spec.env.get("host") or host, pid=spec.env.get("pid") or pid,
                 env=dict(spec.env), lease_owner=token, lease_expires_at=expires, hit_count=0,
                 parent_run_id=spec.parent_run_id)
            for spec, token in zip(specs, tokens, strict=True)]
    if len(rows) == 1:
        ids = [conn.execute(insert(runs).values(**rows[0])).inserted_primary_key[0]]
    else:  # the token, unique per row, maps each new id to its spec whatever the order
        by_token = dict(conn.execute(insert(runs).returning(runs.c.lease_owner, runs.c.id),
                                     rows).all())
        ids = [by_token[token] for token in tokens]
    tags = [{"run_id": run_id, "tag": t} for run_id, spec in zip(ids, specs, strict=True)
            for t in dict.fromkeys(spec.tags)]
    if tags:
        conn.execute(insert(run_tags), tags)
    unlinked = {i.value_hash for spec in specs for i in spec.inputs if not i.producer_artifact_id}
    producers = producers_of(conn, unlinked)
    inputs = [{"run_id": run_id, "name": i.name, "value_hash": i.value_hash,
               "type_name": i.type_name, "repr": i.repr,
               "producer_artifact_id": i.producer_artifact_id or producers.get(i.value_hash)}
              for run_id, spec in zip(ids, specs, strict=True) for i in spec.inputs]
    if inputs:
        conn.execute(insert(run_inputs), inputs)
    conn.execute(insert(state_history), [
        row for run_id in ids for row in (
            {"run_id": run_id, "from_status": None, "to_status": "pending", "at": now},
            {"run_id": run_id, "from_status": "pending", "to_status": "running", "at": now})])
    return [Claim(run_id=run_id, lease_token=token, lease_expires_at=expires)
            for run_id, token in zip(ids, tokens, strict=True)]


def producers_of(conn: Connection, value_hashes: Iterable[str]) -> dict[str, int]:
    """:func:`producer_of` for many hashes in one statement per IN_CHUNK of them."""
    hashes = sorted(set(value_hashes))
    found: dict[str, int] = {}
    for start in range(0, len(hashes), IN_CHUNK):
        found.update(conn.execute(
            select(artifacts.c.value_hash, func.max(artifacts.c.id))
            .join(runs, runs.c.id == artifacts.c.run_id)
            .where(artifacts.c.value_hash.in_(hashes[start:start + IN_CHUNK]),
                   runs.c.status == "completed")
            .group_by(artifacts.c.value_hash)).all())
    return found


def producer_of(conn: Connection, value_hash: str) -> int | None:
    """Lineage: the newest artifact of a completed run whose value has this hash."""
    return conn.scalar(
        select(artifacts.c.id).join(runs, runs.c.id == artifacts.c.run_id)
        .where(artifacts.c.value_hash == value_hash, runs.c.status == "completed")
        .order_by(artifacts.c.id.desc()).limit(1))
