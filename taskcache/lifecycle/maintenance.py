"""Keeping a catalog healthy: ``verify`` checks every artifact, ``gc`` frees space."""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from taskcache.config import parse_size
from taskcache.errors import CorruptArtifactError, MissingArtifactError, UnsafePathError
from taskcache.lifecycle.runner import Runner, get_runner
from taskcache.records import RunRecord

ALL = 2**62  # "no limit" for catalog queries
ORPHAN_MIN_AGE = 3600.0  # seconds: a younger unreferenced file may belong to a run completing now


@dataclass
class VerifyReport:
    checked: int = 0
    broken: list[tuple[int, str, str]] = field(default_factory=list)  # (run id, output, problem)
    integrity: str = "ok"
    fixed: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.broken and self.integrity == "ok"

    def __str__(self) -> str:
        lines = [f"taskcache verify: {self.checked} artifacts checked, {len(self.broken)} broken, "
                 f"database integrity: {self.integrity}"]
        lines += [f"  run #{run_id} output {name!r}: {problem}" for run_id, name, problem in self.broken]
        if self.fixed:
            lines.append(f"  marked {len(self.fixed)} runs for recomputation: "
                         + ", ".join(f"#{i}" for i in self.fixed))
        elif self.broken:
            lines.append("  run with --fix to mark these runs so they are recomputed")
        return "\n".join(lines)


def _completed(runner: Runner) -> list[RunRecord]:
    return [runner.catalog.get_run(r.id) for r in runner.catalog.query_runs(status="completed", limit=ALL)
            if r.invalid_reason is None]


def verify(*, fix: bool = False, runner: Runner | None = None) -> VerifyReport:
    """Check size and checksum of every artifact of every servable run, and the database."""
    runner = runner or get_runner()
    report = VerifyReport(integrity=runner.catalog.integrity_check())
    for run in _completed(runner):
        problems = []
        for artifact in run.artifacts:
            report.checked += 1
            try:
                runner.store.verify(artifact.relpath, artifact.size, artifact.checksum,
                                    reread=True)
            except (MissingArtifactError, CorruptArtifactError, UnsafePathError) as exc:
                problems.append((run.id, artifact.name, str(exc)))
        report.broken += problems
        if problems and fix:
            runner.catalog.invalidate(run.id, f"verify: {problems[0][2]}")
            report.fixed.append(run.id)
    return report


@dataclass
class GcReport:
    runs: list[int] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    bytes: int = 0
    dry_run: bool = False
    max_bytes: int | None = None
    kept_bytes: int = 0  # artifacts of the runs left in the catalog

    def __str__(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        text = (f"taskcache gc: {verb} {len(self.runs)} runs and {len(self.files)} files, "
                f"{self.bytes / 1e6:.1f} MB ({self.bytes:,} bytes)")
        if self.max_bytes is not None:
            left = "would be left" if self.dry_run else "left"
            text += (f"; {self.kept_bytes / 1e6:.1f} MB ({self.kept_bytes:,} bytes) of "
                     f"artifacts {left}, limit {self.max_bytes / 1e6:.1f} MB")
            if self.kept_bytes > self.max_bytes:
                text += " (the rest is in use, read by kept runs, or not completed)"
        if self.dry_run and self.runs:
            shown = ", ".join(f"#{i}" for i in self.runs[:50])
            more = f" and {len(self.runs) - 50} more" if len(self.runs) > 50 else ""
            text += f"\n  runs: {shown}{more}"
        return text


def size_argument(text: str) -> int:
    """:func:`parse_size` for argparse, so a bad size is a usage error that shows the fix."""
    import argparse

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _last_used(run: RunRecord) -> datetime:
    return run.last_hit_at or run.finished_at or run.created_at


def select_for_gc(
    runs: list[RunRecord], *, older_than_days: float | None, keep_last: int | None,
    drop_failed: bool, now: datetime,
) -> set[int]:
    """Ids of the runs a gc with these rules deletes (pure). Running runs are never chosen."""
    doomed: set[int] = set()
    per_task: dict[str, int] = defaultdict(int)
    cutoff = None if older_than_days is None else now - timedelta(days=older_than_days)
    for run in sorted(runs, key=lambda r: r.id, reverse=True):
        if run.status in ("failed", "cancelled") or (run.status == "completed" and run.invalid_reason):
            if drop_failed:
                doomed.add(run.id)
            continue
        if run.status != "completed":
            continue
        per_task[run.task] += 1
        if keep_last is not None and per_task[run.task] > keep_last:
            doomed.add(run.id)
        elif cutoff is not None and _last_used(run) < cutoff:
            doomed.add(run.id)
    return doomed


def _keep_lineage(records: list[RunRecord], doomed: set[int]) -> set[int]:
    """``doomed`` less every run whose output a kept run read, transitively (keeping a run
    keeps the producers of its own inputs too)."""
    doomed = set(doomed)
    while needed := {i.producer_run_id for r in records if r.id not in doomed
                     for i in r.inputs} & doomed:
        doomed -= needed
    return doomed


def select_to_fit(records: list[RunRecord], doomed: set[int], max_bytes: int) -> set[int]:
    """Further completed runs to delete (pure), least recently used first (last hit, else
    finished), until the artifacts of the runs kept total at most ``max_bytes``. A run
    whose output a kept run read is skipped while that reader stays."""
    by_id = {r.id: r for r in records}
    size = {r.id: sum(a.size for a in r.artifacts) for r in records}
    total = sum(size[i] for i in by_id if i not in doomed)
    readers: dict[int, set[int]] = defaultdict(set)  # producer -> kept runs that read it
    for r in records:
        if r.id not in doomed:
            for i in r.inputs:
                if i.producer_run_id is not None and i.producer_run_id != r.id:
                    readers[i.producer_run_id].add(r.id)
    queue = [(_last_used(r), r.id) for r in records if r.id not in doomed
             and r.status == "completed" and not r.invalid_reason]
    heapq.heapify(queue)
    dropped: set[int] = set()
    blocked: set[int] = set()
    while queue and total > max_bytes:
        _, run_id = heapq.heappop(queue)
        if readers[run_id]:
            blocked.add(run_id)  # comes back if its last reader goes
            continue
        dropped.add(run_id)
        total -= size[run_id]
        for i in by_id[run_id].inputs:
            producer = i.producer_run_id
            if producer is not None and producer in readers:
                readers[producer].discard(run_id)
                if not readers[producer] and producer in blocked:
                    blocked.discard(producer)
                    heapq.heappush(queue, (_last_used(by_id[producer]), producer))
    return dropped


def gc(
    *, older_than_days: float | None = None, keep_last: int | None = None,
    max_bytes: int | None = None, drop_failed: bool = True, dry_run: bool = False,
    runner: Runner | None = None,
) -> GcReport:
    """Delete failed/cancelled/broken runs, completed runs unused for ``older_than_days`` or
    beyond the newest ``keep_last`` of their task, then, with ``max_bytes``, the least
    recently used completed runs until their artifacts total at most ``max_bytes`` bytes;
    and stale temp files and artifact files no run refers to. A run whose output a kept run
    read (lineage) is kept."""
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int)
                                  or max_bytes < 0):
        raise ValueError(f"max_bytes must be a number of bytes (an int >= 0), not {max_bytes!r}; "
                         f"taskcache.config.parse_size('500MB') converts a size")
    runner = runner or get_runner()
    runner.hits.flush()  # this process's recent hits count as use
    catalog = runner.catalog
    records = [catalog.get_run(r.id) for r in catalog.query_runs(limit=ALL)]
    doomed = select_for_gc(records, older_than_days=older_than_days, keep_last=keep_last,
                           drop_failed=drop_failed, now=datetime.now(UTC))
    doomed = _keep_lineage(records, doomed)
    if max_bytes is not None:
        doomed |= select_to_fit(records, doomed, max_bytes)
    report = GcReport(runs=sorted(doomed), dry_run=dry_run, max_bytes=max_bytes)
    report.kept_bytes = sum(a.size for r in records if r.id not in doomed for a in r.artifacts)
    report.bytes = sum(a.size for r in records if r.id in doomed for a in r.artifacts)
    referenced = catalog.artifact_relpaths()
    doomed_files = {a.relpath for r in records if r.id in doomed for a in r.artifacts}
    for relpath in runner.store.iter_files():
        if relpath in referenced:
            continue
        info = runner.store.file_info(relpath)
        if info is None:
            continue
        size, modified = info
        if datetime.now(UTC).timestamp() - modified >= ORPHAN_MIN_AGE:
            report.files.append(relpath)
            report.bytes += size
    report.files += sorted(doomed_files)
    if dry_run:
        return report
    catalog.delete_runs(report.runs)
    for relpath in report.files:
        runner.store.delete(relpath)
    runner.store.sweep_temp(ORPHAN_MIN_AGE)
    return report
