"""What every benchmark case shares: sizes, timing, formatting, targets, tables and results.

Timing helpers return lists of seconds; ``stats`` turns one list into a result row (a dict that
goes to the JSON as it is). A case returns a ``CaseResult``; ``run_case`` times it and turns it
into the dict that ``print_case`` prints and ``write_results`` writes.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import platform
import statistics
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


# ---------------------------------------------------------------------------- sizes and cases


@dataclass(frozen=True)
class Sizes:
    frame_rows: int      # rows of the numeric frame (x 10 float64 columns)
    str_rows: int        # rows of the string frames
    array_elems: int     # float64 elements of the ndarray
    records: int         # records of the nested dict/list value
    repeat: int          # repetitions of every timed case (median and min)
    tiny_rounds: int     # rounds of tiny calls ...
    tiny_per_round: int  # ... of this many calls each, every call timed on its own
    cell_per_round: int  # %%task / plain cells per round
    catalog_runs: int    # runs in the catalog of the catalog_scale case
    lookups: int         # fingerprint lookups timed in the catalog_scale case


FULL = Sizes(frame_rows=2_500_000, str_rows=1_000_000, array_elems=25_000_000,
             records=100_000, repeat=5, tiny_rounds=5, tiny_per_round=1000,
             cell_per_round=200, catalog_runs=1_000_000, lookups=2000)
QUICK = Sizes(frame_rows=25_000, str_rows=10_000, array_elems=250_000, records=1000,
              repeat=5, tiny_rounds=5, tiny_per_round=40, cell_per_round=40,
              catalog_runs=50_000, lookups=200)


@dataclass
class Context:
    """What a case gets: the sizes, a temporary folder removed at the end, the data built
    for the cases that asked for it (``data.build``), and ``shared``, figures that one case
    leaves for a later one (the hashing case's median for the input-hit case's note)."""

    sizes: Sizes
    quick: bool
    tmp: Path
    data: dict[str, Any] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)


@dataclass
class CaseResult:
    """What a case returns: rows from ``stats`` (or memory rows with ``peak_bytes``), targets
    from ``target``, and lines of text printed under the table."""

    rows: list[dict[str, Any]]
    targets: list[dict[str, Any]]
    ratios: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Case(Protocol):
    """A module in benchmarks/cases: its name (for --only), its title, the data names it needs
    built beforehand (keys of ``data.BUILDERS``), and ``run``."""

    NAME: str
    TITLE: str
    NEEDS: tuple[str, ...]

    def run(self, ctx: Context) -> CaseResult: ...


# ---------------------------------------------------------------------------- timing


def stats(label: str, samples: list[float], **extra: Any) -> dict[str, Any]:
    """A result row: label, median and min of ``samples`` (seconds), their count, ``extra``."""
    return {"label": label, "median_s": statistics.median(samples), "min_s": min(samples),
            "n": len(samples), **extra}


def timed(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> list[float]:
    """Wall time of ``repeat`` calls (after ``warmup`` untimed ones and one full GC)."""
    for _ in range(warmup):
        fn()
    gc.collect()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def per_call(fn: Callable[[], Any], rounds: int, per_round: int, warmup: int = 20) -> list[float]:
    """Every call timed on its own: rounds x per_round samples (GC runs between rounds)."""
    for _ in range(warmup):
        fn()
    clock = time.perf_counter_ns
    samples: list[float] = []
    for _ in range(rounds):
        gc.collect()
        for _ in range(per_round):
            start = clock()
            fn()
            samples.append((clock() - start) / 1e9)
    return samples


def interleaved(fns: dict[str, Callable[[], Any]], rounds: int, per_round: int,
                warmup: int = 20) -> dict[str, list[float]]:
    """per_call for several variants, round by round in turn, so that a slow spell of the
    machine (a background flush, another process) is shared out instead of hitting one."""
    samples: dict[str, list[float]] = {key: [] for key in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            samples[key] += per_call(fn, 1, per_round, warmup=warmup)
            warmup = min(warmup, 5)
    return samples


def round_robin(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, list[float]]:
    """One timed call of each variant in turn, ``repeat`` times (after one warm-up each), so
    the machine's slow spells are shared out between them."""
    for fn in fns.values():
        fn()
    samples: dict[str, list[float]] = {key: [] for key in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            gc.collect()
            start = time.perf_counter()
            fn()
            samples[key].append(time.perf_counter() - start)
    return samples


def settle(since: float, quick: bool = False) -> None:
    """Wait until files written at ``since`` (a time.time()) count as settled for taskcache's
    file memos (SETTLED_NS: a file changed in the same clock tick as its check could hide
    the change), so that repeat hits are timed as a user's would be. Not in a quick run
    (its figures are indicative only)."""
    from benchmarks.internals import SETTLED_NS

    if quick:
        return
    time.sleep(max(0.0, since + SETTLED_NS / 1e9 + 0.1 - time.time()))


# ---------------------------------------------------------------------------- formatting


def fmt_time(seconds: float) -> str:
    """'12.3 us', '4.56 ms' or '1.23 s'."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_bytes(n: float) -> str:
    """'512 B', '1.5 KB', ... in powers of 1000."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def speedup(name: str, ours: float, theirs: float, other: str) -> str:
    """'taskcache vs joblib: 16.2x faster' from two median times."""
    if ours <= 0 or theirs <= 0:
        return f"{name} vs {other}: n/a"
    ratio = theirs / ours
    if ratio >= 1:
        return f"{name} vs {other}: {ratio:.1f}x faster"
    return f"{name} vs {other}: {1 / ratio:.1f}x slower"


def target(text: str, measured: str, ok: bool, value: float | None = None) -> dict[str, Any]:
    """A target row: what we aim for, what was measured (as text), PASS or MISS, the figure."""
    return {"target": text, "measured": measured, "pass": bool(ok), "value": value}


def render_table(headers: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """Plain-text table; ``align`` has one "l" or "r" per column (default: first left)."""
    align = align or "l" + "r" * (len(headers) - 1)
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def cells(r: list[str]) -> str:
        return "  ".join(str(c).ljust(w) if a == "l" else str(c).rjust(w)
                         for c, w, a in zip(r, widths, align, strict=True)).rstrip()

    return "\n".join([cells(headers), "  ".join("-" * w for w in widths), *map(cells, rows)])


def _pass(t: dict[str, Any]) -> str:
    return "PASS" if t["pass"] else "MISS"


# ---------------------------------------------------------------------------- running, printing


def run_case(case: Case, ctx: Context) -> dict[str, Any]:
    """Run one case and return its record for the JSON: name, title, the fields of its
    CaseResult, seconds; on an exception, error and traceback instead (printed, not raised,
    so that the other cases still run)."""
    record: dict[str, Any] = {"name": case.NAME, "title": case.TITLE}
    start = time.perf_counter()
    try:
        record.update(asdict(case.run(ctx)))
    except Exception as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc()
        traceback.print_exc()
    record["seconds"] = time.perf_counter() - start
    return record


def print_case(number: int, case: dict[str, Any], quick: bool) -> None:
    """Print a record from ``run_case``: its table, ratios, notes and targets."""
    print(f"\n== case {number}: {case['name']} -- {case['title']}")
    if case.get("error"):
        print(f"ERROR: {case['error']}")
        return
    has_gbps = any("gbps" in r for r in case["rows"])
    has_mem = any("peak_bytes" in r for r in case["rows"])
    headers = ["measurement", "median", "min", "n"]
    if has_gbps:
        headers.append("GB/s (median)")
    if has_mem:
        headers = ["measurement", "peak added (median)", "peak added (max)", "n"]
    rows = []
    for r in case["rows"]:
        if has_mem:
            rows.append([r["label"], fmt_bytes(r["peak_bytes"]), fmt_bytes(r["peak_bytes_max"]),
                         str(r["n"])])
            continue
        row = [r["label"], fmt_time(r["median_s"]), fmt_time(r["min_s"]), str(r["n"])]
        if has_gbps:
            row.append(f"{r['gbps']:.2f}" if "gbps" in r else "")
        rows.append(row)
    print(render_table(headers, rows))
    for ratio in case.get("ratios", []):
        print(f"  {ratio}")
    for note in case.get("notes", []):
        print(f"  note: {note}")
    if case.get("targets"):
        print()
        suffix = " (quick sizes: indicative only)" if quick else ""
        print(render_table(["target" + suffix, "measured", "result"],
                           [[t["target"], t["measured"], _pass(t)] for t in case["targets"]],
                           align="lrl"))


def print_summary(results: dict[str, dict[str, Any]], quick: bool, total: float) -> None:
    """Every target of every case in one table, with the count that pass."""
    all_targets = [(name, t) for name, c in results.items() for t in c.get("targets", [])]
    print(f"\n== summary: {sum(t['pass'] for _, t in all_targets)}/{len(all_targets)} targets "
          f"pass{' (quick sizes: indicative only)' if quick else ''}; total {total:.1f} s")
    print(render_table(["case", "target", "measured", "result"],
                       [[n, t["target"], t["measured"], _pass(t)] for n, t in all_targets],
                       align="llrl"))


# ---------------------------------------------------------------------------- results file


def machine_info() -> dict[str, Any]:
    """CPU, cores, memory, OS, the git commit and the versions of everything measured."""
    import joblib
    import numpy
    import pandas
    import pyarrow
    import sqlalchemy

    import taskcache

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    commit = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True, timeout=10).stdout.strip() or None
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_bytes": mem, "os": platform.platform(),
        "python": platform.python_version(), "taskcache": taskcache.__version__,
        "commit": commit, "numpy": numpy.__version__, "pandas": pandas.__version__,
        "pyarrow": pyarrow.__version__, "joblib": joblib.__version__,
        "sqlalchemy": sqlalchemy.__version__,
    }


def write_results(out: Path, results: dict[str, dict[str, Any]], *, quick: bool, sizes: Sizes,
                  machine: dict[str, Any], total: float, failed: list[str]) -> None:
    """Write ``{"meta": {...}, "cases": {name: record}}`` as indented JSON to ``out``."""
    payload = {
        "meta": {"quick": quick, "sizes": asdict(sizes), "machine": machine,
                 "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                 "total_seconds": total, "failed_cases": failed},
        "cases": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
