"""``@task``: cache a function's return value by its code and the content of its arguments."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import inspect
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar, overload

from taskcache.analysis import function_seeds
from taskcache.describe import short_repr, type_name
from taskcache.errors import CacheWarning, CatalogUnavailableError, FingerprintError
from taskcache.hashing import hash_code, hash_value, key_of_inputs, module_versions
from taskcache.lifecycle import random_state
from taskcache.lifecycle.aliasing import (
    can_restore_in_place,
    find_views,
    rebuild_views,
    restore_in_place,
)
from taskcache.lifecycle.jobs import (
    Job,
    Outcome,
    claim_job,
    draws_match,
    execute_job,
    executing,
)
from taskcache.lifecycle.progress import SweepProgress
from taskcache.lifecycle.runner import Hit, current_run_id, get_runner
from taskcache.lifecycle.sweeps import RetryPolicy, TaskFuture, numbered
from taskcache.lifecycle.tracking import path_values
from taskcache.records import (
    ALIASING,
    ARGUMENT,
    RANDOM_STATE,
    RETURN,
    Claim,
    InputRecord,
    RunRecord,
    RunSpec,
    check_label,
)

if TYPE_CHECKING:
    import pandas as pd

    from taskcache.api import Run

F = TypeVar("F", bound=Callable[..., Any])


class _Call:
    """One call's fingerprint; the run spec (type names, reprs) is built only on a miss."""

    __slots__ = ("runner", "fingerprint", "hashed", "rerun", "_definition", "_code_hash", "_parent")

    def __init__(self, definition: TaskDefinition, code_hash: str,
                 hashed: list[tuple[str, Any, str]], fingerprint: str) -> None:
        self.runner = get_runner()
        self.fingerprint = fingerprint
        self._definition = definition
        self._code_hash = code_hash
        self.hashed = hashed  # (parameter, value, value hash)
        self.rerun = False  # a run exists, but a hit could not replay it into today's objects
        self._parent = current_run_id.get()

    def arguments(self) -> dict[str, Any]:
        """The hashed arguments under their output names (``argument:<parameter>``)."""
        return _arguments(self.hashed)

    def spec(self) -> RunSpec:
        d = self._definition
        inputs = tuple(InputRecord(name=name, value_hash=value_hash, type_name=type_name(value),
                                   repr=short_repr(value))
                       for name, value, value_hash in self.hashed)
        return RunSpec(task=d.name, kind="function", fingerprint=self.fingerprint,
                       code_hash=self._code_hash, tags=d.tags, user_version=d.version,
                       inputs=inputs, parent_run_id=self._parent)


@functools.lru_cache(maxsize=512)
def _keyer(name: str, code_hash: str, version: str) -> Callable[[dict[str, str]], str]:
    # kept here, not on the definition: a cell that calls the task hashes the wrapper, and so
    # the definition, before and after the call, and remembered state would look like a change
    return key_of_inputs({"task": name, "kind": "function", "code": code_hash,
                          "version": version})


class TaskDefinition:
    """What ``@task`` knows about one function; the wrapper delegates here."""

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None, version: str | None,
        ignore: Iterable[str], tags: Iterable[str], cache: bool,
        retry: RetryPolicy | None = None, timeout: float | None = None,
        track_files: bool = True, files: Iterable[str | os.PathLike[str]] = (),
    ) -> None:
        self.fn = fn
        self.track_files = track_files
        if isinstance(files, str | os.PathLike):
            files = [files]
        self.files = tuple(files)
        self.name = check_label(name if name is not None else default_task_name(fn),
                                "task name")
        self.version = None if version is None else check_label(str(version), "task version")
        self.ignore = frozenset(ignore)
        self.tags = tuple(check_label(tag, "tag") for tag in tags)
        self.cache = cache
        self.retry = retry or RetryPolicy()
        if timeout is not None and timeout <= 0:
            raise ValueError(f"@task(timeout=...) must be a positive number of seconds, got {timeout}")
        self.timeout = timeout
        self.signature = inspect.signature(fn)
        params = self.signature.parameters.values()
        #: parameter names when a call with all of them positional binds them in order
        #: (the hit path skips Signature.bind then); None when the signature needs bind
        self._in_order: tuple[str, ...] | None = tuple(self.signature.parameters) if all(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params) else None
        unknown = self.ignore - self.signature.parameters.keys()
        if unknown:
            raise ValueError(
                f"@task(ignore=...) names {', '.join(sorted(unknown))}, which "
                f"{self.name}() has no parameter for; parameters: {', '.join(self.signature.parameters)}"
            )

    # -- fingerprint ----------------------------------------------------------------------
    def prepare(self, args: tuple, kwargs: dict, *, code_hash: str | None = None,
                key: Callable[[dict[str, str]], str] | None = None) -> _Call:
        """Fingerprint one call; ``code_hash``: the function's, already computed, and
        ``key``: :meth:`key_of` it (a sweep hashes the code, and encodes the rest of the
        key, once for all its points)."""
        if not kwargs and self._in_order is not None and len(args) == len(self._in_order):
            arguments: Iterable[tuple[str, Any]] = zip(self._in_order, args, strict=True)
        else:
            bound = self.signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = bound.arguments.items()
        hashed = [(pname, value, hash_value(value, name=pname))
                  for pname, value in arguments if pname not in self.ignore]
        code_hash = code_hash or hash_code(self.fn)
        inputs = {pname: value_hash for pname, _, value_hash in hashed}
        fingerprint = (key or self.key_of(code_hash))(inputs)
        return _Call(self, code_hash, hashed, fingerprint)

    def key_of(self, code_hash: str) -> Callable[[dict[str, str]], str]:
        """The fingerprint of a call of this function's code ``code_hash``, as a function
        of its input hashes by parameter name (see hashing.key_of_inputs)."""
        return _keyer(self.name, code_hash, self.version or "")

    def lookup_value(self, call: _Call, *, pooled: bool = False) -> tuple[bool, Any]:
        """``(True, value)`` on a hit, after replaying what the run did to its arguments
        and to the global random generators; ``(False, None)`` on a miss (``call.rerun`` set
        when a run exists but its changes to the arguments cannot be replayed into today's
        objects). Among the completed runs of the key, only one that found the generators
        as they are now serves; ``pooled``: the call would run on a pool (``submit``),
        whose worker's generators the caller cannot know (see
        :mod:`taskcache.lifecycle.random_state`)."""
        if not self.cache:
            return False, None
        hit = call.runner.lookup(call.fingerprint, prepare=_draws_match(call, pooled=pooled))
        return self._value_of(call, hit, pooled=pooled)

    def lookup_values(self, calls: list[_Call]) -> list[tuple[bool, Any]]:
        """:meth:`lookup_value` of a sweep's calls (on a pool: ``pooled``), their runs read
        in one statement."""
        if not self.cache or not calls:
            return [(False, None)] * len(calls)
        hits = calls[0].runner.lookup_many([call.fingerprint for call in calls],
                                           prepare=_draws_match(calls[0], pooled=True))
        return [self._value_of(call, hit, pooled=True)
                for call, hit in zip(calls, hits, strict=True)]

    def _value_of(self, call: _Call, hit: Hit | None, *, pooled: bool) -> tuple[bool, Any]:
        if hit is None or RETURN not in hit.outputs:
            return False, None
        return self.from_hit(call, hit.outputs, pooled=pooled)

    def from_hit(self, call: _Call, outputs: dict[str, Any], *, pooled: bool = False,
                 ) -> tuple[bool, Any]:
        """The return value of a hit, with the arguments the run changed in place changed
        the same way in the caller's objects and returned views rebuilt over them, and the
        global random generators left as the run left them (not for a ``pooled`` call: a
        worker's are not the caller's). ``(False, None)`` when the run found the
        generators in another state than they are now (see :meth:`lookup_value`)."""
        drawn = None if pooled else outputs.get(RANDOM_STATE)  # to leave as the run did
        if RANDOM_STATE in outputs and not random_state.matches(
                outputs[RANDOM_STATE], known=not pooled and random_state.knowable()):
            return False, None
        aliasing = outputs.get(ALIASING)
        if aliasing is None:
            if drawn is not None:
                random_state.apply(drawn)
            return True, outputs[RETURN]
        given = call.arguments()
        pairs = [(given[name], outputs[name]) for name in aliasing["in_place"]]
        views = rebuild_views(aliasing["views"], given, outputs)
        if views is None or not all(can_restore_in_place(t, v) for t, v in pairs):
            call.rerun = True
            return False, None
        for target, value in pairs:
            restore_in_place(target, value)
        if drawn is not None:
            random_state.apply(drawn)
        return True, views.get(RETURN, outputs[RETURN])

    def aliasing_outputs(self, call: _Call, result: Any) -> tuple[dict[str, Any], list[str]]:
        """The outputs to store for one call: the return value, the arguments it changed
        in place and which returned arrays view an argument; and why a hit could not replay
        the call (an argument of a type that cannot be written back in place)."""
        return self.outputs_of(call.hashed, result)

    def outputs_of(self, hashed: list[tuple[str, Any, str]], result: Any,
                   ) -> tuple[dict[str, Any], list[str]]:
        """:meth:`aliasing_outputs` over the hashed arguments (parameter, value, hash), so
        a worker can compute it beside its own copies of the arguments."""
        outputs: dict[str, Any] = {RETURN: result}
        given = _arguments(hashed)
        changed, problems = [], []
        for pname, value, value_hash in hashed:
            try:
                same = hash_value(value, name=pname) == value_hash
            except FingerprintError:
                same = False
            if same:
                continue
            if can_restore_in_place(value, value):
                changed.append(ARGUMENT + pname)
                outputs[ARGUMENT + pname] = value
            else:
                problems.append(f"{self.name}() changes its argument {pname!r} "
                                f"({type_name(value)}) in place, which a hit cannot replay")
        values = {**given, RETURN: result}
        trusted = [name for name in given if name not in changed]
        views, sharing = find_views(values, [RETURN, *changed], trusted, changed)
        if changed or views:
            outputs[ALIASING] = {"in_place": changed, "views": views}
        return outputs, problems + sharing

    # -- execution ------------------------------------------------------------------------
    def described(self) -> tuple[dict[str, Any], str]:
        """The environment and the source a run of this function records."""
        from taskcache.lifecycle.environment import capture_environment

        return (capture_environment(module_versions(self.fn), path=_source_file(self.fn)),
                _source_of(self.fn))

    def run_spec(self, call: _Call, described: tuple[dict[str, Any], str] | None = None,
                 ) -> RunSpec:
        """The catalog's description of a run of ``call``: inputs, source, environment
        (``described``: those two, already captured for a sweep's calls)."""
        env, source = described or self.described()
        return dataclasses.replace(call.spec(), env=dict(env), source=source)

    def job(self, call: _Call, args: tuple, kwargs: dict, *, force: bool,
            described: tuple[dict[str, Any], str] | None = None) -> Job:
        """The miss of ``call`` as a Job that any executor can run (and that records what
        the call changes in its arguments and in the global random generators, like a call
        here)."""
        spec = self.run_spec(call, described)
        return Job(spec, self.fn, args, kwargs, call.runner.settings,
                   force=force or not self.cache or call.rerun, timeout=self.timeout,
                   outputs_of=functools.partial(self.outputs_of, call.hashed),
                   track_files=self.track_files, files=self.files,
                   named=self.named_paths(call), seeds=function_seeds(spec.source))

    def plain_job(self, call: _Call, args: tuple, kwargs: dict, *, force: bool) -> Job:
        """:meth:`job` for a call that runs here, in the caller: its run also records what
        it finds in the random generators (for ``why``: fresh entropy or a seeded state)."""
        job = self.job(call, args, kwargs, force=force)
        env = {**job.spec.env, "random_state": random_state.found()}
        return dataclasses.replace(job, spec=dataclasses.replace(job.spec, env=env))

    def executing(self, call: _Call, claim: Claim) -> contextlib.AbstractContextManager[Outcome]:
        """Run the body as the claimed run of ``call`` and record how it ended, with what it
        changed in its arguments and the random generators, and the files it read and wrote
        (see :func:`taskcache.lifecycle.jobs.executing`)."""
        source = _source_of(self.fn)
        return executing(call.runner, claim, self.name,
                         outputs_of=functools.partial(self.outputs_of, call.hashed),
                         track_files=self.track_files, files=self.files,
                         named=self.named_paths(call), seeds=function_seeds(source),
                         source=source)

    def named_paths(self, call: _Call) -> tuple[str, ...]:
        """The paths the function's arguments and string literals name (see
        :func:`taskcache.lifecycle.tracking.path_values`): their state before the run counts
        as read, or, when the run creates them, as written."""
        if not self.track_files:
            return ()
        return tuple(path_values([self.fn, *(value for _, value, _ in call.hashed)]))

    def _warn_uncached(self, exc: CatalogUnavailableError) -> None:
        """The catalog cannot be reached or written: say so once; the caller runs the
        function without the cache."""
        warnings.warn(f"taskcache: {self.name} ran without the cache: {exc}", CacheWarning,
                      stacklevel=4)

    def call_sync(self, args: tuple, kwargs: dict, *, force: bool = False) -> Any:
        unavailable: CatalogUnavailableError | None = None
        try:
            call = self.prepare(args, kwargs)
            found, value = (False, None) if force else self.lookup_value(call)
            if found:
                return value
            job = self.plain_job(call, args, kwargs, force=force)
        except CatalogUnavailableError as exc:
            unavailable = exc
        attempts = self.retry.retries + 1
        attempt = 1
        while True:
            if unavailable is not None:
                # called outside the except block: the user's own error must not be shown as
                # raised "during handling of" ours
                self._warn_uncached(unavailable)
                return self.fn(*args, **kwargs)
            this = numbered(job, attempt, attempts)
            try:
                acquired = claim_job(this, _draws_match(call))
            except CatalogUnavailableError as exc:
                unavailable = exc
                continue
            if isinstance(acquired, Hit):  # computed meanwhile by another process
                found, value = self.from_hit(call, acquired.outputs)
                if found:
                    return value
                # it cannot be replayed here, or it found the generators in another state
                job = dataclasses.replace(job, force=True)
                continue
            try:
                return execute_job(this, acquired, enforce_timeout=True)
            except Exception as exc:
                attempt += 1
                delay = self.retry.wait_before(attempt, exc)
                if delay is None:
                    raise
                time.sleep(delay)

    async def call_async(self, args: tuple, kwargs: dict, *, force: bool = False) -> Any:
        try:
            call = self.prepare(args, kwargs)
            found, value = (False, None) if force else self.lookup_value(call)
            if found:
                return value
            job = self.plain_job(call, args, kwargs, force=force)
            acquired: Claim | Hit | CatalogUnavailableError = await asyncio.to_thread(
                claim_job, job, _draws_match(call))  # may wait
        except CatalogUnavailableError as exc:
            acquired = exc
        if isinstance(acquired, CatalogUnavailableError):  # outside the except: see call_sync
            self._warn_uncached(acquired)
            return await self.fn(*args, **kwargs)
        if isinstance(acquired, Hit):
            found, value = self.from_hit(call, acquired.outputs)
            if found:
                return value
            acquired = await asyncio.to_thread(claim_job, dataclasses.replace(job, force=True))
        with self.executing(call, acquired) as outcome:
            outcome.result = await self.fn(*args, **kwargs)
        return outcome.result

    # -- sweeps ---------------------------------------------------------------------------
    def map(self, *iterables: Iterable[Any], executor: Any = None, max_workers: int | None = None,
            progress: bool = True) -> list[Any]:
        """``[f(*args) for args in zip(*iterables)]``, hits served here, misses on
        ``executor`` (default: the ``executor`` setting)."""
        from taskcache.lifecycle.progress import open_progress
        from taskcache.lifecycle.sweeps import run_sweep

        code_hash = hash_code(self.fn)
        key = self.key_of(code_hash)
        calls = [(args, self.prepare(args, {}, code_hash=code_hash, key=key))
                 for args in zip(*iterables, strict=True)]
        results: list[Any] = [None] * len(calls)
        bar = open_progress(len(calls), title=self.name, show=progress)
        try:
            misses: list[int] = []
            looked_up = self.lookup_values([call for _, call in calls])
            for index, (found, value) in enumerate(looked_up):
                if found:
                    results[index] = value
                    bar.hit()
                else:
                    misses.append(index)
            if misses:
                described = self.described()
                jobs = [self.job(calls[i][1], calls[i][0], {}, force=False, described=described)
                        for i in misses]
                pool = _pool(executor, max_workers)
                for index, value in zip(misses, run_sweep(jobs, pool, self.retry, bar), strict=True):
                    results[index] = value
        finally:
            bar.close()
        return results

    def submit(self, args: tuple, kwargs: dict, *, executor: Any = None,
               max_workers: int | None = None, progress: SweepProgress | None = None,
               ) -> TaskFuture:
        """One call on ``executor``, as a future; futures among the arguments are waited
        for first and replaced by their results. ``progress`` is told of a hit, the start
        and the end (a flow watches its steps this way)."""
        future = TaskFuture()
        dependencies = [v for v in (*args, *kwargs.values()) if isinstance(v, Future)]
        parent = current_run_id.get()
        launched = threading.Lock()

        def launch(_: Any = None) -> None:
            if any(not d.done() for d in dependencies) or not launched.acquire(blocking=False):
                return
            if future.done():  # cancelled while it waited for its dependencies
                return
            try:
                real_args = tuple(_resolved(a) for a in args)
                real_kwargs = {k: _resolved(v) for k, v in kwargs.items()}
                token = current_run_id.set(parent)  # lineage: a submit inside a task is its child
                try:
                    call = self.prepare(real_args, real_kwargs)
                finally:
                    current_run_id.reset(token)
                found, value = self.lookup_value(call, pooled=True)
                if found:
                    if progress is not None:
                        progress.hit()
                    future.set_result(value)
                    return
                from taskcache.lifecycle.sweeps import Attempts

                job = self.job(call, real_args, real_kwargs, force=False)
                Attempts(job, _pool(executor, max_workers), self.retry, future, progress).start()
            except BaseException as exc:  # a failed dependency, an unhashable argument
                if not future.done():
                    if progress is not None:
                        progress.started()
                        progress.finished(failed=True)
                    future.set_exception(exc)

        if not dependencies:
            launch()
        for dependency in dependencies:
            dependency.add_done_callback(launch)
        return future

    # -- helpers exposed on the wrapper ---------------------------------------------------
    def lookup(self, *args: Any, **kwargs: Any) -> Run | None:
        from taskcache.api import Run

        call = self.prepare(args, kwargs)
        # its recorded files checked, and the random generators' state it found
        run = call.runner.servable(call.fingerprint, _draws_match(call))
        return None if run is None else Run(call.runner.catalog.get_run(run.id), call.runner)

    def runs(self, **filters: Any) -> pd.DataFrame:
        from taskcache.api import runs

        return runs(task=self.name, **filters)

    def clear(self) -> int:
        """Delete every finished run of this task and its artifacts; returns how many.
        Running runs (this process's or another's) are left to finish."""
        from taskcache.api import delete_runs

        runner = get_runner()
        ids = [r.id for r in runner.catalog.query_runs(task=self.name, limit=2**62)
               if r.status != "running"]
        return delete_runs(ids, runner=runner)


def default_task_name(fn: Callable[..., Any]) -> str:
    """A function's identity in the catalog: ``module.qualname`` (the qualified name alone
    for a notebook's or a script's ``__main__``); a lambda's also names the line that
    defines it (a short hash of its source). Two functions never share runs, so ``clear()``
    of one never touches another's."""
    module = getattr(fn, "__module__", None)
    name = fn.__qualname__
    if module and module != "__main__":
        name = f"{module}.{name}"
    if "<lambda>" in fn.__qualname__:
        code = getattr(fn, "__code__", None)
        site = _source_of(fn).strip() or (
            f"{code.co_filename}:{code.co_firstlineno}" if code else repr(fn))
        digest = hashlib.blake2b(site.encode("utf-8", "surrogatepass"), digest_size=4)
        name = f"{name}:{digest.hexdigest()}"
    return name


def _arguments(hashed: list[tuple[str, Any, str]]) -> dict[str, Any]:
    """Hashed arguments (parameter, value, hash) under their output names."""
    return {ARGUMENT + name: value for name, value, _ in hashed}


def _draws_match(call: _Call, *, pooled: bool = False) -> Callable[[RunRecord], bool]:
    """A lookup's ``prepare`` for ``call``: whether a run found the random generators as
    the call would find them (see :meth:`TaskDefinition.lookup_value`)."""
    return draws_match(call.runner, known=not pooled and random_state.knowable())


def _resolved(value: Any) -> Any:
    """An argument of ``submit``: a future stands for its result (its error, if it failed)."""
    return value.result() if isinstance(value, Future) else value


def _pool(executor: Any, max_workers: int | None) -> Any:
    from taskcache.lifecycle.executors import get_pool

    settings = get_runner().settings
    return get_pool(settings.executor if executor is None else executor,
                    max_workers if max_workers is not None else settings.max_workers)


def _source_file(fn: Callable[..., Any]) -> str | None:
    try:
        return inspect.getsourcefile(fn)
    except TypeError:
        return None


def _source_of(fn: Callable[..., Any]) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return ""


@overload
def task(fn: F) -> F: ...
@overload
def task(
    fn: None = None, *, name: str | None = None, version: str | int | None = None,
    ignore: Iterable[str] = (), tags: Iterable[str] = (), cache: bool = True,
    retries: int = 0, retry_delay: float = 0.0, retry_backoff: float = 1.0,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    timeout: float | None = None, track_files: bool = True,
    files: Iterable[str | os.PathLike[str]] = (),
) -> Callable[[F], F]: ...


def task(
    fn: Callable[..., Any] | None = None, *, name: str | None = None,
    version: str | int | None = None, ignore: Iterable[str] = (), tags: Iterable[str] = (),
    cache: bool = True, retries: int = 0, retry_delay: float = 0.0, retry_backoff: float = 1.0,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    timeout: float | None = None, track_files: bool = True,
    files: Iterable[str | os.PathLike[str]] = (),
) -> Any:
    """Cache ``fn`` by its code and the content of its arguments.

    ``name`` defaults to ``module.qualname`` (see :func:`default_task_name`); bump
    ``version`` to invalidate by hand; ``ignore`` leaves arguments out of the key;
    ``cache=False`` records runs but never serves from cache. ``retries``: run again after an exception of a ``retry_on`` type, waiting
    ``retry_delay * retry_backoff ** k`` seconds; every attempt is a recorded run and the last
    error is raised. ``timeout`` (seconds): stop a run that takes longer and record it failed,
    reason "timeout" (on processes and Dask the worker is stopped; a plain call only in the
    main thread, through SIGALRM; not on the thread executor). The files and folders the
    function reads are recorded and checked on every hit, the files it writes stored and
    put back (``track_files=False`` turns that off); ``files`` names more it depends on
    that tracking cannot see. The wrapper keeps ``fn``'s
    signature and docstring and adds ``.map(*iterables, executor=, max_workers=,
    progress=)``, ``.submit(*args, **kw)``, ``.runs()``, ``.lookup(*args, **kw)``,
    ``.force(*args, **kw)`` and ``.clear()``.
    """
    policy = RetryPolicy(int(retries), float(retry_delay), float(retry_backoff),
                         retry_on if isinstance(retry_on, tuple) else (retry_on,))

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        definition = TaskDefinition(
            f, name=name, version=None if version is None else str(version), ignore=ignore,
            tags=tags, cache=cache, retry=policy, timeout=timeout,
            track_files=track_files, files=files,
        )
        if inspect.iscoroutinefunction(f):
            @functools.wraps(f)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                return await definition.call_async(args, kwargs)

            async def force(*args: Any, **kwargs: Any) -> Any:
                return await definition.call_async(args, kwargs, force=True)
        else:
            @functools.wraps(f)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return definition.call_sync(args, kwargs)

            def force(*args: Any, **kwargs: Any) -> Any:
                return definition.call_sync(args, kwargs, force=True)

            def submit(*args: Any, **kwargs: Any) -> TaskFuture:
                # like Dask's client.submit: executor/max_workers are ours, unless fn has them
                options = {k: kwargs.pop(k) for k in ("executor", "max_workers")
                           if k in kwargs and k not in definition.signature.parameters}
                return definition.submit(args, kwargs, **options)

            wrapper.map = definition.map  # type: ignore[attr-defined]
            wrapper.submit = submit  # type: ignore[attr-defined]

        wrapper.__taskcache__ = definition  # type: ignore[attr-defined]
        wrapper.force = force  # type: ignore[attr-defined]
        wrapper.lookup = definition.lookup  # type: ignore[attr-defined]
        wrapper.runs = definition.runs  # type: ignore[attr-defined]
        wrapper.clear = definition.clear  # type: ignore[attr-defined]
        wrapper.task_name = definition.name  # type: ignore[attr-defined]
        return wrapper

    return decorate if fn is None else decorate(fn)
