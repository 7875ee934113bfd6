"""Explain a miss: what differs between a run and the nearest earlier completed run."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime

from taskcache.catalog import Catalog
from taskcache.describe import display_path, format_bytes
from taskcache.records import FileRecord, InputRecord, RunRecord

_CODE_TYPES = ("builtins.function", "builtins.type", "builtins.module")
_FILE_TYPES = ("file", "folder")


@dataclass(frozen=True)
class Difference:
    kind: str    # "input" | "input file" | "code" | "dependency" | "version" | "options"
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


def _input_difference(name: str, old: InputRecord, new: InputRecord) -> Difference:
    if new.type_name in _CODE_TYPES or old.type_name in _CODE_TYPES:
        what = {"builtins.module": "module", "builtins.type": "class"}.get(new.type_name, "function")
        if what == "module":
            return Difference("dependency", name, "the module's version changed")
        return Difference("dependency", name, f"the {what}'s code (or what it uses) changed")
    if old.type_name != new.type_name:
        return Difference("input", name, f"type {old.type_name} -> {new.type_name}")
    if old.repr and new.repr and old.repr != new.repr:
        return Difference("input", name, f"{old.repr} -> {new.repr}")
    return Difference("input", name, "its content changed")


def _code_differences(old: str, new: str, limit: int = 6) -> list[Difference]:
    diff = [
        line for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    shown = diff[:limit] + ([f"... {len(diff) - limit} more changed lines"] if len(diff) > limit else [])
    return [Difference("code", "line", text) for text in shown] or [
        Difference("code", "source", "the normalized code differs")
    ]


def explain(run: RunRecord, previous: RunRecord | None) -> list[Difference]:
    """What in ``run``'s key differs from ``previous`` (empty when nothing does)."""
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
            found.append(_input_difference(name, old, new))
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


def explain_text(catalog: Catalog, task: str) -> str:
    """A short report for ``%taskcache why TASK``."""
    latest = catalog.query_runs(task=task, limit=1)
    if not latest:
        return f"no runs of task {task!r} in the catalog"
    run = catalog.get_run(latest[0].id)
    previous = previous_run(catalog, run)
    if previous is None:
        return f"{task} #{run.id} is the first run of this task: nothing earlier to compare with"
    lines = [f"{task} #{run.id} missed because, compared with #{previous.id}:"]
    lines += [f"  - {d}" for d in explain(run, previous)]
    return "\n".join(lines)
