#!/usr/bin/env python
"""taskcache benchmarks (issue 6): taskcache against joblib.Memory, functools.lru_cache and
the hardware floor, all in one process.

    .venv/bin/python benchmarks/run.py           # full sizes, a few minutes on 2 cores
    .venv/bin/python benchmarks/run.py --quick   # tiny sizes, < 30 s (the smoke test runs it)

Every case is repeated at least 5 times (median and min); tiny hits are timed call by call
(per-call median over >= 1000 calls in a full run). One table per case is printed, with
ratios and a PASS/MISS column against the targets of issue 6, and everything is written to
benchmarks/results/latest.json (or --out). Caches live in a temporary folder that is removed
at the end; only the built catalog of case 6 is kept under benchmarks/results/ so that a rerun
does not rebuild it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import io
import itertools
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout, installed or not
    sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"

CASES = ("hashing", "tiny_hit", "input_hit", "output_hit", "cell_hit", "catalog_scale",
         "hash_memory")


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
    catalog_runs: int    # runs in the catalog of case 6
    lookups: int         # fingerprint lookups timed in case 6


FULL = Sizes(frame_rows=2_500_000, str_rows=1_000_000, array_elems=25_000_000,
             records=100_000, repeat=5, tiny_rounds=5, tiny_per_round=1000,
             cell_per_round=200, catalog_runs=1_000_000, lookups=2000)
QUICK = Sizes(frame_rows=25_000, str_rows=10_000, array_elems=250_000, records=1000,
              repeat=5, tiny_rounds=5, tiny_per_round=40, cell_per_round=40,
              catalog_runs=50_000, lookups=200)


# =============================================================================== helpers


def stats(label: str, samples: list[float], **extra: Any) -> dict[str, Any]:
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


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_bytes(n: float) -> str:
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
    return {"target": text, "measured": measured, "pass": bool(ok), "value": value}


def render_table(headers: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """Plain-text table; ``align`` has one "l" or "r" per column (default: first left)."""
    align = align or "l" + "r" * (len(headers) - 1)
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def cells(r: list[str]) -> str:
        return "  ".join(str(c).ljust(w) if a == "l" else str(c).rjust(w)
                         for c, w, a in zip(r, widths, align, strict=True)).rstrip()

    return "\n".join([cells(headers), "  ".join("-" * w for w in widths), *map(cells, rows)])


def print_case(number: int, case: dict[str, Any], quick: bool) -> None:
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
        print(render_table(
            ["target" + suffix, "measured", "result"],
            [[t["target"], t["measured"], "PASS" if t["pass"] else "MISS"]
             for t in case["targets"]], align="lrl"))


# =============================================================================== data


def numeric_frame(rows: int, cols: int = 10, seed: int = 0) -> Any:
    """rows x cols float64, one consolidated block (contiguous columns, as read_parquet gives)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame({f"c{i}": rng.random(rows) for i in range(cols)})


def string_frame(rows: int, dtype: str | None = None, seed: int = 1) -> Any:
    """id int64, value float64 and a ~20-character label column of ``dtype`` (None: pandas'
    default ``str``)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    words = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")
    keys = rng.integers(0, 10**9, rows)
    labels = [f"{words[k % 8]}-{k:09d}" for k in keys.tolist()]
    frame = pd.DataFrame({"id": np.arange(rows, dtype=np.int64), "value": rng.random(rows),
                          "label": labels})
    if dtype is not None:
        frame["label"] = frame["label"].astype(dtype)
    return frame


def records(n: int, seed: int = 2) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"id": i, "name": f"user{i}", "score": rng.random(), "active": i % 3 == 0,
             "tags": ["a", "b"] if i % 2 else ["c"], "meta": {"rank": i % 100, "group": "g" + str(i % 7)}}
            for i in range(n)]


def frame_nbytes(frame: Any) -> int:
    return int(frame.memory_usage(deep=True, index=False).sum())


# -- the floor: a bare xxh3_128 over the raw buffers --------------------------------------


def floor_hash(value: Any) -> str:
    """xxh3_128 over the value's raw buffers, no tags, no dtype checks: what memory bandwidth
    allows. Frames: each column's numpy buffer, or its Arrow buffers (an object column is
    converted to Arrow first, the conversion included). Anything else: pickle + xxh3."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    from xxhash import xxh3_128

    h = xxh3_128()
    if isinstance(value, np.ndarray):
        h.update(np.ascontiguousarray(value).reshape(-1).view(np.uint8))
    elif isinstance(value, pd.DataFrame):
        for name in value.columns:
            arr = value[name].array
            if hasattr(arr, "__arrow_array__") and not isinstance(arr, pd.arrays.NumpyExtensionArray):
                chunked = arr.__arrow_array__()
            elif value[name].dtype == object:
                chunked = pa.chunked_array([pa.array(value[name].to_numpy(), type=pa.large_string())])
            else:
                h.update(np.ascontiguousarray(value[name].to_numpy()).view(np.uint8))
                continue
            for chunk in chunked.chunks:
                for buf in chunk.buffers():
                    if buf is not None:
                        h.update(buf)
    else:
        import pickle

        h.update(pickle.dumps(value, protocol=5))
    return h.hexdigest()


# =============================================================================== functions
# Module-level, self-contained functions: taskcache hashes their source (and what they
# reference) on every call, joblib.Memory keys them by module and name.


def bench_add(a, b):
    return a + b


def bench_first_value(df):
    return float(df.iat[0, 0])


def bench_make_numeric(rows):
    return numeric_frame(rows)


def bench_make_strings(rows):
    return string_frame(rows)


# =============================================================================== cases


def case_hashing(sz: Sizes, ctx: dict[str, Any]) -> dict[str, Any]:
    import joblib

    from taskcache.fingerprint import hash_value

    frame = ctx["numeric_frame"]
    datasets = [
        ("numeric frame", frame, frame_nbytes(frame)),
        ("string frame, object", ctx["str_object"], frame_nbytes(ctx["str_object"])),
        ("string frame, str (default)", ctx["str_default"], frame_nbytes(ctx["str_default"])),
        ("string frame, string[pyarrow]", ctx["str_pyarrow"], frame_nbytes(ctx["str_pyarrow"])),
        ("ndarray", ctx["array"], ctx["array"].nbytes),
        ("nested records", ctx["records"], None),
    ]
    import pickle

    rows, ratios, targets, medians = [], [], [], {}
    for label, value, nbytes in datasets:
        if nbytes is None:
            nbytes = len(pickle.dumps(value, protocol=5))
        assert hash_value(value) == hash_value(value), label
        for who, fn in (("taskcache", hash_value), ("joblib.hash", joblib.hash),
                        ("floor xxh3", floor_hash)):
            samples = timed(lambda fn=fn, value=value: fn(value), max(sz.repeat, 11))
            med = statistics.median(samples)
            medians[(label, who)] = med
            rows.append(stats(f"{label} ({fmt_bytes(nbytes)}): {who}", samples,
                              gbps=nbytes / med / 1e9, bytes=nbytes))
        ratios.append(speedup(f"{label}: taskcache", medians[(label, "taskcache")],
                              medians[(label, "joblib.hash")], "joblib.hash"))
        ratios.append(f"{label}: taskcache takes {medians[(label, 'taskcache')] / medians[(label, 'floor xxh3')]:.1f}x the floor")
    num_gbps = frame_nbytes(frame) / medians[("numeric frame", "taskcache")] / 1e9
    ctx["hash_numeric_median"] = medians[("numeric frame", "taskcache")]
    targets.append(target("numeric frame hashed at >= 10 GB/s", f"{num_gbps:.1f} GB/s",
                          num_gbps >= 10, num_gbps))
    r = medians[("string frame, string[pyarrow]", "joblib.hash")] / medians[("string frame, string[pyarrow]", "taskcache")]
    targets.append(target("string[pyarrow] frame >= 20x faster than joblib.hash", f"{r:.1f}x",
                          r >= 20, r))
    notes = ["floor: xxh3_128 over each column's numpy buffer / Arrow buffers; for the object "
             "column it includes converting it to Arrow, for nested records it is "
             "pickle.dumps + xxh3 (GB/s there are per pickled byte)"]
    return {"rows": rows, "ratios": ratios, "targets": targets, "notes": notes}


def case_tiny_hit(sz: Sizes, ctx: dict[str, Any]) -> dict[str, Any]:
    import joblib

    import taskcache

    tc = taskcache.task(bench_add)
    jl = joblib.Memory(ctx["tmp"] / "joblib-tiny", verbose=0).cache(bench_add)
    lru = functools.lru_cache(maxsize=None)(bench_add)
    rows, med = [], {}
    variants = {"taskcache @task": tc, "joblib.Memory.cache": jl, "functools.lru_cache": lru,
                "plain call (no cache)": bench_add}
    for fn in variants.values():
        assert fn(1, 2) == 3  # the miss that fills the cache
    timings = interleaved({who: (lambda fn=fn: fn(1, 2)) for who, fn in variants.items()},
                          sz.tiny_rounds, sz.tiny_per_round)
    for who, samples in timings.items():
        med[who] = statistics.median(samples)
        rows.append(stats(f"{who}: hit bench_add(1, 2), per call", samples))
    hit = tc.lookup(1, 2)
    assert hit is not None, "taskcache recorded no run for bench_add(1, 2)"
    r = med["joblib.Memory.cache"] / med["taskcache @task"]
    return {
        "rows": rows,
        "ratios": [speedup("taskcache", med["taskcache @task"], med["joblib.Memory.cache"], "joblib"),
                   speedup("taskcache", med["taskcache @task"], med["functools.lru_cache"], "lru_cache")],
        "targets": [target("tiny-argument hit >= 2x faster than joblib.Memory", f"{r:.1f}x",
                           r >= 2, r)],
    }


def case_input_hit(sz: Sizes, ctx: dict[str, Any]) -> dict[str, Any]:
    import joblib

    import taskcache

    frame = ctx["numeric_frame"]
    tc = taskcache.task(bench_first_value)
    jl = joblib.Memory(ctx["tmp"] / "joblib-input", verbose=0).cache(bench_first_value)
    expected = bench_first_value(frame)
    rows, med = [], {}
    for who, fn in (("taskcache @task", tc), ("joblib.Memory.cache", jl)):
        assert fn(frame) == expected
        samples = timed(lambda fn=fn: fn(frame), max(sz.repeat, 11))
        med[who] = statistics.median(samples)
        rows.append(stats(f"{who}: hit, input = numeric frame ({fmt_bytes(frame_nbytes(frame))})",
                          samples))
    assert tc.lookup(frame) is not None
    r = med["joblib.Memory.cache"] / med["taskcache @task"]
    notes = []
    if "hash_numeric_median" in ctx:
        notes.append(f"of which hashing the frame (case 1): {fmt_time(ctx['hash_numeric_median'])}")
    return {
        "rows": rows,
        "ratios": [speedup("taskcache", med["taskcache @task"], med["joblib.Memory.cache"], "joblib")],
        "notes": notes,
        "targets": [target("hit with the 200 MB frame input >= 15x faster than joblib.Memory",
                           f"{r:.1f}x", r >= 15, r)],
    }


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


def settle(since: float) -> None:
    """Wait until files written at ``since`` count as settled for taskcache's verified-file
    memo (_verified.SETTLED_NS: a file changed in the same clock tick as its check could hide)."""
    from taskcache._verified import SETTLED_NS

    time.sleep(max(0.0, since + SETTLED_NS / 1e9 + 0.1 - time.time()))


def _output_hits(label: str, make: Callable[[int], Any], n: int, memories: tuple[Any, Any],
                 repeat: int) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Case 4 for one frame: every variant timed in turn, round by round."""
    import pyarrow.parquet as pq

    import taskcache
    from taskcache.runner import get_runner

    tasks = {}
    for fmt in ("parquet", "arrow"):  # one task per format: the format is not in the key
        taskcache.configure(frame_format=fmt)
        tasks[fmt] = taskcache.task(make, name=f"{make.__name__}[{fmt}]")
        value = tasks[fmt](n)  # the miss that stores it
    taskcache.configure(frame_format="parquet")
    written = time.time()
    jl, jlm = (memory.cache(make) for memory in memories)
    jl(n)
    jlm(n)
    nbytes = frame_nbytes(value)
    files = {fmt: fn.lookup(n).record.artifacts[0] for fmt, fn in tasks.items()}
    assert [f.codec for f in files.values()] == ["parquet", "arrow"]
    store = get_runner().store  # a hit reads either format, whatever frame_format says
    parquet_path = store.path_of(files["parquet"].relpath)
    settle(written)
    assert jl(n).equals(value) and all(fn(n).equals(value) for fn in tasks.values())

    def first_hit(fmt: str) -> Any:
        store.forget_verified(files[fmt].relpath)  # as in a fresh process: read it all
        return tasks[fmt](n)

    variants = {
        "tc_parquet": ("taskcache @task hit, frame_format='parquet' (the default), repeat hit "
                       "(file unchanged since verified)", lambda: tasks["parquet"](n)),
        "tc_parquet_first": ("taskcache @task hit, frame_format='parquet', first hit in a "
                             "process (checksum read)", lambda: first_hit("parquet")),
        "tc_arrow": ("taskcache @task hit, frame_format='arrow', repeat hit",
                     lambda: tasks["arrow"](n)),
        "tc_arrow_first": ("taskcache @task hit, frame_format='arrow', first hit in a process "
                           "(checksum read)", lambda: first_hit("arrow")),
        "jl": ("joblib.Memory.cache hit", lambda: jl(n)),
        "jlm": ("joblib.Memory(mmap_mode='r').cache hit (read-only arrays)", lambda: jlm(n)),
        "floor": ("floor: pq.read_table(same parquet).to_pandas()",
                  lambda: pq.read_table(parquet_path).to_pandas()),
    }
    timings = round_robin({key: fn for key, (_, fn) in variants.items()}, repeat)
    rows, med = [], {}
    for key, (text, _) in variants.items():
        med[key] = statistics.median(timings[key])
        med[key + "_min"] = min(timings[key])
        if key.startswith("tc_"):
            text += f", {fmt_bytes(files[key.split('_')[1]].size)} file"
        rows.append(stats(f"{label} ({fmt_bytes(nbytes)}): {text}", timings[key],
                          gbps=nbytes / med[key] / 1e9, bytes=nbytes))
    return rows, med


def case_output_hit(sz: Sizes, ctx: dict[str, Any]) -> dict[str, Any]:
    import joblib

    rows, ratios, targets = [], [], []
    memories = (joblib.Memory(ctx["tmp"] / "joblib-output", verbose=0),
                joblib.Memory(ctx["tmp"] / "joblib-output-mmap", verbose=0, mmap_mode="r"))
    for label, make, n in (("numeric frame", bench_make_numeric, sz.frame_rows),
                           ("string frame (str)", bench_make_strings, sz.str_rows)):
        frame_rows, med = _output_hits(label, make, n, memories, max(sz.repeat, 9))
        rows += frame_rows
        ratios += [
            speedup(f"{label}: taskcache parquet (default)", med["tc_parquet"], med["jl"], "joblib"),
            speedup(f"{label}: taskcache parquet, first hit in a process", med["tc_parquet_first"],
                    med["jl"], "joblib"),
            speedup(f"{label}: taskcache arrow", med["tc_arrow"], med["jl"], "joblib"),
            speedup(f"{label}: taskcache arrow, first hit in a process", med["tc_arrow_first"],
                    med["jl"], "joblib"),
            speedup(f"{label}: taskcache parquet (default)", med["tc_parquet"], med["floor"],
                    "bare pyarrow read"),
        ]
        if label == "numeric frame":
            ratios += [speedup(f"{label}, fastest calls: taskcache {fmt}", med[f"tc_{fmt}_min"],
                               med["jl_min"], "joblib") for fmt in ("parquet", "arrow")]
            r_def, r_first = med["jl"] / med["tc_parquet"], med["jl"] / med["tc_parquet_first"]
            r_arrow, r_arrow_first = med["jl"] / med["tc_arrow"], med["jl"] / med["tc_arrow_first"]
            targets.append(target("200 MB frame output hit: default codec no slower than joblib.Memory",
                                   f"{r_def:.2f}x joblib's speed ({r_first:.2f}x on a first hit)",
                                   r_def >= 1, r_def))
            targets.append(target("200 MB frame output hit: Arrow IPC >= 10x faster than joblib.Memory",
                                   f"{r_arrow:.0f}x ({r_arrow_first:.1f}x on a first hit)",
                                   r_arrow >= 10, r_arrow))
        gc.collect()
    notes = ["frame_format='arrow' is taskcache.configure(frame_format='arrow') (or %config "
             "TaskCache.frame_format): Arrow IPC files mapped copy-on-write on load",
             "a repeat hit skips the checksum when the file's identity (inode, size, mtime, "
             "ctime) is what this process verified before; timed once the files are "
             "SETTLED_NS old. A first hit (forget_verified(file) before each call) reads every "
             "byte, as the first hit in a new process does",
             "all variants of a frame are timed in turn, round by round",
             "joblib's load allocates 200 MB afresh each time, and on a VM some of those "
             "allocations stall (single loads of 300-500 ms were seen with joblib alone): "
             "its median can be far above its minimum, so the ratios of the fastest calls are "
             "printed too"]
    return {"rows": rows, "ratios": ratios, "targets": targets, "notes": notes}


def case_cell_hit(sz: Sizes, ctx: dict[str, Any]) -> dict[str, Any]:
    os.environ["IPYTHONDIR"] = str(ctx["tmp"] / "ipython")  # keep ~/.ipython untouched
    from IPython.core.interactiveshell import InteractiveShell

    import taskcache

    taskcache.configure(cache_dir=ctx["tmp"] / "cells")
    ip = InteractiveShell.instance()
    sink = io.StringIO()

    def run(cell: str) -> Any:
        with contextlib.redirect_stdout(sink):
            result = ip.run_cell(cell)
        if not result.success:
            raise RuntimeError(f"cell failed: {cell!r}: {result.error_in_exec or result.error_before_exec}")
        return result

    run("%load_ext taskcache")
    run("x = 41")
    cells = [("plain cell: y = x + 1", "y = x + 1"),
             ("%%task small: y = x + 1 (hit, status line printed)", "%%task small\ny = x + 1"),
             ("%%task small_q -q: y = x + 1 (hit, quiet)", "%%task small_q -q\ny = x + 1")]
    for _, cell in cells[1:]:
        sink.seek(0)
        sink.truncate()
        run(cell)  # the miss
        run("y = None")
        run(cell)
        if ip.user_ns["y"] != 42:
            raise AssertionError(f"%%task hit did not restore y: {ip.user_ns['y']!r}")
    sink.seek(0)
    sink.truncate()
    run(cells[1][1])
    status = sink.getvalue().strip()
    if "hit" not in status:
        raise AssertionError(f"expected a hit status line, got {status!r}")
    rows, med = [], {}
    timings = interleaved({label: (lambda cell=cell: run(cell)) for label, cell in cells},
                          sz.tiny_rounds, sz.cell_per_round)
    sink.seek(0)
    sink.truncate()
    for label, samples in timings.items():
        med[label] = statistics.median(samples)
        rows.append(stats(label, samples))
    plain, hit, quiet = (med[c[0]] for c in cells)
    extra = hit - plain
    ip.run_cell("%unload_ext taskcache")
    ip.atexit_operations()  # close its history now: the temp folder goes at the end
    import atexit

    atexit.unregister(ip.atexit_operations)
    InteractiveShell.clear_instance()
    return {
        "rows": rows,
        "ratios": [f"%%task hit adds {fmt_time(extra)} per cell over running it plainly "
                   f"({fmt_time(quiet - plain)} with -q)",
                   f"status line seen on a hit: {status!r}"],
        "notes": ["IPython InteractiveShell.instance() with history on (IPYTHONDIR in the temp "
                  "folder), stdout captured; each ip.run_cell timed on its own"],
        "targets": [target("%%task hit on a small cell: at most 2 ms more than plain",
                           f"+{fmt_time(extra)}", extra <= 2e-3, extra)],
    }


# -- case 6: the catalog --------------------------------------------------------------------


TASKS = ("load", "clean", "features", "train", "evaluate")
CATALOG_DATA_VERSION = 2  # bump when build_catalog changes: cached catalogs are rebuilt


def _sa_time(dt: datetime) -> str:
    """How SQLAlchemy's SQLite DateTime stores a (naive UTC) datetime."""
    return dt.strftime("%Y-%m-%d %H:%M:%S.%f")


def build_catalog(db: Path, n: int) -> dict[str, Any]:
    """A catalog of ``n`` runs on the real schema (taskcache's Catalog creates it), filled in
    bulk with sqlite3 executemany: distinct fingerprints, 5 tasks, 90% completed / 8% failed
    / 2% cancelled, one input and one artifact each, a tag on every 10th run, and the state
    history (pending, running, final) of every run."""
    from xxhash import xxh3_128_hexdigest

    from taskcache.catalog import Catalog

    Catalog(f"sqlite:///{db}").dispose()
    con = sqlite3.connect(db)
    con.execute("PRAGMA synchronous = OFF")
    con.execute("PRAGMA cache_size = -500000")
    base = datetime(2025, 1, 1)
    env = json.dumps({"python": "3.11.9", "platform": "Linux-x86_64", "packages": {"numpy": "2.4.6", "pandas": "3.1.1"}})
    sources = {t: f"%%task {t}\ndf_{t} = step_{t}(df, params)  # {t} stage of the pipeline\nprint(len(df_{t}))\n" for t in TASKS}
    chunk = 50_000
    for start in range(1, n + 1, chunk):
        runs, inputs, arts, hist, tags = [], [], [], [], []
        for i in range(start, min(start + chunk, n + 1)):
            task = TASKS[i % 5]
            r = (i // 5) % 50  # independent of the task (i % 5)
            status = "failed" if r < 4 else "cancelled" if r == 4 else "completed"
            created = base + timedelta(seconds=i * 7)
            duration = 0.5 + (i % 97) * 0.13
            finished = created + timedelta(seconds=duration)
            fp = xxh3_128_hexdigest(i.to_bytes(8, "little"))
            tagged = i % 10 == 0
            failed = status != "completed"
            runs.append((
                i, task, "cell", fp, xxh3_128_hexdigest(task.encode() + bytes([i % 13])), status,
                _sa_time(created), _sa_time(created), _sa_time(finished), duration,
                sources[task], '["exp1"]' if tagged else "[]", None,
                ("KeyError" if status == "failed" else "KeyboardInterrupt") if failed else None,
                "'price'" if failed else None,
                "Traceback (most recent call last):\n  ...\nKeyError: 'price'\n" if failed else None,
                "bench-host", 4242, env, None, None, i % 4, None, None, None))
            inputs.append((i, "df", xxh3_128_hexdigest((i // 5).to_bytes(8, "little")),
                           "pandas.DataFrame", "<DataFrame 1000 x 10>", None))
            if not failed:
                arts.append((i, f"df_{task}", "parquet", f"{task}/{i}/df_{task}.parquet",
                             40_000 + i % 1000, f"xxh3_128:{fp}",
                             xxh3_128_hexdigest((i * 31).to_bytes(8, "little")),
                             "pandas.core.frame.DataFrame", "[1000, 10]", 1000,
                             '["c0", "c1", "c2"]', "<DataFrame 1000 x 10>"))
            if tagged:
                tags.append((i, "exp1"))
            hist += [(i, None, "pending", _sa_time(created), None),
                     (i, "pending", "running", _sa_time(created), None),
                     (i, "running", status, _sa_time(finished), None)]
        with con:
            con.executemany(f"INSERT INTO runs VALUES ({','.join('?' * 25)})", runs)
            con.executemany("INSERT INTO run_inputs (run_id, name, value_hash, type_name, repr, "
                            "producer_artifact_id) VALUES (?,?,?,?,?,?)", inputs)
            con.executemany("INSERT INTO artifacts (run_id, name, codec, relpath, size, checksum, "
                            "value_hash, type_name, shape, rows, columns, repr) "
                            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", arts)
            con.executemany("INSERT INTO run_tags VALUES (?,?)", tags)
            con.executemany("INSERT INTO state_history (run_id, from_status, to_status, at, reason) "
                            "VALUES (?,?,?,?,?)", hist)
    con.execute("ANALYZE")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return {"runs": n}


def _check_columns() -> None:
    """build_catalog writes the runs table positionally: fail loudly if the schema moved."""
    from taskcache._models import runs

    expected = ["id", "task", "kind", "fingerprint", "code_hash", "status", "created_at",
                "started_at", "finished_at", "duration", "source", "tags", "user_version",
                "error_type", "error_message", "traceback", "host", "pid", "env", "lease_owner",
                "lease_expires_at", "hit_count", "last_hit_at", "parent_run_id", "invalid_reason"]
    actual = [c.name for c in runs.columns]
    if actual != expected:
        raise RuntimeError(f"the runs table changed ({actual}); update build_catalog")


def catalog_dir(n: int) -> tuple[Path, float | None]:
    """The cached catalog folder for n runs (built when missing); the build time if built."""
    from taskcache._schema import SCHEMA_VERSION

    _check_columns()
    folder = RESULTS / f"catalog-{n}-schema{SCHEMA_VERSION}-data{CATALOG_DATA_VERSION}"
    if (folder / "BUILT").exists():
        return folder, None
    for stale in RESULTS.glob(f"catalog-{n}-*"):  # built by an older schema or build_catalog
        shutil.rmtree(stale, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
    building = RESULTS / f".building-{os.getpid()}-{n}"
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    start = time.perf_counter()
    try:
        build_catalog(building / "catalog.db", n)
        (building / "BUILT").write_text(f"{n} runs, built {datetime.now(UTC).isoformat()}\n")
        building.rename(folder)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return folder, time.perf_counter() - start


def bench_browser(repeat: int) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """The run browser widget over the configured catalog: open, page, filter, sort."""
    from taskcache.browser import RunBrowser

    panel = RunBrowser(live=False)
    assert len(panel.shown_runs) == 25 and not panel._message.value, panel._message.value

    def toggle(name: str, a: Any, b: Any) -> Callable[[], Any]:
        """Alternate a trait between two values: every call is one real change."""
        values = itertools.cycle([a, b])
        return lambda: setattr(panel, name, next(values))

    cases = [
        ("RunBrowser() opens: header, lists, count, first page", "open",
         lambda: RunBrowser(live=False).close()),
        ("RunBrowser next page (click 'older')", "next", lambda: panel._next.click()),
        ("RunBrowser jump between pages 1,000 and 1,001", "deep", toggle("page", 1000, 1001)),
        ("RunBrowser status filter: failed / any", "filter",
         toggle("status", "failed", None)),
        ("RunBrowser sort by duration (no index) / by id", "sort",
         toggle("sort", "duration", "id")),
    ]
    rows, med = [], {}
    for label, key, fn in cases:
        samples = timed(fn, repeat)
        med[key] = statistics.median(samples)
        rows.append(stats(label, samples))
    panel.close()
    return rows, med


def case_catalog_scale(sz: Sizes, ctx: dict[str, Any]) -> dict[str, Any]:
    import taskcache
    from taskcache import runner as runner_module
    from taskcache.catalog import Catalog

    n = sz.catalog_runs
    folder, built = catalog_dir(n)
    db = folder / "catalog.db"
    notes = [f"catalog: {db.relative_to(ROOT)} ({fmt_bytes(db.stat().st_size)}), "
             + (f"built in {built:.1f} s" if built is not None else "reused from an earlier run")
             + "; read once before timing, so every figure is for a catalog in the OS page cache"]
    with open(db, "rb") as f:  # warm: timings are for a catalog in the OS page cache
        while f.read(16 << 20):
            pass
    catalog = Catalog(f"sqlite:///{db}")
    rng = random.Random(6)
    from xxhash import xxh3_128_hexdigest

    # every timed lookup of a fingerprint is its first in this process (no remembered hit),
    # except in the "repeat" row, which cycles through 100 of them
    wanted = sz.lookups * 4 + 200
    completed = list(dict.fromkeys(i for i in (rng.randrange(1, n + 1) for _ in range(wanted * 3))
                                   if (i // 5) % 50 > 4))[:wanted]
    fps = [xxh3_128_hexdigest(i.to_bytes(8, "little")) for i in completed]
    half = len(fps) // 2
    missing = [xxh3_128_hexdigest(f"missing{i}".encode()) for i in range(wanted)]
    found = catalog.find_completed(fps[0])
    assert found is not None and found.status == "completed" and len(found.artifacts) == 1
    assert len(found.inputs) == 1

    def cycling(items: list[str], fn: Callable[[str], Any]) -> Callable[[], Any]:
        it = itertools.cycle(items)
        return lambda: fn(next(it))

    per_round = max(1, sz.lookups // sz.tiny_rounds)
    rows, med = [], {}
    lookups = [
        ("Catalog.find_completed(fp), hit", "lookup", cycling(fps[:half], catalog.find_completed)),
        ("Catalog.find_completed(fp, inputs=False) (the hit path), first lookup of fp",
         "lookup_noin", cycling(fps[half:], lambda fp: catalog.find_completed(fp, inputs=False))),
        ("Catalog.find_completed(fp, inputs=False), repeat lookup (remembered until a commit)",
         "lookup_memo", cycling(fps[:100], lambda fp: catalog.find_completed(fp, inputs=False))),
        ("Catalog.find_completed(fp), unknown fingerprint", "lookup_miss",
         cycling(missing, catalog.find_completed)),
    ]
    timings = interleaved({label: fn for label, _, fn in lookups}, sz.tiny_rounds, per_round,
                          warmup=per_round)
    for label, key, _ in lookups:
        med[key] = statistics.median(timings[label])
        rows.append(stats(label, timings[label]))

    runner_module.reset()
    taskcache.configure(cache_dir=folder)
    frame = taskcache.runs(task="train", status="completed", limit=100)
    assert len(frame) == 100, len(frame)
    queries = [
        ("taskcache.runs(task='train', status='completed', limit=100)", "runs",
         lambda: taskcache.runs(task="train", status="completed", limit=100)),
        ("taskcache.runs(task='train', status='cancelled', limit=100) (2% of runs)", "runs_rare",
         lambda: taskcache.runs(task="train", status="cancelled", limit=100)),
        ("taskcache.runs(task='train', status='running', limit=100) (matches none)", "runs_none",
         lambda: taskcache.runs(task="train", status="running", limit=100)),
        ("taskcache.runs(tag='exp1', limit=100)", "runs_tag",
         lambda: taskcache.runs(tag="exp1", limit=100)),
    ]
    for label, key, fn in queries:
        samples = timed(fn, max(sz.repeat, 10))
        med[key] = statistics.median(samples)
        rows.append(stats(label, samples))
    browser_rows, browser_med = bench_browser(max(sz.repeat, 5))
    rows += browser_rows
    med.update(browser_med)
    runner_module.reset()
    catalog.dispose()
    first_page = med["open"]
    notes.append("browser rows drive the real RunBrowser widget (no front end): 'opens' is the "
                 "whole first paint (summary header, task and tag lists, count, first page of "
                 "25 with outputs); each page/filter/sort row is one click's SQL and widget update")
    return {
        "rows": rows,
        "ratios": [f"runs in the catalog: {n:,}"],
        "notes": notes,
        "targets": [
            target(f"{n:,}-run catalog: fingerprint lookup <= 100 us",
                   f"{fmt_time(med['lookup_noin'])} hit path (first lookup); "
                   f"{fmt_time(med['lookup_memo'])} repeat; {fmt_time(med['lookup'])} with inputs",
                   med["lookup_noin"] <= 100e-6, med["lookup_noin"]),
            target(f"{n:,}-run catalog: browser first page < 1 s",
                   f"{fmt_time(first_page)} to open the panel", first_page < 1, first_page),
            target(f"{n:,}-run catalog: browser paging < 200 ms",
                   f"{fmt_time(med['next'])} next page, {fmt_time(med['deep'])} page 1,000",
                   max(med["next"], med["deep"]) < 0.2, max(med["next"], med["deep"])),
        ],
    }


# -- case 7: memory -------------------------------------------------------------------------

MEMORY_PROBE = textwrap.dedent(r"""
    import gc, json, sys, threading, time, tracemalloc
    sys.path.insert(0, sys.argv[1])
    from benchmarks.run import numeric_frame, floor_hash
    which, rows, repeat = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if which == "taskcache":
        from taskcache.fingerprint import hash_value as fn
    elif which == "joblib.hash":
        from joblib import hash as fn
    else:
        fn = floor_hash

    def status(key):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        raise KeyError(key)

    def reset_hwm():
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def measure(fn, arg, repeat):
        rss, traced, method = [], [], "VmHWM reset via /proc/self/clear_refs"
        for _ in range(repeat):
            gc.collect()
            before = status("VmRSS")
            if reset_hwm():
                fn(arg)
                peak = status("VmHWM")
            else:  # sample VmRSS from a thread every 0.2 ms instead
                method = "VmRSS sampled every 0.2 ms"
                seen, done = [before], threading.Event()
                def sample():
                    while not done.is_set():
                        seen.append(status("VmRSS"))
                        time.sleep(0.0002)
                t = threading.Thread(target=sample)
                t.start()
                fn(arg)
                done.set()
                t.join()
                peak = max(seen)
            rss.append(max(0, peak - before))
        for _ in range(repeat):
            gc.collect()
            tracemalloc.start()
            fn(arg)
            traced.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
        return rss, traced, method

    import numpy as np

    def known_50mb(_):  # calibration: a 50 MB temporary both measurements must see
        a = np.ones(50_000_000 // 8)
        a[::512] = 2.0  # touch every page
        return float(a.sum())

    frame = numeric_frame(rows)
    fn(numeric_frame(100))  # imports and lazy setup outside the measurement
    rss, traced, method = measure(fn, frame, repeat)
    cal_rss, cal_traced, _ = measure(known_50mb, None, 1)
    print(json.dumps({"rss": rss, "traced": traced, "method": method,
                      "calibration": [cal_rss[0], cal_traced[0]]}))
""")


def case_hash_memory(sz: Sizes, ctx: dict[str, Any]) -> dict[str, Any]:
    rows, med, methods, calibration = [], {}, set(), []
    for who in ("taskcache", "joblib.hash", "floor xxh3"):
        proc = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, str(ROOT), who, str(sz.frame_rows), str(sz.repeat)],
            capture_output=True, text=True, timeout=600, cwd=ctx["tmp"])
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
    frame_mb = sz.frame_rows * 10 * 8
    return {
        "rows": rows,
        "notes": [f"hashing the numeric frame ({fmt_bytes(frame_mb)}) in a fresh subprocess per "
                  f"hasher; RSS: {', '.join(sorted(methods))}, peak minus RSS before the call; "
                  "tracemalloc sees numpy's buffers but not memory allocated by C libraries "
                  "directly (Arrow), hence both",
                  "calibration (a known 50 MB temporary in each subprocess): RSS "
                  + ", ".join(fmt_bytes(c[0]) for c in calibration) + "; tracemalloc "
                  + ", ".join(fmt_bytes(c[1]) for c in calibration)],
        "targets": [target("at most 50 MB extra peak memory hashing the 200 MB frame",
                           f"{fmt_bytes(med['taskcache'])} (worst of RSS and tracemalloc)",
                           med["taskcache"] <= 50e6, med["taskcache"])],
    }


# =============================================================================== main


def machine_info() -> dict[str, Any]:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test), < 30 s")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json",
                        help="JSON results file (default benchmarks/results/latest.json)")
    parser.add_argument("--only", default=None,
                        help=f"comma-separated subset of cases: {', '.join(CASES)}")
    args = parser.parse_args(argv)
    sz = QUICK if args.quick else FULL
    only = set(args.only.split(",")) if args.only else set(CASES)
    if unknown := only - set(CASES):
        parser.error(f"unknown case(s): {', '.join(sorted(unknown))}")

    started = time.perf_counter()
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="taskcache-bench-"))
    os.environ.pop("TASKCACHE_DB_URL", None)
    import taskcache
    from taskcache import runner as runner_module

    info = machine_info()
    print(f"taskcache benchmarks ({'quick' if args.quick else 'full'} sizes) on {info['cpu']}, "
          f"{info['cores']} cores, Python {info['python']}, pandas {info['pandas']}, "
          f"pyarrow {info['pyarrow']}, joblib {info['joblib']}")
    titles = {
        "hashing": "content hashing: taskcache vs joblib.hash vs bare xxh3 (floor)",
        "tiny_hit": "decorator hit with tiny arguments",
        "input_hit": "hit whose input is the numeric frame",
        "output_hit": "hit whose output is a frame",
        "cell_hit": "%%task hit overhead on a small cell in IPython",
        "catalog_scale": "catalog scale: lookup, runs(), browser pages",
        "hash_memory": "peak memory added while hashing the numeric frame",
    }
    ctx: dict[str, Any] = {"tmp": tmp}
    results: dict[str, Any] = {}
    failed = []
    try:
        t0 = time.perf_counter()
        import numpy as np

        if only & {"hashing", "input_hit"}:
            ctx["numeric_frame"] = numeric_frame(sz.frame_rows)
        if "hashing" in only:
            ctx["str_default"] = string_frame(sz.str_rows)
            ctx["str_object"] = string_frame(sz.str_rows, object)
            ctx["str_pyarrow"] = string_frame(sz.str_rows, "string[pyarrow]")
            ctx["array"] = np.random.default_rng(3).random(sz.array_elems)
            ctx["records"] = records(sz.records)
        print(f"data built in {time.perf_counter() - t0:.1f} s; caches in {tmp}")
        functions = {name: globals()[f"case_{name}"] for name in CASES}
        for number, name in enumerate(CASES, 1):
            if name not in only:
                continue
            runner_module.reset()
            taskcache.configure(cache_dir=tmp / f"cache-{name}")
            case: dict[str, Any] = {"name": name, "title": titles[name]}
            t0 = time.perf_counter()
            try:
                case.update(functions[name](sz, ctx))
            except Exception as exc:  # report and carry on with the other cases
                case["error"] = f"{type(exc).__name__}: {exc}"
                case["traceback"] = traceback.format_exc()
                traceback.print_exc()
                failed.append(name)
            case["seconds"] = time.perf_counter() - t0
            results[name] = case
            print_case(number, case, args.quick)
            print(f"  ({case['seconds']:.1f} s)")
            sys.stdout.flush()
    finally:
        runner_module.reset()
        shutil.rmtree(tmp, ignore_errors=True)

    total = time.perf_counter() - started
    all_targets = [(name, t) for name, c in results.items() for t in c.get("targets", [])]
    print(f"\n== summary: {sum(t['pass'] for _, t in all_targets)}/{len(all_targets)} targets "
          f"pass{' (quick sizes: indicative only)' if args.quick else ''}; total {total:.1f} s")
    print(render_table(["case", "target", "measured", "result"],
                       [[n, t["target"], t["measured"], "PASS" if t["pass"] else "MISS"]
                        for n, t in all_targets], align="llrl"))
    payload = {
        "meta": {"quick": args.quick, "sizes": asdict(sz), "machine": info,
                 "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                 "total_seconds": total, "failed_cases": failed},
        "cases": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"results written to {args.out}")
    if failed:
        print(f"FAILED cases: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
