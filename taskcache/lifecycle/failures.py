"""Recording the failure of a claimed run without letting the catalog's trouble hide the
run's real outcome.

A failure the catalog cannot take now (locked, disk full) is kept and retried before the
runner's next claim (``settle``), so a process never waits a whole lease for its own dead
run; other processes take the run over once its lease expires."""

from __future__ import annotations

import logging
import threading
import traceback as tb
from collections.abc import Callable, Iterable
from typing import Any

from taskcache.catalog import Catalog
from taskcache.errors import (
    CatalogUnavailableError,
    InvalidTransitionError,
    LeaseLostError,
    RunNotFoundError,
)
from taskcache.records import ArtifactRecord, Claim, RunRecord

log = logging.getLogger("taskcache")

_Pending = tuple[Claim, dict[str, Any], tuple[ArtifactRecord, ...]]


def failure_fields(
    exc: BaseException, duration: float | None, cancelled: bool, reason: str | None,
) -> dict[str, Any]:
    """The Catalog.finish_failed arguments for a run that ended with ``exc``."""
    cls = type(exc)
    return {"status": "cancelled" if cancelled else "failed",
            "error_type": f"{cls.__module__}.{cls.__qualname__}",
            "error_message": str(exc), "traceback": "".join(tb.format_exception(exc)),
            "duration": duration, "reason": reason}


class FailureLog:
    """Marks claimed runs failed; ``delete_files`` removes a failed run's written files
    once the run is known not to be completed."""

    def __init__(self, catalog: Catalog,
                 delete_files: Callable[[Iterable[ArtifactRecord]], None]) -> None:
        self._catalog = catalog
        self._delete_files = delete_files
        self._pending: list[_Pending] = []
        self._lock = threading.Lock()

    def record(self, claim: Claim, failure: dict[str, Any],
               written: tuple[ArtifactRecord, ...] = ()) -> RunRecord | None:
        """Mark the run failed; never raises a catalog error (kept for ``settle`` instead)."""
        try:
            return self._finish(claim, failure, written)
        except CatalogUnavailableError as exc:
            log.debug("taskcache: run #%s not marked failed yet: %s", claim.run_id, exc)
            with self._lock:
                self._pending.append((claim, failure, written))
            return None

    def settle(self) -> None:
        """Record the failures the catalog refused earlier. If it still refuses, they wait
        for the next try and CatalogUnavailableError is raised: a claim would fail too, so
        the caller runs without the cache after one busy timeout, not two."""
        if not self._pending:
            return
        with self._lock:
            pending, self._pending = self._pending, []
        for index, (claim, failure, written) in enumerate(pending):
            try:
                self._finish(claim, failure, written)
            except CatalogUnavailableError:
                with self._lock:
                    self._pending[:0] = pending[index:]
                raise

    def _finish(self, claim: Claim, failure: dict[str, Any],
                written: tuple[ArtifactRecord, ...]) -> RunRecord | None:
        """finish_failed, then delete ``written``; a CatalogUnavailableError passes through."""
        try:
            record: RunRecord | None = self._catalog.finish_failed(claim, **failure)
        except InvalidTransitionError:
            return None  # finished already, maybe completed by a commit that reported an error
        except (LeaseLostError, RunNotFoundError):
            record = None  # taken over or deleted: nothing refers to this run's files
        self._delete_files(written)
        return record
