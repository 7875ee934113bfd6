"""``taskcache doctor`` on a healthy catalog (SQLite and PostgreSQL) and on broken ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from taskcache.config import resolve_settings
from taskcache.lifecycle.doctor import doctor


def test_a_healthy_catalog(catalog_url: str, cache_dir: Path) -> None:
    report = doctor(resolve_settings(cache_dir=cache_dir, db_url=catalog_url))
    assert report.ok, str(report)
    names = [c.name for c in report.checks]
    assert names == ["catalog", "schema", "integrity", "write", "clock", "artifacts", "free space"]
    assert all(c.level == "ok" for c in report.checks[:6]), str(report)
    assert catalog_url.split("://")[0].split("+")[0] in str(report)


def test_an_unreachable_server_is_named_with_the_fix(cache_dir: Path) -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:9/none"  # port 9: nothing listens
    report = doctor(resolve_settings(cache_dir=cache_dir, db_url=url, busy_timeout_seconds=2))
    assert not report.ok
    (check,) = [c for c in report.checks if c.level == "fail"]
    assert check.name == "catalog" and "127.0.0.1:9" in check.found and "TASKCACHE_DB_URL" in check.fix


def test_artifacts_that_cannot_be_written(cache_dir: Path) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / "artifacts").write_text("a file where the folder should be")
    report = doctor(resolve_settings(cache_dir=cache_dir))
    (check,) = [c for c in report.checks if c.name == "artifacts"]
    assert check.level == "fail" and "artifacts" in check.found and "writable" in check.fix


def test_the_command_exits_1_on_a_problem(cache_dir: Path) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / "artifacts").write_text("not a folder")
    out = subprocess.run([sys.executable, "-m", "taskcache.cli", "--cache-dir", str(cache_dir),
                          "doctor"], capture_output=True, text=True)
    assert out.returncode == 1 and "FAIL" in out.stdout, out.stdout + out.stderr
