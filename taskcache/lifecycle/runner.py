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
import dataclasses
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
    PickleDisabledError,
    RunDeletedError,
    RunNotFoundError,
    StoreError,
    UnsafePathError,
    UnstorableValueError,
)
from taskcache.fileio import atomic_write
from taskcache.hashing import hash_value
from taskcache.lifecycle import restore
from taskcache.lifecycle.eviction import SizeBound
from taskcache.lifecycle.failures import FailureLog, failure_fields
from taskcache.lifecycle.heartbeat import LeaseKeeper
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
from taskcache.storage.folders import (
    prepare_cache_dir,
    prepare_catalog_file,
    private_dir,
    sqlite_file,
)
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
        self._open()

    def _open(self) -> None:
        settings = self.settings
        private = settings.allow_pickle  # pickle off: a catalog may be shared on purpose
        prepare_cache_dir(settings.cache_dir, private=private)
        if private:
            prepare_catalog_file(settings.db_url, settings.cache_dir)
            if not settings.remote_artifacts:
                # another user's folder (e.g. a symlink to it) is refused, never chmod-ed
                private_dir(settings.artifacts_dir, "artifacts folder")
        self.store: ArtifactStore | RemoteStore = (
            RemoteStore(settings.artifacts_url, settings.cache_dir / "remote-copies",
                        max_local_bytes=settings.artifacts_cache_bytes)
            if settings.remote_artifacts else ArtifactStore(settings.artifacts_dir))
        self.catalog = Catalog(settings.db_url, busy_timeout=settings.busy_timeout_seconds)
        # what must still exist for this runner to be usable (see reopen_if_gone)
        catalog_file = sqlite_file(settings.db_url)
        local_root = None if settings.remote_artifacts else settings.artifacts_dir
        self._needed = tuple(str(p) for p in (catalog_file, local_root) if p is not None)
        self.hits = HitLog(self.catalog)
        #: renews the leases of this runner's running runs (see heartbeat)
        self.leases = LeaseKeeper(self.catalog, lease=settings.lease_seconds,
                                  interval=settings.heartbeat_seconds)
        self.files = FileChecker()
        # failures the catalog could not record yet (see fail_quietly): retried before claims
        self.failures = FailureLog(self.catalog, self._delete_quietly)
        #: with a max_size, keeps the artifacts within it after every completed run
        self.size_bound = (None if settings.max_size is None else
                           SizeBound(self.catalog, self.store, self.hits.flush, settings.max_size))

    def reopen_if_gone(self) -> None:
        """Start afresh when the catalog file or the artifacts folder was deleted (``rm -rf
        .taskcache`` while a kernel runs): open connections would keep using the deleted
        file. Checked before every claim and catalog listing, not on the hit path (a hit of
        a deleted folder finds its artifacts missing, and becomes a claim)."""
        if all(os.path.exists(path) for path in self._needed):
            return
        with contextlib.suppress(Exception):  # its connections point at deleted files
            self.close()
        self._open()

    def close(self) -> None:
        """Write pending hit counts and release the database connections."""
        with contextlib.suppress(CatalogUnavailableError):
            self.failures.settle()
        if self.size_bound is not None:
            self.size_bound.wait()
        self.hits.flush()
        self.catalog.dispose()

    # -- hit path -------------------------------------------------------------------------
    def lookup(self, fingerprint: str, *, count_hit: bool = True,
               prepare: Callable[[RunRecord], bool] | None = None) -> Hit | None:
        """The outputs of the newest completed run with ``fingerprint`` whose recorded files
        still hold and whose artifacts all verify; None on a miss. The files that run wrote
        are put back where missing or changed. A missing or corrupt artifact invalidates its
        run (it will be recomputed) and warns. ``prepare(run)``, when given, runs before the
        outputs are decoded (a cell puts back the functions its stored values refer to); it
        may load some outputs itself, and returning False turns that run down (it stays
        valid)."""
        return self._find(fingerprint, count_hit=count_hit, prepare=prepare)[0]

    def lookup_many(self, fingerprints: Sequence[str],
                    prepare: Callable[[RunRecord], bool] | None = None) -> list[Hit | None]:
        """:meth:`lookup` of each fingerprint (a sweep's points), in order, their completed
        runs read from the catalog in one statement."""
        candidates = self.catalog.completed_runs_many(fingerprints)
        return [self._find(fingerprint, prepare=prepare, candidates=candidates[fingerprint])[0]
                for fingerprint in fingerprints]

    def servable(self, fingerprint: str, prepare: Callable[[RunRecord], bool] | None = None,
                 ) -> RunRecord | None:
        """The run a lookup would serve (its files checked, nothing loaded or put back;
        ``prepare`` as for :meth:`lookup`)."""
        for run in self.catalog.completed_runs(fingerprint):
            if self._files_to_put_back(run) is not None and (prepare is None or prepare(run)):
                return run
        return None

    def _find(self, fingerprint: str, *, count_hit: bool = True,
              prepare: Callable[[RunRecord], bool] | None = None,
              candidates: Sequence[RunRecord] | None = None) -> tuple[Hit | None, int]:
        """The hit, and the id of the newest completed run looked at (0 when none);
        ``candidates``: the completed runs of ``fingerprint``, already read."""
        if candidates is None:
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
                if prepare is not None and not prepare(run):
                    continue
                outputs = self.load_outputs(run)
                for record, artifact in put_back:
                    self._put_back(record, artifact)
            except PickleDisabledError:
                continue  # a module this process has not imported, pickle off: recompute
            except (MissingArtifactError, CorruptArtifactError, UnsafePathError) as exc:
                # UnsafePathError: a folder of the run replaced by a symlink leading out of
                # the store; nothing is read there, and the run is recomputed as for a
                # corrupt file
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
        self.reopen_if_gone()
        self.failures.settle()
        return self.catalog.claim(spec, lease_seconds=self.settings.lease_seconds)

    def acquire(
        self, spec: RunSpec, *, on_wait: Callable[[RunRecord], None] | None = None,
        max_wait: float | None = None, prepare: Callable[[RunRecord], bool] | None = None,
    ) -> Claim | Hit:
        """Single-flight: claim the run, or, while another process computes the same
        fingerprint, wait for it (polling with backoff) and return its result as a Hit. If
        that run fails or its owner dies (lease expired), one waiter claims it next; after
        MAX_ABANDONED deaths since its last completion, RepeatedlyAbandonedError instead
        (``start``, i.e. --force / .force(), still claims it). ``prepare`` is lookup's."""
        self.reopen_if_gone()
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
                hit, newest = self._find(spec.fingerprint, prepare=prepare)
                if hit is not None:
                    return hit
                # its files changed, its artifacts failed to verify, this process may not
                # load them (pickle disabled), or prepare turned it down: claim, or join a run computing it now
                stale = max(stale, newest, outcome.id)
                continue
            if waited_for != outcome.id and on_wait is not None:
                on_wait(outcome)
            waited_for = outcome.id
            if deadline is not None and time.monotonic() > deadline:
                return self.start(spec)
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    def claim_many(self, specs: Sequence[RunSpec]) -> list[Claim | None]:
        """Claim, in one transaction, the run of each spec that no process computes and none
        has computed (single-flight, as :meth:`acquire`); None for the others, which
        :meth:`acquire` then waits for, serves or refuses one by one."""
        if not specs:
            return []
        self.reopen_if_gone()
        self.failures.settle()
        outcomes = self.catalog.claim_or_join_many(
            specs, lease_seconds=self.settings.lease_seconds, max_abandoned=MAX_ABANDONED)
        return [outcome if isinstance(outcome, Claim) else None for outcome in outcomes]

    def heartbeat(self, claim: Claim) -> contextlib.AbstractContextManager[None]:
        """Renew ``claim``'s lease while the body runs: ``with runner.heartbeat(claim): ...``"""
        return self.leases.holding([claim])

    def save(
        self,
        claim: Claim,
        task: str,
        outputs: Mapping[str, Any],
        *,
        duration: float,
        value_hashes: Mapping[str, str] | None = None,
        files: RecordedFiles | None = None,
        record: bool = True,
    ) -> RunRecord | None:
        """Store every output and the files the run wrote (up to ``max_file_output`` bytes;
        bigger ones are recorded by content hash only), then mark the run completed with
        the files it read and wrote. Returns its completed record (None with ``record=False``:
        not read back).

        When the outputs cannot be cached, the run is failed with reason "not cached: ..."
        (best effort: see fail_quietly), its files are removed, and the caller gets, to turn
        into a warning: UnstorableValueError (no codec fits an output, or it failed on the
        value), StoreError (writing failed: disk full, I/O error, permissions; the message
        says where and what to do) or a CatalogError (the completing commit failed:
        CatalogUnavailableError; the run was taken over: LeaseLostError; the run was
        deleted meanwhile: RunDeletedError)."""
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
            completed = self.catalog.complete(claim, written, duration=duration, files=records,
                                              record=record)
        except RunNotFoundError:
            self._delete_quietly(written)
            raise RunDeletedError(claim.run_id) from None
        except (LeaseLostError, InvalidTransitionError):
            self._delete_quietly(written)  # rolled back, and the run is not ours to finish
            raise
        except BaseException as exc:  # the commit failed or was interrupted
            self.fail_quietly(claim, exc, duration=duration, cancelled=isinstance(exc, KeyboardInterrupt),
                              reason=f"not cached: {exc}", written=written)
            raise
        if self.size_bound is not None:
            with contextlib.suppress(CatalogUnavailableError):  # the next write checks again
                self.size_bound.after_write(claim.run_id)
        return completed

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
        record = ArtifactRecord(
            name=name, codec=codec.name, relpath=stored.relpath, size=stored.size,
            checksum=stored.checksum,
            value_hash=value_hashes.get(name) or _output_hash(value, stored.checksum),
            type_name=meta.get("type") or type_name(value),
            shape=_tuple_or_none(meta.get("shape")), rows=meta.get("rows"),
            columns=_tuple_or_none(meta.get("columns")), repr=meta.get("repr", ""),
        )
        if codecs.keeps_hash(codec) or record.value_hash.startswith(_FILE_HASH):
            return record
        # pickle or a user codec: what a hit gives back may hash differently (an object
        # whose pickle drops state); record that hash so runs downstream of a hit still hit
        try:
            restored = hash_value(self.load_artifact(record), as_stored=False)
        except FingerprintError:
            return record
        if restored == record.value_hash:
            return record
        return dataclasses.replace(record, restored_hash=restored)

    def fail_quietly(
        self,
        claim: Claim,
        exc: BaseException,
        *,
        duration: float | None,
        cancelled: bool = False,
        reason: str | None = None,
        written: Sequence[ArtifactRecord] = (),
        file_labels: Mapping[str, str] | None = None,
    ) -> RunRecord | None:
        """``fail`` for when the run's real outcome (the user's exception, a value that could
        not be cached) matters more than recording it: never raises a catalog error. The
        ``written`` files of the run are deleted once it is known not to be completed.
        If the catalog cannot be written now, this is retried before this runner's next
        claim, so this process never waits for its own dead run; other processes take the
        run over once its lease expires. ``file_labels`` names source files in the
        recorded traceback (see ``failures.user_traceback``)."""
        return self.failures.record(
            claim, failure_fields(exc, duration, cancelled, reason, file_labels),
            tuple(written))

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


#: prefix of the lineage hash of an output that has no content hash
_FILE_HASH = "file:"


def _output_hash(value: Any, checksum: str) -> str:
    """The lineage hash of an output: its content hash, or its file checksum if unhashable."""
    try:
        return hash_value(value)
    except FingerprintError:
        return _FILE_HASH + checksum


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


def use_settings(settings: Settings) -> Runner:
    """Make ``settings`` the default runner's (a worker process taking a job from the
    caller: it records into the caller's catalog). Keeps the runner when they are equal."""
    global _default
    if _default is None or _default.settings != settings:
        if _default is not None:
            _default.close()
        _default = Runner(settings)
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
