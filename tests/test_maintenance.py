"""verify, gc, the command line, and the pickle policy, on a real catalog."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import taskcache as tc
from taskcache.errors import PickleDisabledError
from taskcache.maintenance import ORPHAN_MIN_AGE, gc, verify
from taskcache.runner import get_runner

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
    run = tc.run(int(tc.runs(task="load").index[0]))
    path = get_runner().store.path_of(run.artifacts[0].relpath)
    path.write_text("[0, 1, 2, 3, 4, 99]")
    report = verify()
    assert not report.ok and [b[0] for b in report.broken] == [run.id]
    assert "--fix" in str(report)
    fixed = verify(fix=True)
    assert fixed.fixed == [run.id] and verify().ok
    assert mod.load(6) == [0, 1, 2, 3, 4, 5]  # recomputed, not the altered file
    assert len(tc.runs(task="load")) == 3


def test_gc_drops_failed_runs_and_keeps_what_lineage_needs(make_module):
    mod = _pipeline(make_module)  # load#1 -> total#2, load#3 -> total#4, broken#5
    mod.load(7)                   # load#6, read by nobody
    dry = gc(dry_run=True)
    failed_id = int(tc.runs(task="broken").index[0])
    assert dry.runs == [failed_id] and dry.dry_run and "would remove 1 runs" in str(dry)
    assert len(tc.runs(task="broken")) == 1  # dry run changed nothing
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
    (run_id,) = tc.runs(task="boxed").index
    assert tc.run(run_id).artifacts[0].codec == "pickle"
    tc.configure(allow_pickle=False)
    with pytest.raises(PickleDisabledError, match="allow_pickle"):
        tc.run(run_id).outputs["return"]
    with pytest.warns(UserWarning, match="not cached"):
        assert mod.boxed(3) == mod.Box(3)  # recomputed, never unpickled
    assert len(tc.runs(task="boxed")) == 2


def test_command_line(make_module, cache_dir):
    _pipeline(make_module)

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "taskcache.cli", "--cache-dir", str(cache_dir), *args],
                              capture_output=True, text=True, timeout=60)

    out = cli("runs", "--task", "total")
    assert out.returncode == 0 and out.stdout.count("completed") == 2
    first = int(tc.runs(task="total").index[-1])
    shown = cli("show", str(first))
    assert "values: builtins.list" in shown.stdout and "<- run #" in shown.stdout
    assert "input values: [0, 1, 2, 3, 4] -> [0, 1, 2, 3, 4, 5]" in cli("why", "total").stdout
    assert cli("verify").returncode == 0
    assert "would remove 1 runs" in cli("gc", "--dry-run").stdout
    assert "hits" in cli("summary").stdout
    missing = cli("show", "999")
    assert missing.returncode == 2 and "no run #999" in missing.stderr
