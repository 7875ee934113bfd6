"""The state of a file or folder a run read or wrote: taking it (stat and content hash) and
checking later that it still holds.

A check trusts the stat when it proves the content unchanged: same size, mtime, ctime and
inode, and the file had settled (last changed at least SETTLED_NS before it was recorded).
Rewriting a file changes its ctime, which no unprivileged call can set back, so an edit of
the same size followed by ``os.utime`` to the old mtime still shows. A file that changed
within SETTLED_NS of being recorded is "racily clean" (git's term): on a file system with
coarse timestamps a second change in the same tick would not show in its stat, so it is
re-read. When the stat differs the content is re-read too, and a file whose bytes are what
they were still counts as unchanged (``touch`` is not an edit).
"""

from __future__ import annotations

import os
import stat
import time

import xxhash

from taskcache.fileio import hash_file
from taskcache.records import FileRecord
from taskcache.storage.verified import SETTLED_NS, VerifiedFiles

__all__ = ["FileChecker", "content_hash", "identity", "snapshot"]

FILE, FOLDER, MISSING = "file", "folder", "missing"


def identity(st: os.stat_result) -> tuple[int, ...]:
    """The stat fields a FileRecord keeps: size, mtime, ctime, inode."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def content_hash(path: str, kind: str) -> str:
    """``"file:xxh3_128:<hex>"`` of a file's bytes (the same text as ``"file:"`` and the
    store's checksum of a copy), or ``"folder:xxh3_128:<hex>"`` of a folder's sorted names.
    Raises OSError when it cannot be read."""
    if kind == FOLDER:
        digest = xxhash.xxh3_128()
        for name in sorted(os.listdir(path)):
            digest.update(os.fsencode(name) + b"\0")
        return f"folder:xxh3_128:{digest.hexdigest()}"
    return f"file:xxh3_128:{hash_file(path)[1].hexdigest()}"


def snapshot(path: str, role: str) -> FileRecord:
    """``path`` (absolute) as it is now. A path that does not exist is kind "missing"; one
    that cannot be read, or changes while it is hashed, gets no content hash (it never
    matches later: when in doubt, miss)."""
    try:
        before = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return FileRecord(path, role, MISSING)
    except OSError:
        return FileRecord(path, role, FILE)
    kind = FOLDER if stat.S_ISDIR(before.st_mode) else FILE
    try:
        digest: str | None = content_hash(path, kind)
        after = os.stat(path)
    except OSError:
        digest, after = None, before
    if identity(after) != identity(before):
        digest = None  # changed while it was read: the hash may mix two versions
    now = time.time_ns()
    racy = now - max(before.st_mtime_ns, before.st_ctime_ns) < SETTLED_NS
    return FileRecord(path, role, kind, size=before.st_size, mtime_ns=before.st_mtime_ns,
                      ctime_ns=before.st_ctime_ns, inode=before.st_ino,
                      mode=stat.S_IMODE(before.st_mode), content_hash=digest, racy=racy)


class FileChecker:
    """Checks recorded files against the disk, remembering (like the artifact store does)
    the files it re-read and found unchanged while their identity stays the same."""

    def __init__(self) -> None:
        self._verified = VerifiedFiles()

    def holds(self, record: FileRecord) -> bool:
        """Whether ``record.path`` is still as recorded (absent, for a "missing" one)."""
        try:
            st = os.stat(record.path)
        except (FileNotFoundError, NotADirectoryError):
            return record.kind == MISSING
        except OSError:
            return False
        if record.kind == MISSING or record.content_hash is None:
            return False
        if stat.S_ISDIR(st.st_mode) != (record.kind == FOLDER):
            return False
        if not record.racy and identity(st) == record.identity:
            return True
        if record.kind == FILE and st.st_size != record.size:
            return False
        if self._verified.unchanged(record.path, st, record.content_hash):
            return True
        try:
            current = content_hash(record.path, record.kind)
        except OSError:
            return False
        if current != record.content_hash:
            return False
        self._verified.remember(record.path, st, current)
        return True
