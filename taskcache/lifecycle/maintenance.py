"""Keeping a catalog healthy: ``verify`` checks every artifact, ``gc`` frees space."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from taskcache.config import parse_size
from taskcache.errors import (
    CatalogDamagedError,
    CatalogUnavailableError,
    CorruptArtifactError,
    MissingArtifactError,
    UnsafePathError,
)
from taskcache.lifecycle.eviction import ALL, keep_lineage, last_used, select_to_fit
from taskcache.lifecycle.runner import Runner, get_runner
from taskcache.records import RunRecord

#: the longest age gc takes (about 270 years: older is "everything", and a datetime cannot
#: go back much further)
MAX_DAYS = 100_000
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
    return [r for r in runner.catalog.query_runs(status="completed", limit=ALL, full=True)
            if r.invalid_reason is None]


def verify(*, fix: bool = False, runner: Runner | None = None) -> VerifyReport:
    """Check size and checksum of every artifact of every servable run, and the database.
    A damaged catalog file (not a database, truncated) is reported, not raised."""
    report = VerifyReport()
    try:
        runner = runner or get_runner()
        report.integrity = runner.catalog.integrity_check()
        _verify_artifacts(runner, report, fix=fix)
    except CatalogDamagedError as exc:
        report.integrity = str(exc)
    return report


def _verify_artifacts(runner: Runner, report: VerifyReport, *, fix: bool) -> None:
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


@dataclass
class GcReport:
    runs: list[int] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    bytes: int = 0
    dry_run: bool = False
    max_bytes: int | None = None
    kept_bytes: int = 0  # artifacts of the runs left in the catalog
    young_temp: int = 0  # temp files younger than ORPHAN_MIN_AGE: maybe a write in progress

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
        if self.young_temp:
            text += (f"\n  kept {self.young_temp} temp files younger than "
                     f"{ORPHAN_MIN_AGE / 3600:g} h (a write may be in progress; those of a "
                     f"killed process are removed by a gc once that old)")
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
        elif cutoff is not None and last_used(run) < cutoff:
            doomed.add(run.id)
    return doomed


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
    if keep_last is not None and (isinstance(keep_last, bool) or not isinstance(keep_last, int)
                                  or keep_last < 0):
        raise ValueError(f"keep_last must be a number of runs (an int >= 0), not {keep_last!r}")
    if older_than_days is not None and not 0 <= older_than_days <= MAX_DAYS:  # NaN too
        raise ValueError(f"older_than_days must be a number of days from 0 to {MAX_DAYS}, "
                         f"not {older_than_days!r}")
    runner = runner or get_runner()
    runner.hits.flush()  # this process's recent hits count as use
    catalog = runner.catalog
    records = catalog.query_runs(limit=ALL, full=True)
    doomed = select_for_gc(records, older_than_days=older_than_days, keep_last=keep_last,
                           drop_failed=drop_failed, now=datetime.now(UTC))
    doomed = keep_lineage(records, doomed)
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
        report.young_temp = _young_temp_files(runner)
        return report
    try:
        catalog.delete_runs(report.runs)
    except CatalogUnavailableError:
        # e.g. a full disk, where SQLite cannot even start a write: free the space first,
        # then remove the rows (meanwhile a hit of those runs finds its files missing and
        # recomputes, as for any missing artifact); if it still fails, the error says why
        _delete_files(runner, report.files)
        catalog.delete_runs(report.runs)
    else:
        _delete_files(runner, report.files)
    report.young_temp = _young_temp_files(runner)
    return report


def _delete_files(runner: Runner, relpaths: list[str]) -> None:
    for relpath in relpaths:
        runner.store.delete(relpath)
    runner.store.sweep_temp(ORPHAN_MIN_AGE)


def _young_temp_files(runner: Runner) -> int:
    cutoff = datetime.now(UTC).timestamp() - ORPHAN_MIN_AGE
    young = 0
    temp_files = getattr(runner.store, "temp_files", None)  # a remote store: its uploads
    for path in temp_files() if temp_files is not None else ():  # are not counted
        with contextlib.suppress(FileNotFoundError):  # finished meanwhile
            young += path.lstat().st_mtime > cutoff
    return young
