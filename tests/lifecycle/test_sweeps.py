"""Sweeps on real pools: threads, spawned worker processes, a real Dask LocalCluster.

Tasks are defined inside the tests, as in a notebook: the process executor must send them by
value. Each computation appends a line to a log file, so "computed exactly N" is counted from
side effects, not from our own bookkeeping."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import CancelledError
from pathlib import Path

import pytest

import taskcache as tc
from taskcache.errors import TaskTimeoutError
from taskcache.lifecycle.runner import get_runner
from tests.helpers import clean_env


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def history_reasons(run_id: int) -> list[str | None]:
    return [change.reason for change in tc.run(run_id).history()]


def test_map_serves_hits_in_the_caller_and_computes_only_misses_on_processes(tmp_path: Path) -> None:
    log = tmp_path / "computed.txt"

    @tc.task(ignore=["log"])
    def square(x: int, log: str) -> int:
        with open(log, "a") as f:
            f.write(f"{x}\n")
        return x * x

    assert square.map(range(0, 40, 2), [str(log)] * 20, executor="threads", progress=False) \
        == [x * x for x in range(0, 40, 2)]
    assert len(lines(log)) == 20

    result = square.map(range(40), [str(log)] * 40, executor="processes", max_workers=2,
                        progress=False)

    assert result == [x * x for x in range(40)]
    computed = lines(log)[20:]
    assert sorted(map(int, computed)) == list(range(1, 40, 2))  # exactly the 20 misses
    runs = tc.runs(task=square.task_name, limit=100)
    assert (runs.status == "completed").sum() == 40
    assert runs.fingerprint.nunique() == 40


def test_a_flaky_task_fails_twice_then_succeeds_and_every_attempt_is_a_run(tmp_path: Path) -> None:
    log = tmp_path / "attempts.txt"

    @tc.task(retries=2, retry_delay=0.01, retry_backoff=2.0, retry_on=(OSError,), ignore=["log"])
    def flaky(x: int, log: str) -> int:
        with open(log, "a") as f:
            f.write("try\n")
        if len(lines(Path(log))) < 3:
            raise OSError("the share is not mounted yet")
        return x + 1

    assert flaky(1, str(log)) == 2
    runs = tc.runs(task=flaky.task_name).sort_index()
    assert list(runs.status) == ["failed", "failed", "completed"]
    assert [tc.run(i).env["attempt"] for i in runs.index] == [1, 2, 3]
    assert "the share is not mounted yet" in tc.run(int(runs.index[0])).error["traceback"]
    assert flaky(1, str(log)) == 2 and len(lines(log)) == 3  # now a hit


def test_retries_end_with_the_last_error_and_skip_other_errors(tmp_path: Path) -> None:
    log = tmp_path / "attempts.txt"

    @tc.task(retries=1, retry_on=(OSError,), ignore=["log"])
    def broken(kind: str, log: str) -> None:
        with open(log, "a") as f:
            f.write(f"{kind}\n")
        raise (OSError if kind == "os" else ValueError)(f"attempt {len(lines(Path(log)))}")

    with pytest.raises(OSError, match="attempt 2"):
        broken.map(["os"], [str(log)], executor="processes", max_workers=2, progress=False)
    with pytest.raises(ValueError, match="attempt 3"):
        broken("value", str(log))
    assert lines(log) == ["os", "os", "value"]  # a ValueError is not retried


def test_a_timeout_stops_the_sleeping_worker_and_records_the_run_failed(tmp_path: Path) -> None:
    @tc.task(timeout=1.0)
    def sleepy(seconds: float) -> int:
        time.sleep(seconds)
        return os.getpid()

    started = time.monotonic()
    future = sleepy.submit(60, executor="processes", max_workers=2)
    with pytest.raises(TaskTimeoutError, match="timeout of 1 s"):
        future.result(timeout=30)
    assert time.monotonic() - started < 15
    run = tc.runs(task=sleepy.task_name).iloc[0]
    assert run.status == "failed"
    assert history_reasons(int(run.name))[-1] == "timeout"
    worker_pid = tc.run(int(run.name)).pid
    assert worker_pid != os.getpid()
    with pytest.raises(ProcessLookupError):  # the worker was stopped, not left sleeping
        os.kill(worker_pid, 0)
    assert sleepy.map([0.01], executor="processes", max_workers=2, progress=False)[0] > 0


def test_a_timeout_on_a_plain_call_in_the_main_thread() -> None:
    @tc.task(timeout=0.3)
    def sleepy(seconds: float) -> str:
        time.sleep(seconds)
        return "woke"

    with pytest.raises(TaskTimeoutError):
        sleepy(30)
    run_id = int(tc.runs(task=sleepy.task_name).index[0])
    assert tc.run(run_id).status == "failed" and history_reasons(run_id)[-1] == "timeout"
    assert sleepy(0.01) == "woke"


def test_cancel_stops_a_running_process_and_records_the_run_cancelled(tmp_path: Path) -> None:
    marker = tmp_path / "started"

    @tc.task(ignore=["marker"])
    def sleepy(seconds: float, marker: str) -> None:
        Path(marker).touch()
        time.sleep(seconds)

    future = sleepy.submit(60, str(marker), executor="processes", max_workers=2)
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # the run is claimed before the body starts
    assert future.cancel()
    with pytest.raises(CancelledError):
        future.result(timeout=30)
    assert tc.runs(task=sleepy.task_name).status.tolist() == ["cancelled"]


def test_interrupting_a_map_cancels_queued_calls_and_stops_running_ones(tmp_path: Path) -> None:
    marker = tmp_path / "started"

    @tc.task(ignore=["marker"])
    def sleepy(x: int, marker: str) -> None:
        with open(marker, "a") as f:
            f.write(f"{x}\n")
        time.sleep(60)

    def interrupt() -> None:
        deadline = time.monotonic() + 30
        while len(lines(marker)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        sleepy.map(range(4), [str(marker)] * 4, executor="processes", max_workers=2,
                   progress=False)
    assert time.monotonic() - started < 30
    assert len(lines(marker)) == 2  # the two queued calls never started
    assert sorted(tc.runs(task=sleepy.task_name).status) == ["cancelled", "cancelled"]


def test_submit_passes_futures_downstream_and_runs_independent_calls_in_parallel() -> None:
    @tc.task
    def slow(x: int) -> int:
        time.sleep(0.5)
        return x

    @tc.task
    def add(a: int, b: int) -> int:
        return a + b

    started = time.monotonic()
    total = add.submit(slow.submit(1, ), slow.submit(2))
    assert total.result(timeout=10) == 3
    assert time.monotonic() - started < 0.95  # the two slow calls overlapped
    add_run = tc.runs(task=add.task_name).index[0]
    assert {r.task for r in tc.run(int(add_run)).upstream()} == {slow.task_name}

    async def awaited() -> int:
        return await add.submit(1, 2)

    assert asyncio.run(awaited()) == 3


def test_a_failed_dependency_fails_the_dependent() -> None:
    @tc.task
    def boom() -> int:
        raise RuntimeError("no data")

    @tc.task
    def double(x: int) -> int:
        return 2 * x

    with pytest.raises(RuntimeError, match="no data"):
        double.submit(boom.submit()).result(timeout=10)
    assert tc.runs(task=double.task_name).empty


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_a_task_mapped_inside_a_task_records_its_parent(executor: str) -> None:
    @tc.task
    def child(x: int) -> int:
        return x + 1

    @tc.task
    def parent(n: int) -> int:
        return sum(child.map(range(n), executor=executor, max_workers=2, progress=False))

    assert parent(3) == 6
    parent_id = int(tc.runs(task=parent.task_name).index[0])
    children = tc.runs(task=child.task_name)
    assert len(children) == 3 and set(children.parent_run_id) == {parent_id}


SWEEP = textwrap.dedent("""
    import sys, time
    import taskcache as tc

    cache, log, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3])
    tc.configure(cache_dir=cache)

    @tc.task(ignore=["log"])
    def point(x, log):
        with open(log, "a") as f:
            f.write(f"{x}\\n")
        time.sleep(0.3)
        return x * 10

    while time.time() < start_at:
        time.sleep(0.005)
    print(sum(point.map(range(8), [log] * 8, executor="processes", max_workers=2,
                        progress=False)))
""")


def test_two_processes_mapping_the_same_sweep_compute_each_point_once(tmp_path: Path) -> None:
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP)
    log = tmp_path / "computed.txt"
    env = clean_env()
    start_at = str(time.time() + 3)
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "cache"), str(log),
                               start_at], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert [o[0].strip() for o in outs] == ["280", "280"]
    assert sorted(map(int, lines(log))) == list(range(8))


def test_progress_counts_hits_and_computed_calls() -> None:
    from taskcache.lifecycle import progress

    seen: list[str] = []

    class Recorder:
        def __init__(self, counts: progress.Counts) -> None:
            pass

        def update(self, counts: progress.Counts) -> None:
            seen.append(counts.text())

        def close(self, counts: progress.Counts) -> None:
            seen.append("closed " + counts.text())

    @tc.task
    def inc(x: int) -> int:
        return x + 1

    inc(0)
    progress.set_progress_bar(Recorder)
    try:
        inc.map(range(3), executor="threads")
    finally:
        progress.set_progress_bar(None)
    assert seen[0] == "1/3 done · 1 hits"
    assert seen[-1] == "closed 3/3 done · 1 hits"


def test_bad_executor_names_the_choices() -> None:
    @tc.task
    def one(x: int) -> int:
        return x

    with pytest.raises(ValueError, match="unknown executor 'gpu'.*'threads', 'processes', 'dask'"):
        one.map([1], executor="gpu", progress=False)


def test_dask_local_cluster_runs_misses_and_records_into_the_same_catalog(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    distributed = pytest.importorskip("distributed")
    # an IPython shell made by an earlier test may have put a __main__ without __spec__ in
    # sys.modules, which multiprocessing's spawn (Dask's nanny) cannot take
    monkeypatch.setattr(sys.modules["__main__"], "__spec__", None, raising=False)
    log = tmp_path / "computed.txt"

    @tc.task(ignore=["log"])
    def cube(x: int, log: str) -> int:
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        return x ** 3

    cube(1, str(log))
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        assert cube.map(range(6), [str(log)] * 6, executor=client, progress=False) == \
            [x ** 3 for x in range(6)]
        assert cube.map(range(6), [str(log)] * 6, executor="dask", progress=False) == \
            [x ** 3 for x in range(6)]
        @tc.task(timeout=2.0)
        def stuck(seconds: float) -> None:
            time.sleep(seconds)

        with pytest.raises(TaskTimeoutError):
            stuck.submit(120, executor=client).result(timeout=60)
        stuck_run = tc.run(int(tc.runs(task=stuck.task_name).index[0]))
        assert stuck_run.status == "failed" and history_reasons(stuck_run.id)[-1] == "timeout"
        alive = set(client.run(os.getpid).values())
        assert stuck_run.pid not in alive  # that worker was restarted, the sleep is over
    pids = lines(log)
    assert len(pids) == 6  # 1 in the caller, 5 on the cluster, none twice
    assert all(pid != str(os.getpid()) for pid in pids[1:])
    assert (tc.runs(task=cube.task_name).status == "completed").sum() == 6
    assert get_runner().catalog.integrity_check() == "ok"


def test_the_notebook_bar_shows_the_counts(ip: object) -> None:
    from taskcache.browser.progress import WidgetProgressBar
    from taskcache.lifecycle import progress

    bars: list[WidgetProgressBar] = []

    def make(counts: progress.Counts) -> WidgetProgressBar:
        bars.append(WidgetProgressBar(counts))
        return bars[-1]

    @tc.task
    def half(x: int) -> float:
        if x == 3:
            raise ValueError("three")
        return x / 2

    half(0)
    progress.set_progress_bar(make)
    try:
        with pytest.raises(ValueError, match="three"):
            half.map(range(4), executor="threads")
    finally:
        progress.set_progress_bar(None)
    (bar,) = bars
    assert bar._bar.value == 4 and bar._bar.max == 4 and bar._bar.bar_style == "danger"
    assert "4/4 done · 1 hits · 1 failed" in bar._label.value


def test_cancel_on_threads_cancels_queued_calls_but_not_a_running_one(tmp_path: Path) -> None:
    release = tmp_path / "release"

    @tc.task(ignore=["release"])
    def wait_for(x: int, release: str) -> int:
        while not Path(release).exists():
            time.sleep(0.01)
        return x

    first = wait_for.submit(1, str(release), executor="threads", max_workers=1)
    queued = wait_for.submit(2, str(release), executor="threads", max_workers=1)
    deadline = time.monotonic() + 10
    while not first.running() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not first.cancel()  # a thread cannot be stopped: it runs on
    assert queued.cancel() and queued.cancelled()
    release.touch()
    assert first.result(timeout=10) == 1
    assert tc.runs(task=wait_for.task_name).status.tolist() == ["completed"]


def test_a_worker_that_dies_fails_its_run_and_the_pool_goes_on() -> None:
    from taskcache.errors import WorkerDiedError

    @tc.task
    def crash(code: int) -> int:
        if code:
            os._exit(code)
        return code

    with pytest.raises(WorkerDiedError, match="exit code 3"):
        crash.submit(3, executor="processes", max_workers=2).result(timeout=60)
    assert tc.runs(task=crash.task_name).status.tolist() == ["failed"]
    assert crash.map([0], executor="processes", max_workers=2, progress=False) == [0]


def test_any_executor_and_the_executor_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               ip: object) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    monkeypatch.setattr(sys.modules["__main__"], "__spec__", None, raising=False)

    @tc.task
    def where(x: int) -> int:
        return os.getpid()

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        (pid,) = where.map([1], executor=pool, progress=False)
    assert pid != os.getpid()

    ip.run_line_magic("config", 'TaskCache.executor = "processes"')  # type: ignore[attr-defined]
    assert get_runner().settings.executor == "processes"
    (pid,) = where.map([2], progress=False)
    assert pid != os.getpid()
    ip.run_cell('%config TaskCache.executor = "gpu"')  # type: ignore[attr-defined]
    assert get_runner().settings.executor == "processes"  # refused, with the choices shown


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_a_sweep_records_what_its_calls_change_in_their_arguments(executor: str) -> None:
    @tc.task
    def append(items: list, x: int) -> int:
        items.append(x)
        return len(items)

    lists = [[0], [0]]
    assert append.map(lists, [1, 2], executor=executor, max_workers=2, progress=False) == [2, 2]
    if executor == "threads":  # the caller's own objects; a worker process changes its copies
        assert lists == [[0, 1], [0, 2]]
    fresh = [[0], [0]]
    assert append.map(fresh, [1, 2], executor=executor, max_workers=2, progress=False) == [2, 2]
    assert fresh == [[0, 1], [0, 2]]  # the hits wrote the change into the caller's lists
    assert len(append.runs()) == 2
