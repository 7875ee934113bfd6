"""One ``%%task`` cell: analyse, fingerprint, then restore from cache or execute and save.

Uses the IPython shell only to transform, compile, execute and display; the lifecycle is the
runner's.
"""

from __future__ import annotations

import ast
import inspect
import io
import sys
import time
import types
import warnings
import weakref
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from IPython.core.error import UsageError

from taskcache.analysis import analyze_cell, attribute_reads, definition_reads
from taskcache.describe import short_repr, type_name
from taskcache.errors import (
    CacheWarning,
    CatalogUnavailableError,
    FingerprintError,
    LeaseLostError,
    RunDeletedError,
    StoreError,
    UnstorableValueError,
)
from taskcache.hashing import combine_key, hash_value, module_versions
from taskcache.lifecycle import library_settings, random_state
from taskcache.lifecycle.aliasing import (
    can_restore_in_place,
    find_views,
    rebuild_views,
    restore_in_place,
)
from taskcache.lifecycle.environment import capture_environment, cell_number, notebook_path
from taskcache.lifecycle.runner import (
    Hit,
    Runner,
    current_run_id,
    print_waiting,
)
from taskcache.lifecycle.tracking import RecordedFiles, path_values, tracking
from taskcache.notebook.capture import capture_outputs, replay_outputs
from taskcache.records import (
    ALIASING,
    CELL_DELETED,
    CELL_DISPLAY,
    CELL_OUTPUTS,
    CELL_RESULT,
    RANDOM_STATE,
    SETTINGS,
    Claim,
    InputRecord,
    RunRecord,
    RunSpec,
)

#: names IPython keeps in the user namespace that are never a cell's outputs
SHELL_NAMES = frozenset({"get_ipython", "exit", "quit", "In", "Out", "_", "__", "___", "_ih", "_oh", "_dh"})
#: of those, the ones that are never inputs either; a cell reading the history (``_``,
#: ``_3``, ``Out[2]``, ``_i``) has it as an input like any other value
SHELL_FUNCTIONS = frozenset({"get_ipython", "exit", "quit"})


T = TypeVar("T")


@dataclass
class CellOptions:
    name: str | None = None
    force: bool = False
    no_cache: bool = False
    inputs: Sequence[str] | None = None
    outputs: Sequence[str] | None = None
    ignore: Sequence[str] = ()
    tags: Sequence[str] = ()
    version: str | None = None
    quiet: bool = False
    track_files: bool = True           # record the files the cell reads and writes
    files: Sequence[str] = ()          # files and folders it depends on that tracking misses


@dataclass
class CellOutcome:
    """What happened, for the status line and for tests."""

    status: str                        # "hit" | "miss" | "failed" | "not cached"
    run: RunRecord | None = None
    result: Any = None
    seconds: float = 0.0
    mutated: list[str] = field(default_factory=list)
    reason: str = ""                   # why a run was not cached, for the status line


class _Held:
    """An input's object during the run, to tell "changed in place" from "rebound"
    afterwards: weakly where the type allows, so a rebound input can be freed as in a plain
    run (a strong reference also keeps its id from being reused)."""

    __slots__ = ("_ref", "_obj")

    def __init__(self, obj: Any) -> None:
        try:
            self._ref, self._obj = weakref.ref(obj), None
        except TypeError:
            self._ref, self._obj = None, obj

    def get(self) -> Any:
        return self._obj if self._ref is None else self._ref()


def _is_open_file(value: Any) -> bool:
    """A file object still open: a hit could not give back its position and buffer, while a
    closed one is stored (codecs/closed_files.py)."""
    return isinstance(value, io.IOBase) and not value.closed


def _is_shell_name(name: str) -> bool:
    return name in SHELL_NAMES or (name.startswith("_i") and name[2:].isdigit()) or (
        name.startswith("_") and name[1:].isdigit()
    )


def has_top_level_await(source: str) -> bool:
    """Whether ``source`` (plain Python) awaits at top level, as IPython decides it."""
    try:
        code = compile(source, "<cell>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                       dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return bool(code.co_flags & inspect.CO_COROUTINE)


def run_sync(steps: Coroutine[Any, Any, T]) -> T:
    """The value of a coroutine that never suspends (a cell without top-level await)."""
    try:
        steps.send(None)
    except StopIteration as done:
        return done.value
    steps.close()
    raise RuntimeError("a %%task cell without top-level await suspended")


def default_task_name(outputs: Sequence[str]) -> str:
    shown = [n for n in outputs if not n.startswith("_")][:3]
    return "cell:" + ",".join(shown) if shown else "cell"


class CellTask:
    def __init__(
        self, shell: Any, runner: Runner, cell: str, options: CellOptions, magic_line: str = ""
    ) -> None:
        self.shell = shell
        self.magic_line = magic_line  # "%%task ..." as typed: line 1 in tracebacks
        self.runner = runner
        self.raw = cell
        self.options = options
        self.source = shell.transform_cell(cell)
        try:
            self.analysis = analyze_cell(self.source)
        except SyntaxError:
            self.analysis = None  # execute() shows the SyntaxError as IPython would
        self.inputs = self._input_names()
        self.name = options.name or default_task_name(self.analysis.outputs if self.analysis else ())
        self._early_definitions = False  # prepare_hit put back what stored values refer to
        self.failed_run_id: int | None = None  # the run recorded as failed, if the cell raised
        self.is_async = shell.autoawait and has_top_level_await(self.source)
        # compile flags of the body: top-level await where IPython would allow it
        self._flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if self.is_async else 0

    # -- analysis and key -----------------------------------------------------------------
    def _input_names(self) -> list[str]:
        ns = self.shell.user_ns
        if self.options.inputs is not None:
            missing = [n for n in self.options.inputs if n not in ns]
            if missing:
                raise UsageError(
                    f"--inputs names {', '.join(missing)}, which is not defined in the notebook; "
                    f"define it first or remove it from --inputs"
                )
            names = list(self.options.inputs)
        else:
            found = self.analysis.inputs if self.analysis else ()
            names = [n for n in found if n in ns and n not in SHELL_FUNCTIONS]
        return [n for n in names if n not in set(self.options.ignore)]

    def _hash_input(self, name: str) -> str:
        """The hash of one input as the cell uses it: of a user module, only the attributes
        the cell reads from it count (``cfg.alpha``)."""
        reads = attribute_reads(self.source).get(name) if self.analysis else None
        return hash_value(self.shell.user_ns[name], name=name, reads=reads)

    def spec(self) -> RunSpec:
        """The run's key and description. Raises FingerprintError naming an input that
        cannot be hashed (the magic then runs the cell uncached and says why)."""
        input_hashes = {name: self._hash_input(name) for name in self.inputs}
        normalized = self.analysis.normalized if self.analysis else self.source
        code_hash = hash_value(normalized)
        ns = self.shell.user_ns
        fingerprint = combine_key({
            "task": self.name,
            "kind": "cell",
            "code": code_hash,
            "inputs": input_hashes,
            "outputs": sorted(self.options.outputs or ()),
            "version": self.options.version or "",
            # "x;" shows nothing and stores no result, so it is not the run of "x"
            **({"silenced": True} if self.analysis and self.analysis.silenced else {}),
        })
        inputs = tuple(
            InputRecord(name=n, value_hash=h, type_name=type_name(ns[n]), repr=short_repr(ns[n]))
            for n, h in input_hashes.items()
        )
        return RunSpec(
            task=self.name, kind="cell", fingerprint=fingerprint, code_hash=code_hash,
            source=self.raw, tags=tuple(self.options.tags), user_version=self.options.version,
            inputs=inputs, parent_run_id=current_run_id.get(),
        )

    # -- hit ------------------------------------------------------------------------------
    def prepare_hit(self, run: RunRecord) -> bool:
        """Before a stored run's outputs are decoded (Runner.lookup's ``prepare``): turn the
        run down (False) when it drew from a random generator now in another state, so that
        an earlier run of the same key that found today's state can serve; otherwise put
        the cell's functions, classes and imports back, since stored values may refer to them
        (``by_year = rets.groupby(get_year)`` is unpickled by looking ``get_year`` up)."""
        if not random_state.run_matches(run, self.runner.load_artifact):
            return False
        self._early_definitions = True
        self._replay_definitions(run, late=False)
        return True

    def restore(self, run: RunRecord, outputs: dict[str, Any]) -> CellOutcome | None:
        """Leave the namespace, the shown output and the global state as the run did. None
        (nothing changed) when the run cannot be replayed today: it drew from a random
        generator now in another state, or its views do not fit today's values; then the
        caller runs the cell."""
        ns = self.shell.user_ns
        if not random_state.matches(outputs.get(RANDOM_STATE)):
            return None  # it drew from a generator now in another state: it would differ
        values = {k: v for k, v in outputs.items() if k not in CELL_OUTPUTS}
        aliasing = outputs.get(ALIASING) or {}
        in_place = [n for n in aliasing.get("in_place", ())
                    if n in ns and n in values and can_restore_in_place(ns[n], values[n])]
        records = aliasing.get("views") or {}
        anchors = {a: ns[a] if a in in_place or a not in values else values[a]
                   for a in {r["anchor"] for r in records.values()} if a in ns or a in values}
        views = rebuild_views(records, anchors, values)
        if views is None:
            return None
        for name in in_place:  # the caller's object changes, as the cell changed it
            restore_in_place(ns[name], values.pop(name))
        values.update(views)
        ns.update(values)
        self._replay_definitions(run, late=True if self._early_definitions else None)
        ns.update(values)  # a name rebound after its def keeps its stored value
        library_settings.apply(outputs.get(SETTINGS))  # np.set_printoptions(...) and the like
        random_state.apply(outputs.get(RANDOM_STATE))  # later draws as after a real run
        for name in outputs.get(CELL_DELETED) or ():
            ns.pop(name, None)  # "del x" in the cell
        replay_outputs(self.shell, outputs.get(CELL_DISPLAY) or [])
        return CellOutcome("hit", run, outputs.get(CELL_RESULT), run.duration or 0.0)

    def _replay_definitions(self, run: RunRecord, *, late: bool | None = None) -> None:
        """Re-run the cell's top-level def/class/import statements (cheap, and functions
        defined in a notebook cannot be stored portably). ``late=False``: before the stored
        values are decoded, those that read no value the cell binds where they run;
        ``late=True``: once the values are back, the others (``def f(x=threshold)`` after
        ``threshold = 5``); None: all."""
        if self.analysis is None or not (self.analysis.definitions or self.analysis.star_import):
            return
        values = set(self.analysis.outputs) - set(self.analysis.definitions)
        tree = self._parse()
        kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
        tree.body = [node for node in tree.body if isinstance(node, kinds) and (
            late is None or bool(definition_reads(node) & values) == late)]
        if tree.body:
            self._exec_module(tree)

    # -- miss -----------------------------------------------------------------------------
    async def execute(self, spec: RunSpec, *, force: bool = False) -> CellOutcome:
        """Run the cell for real, capture what it shows, store its outputs; unless another
        process is computing the same run, in which case wait and restore its result."""
        before = {n: spec_hash.value_hash for n, spec_hash in zip(self.inputs, spec.inputs, strict=True)}
        env = capture_environment(module_versions({n: self.shell.user_ns[n] for n in self.inputs}),
                                  path=notebook_path(self.shell.user_ns))
        # the %%task line as typed, so the run browser can re-run this cell as it was
        spec = replace(spec, env={**env, "magic_line": self.magic_line,
                                  "random_state": random_state.found()})  # for `why`
        try:
            acquired: Claim | Hit | CatalogUnavailableError = (
                self.runner.start(spec) if force
                else self.runner.acquire(spec, on_wait=print_waiting, prepare=self.prepare_hit))
        except CatalogUnavailableError as exc:
            acquired = exc
        if isinstance(acquired, CatalogUnavailableError):
            # run outside the except block: the cell's own error must not be shown as
            # raised "during handling of" ours
            return await self.run_uncached(acquired)
        if isinstance(acquired, Hit):
            outcome = self.restore(acquired.run, acquired.outputs)
            if outcome is not None:
                return outcome
            acquired = self.runner.start(spec)
        claim = acquired
        given = {n: _Held(self.shell.user_ns[n]) for n in self.inputs}
        settings, generators = library_settings.snapshot(), random_state.snapshot()
        fresh = random_state.fresh_generators()
        token = current_run_id.set(claim.run_id)
        started = time.perf_counter()
        named = path_values([*(self.shell.user_ns[n] for n in self.inputs), *self._literals()]
                            ) if self.options.track_files else []
        try:
            with self.runner.heartbeat(claim), capture_outputs(self.shell) as shown, tracking(
                enabled=self.options.track_files, declared=self.options.files, named=named,
                cache_dir=self.runner.settings.cache_dir,
            ) as files:
                result = await self._run_body()
        except BaseException as exc:  # the cell's own error: recorded if possible, raised as is
            duration = time.perf_counter() - started
            self.failed_run_id = claim.run_id
            self.runner.fail_quietly(claim, exc, duration=duration, cancelled=isinstance(exc, KeyboardInterrupt),
                                     file_labels=self._cell_labels())
            raise
        finally:
            current_run_id.reset(token)
        duration = time.perf_counter() - started
        outputs, mutated = self._collect_outputs(before, result)
        outputs[CELL_DISPLAY] = shown
        if changed := library_settings.changes(settings, library_settings.snapshot()):
            outputs[SETTINGS] = changed
        seeds = self.analysis.seeds if self.analysis else ()
        drawn = random_state.changes(generators, random_state.snapshot(), seeds, fresh, self.source)
        random_state.settle(drawn)
        if drawn:
            outputs[RANDOM_STATE] = drawn
        problems = self._record_aliasing(outputs, given)
        if problems:  # a hit would leave other aliasing than the run did: do not cache it
            reason = f"{'; '.join(problems)}; copy it (.copy()) to cache this cell"
            self.runner.fail_quietly(claim, RuntimeError(reason), duration=duration,
                                     reason=f"not cached: {reason}")
            print(f"taskcache: {self.name} ran but was not cached: {reason}", file=sys.stderr)
            return CellOutcome("not cached", None, result, duration, mutated)
        return self._save(claim, outputs, duration, result, mutated, files.result())

    def _literals(self) -> list[str]:
        """The string literals of the cell (path values: see lifecycle.tracking)."""
        try:
            tree = ast.parse(self.source)
        except SyntaxError:
            return []
        return [node.value for node in ast.walk(tree)
                if isinstance(node, ast.Constant) and isinstance(node.value, str)]

    def _record_aliasing(self, outputs: dict[str, Any], given: dict[str, _Held]) -> list[str]:
        """Add to ``outputs`` which inputs the cell changed in place (the same object, now
        with other content: a hit writes into the caller's object) and which stored arrays
        are views of other values; return what a hit could not rebuild."""
        ns = self.shell.user_ns
        in_place = [n for n, held in given.items()
                    if n in outputs and n in ns and held.get() is ns[n]
                    and can_restore_in_place(ns[n], ns[n])]
        named = {n: v for n, v in ns.items() if not _is_shell_name(n)}
        stored = [n for n in outputs if n not in CELL_OUTPUTS]
        trusted = [n for n in self.inputs if n not in outputs]
        views, problems = find_views(named, stored, trusted, in_place)
        if in_place or views:
            outputs[ALIASING] = {"in_place": in_place, "views": views}
        return problems

    def _save(self, claim: Claim, outputs: dict[str, Any], duration: float, result: Any,
              mutated: list[str], files: RecordedFiles) -> CellOutcome:
        try:
            record = self.runner.save(claim, self.name, outputs, duration=duration, files=files)
        except UnstorableValueError as exc:  # one line: the status line says why
            if _is_open_file(outputs.get(exc.name)):
                advice = "an open file; close it (with open(...) as f:) to have it cached"
            else:
                advice = "leave it out with --outputs, or taskcache.register_codec(...)"
            reason = f"cannot store {exc.name!r} of type {exc.type_name}; {advice}"
            return CellOutcome("not cached", None, result, duration, mutated, reason)
        except LeaseLostError as exc:
            return CellOutcome("not cached", None, result, duration, mutated, str(exc))
        except (StoreError, CatalogUnavailableError, RunDeletedError) as exc:  # disk full, ...
            warnings.warn(f"taskcache: {self.name} ran but was not cached: {exc}", CacheWarning,
                          stacklevel=3)
            return CellOutcome("not cached", None, result, duration, mutated)
        return CellOutcome("miss", record, result, duration, mutated)

    async def run_uncached(self, cause: CatalogUnavailableError) -> CellOutcome:
        """The catalog cannot be reached or written: run the cell as a plain cell runs,
        after one warning; nothing is recorded or stored."""
        warnings.warn(f"taskcache: {self.name} ran without the cache: {cause}", CacheWarning,
                      stacklevel=3)
        started = time.perf_counter()
        result = await self._run_body()
        return CellOutcome("not cached", None, result, time.perf_counter() - started)

    async def run_unkeyed(self, cause: FingerprintError) -> CellOutcome:
        """An input cannot be hashed: run the cell as a plain cell runs, and say in the
        status line which value and how to cache the cell; nothing is recorded."""
        name = cause.name or "a value"
        fix = f"add --ignore {name} to the %%task line, or " if cause.name in self.inputs else ""
        short_type = cause.type_name.rsplit(".", 1)[-1]
        detail = f" ({cause.reason})" if cause.reason else ""
        reason = (f"cannot hash {name!r} of type {cause.type_name}{detail}; to cache it, {fix}"
                  f"taskcache.register_hasher({short_type}, fn)")
        started = time.perf_counter()
        result = await self._run_body()
        return CellOutcome("not cached", None, result, time.perf_counter() - started, reason=reason)

    def _collect_outputs(self, before: dict[str, str], result: Any) -> tuple[dict[str, Any], list[str]]:
        ns = self.shell.user_ns
        if self.options.outputs is not None:
            names = list(self.options.outputs)
            missing = [n for n in names if n not in ns]
            if missing:
                print(f"taskcache: --outputs {', '.join(missing)} not defined after the cell; "
                      f"not stored", file=sys.stderr)
        else:
            names = [n for n in (self.analysis.outputs if self.analysis else ()) if not _is_shell_name(n)]
        replayed = set(self.analysis.definitions) if self.analysis else set()
        outputs: dict[str, Any] = {}
        for name in names:
            if name not in ns:
                continue  # deleted by the cell, or never bound on the path taken
            value = ns[name]
            if name in replayed and isinstance(value, types.FunctionType | type | types.ModuleType):
                continue
            outputs[name] = value
        mutated = []
        for name, old in before.items():
            if name in outputs or name not in ns:
                continue
            try:
                if self._hash_input(name) != old:
                    outputs[name] = ns[name]
                    mutated.append(name)
            except FingerprintError:
                pass  # hashed fine before; if not now, it cannot be restored either
        if result is not None:
            outputs[CELL_RESULT] = result
        deleted = [n for n in (self.analysis.deleted if self.analysis else ()) if n not in ns]
        if deleted:
            outputs[CELL_DELETED] = deleted
        return outputs, mutated

    # -- execution like IPython's own (cf. %%time) ----------------------------------------
    async def _run_body(self) -> Any:
        """Execute the body in the user namespace; return the final expression's value,
        unless a trailing ';' hides it. A body with top-level await is awaited, as IPython
        runs such a cell."""
        tree = self._parse()
        last = tree.body[-1] if tree.body else None
        final = None
        if isinstance(last, ast.Expr):
            tree.body = tree.body[:-1]
            final = ast.Expression(last.value)
        awaitable = self._exec_module(tree)
        if awaitable is not None:
            await awaitable
        if final is None:
            return None
        with self.shell.compile.extra_flags(self._flags):
            code = self.shell.compile(final, self._filename(), "eval")
        result = eval(code, self.shell.user_global_ns, self.shell.user_ns)
        if code.co_flags & inspect.CO_COROUTINE:
            result = await result
        return None if self.analysis and self.analysis.silenced else result  # "plt.ylabel('n');"

    def _parse(self) -> ast.Module:
        """The body's AST with line numbers as in the cell (line 1 is the %%task line),
        matching the text _filename() registers in linecache."""
        return self.shell.compile.ast_parse("\n" + self.source)

    def _exec_module(self, tree: ast.Module) -> Any:
        """Run the statements; a coroutine to await when they use top-level await."""
        with self.shell.compile.extra_flags(self._flags):
            code = self.shell.compile(tree, self._filename(), "exec")
        return eval(code, self.shell.user_global_ns, self.shell.user_ns)

    def _filename(self) -> str:
        if not hasattr(self, "_cached_name"):
            # registered in linecache: tracebacks show the cell, inspect.getsource works
            first_line = self.magic_line or "%%task"
            self._cached_name = self.shell.compile.cache(
                first_line + "\n" + self.source, cell_number(self.shell), raw_code=self.raw
            )
        return self._cached_name

    def _cell_labels(self) -> dict[str, str]:
        """Cell files as IPython names them in tracebacks: ``Cell In[37]``."""
        numbers = getattr(self.shell.compile, "_filename_map", {})
        return {path: f"Cell In[{n}]" for path, n in numbers.items() if isinstance(n, int)}
