"""Explain a miss: what differs between a run and the nearest earlier completed run.

A changed input is summarised from its two values when both can still be found (the output of
the run that produced it, or the notebook's current value): a frame by its shape, columns
added or removed, dtypes and how many cells differ; an array by its shape, dtype and how many
elements differ; a long string by a short diff. Otherwise from the short reprs recorded with
the runs."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from taskcache.catalog import Catalog
from taskcache.describe import display_path, format_bytes
from taskcache.errors import TaskcacheError
from taskcache.lifecycle.random_state import ENTROPY, UNKNOWN
from taskcache.records import RANDOM_STATE, ArtifactRecord, FileRecord, InputRecord, RunRecord

_CODE_TYPES = ("builtins.function", "builtins.type", "builtins.module")
_FILE_TYPES = ("file", "folder")
_SHORT = 60  # characters: a repr or string longer than this is summarised, not shown twice
#: finds the value an input had in a run; LookupError when it is not available
ValueOf = Callable[[InputRecord], Any]
#: reads and decodes one stored artifact (the runner's ``load_artifact``)
Load = Callable[[ArtifactRecord], Any]


@dataclass(frozen=True)
class Difference:
    kind: str    # "input" | "input file" | "code" | "dependency" | "version" | "options"
    #              | "random generator"
    name: str
    detail: str

    def __str__(self) -> str:
        if self.kind == "input file":
            return f"{self.kind} {self.name} {self.detail}"
        return f"{self.kind} {self.name}: {self.detail}"


def _read_files(run: RunRecord) -> dict[str, FileRecord]:
    return {f.path: f for f in run.files if f.role == "read"}


def _file_states(run: RunRecord) -> dict[str, str | None]:
    return {path: f.content_hash for path, f in _read_files(run).items()}


def previous_run(catalog: Catalog, run: RunRecord) -> RunRecord | None:
    """The newest completed run of the same task, before ``run``, with another fingerprint
    or, with the same one, other contents of the files it read."""
    for candidate in catalog.query_runs(task=run.task, status="completed", limit=200):
        if candidate.id >= run.id:
            continue
        if candidate.fingerprint != run.fingerprint:
            return catalog.get_run(candidate.id)
        full = catalog.get_run(candidate.id)
        if _file_states(full) != _file_states(run):
            return full
    return None


def same_key_run(catalog: Catalog, run: RunRecord) -> RunRecord | None:
    """The newest completed run before ``run`` with the same fingerprint and the same
    contents of the files it read: ``run`` ran because that one could not be served (a
    random generator in another state)."""
    for candidate in catalog.query_runs(task=run.task, status="completed", limit=200):
        if candidate.id < run.id and candidate.fingerprint == run.fingerprint:
            full = catalog.get_run(candidate.id)
            if _file_states(full) == _file_states(run):
                return full
    return None


def _found(state: str | None) -> str:
    if state == ENTROPY:
        return "unseeded (fresh entropy)"
    return "not imported" if state is None else "seeded or already drawn from"


def random_differences(run: RunRecord, previous: RunRecord, load: Load) -> list[Difference]:
    """The global random generators ``previous`` drew from that ``run`` found otherwise: one
    line each, fresh entropy against a seeded state, or two seeded states."""
    artifact = next((a for a in previous.artifacts if a.name == RANDOM_STATE), None)
    now = (run.env or {}).get("random_state")
    if artifact is None or now is None:
        return []
    try:
        record = load(artifact)
    except (TaskcacheError, OSError, ValueError):
        return []
    found = []
    for name, entry in sorted(record.items()):
        wanted, state = entry.get("before"), now.get(name)
        if wanted is None or (wanted == state and wanted != UNKNOWN):
            continue
        if wanted == UNKNOWN:
            detail = (f"#{previous.id} drew from it in a pool's thread, where the state it "
                      "found cannot be known (it serves no other call)")
        elif wanted != ENTROPY and state != ENTROPY:
            detail = f"#{previous.id} found it in another state (it was seeded or drawn from otherwise)"
        else:
            detail = f"#{previous.id} found it {_found(wanted)}; #{run.id} found it {_found(state)}"
        found.append(Difference("random generator", name, detail))
    return found


def _when(ns: int | None) -> str:
    if ns is None:
        return "?"
    moment = datetime.fromtimestamp(ns / 1e9)
    return moment.strftime("%H:%M" if moment.date() == datetime.now().date() else "%Y-%m-%d %H:%M")


def _file_difference(old: FileRecord, new: FileRecord) -> Difference:
    """``input file data/x.csv changed (2.1 KB -> 2.3 KB, modified 10:02)``"""
    name = display_path(new.path)
    if old.kind == "missing":
        return Difference("input file", name, "appeared")
    if new.kind == "missing":
        return Difference("input file", name, "was removed")
    if new.kind == "folder":
        return Difference("input file", name, f"(a folder) changed its listing (modified {_when(new.mtime_ns)})")
    sizes = (f"{format_bytes(old.size)} -> {format_bytes(new.size)}" if old.size != new.size
             else f"{format_bytes(new.size)}, same size")
    return Difference("input file", name, f"changed ({sizes}, modified {_when(new.mtime_ns)})")


def _files_differences(run: RunRecord, previous: RunRecord) -> list[Difference]:
    old_files, new_files = _read_files(previous), _read_files(run)
    found = [_file_difference(old_files[path], new)
             for path, new in new_files.items()
             if path in old_files and old_files[path].content_hash != new.content_hash]
    found += [Difference("input file", display_path(path), "is read now (new input)")
              for path in new_files.keys() - old_files.keys()]
    found += [Difference("input file", display_path(path), "is no longer read")
              for path in old_files.keys() - new_files.keys()]
    return found


def _input_difference(name: str, old: InputRecord, new: InputRecord,
                      value_of: ValueOf | None = None) -> Difference:
    if new.type_name in _CODE_TYPES or old.type_name in _CODE_TYPES:
        what = {"builtins.module": "module", "builtins.type": "class"}.get(new.type_name, "function")
        if what == "module":
            return Difference("dependency", name, "the module's version changed")
        return Difference("dependency", name, f"the {what}'s code (or what it uses) changed")
    if old.type_name != new.type_name:
        return Difference("input", name, f"type {old.type_name} -> {new.type_name}")
    if value_of is not None:
        try:
            summary = value_change(value_of(old), value_of(new))
        except LookupError:
            summary = None
        except Exception:  # an odd value must not break the explanation: use the reprs
            summary = None
        if summary:
            return Difference("input", name, summary)
    if _is_table_or_array(new.type_name):
        return Difference("input", name, "its content changed (its earlier value is no longer "
                                         "stored or in the notebook, so cells are not compared)")
    if old.repr and new.repr and old.repr != new.repr:
        if max(len(old.repr), len(new.repr)) > _SHORT:
            return Difference("input", name, text_change(old.repr, new.repr))
        return Difference("input", name, f"{old.repr} -> {new.repr}")
    return Difference("input", name, "its content changed")


def _is_table_or_array(type_name: str) -> bool:
    return type_name.startswith(("pandas.", "numpy.", "pyarrow."))


def value_change(old: Any, new: Any) -> str | None:
    """How ``new`` differs from ``old``, in one line, for a DataFrame, Series, ndarray or
    string; None for other values (their short reprs say it better)."""
    pd, np = sys.modules.get("pandas"), sys.modules.get("numpy")
    if pd is not None and isinstance(old, pd.DataFrame) and isinstance(new, pd.DataFrame):
        return frame_change(old, new)
    if pd is not None and isinstance(old, pd.Series) and isinstance(new, pd.Series):
        return frame_change(old.to_frame("values"), new.to_frame("values"), series=True)
    if np is not None and isinstance(old, np.ndarray) and isinstance(new, np.ndarray):
        return array_change(old, new)
    if isinstance(old, str) and isinstance(new, str):
        if max(len(old), len(new)) > _SHORT:
            return text_change(old, new)
        return f"{old!r} -> {new!r}"
    return None


def _shape(shape: tuple[int, ...]) -> str:
    return " × ".join(f"{n:,}" for n in shape) or "scalar"


def frame_change(old: Any, new: Any, *, series: bool = False) -> str:
    """Shape, columns added/removed, dtypes changed and how many cells differ (in the rows
    and columns both frames have, matched by label). ``series``: one-column frames made
    from two Series, described as such."""
    shape, cells = ("length", "elements") if series else ("shape", "cells")
    old_shape, new_shape = ((len(old),), (len(new),)) if series else (old.shape, new.shape)
    parts = [f"{shape} {_shape(old_shape)} -> {_shape(new_shape)}" if old_shape != new_shape
             else f"{shape} {_shape(new_shape)}"]
    old_cols, new_cols = list(map(str, old.columns)), list(map(str, new.columns))
    added = [c for c in new_cols if c not in old_cols]
    removed = [c for c in old_cols if c not in new_cols]
    if added:
        parts.append(f"columns added: {_names(added)}")
    if removed:
        parts.append(f"columns removed: {_names(removed)}")
    common = [c for c in new.columns if c in old.columns]
    retyped = [f"{old[c].dtype} -> {new[c].dtype}" if series else
               f"{c} {old[c].dtype} -> {new[c].dtype}" for c in common
               if str(old[c].dtype) != str(new[c].dtype)]
    if retyped:
        parts.append("dtype " + _names(retyped))
    if old.index.is_unique and new.index.is_unique:  # rows matched by label
        rows = old.index.intersection(new.index, sort=False)
        a, b = old.loc[rows, common], new.loc[rows, common]
        added, removed = len(new.index.difference(old.index)), len(old.index.difference(new.index))
        if added or removed:
            parts.append(f"rows added: {added:,}, removed: {removed:,}")
    elif len(old) == len(new):  # repeated labels: matched by position
        a, b = old[common].reset_index(drop=True), new[common].reset_index(drop=True)
    else:
        return "; ".join(parts)
    if common and len(a):
        differ = sum(int((~(a[c].eq(b[c]).fillna(False).astype(bool)
                            | (a[c].isna() & b[c].isna()))).sum()) for c in a.columns)
        parts.append(f"{differ:,} of {a.size:,} {cells} differ")
    return "; ".join(parts)


def array_change(old: Any, new: Any) -> str:
    """Shape, dtype and, for arrays of one shape, how many elements differ."""
    import numpy as np

    parts = [f"shape {_shape(old.shape)} -> {_shape(new.shape)}" if old.shape != new.shape
             else f"shape {_shape(new.shape)}"]
    parts.append(f"dtype {old.dtype} -> {new.dtype}" if old.dtype != new.dtype
                 else f"dtype {new.dtype}")
    if old.shape == new.shape:
        with np.errstate(all="ignore"):
            same = np.asarray(old == new)
            if same.shape == old.shape and old.dtype.kind in "fc" and new.dtype.kind in "fc":
                same |= np.isnan(old) & np.isnan(new)
        if same.shape == old.shape:
            parts.append(f"{old.size - int(same.sum()):,} of {old.size:,} elements differ")
    return "; ".join(parts)


def text_change(old: str, new: str, context: int = 20) -> str:
    """Where two long strings first differ, with a little text around it:
    ``at character 412: '…quick brown fox…' -> '…quick red fox…'``."""
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    opcodes = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    if not opcodes:
        return "no difference in the text"
    _, i1, i2, j1, j2 = opcodes[0]

    def window(text: str, start: int, end: int) -> str:
        lo, hi = max(0, start - context), min(len(text), end + context)
        return ("…" if lo else "") + text[lo:hi] + ("…" if hi < len(text) else "")

    more = len(opcodes) - 1
    more = f" (and {more} more change{'s' if more > 1 else ''})" if more else ""
    return (f"length {len(old):,} -> {len(new):,}; at character {i1:,}: "
            f"{window(old, i1, i2)!r} -> {window(new, j1, j2)!r}{more}")


def _names(items: list[str], limit: int = 6) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def input_values(catalog: Catalog, load: Callable[[ArtifactRecord], Any],
                 namespace: Mapping[str, Any] | None = None) -> ValueOf:
    """A ValueOf that finds an input's value as the output of the run that produced it
    (``load`` verifies and decodes the artifact), or in ``namespace`` when the variable of
    that name still hashes the same."""
    from taskcache.hashing import hash_value

    def value_of(record: InputRecord) -> Any:
        if record.producer_run_id is not None:
            try:
                producer = catalog.get_run(record.producer_run_id)
                artifact = next(a for a in producer.artifacts if a.value_hash == record.value_hash)
                return load(artifact)
            except (StopIteration, TaskcacheError, OSError, KeyError):
                pass  # deleted since, or its file is gone: try the namespace
        if namespace is not None and record.name in namespace:
            value = namespace[record.name]
            try:
                if hash_value(value, name=record.name) == record.value_hash:
                    return value
            except TaskcacheError:
                pass
        raise LookupError(record.name)

    return value_of


def _code_differences(old: str, new: str, limit: int = 6) -> list[Difference]:
    diff = [
        line for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    shown = diff[:limit] + ([f"... {len(diff) - limit} more changed lines"] if len(diff) > limit else [])
    return [Difference("code", "line", text) for text in shown] or [
        Difference("code", "source", "the normalized code differs")
    ]


def explain(run: RunRecord, previous: RunRecord | None,
            value_of: ValueOf | None = None) -> list[Difference]:
    """What in ``run``'s key differs from ``previous`` (empty when nothing does); changed
    inputs are summarised from their values where ``value_of`` finds both."""
    if previous is None:
        return []
    found: list[Difference] = []
    if run.code_hash != previous.code_hash:
        found += _code_differences(previous.source, run.source)
    found += _files_differences(run, previous)
    # the files read are listed among the inputs too (for lineage); compared just above
    old_inputs = {i.name: i for i in previous.inputs if i.type_name not in _FILE_TYPES}
    new_inputs = {i.name: i for i in run.inputs if i.type_name not in _FILE_TYPES}
    for name, new in new_inputs.items():
        old = old_inputs.get(name)
        if old is None:
            found.append(Difference("input", name, "new input"))
        elif old.value_hash != new.value_hash:
            found.append(_input_difference(name, old, new, value_of))
    for name in old_inputs.keys() - new_inputs.keys():
        found.append(Difference("input", name, "no longer an input"))
    if run.user_version != previous.user_version:
        found.append(Difference("version", "version", f"{previous.user_version} -> {run.user_version}"))
    old_pkgs = (previous.env or {}).get("packages", {})
    new_pkgs = (run.env or {}).get("packages", {})
    for pkg in sorted(old_pkgs.keys() & new_pkgs.keys()):
        if old_pkgs[pkg] != new_pkgs[pkg]:
            found.append(Difference("dependency", pkg, f"{old_pkgs[pkg]} -> {new_pkgs[pkg]}"))
    if not found:
        found.append(Difference("options", "key", "the --outputs/--ignore options or taskcache's key version changed"))
    return found


def explain_text(catalog: Catalog, task: str, value_of: ValueOf | None = None,
                 load: Load | None = None) -> str:
    """A short report for ``%taskcache why TASK`` (see :func:`input_values`); with ``load``,
    a run that ran although an earlier one had its key is explained by the random
    generators that one drew from (see :func:`random_differences`)."""
    latest = catalog.query_runs(task=task, limit=1)
    if not latest:
        return f"no runs of task {task!r} in the catalog"
    run = catalog.get_run(latest[0].id)
    same = same_key_run(catalog, run) if load is not None else None
    generators = random_differences(run, same, load) if same is not None and load else []
    if generators:
        lines = [f"{task} #{run.id} missed because, compared with #{same.id} (same key):"]
        return "\n".join(lines + [f"  - {d}" for d in generators])
    previous = previous_run(catalog, run)
    if previous is None:
        return f"{task} #{run.id} is the first run of this task: nothing earlier to compare with"
    lines = [f"{task} #{run.id} missed because, compared with #{previous.id}:"]
    lines += [f"  - {d}" for d in explain(run, previous, value_of)]
    return "\n".join(lines)
