"""Trusting a file already checked: :class:`VerifiedFiles` remembers which artifact files
this process checksummed, by file identity."""

from __future__ import annotations

import os
import time

MEMO_LIMIT = 100_000  # remembered verifications before starting afresh

#: a file whose ctime is this recent may still change within the same timestamp tick, so
#: its verification is not remembered (git's "racily clean" rule)
SETTLED_NS = 2_000_000_000


class VerifiedFiles:
    """Which artifact files this process has checksummed, by file identity.

    Writing, truncating, renaming over or ``touch``-ing a file changes its ctime (which no
    unprivileged call can set back) or its inode, so an unchanged (device, inode, size,
    mtime, ctime) means unchanged bytes, and a 200 MB artifact need not be re-read on every
    hit. Only files whose ctime is at least SETTLED_NS old are remembered: on coarse
    timestamp clocks a change within the same tick would not show. A fresh process, or
    ``taskcache verify`` (``reread=True``), checks every byte again.
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[tuple[int, ...], str]] = {}

    @staticmethod
    def _identity(st: os.stat_result) -> tuple[int, ...]:
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def unchanged(self, path: str, st: os.stat_result, checksum: str) -> bool:
        return self._seen.get(path) == (self._identity(st), checksum)

    def forget(self, path: str | None = None) -> None:
        if path is None:
            self._seen.clear()
        else:
            self._seen.pop(path, None)

    def remember(self, path: str, st: os.stat_result, checksum: str) -> None:
        if time.time_ns() - st.st_ctime_ns < SETTLED_NS:
            return
        if len(self._seen) > MEMO_LIMIT:
            self._seen.clear()
        self._seen[path] = (self._identity(st), checksum)
