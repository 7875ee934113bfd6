"""Files at the byte level, shared by hashing, codecs and storage: the chunked xxh3 of a
file, the atomic write (temp file, fsync, rename, fsync the folder) and a private
copy-on-write mapping of a file."""

from __future__ import annotations

import contextlib
import mmap
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import xxhash

__all__ = ["SQLITE_SUFFIXES", "TEMP_PREFIX", "atomic_write", "fsync_dir", "hash_file",
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
