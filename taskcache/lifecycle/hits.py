"""Hit counting off the hit path: hits are statistics, so they are batched into one write at
most every ``interval`` seconds (by a timer), before catalog reads, and at exit."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from taskcache.catalog import Catalog
from taskcache.errors import CatalogError

log = logging.getLogger("taskcache")


class HitLog:
    def __init__(self, catalog: Catalog, interval: float = 1.0) -> None:
        self._catalog = catalog
        self._interval = interval
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[int, float]] = {}  # run id -> (hits, last, epoch s)
        self._timer: threading.Timer | None = None
        self._pid = os.getpid()
        ref = weakref.ref(self)
        atexit.register(lambda: (log_ := ref()) and log_.flush())

    def add(self, run_id: int) -> None:
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent counts its own hits
                self._pending.clear()
                self._timer = None
                self._pid = os.getpid()
            count, _ = self._pending.get(run_id, (0, 0.0))
            self._pending[run_id] = (count + 1, time.time())
            if self._timer is None:
                self._timer = threading.Timer(self._interval, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Write pending hits now (a failure is logged and the counts kept for next time)."""
        with self._lock:
            pending, self._pending = self._pending, {}
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if not pending:
            return
        try:
            self._catalog.record_hits({run_id: (count, datetime.fromtimestamp(last, UTC))
                                       for run_id, (count, last) in pending.items()})
        except (SQLAlchemyError, CatalogError) as exc:
            log.warning("taskcache: could not record %d cache hits yet: %s", len(pending), exc)
            with self._lock:
                for run_id, (count, last) in pending.items():
                    old, _ = self._pending.get(run_id, (0, last))
                    self._pending[run_id] = (old + count, last)
