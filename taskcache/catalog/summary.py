"""The catalog summary kept incrementally: the ``run_summary`` table holds, per (task,
status), the number of runs, their hits, the compute time those hits saved and the bytes of
their artifacts. Every write that changes one of those figures changes the table in the same
transaction: :func:`changing` measures what the runs it is given contribute before and
after the change and applies the difference, so the table always equals what
:func:`recompute` would compute by scanning every run."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Float,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

from taskcache.catalog.tables import artifacts, chunks, run_summary, runs

__all__ = ["add_runs", "changing", "read", "recompute", "remove_runs"]

#: (task, status) -> [runs, hits, time saved, disk bytes]
Figures = dict[tuple[str, str], list[Any]]


_DISK = (select(func.coalesce(func.sum(artifacts.c.size), 0))
         .where(artifacts.c.run_id == runs.c.id).scalar_subquery())
# statements built once: a sweep's completions run them for every batch
_CONTRIBUTION = select(
    runs.c.task, runs.c.status, func.count(), func.coalesce(func.sum(runs.c.hit_count), 0),
    func.coalesce(func.sum(runs.c.hit_count * func.coalesce(runs.c.duration, 0.0)), 0.0),
    func.coalesce(func.sum(_DISK), 0),
).where(runs.c.id.in_(bindparam("ids", expanding=True))).group_by(runs.c.task, runs.c.status)
_ADD = update(run_summary).where(
    run_summary.c.task == bindparam("b_task"), run_summary.c.status == bindparam("b_status"),
).values(runs=run_summary.c.runs + bindparam("b_runs", type_=BigInteger),
         hits=run_summary.c.hits + bindparam("b_hits", type_=BigInteger),
         time_saved=run_summary.c.time_saved + bindparam("b_saved", type_=Float),
         disk_bytes=run_summary.c.disk_bytes + bindparam("b_disk", type_=BigInteger))


def _contribution(conn: Connection, run_ids: Sequence[int]) -> Figures:
    out: Figures = {}
    for chunk in chunks(list(run_ids)):
        for task, status, *figures in conn.execute(_CONTRIBUTION, {"ids": list(chunk)}):
            total = out.setdefault((task, status), [0, 0, 0.0, 0])
            for i, value in enumerate(figures):
                total[i] += value
    return out


def _apply(conn: Connection, delta: Figures, sign: int = 1) -> None:
    for (task, status), (n, hits, saved, disk) in delta.items():
        if not (n or hits or saved or disk):
            continue
        done = conn.execute(_ADD, {"b_task": task, "b_status": status, "b_runs": sign * n,
                                   "b_hits": sign * hits, "b_saved": sign * saved,
                                   "b_disk": sign * disk})
        if done.rowcount == 0:  # the first run of this task in this status
            conn.execute(insert(run_summary).values(
                task=task, status=status, runs=sign * n, hits=sign * hits,
                time_saved=sign * saved, disk_bytes=sign * disk))


def add_runs(conn: Connection, run_ids: Sequence[int]) -> None:
    """Count runs just inserted (or their artifacts just added)."""
    _apply(conn, _contribution(conn, run_ids))


def remove_runs(conn: Connection, run_ids: Sequence[int]) -> None:
    """Uncount runs about to be deleted."""
    _apply(conn, _contribution(conn, run_ids), -1)


@contextmanager
def changing(conn: Connection, run_ids: Sequence[int]) -> Iterator[None]:
    """Around a change of these runs (status, hits, duration, artifacts) in ``conn``'s
    transaction: the summary moves by what the change did to their figures."""
    before = _contribution(conn, run_ids)
    yield
    after = _contribution(conn, run_ids)
    for key, figures in before.items():
        total = after.setdefault(key, [0, 0, 0.0, 0])
        for i, value in enumerate(figures):
            total[i] -= value
    _apply(conn, after)


def recompute(conn: Connection) -> None:
    """Rebuild the table from every run (a migrated catalog, or one filled in bulk)."""
    conn.execute(delete(run_summary))
    disk = (select(artifacts.c.run_id, func.sum(artifacts.c.size).label("size"))
            .group_by(artifacts.c.run_id).subquery())
    rows = conn.execute(select(
        runs.c.task, runs.c.status, func.count(), func.coalesce(func.sum(runs.c.hit_count), 0),
        func.coalesce(func.sum(runs.c.hit_count * func.coalesce(runs.c.duration, 0.0)), 0.0),
        func.coalesce(func.sum(disk.c.size), 0),
    ).select_from(runs.outerjoin(disk, disk.c.run_id == runs.c.id))
        .group_by(runs.c.task, runs.c.status)).all()
    if rows:
        conn.execute(insert(run_summary), [
            {"task": task, "status": status, "runs": n, "hits": hits, "time_saved": saved,
             "disk_bytes": disk_bytes} for task, status, n, hits, saved, disk_bytes in rows])


def read(conn: Connection) -> list[tuple[str, str, int, int, float, int]]:
    """Rows (task, status, runs, hits, time saved, disk bytes) with at least one run."""
    return [tuple(row) for row in conn.execute(  # type: ignore[misc]
        select(run_summary.c.task, run_summary.c.status, run_summary.c.runs,
               run_summary.c.hits, run_summary.c.time_saved, run_summary.c.disk_bytes)
        .where(run_summary.c.runs > 0).order_by(run_summary.c.task, run_summary.c.status))]
