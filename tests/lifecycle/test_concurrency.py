"""Several real processes on one catalog: single-flight, heartbeats, takeover of dead runs.
Every test runs on SQLite and on a real PostgreSQL (``catalog_url``)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from taskcache.catalog import Catalog
from taskcache.errors import RepeatedlyAbandonedError
from taskcache.lifecycle.runner import MAX_ABANDONED
from taskcache.records import RunSpec
from tests.helpers import clean_env

WORKER = textwrap.dedent("""
    import os, sys, time
    import taskcache as tc

    cache, counter = sys.argv[1], sys.argv[2]
    tc.configure(cache_dir=cache, lease_seconds=float(os.environ.get("LEASE", "60")),
                 heartbeat_seconds=float(os.environ.get("BEAT", "15")))
    start_at = float(os.environ.get("START_AT", "0"))
    while time.time() < start_at:
        time.sleep(0.005)

    @tc.task
    def slow(x):
        with open(counter, "a") as f:  # appended to: a log, not an output
            f.write(f"{os.getpid()}\\n")
        if os.environ.get("READ"):  # a file read: an input checked on every hit
            with open(os.environ["READ"]) as f:
                f.read()
        time.sleep(float(os.environ["DELAY"]))  # read at call time: not part of the key
        if os.environ.get("FAIL"):
            raise RuntimeError("owner failed")
        return x * 2

    print((slow.force if os.environ.get("FORCE") else slow)(21), flush=True)
""")


@pytest.fixture
def worker(tmp_path: Path, catalog_url: str):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    counter = tmp_path / "computed.txt"
    cache = tmp_path / "shared-cache"
    if catalog_url.startswith("sqlite"):
        catalog_url = f"sqlite:///{cache / 'catalog.db'}"

    def start(delay: float, **env: str) -> subprocess.Popen[str]:
        full_env = clean_env(**env, DELAY=str(delay), TASKCACHE_DB_URL=catalog_url)
        return subprocess.Popen([sys.executable, str(script), str(cache), str(counter)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)

    start.counter = counter
    start.cache = cache
    start.url = catalog_url
    return start


def computed(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def wait_for(predicate, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def statuses(url: str) -> list[tuple[str, str | None]]:
    cat = Catalog(url)
    try:
        return [(r.status, cat.history(r.id)[-1].reason) for r in reversed(cat.query_runs())]
    finally:
        cat.dispose()


def test_processes_starting_the_same_run_compute_it_once(worker):
    start_at = str(time.time() + 2.0)  # all import first, then call together
    procs = [worker(1.0, START_AT=start_at) for _ in range(5)]
    outs = [p.communicate(timeout=90) for p in procs]
    assert [p.returncode for p in procs] == [0] * 5, [o[1] for o in outs]
    assert [o[0].strip() for o in outs] == ["42"] * 5
    assert computed(worker.counter) == 1
    assert statuses(worker.url) == [("completed", None)]
    waited = [o[1] for o in outs if "waiting for run #1" in o[1]]
    assert waited, "the others said they were waiting"


def test_after_a_file_changed_processes_compute_the_new_run_once(worker, tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("v1")
    first = worker(0.05, READ=str(data))
    assert first.communicate(timeout=60)[0].strip() == "42" and computed(worker.counter) == 1
    data.write_text("v2, longer")
    start_at = str(time.time() + 2.0)
    procs = [worker(1.0, START_AT=start_at, READ=str(data)) for _ in range(4)]
    outs = [p.communicate(timeout=90) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [o[1] for o in outs]
    # the run of the old file state is no hit, and they wait for one new run
    assert computed(worker.counter) == 2
    assert statuses(worker.url) == [("completed", None)] * 2


def test_a_killed_owner_is_taken_over_after_its_lease(worker):
    owner = worker(60, LEASE="1.0", BEAT="0.2")
    wait_for(lambda: computed(worker.counter) == 1)
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    started = time.monotonic()
    successor = worker(0.1, LEASE="1.0", BEAT="0.2")
    out, err = successor.communicate(timeout=60)
    assert successor.returncode == 0 and out.strip() == "42", err
    assert time.monotonic() - started < 30
    assert computed(worker.counter) == 2
    assert statuses(worker.url) == [("failed", "abandoned"), ("completed", None)]


def test_the_heartbeat_keeps_a_long_run_alive(worker):
    owner = worker(3.0, LEASE="0.6", BEAT="0.1")  # runs 5 leases long
    wait_for(lambda: computed(worker.counter) == 1)
    waiter = worker(0, LEASE="0.6", BEAT="0.1")
    assert waiter.communicate(timeout=60)[0].strip() == "42"
    assert owner.communicate(timeout=60)[0].strip() == "42"
    assert computed(worker.counter) == 1  # nobody took the living run over
    assert statuses(worker.url) == [("completed", None)]


def test_when_the_owner_fails_a_waiter_computes(worker):
    owner = worker(1.0, FAIL="1")
    wait_for(lambda: computed(worker.counter) == 1)
    waiter = worker(0.1)
    out, err = waiter.communicate(timeout=60)
    owner.communicate(timeout=60)
    assert owner.returncode != 0 and waiter.returncode == 0 and out.strip() == "42", err
    assert computed(worker.counter) == 2
    assert [s for s, _ in statuses(worker.url)] == ["failed", "completed"]


def test_a_frozen_owner_does_not_overwrite_the_new_owners_result(worker):
    owner = worker(1.5, LEASE="0.6", BEAT="0.1")
    wait_for(lambda: computed(worker.counter) == 1)
    owner.send_signal(signal.SIGSTOP)  # frozen past its lease: its heartbeat stops too
    try:
        successor = worker(0.1, LEASE="0.6", BEAT="0.1")
        out, err = successor.communicate(timeout=60)
        assert successor.returncode == 0 and out.strip() == "42", err
    finally:
        owner.send_signal(signal.SIGCONT)
    out, err = owner.communicate(timeout=60)
    assert owner.returncode == 0 and out.strip() == "42"  # the user still gets the result
    assert "no longer owned by this process" in err  # ... and is told it was not recorded
    assert statuses(worker.url) == [("failed", "abandoned"), ("completed", None)]
    again = worker(0.1)
    assert again.communicate(timeout=60)[0].strip() == "42"
    assert computed(worker.counter) == 2  # the successor's result serves the hit


def test_a_run_that_keeps_killing_its_process_is_not_retried_until_forced(worker):
    fast = {"LEASE": "1.0", "BEAT": "0.2"}
    for n in range(1, MAX_ABANDONED + 1):  # each one takes over the dead one before it
        owner = worker(60, **fast)
        wait_for(lambda n=n: computed(worker.counter) == n)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    refused = worker(0.1, **fast)
    out, err = refused.communicate(timeout=60)
    assert refused.returncode == 1 and out == ""
    assert ("RepeatedlyAbandonedError: run of task slow (fingerprint " in err
            and "was abandoned 3 times (runs #1, #2, #3: the process died while computing it, "
                "e.g. out of memory); not retrying automatically. Use --force / .force() to "
                "try again" in err), err
    assert computed(worker.counter) == MAX_ABANDONED  # not started a fourth time
    forced = worker(0.1, FORCE="1", **fast)
    out, err = forced.communicate(timeout=60)
    assert forced.returncode == 0 and out.strip() == "42", err
    again = worker(0.1, **fast)
    assert again.communicate(timeout=60)[0].strip() == "42"
    assert computed(worker.counter) == MAX_ABANDONED + 1  # the forced result serves the hit
    assert statuses(worker.url) == [("failed", "abandoned")] * 3 + [("completed", None)]


def test_abandonments_count_since_the_last_completed_run(tmp_path: Path):
    cat = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    spec = RunSpec(task="t", kind="function", fingerprint="fp", code_hash="c")

    def abandon() -> int:
        run_id = cat.claim(spec, lease_seconds=0.001).run_id
        time.sleep(0.01)
        assert cat.expire_abandoned() == [run_id]
        return run_id

    try:
        abandon(), abandon()
        claim = cat.claim_or_join(spec, lease_seconds=60, max_abandoned=3)
        cat.complete(claim, [], duration=0.1)
        cat.invalidate(claim.run_id, "artifact gone")  # no longer served, still completed once
        first = abandon()
        plain = cat.claim(spec, lease_seconds=60)
        cat.finish_failed(plain, status="failed", error_type="ValueError", error_message="x",
                          traceback=None, duration=0.1)  # the code failing is not a dead process
        second = abandon()
        claim = cat.claim_or_join(spec, lease_seconds=0.001, max_abandoned=3)  # 2: still tried
        time.sleep(0.01)
        with pytest.raises(RepeatedlyAbandonedError) as caught:
            cat.claim_or_join(spec, lease_seconds=60, max_abandoned=3)
        assert caught.value.run_ids == (first, second, claim.run_id)
        assert cat.get_run(claim.run_id).status == "failed"  # its expiry was committed
        assert cat.claim_or_join(spec, lease_seconds=60) is not None  # no limit: claims
    finally:
        cat.dispose()
