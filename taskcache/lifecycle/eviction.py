"""Choosing which runs to remove when a cache must shrink, and keeping a cache within its
``max_size`` by itself (:class:`SizeBound`).

The choice is pure (``select_to_fit``): least recently used first (last hit, else
finished), never a run that is not completed, never one kept on purpose, and never a run
whose output a kept run read (lineage: its reader would lose its upstream). ``gc`` in
:mod:`taskcache.lifecycle.maintenance` and :class:`SizeBound` share it.
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections import defaultdict
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from taskcache.catalog import Catalog
from taskcache.catalog.tables import utc_now
from taskcache.errors import CatalogError
from taskcache.records import RunRecord

log = logging.getLogger("taskcache")

ALL = 2**62  # "no limit" for catalog queries

#: runs that finished this recently are never removed to fit a size bound: they were just
#: written, by this process or another, and their caller may be about to read them
JUST_WRITTEN = timedelta(seconds=60)


def last_used(run: RunRecord) -> datetime:
    """When a run was last hit, else when it finished, else when it was created."""
    return run.last_hit_at or run.finished_at or run.created_at


def keep_lineage(records: list[RunRecord], doomed: set[int]) -> set[int]:
    """``doomed`` less every run whose output a kept run read, transitively (keeping a run
    keeps the producers of its own inputs too)."""
    doomed = set(doomed)
    while needed := {i.producer_run_id for r in records if r.id not in doomed
                     for i in r.inputs} & doomed:
        doomed -= needed
    return doomed


def select_to_fit(records: list[RunRecord], doomed: set[int], max_bytes: int,
                  keep: Collection[int] = ()) -> set[int]:
    """Further completed runs to delete (pure), least recently used first (last hit, else
    finished), until the artifacts of the runs kept total at most ``max_bytes``. Runs in
    ``keep`` are never chosen; a run whose output a kept run read is skipped while that
    reader stays."""
    by_id = {r.id: r for r in records}
    size = {r.id: sum(a.size for a in r.artifacts) for r in records}
    total = sum(size[i] for i in by_id if i not in doomed)
    readers: dict[int, set[int]] = defaultdict(set)  # producer -> kept runs that read it
    for r in records:
        if r.id not in doomed:
            for i in r.inputs:
                if i.producer_run_id is not None and i.producer_run_id != r.id:
                    readers[i.producer_run_id].add(r.id)
    queue = [(last_used(r), r.id) for r in records if r.id not in doomed and r.id not in keep
             and r.status == "completed" and not r.invalid_reason]
    heapq.heapify(queue)
    dropped: set[int] = set()
    blocked: set[int] = set()
    while queue and total > max_bytes:
        _, run_id = heapq.heappop(queue)
        if readers[run_id]:
            blocked.add(run_id)  # comes back if its last reader goes
            continue
        dropped.add(run_id)
        total -= size[run_id]
        for i in by_id[run_id].inputs:
            producer = i.producer_run_id
            if producer is not None and producer in readers:
                readers[producer].discard(run_id)
                if not readers[producer] and producer in blocked:
                    blocked.discard(producer)
                    heapq.heappush(queue, (last_used(by_id[producer]), producer))
    return dropped


class SizeBound:
    """Keeps the artifacts of one cache within ``max_bytes``: after each completed run,
    ``after_write`` reads the disk use from the catalog summary (a few rows) and, when it is
    over the bound, removes the least recently used runs on a background thread, so neither
    hits nor the write that crossed the bound wait for it. Runs finished in the last
    JUST_WRITTEN, and running runs, are never removed; hits of this process are counted
    first (``flush_hits``) so that they count as use."""

    def __init__(self, catalog: Catalog, store: Any, flush_hits: Any, max_bytes: int) -> None:
        self.catalog, self.store, self.max_bytes = catalog, store, max_bytes
        self._flush_hits = flush_hits
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._again = False
        self._written: set[int] = set()  # runs this process completed since the last pass
        self.removed: list[int] = []  # ids of the runs removed so far (for reports, tests)

    def after_write(self, run_id: int) -> None:
        """Called after run ``run_id`` completed; returns at once."""
        if self.catalog.summary()["disk_bytes"] <= self.max_bytes:
            return
        with self._lock:
            self._written.add(run_id)
            if self._thread is not None and self._thread.is_alive():
                self._again = True  # the running pass looks once more when done
                return
            self._thread = threading.Thread(target=self._run, name="taskcache-size-bound",
                                            daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        """Until the background pass, if any, is done."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            try:
                self.enforce()
            except (CatalogError, OSError) as exc:  # next write tries again
                log.warning("taskcache: could not keep the cache within max_size: %s", exc)
            with self._lock:
                if not self._again:
                    self._thread = None
                    return
                self._again = False

    def enforce(self) -> list[int]:
        """One pass, in the calling thread: remove runs until the rest fits (as far as the
        rules allow); returns the ids removed."""
        self._flush_hits()
        with self._lock:
            keep, self._written = self._written, set()
        records = self.catalog.query_runs(limit=ALL, full=True)
        recent = utc_now() - JUST_WRITTEN
        keep |= {r.id for r in records if (r.finished_at or r.created_at) >= recent}
        doomed = select_to_fit(records, set(), self.max_bytes, keep)
        if not doomed:
            return []
        removed = self.catalog.delete_runs(sorted(doomed))
        for artifact in removed:
            try:
                self.store.delete(artifact.relpath)
            except OSError as exc:
                log.warning("taskcache: could not remove %s: %s", artifact.relpath, exc)
        self.removed += sorted(doomed)
        return sorted(doomed)
