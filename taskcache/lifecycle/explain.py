"""Explain a miss: what differs between a run and the nearest earlier completed run."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from taskcache.catalog import Catalog
from taskcache.records import InputRecord, RunRecord

_CODE_TYPES = ("builtins.function", "builtins.type", "builtins.module")


@dataclass(frozen=True)
class Difference:
    kind: str    # "input" | "code" | "dependency" | "version" | "options"
    name: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.detail}"


def previous_run(catalog: Catalog, run: RunRecord) -> RunRecord | None:
    """The newest completed run of the same task, before ``run``, with another fingerprint."""
    for candidate in catalog.query_runs(task=run.task, status="completed", limit=200):
        if candidate.id < run.id and candidate.fingerprint != run.fingerprint:
            return catalog.get_run(candidate.id)
    return None


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
    old_inputs = {i.name: i for i in previous.inputs}
    new_inputs = {i.name: i for i in run.inputs}
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
