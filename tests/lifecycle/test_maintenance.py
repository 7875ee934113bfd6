"""verify, gc, the command line, and the pickle policy, on a real catalog."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

import taskcache as tc
from taskcache.config import parse_size
from taskcache.errors import PickleDisabledError
from taskcache.lifecycle.maintenance import ORPHAN_MIN_AGE, gc, verify
from taskcache.lifecycle.runner import get_runner

PIPELINE = """
import taskcache as tc

class Box:
    def __init__(self, v):
        self.v = v
    def __eq__(self, other):
        return isinstance(other, Box) and other.v == self.v

@tc.task
def load(n):
    return list(range(n))

@tc.task
def total(values):
    return sum(values)

@tc.task
def boxed(n):
    return Box(n)

@tc.task
def broken(n):
    raise RuntimeError("nope")
"""


def _pipeline(make_module):
    mod = make_module("m_pipe", PIPELINE)
    mod.total(mod.load(5))
    mod.total(mod.load(6))
    with pytest.raises(RuntimeError):
        mod.broken(1)
    return mod


def test_verify_finds_corrupt_artifacts_and_fix_makes_them_recompute(make_module):
    mod = _pipeline(make_module)
    assert verify().ok
    run = tc.run(int(tc.runs(task="m_pipe.load").index[0]))
    path = get_runner().store.path_of(run.artifacts[0].relpath)
    path.write_text("[0, 1, 2, 3, 4, 99]")
    report = verify()
    assert not report.ok and [b[0] for b in report.broken] == [run.id]
    assert "--fix" in str(report)
    fixed = verify(fix=True)
    assert fixed.fixed == [run.id] and verify().ok
    assert mod.load(6) == [0, 1, 2, 3, 4, 5]  # recomputed, not the altered file
    assert len(tc.runs(task="m_pipe.load")) == 3


def test_gc_drops_failed_runs_and_keeps_what_lineage_needs(make_module):
    mod = _pipeline(make_module)  # load#1 -> total#2, load#3 -> total#4, broken#5
    mod.load(7)                   # load#6, read by nobody
    dry = gc(dry_run=True)
    failed_id = int(tc.runs(task="m_pipe.broken").index[0])
    assert dry.runs == [failed_id] and dry.dry_run and "would remove 1 runs" in str(dry)
    assert len(tc.runs(task="m_pipe.broken")) == 1  # dry run changed nothing
    # keep the newest run of each task; load#3 is older but the kept total#4 read its output
    report = gc(keep_last=1)
    assert report.runs == [1, 2, failed_id]
    remaining = set(tc.runs().index)
    assert remaining == {3, 4, 6}
    assert all(get_runner().store.path_of(a.relpath).exists()
               for rid in remaining for a in tc.run(rid).artifacts)
    assert verify().ok


def test_gc_removes_old_orphan_files_but_not_fresh_ones(make_module):
    _pipeline(make_module)
    store = get_runner().store
    old = store.root / "stray" / "old.json"
    old.parent.mkdir()
    old.write_text("[]")
    past = time.time() - ORPHAN_MIN_AGE - 10
    os.utime(old, (past, past))
    fresh = store.root / "stray" / "fresh.json"
    fresh.write_text("[]")  # may belong to a run completing right now
    report = gc()
    assert "stray/old.json" in report.files and not old.exists() and fresh.exists()


def test_pickled_artifacts_are_not_loaded_when_pickle_is_disabled(make_module):
    mod = _pipeline(make_module)
    assert mod.boxed(3) == mod.Box(3)
    (run_id,) = tc.runs(task="m_pipe.boxed").index
    assert tc.run(run_id).artifacts[0].codec == "pickle"
    tc.configure(allow_pickle=False)
    with pytest.raises(PickleDisabledError, match="allow_pickle"):
        tc.run(run_id).outputs["return"]
    with pytest.warns(UserWarning, match="not cached"):
        assert mod.boxed(3) == mod.Box(3)  # recomputed, never unpickled
    assert len(tc.runs(task="m_pipe.boxed")) == 2


def test_command_line(make_module, cache_dir):
    _pipeline(make_module)

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "taskcache.cli", "--cache-dir", str(cache_dir), *args],
                              capture_output=True, text=True, timeout=60)

    out = cli("runs", "--task", "m_pipe.total")
    assert out.returncode == 0 and out.stdout.count("completed") == 2
    first = int(tc.runs(task="m_pipe.total").index[-1])
    shown = cli("show", str(first))
    assert "values: builtins.list" in shown.stdout and "<- run #" in shown.stdout
    assert "input values: [0, 1, 2, 3, 4] -> [0, 1, 2, 3, 4, 5]" in cli("why", "m_pipe.total").stdout
    assert cli("verify").returncode == 0
    assert "would remove 1 runs" in cli("gc", "--dry-run").stdout
    assert "hits" in cli("summary").stdout
    missing = cli("show", "999")
    assert missing.returncode == 2 and "no run #999" in missing.stderr


SIZED = """
import numpy as np
import taskcache as tc

@tc.task
def blob(n):
    return np.zeros(n, dtype=np.uint8)

@tc.task
def head(data):
    return data[:10]

@tc.task
def tail(data):
    return data[1:]
"""


def _sizes() -> dict[int, int]:
    return {int(i): sum(a.size for a in tc.run(int(i)).artifacts) for i in tc.runs().index}


def test_gc_to_a_size_drops_least_recently_used_runs_first(make_module):
    mod = make_module("m_sized", SIZED)
    for n in (100_000, 200_000, 300_000, 400_000):  # runs #1..#4, finished in that order
        mod.blob(n)
    mod.blob(300_000)  # hits: #3, then #1, are the most recently used
    mod.blob(100_000)
    sizes = _sizes()
    total = sum(sizes.values())
    limit = total - 300_000  # dropping #2 (200 kB, least recent) is not enough; #4 too
    dry = gc(max_bytes=limit, dry_run=True)
    assert dry.runs == [2, 4] and dry.bytes == sizes[2] + sizes[4]
    assert dry.kept_bytes == sizes[1] + sizes[3] <= limit
    text = str(dry)
    assert "would remove 2 runs" in text and f"({sizes[2] + sizes[4]:,} bytes)" in text
    assert "runs: #2, #4" in text and len(tc.runs()) == 4  # a dry run changes nothing
    report = gc(max_bytes=limit)
    assert report.runs == [2, 4] and set(tc.runs().index) == {1, 3}
    assert verify().ok and sum(_sizes().values()) <= limit
    assert gc(max_bytes=limit).runs == []  # fits already
    assert gc(max_bytes=0).runs == [1, 3]


def test_gc_to_a_size_keeps_what_a_kept_run_read(make_module):
    mod = make_module("m_sized_lineage", SIZED)
    big = mod.blob(500_000)   # #1: least recently used, but #2 read it
    mod.head(big)             # #2: small
    mod.blob(300_000)         # #3
    mod.head(big)             # a hit: #2 is the most recently used
    sizes = _sizes()
    report = gc(max_bytes=sizes[1] + sizes[2])
    assert report.runs == [3]  # not #1, although it was used least recently
    assert tc.run(2).upstream() == [tc.run(1)]
    assert gc(max_bytes=0).runs == [1, 2]  # once its reader goes, the producer can go too


def test_gc_keeps_the_whole_lineage_of_a_kept_run(make_module):
    mod = make_module("m_chain", SIZED)
    a = mod.blob(20)          # #1
    b = mod.head(a)           # #2 read #1's output
    mod.tail(b)               # #3 read #2's output
    long_ago = datetime.now(UTC) - timedelta(days=30)
    get_runner().catalog.record_hits({1: (1, long_ago), 2: (1, long_ago)})
    report = gc(older_than_days=10)  # #1 and #2 are old, but #3 is kept and needs #2, #2 #1
    assert report.runs == []
    assert tc.run(3).upstream() == [tc.run(2)] and tc.run(2).upstream() == [tc.run(1)]


@pytest.mark.parametrize(("text", "expected"), [
    ("1000", 1000), ("500MB", 500_000_000), ("500 mb", 500_000_000), ("2G", 2 * 10**9),
    ("1.5GiB", 3 * 2**29), ("200k", 200_000), ("64KiB", 65536), ("0", 0), ("7b", 7),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "MB", "5XB", "-1MB", "1e3", "5 M B"])
def test_parse_size_refuses_what_is_not_a_size(text):
    with pytest.raises(ValueError, match="is not a size; write e.g. 500MB"):
        parse_size(text)


def test_gc_max_bytes_must_be_a_number_of_bytes():
    for bad in ("500MB", -1, 1.5, True):
        with pytest.raises(ValueError, match="max_bytes must be a number of bytes"):
            gc(max_bytes=bad)


def test_command_line_gc_max_size(make_module, cache_dir):
    mod = make_module("m_sized_cli", SIZED)
    mod.blob(300_000)
    mod.blob(10)

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "taskcache.cli", "--cache-dir", str(cache_dir),
                               "gc", *args], capture_output=True, text=True, timeout=60)

    dry = cli("--max-size", "100KB", "--dry-run")
    assert dry.returncode == 0 and "would remove 1 runs" in dry.stdout, dry.stderr
    assert "runs: #1" in dry.stdout and "limit 0.1 MB" in dry.stdout
    bad = cli("--max-size", "lots")
    assert bad.returncode == 2 and "'lots' is not a size" in bad.stderr
    assert len(tc.runs()) == 2
