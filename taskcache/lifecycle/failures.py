"""Recording the failure of a claimed run without letting the catalog's trouble hide the
run's real outcome.

A failure the catalog cannot take now (locked, disk full) is kept and retried before the
runner's next claim (``settle``), so a process never waits a whole lease for its own dead
run; other processes take the run over once its lease expires."""

from __future__ import annotations

import logging
import re
import threading
import traceback as tb
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
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
_PACKAGE = str(Path(__file__).resolve().parents[1]) + "/"  # taskcache's own source files
_FILE_LINE = re.compile(r'File "([^"]+)", line')


def user_traceback(exc: BaseException, file_labels: Mapping[str, str] | None = None) -> str:
    """``exc``'s traceback as its user reads it: without taskcache's own frames above the
    user's code (unless every frame is taskcache's), and with each file in ``file_labels``
    written as its label (a notebook cell's file -> ``Cell In[37]``, as IPython writes it)."""
    frame = exc.__traceback__
    while frame is not None and frame.tb_frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.tb_next
    text = "".join(tb.format_exception(type(exc), exc, frame or exc.__traceback__))
    if file_labels:
        text = _FILE_LINE.sub(lambda m: f"{file_labels[m[1]]}, line" if m[1] in file_labels
                              else m[0], text)
    return text


def failure_fields(
    exc: BaseException, duration: float | None, cancelled: bool, reason: str | None,
    file_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Catalog.finish_failed arguments for a run that ended with ``exc`` (its traceback
    as :func:`user_traceback` writes it)."""
    cls = type(exc)
    return {"status": "cancelled" if cancelled else "failed",
            "error_type": f"{cls.__module__}.{cls.__qualname__}",
            "error_message": str(exc), "traceback": user_traceback(exc, file_labels),
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
