"""One ``%%task`` cell: analyse, fingerprint, then restore from cache or execute and save.

Uses the IPython shell only to transform, compile, execute and display; the lifecycle is the
runner's.
"""

from __future__ import annotations

import ast
import sys
import time
import types
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from IPython.core.error import UsageError

from taskcache.analysis import analyze_cell
from taskcache.describe import short_repr, type_name
from taskcache.errors import (
    CacheWarning,
    CatalogUnavailableError,
    FingerprintError,
    LeaseLostError,
    StoreError,
    UnstorableValueError,
)
from taskcache.hashing import combine_key, hash_value, module_versions
from taskcache.lifecycle.environment import capture_environment
from taskcache.lifecycle.runner import (
    Hit,
    Runner,
    current_run_id,
    print_waiting,
)
from taskcache.lifecycle.tracking import RecordedFiles, path_values, tracking
from taskcache.notebook.capture import capture_outputs, replay_outputs
from taskcache.records import CELL_DISPLAY, CELL_RESULT, Claim, InputRecord, RunRecord, RunSpec

#: names IPython keeps in the user namespace that are never a cell's inputs or outputs
SHELL_NAMES = frozenset({"get_ipython", "exit", "quit", "In", "Out", "_", "__", "___", "_ih", "_oh", "_dh"})


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


def _is_shell_name(name: str) -> bool:
    return name in SHELL_NAMES or (name.startswith("_i") and name[2:].isdigit()) or (
        name.startswith("_") and name[1:].isdigit()
    )


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
            names = [n for n in found if n in ns and not _is_shell_name(n)]
        return [n for n in names if n not in set(self.options.ignore)]

    def _hash_inputs(self) -> dict[str, str]:
        hashes = {}
        for name in self.inputs:
            try:
                hashes[name] = hash_value(self.shell.user_ns[name], name=name)
            except FingerprintError as exc:
                raise UsageError(
                    f"{exc}\nTo run this cell without hashing {name!r}, add --ignore {name} "
                    f"to the %%task line."
                ) from None
        return hashes

    def spec(self) -> RunSpec:
        input_hashes = self._hash_inputs()
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
    def restore(self, run: RunRecord, outputs: dict[str, Any]) -> CellOutcome:
        ns = self.shell.user_ns
        values = {k: v for k, v in outputs.items() if k not in (CELL_DISPLAY, CELL_RESULT)}
        ns.update(values)
        self._replay_definitions(run)
        ns.update(values)  # a name rebound after its def keeps its stored value
        replay_outputs(self.shell, outputs.get(CELL_DISPLAY) or [])
        return CellOutcome("hit", run, outputs.get(CELL_RESULT), run.duration or 0.0)

    def _replay_definitions(self, run: RunRecord) -> None:
        """Re-run the cell's top-level def/class/import statements (cheap, and functions
        defined in a notebook cannot be stored portably)."""
        if self.analysis is None or not self.analysis.definitions:
            return
        tree = self._parse()
        kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
        tree.body = [node for node in tree.body if isinstance(node, kinds)]
        if tree.body:
            self._exec_module(tree)

    # -- miss -----------------------------------------------------------------------------
    def execute(self, spec: RunSpec, *, force: bool = False) -> CellOutcome:
        """Run the cell for real, capture what it shows, store its outputs; unless another
        process is computing the same run, in which case wait and restore its result."""
        before = {n: spec_hash.value_hash for n, spec_hash in zip(self.inputs, spec.inputs, strict=True)}
        env = capture_environment(module_versions({n: self.shell.user_ns[n] for n in self.inputs}))
        # the %%task line as typed, so the run browser can re-run this cell as it was
        spec = replace(spec, env={**env, "magic_line": self.magic_line})
        try:
            acquired = self.runner.start(spec) if force else self.runner.acquire(spec, on_wait=print_waiting)
        except CatalogUnavailableError as exc:
            return self.run_uncached(exc)
        if isinstance(acquired, Hit):
            return self.restore(acquired.run, acquired.outputs)
        claim = acquired
        token = current_run_id.set(claim.run_id)
        started = time.perf_counter()
        named = path_values([*(self.shell.user_ns[n] for n in self.inputs), *self._literals()]
                            ) if self.options.track_files else []
        try:
            with self.runner.heartbeat(claim), capture_outputs(self.shell) as shown, tracking(
                enabled=self.options.track_files, declared=self.options.files, named=named,
                cache_dir=self.runner.settings.cache_dir,
            ) as files:
                result = self._run_body()
        except BaseException as exc:  # the cell's own error: recorded if possible, raised as is
            duration = time.perf_counter() - started
            self.runner.fail_quietly(claim, exc, duration=duration, cancelled=isinstance(exc, KeyboardInterrupt))
            raise
        finally:
            current_run_id.reset(token)
        duration = time.perf_counter() - started
        outputs, mutated = self._collect_outputs(before, result)
        outputs[CELL_DISPLAY] = shown
        return self._save(claim, outputs, duration, result, mutated, files.result())

    def _literals(self) -> list[str]:
        """The string literals of the cell (path values: see lifecycle.tracking)."""
        try:
            tree = ast.parse(self.source)
        except SyntaxError:
            return []
        return [node.value for node in ast.walk(tree)
                if isinstance(node, ast.Constant) and isinstance(node.value, str)]

    def _save(self, claim: Claim, outputs: dict[str, Any], duration: float, result: Any,
              mutated: list[str], files: RecordedFiles) -> CellOutcome:
        try:
            record = self.runner.save(claim, self.name, outputs, duration=duration, files=files)
        except (UnstorableValueError, LeaseLostError) as exc:
            print(f"taskcache: {self.name} ran but was not cached: {exc}", file=sys.stderr)
            return CellOutcome("not cached", None, result, duration, mutated)
        except (StoreError, CatalogUnavailableError) as exc:  # disk full, catalog locked, ...
            warnings.warn(f"taskcache: {self.name} ran but was not cached: {exc}", CacheWarning,
                          stacklevel=3)
            return CellOutcome("not cached", None, result, duration, mutated)
        return CellOutcome("miss", record, result, duration, mutated)

    def run_uncached(self, cause: CatalogUnavailableError) -> CellOutcome:
        """The catalog cannot be reached or written: run the cell as a plain cell runs,
        after one warning; nothing is recorded or stored."""
        warnings.warn(f"taskcache: {self.name} ran without the cache: {cause}", CacheWarning,
                      stacklevel=3)
        started = time.perf_counter()
        result = self._run_body()
        return CellOutcome("not cached", None, result, time.perf_counter() - started)

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
                if hash_value(ns[name], name=name) != old:
                    outputs[name] = ns[name]
                    mutated.append(name)
            except FingerprintError:
                pass  # hashed fine before; if not now, it cannot be restored either
        if result is not None:
            outputs[CELL_RESULT] = result
        return outputs, mutated

    # -- execution like IPython's own (cf. %%time) ----------------------------------------
    def _run_body(self) -> Any:
        """Execute the body in the user namespace; return the final expression's value."""
        tree = self._parse()
        last = tree.body[-1] if tree.body else None
        final = None
        if isinstance(last, ast.Expr):
            tree.body = tree.body[:-1]
            final = ast.Expression(last.value)
        self._exec_module(tree)
        if final is not None:
            code = self.shell.compile(final, self._filename(), "eval")
            return eval(code, self.shell.user_global_ns, self.shell.user_ns)
        return None

    def _parse(self) -> ast.Module:
        """The body's AST with line numbers as in the cell (line 1 is the %%task line),
        matching the text _filename() registers in linecache."""
        return self.shell.compile.ast_parse("\n" + self.source)

    def _exec_module(self, tree: ast.Module) -> None:
        code = self.shell.compile(tree, self._filename(), "exec")
        exec(code, self.shell.user_global_ns, self.shell.user_ns)

    def _filename(self) -> str:
        if not hasattr(self, "_cached_name"):
            # registered in linecache: tracebacks show the cell, inspect.getsource works
            first_line = self.magic_line or "%%task"
            self._cached_name = self.shell.compile.cache(
                first_line + "\n" + self.source, self.shell.execution_count, raw_code=self.raw
            )
        return self._cached_name
