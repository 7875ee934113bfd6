"""Group commit: changes that threads of one process ask for at the same moment are written
in one transaction, each caller getting its own outcome once that transaction committed.

A caller that finds no commit under way commits everything pending at that moment (its own
change included) and wakes the others; a caller that finds one under way waits and is served
by the next. A lone caller pays one transaction, as without grouping; callers arriving while
the write lock is busy share the next one instead of queueing for a transaction each.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

T = TypeVar("T")
R = TypeVar("R")


class _Request(Generic[T, R]):
    __slots__ = ("item", "done", "result", "error")

    def __init__(self, item: T) -> None:
        self.item = item
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    """Serve ``submit(item)`` calls through ``commit(items)``, which writes a batch in one
    transaction and returns, for each item in order, its result or the exception its caller
    must get. When ``commit`` itself raises, every caller of the batch gets that exception,
    as if its own transaction had raised it."""

    def __init__(self, commit: Callable[[Sequence[T]], list[R | BaseException]]) -> None:
        self._commit = commit
        self._start()

    def _start(self) -> None:
        self._cond = threading.Condition()
        self._pending: list[_Request[T, R]] = []
        self._busy = False
        self._pid = os.getpid()

    def submit(self, item: T) -> R:
        """Write ``item`` (with whatever else is pending) and return its result, or raise
        its error, once the transaction holding it has committed."""
        request: _Request[T, R] = _Request(item)
        if self._pid != os.getpid():  # a forked child: the parent's batch is not its own
            self._start()
        with self._cond:
            self._pending.append(request)
            while not request.done and self._busy:
                self._cond.wait()
            if request.done:
                return self._outcome(request)
            batch, self._pending = self._pending, []
            self._busy = True
        try:
            outcomes = self._commit([r.item for r in batch])
        except BaseException as exc:
            outcomes = [exc] * len(batch)
            raise
        finally:
            with self._cond:
                for r, outcome in zip(batch, outcomes, strict=True):
                    if isinstance(outcome, BaseException):
                        r.error = outcome
                    else:
                        r.result = outcome
                    r.done = True
                self._busy = False
                self._cond.notify_all()
        return self._outcome(request)

    @staticmethod
    def _outcome(request: _Request[T, R]) -> R:
        if request.error is not None:
            raise request.error
        return request.result  # type: ignore[return-value]
