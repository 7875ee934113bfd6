"""Read-only queries over the run catalog: pages of runs with filters and sorting, counts,
lineage, history and the summary. Every method is one short read transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select

from ._models import (
    INPUTS_FROM,
    artifacts,
    load_run,
    load_runs,
    run_inputs,
    run_tags,
    runs,
    state_change,
    state_history,
)
from .errors import RunNotFoundError
from .records import RunRecord, StateChange

#: sort keys query_runs accepts (allow-listed: a sort key never reaches SQL as text)
SORT_COLUMNS = {
    name: runs.c[name]
    for name in ("id", "task", "status", "created_at", "started_at", "duration", "hit_count")
}


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def run_filters(
    task: str | None, status: str | None, tag: str | None, since: datetime | None,
    fingerprint: str | None, *, text: str | None = None, until: datetime | None = None,
) -> list[ColumnElement[bool]]:
    """WHERE clauses of query_runs/count_runs; every value is a bound parameter.

    ``text`` matches a substring of the task name or the source, case-insensitively for
    ASCII, with ``%`` and ``_`` taken literally; ``since``/``until`` bound created_at."""
    where: list[ColumnElement[bool]] = []
    if task is not None:
        where.append(runs.c.task == task)
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
    if text:
        pattern = _like_pattern(text)
        where.append(or_(runs.c.task.ilike(pattern, escape="\\"),
                         runs.c.source.ilike(pattern, escape="\\")))
    return where


class CatalogQueries:
    """The read side of :class:`~taskcache.catalog.Catalog` (which supplies ``_read``)."""

    _read: Any  # () -> context manager yielding a Connection

    def get_run(self, run_id: int) -> RunRecord:
        with self._read() as conn:
            return load_run(conn, run_id)

    def query_runs(
        self, *, task: str | None = None, status: str | None = None, tag: str | None = None,
        since: datetime | None = None, fingerprint: str | None = None,
        text: str | None = None, until: datetime | None = None,
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
        where = run_filters(task, status, tag, since, fingerprint, text=text, until=until)
        with self._read() as conn:
            return load_runs(conn, where, full=full, limit=limit, offset=offset,
                             order=order[1:] if sort == "id" else order)

    def count_runs(
        self, *, task: str | None = None, status: str | None = None, tag: str | None = None,
        since: datetime | None = None, fingerprint: str | None = None,
        text: str | None = None, until: datetime | None = None,
    ) -> int:
        """How many runs query_runs would page through with these filters."""
        where = run_filters(task, status, tag, since, fingerprint, text=text, until=until)
        with self._read() as conn:
            return int(conn.scalar(select(func.count()).select_from(runs).where(*where)) or 0)

    def task_names(self) -> list[str]:
        """Every task name in the catalog, sorted."""
        with self._read() as conn:
            return list(conn.scalars(select(runs.c.task).distinct().order_by(runs.c.task)))

    def tag_names(self) -> list[str]:
        """Every tag in use, sorted."""
        with self._read() as conn:
            return list(conn.scalars(select(run_tags.c.tag).distinct().order_by(run_tags.c.tag)))

    def change_marker(self) -> tuple[int, int, int]:
        """Cheap to read and different whenever a run is added, deleted or changes state
        (for polling views): (newest run id, newest state change id, number of runs)."""
        with self._read() as conn:
            newest, changes, n = conn.execute(select(
                select(func.max(runs.c.id)).scalar_subquery(),
                select(func.max(state_history.c.id)).scalar_subquery(),
                select(func.count()).select_from(runs).scalar_subquery())).one()
        return int(newest or 0), int(changes or 0), int(n or 0)

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
        "disk_bytes": total artifact size}"""
        with self._read() as conn:
            n, hits, saved = conn.execute(select(
                func.count(), func.coalesce(func.sum(runs.c.hit_count), 0),
                func.coalesce(func.sum(runs.c.hit_count * func.coalesce(runs.c.duration, 0.0)),
                              0.0))).one()
            by_status = dict(conn.execute(select(runs.c.status, func.count())
                                          .group_by(runs.c.status)).all())
            by_task = dict(conn.execute(select(runs.c.task, func.count())
                                        .group_by(runs.c.task)).all())
            disk = conn.scalar(select(func.coalesce(func.sum(artifacts.c.size), 0)))
        return {"runs": int(n), "by_status": by_status, "by_task": by_task, "hits": int(hits),
                "time_saved": float(saved), "disk_bytes": int(disk or 0)}

    def artifact_relpaths(self) -> set[str]:
        """Every artifact path the catalog still references (for garbage collection)."""
        with self._read() as conn:
            return set(conn.scalars(select(artifacts.c.relpath)))

