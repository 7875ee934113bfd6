"""Artifacts on S3 (a real moto server through s3fs): store, hit from another process's
cache folder, corrupt or missing objects recomputed, gc, the local copy and its size bound."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import taskcache as tc
from taskcache.errors import CacheWarning
from taskcache.lifecycle import runner as runner_module
from taskcache.lifecycle.maintenance import gc
from taskcache.storage.remote import RemoteStore

pytestmark = pytest.mark.timeout(120)


def objects(bucket: str) -> dict[str, bytes]:
    import boto3

    s3 = boto3.client("s3")
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def counter(tmp_path: Path, name: str) -> tuple[str, Any]:
    """A side-effect file a task appends to (a closure over a list would change the key)."""
    path = tmp_path / f"{name}.calls"
    return str(path), lambda: path.read_text().split() if path.exists() else []


def use_bucket(bucket: str, cache_dir: Path, **settings: Any) -> None:
    runner_module.reset()
    tc.configure(cache_dir=cache_dir, artifacts_url=f"s3://{bucket}/team/cache", **settings)


def test_store_then_hit_from_another_folder(s3_bucket: str, cache_dir: Path, tmp_path: Path) -> None:
    import numpy as np

    log, calls = counter(tmp_path, "make")

    @tc.task
    def make(n: int) -> Any:
        with open(log, "a") as f:
            f.write(f"{n} ")
        return np.arange(n, dtype=np.float64)

    use_bucket(s3_bucket, cache_dir)
    assert runner_module.get_runner().settings.allow_pickle is False  # off for a remote store
    first = make(1000)
    keys = list(objects(s3_bucket))
    assert len(keys) == 1 and keys[0].startswith("team/cache/") and keys[0].endswith(".npy")
    assert not any(".tmp-" in k for k in keys)
    # "another machine": a new cache folder (no local copy), the same catalog and bucket
    db_url = runner_module.get_runner().settings.db_url
    use_bucket(s3_bucket, tmp_path / "elsewhere", db_url=db_url)
    again = make(1000)
    assert calls() == ['1000'] and np.array_equal(first, again)
    copies = list((tmp_path / "elsewhere" / "remote-copies").rglob("*"))
    assert any(p.is_file() and p.stat().st_size > 8000 for p in copies)  # read through, kept


def test_corrupt_or_missing_objects_are_recomputed(s3_bucket: str, cache_dir: Path, tmp_path: Path) -> None:
    import boto3

    log, calls = counter(tmp_path, "label")

    @tc.task
    def label(x: str) -> str:
        with open(log, "a") as f:
            f.write(f"{x} ")
        return x * 3

    use_bucket(s3_bucket, cache_dir)
    db_url = runner_module.get_runner().settings.db_url
    assert label("ab") == "ababab"
    (key,) = objects(s3_bucket)
    boto3.client("s3").put_object(Bucket=s3_bucket, Key=key, Body=b'{"garbage": true}')
    use_bucket(s3_bucket, tmp_path / "fresh", db_url=db_url)  # no local copy to fall back on
    with pytest.warns(CacheWarning, match="corrupt"):
        assert label("ab") == "ababab"
    assert calls() == ["ab", "ab"]
    for k in objects(s3_bucket):
        boto3.client("s3").delete_object(Bucket=s3_bucket, Key=k)
    use_bucket(s3_bucket, tmp_path / "fresh2", db_url=db_url)
    with pytest.warns(CacheWarning, match="missing|s3://"):
        assert label("ab") == "ababab"
    assert calls() == ["ab", "ab", "ab"]


def test_gc_deletes_objects_and_dangling_uploads(s3_bucket: str, cache_dir: Path) -> None:
    @tc.task
    def square(x: int) -> int:
        return x * x

    use_bucket(s3_bucket, cache_dir)
    for x in range(4):
        square(x)
    assert len(objects(s3_bucket)) == 4
    store = runner_module.get_runner().store
    assert isinstance(store, RemoteStore)
    store.fs.pipe(f"{s3_bucket}/team/cache/square/.tmp-999-dead-x.json", b"half")
    report = gc(keep_last=1)
    assert len(report.runs) == 3
    assert len(objects(s3_bucket)) == 2  # the kept run's object and the dangling upload
    assert store.sweep_temp(older_than_seconds=0) == [f"{s3_bucket}/team/cache/square/.tmp-999-dead-x.json"]
    assert len(objects(s3_bucket)) == 1


def test_the_local_copy_stays_within_its_bound(s3_bucket: str, cache_dir: Path) -> None:
    @tc.task
    def blob(i: int) -> bytes:
        return bytes([i]) * 200_000

    use_bucket(s3_bucket, cache_dir, artifacts_cache_bytes="500KB")
    for i in range(6):
        blob(i)
    local = sum(p.stat().st_size for p in (cache_dir / "remote-copies").rglob("*") if p.is_file())
    assert local <= 500_000
    runner_module.get_runner().store.forget_verified()
    assert [blob(i)[:1] for i in range(6)] == [bytes([i]) for i in range(6)]  # all still hits


def test_two_machines_one_postgres_catalog_one_bucket(s3_bucket: str, postgres_url: str,
                                                      tmp_path: Path) -> None:
    """Two processes with their own cache folders share a PostgreSQL catalog and a bucket:
    each fingerprint is computed once, and either side's hit loads what the other stored."""
    script = tmp_path / "machine.py"
    log = tmp_path / "computed.txt"
    script.write_text(textwrap.dedent(f"""
        import os, sys, time
        import taskcache as tc

        tc.configure(cache_dir=sys.argv[1], artifacts_url="s3://{s3_bucket}/shared")
        start = float(sys.argv[2])
        while time.time() < start:
            time.sleep(0.005)

        @tc.task
        def work(i):
            with open({str(log)!r}, "a") as f:
                f.write(f"{{i}}\\n")
            time.sleep(0.05)
            return [i] * 3

        print(sum(sum(work(i)) for i in range(12)), flush=True)
    """))
    import os
    import time

    env = dict(os.environ, TASKCACHE_DB_URL=postgres_url)
    start = str(time.time() + 2)
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / f"machine{m}"), start],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for m in (1, 2)]
    outs = [p.communicate(timeout=90) for p in procs]
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == str(3 * sum(range(12)))
        noise = [line for line in err.splitlines() if "waiting for run" not in line]
        assert noise == [], err
    computed = log.read_text().split()
    assert sorted(computed, key=int) == [str(i) for i in range(12)]  # each once, across both
    assert len(objects(s3_bucket)) == 12


def test_dask_workers_and_another_machine_share_catalog_and_bucket(
        s3_bucket: str, postgres_url: str, cache_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A LocalCluster's workers (2 processes) compute a sweep into one PostgreSQL catalog
    and one bucket; then another "machine" (a process with its own cache folder) gets every
    point as a hit, loaded from the bucket, and nothing is computed twice."""
    distributed = pytest.importorskip("distributed")
    monkeypatch.setattr(sys.modules["__main__"], "__spec__", None, raising=False)  # see test_sweeps
    log = tmp_path / "computed.txt"
    module = tmp_path / "team_steps.py"
    module.write_text(textwrap.dedent(f"""
        import os
        import taskcache as tc

        @tc.task
        def cube(x: int) -> list:
            with open({str(log)!r}, "a") as f:
                f.write(f"{{x}} ")
            return [x ** 3] * 1000
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    use_bucket(s3_bucket, cache_dir, db_url=postgres_url)
    import team_steps

    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        results = team_steps.cube.map(range(8), executor=client, progress=False)
    assert [r[0] for r in results] == [x ** 3 for x in range(8)]
    assert sorted(log.read_text().split(), key=int) == [str(x) for x in range(8)]
    assert len(objects(s3_bucket)) == 8
    other = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(f"""
            import taskcache as tc, team_steps
            tc.configure(cache_dir={str(tmp_path / 'machine2')!r},
                         artifacts_url="s3://{s3_bucket}/team/cache")
            print(sum(team_steps.cube(x)[0] for x in range(8)))
        """)], capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "TASKCACHE_DB_URL": postgres_url})
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() == str(sum(x ** 3 for x in range(8)))
    assert sorted(log.read_text().split(), key=int) == [str(x) for x in range(8)]  # no recompute
    assert any((tmp_path / "machine2" / "remote-copies").rglob("*"))
