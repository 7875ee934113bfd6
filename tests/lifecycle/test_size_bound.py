"""max_size: a cache keeps itself within its budget after writes, least recently used first,
lineage-aware, never removing a run just written; configured from pyproject, %config or
configure()."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from IPython.core.error import UsageError

import taskcache
from taskcache.config import resolve_settings
from taskcache.errors import ConfigError
from taskcache.lifecycle import eviction
from taskcache.lifecycle.runner import get_runner

KB = 1000


def make(seed: int) -> np.ndarray:
    """100 KB of float64 (plus a .npy header)."""
    return np.full(100 * KB // 8, float(seed))


def total(arr: np.ndarray) -> float:
    return float(arr.sum())


def _runs_by_task() -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for run in get_runner().catalog.query_runs(status="completed", limit=1000):
        out.setdefault(run.task, []).append(run.id)
    return out


def _settle_bound() -> None:
    bound = get_runner().size_bound
    assert bound is not None
    bound.wait(60)


@pytest.fixture
def no_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs finished a moment ago may be removed (except the one that was just written)."""
    monkeypatch.setattr(eviction, "JUST_WRITTEN", timedelta(0))


def test_writes_beyond_max_size_remove_the_least_recently_used(cache_dir: Path, no_grace) -> None:
    taskcache.configure(max_size=250 * KB)
    f = taskcache.task(make)
    first, second = f(1), f(2)
    _settle_bound()
    assert len(_runs_by_task()["make"]) == 2  # 200 KB: within the bound
    time.sleep(0.01)
    assert f(1)[0] == first[0]  # a hit: run 1 is now used more recently than run 2
    f(3)  # 300 KB > 250 KB: one run goes, the least recently used (run 2)
    _settle_bound()
    runner = get_runner()
    kept = {r.fingerprint: r for r in runner.catalog.query_runs(status="completed", limit=10)}
    assert len(kept) == 2
    assert f.lookup(2) is None and f.lookup(1) is not None and f.lookup(3) is not None
    assert runner.catalog.summary()["disk_bytes"] <= 250 * KB
    files = list(runner.store.iter_files())
    assert len(files) == 2  # the removed run's file went with it
    assert f(2)[0] == second[0]  # recomputed; the bound then removes the next least used


def test_the_run_just_written_stays_even_alone_over_the_bound(no_grace) -> None:
    taskcache.configure(max_size=50 * KB)
    f = taskcache.task(make)
    f(1)
    _settle_bound()
    assert f.lookup(1) is not None  # 100 KB > 50 KB, but it was just written
    f(2)
    _settle_bound()
    assert f.lookup(1) is None and f.lookup(2) is not None


def test_runs_whose_outputs_kept_runs_read_are_kept(no_grace) -> None:
    taskcache.configure(max_size=250 * KB)
    f, g = taskcache.task(make), taskcache.task(total)
    upstream = f(1)
    g(upstream)  # g's input links (by value) to f(1)'s output
    f(2)
    time.sleep(0.01)
    g(upstream)  # a hit: g is used more recently than f(2)
    f(3)  # over the bound: f(1) is least recently used, but g, which is kept, read it
    _settle_bound()
    assert f.lookup(1) is not None and g.lookup(upstream) is not None
    assert f.lookup(2) is None and f.lookup(3) is not None


def test_recent_runs_are_kept(cache_dir: Path) -> None:
    """Within JUST_WRITTEN, runs of any process are not removed: the bound waits."""
    taskcache.configure(max_size=150 * KB)
    f = taskcache.task(make)
    f(1), f(2), f(3)
    _settle_bound()
    assert all(f.lookup(i) is not None for i in (1, 2, 3))


def test_no_bound_means_no_work() -> None:
    f = taskcache.task(make)
    f(1)
    assert get_runner().size_bound is None


def test_max_size_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKCACHE_DIR", raising=False)
    (tmp_path / "pyproject.toml").write_text('[tool.taskcache]\nmax_size = "20GB"\n')
    assert resolve_settings(start=tmp_path).max_size == 20 * 10**9
    assert resolve_settings(start=tmp_path, max_size="1.5GiB").max_size == int(1.5 * 2**30)
    assert resolve_settings(start=tmp_path, max_size=1234).max_size == 1234
    (tmp_path / "pyproject.toml").write_text('[tool.taskcache]\nmax_size = "20 gigs"\n')
    with pytest.raises(ConfigError, match="max_size.*not a size"):
        resolve_settings(start=tmp_path)
    with pytest.raises(ConfigError, match="max_size"):
        resolve_settings(start=tmp_path, max_size=True)


def test_max_size_from_percent_config(ip: Any, caplog: pytest.LogCaptureFixture,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("config", 'TaskCache.max_size = "2MB"')
    assert get_runner().settings.max_size == 2_000_000
    ip.run_line_magic("taskcache", "config")
    assert "max_size               2000000" in capsys.readouterr().out
    ip.run_line_magic("config", 'TaskCache.max_size = "lots"')  # %config shows the error
    assert "'lots' is not a size; write e.g. 500MB" in caplog.text
    magics = ip.magics_manager.registry["TaskCache"]
    with pytest.raises(UsageError, match="max_size"):
        magics.max_size = "heaps"
