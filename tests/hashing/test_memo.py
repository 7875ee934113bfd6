"""The identity memo: arrays whose bytes cannot change, and files by identity, are hashed once
per process; everything that can change is hashed again."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from taskcache import fileio
from taskcache.hashing import hash_value, memo
from taskcache.hashing.arrays import buffer_digest


class Counting:
    """buffer_digest, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, arr: np.ndarray) -> bytes:
        self.calls += 1
        return buffer_digest(arr)


@pytest.fixture(autouse=True)
def _fresh_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    memo.forget_arrays()
    monkeypatch.setattr(memo, "SETTLED_NS", 0)  # files written by the test count as settled
    monkeypatch.setattr(fileio, "SETTLED_NS", 0)


def test_array_over_bytes_is_hashed_once() -> None:
    arr = np.frombuffer(np.arange(1000, dtype=np.float64).tobytes())
    count = Counting()
    first = memo.unchanging_array_digest(arr, count)
    assert memo.unchanging_array_digest(arr, count) == first == buffer_digest(arr)
    assert count.calls == 1
    view = arr[10:20]  # a view of the same bytes: unchanging too, its own entry
    assert memo.unchanging_array_digest(view, count) == buffer_digest(view)
    assert count.calls == 2
    # the memo changes nothing about the hash: a writable copy hashes the same
    assert hash_value(arr) == hash_value(arr.copy())


def test_read_only_view_of_writable_array_is_hashed_again() -> None:
    base = np.arange(100, dtype=np.float64)
    view = base[:]
    view.flags.writeable = False
    count = Counting()
    assert memo.unchanging_array_digest(view, count) is None
    before = hash_value(view)
    base[0] = 42.0
    assert hash_value(view) != before


def test_read_only_owner_can_be_made_writable_so_it_is_hashed_again() -> None:
    arr = np.arange(100, dtype=np.float64)
    arr.flags.writeable = False
    assert memo.unchanging_array_digest(arr, Counting()) is None
    before = hash_value(arr)
    arr.flags.writeable = True
    arr[0] = 42.0
    arr.flags.writeable = False
    assert hash_value(arr) != before


def test_arrow_over_numpy_is_hashed_again() -> None:
    """Arrow arrays wrap numpy memory without copying: not remembered."""
    source = np.arange(100, dtype=np.float64)
    table = pa.table({"x": source})
    before = hash_value(table)
    source[0] = 42.0
    assert table.column("x")[0].as_py() == 42.0  # the Arrow table changed with it
    assert hash_value(table) != before


def test_read_only_memmap_follows_its_file(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    np.save(path, np.arange(1000, dtype=np.float64))
    arr = np.load(path, mmap_mode="r")
    count = Counting()
    first = memo.unchanging_array_digest(arr, count)
    assert memo.unchanging_array_digest(arr, count) == first and count.calls == 1
    before = hash_value(arr)
    with open(path, "r+b") as f:  # changed in place: the mapping shows it, so must the hash
        f.seek(-8, os.SEEK_END)
        f.write(np.float64(-1.0).tobytes())
    assert arr[-1] == -1.0
    assert memo.unchanging_array_digest(arr, count) == buffer_digest(arr) != first
    assert count.calls == 2
    assert hash_value(arr) != before


def test_unsettled_file_is_not_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memo, "SETTLED_NS", 10**18)
    path = tmp_path / "a.npy"
    np.save(path, np.arange(10, dtype=np.float64))
    arr = np.load(path, mmap_mode="r")
    count = Counting()
    memo.unchanging_array_digest(arr, count)
    memo.unchanging_array_digest(arr, count)
    assert count.calls == 2


def test_entry_goes_with_its_array() -> None:
    arr = np.frombuffer(b"\x00" * 64)
    memo.unchanging_array_digest(arr, Counting())
    assert len(memo._memo) == 1
    del arr
    assert len(memo._memo) == 0


def test_file_digests_follow_file_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = fileio.hash_file
    monkeypatch.setattr(fileio, "hash_file", lambda p: calls.append(p) or real(p))
    digests = fileio.FileDigests()
    path = tmp_path / "data.bin"
    path.write_bytes(b"a" * 1000)
    first = digests.digest(path)
    assert digests.digest(str(path)) == first and len(calls) == 1
    path.write_bytes(b"b" * 1000)  # same size: the change time still moves
    assert digests.digest(path) != first and len(calls) == 2
    os.replace(_write(tmp_path / "other", b"a" * 1000), path)  # renamed over: a new inode
    assert digests.digest(path) == first and len(calls) == 3


def test_file_digests_reread_unsettled_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fileio, "SETTLED_NS", 10**18)
    digests = fileio.FileDigests()
    path = _write(tmp_path / "x", b"x")
    calls = []
    real = fileio.hash_file
    monkeypatch.setattr(fileio, "hash_file", lambda p: calls.append(p) or real(p))
    digests.digest(path)
    digests.digest(path)
    assert len(calls) == 2
    with pytest.raises(OSError):
        digests.digest(tmp_path / "missing")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
