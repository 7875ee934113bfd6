"""Case 7: peak memory added while hashing the numeric frame, one fresh process per hasher
(benchmarks/memory_probe.py), so that one hasher's freed memory cannot hide another's peak."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import CaseResult, Context, fmt_bytes, target

NAME = "hash_memory"
TITLE = "peak memory added while hashing the numeric frame"
NEEDS: tuple[str, ...] = ()

PROBE = Path(__file__).resolve().parent.parent / "memory_probe.py"


def run(ctx: Context) -> CaseResult:
    """RSS and tracemalloc peaks for each hasher, as rows with ``peak_bytes``."""
    sz = ctx.sizes
    rows, med, methods, calibration = [], {}, set(), []
    for who in ("taskcache", "joblib.hash", "floor xxh3"):
        proc = subprocess.run(
            [sys.executable, str(PROBE), who, str(sz.frame_rows), str(sz.repeat)],
            capture_output=True, text=True, timeout=600, cwd=ctx.tmp)
        if proc.returncode != 0:
            raise RuntimeError(f"memory probe for {who} failed:\n{proc.stderr[-2000:]}")
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        methods.add(data["method"])
        calibration.append(data["calibration"])
        for kind, values in (("RSS peak, fresh subprocess", data["rss"]),
                             ("tracemalloc peak", data["traced"])):
            rows.append({"label": f"{who}: {kind}", "peak_bytes": statistics.median(values),
                         "peak_bytes_max": max(values), "n": len(values), "samples": values})
        med[who] = max(max(data["rss"]), max(data["traced"]))
    frame_bytes = sz.frame_rows * 10 * 8
    return CaseResult(
        rows=rows,
        notes=[f"hashing the numeric frame ({fmt_bytes(frame_bytes)}) in a fresh subprocess per "
               f"hasher; RSS: {', '.join(sorted(methods))}, peak minus RSS before the call; "
               "tracemalloc sees numpy's buffers but not memory allocated by C libraries "
               "directly (Arrow), hence both",
               "calibration (a known 50 MB temporary in each subprocess): RSS "
               + ", ".join(fmt_bytes(c[0]) for c in calibration) + "; tracemalloc "
               + ", ".join(fmt_bytes(c[1]) for c in calibration)],
        targets=[target("at most 50 MB extra peak memory hashing the 200 MB frame",
                        f"{fmt_bytes(med['taskcache'])} (worst of RSS and tracemalloc)",
                        med["taskcache"] <= 50e6, med["taskcache"])],
    )
