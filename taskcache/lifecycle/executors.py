"""Where misses of ``f.map``/``f.submit`` execute: a thread pool, worker processes, Dask, or
any ``concurrent.futures.Executor``.

Every pool takes a :class:`~taskcache.lifecycle.jobs.Job` and returns a
``concurrent.futures.Future`` of its value. Pools that run jobs in processes they control
(``"processes"``, ``"dask"``) also *stop* a job: on its timeout, or when it is cancelled
while running. The worker is then killed (or restarted, on Dask) and the caller records the
run it had claimed as failed (reason "timeout") or cancelled, since the worker cannot.

Jobs go to processes serialized by value with cloudpickle, so functions defined in a
notebook work, as with Dask and loky.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Executor, Future, ThreadPoolExecutor
from multiprocessing.connection import Client, Listener
from typing import Any, Protocol

from taskcache.errors import ConfigError, TaskTimeoutError, WorkerDiedError
from taskcache.lifecycle.jobs import Job, run_job, run_pickled
from taskcache.lifecycle.runner import use_settings
from taskcache.records import Claim

__all__ = ["DaskPool", "Pool", "ProcessPool", "ThreadPool", "get_pool", "record_stopped"]

#: how often a process slot looks for a stop request while its job runs
_POLL = 0.05


class Pool(Protocol):
    """What the sweep needs from an executor."""

    name: str
    workers: int
    #: jobs run in this process (its catalog connections and leases are the workers')
    in_process: bool

    def submit(self, job: Job, on_start: Callable[[], None] | None = None) -> Future:
        """Run ``job``; ``on_start`` is called in the caller's process when it starts."""

    def stop(self, future: Future) -> bool:
        """Stop the running job behind ``future`` (recorded cancelled); False if this pool
        cannot stop a running job or it is not running."""


def record_stopped(job: Job, pid: int, exc: BaseException, *, cancelled: bool,
                   duration: float | None) -> None:
    """Record the run that ``job`` had claimed in process ``pid`` (now killed) as cancelled
    or failed; nothing if it never claimed one (it was waiting for another process's run)."""
    runner = use_settings(job.settings)
    run = runner.catalog.find_running(job.spec.fingerprint)
    if run is None or run.pid != pid or run.lease_owner is None or run.lease_expires_at is None:
        return
    claim = Claim(run.id, run.lease_owner, run.lease_expires_at)
    runner.fail_quietly(claim, exc, duration=duration, cancelled=cancelled,
                        reason="timeout" if isinstance(exc, TaskTimeoutError) else None)


# -- threads ------------------------------------------------------------------------------
class ThreadPool:
    """Threads of this process. A running thread cannot be stopped: timeouts are not
    enforced here (use processes or Dask)."""

    name = "threads"
    in_process = True

    def __init__(self, max_workers: int | None = None, executor: Executor | None = None) -> None:
        self._executor = executor or ThreadPoolExecutor(max_workers, thread_name_prefix="taskcache")
        self.workers = getattr(self._executor, "_max_workers", max_workers or 1)

    def submit(self, job: Job, on_start: Callable[[], None] | None = None) -> Future:
        def body() -> Any:
            if on_start is not None:
                on_start()
            return run_job(job)

        return self._executor.submit(body)

    def stop(self, future: Future) -> bool:
        return False

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


class ForeignPool(ThreadPool):
    """Any other ``concurrent.futures.Executor`` (e.g. a ProcessPoolExecutor, loky's): the
    job travels serialized by value, so it may run in another process."""

    in_process = False

    def __init__(self, executor: Executor) -> None:
        super().__init__(executor=executor)
        self.name = type(executor).__name__

    def submit(self, job: Job, on_start: Callable[[], None] | None = None) -> Future:
        import cloudpickle

        outer: Future = Future()
        outer.set_running_or_notify_cancel()
        if on_start is not None:
            on_start()
        inner = self._executor.submit(run_pickled, cloudpickle.dumps(job))

        def relay(done: Future) -> None:
            if done.cancelled():
                outer.set_exception(CancelledError())
            elif done.exception() is not None:
                outer.set_exception(done.exception())
            else:
                outer.set_result(cloudpickle.loads(done.result()))

        inner.add_done_callback(relay)
        return outer


# -- processes ----------------------------------------------------------------------------
def worker() -> None:
    """A worker process: connect back to the caller (``TASKCACHE_WORKER``: address, key and
    the caller's ``sys.path``, so its modules import here too), then run pickled jobs until
    the connection closes. Ctrl-C in a terminal reaches the whole process group; the caller
    decides what stops, so workers ignore it."""
    import signal

    import cloudpickle

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    setup = json.loads(os.environ.pop("TASKCACHE_WORKER"))
    sys.path[:] = setup["path"]
    conn = Client(setup["address"], family="AF_UNIX", authkey=bytes.fromhex(setup["authkey"]))
    while True:
        try:
            payload = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            message = ("ok", run_pickled(payload))
        except BaseException as exc:  # the user's error travels back to the caller
            try:
                message = ("error", cloudpickle.dumps(exc))
            except Exception:
                message = ("error", cloudpickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}")))
        conn.send(message)


def _wake_if_dead(process: subprocess.Popen, address: str, authkey: bytes) -> None:
    """Connect to the listener in the worker's stead if it exits before connecting, so the
    caller's ``accept`` returns instead of waiting forever."""
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        return
    try:
        Client(address, family="AF_UNIX", authkey=authkey).close()
    except OSError:
        pass  # the listener is closed: the worker had connected


class _Item:
    __slots__ = ("job", "payload", "future", "on_start", "stop")

    def __init__(self, job: Job, payload: bytes, future: Future,
                 on_start: Callable[[], None] | None) -> None:
        self.job = job
        self.payload = payload
        self.future = future
        self.on_start = on_start
        self.stop = threading.Event()


class _Slot:
    """One worker process and the caller-side thread that feeds it one job at a time, waits
    for its answer, and kills it on timeout or cancellation (a new one starts for the next)."""

    def __init__(self, pool: ProcessPool, index: int) -> None:
        self._pool = pool
        self._process: Any = None
        self._conn: Any = None
        self._thread = threading.Thread(target=self._serve, name=f"taskcache-process-{index}",
                                        daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            item = self._pool._queue.get()
            if item is None:
                break
            if not item.future.set_running_or_notify_cancel():
                continue
            self._pool._running[item.future] = item
            try:
                self._run(item)
            except BaseException as exc:  # a broken pipe, a pickling error: the job's failure
                if not item.future.done():
                    item.future.set_exception(exc)
            finally:
                self._pool._running.pop(item.future, None)
        self._kill()

    def _start_process(self, task: str) -> None:
        """Start a worker and wait for it to connect back; WorkerDiedError (with its exit
        code; its stderr is the caller's) if it exits first, e.g. taskcache not importable
        from ``sys.executable``."""
        # a fresh interpreter, not multiprocessing's spawn: that re-runs the caller's script
        # as __mp_main__, which a script without an `if __name__ == "__main__"` guard cannot take
        authkey = secrets.token_bytes(16)
        with Listener(family="AF_UNIX", authkey=authkey) as listener:
            env = {**os.environ, "TASKCACHE_WORKER": json.dumps(
                {"address": listener.address, "authkey": authkey.hex(), "path": sys.path}),
                # taskcache itself may be importable only through the caller's sys.path
                "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            process = subprocess.Popen(
                [sys.executable, "-c", "from taskcache.lifecycle.executors import worker; worker()"],
                env=env, stdin=subprocess.DEVNULL)
            threading.Thread(target=_wake_if_dead, args=(process, listener.address, authkey),
                             daemon=True, name="taskcache-worker-watch").start()
            conn = listener.accept()
        if process.poll() is not None:  # the watcher connected: the worker never did
            conn.close()
            raise WorkerDiedError(task, process.returncode)
        self._process, self._conn = process, conn

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._conn.close()
        self._process = self._conn = None

    def _exited(self) -> bool:
        return self._process.poll() is not None

    def _run(self, item: _Item) -> None:
        import cloudpickle

        if self._process is None or self._exited():
            self._kill()
            self._start_process(item.job.task)
        if item.on_start is not None:
            item.on_start()
        started = time.monotonic()
        timeout = item.job.timeout
        self._conn.send_bytes(item.payload)
        while True:
            if self._conn.poll(_POLL):
                try:
                    kind, data = self._conn.recv()
                except (EOFError, OSError):  # the process exited without answering
                    self._process.wait()
                    self._stopped(item, WorkerDiedError(item.job.task, self._process.returncode),
                                  cancelled=False, started=started)
                    return
                if kind == "ok":
                    item.future.set_result(cloudpickle.loads(data))
                else:
                    item.future.set_exception(cloudpickle.loads(data))
                return
            if item.stop.is_set():
                self._stopped(item, CancelledError(), cancelled=True, started=started)
                return
            if timeout is not None and time.monotonic() - started > timeout:
                self._stopped(item, TaskTimeoutError(item.job.task, timeout), cancelled=False,
                              started=started)
                return

    def _stopped(self, item: _Item, exc: BaseException, *, cancelled: bool, started: float) -> None:
        pid = self._process.pid
        self._kill()
        record_stopped(item.job, pid, exc, cancelled=cancelled, duration=time.monotonic() - started)
        item.future.set_exception(exc)


class ProcessPool:
    """``max_workers`` worker processes (fresh interpreters, so safe beside threads and open
    database connections), started on first use and kept for later sweeps."""

    name = "processes"
    in_process = False

    def __init__(self, max_workers: int | None = None) -> None:
        self.workers = max_workers or os.cpu_count() or 1
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._running: dict[Future, _Item] = {}
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()

    def submit(self, job: Job, on_start: Callable[[], None] | None = None) -> Future:
        import cloudpickle

        future: Future = Future()
        self._queue.put(_Item(job, cloudpickle.dumps(job), future, on_start))
        with self._lock:
            if not self._slots:
                self._slots = [_Slot(self, i) for i in range(self.workers)]
        return future

    def stop(self, future: Future) -> bool:
        item = self._running.get(future)
        if item is None:
            return False
        item.stop.set()
        return True

    def shutdown(self) -> None:
        for _ in self._slots:
            self._queue.put(None)
        for slot in self._slots:
            slot._thread.join(timeout=5)
        self._slots = []


# -- Dask ---------------------------------------------------------------------------------
class DaskPool:
    """A ``distributed.Client``: the current one, one given, or one connected to an address.
    A timed-out or cancelled running job has its worker restarted (Dask cannot stop a
    running task otherwise) and its run recorded by the caller."""

    name = "dask"
    in_process = False

    def __init__(self, client: Any = None) -> None:
        try:
            import distributed
        except ImportError:
            raise ConfigError('executor "dask" needs Dask: pip install "taskcache[dask]"') from None
        if client is None:
            try:
                client = distributed.get_client()
            except ValueError:
                raise ConfigError('executor "dask": no distributed.Client is running; start one '
                                  '(distributed.Client()), or pass executor="tcp://host:8786" '
                                  "or a Client") from None
        elif isinstance(client, str):
            client = distributed.Client(client)
        self.client = client
        self.workers = max(1, len(client.scheduler_info().get("workers", {})))
        self._running: dict[Future, tuple[Job, Any]] = {}

    def submit(self, job: Job, on_start: Callable[[], None] | None = None) -> Future:
        import cloudpickle

        outer: Future = Future()
        outer.set_running_or_notify_cancel()
        if on_start is not None:
            on_start()
        remote = self.client.submit(run_pickled, cloudpickle.dumps(job), pure=False)
        self._running[outer] = (job, remote)
        started = time.monotonic()

        def relay(done: Any) -> None:
            if self._running.pop(outer, None) is None or outer.done():
                return  # stopped by _halt, which settles the future itself
            if done.status == "finished":
                outer.set_result(cloudpickle.loads(done.result()))
            elif done.status == "cancelled":
                outer.set_exception(CancelledError())
            else:
                outer.set_exception(done.exception())

        remote.add_done_callback(relay)
        if job.timeout is not None:
            timer = threading.Timer(job.timeout, self._expire, args=(outer, started))
            timer.daemon = True
            timer.start()
            outer.add_done_callback(lambda _: timer.cancel())
        return outer

    def _halt(self, outer: Future, exc: BaseException, *, cancelled: bool, started: float) -> bool:
        entry = self._running.pop(outer, None)
        if entry is None or outer.done():
            return False
        job, remote = entry
        run = use_settings(job.settings).catalog.find_running(job.spec.fingerprint)
        pids = self.client.run(os.getpid)  # worker address -> pid; runs beside busy tasks
        address = next((a for a, pid in pids.items() if run is not None and pid == run.pid), None)
        remote.cancel()
        if address is not None:
            self.client.restart_workers([address])
            record_stopped(job, run.pid, exc, cancelled=cancelled, duration=time.monotonic() - started)
        outer.set_exception(exc)
        return True

    def _expire(self, outer: Future, started: float) -> None:
        entry = self._running.get(outer)
        if entry is not None:
            job = entry[0]
            self._halt(outer, TaskTimeoutError(job.task, job.timeout or 0), cancelled=False,
                       started=started)

    def stop(self, future: Future) -> bool:
        return self._halt(future, CancelledError(), cancelled=True, started=time.monotonic())


# -- choosing one -------------------------------------------------------------------------
_shared: dict[tuple[str, int | None], Any] = {}
_shared_lock = threading.Lock()


def get_pool(executor: Any, max_workers: int | None) -> Pool:
    """The pool for an ``executor`` argument: "threads", "processes", "dask", a Dask address
    ("tcp://..."), a ``distributed.Client`` or any ``concurrent.futures.Executor``. Thread
    and process pools are shared per size and kept until the interpreter exits."""
    if isinstance(executor, ThreadPoolExecutor):
        return ThreadPool(executor=executor)
    if isinstance(executor, Executor):
        return ForeignPool(executor)
    if isinstance(executor, str) and "://" in executor:
        return DaskPool(executor)
    if executor == "dask":
        return DaskPool()
    if type(executor).__name__ == "Client" and hasattr(executor, "scheduler_info"):
        return DaskPool(executor)
    if executor not in ("threads", "processes"):
        raise ConfigError(f"unknown executor {executor!r}: use 'threads', 'processes', 'dask', "
                          "a Dask address 'tcp://host:8786', a distributed.Client or a "
                          "concurrent.futures.Executor")
    key = (executor, max_workers)
    with _shared_lock:
        pool = _shared.get(key)
        if pool is None:
            pool = ThreadPool(max_workers) if executor == "threads" else ProcessPool(max_workers)
            _shared[key] = pool
    return pool


def shutdown_pools() -> None:
    """Stop the shared thread and process pools (at exit; tests)."""
    with _shared_lock:
        pools = list(_shared.values())
        _shared.clear()
    for pool in pools:
        pool.shutdown()


atexit.register(shutdown_pools)
