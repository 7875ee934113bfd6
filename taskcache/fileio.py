"""Files at the byte level, shared by hashing, codecs and storage: the chunked xxh3 of a
file, a file's identity and the per-process memo of file digests built on it, the atomic
write (temp file, fsync, rename, fsync the folder), a private copy-on-write mapping of a
file, and what a closed file object still shows (hashing keys it by that, a codec rebuilds
it from that)."""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import xxhash

__all__ = ["SETTLED_NS", "SQLITE_SUFFIXES", "TEMP_PREFIX", "FileDigests", "atomic_write",
           "closed_file_state", "file_identity", "file_layers", "fsync_dir", "hash_file",
           "map_copy_on_write"]

#: name prefix of the temp files of atomic writes; a sweep removes the ones left behind
TEMP_PREFIX = ".tmp-"
#: the files of one SQLite database in WAL mode (SQLite creates the -wal and -shm files with
#: the permissions of the database file)
SQLITE_SUFFIXES = ("", "-wal", "-shm")

_SMALL = 256 * 1024  # most files fit in one read: no big buffer to allocate
_CHUNK = 4 * 1024 * 1024

T = TypeVar("T")


def hash_file(path: str | Path) -> tuple[int, Any]:
    """``(size, xxh3_128 state)`` of a file's bytes, streamed in big chunks without copies.
    Raises OSError when the file cannot be read."""
    with open(path, "rb", buffering=0) as f:
        head = f.read(_SMALL)
        digest = xxhash.xxh3_128(head)
        size = len(head)
        if size < _SMALL:
            return size, digest
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        while n := f.readinto(buffer):
            digest.update(view[:n])
            size += n
    return size, digest


#: a file whose ctime is this recent may still change within the same timestamp tick, so
#: what was read of it is not remembered (git's "racily clean" rule)
SETTLED_NS = 2_000_000_000


def file_identity(st: os.stat_result) -> tuple[int, ...]:
    """(device, inode, size, mtime, ctime) of a stat, ctime last. Writing, truncating,
    renaming over or ``touch``-ing a file changes its ctime (which no unprivileged call can
    set back) or its inode, so an unchanged identity of a settled file (ctime at least
    SETTLED_NS old when it was read) means unchanged bytes."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class FileDigests:
    """xxh3_128 digests of files, remembered per process while each file keeps its
    identity (see :func:`file_identity`), so a big file that did not change is hashed once;
    one ``stat`` per lookup. Files changed less than SETTLED_NS before they were read are
    read again every time."""

    LIMIT = 100_000  # remembered files before starting afresh

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[tuple[int, ...], bytes]] = {}

    def digest(self, path: str | Path) -> bytes:
        """The 16-byte xxh3_128 digest of the file's bytes. Raises OSError when it cannot
        be read."""
        key = os.path.abspath(path)
        identity = file_identity(os.stat(key))
        found = self._seen.get(key)
        if found is not None and found[0] == identity:
            return found[1]
        digest = hash_file(key)[1].digest()
        after = file_identity(os.stat(key))  # a change while reading shows here
        if after == identity and time.time_ns() - identity[-1] >= SETTLED_NS:
            with self._lock:
                if len(self._seen) >= self.LIMIT:
                    self._seen.clear()
                self._seen[key] = (identity, digest)
        return digest

    def forget(self) -> None:
        with self._lock:
            self._seen.clear()


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(folder, flags)
    except OSError:  # platforms (Windows) that cannot open a folder
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(
    target: Path,
    writer: Callable[[Path], None],
    *,
    mode: int = 0o600,
    final_mode: int | None = None,
    inspect: Callable[[Path], T] | None = None,
) -> T | None:
    """Write ``target`` so that a reader sees either the old state or the complete file.

    ``writer(tmp)`` fills a fresh temp file (created with ``mode``) beside ``target``; it is
    fsynced, given to ``inspect`` (e.g. to checksum it; its result is returned), given
    ``final_mode`` (default ``mode``), renamed over ``target`` and the folder fsynced. On
    any error the temp file is removed and the error propagates unchanged."""
    tmp: Path | None = target.with_name(
        f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}-{target.name}")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
        writer(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        result = inspect(tmp) if inspect is not None else None
        # a writer may have replaced the file it was given
        os.chmod(tmp, mode if final_mode is None else final_mode)
        os.replace(tmp, target)
        tmp = None
        fsync_dir(target.parent)
        return result
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


# Python 3.13 can map without keeping a descriptor open per mapping
_MMAP_OPTIONS: dict[str, bool] = (
    {"trackfd": False} if sys.version_info >= (3, 13) and sys.platform != "win32" else {}
)


def map_copy_on_write(path: str | Path) -> tuple[mmap.mmap, os.stat_result]:
    """``path`` mapped privately (reads share the page cache, writes stay in this process
    and never reach the file), with the stat of the file that was mapped."""
    with open(path, "rb") as f:  # the mapping outlives the file object
        return (mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY, **_MMAP_OPTIONS),
                os.fstat(f.fileno()))


#: the classes ``open()`` builds a file object from, the outermost first
_FILE_LAYERS = (io.TextIOWrapper, io.BufferedReader, io.BufferedWriter, io.BufferedRandom,
                io.FileIO)


def file_layers(file: Any) -> list[Any] | None:
    """A file object made by ``open()`` and its layers (text, buffer, raw ``FileIO``),
    outermost first; None for any other object, and for one whose layers were detached."""
    layers = [file]
    while type(layers[-1]) is not io.FileIO:
        if type(layers[-1]) not in _FILE_LAYERS:
            return None
        try:
            inner = layers[-1].buffer if type(layers[-1]) is io.TextIOWrapper else layers[-1].raw
        except ValueError:  # detach()ed: it has no buffer left
            return None
        layers.append(inner)
    return layers


def closed_file_state(file: Any) -> dict[str, Any] | None:
    """Everything a *closed* file object made by ``open()`` still shows -- its name, mode,
    encoding and errors, the kinds of newline it read, its buffering and flush settings, the
    attributes set on each layer -- as plain data (str, int, bool, None, lists, tuples, dicts);
    None for an open file or any other object. (An open file also has a position and buffered
    data, and reads what the file holds then: no value describes it.)"""
    layers = file_layers(file)
    if layers is None or not file.closed:
        return None
    text = file if type(file) is io.TextIOWrapper else None
    return {
        "layers": [type(layer).__name__ for layer in layers],
        "name": layers[-1].name,
        "closefd": layers[-1].closefd,
        "mode": getattr(file, "mode", None),
        "encoding": text.encoding if text else None,
        "errors": text.errors if text else None,
        "newlines": text.newlines if text else None,
        "line_buffering": text.line_buffering if text else None,
        "write_through": text.write_through if text else None,
        "chunk_size": text._CHUNK_SIZE if text else None,
        "attributes": [dict(vars(layer)) for layer in layers],
    }
