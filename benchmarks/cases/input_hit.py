"""Case 3: a hit whose input is the numeric frame (so the key costs one hash of it)."""

from __future__ import annotations

import statistics

from benchmarks.data import frame_nbytes
from benchmarks.harness import (
    CaseResult,
    Context,
    fmt_bytes,
    fmt_time,
    speedup,
    stats,
    target,
    timed,
)

NAME = "input_hit"
TITLE = "hit whose input is the numeric frame"
NEEDS = ("numeric_frame",)


# Module level and self-contained: taskcache hashes its source on every call, joblib.Memory
# keys it by module and name.
def bench_first_value(df):
    return float(df.iat[0, 0])


def run(ctx: Context) -> CaseResult:
    """bench_first_value(frame) hit through taskcache and joblib.Memory."""
    import joblib

    import taskcache

    frame = ctx.data["numeric_frame"]
    tc = taskcache.task(bench_first_value)
    jl = joblib.Memory(ctx.tmp / "joblib-input", verbose=0).cache(bench_first_value)
    expected = bench_first_value(frame)
    rows, med = [], {}
    for who, fn in (("taskcache @task", tc), ("joblib.Memory.cache", jl)):
        assert fn(frame) == expected
        samples = timed(lambda fn=fn: fn(frame), max(ctx.sizes.repeat, 11))
        med[who] = statistics.median(samples)
        rows.append(stats(f"{who}: hit, input = numeric frame ({fmt_bytes(frame_nbytes(frame))})",
                          samples))
    assert tc.lookup(frame) is not None
    r = med["joblib.Memory.cache"] / med["taskcache @task"]
    notes = []
    if "hash_numeric_median" in ctx.shared:
        notes.append(f"of which hashing the frame (case 1): {fmt_time(ctx.shared['hash_numeric_median'])}")
    return CaseResult(
        rows=rows,
        ratios=[speedup("taskcache", med["taskcache @task"], med["joblib.Memory.cache"], "joblib")],
        notes=notes,
        targets=[target("hit with the 200 MB frame input >= 15x faster than joblib.Memory",
                        f"{r:.1f}x", r >= 15, r)],
    )
