"""Trusting a file already checked: :class:`VerifiedFiles` remembers which artifact files
this process checksummed, by file identity."""

from __future__ import annotations

import os
import time

from taskcache.fileio import SETTLED_NS, file_identity

MEMO_LIMIT = 100_000  # remembered verifications before starting afresh


class VerifiedFiles:
    """Which artifact files this process has checksummed, by file identity.

    An unchanged :func:`~taskcache.fileio.file_identity` means unchanged bytes, so a 200 MB
    artifact need not be re-read on every hit. Only files whose ctime is at least SETTLED_NS
    old are remembered: on coarse timestamp clocks a change within the same tick would not
    show. A fresh process, or ``taskcache verify`` (``reread=True``), checks every byte
    again.

    The bytes of small files (at most KEEP_BYTES) are kept too, up to KEEP_TOTAL in all:
    a hit of a small artifact then costs one ``lstat`` instead of open, read and checksum.
    """

    KEEP_BYTES = 64 * 1024
    KEEP_TOTAL = 64 * 1024 * 1024

    def __init__(self) -> None:
        self._seen: dict[str, tuple[tuple[int, ...], str, bytes | None]] = {}
        self._kept = 0  # bytes held in _seen

    def unchanged(self, path: str, st: os.stat_result, checksum: str) -> bool:
        found = self._seen.get(path)
        return found is not None and found[:2] == (file_identity(st), checksum)

    def kept_bytes(self, path: str, st: os.stat_result, checksum: str) -> bytes | None:
        """The bytes remembered with a verification that still holds, else None."""
        found = self._seen.get(path)
        if found is None or found[:2] != (file_identity(st), checksum):
            return None
        return found[2]

    def forget(self, path: str | None = None) -> None:
        if path is None:
            self._seen.clear()
            self._kept = 0
        elif (found := self._seen.pop(path, None)) is not None and found[2] is not None:
            self._kept -= len(found[2])

    def remember(self, path: str, st: os.stat_result, checksum: str,
                 data: bytes | None = None) -> None:
        """Remember a file checked just now (with its bytes, when small), if settled."""
        if time.time_ns() - st.st_ctime_ns < SETTLED_NS:
            return
        if data is not None and len(data) > self.KEEP_BYTES:
            data = None
        if len(self._seen) > MEMO_LIMIT or self._kept + len(data or b"") > self.KEEP_TOTAL:
            self.forget()
        self.forget(path)
        self._seen[path] = (file_identity(st), checksum, data)
        self._kept += len(data or b"")
