"""Misses sent to a pool, with retries, cancellation and progress: what ``f.map`` and
``f.submit`` do once the caller has served the hits itself.

Each miss is a :class:`~taskcache.lifecycle.jobs.Job`; :class:`Attempts` submits it, and on
a failure that the retry policy covers submits it again after a delay (every attempt is its
own recorded run, numbered in its environment as ``attempt``), until it succeeds or the
last error is raised through its :class:`TaskFuture`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from typing import Any

from taskcache.errors import CatalogUnavailableError
from taskcache.lifecycle.executors import Pool
from taskcache.lifecycle.jobs import Job, recorded_here
from taskcache.lifecycle.progress import SweepProgress
from taskcache.lifecycle.runner import use_settings
from taskcache.records import Claim

__all__ = ["Attempts", "RetryPolicy", "TaskFuture", "claim_ahead", "run_sweep"]


@dataclass(frozen=True)
class RetryPolicy:
    """``@task(retries=..., retry_delay=..., retry_backoff=..., retry_on=...)``: attempt
    ``n`` (from 2) waits ``delay * backoff ** (n - 2)`` seconds."""

    retries: int = 0
    delay: float = 0.0
    backoff: float = 1.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if self.retries < 0 or self.delay < 0 or self.backoff <= 0:
            raise ValueError("retries and retry_delay must be >= 0 and retry_backoff > 0, got "
                             f"{self.retries}, {self.delay}, {self.backoff}")

    def wait_before(self, attempt: int, exc: BaseException) -> float | None:
        """Seconds to wait before ``attempt`` after ``exc``; None: give up, raise ``exc``."""
        if attempt > self.retries + 1 or not isinstance(exc, self.retry_on):
            return None
        return self.delay * self.backoff ** (attempt - 2)


def numbered(job: Job, attempt: int, attempts: int) -> Job:
    """``job`` as attempt ``attempt`` of ``attempts``, which its run records (a run claimed
    ahead is the first attempt's: a later one claims its own)."""
    if attempt > 1:
        job = dataclasses.replace(job, claim=None)
    if attempts == 1:
        return job
    env = {**job.spec.env, "attempt": attempt, "attempts": attempts}
    return dataclasses.replace(job, attempt=attempt, attempts=attempts,
                               spec=dataclasses.replace(job.spec, env=env))


def claim_ahead(jobs: Sequence[Job], policy: RetryPolicy) -> list[Job]:
    """The jobs of a sweep on this process's threads with the runs of their first attempts
    claimed in one transaction (single-flight as ever: a point another process computes,
    or forced, is left for its worker to wait for or claim)."""
    if not jobs:
        return list(jobs)
    attempts = policy.retries + 1
    firsts = [numbered(job, 1, attempts) for job in jobs]
    ahead = [i for i, job in enumerate(firsts) if not job.force and job.claim is None]
    claims = use_settings(jobs[0].settings).claim_many(
        [recorded_here(firsts[i].spec) for i in ahead])
    out = list(jobs)
    for i, claim in zip(ahead, claims, strict=True):
        if claim is not None:
            out[i] = dataclasses.replace(jobs[i], claim=claim)
    return out


class TaskFuture(Future):
    """A ``concurrent.futures.Future`` of one task call, also awaitable. It is running from
    the moment its call starts on a worker. ``cancel()`` cancels a call not started yet, and
    also stops one running on processes or Dask (its run is recorded cancelled by the time
    ``cancel()`` returns True); a call running on a thread cannot be stopped (False)."""

    def __init__(self) -> None:
        super().__init__()
        self._stopper: Callable[[], bool] | None = None
        self._stopped = False

    def __await__(self) -> Generator[Any, None, Any]:
        return asyncio.wrap_future(self).__await__()

    def cancel(self) -> bool:
        stopper = self._stopper
        if stopper is not None and not self.done() and stopper():
            self._stopped = True
        return super().cancel() or self._stopped

    def cancelled(self) -> bool:
        return super().cancelled() or (self._stopped and self.done())


class Attempts:
    """Drive one job's attempts on ``pool``, resolving ``future`` with the first success or
    the last error."""

    def __init__(self, job: Job, pool: Pool, policy: RetryPolicy, future: TaskFuture,
                 progress: SweepProgress | None = None) -> None:
        self._job = job
        self._pool = pool
        self._policy = policy
        self._future = future
        self._progress = progress
        self._attempt = 0
        self._current: Future | None = None
        self._lock = threading.Lock()
        self._stopping = False
        self._running = False  # the current attempt has started (for the progress counts)
        future._stopper = self._stop

    @property
    def future(self) -> TaskFuture:
        return self._future

    def start(self) -> None:
        self._submit()

    def _on_start(self) -> None:
        self._running = True
        if self._attempt == 1:
            self._future.set_running_or_notify_cancel()
        if self._progress is not None:
            self._progress.started()

    def _submit(self) -> None:
        with self._lock:
            if self._stopping:
                if self._attempt == 0:
                    self._unclaim()
                self._settle(exc=CancelledError())
                return
            self._attempt += 1
            job = numbered(self._job, self._attempt, self._policy.retries + 1)
            try:
                self._current = self._pool.submit(job, self._on_start)
            except BaseException as exc:  # e.g. the pool is shut down
                if self._attempt == 1:
                    self._unclaim()
                self._settle(exc=exc)
                return
        self._current.add_done_callback(self._done)

    def _unclaim(self) -> None:
        """The first attempt will not run: its run, if claimed ahead, is recorded cancelled."""
        claim = self._job.claim
        if claim is not None:
            use_settings(self._job.settings).fail_quietly(claim, CancelledError(), duration=None,
                                                         cancelled=True)

    def _done(self, inner: Future) -> None:
        if inner.cancelled() and self._attempt == 1:  # never started
            self._unclaim()
        exc = CancelledError() if inner.cancelled() else inner.exception()
        if exc is None:
            self._settle(result=inner.result())
            return
        delay = None if self._stopping else self._policy.wait_before(self._attempt + 1, exc)
        if delay is None:
            self._settle(exc=exc)
            return
        if self._progress is not None and self._running:
            self._progress.retrying()
        self._running = False
        timer = threading.Timer(delay, self._submit)
        timer.daemon = True
        timer.start()

    def _settle(self, *, result: Any = None, exc: BaseException | None = None) -> None:
        if self._progress is not None:
            if not self._running:
                self._progress.started()
            self._progress.finished(failed=exc is not None)
        self._running = False
        if self._future.done():
            return
        if exc is None:
            self._future.set_result(result)
        elif isinstance(exc, CancelledError) and Future.cancel(self._future):
            pass  # not started: plainly cancelled
        else:
            self._future.set_exception(exc)

    def cancel_queued(self) -> None:
        """No further attempt, and the current one cancelled if it has not started (first,
        for every call of a sweep, so no queued call starts while running ones stop)."""
        self._stopping = True
        current = self._current
        if current is not None:
            current.cancel()

    def _stop(self) -> bool:
        """Cancel: no further attempt, and the current one cancelled, or stopped if the pool
        can (waiting until its run is recorded). False if it runs on and will finish."""
        self._stopping = True
        current = self._current
        if current is None or current.done() or current.cancel():
            return True  # nothing runs now, and no attempt will start
        if not self._pool.stop(current):
            return False
        with contextlib.suppress(BaseException):
            current.exception(timeout=30)
        return True


def run_sweep(jobs: Sequence[Job], pool: Pool, policy: RetryPolicy,
              progress: SweepProgress) -> list[Any]:
    """Run every job on ``pool`` and return their values in order. On this process's
    threads the runs are claimed ahead (see claim_ahead: the first ``pool.workers`` points,
    then the others, one transaction each), their leases kept alive while they wait their
    turn. The first error is raised once every job has ended (so no run is left behind
    unrecorded); an interruption (KeyboardInterrupt) cancels what has not started (a run
    claimed ahead for it is recorded cancelled), stops what runs where the pool can, and
    is re-raised."""
    jobs = list(jobs)
    futures = [TaskFuture() for _ in jobs]
    drivers: list[Attempts] = []
    runner = use_settings(jobs[0].settings) if jobs and pool.in_process else None
    held: list[Claim] = []

    def start(job: Job, future: TaskFuture) -> None:
        driver = Attempts(job, pool, policy, future, progress)
        drivers.append(driver)
        driver.start()

    try:
        waiting = list(range(len(jobs)))
        if runner is not None:
            # the first points are claimed on their own, so the workers start on them while
            # the others are claimed; every point claimed here is queued before any point
            # left to wait for another process, so sweeps in two processes never wait for
            # each other's queued points
            first = min(len(jobs), max(1, pool.workers))
            waiting = []
            for chunk in (range(first), range(first, len(jobs))):
                try:
                    claimed = claim_ahead([jobs[i] for i in chunk], policy)
                except CatalogUnavailableError:  # the workers will say so themselves
                    claimed = [jobs[i] for i in chunk]
                for i, job in zip(chunk, claimed, strict=True):
                    jobs[i] = job
                    if job.claim is None:
                        waiting.append(i)
                        continue
                    runner.leases.hold([job.claim])
                    held.append(job.claim)
                    start(job, futures[i])
        for i in waiting:
            start(jobs[i], futures[i])
        return _gather(drivers, futures)
    except KeyboardInterrupt:
        _interrupted(drivers)
        raise
    finally:
        if runner is not None:
            runner.leases.release(held)


def _interrupted(drivers: list[Attempts]) -> None:
    """Cancel what has not started, stop what runs where the pool can, and wait (a while)
    for every call to be recorded."""
    for driver in drivers:
        driver.cancel_queued()
    for driver in drivers:
        driver.future.cancel()
    for future in (driver.future for driver in drivers):
        try:
            future.exception(timeout=30)
        except (CancelledError, TimeoutError):
            pass


def _gather(drivers: list[Attempts], futures: list[TaskFuture]) -> list[Any]:
    """Wait for every future of a sweep (see run_sweep); their values in order."""
    for future in futures:
        try:
            future.exception()  # waits
        except CancelledError:
            pass
    for future in futures:
        if future.cancelled():
            raise CancelledError()
        if future.exception() is not None:
            raise future.exception()
    return [future.result() for future in futures]
