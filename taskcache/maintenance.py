"""Keeping a catalog healthy: ``verify`` checks every artifact, ``gc`` frees space."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .errors import CorruptArtifactError, MissingArtifactError, UnsafePathError
from .records import RunRecord
from .runner import Runner, get_runner

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
                runner.store.verify(artifact.relpath, artifact.size, artifact.checksum)
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

    def __str__(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return (f"taskcache gc: {verb} {len(self.runs)} runs and {len(self.files)} files, "
                f"{self.bytes / 1e6:.1f} MB")


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


def gc(
    *, older_than_days: float | None = None, keep_last: int | None = None,
    drop_failed: bool = True, dry_run: bool = False, runner: Runner | None = None,
) -> GcReport:
    """Delete failed/cancelled/broken runs, completed runs unused for ``older_than_days`` or
    beyond the newest ``keep_last`` of their task, stale temp files and artifact files no run
    refers to. A run whose output a kept run read (lineage) is kept."""
    runner = runner or get_runner()
    catalog = runner.catalog
    records = [catalog.get_run(r.id) for r in catalog.query_runs(limit=ALL)]
    doomed = select_for_gc(records, older_than_days=older_than_days, keep_last=keep_last,
                           drop_failed=drop_failed, now=datetime.now(UTC))
    needed = {i.producer_run_id for r in records if r.id not in doomed for i in r.inputs}
    doomed -= needed
    report = GcReport(runs=sorted(doomed), dry_run=dry_run)
    report.bytes = sum(a.size for r in records if r.id in doomed for a in r.artifacts)
    referenced = catalog.artifact_relpaths()
    doomed_files = {a.relpath for r in records if r.id in doomed for a in r.artifacts}
    for relpath in runner.store.iter_files():
        if relpath in referenced:
            continue
        path = runner.store.path_of(relpath)
        try:
            stat = path.stat()
        except OSError:
            continue
        if datetime.now(UTC).timestamp() - stat.st_mtime >= ORPHAN_MIN_AGE:
            report.files.append(relpath)
            report.bytes += stat.st_size
    report.files += sorted(doomed_files)
    if dry_run:
        return report
    catalog.delete_runs(report.runs)
    for relpath in report.files:
        runner.store.delete(relpath)
    runner.store.sweep_temp(ORPHAN_MIN_AGE)
    return report
