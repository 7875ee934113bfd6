"""Digests of arrays whose bytes cannot change, remembered per process by identity.

A read-only numpy array is not enough: a read-only *view* of a writable array changes when
the array does, and an array that owns its memory can be made writable again
(``a.flags.writeable = True``), changed and made read-only once more. So an array counts as
unchanging only when every array in its ``base`` chain is read-only and owns no memory,
and the chain ends in memory nobody can write: a ``bytes`` object (``np.frombuffer``), or a
read-only file mapping (``np.load(..., mmap_mode="r")``, ``np.memmap(..., mode="r")``),
whose file must keep its identity (device, inode, size, modification and change times; see
:mod:`taskcache.fileio`) for the digest to stay valid.

Arrow data is not remembered: Arrow arrays are immutable through Arrow's API, but
``pa.array(ndarray)`` and ``pa.Table.from_pandas`` wrap numpy memory without copying, so
changing the numpy array in place changes the Arrow array, and an Arrow buffer does not say
whose memory it is.

Entries are dropped when their array is garbage collected (a weak reference), so an id
reused by a new object never finds an old digest.
"""

from __future__ import annotations

import mmap
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from taskcache.fileio import SETTLED_NS, file_identity

__all__ = ["forget_arrays", "unchanging_array_digest"]

MEMO_LIMIT = 10_000  # remembered arrays before starting afresh

# id(array) -> (weak reference, layout, file and its identity or None, digest)
_Entry = tuple[weakref.ref, tuple, "tuple[str, tuple[int, ...]] | None", bytes]
_memo: dict[int, _Entry] = {}
_lock = threading.Lock()


def _layout(arr: Any) -> tuple:
    return arr.shape, arr.strides, arr.dtype.str


def _source(arr: Any) -> tuple[bool, str | None]:
    """(whether ``arr``'s bytes cannot change, the file they are mapped from if any)."""
    import numpy as np

    filename = None
    current = arr
    while isinstance(current, np.ndarray):
        if current.flags.writeable or current.flags.owndata:
            return False, None
        if isinstance(current, np.memmap) and current.filename and current.mode == "r":
            filename = current.filename
        current = current.base
    if isinstance(current, memoryview) and current.readonly:
        current = current.obj
    if type(current) is bytes:
        return True, None
    if isinstance(current, mmap.mmap) and filename is not None:
        return True, filename
    return False, None


def _file_state(filename: str) -> tuple[int, ...] | None:
    try:
        return file_identity(os.stat(filename))
    except OSError:
        return None


def unchanging_array_digest(arr: Any, compute: Callable[[Any], bytes]) -> bytes | None:
    """``compute(arr)``, remembered while ``arr`` lives, for an array whose bytes cannot
    change (see the module docstring); None for any other array (the caller hashes it)."""
    if arr.flags.writeable:  # the common case: nothing to remember
        return None
    key = id(arr)
    entry = _memo.get(key)
    if entry is not None and entry[0]() is arr and entry[1] == _layout(arr):
        where = entry[2]
        if where is None or _file_state(where[0]) == where[1]:
            return entry[3]
    unchanging, filename = _source(arr)
    if not unchanging:
        return None
    where = None
    if filename is not None:
        state = _file_state(filename)
        # a file changed within the clock tick of its check would keep its identity
        if state is None or time.time_ns() - state[-1] < SETTLED_NS:
            return compute(arr)
        where = (filename, state)
    digest = compute(arr)

    def drop(ref: weakref.ref, key: int = key) -> None:
        with _lock:
            if (found := _memo.get(key)) is not None and found[0] is ref:
                del _memo[key]

    with _lock:
        if len(_memo) >= MEMO_LIMIT:
            _memo.clear()
        _memo[key] = (weakref.ref(arr, drop), _layout(arr), where, digest)
    return digest


def forget_arrays() -> None:
    """Drop every remembered digest (tests, benchmarks timing a first hash)."""
    with _lock:
        _memo.clear()
