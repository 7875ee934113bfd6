"""The run lifecycle, shared by ``@task`` and ``%%task``.

    fingerprint -> lookup: the newest completed run whose recorded files still hold and
                   whose artifacts verify -> load, put back the files it wrote, count the hit
                -> miss: claim a running run (lease) -> caller executes (its files tracked)
                   -> save: write every artifact and written file first, then mark
                   completed in one short transaction (or fail/cancel with the error)
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import logging
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskcache import codecs, events
from taskcache.catalog import Catalog
from taskcache.config import Settings
from taskcache.describe import describe, display_path, type_name
from taskcache.errors import (
    CacheWarning,
    CatalogUnavailableError,
    CorruptArtifactError,
    FingerprintError,
    InvalidTransitionError,
    LeaseLostError,
    MissingArtifactError,
    RunNotFoundError,
    StoreError,
    UnstorableValueError,
)
from taskcache.fileio import atomic_write
from taskcache.hashing import hash_value
from taskcache.lifecycle import restore
from taskcache.lifecycle.failures import FailureLog, failure_fields
from taskcache.lifecycle.heartbeat import Heartbeat
from taskcache.lifecycle.hits import HitLog
from taskcache.lifecycle.tracking import RecordedFiles, current_log
from taskcache.records import (
    FILE_CODEC,
    FILE_OUTPUT,
    ArtifactRecord,
    Claim,
    FileRecord,
    RunRecord,
    RunSpec,
)
from taskcache.storage.filestate import FileChecker, identity, snapshot
from taskcache.storage.folders import prepare_cache_dir, refuse_shared_catalog_file
from taskcache.storage.remote import RemoteStore
from taskcache.storage.store import ArtifactStore
from taskcache.storage.verified import SETTLED_NS

log = logging.getLogger("taskcache")

#: a fingerprint whose runs were abandoned (process died, lease expired) this many times
#: since it last completed is not retried automatically: probably it kills its process
MAX_ABANDONED = 3

#: id of the run executing in this context, so a nested task records its parent
current_run_id: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "taskcache_current_run", default=None
)


@dataclass(frozen=True)
class Hit:
    run: RunRecord
    outputs: dict[str, Any]


def print_waiting(run: RunRecord) -> None:
    """The line shown while another process computes the same run."""
    print(f"taskcache: waiting for run #{run.id} ({run.task}) in pid {run.pid} on host "
          f"{run.host}", file=sys.stderr, flush=True)


class Runner:
    """Holds one catalog and one artifact store for a settings object."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        private = settings.allow_pickle  # pickle off: a catalog may be shared on purpose
        prepare_cache_dir(settings.cache_dir, private=private)
        if private:
            refuse_shared_catalog_file(settings.db_url, settings.cache_dir)
        self.store: ArtifactStore | RemoteStore = (
            RemoteStore(settings.artifacts_url, settings.cache_dir / "remote-copies",
                        max_local_bytes=settings.artifacts_cache_bytes)
            if settings.remote_artifacts else ArtifactStore(settings.artifacts_dir))
        self.catalog = Catalog(settings.db_url, busy_timeout=settings.busy_timeout_seconds)
        self.hits = HitLog(self.catalog)
        self.files = FileChecker()
        # failures the catalog could not record yet (see fail_quietly): retried before claims
        self.failures = FailureLog(self.catalog, self._delete_quietly)

    def close(self) -> None:
        """Write pending hit counts and release the database connections."""
        with contextlib.suppress(CatalogUnavailableError):
            self.failures.settle()
        self.hits.flush()
        self.catalog.dispose()

    # -- hit path -------------------------------------------------------------------------
    def lookup(self, fingerprint: str, *, count_hit: bool = True) -> Hit | None:
        """The outputs of the newest completed run with ``fingerprint`` whose recorded files
        still hold and whose artifacts all verify; None on a miss. The files that run wrote
        are put back where missing or changed. A missing or corrupt artifact invalidates its
        run (it will be recomputed) and warns."""
        return self._find(fingerprint, count_hit=count_hit)[0]

    def servable(self, fingerprint: str) -> RunRecord | None:
        """The run a lookup would serve (its files checked, nothing loaded or put back)."""
        for run in self.catalog.completed_runs(fingerprint):
            if self._files_to_put_back(run) is not None:
                return run
        return None

    def _find(self, fingerprint: str, *, count_hit: bool = True) -> tuple[Hit | None, int]:
        """The hit, and the id of the newest completed run looked at (0 when none)."""
        candidates = self.catalog.completed_runs(fingerprint)
        for run in candidates:
            put_back = self._files_to_put_back(run)
            if put_back is None:
                continue  # a file it read (or wrote, too big to store) is not as it was
            if not self.settings.allow_pickle and any(
                codecs.get_codec(a.codec).unsafe for a in run.artifacts
            ):
                continue  # stored as pickle by a run that allowed it; never unpickle
            try:
                outputs = self.load_outputs(run)
                for record, artifact in put_back:
                    self._put_back(record, artifact)
            except (MissingArtifactError, CorruptArtifactError) as exc:
                warnings.warn(f"taskcache: run #{run.id} ({run.task}): {exc}", CacheWarning, stacklevel=4)
                self.catalog.invalidate(run.id, str(exc))
                continue
            except OSError as exc:  # a file could not be put back: a hit would be wrong
                warnings.warn(f"taskcache: run #{run.id} ({run.task}): could not restore a file "
                              f"it wrote: {exc}; running it instead", CacheWarning, stacklevel=4)
                continue
            if run.files and (log := current_log()) is not None:
                log.merge(run.files)  # the enclosing run depends on them too
            if count_hit:
                self.hits.add(run.id)
                if events.has_handlers("hit"):
                    events.emit("hit", run)
            return Hit(run, outputs), candidates[0].id
        return None, candidates[0].id if candidates else 0

    def _files_to_put_back(self, run: RunRecord) -> list[tuple[FileRecord, ArtifactRecord]] | None:
        """The written files of ``run`` to put back (with their stored copies) for a hit,
        or None when it cannot be a hit: a file it read is not as it was, or a file it
        wrote differs and was too big to store."""
        if not run.files:
            return []
        put_back = []
        for record in run.files:
            if self.files.holds(record):
                continue
            if record.role == "read":
                return None
            stored = next((a for a in run.artifacts if a.name == FILE_OUTPUT + record.path), None)
            if stored is None or not self._may_put_back(record.path):
                return None
            put_back.append((record, stored))
        return put_back

    def _may_put_back(self, path: str) -> bool:
        """With pickle off the catalog may be shared on purpose (see the trust model), and
        whoever can write to it must not get files written anywhere: only inside the
        working folder; a run that wrote elsewhere is then a miss (it writes them itself)."""
        if self.settings.allow_pickle:
            return True
        cwd = os.getcwd()
        return path.startswith(cwd.rstrip(os.sep) + os.sep)

    def _put_back(self, record: FileRecord, artifact: ArtifactRecord) -> None:
        """Write the stored copy over ``record.path`` atomically (checksum checked first)."""
        source = self.store.verify(artifact.relpath, artifact.size, artifact.checksum)
        target = Path(record.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, lambda tmp: shutil.copyfile(source, tmp),
                     mode=record.mode if record.mode is not None else 0o644)

    def load_outputs(self, run: RunRecord, names: Iterable[str] | None = None) -> dict[str, Any]:
        """The run's outputs (or only ``names``), each verified then decoded."""
        return restore.load_outputs(self.store, run, names, allow_pickle=self.settings.allow_pickle)

    def load_artifact(self, artifact: ArtifactRecord) -> Any:
        """One artifact, verified then decoded (see :mod:`taskcache.lifecycle.restore`)."""
        return restore.load_artifact(self.store, artifact, allow_pickle=self.settings.allow_pickle)

    # -- miss path ------------------------------------------------------------------------
    def start(self, spec: RunSpec) -> Claim:
        """Claim a new run unconditionally (``--force``, ``.force()``, ``cache=False``)."""
        self.failures.settle()
        return self.catalog.claim(spec, lease_seconds=self.settings.lease_seconds)

    def acquire(
        self, spec: RunSpec, *, on_wait: Callable[[RunRecord], None] | None = None,
        max_wait: float | None = None,
    ) -> Claim | Hit:
        """Single-flight: claim the run, or, while another process computes the same
        fingerprint, wait for it (polling with backoff) and return its result as a Hit. If
        that run fails or its owner dies (lease expired), one waiter claims it next; after
        MAX_ABANDONED deaths since its last completion, RepeatedlyAbandonedError instead
        (``start``, i.e. --force / .force(), still claims it)."""
        self.failures.settle()
        delay, waited_for = 0.02, None
        deadline = None if max_wait is None else time.monotonic() + max_wait
        stale = 0  # completed runs up to this id cannot serve us (their files changed, ...)
        while True:
            outcome = self.catalog.claim_or_join(spec, lease_seconds=self.settings.lease_seconds,
                                                 max_abandoned=MAX_ABANDONED, newer_than=stale)
            if isinstance(outcome, Claim):
                return outcome
            if outcome.status == "completed":
                hit, newest = self._find(spec.fingerprint)
                if hit is not None:
                    return hit
                # its files changed, its artifacts failed to verify, or this process may
                # not load them (pickle disabled): claim, or join a run computing it now
                stale = max(stale, newest, outcome.id)
                continue
            if waited_for != outcome.id and on_wait is not None:
                on_wait(outcome)
            waited_for = outcome.id
            if deadline is not None and time.monotonic() > deadline:
                return self.start(spec)
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    def heartbeat(self, claim: Claim) -> Heartbeat:
        """Renew ``claim``'s lease while the body runs: ``with runner.heartbeat(claim): ...``"""
        return Heartbeat(self.catalog, claim, lease=self.settings.lease_seconds,
                         interval=self.settings.heartbeat_seconds)

    def save(
        self,
        claim: Claim,
        task: str,
        outputs: Mapping[str, Any],
        *,
        duration: float,
        value_hashes: Mapping[str, str] | None = None,
        files: RecordedFiles | None = None,
    ) -> RunRecord:
        """Store every output and the files the run wrote (up to ``max_file_output`` bytes;
        bigger ones are recorded by content hash only), then mark the run completed with
        the files it read and wrote.

        When the outputs cannot be cached, the run is failed with reason "not cached: ..."
        (best effort: see fail_quietly), its files are removed, and the caller gets, to turn
        into a warning: UnstorableValueError (no codec fits an output, or it failed on the
        value), StoreError (writing failed: disk full, I/O error, permissions; the message
        says where and what to do) or a CatalogError (the completing commit failed:
        CatalogUnavailableError; the run was taken over: LeaseLostError)."""
        value_hashes = value_hashes or {}
        try:
            chosen = {
                name: codecs.codec_for(value, allow_pickle=self.settings.allow_pickle, name=name,
                                       prefer=self.settings.frame_format)
                for name, value in outputs.items()
            }
        except UnstorableValueError as exc:
            self.fail_quietly(claim, exc, duration=duration, reason=f"not cached: {exc}")
            raise
        written: list[ArtifactRecord] = []
        current: str | None = None
        try:
            for current, value in outputs.items():
                written.append(self._write_output(claim, task, current, value, chosen[current], value_hashes))
        except BaseException as exc:
            self._delete_quietly(written)
            error: BaseException = exc
            if isinstance(exc, OSError):
                error = _store_error(current, claim.run_id, exc)
            elif isinstance(exc, Exception):  # the codec failed on this value
                error = UnstorableValueError(current, type_name(outputs[current]), str(exc))
            self.fail_quietly(claim, exc, duration=duration, cancelled=isinstance(exc, KeyboardInterrupt),
                              reason=f"not cached: {error}")
            if error is exc:
                raise
            raise error from exc
        records: list[FileRecord] = list(files.reads) if files is not None else []
        if files is not None and files.written:
            try:
                records += self._store_written(claim, task, files.written, written)
            except BaseException as exc:
                self._delete_quietly(written)
                error = _store_error("files written", claim.run_id, exc) if isinstance(exc, OSError) else exc
                self.fail_quietly(claim, exc, duration=duration, cancelled=isinstance(exc, KeyboardInterrupt),
                                  reason=f"not cached: {error}")
                if error is exc:
                    raise
                raise error from exc
        try:
            return self.catalog.complete(claim, written, duration=duration, files=records)
        except (LeaseLostError, InvalidTransitionError, RunNotFoundError):
            self._delete_quietly(written)  # rolled back, and the run is not ours to finish
            raise
        except BaseException as exc:  # the commit failed or was interrupted
            self.fail_quietly(claim, exc, duration=duration, cancelled=isinstance(exc, KeyboardInterrupt),
                              reason=f"not cached: {exc}", written=written)
            raise

    def _store_written(
        self, claim: Claim, task: str, paths: Sequence[str], written: list[ArtifactRecord],
    ) -> list[FileRecord]:
        """A FileRecord (role "written") per path; copies of them appended to ``written`` as
        artifacts while they fit in ``max_file_output`` bytes in total."""
        budget = self.settings.max_file_output
        records = []
        for number, path in enumerate(paths):
            try:
                before = os.stat(path)
            except FileNotFoundError:
                continue  # removed again since the run ended
            if before.st_size > budget:
                records.append(snapshot(path, "written"))
                continue
            stored = self.store.write([task, str(claim.run_id), f"file{number}-{Path(path).name}"],
                                      "", lambda tmp, path=path: shutil.copyfile(path, tmp))
            if identity(os.stat(path)) != identity(before) or stored.size != before.st_size:
                # changed while copied (something else writes it): the copy may be torn
                self.store.delete(stored.relpath)
                records.append(FileRecord(path, "written", "file"))
                continue
            content = f"file:{stored.checksum}"
            written.append(ArtifactRecord(
                name=FILE_OUTPUT + path, codec=FILE_CODEC, relpath=stored.relpath,
                size=stored.size, checksum=stored.checksum, value_hash=content,
                type_name="file", repr=display_path(path)))
            budget -= stored.size
            records.append(FileRecord(
                path, "written", "file", size=before.st_size, mtime_ns=before.st_mtime_ns,
                ctime_ns=before.st_ctime_ns, inode=before.st_ino, mode=before.st_mode & 0o7777,
                content_hash=content,
                racy=time.time_ns() - max(before.st_mtime_ns, before.st_ctime_ns) < SETTLED_NS))
        return records

    def _write_output(
        self, claim: Claim, task: str, name: str, value: Any, codec: codecs.Codec,
        value_hashes: Mapping[str, str],
    ) -> ArtifactRecord:
        stored = self.store.write([task, str(claim.run_id), name], codec.suffix,
                                  lambda path: codec.encode(value, path))
        meta = describe(value)
        return ArtifactRecord(
            name=name, codec=codec.name, relpath=stored.relpath, size=stored.size,
            checksum=stored.checksum,
            value_hash=value_hashes.get(name) or _output_hash(value, stored.checksum),
            type_name=meta.get("type") or type_name(value),
            shape=_tuple_or_none(meta.get("shape")), rows=meta.get("rows"),
            columns=_tuple_or_none(meta.get("columns")), repr=meta.get("repr", ""),
        )

    def fail_quietly(
        self,
        claim: Claim,
        exc: BaseException,
        *,
        duration: float | None,
        cancelled: bool = False,
        reason: str | None = None,
        written: Sequence[ArtifactRecord] = (),
    ) -> RunRecord | None:
        """``fail`` for when the run's real outcome (the user's exception, a value that could
        not be cached) matters more than recording it: never raises a catalog error. The
        ``written`` files of the run are deleted once it is known not to be completed.
        If the catalog cannot be written now, this is retried before this runner's next
        claim, so this process never waits for its own dead run; other processes take the
        run over once its lease expires."""
        return self.failures.record(
            claim, failure_fields(exc, duration, cancelled, reason), tuple(written))

    def _delete_quietly(self, artifacts: Iterable[ArtifactRecord]) -> None:
        for artifact in artifacts:
            try:
                self.store.delete(artifact.relpath)
            except OSError:
                log.warning("taskcache: could not remove partial artifact %s", artifact.relpath)


_OS_ADVICE = {errno.ENOSPC: "free space and re-run", errno.EDQUOT: "free space and re-run",
              errno.EIO: "check the disk and re-run", errno.EACCES: "make it writable and re-run",
              errno.EPERM: "make it writable and re-run",
              errno.EROFS: "point TASKCACHE_DIR at a writable folder and re-run"}


def _store_error(name: str | None, run_id: int, exc: OSError) -> StoreError:
    """A StoreError (same errno) naming the output, the cause, where, and what to do, e.g.
    "... No space left on device at /cache/artifacts/fit/3; free space and re-run"."""
    orig = exc.__cause__ if isinstance(exc, StoreError) and isinstance(exc.__cause__, OSError) else exc
    code = exc.errno or orig.errno
    what = os.strerror(code) if code else (orig.strerror or str(orig))
    filename = orig.filename or exc.filename
    where = f" at {Path(os.fsdecode(filename)).parent}" if filename else ""
    advice = _OS_ADVICE.get(code) if code else None
    error = StoreError(f"could not write output {name!r} of run #{run_id}: {what}{where}"
                       + (f"; {advice}" if advice else ""))
    error.errno = code
    return error


def _output_hash(value: Any, checksum: str) -> str:
    """The lineage hash of an output: its content hash, or its file checksum if unhashable."""
    try:
        return hash_value(value)
    except FingerprintError:
        return f"file:{checksum}"


def _tuple_or_none(value: Any) -> tuple | None:
    return None if value is None else tuple(value)


# -- the process-wide default runner ----------------------------------------------------
_settings_overrides: dict[str, Any] = {}
_default: Runner | None = None


def configure(**settings: Any) -> Settings:
    """Change the process-wide settings (cache_dir, db_url, allow_pickle, ...)."""
    global _default
    from taskcache.config import resolve_settings

    merged = {**_settings_overrides, **{k: v for k, v in settings.items() if v is not None}}
    resolved = resolve_settings(**merged)  # validate before keeping anything
    _settings_overrides.clear()
    _settings_overrides.update(merged)
    if _default is not None:
        _default.close()
    _default = None
    return resolved


def get_runner() -> Runner:
    """The runner for the current settings, created on first use."""
    global _default
    if _default is None:
        from taskcache.config import resolve_settings

        _default = Runner(resolve_settings(**_settings_overrides))
    return _default


def current_settings() -> Settings:
    """The settings the default runner has or would have (without opening the catalog)."""
    if _default is not None:
        return _default.settings
    from taskcache.config import resolve_settings

    return resolve_settings(**_settings_overrides)


def reset() -> None:
    """Forget configured settings and the default runner (tests, %reload_ext)."""
    global _default
    if _default is not None:
        _default.close()
    _default = None
    _settings_overrides.clear()
