"""The Catalog: claims, fenced state changes and hits, and the read-only queries (pages of
runs with filters and sorting, counts, lineage, history, the summary).

Every public method opens a connection, runs one short transaction and closes it; nothing
stays open between calls. Writes begin with ``BEGIN IMMEDIATE`` on SQLite (see _sqlite.py),
reads with a deferred ``BEGIN``. Events (taskcache.events) fire only after the commit, so a
handler that queries the catalog sees the committed state.

Many at once: ``claim_or_join_many`` decides a whole sweep's claims in one transaction;
state changes (``complete``, ``finish_failed``, ``transition``) that several threads of
this process ask for at the same moment are written in one transaction (group_commit.py),
each caller getting its own outcome once it is committed; ``renew_leases`` and
``completed_runs_many`` also take many runs in one go.

Leases: ``claim`` gives the run a random token. ``complete``/``finish_failed`` succeed only
while the run's ``lease_owner`` is that token, else LeaseLostError. A finished run keeps its
``lease_owner`` (only ``lease_expires_at`` is cleared), so a second finish by the same claim
is an InvalidTransitionError, while a process whose lease was revoked (``expire_abandoned``
clears the owner) gets LeaseLostError. An expired lease that nobody revoked still counts.

``invalidate`` is not a status change: it sets ``invalid_reason`` and writes a history row
whose from_status == to_status (the current status) with reason "invalidated: ...".
"""

from __future__ import annotations

import functools
import threading
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    LargeBinary,
    bindparam,
    cast,
    delete,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from taskcache import events
from taskcache.catalog import summary
from taskcache.catalog.engine import Database
from taskcache.catalog.group_commit import GroupCommit
from taskcache.catalog.schema import ensure_schema
from taskcache.catalog.tables import (
    INPUTS_FROM,
    artifacts,
    chunks,
    file_input_rows,
    file_rows,
    insert_running,
    load_artifacts,
    load_completed,
    load_completed_many,
    load_run,
    load_runs,
    load_runs_by_id,
    producer_of,
    run_files,
    run_inputs,
    run_tags,
    runs,
    schema_info,
    state_change,
    state_history,
    utc_now,
)
from taskcache.errors import (
    CatalogUnavailableError,
    InvalidTransitionError,
    LeaseLostError,
    RepeatedlyAbandonedError,
    RunNotFoundError,
)
from taskcache.records import (
    TRANSITIONS,
    ArtifactRecord,
    Claim,
    FileRecord,
    RunRecord,
    RunSpec,
    StateChange,
)

#: sort keys query_runs accepts (allow-listed: a sort key never reaches SQL as text)
SORT_COLUMNS = {
    name: runs.c[name]
    for name in ("id", "task", "status", "created_at", "started_at", "duration", "hit_count")
}


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _unstorable(text: str | None) -> bool:
    """Whether ``text`` cannot be sent to the database (a lone surrogate)."""
    if text is None:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def run_filters(
    task: str | None, status: str | None, tag: str | None, since: datetime | None,
    fingerprint: str | None, *, text: str | None = None, until: datetime | None = None,
    task_contains: str | None = None,
) -> list[ColumnElement[bool]]:
    """WHERE clauses of query_runs/count_runs; every value is a bound parameter.

    ``text`` matches a substring of the task name or the source, ``task_contains`` one of
    the task name, both case-insensitively for ASCII, with ``%`` and ``_`` taken literally;
    ``since``/``until`` bound created_at."""
    where: list[ColumnElement[bool]] = []
    if any(_unstorable(v) for v in (task, status, tag, fingerprint, text)):
        return [false()]  # no stored text has a lone surrogate (see records.check_label)
    if task is not None:
        where.append(runs.c.task == task)
    if task_contains:
        where.append(runs.c.task.ilike(_like_pattern(task_contains), escape="\\"))
    if status is not None:
        where.append(runs.c.status == status)
    if tag is not None:
        where.append(runs.c.id.in_(select(run_tags.c.run_id).where(run_tags.c.tag == tag)))
    if since is not None:
        where.append(runs.c.created_at >= since)
    if until is not None:
        where.append(runs.c.created_at < until)
    if fingerprint is not None:
        where.append(runs.c.fingerprint == fingerprint)
    if text and "\x00" in text:  # LIKE would stop at the NUL and match every run: compare
        needle = literal(text.encode("utf-8"), LargeBinary)  # bytes (case-sensitive)
        where.append(or_(func.instr(cast(runs.c.task, LargeBinary), needle) > 0,
                         func.instr(cast(runs.c.source, LargeBinary), needle) > 0))
    elif text:
        pattern = _like_pattern(text)
        where.append(or_(runs.c.task.ilike(pattern, escape="\\"),
                         runs.c.source.ilike(pattern, escape="\\")))
    return where


_TERMINAL = frozenset({"completed", "failed", "cancelled"})
_ABANDONED = {"lease_owner": None,
              "error_message": "abandoned: its lease expired before the run finished "
                               "(the process running it probably died)"}


def _abandoned_since_completed(conn: Connection, fingerprints: Sequence[str]) -> dict[str, list[int]]:
    """Per fingerprint, the ids of its runs failed as "abandoned" (their process died) since
    its newest completed run, oldest first (fingerprints without any are left out)."""
    done = runs.alias("done")
    last_completed = (select(func.coalesce(func.max(done.c.id), 0))
                      .where(done.c.fingerprint == runs.c.fingerprint, done.c.status == "completed")
                      .scalar_subquery())
    was_abandoned = (select(state_history.c.id)
                     .where(state_history.c.run_id == runs.c.id,
                            state_history.c.to_status == "failed",
                            state_history.c.reason == "abandoned").exists())
    found: dict[str, list[int]] = {}
    for chunk in chunks(list(fingerprints)):
        for fingerprint, run_id in conn.execute(select(runs.c.fingerprint, runs.c.id).where(
                runs.c.fingerprint.in_(chunk), runs.c.status == "failed",
                runs.c.id > last_completed, was_abandoned).order_by(runs.c.id)):
            found.setdefault(fingerprint, []).append(run_id)
    return found


def _loaded(record: RunRecord | None) -> RunRecord:
    """The record of a change asked for with ``record=True`` (never None)."""
    return typing.cast(RunRecord, record)


@dataclass(frozen=True)
class _Change:
    """One state change waiting for its group commit (see Catalog._change)."""

    run_id: int
    to_status: str
    reason: str | None
    lease_token: str | None
    values: dict[str, Any]
    artifact_rows: Sequence[dict[str, Any]] = ()
    files: Sequence[FileRecord] = field(default=())
    record: bool = True  # read the run's new record back (else only for its event)


def _status_values(to_status: str, values: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The column values a move to ``to_status`` writes besides ``values``."""
    changes = {**values, "status": to_status}
    if to_status == "running":
        changes.setdefault("started_at", now)
    if to_status in _TERMINAL:
        changes.setdefault("finished_at", now)
        changes["lease_expires_at"] = None
    return changes


_STATES = (select(runs.c.id, runs.c.status, runs.c.lease_owner)
           .where(runs.c.id.in_(bindparam("ids", expanding=True))))


def _states(conn: Connection, run_ids: Sequence[int]) -> dict[int, tuple[str, str | None]]:
    """Run id -> (status, lease owner) of those of these runs that exist."""
    found: dict[int, tuple[str, str | None]] = {}
    for chunk in chunks(list(dict.fromkeys(run_ids))):
        found.update((run_id, (status, owner)) for run_id, status, owner
                     in conn.execute(_STATES, {"ids": list(chunk)}))
    return found


@functools.lru_cache(maxsize=64)
def _update_by_id(columns: tuple[str, ...]) -> Any:
    """``UPDATE runs SET <columns> WHERE id = ?`` with bound parameters ``b_<name>``, run
    once with many parameter sets (executemany); built once per set of columns."""
    return (update(runs).where(runs.c.id == bindparam("b_id"))
            .values({name: bindparam(f"b_{name}", type_=runs.c[name].type) for name in columns}))


class _HitMemo:
    """The runs found by ``completed_runs``, valid while the database's change counter keeps
    the value it had when they were read: any commit, by any process (a new run, an
    invalidation, a delete, a batch of hit counts), changes it and empties this. (The files
    those runs recorded are checked against the disk on every hit, never remembered here.)"""

    LIMIT = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: int | None = None
        self._runs: dict[str, tuple[RunRecord, ...]] = {}

    def get(self, version: int | None, fingerprint: str) -> tuple[RunRecord, ...] | None:
        if version is None:
            return None
        with self._lock:
            if version != self._version:
                self._runs.clear()
                self._version = version
                return None
            return self._runs.get(fingerprint)

    def put(self, version: int | None, fingerprint: str, run: tuple[RunRecord, ...]) -> None:
        if version is None or not run:
            return
        with self._lock:
            if version == self._version:
                if len(self._runs) >= self.LIMIT:
                    self._runs.clear()
                self._runs[fingerprint] = run


class Catalog:
    """One run catalog (any SQLAlchemy URL). Every method is one short transaction."""

    def __init__(self, url: str, *, busy_timeout: float = 30.0) -> None:
        self._db = Database(url, busy_timeout=busy_timeout)
        self.url = self._db.url
        self._read = self._db.read
        self._write = self._db.write
        ensure_schema(self._db)
        self._remembered = _HitMemo()
        #: state changes asked for at the same moment by this process's threads share one
        #: transaction (a sweep's completions)
        self._changes: GroupCommit[_Change, RunRecord | None] = GroupCommit(self._commit_changes)

    def dispose(self) -> None:
        self._db.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    def integrity_check(self) -> str:
        """"ok", or what the database reports wrong (SQLite's PRAGMA integrity_check)."""
        if self._db.engine.dialect.name != "sqlite":
            return "ok"
        with self._read() as conn:
            rows = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check").fetchall()]
        return "ok" if rows == ["ok"] else "; ".join(rows)

    def clock(self) -> datetime:
        """The database's current time (UTC), read in a write transaction: also a check that
        the catalog can be written right now. SQLite has no clock of its own: this host's."""
        with self._write() as conn:
            if conn.dialect.name == "postgresql":
                return conn.execute(select(func.now())).scalar_one()
            return utc_now()

    def schema_version(self) -> int:
        with self._read() as conn:
            return int(conn.scalar(select(schema_info.c.version)) or 0)

    # -- the hit path (SQLAlchemy Core, one short read) --
    def completed_runs(self, fingerprint: str) -> tuple[RunRecord, ...]:
        """The completed, not invalidated runs with this fingerprint, newest first (at most
        tables.HIT_CANDIDATES: one per state of the files they read), with their artifacts
        and files but not their inputs. The fast path of every cache hit: remembered until
        the database changes, or one statement (two when runs recorded files)."""
        version = None if self._db.changes is None else self._db.changes.read()
        found = self._remembered.get(version, fingerprint)
        if found is None:
            with self._db.single_statement() as conn:
                found = load_completed(conn, fingerprint, inputs=False)
            self._remembered.put(version, fingerprint, found)
        return found

    def completed_runs_many(self, fingerprints: Iterable[str]) -> dict[str, tuple[RunRecord, ...]]:
        """:meth:`completed_runs` of many fingerprints (a sweep's), those not remembered
        read in one statement; every fingerprint asked for is a key."""
        version = None if self._db.changes is None else self._db.changes.read()
        found: dict[str, tuple[RunRecord, ...]] = {}
        missing = []
        for fingerprint in fingerprints:
            remembered = self._remembered.get(version, fingerprint)
            if remembered is None:
                missing.append(fingerprint)
            else:
                found[fingerprint] = remembered
        if missing:
            with self._db.single_statement() as conn:
                loaded = load_completed_many(conn, missing)
            for fingerprint in missing:
                found[fingerprint] = loaded.get(fingerprint, ())
                self._remembered.put(version, fingerprint, found[fingerprint])
        return found

    def find_completed(self, fingerprint: str, *, inputs: bool = True) -> RunRecord | None:
        """Newest completed, not invalidated run with this fingerprint, with its artifacts
        and files (and its inputs, unless ``inputs=False``), whatever the state of its files
        now (the runner checks those)."""
        if not inputs:
            found = self.completed_runs(fingerprint)
        else:
            with self._read() as conn:
                found = load_completed(conn, fingerprint, inputs=True)
        return found[0] if found else None

    def record_hit(self, run_id: int, *, run: RunRecord | None = None) -> None:
        """Count a cache hit; ``run`` (the record find_completed gave) saves a reload for
        the "hit" event, whose payload is the updated record."""
        now = utc_now()
        with self._write() as conn, summary.changing(conn, [run_id]):
            done = conn.execute(update(runs).where(runs.c.id == run_id)
                                .values(hit_count=runs.c.hit_count + 1, last_hit_at=now))
            if done.rowcount == 0:
                raise RunNotFoundError(run_id)
            if not events.has_handlers("hit"):
                return
            if run is None:
                record = load_run(conn, run_id)
            else:
                hits = conn.scalar(select(runs.c.hit_count).where(runs.c.id == run_id))
                record = replace(run, hit_count=int(hits or 0), last_hit_at=now)
        events.emit("hit", record)

    def record_hits(self, counts: Mapping[int, tuple[int, datetime]]) -> None:
        """Add batched hits: run id -> (how many, when the last one was), in one write."""
        if not counts:
            return
        with self._write() as conn, summary.changing(conn, list(counts)):
            for run_id, (count, last) in counts.items():
                conn.execute(update(runs).where(runs.c.id == run_id)
                             .values(hit_count=runs.c.hit_count + count, last_hit_at=last))

    # -- the miss path --
    def claim(self, spec: RunSpec, *, lease_seconds: float) -> Claim:
        """Insert a run straight into 'running' (history: None->pending, pending->running)
        with a lease; links each input to the newest artifact of a completed run with the
        same value hash."""
        with self._write() as conn:
            (claim,) = insert_running(conn, [spec], lease_seconds)
            summary.add_runs(conn, [claim.run_id])
            record = load_run(conn, claim.run_id) if events.has_handlers("running") else None
        if record is not None:
            events.emit("running", record)
        return claim

    def claim_or_join(
        self, spec: RunSpec, *, lease_seconds: float, max_abandoned: int | None = None,
        newer_than: int = 0,
    ) -> Claim | RunRecord:
        """Single-flight claim, decided in one BEGIN IMMEDIATE transaction: runs of this
        fingerprint whose lease expired are failed as "abandoned"; then a completed run with
        an id above ``newer_than`` (one finished since the caller looked: the caller found
        the files of the older ones changed) or a live running run (another process
        computing it: wait for it) is returned instead of a new claim. With ``max_abandoned``, a
        fingerprint abandoned that many times since its last completed run is not claimed
        again: RepeatedlyAbandonedError (raised after the commit, so the expiries stay)."""
        (outcome,) = self.claim_or_join_many([spec], lease_seconds=lease_seconds,
                                             max_abandoned=max_abandoned, newer_than=newer_than)
        if isinstance(outcome, RepeatedlyAbandonedError):
            raise outcome
        return outcome

    def claim_or_join_many(
        self, specs: Sequence[RunSpec], *, lease_seconds: float,
        max_abandoned: int | None = None, newer_than: int = 0,
    ) -> list[Claim | RunRecord | RepeatedlyAbandonedError]:
        """:meth:`claim_or_join` of many specs (a sweep's misses) in one transaction: for
        each, in order, its Claim, the run to wait for (a later spec with the fingerprint of
        an earlier one waits for the earlier one's run), or the RepeatedlyAbandonedError to
        raise."""
        now = utc_now()
        fingerprints = list(dict.fromkeys(spec.fingerprint for spec in specs))
        outcomes: list[Any] = [None] * len(specs)
        with self._write() as conn:
            expired: list[int] = []
            for chunk in chunks(fingerprints):
                expired += conn.scalars(select(runs.c.id).where(
                    runs.c.fingerprint.in_(chunk), runs.c.status == "running",
                    runs.c.lease_expires_at < now).order_by(runs.c.id))
            with summary.changing(conn, expired):
                for run_id in expired:
                    self._transition(conn, run_id, "failed", now, "abandoned", None, _ABANDONED)
            existing: dict[str, int] = {}
            for chunk in chunks(fingerprints):
                existing.update(conn.execute(
                    select(runs.c.fingerprint, func.max(runs.c.id)).where(
                        runs.c.fingerprint.in_(chunk), runs.c.invalid_reason.is_(None),
                        or_(runs.c.status == "running",
                            (runs.c.status == "completed") & (runs.c.id > newer_than)))
                    .group_by(runs.c.fingerprint)).all())
            abandoned: dict[str, list[int]] = {}
            if max_abandoned is not None:
                abandoned = _abandoned_since_completed(
                    conn, [f for f in fingerprints if f not in existing])
            new: dict[str, int] = {}  # fingerprint -> index in specs of its new claim
            for index, spec in enumerate(specs):
                fingerprint = spec.fingerprint
                if fingerprint in existing or fingerprint in new:
                    continue
                given_up = abandoned.get(fingerprint, [])
                if max_abandoned is not None and len(given_up) >= max_abandoned:
                    outcomes[index] = RepeatedlyAbandonedError(spec.task, fingerprint, given_up)
                else:
                    new[fingerprint] = index
            claims = insert_running(conn, [specs[i] for i in new.values()], lease_seconds)
            claimed = [claim.run_id for claim in claims]
            summary.add_runs(conn, claimed)
            for index, claim in zip(new.values(), claims, strict=True):
                outcomes[index] = claim
                existing.setdefault(specs[index].fingerprint, claim.run_id)
            joined = [i for i, outcome in enumerate(outcomes) if outcome is None]
            wanted = list(dict.fromkeys(existing[specs[i].fingerprint] for i in joined))
            if events.has_handlers("running"):
                wanted += claimed
            records = {r.id: r for r in load_runs_by_id(conn, wanted)}
        for index in joined:
            outcomes[index] = records[existing[specs[index].fingerprint]]
        for run_id in claimed:
            if run_id in records:
                events.emit("running", records[run_id])
        return outcomes

    def complete(
        self, claim: Claim, artifacts: Sequence[ArtifactRecord], *, duration: float,
        files: Sequence[FileRecord] = (), record: bool = True,
    ) -> RunRecord | None:
        """Artifacts and files rows + running->completed in one transaction, fenced by the
        lease token. The files read are also listed among the run's inputs (by content hash,
        linked to a run that wrote that content). Returns the run's new record; None with
        ``record=False`` (a sweep's completions do not read it back)."""
        rows = [{"run_id": claim.run_id, "name": a.name, "codec": a.codec,
                 "relpath": a.relpath, "size": a.size, "checksum": a.checksum,
                 "value_hash": a.value_hash, "type_name": a.type_name,
                 "shape": None if a.shape is None else list(a.shape), "rows": a.rows,
                 "columns": None if a.columns is None else list(a.columns), "repr": a.repr,
                 "restored_hash": a.restored_hash}
                for a in artifacts]
        return self._change(claim.run_id, "completed", None, claim.lease_token,
                            {"duration": duration}, rows, files, record=record)

    def finish_failed(
        self, claim: Claim, *, status: str, error_type: str | None, error_message: str | None,
        traceback: str | None, duration: float | None, reason: str | None = None,
    ) -> RunRecord:
        """running->failed|cancelled with the error; history row with ``reason``."""
        if status not in ("failed", "cancelled"):
            raise ValueError(f"finish_failed takes status 'failed' or 'cancelled', not {status!r}")
        values = {"error_type": error_type, "error_message": error_message,
                  "traceback": traceback, "duration": duration}
        return _loaded(self._change(claim.run_id, status, reason, claim.lease_token, values))

    def transition(
        self, run_id: int, to_status: str, reason: str | None = None,
        lease_token: str | None = None,
    ) -> RunRecord:
        """Move a run to ``to_status`` (validated against records.TRANSITIONS) with a history
        row; with ``lease_token``, fenced: the run must be owned by that token.
        Emits the ``to_status`` event after the commit."""
        return _loaded(self._change(run_id, to_status, reason, lease_token, {}))

    def _change(
        self, run_id: int, to_status: str, reason: str | None, lease_token: str | None,
        values: dict[str, Any], artifact_rows: Sequence[dict[str, Any]] = (),
        files: Sequence[FileRecord] = (), *, record: bool = True,
    ) -> RunRecord | None:
        """One state change, written in the group commit of the changes this process's
        threads ask for at the same moment (see group_commit.py); the event fires in the
        caller's thread after the commit."""
        new = self._changes.submit(_Change(run_id, to_status, reason, lease_token, values,
                                           artifact_rows, files, record))
        if new is not None and to_status in events.EVENTS and events.has_handlers(to_status):
            events.emit(to_status, new)
        return new if record else None

    def _commit_changes(self, batch: Sequence[_Change]) -> list[RunRecord | None | BaseException]:
        """Write ``batch`` in one transaction: each change's new record, or the error of a
        change refused (RunNotFoundError, LeaseLostError, InvalidTransitionError), which
        does not keep the others from committing. A database error that is not about the
        catalog being unavailable is retried change by change, so only its change fails."""
        try:
            return self._write_changes(batch)
        except CatalogUnavailableError:
            raise
        except Exception:
            if len(batch) == 1:
                raise
        outcomes: list[RunRecord | None | BaseException] = []
        for change in batch:
            try:
                outcomes += self._write_changes([change])
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    def _write_changes(self, batch: Sequence[_Change]) -> list[RunRecord | None | BaseException]:
        now = utc_now()
        outcomes: list[Any] = [None] * len(batch)
        with self._write() as conn:
            state = _states(conn, [change.run_id for change in batch])
            accepted: list[tuple[int, _Change, str]] = []
            for index, change in enumerate(batch):
                found = state.get(change.run_id)
                if found is None:
                    outcomes[index] = RunNotFoundError(change.run_id)
                    continue
                current, owner = found
                if change.lease_token is not None and owner != change.lease_token:
                    outcomes[index] = LeaseLostError(change.run_id)
                elif change.to_status not in TRANSITIONS.get(current, ()):
                    outcomes[index] = InvalidTransitionError(change.run_id, current,
                                                             change.to_status)
                else:
                    state[change.run_id] = (change.to_status, owner)
                    accepted.append((index, change, current))
            changed = list(dict.fromkeys(change.run_id for _, change, _ in accepted))
            if accepted:
                with summary.changing(conn, changed):
                    self._apply_changes(conn, accepted, now)
            wanted = [c.run_id for _, c, _ in accepted
                      if c.record or events.has_handlers(c.to_status)]
            records = {r.id: r for r in load_runs_by_id(conn, wanted)}
        for index, change, _ in accepted:
            outcomes[index] = records.get(change.run_id)
        return outcomes

    @staticmethod
    def _apply_changes(conn: Connection, accepted: Sequence[tuple[int, _Change, str]],
                       now: datetime) -> None:
        """The rows of accepted changes: one executemany per kind of update, one insert
        each for history, artifacts and files."""
        updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for _, change, _ in accepted:
            values = _status_values(change.to_status, change.values, now)
            params = {"b_id": change.run_id, **{f"b_{k}": v for k, v in values.items()}}
            updates.setdefault(tuple(sorted(values)), []).append(params)
        for columns, params in updates.items():
            conn.execute(_update_by_id(columns), params)
        conn.execute(insert(state_history), [
            {"run_id": change.run_id, "from_status": current, "to_status": change.to_status,
             "at": now, "reason": change.reason} for _, change, current in accepted])
        if rows := [row for _, change, _ in accepted for row in change.artifact_rows]:
            conn.execute(insert(artifacts), rows)
        if files := [row for _, c, _ in accepted if c.files for row in file_rows(c.run_id, c.files)]:
            conn.execute(insert(run_files), files)
        inputs = [row for _, c, _ in accepted if c.files
                  for row in file_input_rows(conn, c.run_id, c.files)]
        if inputs:
            conn.execute(insert(run_inputs), inputs)

    def _transition(
        self, conn: Connection, run_id: int, to_status: str, now: datetime,
        reason: str | None, lease_token: str | None, values: dict[str, Any],
    ) -> None:
        row = conn.execute(select(runs.c.status, runs.c.lease_owner)
                           .where(runs.c.id == run_id)).first()
        if row is None:
            raise RunNotFoundError(run_id)
        current, owner = row
        if lease_token is not None and owner != lease_token:
            raise LeaseLostError(run_id)
        if to_status not in TRANSITIONS.get(current, ()):
            raise InvalidTransitionError(run_id, current, to_status)
        changes = _status_values(to_status, values, now)
        conn.execute(update(runs).where(runs.c.id == run_id).values(**changes))
        conn.execute(insert(state_history).values(run_id=run_id, from_status=current,
                                                  to_status=to_status, at=now, reason=reason))

    # -- leases --
    def renew_leases(self, claims: Sequence[Claim], lease_seconds: float,
                     ) -> tuple[set[int], set[int]]:
        """Push the leases of the runs these claims still own, in one transaction. Returns
        the ids of the runs renewed and of those whose lease was lost (taken over by another
        process, or the run deleted); a run its claim finished is in neither."""
        expires = utc_now() + timedelta(seconds=lease_seconds)
        ids = list(dict.fromkeys(claim.run_id for claim in claims))
        with self._write() as conn:
            found = _states(conn, ids)
            renewed, lost = set(), set()
            for claim in claims:
                status, owner = found.get(claim.run_id, (None, None))
                if owner != claim.lease_token:
                    lost.add(claim.run_id)
                elif status == "running":
                    renewed.add(claim.run_id)
            for chunk in chunks(sorted(renewed)):
                conn.execute(update(runs).where(runs.c.id.in_(chunk))
                             .values(lease_expires_at=expires))
        return renewed, lost

    def expire_abandoned(self, now: datetime | None = None) -> list[int]:
        """Running runs whose lease expired -> failed (reason "abandoned"); their ids."""
        now = now or utc_now()
        with self._write() as conn:
            ids = list(conn.scalars(select(runs.c.id).where(
                runs.c.status == "running", runs.c.lease_expires_at < now,
            ).order_by(runs.c.id)))
            with summary.changing(conn, ids):
                for run_id in ids:
                    self._transition(conn, run_id, "failed", now, "abandoned", None, _ABANDONED)
            records = load_runs(conn, [runs.c.id.in_(ids)], full=True) if ids else []
        for record in reversed(records):
            events.emit("failed", record)
        return ids

    def find_running(self, fingerprint: str) -> RunRecord | None:
        """The newest running run with this fingerprint whose lease has not expired."""
        with self._read() as conn:
            found = load_runs(conn, [
                runs.c.fingerprint == fingerprint, runs.c.status == "running",
                runs.c.lease_expires_at > utc_now()], full=True, limit=1)
        return found[0] if found else None

    def invalidate(self, run_id: int, reason: str) -> None:
        """Stop serving a completed run from cache (its artifacts failed to verify)."""
        with self._write() as conn:
            current = conn.scalar(select(runs.c.status).where(runs.c.id == run_id))
            if current is None:
                raise RunNotFoundError(run_id)
            conn.execute(update(runs).where(runs.c.id == run_id).values(invalid_reason=reason))
            conn.execute(insert(state_history).values(
                run_id=run_id, from_status=current, to_status=current, at=utc_now(),
                reason=f"invalidated: {reason}"))

    def delete_runs(self, run_ids: Sequence[int]) -> list[ArtifactRecord]:
        """Delete runs with their inputs/artifacts/history rows; returns the artifact rows
        removed so the caller can delete files. Inputs of other runs that were produced by a
        removed artifact are re-linked to another completed run's artifact with the same
        value, when there is one (lineage is by value, not by run)."""
        ids = list(dict.fromkeys(run_ids))
        with self._write() as conn:
            removed = load_artifacts(conn, ids)
            removed_ids = [a.id for a in removed if a.id is not None]
            orphaned: list[Any] = []
            for chunk in chunks(removed_ids):
                orphaned += conn.execute(
                    select(run_inputs.c.id, run_inputs.c.run_id, run_inputs.c.value_hash)
                    .where(run_inputs.c.producer_artifact_id.in_(chunk))
                ).all()
            deleted = set(ids)
            summary.remove_runs(conn, ids)
            for chunk in chunks(ids):
                conn.execute(delete(runs).where(runs.c.id.in_(chunk)))
            for input_id, reader, value_hash in orphaned:
                if reader in deleted:
                    continue
                conn.execute(update(run_inputs).where(run_inputs.c.id == input_id)
                             .values(producer_artifact_id=producer_of(conn, value_hash)))
        return removed

    # -- read-only queries ----------------------------------------------------------------
    def get_run(self, run_id: int) -> RunRecord:
        if not 0 < run_id < 2**63:  # SQLite integers are 64-bit: no such run
            raise RunNotFoundError(run_id)
        with self._read() as conn:
            return load_run(conn, run_id)

    def query_runs(
        self, *, task: str | None = None, status: str | None = None, tag: str | None = None,
        since: datetime | None = None, fingerprint: str | None = None,
        text: str | None = None, until: datetime | None = None,
        task_contains: str | None = None,
        sort: str = "id", descending: bool = True, limit: int = 100, offset: int = 0,
        full: bool = False,
    ) -> list[RunRecord]:
        """Runs matching every filter given, newest first by default; inputs and artifacts
        are loaded only with ``full``. ``sort`` is one of SORT_COLUMNS (ties broken by id)."""
        if sort not in SORT_COLUMNS:
            raise ValueError(f"cannot sort runs by {sort!r}; choose one of {sorted(SORT_COLUMNS)}")
        column, tiebreak = SORT_COLUMNS[sort], runs.c.id
        order = ((column.desc(), tiebreak.desc()) if descending
                 else (column.asc(), tiebreak.asc()))
        where = run_filters(task, status, tag, since, fingerprint, text=text, until=until,
                            task_contains=task_contains)
        with self._read() as conn:
            return load_runs(conn, where, full=full, limit=limit, offset=offset,
                             order=order[1:] if sort == "id" else order)

    def count_runs(
        self, *, task: str | None = None, status: str | None = None, tag: str | None = None,
        since: datetime | None = None, fingerprint: str | None = None,
        text: str | None = None, until: datetime | None = None,
        task_contains: str | None = None,
    ) -> int:
        """How many runs query_runs would page through with these filters (by task and
        status alone: from the summary table, without a scan)."""
        if (tag is None and since is None and fingerprint is None and not text and until is None
                and task_contains is None):
            with self._read() as conn:
                return sum(n for t, s, n, *_ in summary.read(conn)
                           if task in (None, t) and status in (None, s))
        where = run_filters(task, status, tag, since, fingerprint, text=text, until=until,
                            task_contains=task_contains)
        with self._read() as conn:
            return int(conn.scalar(select(func.count()).select_from(runs).where(*where)) or 0)

    def task_names(self) -> list[str]:
        """Every task name in the catalog, sorted."""
        with self._read() as conn:
            return sorted({task for task, *_ in summary.read(conn)})

    def tag_names(self) -> list[str]:
        """Every tag in use, sorted."""
        with self._read() as conn:
            return list(conn.scalars(select(run_tags.c.tag).distinct().order_by(run_tags.c.tag)))

    def change_marker(self) -> tuple[int, int, int]:
        """Cheap to read and different whenever a run is added, deleted or changes state
        (for polling views): (newest run id, newest state change id, number of runs)."""
        with self._read() as conn:
            newest, changes = conn.execute(select(
                select(func.max(runs.c.id)).scalar_subquery(),
                select(func.max(state_history.c.id)).scalar_subquery())).one()
            n = sum(row[2] for row in summary.read(conn))
        return int(newest or 0), int(changes or 0), int(n)

    def history(self, run_id: int) -> list[StateChange]:
        with self._read() as conn:
            rows = conn.execute(
                select(state_history.c.run_id, state_history.c.from_status,
                       state_history.c.to_status, state_history.c.at, state_history.c.reason)
                .where(state_history.c.run_id == run_id).order_by(state_history.c.id)).all()
            if not rows and conn.scalar(select(runs.c.id).where(runs.c.id == run_id)) is None:
                raise RunNotFoundError(run_id)
        return [state_change(row) for row in rows]

    def _lineage(self, run_id: int, ids: Any) -> list[RunRecord]:
        with self._read() as conn:
            if conn.scalar(select(runs.c.id).where(runs.c.id == run_id)) is None:
                raise RunNotFoundError(run_id)
            found = load_runs(conn, [runs.c.id.in_(ids)], full=True)
        return found[::-1]  # oldest first

    def upstream(self, run_id: int) -> list[RunRecord]:
        """Runs that produced this run's inputs (through InputRecord.producer_run_id)."""
        return self._lineage(run_id, select(artifacts.c.run_id).select_from(INPUTS_FROM)
                             .where(run_inputs.c.run_id == run_id))

    def downstream(self, run_id: int) -> list[RunRecord]:
        """Runs with an input produced by an artifact of this run."""
        return self._lineage(run_id, select(run_inputs.c.run_id).select_from(INPUTS_FROM)
                             .where(artifacts.c.run_id == run_id))

    def summary(self) -> dict[str, Any]:
        """{"runs": n, "by_status": {...}, "by_task": {...}, "hits": n, "time_saved": seconds,
        "disk_bytes": total artifact size}, read from the summary table (no scan)."""
        with self._read() as conn:
            rows = summary.read(conn)
        by_status: dict[str, int] = {}
        by_task: dict[str, int] = {}
        for task, status, n, *_ in rows:
            by_status[status] = by_status.get(status, 0) + n
            by_task[task] = by_task.get(task, 0) + n
        return {"runs": sum(r[2] for r in rows), "by_status": by_status, "by_task": by_task,
                "hits": sum(r[3] for r in rows), "time_saved": float(sum(r[4] for r in rows)),
                "disk_bytes": sum(r[5] for r in rows)}

    def rebuild_summary(self) -> None:
        """Recompute the summary table from every run: for a catalog whose rows were written
        behind the Catalog's back (a bulk load with sqlite3)."""
        with self._write() as conn:
            summary.recompute(conn)

    def artifact_relpaths(self) -> set[str]:
        """Every artifact path the catalog still references (for garbage collection)."""
        with self._read() as conn:
            return set(conn.scalars(select(artifacts.c.relpath)))

