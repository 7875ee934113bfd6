"""A process for tests/lifecycle/test_faults.py: computes one ``@task`` run and prints its result, or,
when ``FAULT_KILL_AT`` names a point, SIGKILLs itself there. The points are set up here by
monkeypatching; taskcache itself has no hooks for them.

    compute     while the function runs (the run is claimed, nothing is written yet)
    write       inside the codec's write: half of the temp file is on disk, fsynced
    renamed     right after the artifact's rename into place, before the catalog knows it
    in-commit   inside the completing transaction, just before its COMMIT
    committed   right after the commit that marks the run completed

Usage: python _fault_worker.py CACHE_DIR COUNTER_FILE   (env: FAULT_KILL_AT, LEASE, BEAT, N)
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np
from sqlalchemy import event

import taskcache as tc
from taskcache.catalog import Catalog
from taskcache.lifecycle.runner import get_runner
from taskcache.storage import store

cache, counter = sys.argv[1], sys.argv[2]
point = os.environ.get("FAULT_KILL_AT", "")
tc.configure(cache_dir=cache, lease_seconds=float(os.environ.get("LEASE", "60")),
             heartbeat_seconds=float(os.environ.get("BEAT", "15")))
artifacts = os.path.join(os.path.abspath(cache), "artifacts") + os.sep


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


if point == "write":
    real_write = store.ArtifactStore.write

    def write(self, parts, suffix, writer):
        def half_then_die(path):
            writer(path)
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)
                f.flush()
                os.fsync(f.fileno())
            die()

        return real_write(self, parts, suffix, half_then_die)

    store.ArtifactStore.write = write
elif point == "renamed":
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        if os.fspath(dst).startswith(artifacts):
            die()

    os.replace = replace  # what store.py calls
elif point in ("in-commit", "committed"):
    real_complete = Catalog.complete
    completing = False

    def complete(self, *args, **kwargs):
        global completing
        completing = True
        record = real_complete(self, *args, **kwargs)
        die()  # reached for "committed" only
        return record

    Catalog.complete = complete
    if point == "in-commit":
        def before_commit(conn):
            if completing:
                die()

        event.listen(get_runner().catalog._db.engine, "commit", before_commit)
elif point not in ("", "compute"):
    raise SystemExit(f"unknown FAULT_KILL_AT {point!r}")


@tc.task
def make(n):
    with open(counter, "a") as f:
        f.write(f"{os.getpid()}\n")
    if os.environ.get("FAULT_KILL_AT") == "compute":  # read at call time: not part of the key
        os.kill(os.getpid(), signal.SIGKILL)
    return np.arange(n, dtype=np.float64) * 2


print(float(make(int(os.environ.get("N", "200000"))).sum()), flush=True)
