"""Artifact files: atomic writes, checksums, verified reads, deletes, sweeps. Bytes only.

Layout: ``root/<part>/.../<part><suffix>``, every part passed through :func:`sanitize_name`.
Folders are 0700 and files 0400, read-only once written (artifacts may be pickles: see the
trust model in ``taskcache.codecs``; and a frame may be mapped from its file).

A write goes to ``.tmp-<pid>-<random>-<name>`` in the target folder, is fsynced and
checksummed (xxh3-128, streamed in 4 MiB chunks by C code), then renamed into place and
the folder fsynced, so a reader sees either nothing or the complete file. Interrupted
writes leave temp files that :meth:`ArtifactStore.sweep_temp` removes.

Errors: an ``OSError`` raised while writing (by the store or by the writer) becomes a
:class:`StoreError` -- still an ``OSError`` with the same ``errno`` (ENOSPC for a codec's
short write without one on a nearly full disk) -- naming the artifact, with the original as
``__cause__``. Any other exception from the writer (a codec failing on
a value) propagates unchanged. Either way the temp file is removed.

Reads check size and checksum against the catalog before anything is decoded; a file this
process already checked is trusted while its identity is unchanged (:class:`VerifiedFiles`).
The cache folder's own permissions are ``_folders``' job.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import mmap
import os
import re
import stat
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import xxhash

from taskcache.errors import (
    CorruptArtifactError,
    MissingArtifactError,
    StoreError,
    UnsafePathError,
)
from taskcache.fileio import (
    TEMP_PREFIX,
    atomic_write,
    file_identity,
    hash_file,
    map_copy_on_write,
)
from taskcache.storage.verified import VerifiedFiles

__all__ = [
    "StoredFile",
    "ArtifactStore",
    "sanitize_name",
    "artifact_relpath",
    "checksum_file",
    "TEMP_PREFIX",
]

log = logging.getLogger("taskcache")

CHECKSUM_ALGO = "xxh3_128"
#: artifacts are never changed once written; read-only also keeps a careless write or
#: truncation from pulling the pages from under a frame mapped from the file (SIGBUS)
ARTIFACT_MODE = 0o400
MAX_NAME = 80
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_SUFFIX = re.compile(r"(\.[A-Za-z0-9][A-Za-z0-9_-]{0,15}){0,3}")
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{dev}{i}" for dev in ("COM", "LPT") for i in range(10)}
)


@dataclass(frozen=True)
class StoredFile:
    relpath: str   # POSIX path relative to the store root
    size: int
    checksum: str  # "xxh3_128:<hex>" of the file bytes


_MEMO_LIMIT = 100_000  # remembered paths per store before starting afresh


def checksum_file(path: Path) -> tuple[int, str]:
    """(size, "xxh3_128:<hex>") of a file."""
    size, digest = hash_file(path)
    return size, f"{CHECKSUM_ALGO}:{digest.hexdigest()}"


_NEARLY_FULL = 1024 * 1024


def _nearly_full(folder: Path) -> bool:
    """Whether the file system holding ``folder`` has less than 1 MiB free for us. Some codecs
    report a full disk as a short write without errno (numpy: "N requested and M written")."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):  # Windows: no statvfs
        return False
    return st.f_bavail * st.f_frsize < _NEARLY_FULL


def artifact_relpath(parts: Sequence[str], suffix: str) -> str:
    """``<sanitized part>/.../<sanitized part><suffix>``: where an artifact of ``parts``
    (task, run id, output name) is stored. UnsafePathError for no parts or an odd suffix."""
    if isinstance(parts, str) or not parts:
        raise UnsafePathError(repr(parts), "parts must be a non-empty sequence of names")
    if not isinstance(suffix, str) or not _SUFFIX.fullmatch(suffix):
        raise UnsafePathError(str(suffix), "not a plain file suffix like '.parquet'")
    clean = [sanitize_name(p) for p in parts]
    clean[-1] += suffix
    return "/".join(clean)


def sanitize_name(name: str) -> str:
    """A safe single path component for a user-supplied name (task or output).

    Keeps ``[A-Za-z0-9._-]`` (after NFC normalisation), turns every other run of
    characters into ``_``, strips leading dots, avoids Windows device names and caps the
    length at 80. Whenever the result differs from the input, or has capitals (so that
    ``df`` and ``DF`` differ on case-insensitive file systems), ``-`` and a short hash of
    the original are appended, so distinct names never share a component.
    """
    if not isinstance(name, str):
        raise TypeError(f"artifact names must be str, not {type(name).__qualname__}")
    clean = _UNSAFE_CHARS.sub("_", unicodedata.normalize("NFC", name))
    clean = clean.lstrip(".").rstrip(".") or "_"
    if clean.split(".", 1)[0].upper() in _WINDOWS_RESERVED:
        clean = "_" + clean
    if clean == name and len(clean) <= MAX_NAME and clean == clean.lower():
        return clean
    nfc = unicodedata.normalize("NFC", name)
    tag = hashlib.blake2b(nfc.encode("utf-8", "surrogatepass"), digest_size=5).hexdigest()
    return f"{clean[: MAX_NAME - len(tag) - 1]}-{tag}"


class ArtifactStore:
    """Files under one root folder; every path handed in or out stays under that root."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)
        self._real_root = self.root.resolve()
        self._located: dict[str, str] = {}  # checked relpath -> absolute path (hit path)
        self._folders: set[str] = set()  # folders created or checked by write
        self._verified = VerifiedFiles()

    # -- paths

    def _inside(self, path: Path, shown: str) -> Path:
        real = path.resolve()
        if real != self._real_root and not real.is_relative_to(self._real_root):
            raise UnsafePathError(shown, "resolves outside the store root")
        return real

    def path_of(self, relpath: str) -> Path:
        """Absolute path of ``relpath``; UnsafePathError if it resolves outside the root."""
        full = self._locate(relpath)
        if os.path.islink(full):
            self._inside(Path(full), relpath)
        return Path(full)

    def _locate(self, relpath: str) -> str:
        """``relpath`` checked lexically and its folder resolved inside the root, remembered
        per relpath: a hit does not pay for realpath() again. (Swapping a checked folder for
        a symlink afterwards needs write access to our 0700 root.) The file itself may still
        be a symlink: callers look at it with lstat."""
        full = self._located.get(relpath)
        if full is not None:
            return full
        if not isinstance(relpath, str) or not relpath:
            raise UnsafePathError(str(relpath), "empty or not a str")
        if "\x00" in relpath or "\\" in relpath:
            raise UnsafePathError(relpath, "contains NUL or a backslash")
        posix = PurePosixPath(relpath)
        if posix.is_absolute() or re.match(r"[A-Za-z]:", relpath):
            raise UnsafePathError(relpath, "is absolute")
        parts = relpath.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise UnsafePathError(relpath, "has empty, '.' or '..' components")
        path = self.root.joinpath(*parts)
        self._inside(path.parent, relpath)
        full = str(path)
        if len(self._located) > _MEMO_LIMIT:
            self._located.clear()
        self._located[relpath] = full
        return full

    # -- writing

    def write(self, parts: Sequence[str], suffix: str, writer: Callable[[Path], None]) -> StoredFile:
        """``writer(tmp_path)`` fills a temp file in the target folder; then fsync, checksum,
        rename into ``root/<sanitized parts...><suffix>``, fsync the folder; files 0400."""
        relpath = artifact_relpath(parts, suffix)
        clean = relpath.split("/")
        target = self.root.joinpath(*clean)
        folder = target.parent
        try:
            try:
                self._make_folders(clean[:-1], relpath)
            except FileNotFoundError:  # a folder remembered was removed since: start afresh
                self._folders.clear()
                self._make_folders(clean[:-1], relpath)
            size, checksum = atomic_write(target, writer, final_mode=ARTIFACT_MODE,
                                          inspect=checksum_file)
        except OSError as exc:
            if isinstance(exc, StoreError):
                raise
            code, reason = exc.errno, exc.strerror or str(exc)
            if code is None and _nearly_full(folder):  # a codec's short write without errno
                code, reason = errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({exc})"
            raise StoreError(code, f"cannot write artifact {relpath}: {reason}", str(target)) from exc
        return StoredFile(relpath=relpath, size=size, checksum=checksum)

    def _make_folders(self, parts: Sequence[str], relpath: str) -> None:
        """Create the folders ``parts`` under the root (0700). A folder found already there
        is checked to resolve inside the root; one this store created or checked before is
        not looked at again (replacing it needs write access to the 0700 root), so writing
        a new run's artifact costs one mkdir."""
        folder = self.root
        for part in parts:
            folder = folder / part
            key = str(folder)
            if key in self._folders:
                continue
            try:
                folder.mkdir(mode=0o700)
            except FileExistsError:
                self._inside(folder, relpath)
            if len(self._folders) > _MEMO_LIMIT:
                self._folders.clear()
            self._folders.add(key)

    # -- reading

    def verify(self, relpath: str, size: int, checksum: str, *, reread: bool = False) -> Path:
        """The path, after checking size and checksum; Missing/CorruptArtifactError otherwise.

        A file this process verified before and whose identity (device, inode, size, mtime,
        ctime) has not changed since is not read again (see :class:`VerifiedFiles`) unless
        ``reread`` (``taskcache verify``: every byte, e.g. against disk corruption)."""
        full, st = self._stat_artifact(relpath, size)
        if not reread and self._verified.unchanged(full, st, checksum):
            return Path(full)
        try:
            actual_size, actual = checksum_file(Path(full))
        except FileNotFoundError:
            raise MissingArtifactError(full) from None
        if actual_size != size or actual != checksum:
            raise CorruptArtifactError(full, checksum, actual)
        self._verified.remember(full, st, checksum)
        return Path(full)

    def forget_verified(self, relpath: str | None = None) -> None:
        """Check every byte again on the next load of ``relpath`` (default: of every file),
        as a fresh process does."""
        self._verified.forget(None if relpath is None else self._locate(relpath))

    def map_verified(self, relpath: str, size: int, checksum: str) -> mmap.mmap:
        """A big artifact mapped copy-on-write (:func:`map_copy_on_write`), after checking
        size and checksum over that mapping: the bytes checked are the bytes a codec then
        decodes, and it finds their pages already mapped (a first hit of 200 MB: ~15 ms less
        than checking and decoding separately). Not for empty files (mmap refuses them)."""
        full, _ = self._stat_artifact(relpath, size)
        try:
            mapped, st = map_copy_on_write(full)
        except FileNotFoundError:
            raise MissingArtifactError(full) from None
        if len(mapped) != size:
            raise CorruptArtifactError(full, f"{size} bytes", f"{len(mapped)} bytes")
        if not self._verified.unchanged(full, st, checksum):
            actual = f"{CHECKSUM_ALGO}:{xxhash.xxh3_128_hexdigest(mapped)}"
            if actual != checksum:
                raise CorruptArtifactError(full, checksum, actual)
            self._verified.remember(full, st, checksum)
        return mapped

    def read_verified(self, relpath: str, size: int, checksum: str) -> bytes:
        """The bytes of a small artifact, read once and checked against size and checksum
        (a codec then decodes exactly the bytes that were verified). Bytes this process
        checked before are not read again while the file's identity holds."""
        full, st = self._stat_artifact(relpath, size)
        kept = self._verified.kept_bytes(full, st, checksum)
        if kept is not None:
            return kept
        try:
            fd = os.open(full, os.O_RDONLY)
        except FileNotFoundError:
            raise MissingArtifactError(full) from None
        try:
            data = os.read(fd, size + 1)
            opened = os.fstat(fd)
        finally:
            os.close(fd)
        actual = f"{CHECKSUM_ALGO}:{xxhash.xxh3_128_hexdigest(data)}"
        if len(data) != size or actual != checksum:
            raise CorruptArtifactError(full, checksum, actual)
        if file_identity(opened) == file_identity(st):  # the file that was statted was read
            self._verified.remember(full, st, checksum, data)
        return data

    def _stat_artifact(self, relpath: str, size: int) -> tuple[str, os.stat_result]:
        full = self._locate(relpath)
        try:
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):  # never created by us; refused if it leads outside
                real = Path(full).resolve()
                if not real.is_relative_to(self._real_root):
                    raise CorruptArtifactError(full, "a regular file",
                                               f"a symbolic link to {real}, outside the store")
                st = os.stat(full)
        except FileNotFoundError:
            raise MissingArtifactError(full) from None
        if not stat.S_ISREG(st.st_mode):
            raise CorruptArtifactError(full, "a regular file", "something else")
        if st.st_size != size:
            raise CorruptArtifactError(full, f"{size} bytes", f"{st.st_size} bytes")
        return full, st

    # -- housekeeping

    def delete(self, relpath: str) -> None:
        """Remove an artifact (gone already is fine; a symlink planted in its place is
        removed, never followed) and the folders it leaves empty. A file whose folder leads
        outside the root through a planted symlink is left alone, with a log warning; any
        other unsafe ``relpath`` is an UnsafePathError."""
        try:
            path = Path(self._locate(relpath))
        except UnsafePathError as exc:
            folders = relpath.split("/")[:-1] if isinstance(relpath, str) else []
            if not any(self.root.joinpath(*folders[:i + 1]).is_symlink()
                       for i in range(len(folders))):
                raise
            log.warning("taskcache: not deleting %s: %s", relpath, exc)
            return
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        folder = path.parent
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:  # not empty (or already gone): stop climbing
                break
            self._folders.discard(str(folder))  # checked again if it comes back
            folder = folder.parent

    def temp_files(self) -> Iterator[Path]:
        """Temp files of writes in progress, or interrupted (their process was killed)."""
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(TEMP_PREFIX):
                    yield Path(dirpath, name)

    def sweep_temp(self, older_than_seconds: float = 3600) -> list[Path]:
        """Remove temp files of interrupted writes older than the age; return them."""
        cutoff = time.time() - older_than_seconds
        removed: list[Path] = []
        for path in self.temp_files():
            try:
                if path.lstat().st_mtime <= cutoff:
                    path.unlink()
                    removed.append(path)
            except FileNotFoundError:  # finished or swept by another process
                continue
        return removed

    def file_info(self, relpath: str) -> tuple[int, float] | None:
        """(size, modification time) of an artifact file, or None when there is none."""
        try:
            st = self.path_of(relpath).stat()
        except OSError:
            return None
        return st.st_size, st.st_mtime

    def iter_files(self) -> Iterator[str]:
        """Relative POSIX paths of every artifact file (no temp files, dotfiles, symlinks)."""
        for dirpath, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                path = Path(dirpath, name)
                if name.startswith(".") or path.is_symlink():
                    continue
                yield path.relative_to(self.root).as_posix()
