"""Launching a task call away from the caller: a hit comes back at once; a miss is claimed
here (so its run id is known immediately) and executed in a process of its own, which keeps
the lease alive and records the outcome. A launched run can be cancelled: its process is
stopped and the run recorded cancelled.

The caller (the Jupyter server's event loop, a notebook) never runs user code itself.
"""

from __future__ import annotations

import importlib
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from taskcache.errors import InvalidTransitionError, LeaseLostError, RunNotFoundError
from taskcache.lifecycle.jobs import draws_match
from taskcache.lifecycle.runner import MAX_ABANDONED, get_runner
from taskcache.records import Claim, RunRecord
from taskcache.tasks.discovery import DiscoveredTask, task_definition

__all__ = ["Launch", "Launcher"]


@dataclass(frozen=True)
class Launch:
    """What a launch started: the run id and its status right after ("completed" for a
    hit, "running" for a new run or one another process is already computing)."""

    run_id: int
    status: str
    hit: bool = False


def _execute(module: str, qualname: str, arguments: dict[str, Any], claim: Claim,
             settings: dict[str, Any]) -> None:
    """In the launched process (``python -m taskcache.tasks.launcher``, the call pickled on
    stdin): the claimed run's body, recorded like any ``@task`` call."""
    from taskcache.lifecycle.runner import configure

    configure(**settings)
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    definition = task_definition(obj)
    call = definition.prepare((), arguments)
    with definition.executing(call, claim) as outcome:
        outcome.result = definition.fn(**arguments)
    get_runner().close()


class Launcher:
    """Launches and cancels task calls; one per server (or notebook)."""

    def __init__(self) -> None:
        self._running: dict[int, tuple[Any, Claim]] = {}
        self._lock = threading.Lock()

    def launch(self, task: DiscoveredTask, arguments: Mapping[str, Any]) -> Launch:
        """Start ``task(**arguments)`` (arguments already checked by ``bind_arguments``)."""
        definition = task_definition(task.function)
        call = definition.prepare((), dict(arguments))
        runner = call.runner
        stale = 0  # completed runs up to this id cannot serve the call
        if definition.cache:
            # the call would run in a process of its own: only a run that seeded the random
            # generators it changed can serve it (see lifecycle/random_state.py)
            hit = runner.lookup(call.fingerprint, prepare=draws_match(runner, known=False))
            if hit is not None:
                return Launch(hit.run.id, "completed", hit=True)
            # the completed runs there are could not serve it (a file they read changed, or
            # they drew from a random generator): a new run, never one of them
            stale = max((run.id for run in runner.catalog.completed_runs(call.fingerprint)),
                        default=0)
        spec = definition.run_spec(call)
        runner.failures.settle()
        outcome = (runner.catalog.claim(spec, lease_seconds=runner.settings.lease_seconds)
                   if not definition.cache else
                   runner.catalog.claim_or_join(spec, lease_seconds=runner.settings.lease_seconds,
                                                max_abandoned=MAX_ABANDONED, newer_than=stale))
        if not isinstance(outcome, Claim):  # computed elsewhere right now, or just completed
            return Launch(outcome.id, outcome.status, hit=outcome.status == "completed")
        settings = {"cache_dir": str(runner.settings.cache_dir), "db_url": runner.settings.db_url}
        payload = pickle.dumps((task.module, task.qualname, dict(arguments), outcome, settings))
        # a fresh interpreter, never a fork of a server's threads; it imports the task's
        # module by name, so sys.path goes along
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        process = subprocess.Popen([sys.executable, "-m", "taskcache.tasks.launcher"],
                                   stdin=subprocess.PIPE, env=env)
        process.stdin.write(payload)
        process.stdin.close()
        with self._lock:
            self._running[outcome.run_id] = (process, outcome)
        threading.Thread(target=self._reap, args=(outcome.run_id,), daemon=True).start()
        return Launch(outcome.run_id, "running")

    def _reap(self, run_id: int) -> None:
        """Wait for the launched process; a process that died without recording its run
        (killed, crashed) leaves the run failed, not running until its lease expires."""
        with self._lock:
            process, claim = self._running[run_id]
        code = process.wait()
        with self._lock:
            ours = self._running.pop(run_id, None) is not None  # not when cancel() took it
        if ours and code != 0:
            self._finish(claim, "failed", f"the launched process exited with code {code}")

    def _finish(self, claim: Claim, status: str, message: str) -> RunRecord | None:
        try:
            return get_runner().catalog.finish_failed(
                claim, status=status, error_type="Cancelled" if status == "cancelled" else "ProcessExit",
                error_message=message, traceback=None, duration=None)
        except (InvalidTransitionError, LeaseLostError, RunNotFoundError):
            return None  # the process recorded it first, or the run was taken over/deleted

    def cancel(self, run_id: int) -> RunRecord:
        """Stop a run this launcher started; raises LookupError (with where it runs) for a run
        that is not ours to stop, RunNotFoundError for no such run."""
        with self._lock:
            entry = self._running.pop(run_id, None)
        run = get_runner().catalog.get_run(run_id)
        if entry is None:
            if run.status != "running":
                raise LookupError(f"run #{run_id} is {run.status}, not running")
            raise LookupError(f"run #{run_id} runs in pid {run.pid} on host {run.host}, not in "
                              f"this server (pid {os.getpid()}); stop it there")
        process, claim = entry
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
        self._finish(claim, "cancelled", "cancelled from the taskcache page")
        return get_runner().catalog.get_run(run_id)

    def running(self) -> list[int]:
        with self._lock:
            return sorted(self._running)


if __name__ == "__main__":
    _execute(*pickle.loads(sys.stdin.buffer.read()))
