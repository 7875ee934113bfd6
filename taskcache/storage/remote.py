"""Artifacts on any fsspec URL (``s3://bucket/prefix``, ``gs://``, ``az://``, ``file://``,
a shared mount), with a local read-through copy.

Writing: the codec writes a local file (atomic, checksummed, as for a local store), which is
uploaded to a temporary key beside its final key and then moved there, so a reader never
sees a partial object; the catalog row is written only after that. An upload left behind by
a killed process keeps its temporary name, and ``gc`` sweeps it.

Reading: the object is downloaded once into the local copy, named by its checksum
(content-addressed: equal artifacts of different runs share one copy), checksummed before
anything is decoded, and then read exactly as a local artifact (verified-file memo, memory
maps). The local copy is kept within ``max_local_bytes`` by dropping the least recently used
files after each download or write, never on the hit path. Credentials and endpoints come
from each filesystem's standard places (for S3 the AWS variables, ``AWS_ENDPOINT_URL``
included).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from taskcache.errors import CorruptArtifactError, MissingArtifactError, StoreError
from taskcache.fileio import TEMP_PREFIX
from taskcache.storage.store import ArtifactStore, StoredFile, artifact_relpath

__all__ = ["RemoteStore", "is_remote_url"]


def is_remote_url(url: str | None) -> bool:
    """True for a URL fsspec handles other than a plain local folder."""
    return bool(url) and "://" in url and not url.startswith("file://")


class RemoteStore:
    """The artifact store's interface (write, verify, read_verified, map_verified, delete,
    sweep_temp, iter_files, file_info) over an fsspec URL."""

    def __init__(self, url: str, local_root: Path, *, max_local_bytes: int) -> None:
        from fsspec.core import url_to_fs

        self.url = url.rstrip("/")
        self.fs, self.prefix = url_to_fs(self.url)
        self.prefix = self.prefix.rstrip("/")
        self.local = ArtifactStore(local_root)
        self.max_local_bytes = max_local_bytes

    # -- names
    def key(self, relpath: str) -> str:
        return f"{self.prefix}/{relpath}"

    def shown(self, relpath: str) -> str:
        return f"{self.url}/{relpath}"

    @staticmethod
    def _local_name(checksum: str) -> str:
        digest = checksum.split(":", 1)[-1]
        return f"{digest[:2]}/{digest}"

    # -- writing
    def write(self, parts: Sequence[str], suffix: str, writer: Callable[[Path], None]) -> StoredFile:
        """The codec's ``writer`` fills a local file; it is uploaded, then the StoredFile
        (relpath, size, checksum) describes the remote object."""
        relpath = artifact_relpath(parts, suffix)
        staged = self.local.write([".staging", secrets.token_hex(8)], suffix, writer)
        local_rel = self._local_name(staged.checksum)
        local_path = self.local.path_of(local_rel)
        local_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.replace(self.local.path_of(staged.relpath), local_path)
        key = self.key(relpath)
        temp = f"{key.rsplit('/', 1)[0]}/{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}-{key.rsplit('/', 1)[1]}"
        try:
            self.fs.put_file(str(local_path), temp)
            self.fs.mv(temp, key)
        except Exception as exc:  # network, credentials, a full bucket: never half-stored
            with contextlib.suppress(Exception):
                self.fs.rm(temp)
            raise StoreError(getattr(exc, "errno", None),
                             f"cannot upload artifact {self.shown(relpath)}: {exc}") from exc
        self._bound_local(keep=local_path)
        return StoredFile(relpath=relpath, size=staged.size, checksum=staged.checksum)

    # -- reading
    def _fetch(self, relpath: str, size: int, checksum: str) -> str:
        """The local copy's relpath, downloading it when it is missing or of the wrong size."""
        local_rel = self._local_name(checksum)
        path = self.local.path_of(local_rel)
        try:
            if path.stat().st_size == size:
                os.utime(path)  # recently used: the last to be dropped
                return local_rel
        except FileNotFoundError:
            pass
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temp = path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}-{path.name}")
        try:
            self.fs.get_file(self.key(relpath), str(temp))
            os.chmod(temp, 0o600)
            os.replace(temp, path)
        except FileNotFoundError:
            raise MissingArtifactError(self.shown(relpath)) from None
        except OSError as exc:
            raise StoreError(exc.errno, f"cannot download artifact {self.shown(relpath)}: "
                                        f"{exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        self._bound_local(keep=path)
        return local_rel

    def _checked(self, read: Callable[[str], object], relpath: str, size: int, checksum: str):
        """``read(local relpath)`` of a fetched copy; a corrupt local copy is fetched again
        once, and a corrupt object is reported under its URL."""
        local_rel = self._fetch(relpath, size, checksum)
        try:
            return read(local_rel)
        except (CorruptArtifactError, MissingArtifactError):
            self.local.delete(local_rel)
            self.local.forget_verified(local_rel)
        local_rel = self._fetch(relpath, size, checksum)
        try:
            return read(local_rel)
        except CorruptArtifactError as exc:
            self.local.delete(local_rel)
            raise CorruptArtifactError(self.shown(relpath), exc.expected, exc.actual) from None

    def verify(self, relpath: str, size: int, checksum: str, *, reread: bool = False) -> Path:
        return self._checked(lambda rel: self.local.verify(rel, size, checksum, reread=reread),
                             relpath, size, checksum)

    def read_verified(self, relpath: str, size: int, checksum: str) -> bytes:
        return self._checked(lambda rel: self.local.read_verified(rel, size, checksum),
                             relpath, size, checksum)

    def map_verified(self, relpath: str, size: int, checksum: str) -> mmap.mmap:
        return self._checked(lambda rel: self.local.map_verified(rel, size, checksum),
                             relpath, size, checksum)

    def forget_verified(self, relpath: str | None = None) -> None:
        self.local.forget_verified()

    # -- the local copy's size bound
    def _bound_local(self, keep: Path) -> None:
        files = []
        for path in self.local.root.rglob("*"):
            if path.is_file() and not path.name.startswith(".") and path != keep:
                with contextlib.suppress(FileNotFoundError):
                    st = path.stat()
                    files.append((st.st_mtime, st.st_size, path))
        total = sum(size for _, size, _ in files) + (keep.stat().st_size if keep.exists() else 0)
        for _, size, path in sorted(files):
            if total <= self.max_local_bytes:
                break
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                total -= size

    # -- housekeeping
    def delete(self, relpath: str) -> None:
        """Remove the object (gone already is fine); local copies go with the size bound."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.key(relpath))

    def file_info(self, relpath: str) -> tuple[int, float] | None:
        """(size, modification time) of the object, or None when there is none."""
        try:
            info = self.fs.info(self.key(relpath))
        except FileNotFoundError:
            return None
        modified = info.get("LastModified") or info.get("mtime") or info.get("created")
        stamp = modified.timestamp() if hasattr(modified, "timestamp") else float(modified or time.time())
        return int(info.get("size") or 0), stamp

    def iter_files(self) -> Iterator[str]:
        """Relative keys of every object under the prefix (no temporary uploads)."""
        try:
            keys = self.fs.find(self.prefix)
        except FileNotFoundError:
            return
        for key in sorted(keys):
            relpath = key[len(self.prefix) + 1:]
            if not relpath.rsplit("/", 1)[-1].startswith("."):
                yield relpath

    def sweep_temp(self, older_than_seconds: float = 3600) -> list[str]:
        """Remove uploads left by killed writers (older than the age), and local temp files."""
        cutoff = time.time() - older_than_seconds
        removed: list[str] = []
        try:
            keys = self.fs.find(self.prefix)
        except FileNotFoundError:
            keys = []
        for key in keys:
            if key.rsplit("/", 1)[-1].startswith(TEMP_PREFIX):
                info = self.file_info(key[len(self.prefix) + 1:])
                if info is not None and info[1] <= cutoff:
                    with contextlib.suppress(FileNotFoundError):
                        self.fs.rm(key)
                        removed.append(key)
        self.local.sweep_temp(older_than_seconds)
        return removed
