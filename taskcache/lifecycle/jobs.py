"""One miss of a function task, executed wherever it is sent: the caller, a thread, a worker
process or a Dask worker.

The caller fingerprints and describes the call (``RunSpec``) and looks for a hit; only a miss
becomes a :class:`Job`. The worker does not hash again: it claims the run with the caller's
spec (single-flight: if another process computes the same fingerprint, it waits and returns
that result), runs the function with the run marked current (so nested tasks record it as
their parent), keeps the lease alive, and saves the result into the same catalog.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from taskcache.config import Settings
from taskcache.errors import (
    CacheWarning,
    CatalogError,
    StoreError,
    TaskTimeoutError,
    UnstorableValueError,
)
from taskcache.lifecycle import random_state
from taskcache.lifecycle.runner import Hit, Runner, current_run_id, print_waiting, use_settings
from taskcache.lifecycle.tracking import tracking
from taskcache.records import ALIASING, RANDOM_STATE, RETURN, Claim, RunRecord, RunSpec

__all__ = ["Job", "Outcome", "claim_job", "draws_match", "execute_job", "executing",
           "recorded_here", "run_job", "run_pickled", "time_limit"]


@dataclass
class Outcome:
    """What the body of :func:`executing` produced."""

    result: Any = None


@dataclass
class Job:
    """Everything a worker needs to claim, run and record one call without re-hashing it.

    ``spec`` is complete (environment and source filled in by the caller); ``fn`` is the
    user's function itself, not the ``@task`` wrapper. ``timeout`` is enforced by the
    executor that runs the job (see :mod:`taskcache.lifecycle.executors`).
    """

    spec: RunSpec
    fn: Callable[..., Any]
    args: tuple
    kwargs: dict
    settings: Settings
    force: bool = False
    timeout: float | None = None
    attempt: int = 1
    attempts: int = 1
    #: result -> (outputs to store, why it must not be cached); default: the return value
    outputs_of: Callable[[Any], tuple[dict[str, Any], list[str]]] | None = None
    #: record the files the run reads and writes (issue 12); ``files``: declared ones,
    #: always recorded; ``named``: absolute paths its arguments and code name (path_values)
    track_files: bool = False
    files: tuple[str | os.PathLike[str], ...] = ()
    named: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    #: the run already claimed for this job by the caller (a sweep on threads claims its
    #: points ahead, many in one transaction); None: the worker claims it
    claim: Claim | None = None
    #: the global random generators the function seeds before it could draw from them
    #: (analysis.function_seeds): what the run finds in them does not matter
    seeds: tuple[str, ...] = ()

    @property
    def task(self) -> str:
        return self.spec.task


@contextlib.contextmanager
def executing(runner: Runner, claim: Claim, task: str,
              outputs_of: Callable[[Any], tuple[dict[str, Any], list[str]]] | None = None,
              *, track_files: bool = False, files: Sequence[str | os.PathLike[str]] = (),
              named: Iterable[str] = (), seeds: Iterable[str] = (),
              source: str = "") -> Iterator[Outcome]:
    """Mark the claimed run current, keep its lease alive, and record how the body ended:
    failed (reason "timeout" for a TaskTimeoutError) or cancelled on an exception, which is
    re-raised unchanged; else completed with the outputs ``outputs_of(outcome.result)``
    gives (default: the return value). If it names problems (a change to an argument that
    a hit could not replay), the run is failed "not cached" instead, with a warning; a
    value that cannot be cached only warns. The files the body reads and writes are
    recorded with the run when ``track_files`` (and the declared ``files`` always; see
    :func:`taskcache.lifecycle.tracking.tracking`). What the body does to the global random
    generators is stored too (see :mod:`taskcache.lifecycle.random_state`; ``seeds``: those
    the function seeds first, ``source``: its code)."""
    token = current_run_id.set(claim.run_id)
    generators, fresh = random_state.snapshot(), random_state.fresh_generators()
    known = random_state.knowable()
    started = time.perf_counter()
    outcome = Outcome()
    try:
        with runner.heartbeat(claim), tracking(
            enabled=track_files, declared=files, named=named,
            cache_dir=runner.settings.cache_dir,
        ) as recorded:
            yield outcome
    except BaseException as exc:  # the user's own error: recorded if possible, raised as is
        runner.fail_quietly(claim, exc, duration=time.perf_counter() - started,
                            cancelled=isinstance(exc, KeyboardInterrupt | asyncio.CancelledError),
                            reason="timeout" if isinstance(exc, TaskTimeoutError) else None)
        raise
    finally:
        current_run_id.reset(token)
    duration = time.perf_counter() - started
    outputs, problems = ({RETURN: outcome.result}, []) if outputs_of is None else \
        outputs_of(outcome.result)
    drawn = random_state.changes(generators, random_state.snapshot(), seeds, fresh, source,
                                 known=known)
    random_state.settle(drawn)
    if drawn:
        outputs[RANDOM_STATE] = drawn
    if problems:  # a hit would not leave the caller's objects as this run did
        reason = "; ".join(problems)
        runner.fail_quietly(claim, RuntimeError(reason), duration=duration,
                            reason=f"not cached: {reason}")
        warnings.warn(f"taskcache: {task}: result not cached: {reason}; return the changed "
                      "value instead", CacheWarning, stacklevel=4)
        return
    try:
        runner.save(claim, task, outputs, duration=duration, files=recorded.result(),
                    record=False)
    except (UnstorableValueError, StoreError, CatalogError) as exc:
        warnings.warn(f"taskcache: {task}: result not cached: {exc}", CacheWarning, stacklevel=4)


@contextlib.contextmanager
def time_limit(task: str, seconds: float | None) -> Iterator[None]:
    """Raise TaskTimeoutError in the body after ``seconds``, through SIGALRM: only in the
    main thread of a process on a platform that has it (not Windows); elsewhere the body runs
    unlimited, as Python cannot stop a thread. C code that never returns to the interpreter
    is not interrupted either (the process executor kills its worker instead)."""
    usable = (seconds is not None and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise TaskTimeoutError(task, seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def draws_match(runner: Runner, *, known: bool) -> Callable[[RunRecord], bool]:
    """A lookup's ``prepare``: whether a completed run found the global random generators
    as a call would find them (see :func:`taskcache.lifecycle.random_state.matches`)."""
    return functools.partial(random_state.run_matches, load=runner.load_artifact, known=known)


def recorded_here(spec: RunSpec) -> RunSpec:
    """``spec`` as run by this process: lease takeover and timeouts go by its pid."""
    return dataclasses.replace(spec, env={**spec.env, "pid": os.getpid(),
                                          "host": socket.gethostname()})


def claim_job(job: Job, prepare: Callable[[RunRecord], bool] | None = None) -> Claim | Hit:
    """The run claimed for ``job`` by its caller, else claim it in this process's name, or
    (single-flight) the Hit of another process that computed the same fingerprint
    meanwhile (``prepare``: Runner.lookup's). CatalogUnavailableError when the catalog
    cannot be written."""
    if job.claim is not None:
        return job.claim
    runner = use_settings(job.settings)
    spec = recorded_here(job.spec)
    return runner.start(spec) if job.force else runner.acquire(spec, on_wait=print_waiting,
                                                               prepare=prepare)


def execute_job(job: Job, claim: Claim, *, enforce_timeout: bool = False) -> Any:
    """Run the claimed ``job`` and record it; returns the function's value, or raises its
    exception once the run is recorded failed. ``enforce_timeout``: limit the run with
    :func:`time_limit` (a plain call; executors enforce timeouts themselves)."""
    runner = use_settings(job.settings)
    with executing(runner, claim, job.task, job.outputs_of, track_files=job.track_files,
                   files=job.files, named=job.named, seeds=job.seeds,
                   source=job.spec.source) as outcome:
        with time_limit(job.task, job.timeout if enforce_timeout else None):
            outcome.result = job.fn(*job.args, **job.kwargs)
    return outcome.result


def run_job(job: Job) -> Any:
    """Claim, run and record ``job`` in this process (what a worker does); returns the
    function's value, or the value another process computed for the same fingerprint."""
    # a worker cannot know the generators' state a call on the caller's side would find
    acquired = claim_job(job, draws_match(use_settings(job.settings), known=False))
    if isinstance(acquired, Hit):
        # its changes to the arguments would have to be replayed into the caller's
        # objects, which a worker does not hold; and a worker cannot know the state of the
        # generators a call on the caller's side would find: when in doubt, compute
        if ALIASING not in acquired.outputs and random_state.matches(
                acquired.outputs.get(RANDOM_STATE), known=False):
            return acquired.outputs[RETURN]
        acquired = claim_job(dataclasses.replace(job, force=True))
    return execute_job(job, acquired)


def run_pickled(payload: bytes) -> bytes:
    """:func:`run_job` for a job serialized by value with cloudpickle (functions defined in a
    notebook included); the value comes back the same way. What worker processes run."""
    import cloudpickle

    return cloudpickle.dumps(run_job(cloudpickle.loads(payload)))
