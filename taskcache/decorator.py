"""``@task``: cache a function's return value by its code and the content of its arguments."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

from taskcache.describe import short_repr, type_name
from taskcache.errors import (
    CacheWarning,
    CatalogError,
    CatalogUnavailableError,
    FingerprintError,
    StoreError,
    UnstorableValueError,
)
from taskcache.hashing import combine_key, hash_code, hash_value, module_versions
from taskcache.lifecycle.aliasing import (
    can_restore_in_place,
    find_views,
    rebuild_views,
    restore_in_place,
)
from taskcache.lifecycle.runner import (
    Hit,
    current_run_id,
    get_runner,
    print_waiting,
)
from taskcache.lifecycle.tracking import path_values, tracking
from taskcache.records import ALIASING, ARGUMENT, RETURN, Claim, InputRecord, RunSpec

if TYPE_CHECKING:
    import pandas as pd

    from taskcache.api import Run

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class _Outcome:
    result: Any = None


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
        return {ARGUMENT + name: value for name, value, _ in self.hashed}

    def spec(self) -> RunSpec:
        d = self._definition
        inputs = tuple(InputRecord(name=name, value_hash=value_hash, type_name=type_name(value),
                                   repr=short_repr(value))
                       for name, value, value_hash in self.hashed)
        return RunSpec(task=d.name, kind="function", fingerprint=self.fingerprint,
                       code_hash=self._code_hash, tags=d.tags, user_version=d.version,
                       inputs=inputs, parent_run_id=self._parent)


class TaskDefinition:
    """What ``@task`` knows about one function; the wrapper delegates here."""

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None, version: str | None,
        ignore: Iterable[str], tags: Iterable[str], cache: bool, track_files: bool = True,
        files: Iterable[str | os.PathLike[str]] = (),
    ) -> None:
        self.fn = fn
        self.track_files = track_files
        if isinstance(files, str | os.PathLike):
            files = [files]
        self.files = tuple(files)
        self.name = name or fn.__qualname__
        self.version = None if version is None else str(version)
        self.ignore = frozenset(ignore)
        self.tags = tuple(tags)
        self.cache = cache
        self.signature = inspect.signature(fn)
        unknown = self.ignore - self.signature.parameters.keys()
        if unknown:
            raise ValueError(
                f"@task(ignore=...) names {', '.join(sorted(unknown))}, which "
                f"{self.name}() has no parameter for; parameters: {', '.join(self.signature.parameters)}"
            )

    # -- fingerprint ----------------------------------------------------------------------
    def prepare(self, args: tuple, kwargs: dict) -> _Call:
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        hashed = [(pname, value, hash_value(value, name=pname))
                  for pname, value in bound.arguments.items() if pname not in self.ignore]
        code_hash = hash_code(self.fn)
        fingerprint = combine_key({
            "task": self.name,
            "kind": "function",
            "code": code_hash,
            "inputs": {pname: value_hash for pname, _, value_hash in hashed},
            "version": self.version or "",
        })
        return _Call(self, code_hash, hashed, fingerprint)

    def lookup_value(self, call: _Call) -> tuple[bool, Any]:
        """``(True, value)`` on a hit, after replaying what the run did to its arguments;
        ``(False, None)`` on a miss (``call.rerun`` set when a run exists but its changes
        to the arguments cannot be replayed into today's objects)."""
        if not self.cache:
            return False, None
        hit = call.runner.lookup(call.fingerprint)
        if hit is None or RETURN not in hit.outputs:
            return False, None
        return self.from_hit(call, hit.outputs)

    def from_hit(self, call: _Call, outputs: dict[str, Any]) -> tuple[bool, Any]:
        """The return value of a hit, with the arguments the run changed in place changed
        the same way in the caller's objects and returned views rebuilt over them."""
        aliasing = outputs.get(ALIASING)
        if aliasing is None:
            return True, outputs[RETURN]
        given = call.arguments()
        pairs = [(given[name], outputs[name]) for name in aliasing["in_place"]]
        views = rebuild_views(aliasing["views"], given, outputs)
        if views is None or not all(can_restore_in_place(t, v) for t, v in pairs):
            call.rerun = True
            return False, None
        for target, value in pairs:
            restore_in_place(target, value)
        return True, views.get(RETURN, outputs[RETURN])

    def aliasing_outputs(self, call: _Call, result: Any) -> tuple[dict[str, Any], list[str]]:
        """The outputs to store for one call: the return value, the arguments it changed
        in place and which returned arrays view an argument; and why a hit could not replay
        the call (an argument of a type that cannot be written back in place)."""
        outputs: dict[str, Any] = {RETURN: result}
        given = call.arguments()
        changed, problems = [], []
        for pname, value, value_hash in call.hashed:
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
    def run_spec(self, call: _Call) -> RunSpec:
        """The catalog's description of a run of ``call``: inputs, source, environment."""
        from taskcache.lifecycle.environment import capture_environment

        env = capture_environment(module_versions(self.fn), path=_source_file(self.fn))
        return dataclasses.replace(call.spec(), env=env, source=_source_of(self.fn))

    def start(self, call: _Call, *, force: bool) -> Claim | Hit:
        """Claim the run, or (single-flight) the result of another process computing it."""
        spec = self.run_spec(call)
        if force or not self.cache or call.rerun:
            return call.runner.start(spec)
        return call.runner.acquire(spec, on_wait=print_waiting)

    @contextlib.contextmanager
    def executing(self, call: _Call, claim: Claim) -> Iterator[_Outcome]:
        """Mark the claimed run current, keep its lease alive, and record how the body
        ended: failed or cancelled on an exception (re-raised unchanged), else completed."""
        token = current_run_id.set(claim.run_id)
        started = time.perf_counter()
        outcome = _Outcome()
        named = (path_values([self.fn, *(value for _, value, _ in call.hashed)])
                 if self.track_files else [])
        try:
            with call.runner.heartbeat(claim), tracking(
                enabled=self.track_files, declared=self.files, named=named,
                cache_dir=call.runner.settings.cache_dir,
            ) as files:
                yield outcome
        except BaseException as exc:  # the user's own error: recorded if possible, raised as is
            call.runner.fail_quietly(claim, exc, duration=time.perf_counter() - started,
                                     cancelled=isinstance(exc, KeyboardInterrupt | asyncio.CancelledError))
            raise
        finally:
            current_run_id.reset(token)
        duration = time.perf_counter() - started
        outputs, problems = self.aliasing_outputs(call, outcome.result)
        if problems:  # a hit would not leave the caller's objects as this run did
            reason = "; ".join(problems)
            call.runner.fail_quietly(claim, RuntimeError(reason), duration=duration,
                                     reason=f"not cached: {reason}")
            warnings.warn(f"taskcache: {self.name}: result not cached: {reason}; return the "
                          f"changed value instead", CacheWarning, stacklevel=4)
            return
        try:
            call.runner.save(claim, self.name, outputs, duration=duration, files=files.result())
        except (UnstorableValueError, StoreError, CatalogError) as exc:
            warnings.warn(f"taskcache: {self.name}: result not cached: {exc}", CacheWarning, stacklevel=4)

    def _warn_uncached(self, exc: CatalogUnavailableError) -> None:
        """The catalog cannot be reached or written: say so once; the caller runs the
        function without the cache."""
        warnings.warn(f"taskcache: {self.name} ran without the cache: {exc}", CacheWarning,
                      stacklevel=4)

    def call_sync(self, args: tuple, kwargs: dict, *, force: bool = False) -> Any:
        try:
            call = self.prepare(args, kwargs)
            found, value = (False, None) if force else self.lookup_value(call)
            if found:
                return value
            acquired = self.start(call, force=force)
        except CatalogUnavailableError as exc:
            self._warn_uncached(exc)
            return self.fn(*args, **kwargs)
        if isinstance(acquired, Hit):
            found, value = self.from_hit(call, acquired.outputs)
            if found:
                return value
            acquired = self.start(call, force=True)
        with self.executing(call, acquired) as outcome:
            outcome.result = self.fn(*args, **kwargs)
        return outcome.result

    async def call_async(self, args: tuple, kwargs: dict, *, force: bool = False) -> Any:
        try:
            call = self.prepare(args, kwargs)
            found, value = (False, None) if force else self.lookup_value(call)
            if found:
                return value
            acquired = await asyncio.to_thread(self.start, call, force=force)  # may wait
        except CatalogUnavailableError as exc:
            self._warn_uncached(exc)
            return await self.fn(*args, **kwargs)
        if isinstance(acquired, Hit):
            found, value = self.from_hit(call, acquired.outputs)
            if found:
                return value
            acquired = await asyncio.to_thread(self.start, call, force=True)
        with self.executing(call, acquired) as outcome:
            outcome.result = await self.fn(*args, **kwargs)
        return outcome.result

    # -- helpers exposed on the wrapper ---------------------------------------------------
    def lookup(self, *args: Any, **kwargs: Any) -> Run | None:
        from taskcache.api import Run

        call = self.prepare(args, kwargs)
        run = call.runner.servable(call.fingerprint)  # its recorded files checked
        return None if run is None else Run(call.runner.catalog.get_run(run.id), call.runner)

    def runs(self, **filters: Any) -> pd.DataFrame:
        from taskcache.api import runs

        return runs(task=self.name, **filters)

    def clear(self) -> int:
        """Delete every recorded run of this task and its artifacts; returns how many."""
        from taskcache.api import delete_runs

        runner = get_runner()
        ids = [r.id for r in runner.catalog.query_runs(task=self.name, limit=1_000_000_000)]
        return delete_runs(ids, runner=runner)



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
    track_files: bool = True, files: Iterable[str | os.PathLike[str]] = (),
) -> Callable[[F], F]: ...


def task(
    fn: Callable[..., Any] | None = None, *, name: str | None = None,
    version: str | int | None = None, ignore: Iterable[str] = (), tags: Iterable[str] = (),
    cache: bool = True, track_files: bool = True, files: Iterable[str | os.PathLike[str]] = (),
) -> Any:
    """Cache ``fn`` by its code and the content of its arguments.

    ``name`` defaults to the function's qualified name; bump ``version`` to invalidate by hand;
    ``ignore`` leaves arguments out of the key; ``cache=False`` records runs but never serves
    from cache. The files and folders the function reads are recorded and checked on
    every hit, the files it writes stored and put back (``track_files=False`` turns that
    off); ``files`` names more it depends on that tracking cannot see. The wrapper keeps ``fn``'s signature and docstring and adds ``.runs()``,
    ``.lookup(*args, **kw)``, ``.force(*args, **kw)`` and ``.clear()``.
    """

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        definition = TaskDefinition(
            f, name=name, version=None if version is None else str(version), ignore=ignore,
            tags=tags, cache=cache, track_files=track_files, files=files,
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

        wrapper.__taskcache__ = definition  # type: ignore[attr-defined]
        wrapper.force = force  # type: ignore[attr-defined]
        wrapper.lookup = definition.lookup  # type: ignore[attr-defined]
        wrapper.runs = definition.runs  # type: ignore[attr-defined]
        wrapper.clear = definition.clear  # type: ignore[attr-defined]
        wrapper.task_name = definition.name  # type: ignore[attr-defined]
        return wrapper

    return decorate if fn is None else decorate(fn)
