"""A sweep on threads claims all its points in one transaction before they run: single-flight
across processes still holds, the leases of queued points are kept alive, a process that
dies leaves runs that others take over, and points that never start are recorded cancelled.
Real processes, real threads; SQLite and PostgreSQL where a catalog is shared."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import taskcache as tc
from taskcache.catalog import Catalog
from taskcache.lifecycle.runner import get_runner
from tests.helpers import clean_env

SWEEP = textwrap.dedent("""
    import os, sys, time
    import taskcache as tc

    cache, log = sys.argv[1], sys.argv[2]
    tc.configure(cache_dir=cache, lease_seconds=float(os.environ.get("LEASE", "60")),
                 heartbeat_seconds=float(os.environ.get("BEAT", "15")))

    @tc.task(ignore=["log"])
    def point(x, log):
        with open(log, "a") as f:
            f.write(f"{x} {os.getpid()}\\n")
        time.sleep(float(os.environ["DELAY"]))  # read at call time: not part of the key
        return x * 10

    start_at = float(os.environ.get("START_AT", "0"))
    while time.time() < start_at:
        time.sleep(0.005)
    print(sum(point.map(range(int(os.environ["POINTS"])), [log] * int(os.environ["POINTS"]),
                        executor="threads", max_workers=int(os.environ["WORKERS"]),
                        progress=False)), flush=True)
""")


@pytest.fixture
def sweep(tmp_path: Path, catalog_url: str):
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP)
    log = tmp_path / "computed.txt"
    cache = tmp_path / "shared-cache"
    if catalog_url.startswith("sqlite"):
        catalog_url = f"sqlite:///{cache / 'catalog.db'}"

    def start(points: int, workers: int, delay: float, **env: str) -> subprocess.Popen[str]:
        full_env = clean_env(**env, POINTS=str(points), WORKERS=str(workers), DELAY=str(delay),
                             TASKCACHE_DB_URL=catalog_url)
        return subprocess.Popen([sys.executable, str(script), str(cache), str(log)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=full_env)

    start.log = log
    start.url = catalog_url
    return start


def computed(log: Path) -> list[tuple[int, int]]:
    if not log.exists():
        return []
    return [tuple(map(int, line.split())) for line in log.read_text().splitlines()]


def runs_by_status(url: str) -> dict[str, int]:
    cat = Catalog(url)
    try:
        found: dict[str, int] = {}
        for run in cat.query_runs(limit=1000):
            found[run.status] = found.get(run.status, 0) + 1
        return found
    finally:
        cat.dispose()


def test_two_processes_claiming_one_sweep_on_threads_compute_each_point_once(sweep) -> None:
    start_at = str(time.time() + 3)  # both import first, then claim together
    procs = [sweep(12, 3, 0.2, START_AT=start_at) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    assert [o[0].strip() for o in outs] == ["660", "660"]
    assert sorted(x for x, _ in computed(sweep.log)) == list(range(12))  # each point once
    assert runs_by_status(sweep.url) == {"completed": 12}


def test_a_process_killed_after_claiming_its_sweep_leaves_runs_another_takes_over(sweep) -> None:
    owner = sweep(4, 1, 60, LEASE="1.0", BEAT="0.2")  # all 4 claimed, 1 runs, 3 queued
    deadline = time.monotonic() + 60
    while not computed(sweep.log) or runs_by_status(sweep.url) != {"running": 4}:
        assert time.monotonic() < deadline and owner.poll() is None, owner.stderr.read()
        time.sleep(0.05)
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    successor = sweep(4, 2, 0.05, LEASE="1.0", BEAT="0.2")
    out, err = successor.communicate(timeout=120)
    assert successor.returncode == 0 and out.strip() == "60", err
    by_pid: dict[int, list[int]] = {}
    for x, pid in computed(sweep.log):
        by_pid.setdefault(pid, []).append(x)
    assert by_pid[owner.pid] == [0] and sorted(by_pid[successor.pid]) == [0, 1, 2, 3]
    assert runs_by_status(sweep.url) == {"failed": 4, "completed": 4}
    cat = Catalog(sweep.url)
    try:
        reasons = {cat.history(r.id)[-1].reason for r in cat.query_runs(status="failed")}
    finally:
        cat.dispose()
    assert reasons == {"abandoned"}


def test_interrupting_a_sweep_on_threads_records_its_queued_points_cancelled(
        tmp_path: Path) -> None:
    release, started = tmp_path / "release", tmp_path / "started"

    @tc.task(ignore=["release", "started"])
    def wait_for(x: int, release: str, started: str) -> int:
        Path(started).touch()
        while not Path(release).exists():
            time.sleep(0.01)
        return x

    def claimed() -> int:
        return len(get_runner().catalog.query_runs(task=wait_for.task_name))

    def interrupt() -> None:  # once one call runs and the other three are claimed
        deadline = time.monotonic() + 30
        while not (started.exists() and claimed() == 4) and time.monotonic() < deadline:
            time.sleep(0.01)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        time.sleep(0.3)
        release.touch()  # the running call (a thread cannot be stopped) ends

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        wait_for.map(range(4), [str(release)] * 4, [str(started)] * 4, executor="threads",
                     max_workers=1, progress=False)
    statuses = sorted(tc.runs(task=wait_for.task_name).status)
    assert statuses == ["cancelled", "cancelled", "cancelled", "completed"]
    assert not any(r.status == "running" for r in get_runner().catalog.query_runs())


def test_the_leases_of_queued_points_are_kept_alive_while_they_wait() -> None:
    tc.configure(lease_seconds=0.5, heartbeat_seconds=0.1)

    @tc.task
    def slowish(x: int) -> int:
        time.sleep(0.4)
        return x

    catalog = get_runner().catalog
    stop = threading.Event()
    expired: list[int] = []

    def take_over() -> None:  # what any other process does: fail runs whose lease expired
        while not stop.is_set():
            expired.extend(catalog.expire_abandoned())
            time.sleep(0.05)

    watcher = threading.Thread(target=take_over)
    watcher.start()
    try:
        assert slowish.map(range(4), executor="threads", max_workers=1,
                           progress=False) == [0, 1, 2, 3]  # the last waits 1.2 s > lease
    finally:
        stop.set()
        watcher.join()
    assert expired == []
    assert sorted(tc.runs(task=slowish.task_name).status) == ["completed"] * 4
