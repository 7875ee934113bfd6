"""``taskcache doctor``: check the configured catalog and artifact store and say what to fix.

Each check gives one line: ok, warn or FAIL, what was found, and for a problem what to do.
Nothing is changed except a probe file written to and removed from the artifacts folder, and
a read of the database clock."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from taskcache.config import Settings
from taskcache.errors import TaskcacheError

__all__ = ["Check", "DoctorReport", "doctor"]

#: clock difference between this host and the database that starts to matter for leases
SKEW_WARN_SECONDS = 2.0
LOW_SPACE = 1 << 30


@dataclass(frozen=True)
class Check:
    name: str
    level: str        # "ok", "warn" or "fail"
    found: str
    fix: str = ""

    def __str__(self) -> str:
        mark = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}[self.level]
        return f"{mark}  {self.name:14} {self.found}" + (f"\n      -> {self.fix}" if self.fix else "")


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.level != "fail" for c in self.checks)

    def __str__(self) -> str:
        verdict = "everything looks right" if self.ok else "problems found: see FAIL above"
        return "\n".join([*map(str, self.checks), verdict])


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n} B"


def _catalog_checks(settings: Settings) -> list[Check]:
    from taskcache.catalog import SCHEMA_VERSION, Catalog

    shown = settings.db_url.split("@")[-1] if "@" in settings.db_url else settings.db_url
    try:
        catalog = Catalog(settings.db_url, busy_timeout=min(settings.busy_timeout_seconds, 5))
    except TaskcacheError as exc:
        return [Check("catalog", "fail", f"cannot open {shown}: {exc}",
                      "fix what the message says, or point TASKCACHE_DB_URL at a reachable catalog")]
    checks = [Check("catalog", "ok", f"{shown} ({catalog.url.get_backend_name()})")]
    try:
        version = catalog.schema_version()
        checks.append(Check("schema", "ok" if version == SCHEMA_VERSION else "warn",
                            f"version {version} (this taskcache writes {SCHEMA_VERSION})"))
        problems = catalog.integrity_check()
        checks.append(Check("integrity", "ok" if problems == "ok" else "fail", problems,
                            "" if problems == "ok" else "move the catalog aside and start a new "
                            "one; `taskcache verify` lists what it held"))
        started = time.time()
        db_now = catalog.clock()  # in a write transaction: the catalog is writable now
        took = time.time() - started
        checks.append(Check("write", "ok", f"a write transaction took {took * 1000:.0f} ms"))
        skew = abs((db_now - datetime.now(UTC)).total_seconds()) - took
        level = "ok" if skew < SKEW_WARN_SECONDS else ("warn" if skew < 10 else "fail")
        checks.append(Check(
            "clock", level, f"this host ({socket.gethostname()}) and the database differ by "
            f"{max(skew, 0):.1f} s",
            "" if level == "ok" else "synchronise the clocks (NTP): leases compare this "
            "host's time with the other hosts'"))
    except TaskcacheError as exc:
        checks.append(Check("write", "fail", str(exc), "see the message; re-run doctor after"))
    finally:
        catalog.dispose()
    return checks


def _store_checks(settings: Settings) -> list[Check]:
    folder = settings.artifacts_dir
    checks: list[Check] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".doctor-{os.getpid()}"
        probe.write_bytes(b"taskcache doctor")
        probe.unlink()
        checks.append(Check("artifacts", "ok", f"{folder} is writable"))
    except OSError as exc:
        checks.append(Check("artifacts", "fail", f"cannot write in {folder}: {exc.strerror or exc}",
                            f"make {folder} writable, or point TASKCACHE_DIR elsewhere"))
        return checks
    free = shutil.disk_usage(folder).free
    checks.append(Check("free space", "ok" if free > LOW_SPACE else "warn",
                        f"{_size(free)} free where the artifacts are",
                        "" if free > LOW_SPACE else "free space, or `taskcache gc --max-size 5GB`"))
    return checks


def doctor(settings: Settings | None = None) -> DoctorReport:
    """Run every check against ``settings`` (default: the current settings)."""
    from taskcache.lifecycle.runner import current_settings

    settings = settings or current_settings()
    steps: list[Callable[[Settings], list[Check]]] = [_catalog_checks, _store_checks]
    report = DoctorReport()
    for step in steps:
        report.checks += step(settings)
    return report
