"""The one error tree of taskcache.

Every message names the thing that went wrong and the way out::

    TaskcacheError (Exception)
    ├── ConfigError (+ ValueError)            bad setting, unreadable pyproject section
    ├── FingerprintError (+ TypeError)        a value or function that cannot be hashed
    ├── UnstorableValueError (+ TypeError)    an output no codec can store
    ├── StoreError (+ OSError)                artifact files
    │   ├── UnsafePathError (+ ValueError)    a name that would escape the store root
    │   ├── MissingArtifactError              an artifact file that is gone
    │   ├── CorruptArtifactError              size or checksum does not match the catalog
    │   └── PickleDisabledError               a pickled artifact while allow_pickle is off
    ├── UnknownCodecError (+ KeyError)        an artifact written by a codec not registered here
    ├── RepeatedlyAbandonedError              a run whose process keeps dying; not retried
    ├── TaskTimeoutError (+ TimeoutError)     a run stopped after its @task(timeout=...)
    ├── WorkerDiedError                       the worker process running a task died
    ├── FlowError (+ ValueError)              a flow file or Flow(...) that cannot run
    └── CatalogError                          the SQLite/SQLAlchemy catalog
        ├── RunNotFoundError (+ KeyError)
        │   └── RunDeletedError               a run deleted (gc, clear) while it was running
        ├── InvalidTransitionError            e.g. completed -> running
        ├── LeaseLostError                    completion by a process that no longer owns the run
        ├── SchemaVersionError                catalog written by a newer taskcache
        └── CatalogUnavailableError           locked past the busy timeout, disk full, I/O error
            └── CatalogDamagedError           not a database, or a malformed (truncated) one
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "CacheWarning",
    "TaskcacheError",
    "ConfigError",
    "FingerprintError",
    "UnstorableValueError",
    "StoreError",
    "UnsafePathError",
    "MissingArtifactError",
    "CorruptArtifactError",
    "PickleDisabledError",
    "UnknownCodecError",
    "RepeatedlyAbandonedError",
    "TaskTimeoutError",
    "WorkerDiedError",
    "FlowError",
    "CatalogError",
    "RunNotFoundError",
    "RunDeletedError",
    "InvalidTransitionError",
    "LeaseLostError",
    "SchemaVersionError",
    "CatalogUnavailableError",
    "CatalogDamagedError",
]


class TaskcacheError(Exception):
    """Base class of every error taskcache raises on purpose."""


class ConfigError(TaskcacheError, ValueError):
    """A setting has a value taskcache cannot use."""


class FingerprintError(TaskcacheError, TypeError):
    """A value that cannot be hashed by content.

    ``name`` is the argument or variable, ``type_name`` the qualified type of the value.
    """

    def __init__(self, name: str | None, type_name: str, reason: str = "") -> None:
        self.name = name
        self.type_name = type_name
        self.reason = reason
        what = f"{name!r} " if name else "a value "
        detail = f" ({reason})" if reason else ""
        super().__init__(
            f"taskcache cannot hash {what}of type {type_name}{detail}. "
            f"Leave it out of the key with ignore=[{name or '...'!r}] (or --ignore {name or 'NAME'} "
            f"in %%task), or teach taskcache how to hash it with "
            f"taskcache.register_hasher({type_name.rsplit('.', 1)[-1]}, fn)."
        )


class UnstorableValueError(TaskcacheError, TypeError):
    """An output value that no registered codec can store."""

    def __init__(self, name: str | None, type_name: str, reason: str = "") -> None:
        self.name = name
        self.type_name = type_name
        self.reason = reason
        what = f"output {name!r}" if name else "a value"
        detail = f" ({reason})" if reason else ""
        super().__init__(
            f"taskcache cannot store {what} of type {type_name}{detail}. "
            f"Leave it out of the outputs (--outputs in %%task), or register a codec for it "
            f"with taskcache.register_codec(...)."
        )


class StoreError(TaskcacheError, OSError):
    """A problem with an artifact file."""


class UnsafePathError(StoreError, ValueError):
    """A name or path that would resolve outside the store root."""

    def __init__(self, name: str, reason: str = "escapes the store root") -> None:
        self.name = name
        super().__init__(f"refusing unsafe artifact name {name!r}: {reason}")


class MissingArtifactError(StoreError):
    """An artifact the catalog knows about is not on disk."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"artifact file {path} is missing; the run will be recomputed")


class CorruptArtifactError(StoreError):
    """An artifact whose size or checksum does not match what the catalog recorded."""

    def __init__(self, path: str, expected: str, actual: str) -> None:
        self.path = path
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"artifact file {path} is corrupt (expected {expected}, found {actual}); "
            f"it will not be loaded and the run will be recomputed"
        )


class PickleDisabledError(StoreError):
    """Loading this artifact would unpickle it, and ``allow_pickle`` is off."""


class UnknownCodecError(TaskcacheError, KeyError):
    """An artifact was written by a codec that is not registered in this process."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"artifact was written by codec {name!r} which is not registered in this "
            f"process; register it with taskcache.register_codec(...) or recompute the run"
        )

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class RepeatedlyAbandonedError(TaskcacheError):
    """The same run was abandoned (its process died: lease expired) too many times in a row;
    taskcache stops retrying it automatically. ``run_ids`` are the abandoned runs."""

    def __init__(self, task: str, fingerprint: str, run_ids: Sequence[int]) -> None:
        self.task = task
        self.fingerprint = fingerprint
        self.run_ids = tuple(run_ids)
        runs = ", ".join(f"#{i}" for i in self.run_ids)
        super().__init__(
            f"run of task {task} (fingerprint {fingerprint[:16]}) was abandoned "
            f"{len(self.run_ids)} times (runs {runs}: the process died while computing it, "
            f"e.g. out of memory); not retrying automatically. Use --force / .force() to "
            f"try again"
        )


class TaskTimeoutError(TaskcacheError, TimeoutError):
    """A run took longer than its ``@task(timeout=...)``; it was stopped and recorded failed
    with reason "timeout"."""

    def __init__(self, task: str, timeout: float) -> None:
        self.task = task
        self.timeout = timeout
        super().__init__(f"{task} did not finish within its timeout of {timeout:g} s; it was "
                         f"stopped. Raise @task(timeout=...) if it needs longer")


class WorkerDiedError(TaskcacheError):
    """The worker process running a task exited (killed, out of memory, a crash)."""

    def __init__(self, task: str, exitcode: int | None) -> None:
        self.task = task
        self.exitcode = exitcode
        super().__init__(f"the worker process running {task} died (exit code {exitcode}); "
                         f"the run was recorded failed. Re-run to try again")


class FlowError(TaskcacheError, ValueError):
    """A flow that cannot run: unknown function, cycle, missing step, arguments that do not
    fit the function's signature, a malformed file. Raised before any step runs."""


class CatalogError(TaskcacheError):
    """A problem with the run catalog database."""


class RunNotFoundError(CatalogError, KeyError):
    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        super().__init__(f"no run #{run_id} in the catalog; list runs with taskcache.runs()")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class RunDeletedError(RunNotFoundError):
    """The run was deleted from the catalog (by ``gc``, ``clear()`` or the run browser,
    maybe in another process) while its code ran; its result could not be recorded."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        KeyError.__init__(
            self, f"run #{run_id} was deleted from the catalog while it ran (by gc, clear() "
                  f"or the run browser, maybe in another process); its result was not cached")


class InvalidTransitionError(CatalogError):
    def __init__(self, run_id: int, current: str, requested: str) -> None:
        self.run_id = run_id
        self.current = current
        self.requested = requested
        super().__init__(f"run #{run_id} cannot go from {current} to {requested}")


class LeaseLostError(CatalogError):
    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        super().__init__(
            f"run #{run_id} is no longer owned by this process (its lease expired and another "
            f"process took it over); the result was not recorded"
        )


class SchemaVersionError(CatalogError):
    def __init__(self, found: int, supported: int, url: str) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"the catalog at {url} has schema version {found}, newer than this taskcache "
            f"understands ({supported}); upgrade taskcache (pip install -U taskcache) or point "
            f"TASKCACHE_DIR at another folder"
        )


class CatalogUnavailableError(CatalogError):
    """The catalog database cannot be read or written right now: locked by another process
    beyond the busy timeout, disk full, I/O error, file that cannot be opened, server gone.
    Nothing is wrong with the user's code: ``@task`` and ``%%task`` run it without the cache
    and warn. ``location`` names the catalog, ``cause`` is the database's own message."""

    def __init__(self, location: str, cause: str, advice: str) -> None:
        self.location = location
        self.cause = cause
        super().__init__(f"the catalog {location} cannot be used: {cause}; {advice}")


class CatalogDamagedError(CatalogUnavailableError):
    """The catalog file is not a database, or a damaged one (truncated, overwritten): it
    stays unusable until it is moved aside; ``taskcache verify`` reports it."""


class CacheWarning(UserWarning):
    """Something went wrong with caching; the user's code and result are unaffected."""
