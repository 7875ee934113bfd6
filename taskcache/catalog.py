"""SQLAlchemy 2.0 models and the Catalog class: claims, state changes, queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .records import ArtifactRecord, Claim, RunRecord, RunSpec, StateChange

SCHEMA_VERSION = 1


class Catalog:
    def __init__(self, url: str, *, busy_timeout: float = 30.0) -> None:
        raise NotImplementedError

    # -- the hit path (SQLAlchemy Core, one short read) --
    def find_completed(self, fingerprint: str) -> RunRecord | None:
        """Newest completed, not invalidated run with this fingerprint, with its artifacts."""
        raise NotImplementedError

    def record_hit(self, run_id: int) -> None:
        raise NotImplementedError

    # -- the miss path --
    def claim(self, spec: RunSpec, *, lease_seconds: float) -> Claim:
        """Insert a run straight into 'running' (history: pending->running) with a lease;
        links each input to the newest artifact of a completed run with the same value hash."""
        raise NotImplementedError

    def complete(self, claim: Claim, artifacts: Sequence[ArtifactRecord], *, duration: float) -> RunRecord:
        """Artifacts rows + running->completed in one transaction, fenced by the lease token."""
        raise NotImplementedError

    def finish_failed(
        self, claim: Claim, *, status: str, error_type: str | None, error_message: str | None,
        traceback: str | None, duration: float | None, reason: str | None = None,
    ) -> RunRecord:
        """running->failed|cancelled with the error; history row with ``reason``."""
        raise NotImplementedError

    def invalidate(self, run_id: int, reason: str) -> None:
        """Stop serving a completed run from cache (its artifacts failed to verify)."""
        raise NotImplementedError

    # -- queries --
    def get_run(self, run_id: int) -> RunRecord:
        raise NotImplementedError

    def query_runs(
        self, *, task: str | None = None, status: str | None = None, tag: str | None = None,
        since: datetime | None = None, fingerprint: str | None = None,
        limit: int = 100, offset: int = 0,
    ) -> list[RunRecord]:
        """Newest first; without inputs/artifacts loaded."""
        raise NotImplementedError

    def history(self, run_id: int) -> list[StateChange]:
        raise NotImplementedError

    def upstream(self, run_id: int) -> list[RunRecord]:
        """Runs that produced this run's inputs (through InputRecord.producer_run_id)."""
        raise NotImplementedError

    def downstream(self, run_id: int) -> list[RunRecord]:
        """Runs with an input produced by an artifact of this run."""
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        """{"runs": n, "by_status": {...}, "by_task": {...}, "hits": n, "time_saved": seconds,
        "disk_bytes": total artifact size}"""
        raise NotImplementedError

    def delete_runs(self, run_ids: Sequence[int]) -> list[ArtifactRecord]:
        """Delete runs with their inputs/artifacts/history rows; returns the artifact rows
        removed so the caller can delete files."""
        raise NotImplementedError

    def dispose(self) -> None:
        raise NotImplementedError
