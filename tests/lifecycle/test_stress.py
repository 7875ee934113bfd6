"""Many processes, many calls, one catalog (SQLite, and a real PostgreSQL): nothing fails,
nothing is computed twice.

The size is set by environment variables: TASKCACHE_STRESS_PROCS processes (default 8) each
make TASKCACHE_STRESS_CALLS calls (default 200), half of them to fingerprints every process
shares, half to fingerprints of their own. Run it alone with::

    .venv/bin/pytest tests/lifecycle/test_stress.py -m stress -p no:cacheprovider -o addopts=""
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from taskcache.catalog import Catalog
from tests.helpers import clean_env

PROCS = int(os.environ.get("TASKCACHE_STRESS_PROCS", "8"))
CALLS = int(os.environ.get("TASKCACHE_STRESS_CALLS", "200"))
SHARED = 25  # shared fingerprints; every process cycles through them

WORKER = textwrap.dedent("""
    import os, sys, time
    import taskcache as tc

    cache, log, worker, calls, shared, start_at = sys.argv[1:]
    worker, calls, shared = int(worker), int(calls), int(shared)
    tc.configure(cache_dir=cache)

    @tc.task
    def work(key):
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{key}\\n".encode())  # one write, O_APPEND: lines never interleave
        finally:
            os.close(fd)
        if key.startswith("shared"):
            time.sleep(0.02)  # long enough for the others to arrive and wait
        return key.upper()

    while time.time() < float(start_at):
        time.sleep(0.005)
    for i in range(calls):
        key = f"shared-{(i // 2) % shared}" if i % 2 == 0 else f"unique-{worker}-{i}"
        got = work(key)
        assert got == key.upper(), (key, got)
    print("done", flush=True)
""")


@pytest.mark.stress
def test_many_processes_on_one_catalog(tmp_path: Path, catalog_url: str) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    cache, log = tmp_path / "cache", tmp_path / "computed.txt"
    env = clean_env()
    sqlite = catalog_url.startswith("sqlite")
    if sqlite:
        catalog_url = f"sqlite:///{cache / 'catalog.db'}"
    env["TASKCACHE_DB_URL"] = catalog_url
    start_at = str(time.time() + 3.0)  # all import first, then start together
    procs = [subprocess.Popen(
        [sys.executable, str(script), str(cache), str(log), str(w), str(CALLS), str(SHARED),
         start_at], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for w in range(PROCS)]
    outs = [p.communicate(timeout=1200) for p in procs]
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0 and out.strip() == "done", err
        noise = [line for line in err.splitlines() if "taskcache: waiting for run #" not in line]
        assert noise == [], err  # no error, warning or traceback reached the caller

    computed = Counter(log.read_text().splitlines())
    expected = {f"unique-{w}-{i}" for w in range(PROCS) for i in range(1, CALLS, 2)}
    expected |= {f"shared-{(i // 2) % SHARED}" for i in range(0, CALLS, 2)}
    assert set(computed) == expected
    assert [k for k, n in computed.items() if n != 1] == []  # each computed exactly once

    catalog = Catalog(catalog_url)
    try:
        if sqlite:
            assert catalog.integrity_check() == "ok"
        runs = catalog.query_runs(limit=10 * len(expected))
    finally:
        catalog.dispose()
    assert len(runs) == len({r.fingerprint for r in runs}) == len(expected)
    assert Counter(r.status for r in runs) == {"completed": len(expected)}
