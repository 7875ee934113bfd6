"""Recorded file states and their checks: stat when it proves something, content otherwise."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from taskcache.storage.filestate import FileChecker, content_hash, snapshot


def test_snapshot_of_a_file_a_folder_and_nothing(tmp_path: Path):
    f = tmp_path / "a.txt"
    f.write_text("hello")
    record = snapshot(str(f), "read")
    st = os.stat(f)
    assert (record.kind, record.size, record.inode, record.mtime_ns, record.ctime_ns) == (
        "file", 5, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
    assert record.content_hash == content_hash(str(f), "file") and record.content_hash.startswith("file:xxh3_128:")
    assert record.racy  # written just now
    folder = snapshot(str(tmp_path), "read")
    assert folder.kind == "folder" and folder.content_hash.startswith("folder:")
    assert snapshot(str(tmp_path / "nope"), "read").kind == "missing"


def test_a_settled_record_is_trusted_on_its_stat_alone(tmp_path: Path):
    f = tmp_path / "a.txt"
    f.write_text("hello")
    record = replace(snapshot(str(f), "read"), racy=False)
    checker = FileChecker()
    # a wrong hash that is never looked at: an unchanged, settled stat is enough
    assert checker.holds(replace(record, content_hash="file:xxh3_128:0"))
    # the same record while racy: the content is read, and the wrong hash shows
    assert not FileChecker().holds(replace(record, content_hash="file:xxh3_128:0", racy=True))
    assert FileChecker().holds(replace(record, racy=True))


def test_a_same_size_rewrite_with_the_mtime_put_back_is_seen(tmp_path: Path):
    f = tmp_path / "a.txt"
    f.write_text("hello")
    record = replace(snapshot(str(f), "read"), racy=False)
    before = os.stat(f)
    f.write_text("jello")
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (os.stat(f).st_size, os.stat(f).st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert not FileChecker().holds(record)  # the ctime moved, the content differs


def test_a_touched_file_with_the_same_bytes_still_holds(tmp_path: Path):
    f = tmp_path / "a.txt"
    f.write_text("hello")
    record = snapshot(str(f), "read")
    os.utime(f, ns=(0, 10**18))
    checker = FileChecker()
    assert checker.holds(record)
    f.write_text("hellO")
    assert not checker.holds(record)


def test_folders_by_their_listing(tmp_path: Path):
    (tmp_path / "a.csv").write_text("1")
    record = snapshot(str(tmp_path), "read")
    checker = FileChecker()
    (tmp_path / "a.csv").write_text("22")  # the listing does not change
    assert checker.holds(record)
    (tmp_path / "b.csv").write_text("3")
    assert not checker.holds(record)


def test_missing_and_unreadable_records(tmp_path: Path):
    gone = snapshot(str(tmp_path / "later.txt"), "read")
    checker = FileChecker()
    assert checker.holds(gone)
    (tmp_path / "later.txt").write_text("x")
    assert not checker.holds(gone)
    f = tmp_path / "a.txt"
    f.write_text("x")
    assert not checker.holds(replace(snapshot(str(f), "read"), content_hash=None))
