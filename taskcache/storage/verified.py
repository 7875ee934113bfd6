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
    show. A fresh process, or
    ``taskcache verify`` (``reread=True``), checks every byte again.
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[tuple[int, ...], str]] = {}

    def unchanged(self, path: str, st: os.stat_result, checksum: str) -> bool:
        return self._seen.get(path) == (file_identity(st), checksum)

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
        self._seen[path] = (file_identity(st), checksum)
