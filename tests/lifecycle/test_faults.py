"""Issue 5, "locked or full" and "crash safety": injected failures, a locked catalog, a full
disk and SIGKILL at many points. The user's code always returns its value; afterwards no
completed run points at a bad file, and once the fault is gone everything caches again."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import write_lock

import taskcache as tc
from taskcache.catalog import Catalog
from taskcache.errors import CacheWarning, CatalogUnavailableError
from taskcache.lifecycle import runner as runner_module
from taskcache.lifecycle.maintenance import verify
from taskcache.lifecycle.runner import Runner, get_runner
from taskcache.storage.store import TEMP_PREFIX, ArtifactStore

WORKER = Path(__file__).with_name("_fault_worker.py")


@pytest.fixture(params=["sqlite", "postgresql"], autouse=True)
def backend(request: pytest.FixtureRequest, cache_dir: Path) -> str:
    """Each fault on SQLite and on a real PostgreSQL catalog. Faults of SQLite's own file
    (locks, a full disk under the database, COMMIT errors of the driver) are ``sqlite_only``;
    the injected store faults run once per kind on PostgreSQL (k = 1, once)."""
    if request.param == "postgresql":
        if request.node.get_closest_marker("sqlite_only"):
            pytest.skip("a fault of the SQLite file itself")
        params = getattr(getattr(request.node, "callspec", None), "params", {})
        if str(params.get("where", "")).endswith("commit") or params.get("k", 1) != 1 \
                or params.get("mode", "once") != "once":
            pytest.skip("on PostgreSQL each store fault runs once (k = 1, once)")
        request.getfixturevalue("postgres_url")
    return request.param

SQUARES = """
import taskcache as tc
CALLS = []

@tc.task
def square(x):
    CALLS.append(x)
    if x < 0:
        raise ValueError(f"negative: {x}")
    return {"x": x, "squares": [x * x] * 100}
"""


def squares(x: int) -> dict:
    return {"x": x, "squares": [x * x] * 100}


def cache_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]


def temp_files(runner: Runner) -> list[Path]:
    return sorted(runner.store.root.rglob(f"{TEMP_PREFIX}*"))


def check_invariants(runner: Runner, *, settled: bool = False) -> None:
    """Every completed run's artifacts verify, the database is intact, no temp file is left.
    ``settled``: also no run still running, no file nobody refers to, and every failed run
    says why its value was not cached."""
    report = verify(runner=runner)
    assert report.ok, str(report)
    assert temp_files(runner) == []
    if not settled:
        return
    assert set(runner.store.iter_files()) <= runner.catalog.artifact_relpaths()
    for run in runner.catalog.query_runs(limit=1000):
        assert run.status in ("completed", "failed"), (run.id, run.status)
        if run.status == "failed" and run.error_type != "builtins.ValueError":
            assert runner.catalog.history(run.id)[-1].reason.startswith("not cached: "), run.id


# -- injected failures: write, fsync, rename, commit at the k-th call, once and always ------

class Fault:
    """Fails the k-th call (once) or every call from the k-th on (always) while active."""

    def __init__(self, k: int, always: bool) -> None:
        self.k, self.always = k, always
        self.calls = self.fired = 0
        self.active = True

    def now(self) -> bool:
        if not self.active:
            return False
        self.calls += 1
        failing = self.calls == self.k or (self.always and self.calls > self.k)
        self.fired += failing
        return failing


def _fail_writes(fault: Fault, monkeypatch: pytest.MonkeyPatch, runner: Runner) -> None:
    """The codec's write of a temp file: half of it written, then the disk is full."""
    real = ArtifactStore.write

    def write(self, parts, suffix, writer):
        def failing_writer(path: Path) -> None:
            if fault.now():
                path.write_bytes(b"half of it")
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            writer(path)

        return real(self, parts, suffix, failing_writer)

    monkeypatch.setattr(ArtifactStore, "write", write)


def _fail_os(name: str, error: int) -> Callable[[Fault, pytest.MonkeyPatch, Runner], None]:
    def install(fault: Fault, monkeypatch: pytest.MonkeyPatch, runner: Runner) -> None:
        real = getattr(os, name)

        def failing(*args, **kwargs):
            if fault.now():
                raise OSError(error, os.strerror(error))
            return real(*args, **kwargs)

        monkeypatch.setattr(os, name, failing)

    return install


def _fail_commits(only_completing: bool) -> Callable[[Fault, pytest.MonkeyPatch, Runner], None]:
    """COMMIT fails with a disk I/O error: the one marking a run completed, or every one."""

    def install(fault: Fault, monkeypatch: pytest.MonkeyPatch, runner: Runner) -> None:
        catalog = runner.catalog
        dialect = catalog._db.engine.dialect
        real_commit, real_complete = dialect.do_commit, catalog.complete
        completing = threading.local()

        def do_commit(dbapi_connection):
            if (not only_completing or getattr(completing, "now", False)) and fault.now():
                error = sqlite3.OperationalError("disk I/O error")
                error.sqlite_errorcode = 10  # SQLITE_IOERR
                raise error
            return real_commit(dbapi_connection)

        def complete(*args, **kwargs):
            completing.now = True
            try:
                return real_complete(*args, **kwargs)
            finally:
                completing.now = False

        monkeypatch.setattr(dialect, "do_commit", do_commit)
        monkeypatch.setattr(catalog, "complete", complete)

    return install


FAULTS = {
    "write": _fail_writes,
    "fsync": _fail_os("fsync", errno.EIO),
    "rename": _fail_os("replace", errno.EACCES),
    "completing-commit": _fail_commits(only_completing=True),
    "any-commit": _fail_commits(only_completing=False),
}


@pytest.mark.parametrize("mode", ["once", "always"])
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("where", list(FAULTS))
def test_injected_failures_keep_every_invariant(where, k, mode, make_module, monkeypatch):
    mod = make_module("m_faults", SQUARES)
    runner = get_runner()
    fault = Fault(k, always=mode == "always")
    FAULTS[where](fault, monkeypatch, runner)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for x in (1, 2, 3):
            assert mod.square(x) == squares(x)
    fault.active = False
    assert fault.fired
    not_cached = cache_warnings(caught)
    assert all("Traceback" not in text and "sqlalche" not in text for text in not_cached)
    check_invariants(runner)

    ran = len(mod.CALLS)
    for x in (1, 2, 3):  # the fault is gone: what was not cached is computed and cached now
        assert mod.square(x) == squares(x)
    assert len(not_cached) == len(mod.CALLS) - ran  # one warning for each value not cached
    ran = len(mod.CALLS)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        for x in (1, 2, 3):
            assert mod.square(x) == squares(x)
    assert len(mod.CALLS) == ran  # all hits
    check_invariants(runner, settled=True)


@pytest.mark.sqlite_only
def test_a_users_error_propagates_even_when_the_catalog_cannot_record_it(make_module, monkeypatch):
    mod = make_module("m_user_error", SQUARES)
    runner = get_runner()
    fault = Fault(2, always=True)  # the claim commits; recording the failure does not
    FAULTS["any-commit"](fault, monkeypatch, runner)
    with pytest.raises(ValueError, match="negative: -1") as info:
        mod.square(-1)
    assert info.value.__context__ is None  # raised as is, nothing chained onto it
    fault.active = False
    with pytest.raises(ValueError, match="negative: -1"):
        mod.square(-1)  # first records the failure it could not record before: no waiting
    runs = runner.catalog.query_runs(task="m_user_error.square")
    assert [(r.status, r.error_type) for r in runs] == [("failed", "builtins.ValueError")] * 2
    check_invariants(runner, settled=True)


def test_injected_enospc_returns_the_value_and_records_why(make_module, monkeypatch, cache_dir):
    mod = make_module("m_enospc", SQUARES)
    runner = get_runner()
    fault = Fault(1, always=False)
    _fail_writes(fault, monkeypatch, runner)
    folder = cache_dir / "artifacts" / "m_enospc.square" / "1"
    with pytest.warns(CacheWarning) as caught:
        assert mod.square(4) == squares(4)
    (text,) = cache_warnings(caught)
    assert text == (f"taskcache: m_enospc.square: result not cached: could not write output 'return' of "
                    f"run #1: No space left on device at {folder}; free space and re-run")
    (run,) = runner.catalog.query_runs(task="m_enospc.square")
    assert run.status == "failed"
    assert runner.catalog.history(run.id)[-1].reason == f"not cached: {text.split(': ', 3)[3]}"
    assert not [p for p in folder.rglob("*") if p.is_file()]  # partial file removed
    assert mod.square(4) == squares(4) and mod.square(4) == squares(4)
    assert mod.CALLS == [4, 4]
    check_invariants(runner, settled=True)


def test_heartbeat_failures_do_not_crash_anything(make_module, monkeypatch, caplog):
    tc.configure(lease_seconds=2, heartbeat_seconds=0.02)
    mod = make_module("m_beat", """
        import time
        import taskcache as tc

        @tc.task
        def slow(x):
            time.sleep(0.3)
            return x + 1
    """)
    runner = get_runner()
    crashed: list = []
    monkeypatch.setattr(threading, "excepthook", crashed.append)
    beats = iter([CatalogUnavailableError("at here", "disk I/O error", "check the disk"),
                  RuntimeError("anything else")])

    def renew_leases(claims, lease_seconds):
        raise next(beats, CatalogUnavailableError("at here", "database is locked", "wait"))

    monkeypatch.setattr(runner.catalog, "renew_leases", renew_leases)
    assert mod.slow(1) == 2
    assert crashed == []
    assert "could not renew the lease" in caplog.text and "anything else" in caplog.text
    assert [r.status for r in runner.catalog.query_runs(task="m_beat.slow")] == ["completed"]


# -- a catalog locked by another process ----------------------------------------------------



def assert_no_internals(text: str) -> None:
    for internal in ("Traceback", "sqlalchemy", "sqlalche.me", "OperationalError"):
        assert internal not in text, text


@pytest.mark.sqlite_only
def test_a_locked_catalog_runs_the_function_uncached_and_warns_once(make_module, cache_dir, capfd):
    tc.configure(busy_timeout_seconds=0.3)
    mod = make_module("m_locked", SQUARES)
    get_runner()  # the catalog exists
    with write_lock(cache_dir / "catalog.db"), pytest.warns(CacheWarning) as caught:
        started = time.monotonic()
        assert mod.square(5) == squares(5)
        waited = time.monotonic() - started
    (text,) = cache_warnings(caught)
    assert 0.25 < waited < 10  # the busy timeout, not the default 30 s
    assert str(cache_dir / "catalog.db") in text and "database is locked" in text
    assert "busy_timeout_seconds" in text
    assert_no_internals("".join(capfd.readouterr()))
    assert len(tc.runs(task="m_locked.square")) == 0  # nothing recorded
    with warnings.catch_warnings():  # the lock is gone: cached again
        warnings.simplefilter("error", CacheWarning)
        assert mod.square(5) == squares(5) and mod.square(5) == squares(5)
    assert mod.CALLS == [5, 5]
    check_invariants(get_runner(), settled=True)


@pytest.mark.sqlite_only
def test_a_locked_catalog_runs_an_async_function_uncached(make_module, cache_dir):
    tc.configure(busy_timeout_seconds=0.2)
    mod = make_module("m_locked_async", """
        import taskcache as tc

        @tc.task
        async def double(x):
            return 2 * x
    """)
    get_runner()
    with write_lock(cache_dir / "catalog.db"), pytest.warns(CacheWarning) as caught:
        assert asyncio.run(mod.double(4)) == 8
    (text,) = cache_warnings(caught)
    assert text.startswith("taskcache: m_locked_async.double ran without the cache: the catalog at ")
    assert asyncio.run(mod.double(4)) == 8
    assert [r.status for r in get_runner().catalog.query_runs(task="m_locked_async.double")] == ["completed"]


@pytest.mark.sqlite_only
def test_an_unreachable_catalog_is_named_with_what_to_do(tmp_path):
    from taskcache.catalog.engine import unavailable_error

    url = Catalog(f"sqlite:///{tmp_path / 'c.db'}").url
    cases = {5: "database is locked", 13: "database or disk is full", 10: "disk I/O error",
             14: "unable to open database file", 8: "attempt to write a readonly database"}
    for code, message in cases.items():
        orig = sqlite3.OperationalError(message)
        orig.sqlite_errorcode = code
        error = unavailable_error(url, orig, busy_timeout=2)
        assert isinstance(error, CatalogUnavailableError)
        assert str(error).startswith(f"the catalog at {tmp_path / 'c.db'} cannot be used: {message}; ")
    assert "free space on the disk holding" in str(unavailable_error(url, orig.__class__("database or disk is full"), 2))
    no_table = sqlite3.OperationalError("no such table: runs")
    no_table.sqlite_errorcode = 1
    assert unavailable_error(url, no_table, busy_timeout=2) is None  # a bug, not the disk


# -- %%task ---------------------------------------------------------------------------------

def last_status(ip) -> str:
    return [o["data"]["text/plain"] for o in ip.display_pub.outputs if "taskcache" in o["metadata"]][-1]


@pytest.mark.sqlite_only
def test_a_locked_catalog_runs_the_cell_uncached_and_warns_once(ip, cache_dir, capfd):
    tc.configure(busy_timeout_seconds=0.3)
    get_runner()
    ip.user_ns["x"] = 3
    cell = "%%task locked\ny = x * 2\nprint('computed', y)"
    with write_lock(cache_dir / "catalog.db"), pytest.warns(CacheWarning) as caught:
        assert ip.run_cell(cell).success
    (text,) = cache_warnings(caught)
    assert "locked ran without the cache" in text and str(cache_dir / "catalog.db") in text
    assert ip.user_ns["y"] == 6 and "not cached" in last_status(ip)
    out, err = capfd.readouterr()
    assert out.count("computed 6") == 1
    assert_no_internals(out + err)
    del ip.user_ns["y"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        assert ip.run_cell(cell).success
        assert "miss locked #1" in last_status(ip)
        assert ip.run_cell(cell).success
        assert "hit locked #1" in last_status(ip)
    assert ip.user_ns["y"] == 6


def test_a_cell_whose_outputs_cannot_be_written_keeps_its_variables(ip, monkeypatch, capfd):
    runner = get_runner()
    fault = Fault(1, always=True)
    _fail_writes(fault, monkeypatch, runner)
    ip.user_ns["x"] = 4
    cell = "%%task full\ny = x + 1\nz = [y] * 3"
    with pytest.warns(CacheWarning) as caught:
        assert ip.run_cell(cell).success
    (text,) = cache_warnings(caught)
    assert "full ran but was not cached" in text and "No space left on device at" in text
    assert ip.user_ns["y"] == 5 and ip.user_ns["z"] == [5, 5, 5]
    assert "not cached" in last_status(ip)
    assert_no_internals("".join(capfd.readouterr()))
    (run,) = runner.catalog.query_runs(task="full")
    assert run.status == "failed" and "No space left" in runner.catalog.history(run.id)[-1].reason
    fault.active = False
    assert ip.run_cell(cell).success and "miss full #2" in last_status(ip)
    assert ip.run_cell(cell).success and "hit full #2" in last_status(ip)
    check_invariants(runner, settled=True)


@pytest.mark.sqlite_only
def test_a_catalog_locked_before_it_was_ever_opened_still_runs_the_code(ip, make_module, tmp_path, capfd):
    """Another process is creating the catalog and keeps it locked (rollback journal, so even
    reads wait): opening it fails after the busy timeout; functions and cells still run."""
    fresh = tmp_path / "fresh"
    fresh.mkdir(mode=0o700)
    tc.configure(cache_dir=fresh, busy_timeout_seconds=0.2)
    mod = make_module("m_locked_early", SQUARES)
    ip.user_ns["x"] = 2
    with write_lock(fresh / "catalog.db"), pytest.warns(CacheWarning) as caught:
        assert mod.square(7) == squares(7)
        assert ip.run_cell("%%task early\ny = x + 1").success
    assert [text.split(" ran ")[0] for text in cache_warnings(caught)] == [
        "taskcache: m_locked_early.square", "taskcache: early"]
    assert ip.user_ns["y"] == 3 and "not cached" in last_status(ip)
    assert_no_internals("".join(capfd.readouterr()))
    assert mod.square(7) == squares(7) and mod.square(7) == squares(7)
    assert mod.CALLS == [7, 7]


# -- a real full disk -------------------------------------------------------------------------

@pytest.fixture
def small_disk(cache_dir: Path) -> Iterator[Path]:
    """A 2 MB tmpfs mounted as the artifacts folder (the catalog stays on the normal disk)."""
    artifacts = cache_dir / "artifacts"
    artifacts.mkdir(parents=True, mode=0o700)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs",
                               str(artifacts)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot run mount here: {exc}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): "
                    f"{done.stderr.strip()}")
    try:
        yield artifacts
    finally:
        runner_module.reset()
        subprocess.run(["umount", "-l", str(artifacts)], capture_output=True, timeout=30)


@pytest.mark.sqlite_only
def test_a_full_disk_returns_the_value_and_caches_once_space_is_freed(small_disk, make_module):
    filler = small_disk / ".filler"
    filler.write_bytes(b"\0" * 1_300_000)
    mod = make_module("m_full_disk", """
        import numpy as np
        import taskcache as tc
        CALLS = []

        @tc.task
        def big(n):
            CALLS.append(n)
            return np.ones(n)
    """)
    with pytest.warns(CacheWarning) as caught:
        value = mod.big(125_000)  # 1 MB, more than is left
    assert value.shape == (125_000,) and value.sum() == 125_000
    (text,) = cache_warnings(caught)
    assert "No space left on device at" in text and "free space and re-run" in text
    runner = get_runner()
    (run,) = runner.catalog.query_runs(task="m_full_disk.big")
    assert run.status == "failed" and "No space left" in runner.catalog.history(run.id)[-1].reason
    check_invariants(runner, settled=True)
    filler.unlink()  # space freed
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        assert mod.big(125_000).sum() == 125_000 and mod.big(125_000).sum() == 125_000
    assert mod.CALLS == [125_000, 125_000]
    check_invariants(runner, settled=True)


# -- SIGKILL at many points -------------------------------------------------------------------

N = 200_000
EXPECTED = float(N * (N - 1))  # sum(arange(N) * 2)


def start_worker(cache: Path, counter: Path, **env: str) -> subprocess.Popen[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKCACHE_", "FAULT_"))}
    if "TASKCACHE_DB_URL" in os.environ:  # the PostgreSQL variant: the same catalog
        full_env["TASKCACHE_DB_URL"] = os.environ["TASKCACHE_DB_URL"]
    full_env.update(env, N=str(N), LEASE="1", BEAT="0.2")
    return subprocess.Popen([sys.executable, str(WORKER), str(cache), str(counter)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)


def computed(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


@pytest.mark.parametrize("point", ["compute", "write", "renamed", "in-commit", "committed"])
def test_sigkill_at_any_point_leaves_no_bad_completed_run(point, tmp_path):
    cache, counter = tmp_path / "shared", tmp_path / "computed.txt"
    killed = start_worker(cache, counter, FAULT_KILL_AT=point)
    out, err = killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL, err
    assert computed(counter) == 1
    tc.configure(cache_dir=cache)
    runner = get_runner()
    report = verify(runner=runner)  # every completed run's artifacts verify; integrity ok
    assert report.ok, str(report)
    completed = runner.catalog.query_runs(status="completed")
    assert len(completed) == (1 if point == "committed" else 0)
    left = [p.name for p in temp_files(runner)]
    assert len(left) == (1 if point == "write" else 0), left
    runner_module.reset()

    successor = start_worker(cache, counter)  # takes the dead run over once its lease expired
    out, err = successor.communicate(timeout=60)
    assert successor.returncode == 0 and float(out) == EXPECTED, err
    tc.configure(cache_dir=cache)
    runner = get_runner()
    history = [(r.status, runner.catalog.history(r.id)[-1].reason)
               for r in reversed(runner.catalog.query_runs())]
    if point == "committed":
        assert computed(counter) == 1 and history == [("completed", None)]  # a hit
    else:
        assert computed(counter) == 2 and history == [("failed", "abandoned"), ("completed", None)]
    assert verify(runner=runner).ok

    old = time.time() - 7200  # what the dead process left is swept by gc once it is old
    for path in runner.store.root.rglob("*"):
        os.utime(path, (old, old))
    tc.gc(drop_failed=False)
    assert temp_files(runner) == []
    assert set(runner.store.iter_files()) == runner.catalog.artifact_relpaths()
    assert verify(runner=runner).ok
