"""Case 2: a decorator hit with tiny arguments, against joblib.Memory, marimo's
persistent_cache (when marimo is installed) and functools.lru_cache."""

from __future__ import annotations

import functools
import statistics
import time
from typing import Any

from benchmarks.harness import CaseResult, Context, interleaved, settle, speedup, stats, target
from benchmarks.peers import marimo_cache

NAME = "tiny_hit"
TITLE = "decorator hit with tiny arguments"
NEEDS: tuple[str, ...] = ()


# Module level and self-contained: taskcache hashes its source on every call, joblib.Memory
# keys it by module and name.
def bench_add(a, b):
    return {"sum": a + b, "args": [a, b]}


def run(ctx: Context) -> CaseResult:
    """bench_add(1, 2) hit through each cache, every call timed on its own (tiny_rounds x
    tiny_per_round calls each: 5,000 in a full run), the variants taking turns round by
    round."""
    import joblib

    import taskcache

    sz = ctx.sizes
    variants: dict[str, Any] = {
        "taskcache @task": taskcache.task(bench_add),
        "joblib.Memory.cache": joblib.Memory(ctx.tmp / "joblib-tiny", verbose=0).cache(bench_add),
    }
    notes = []
    marimo = marimo_cache(bench_add, ctx.tmp / "marimo-tiny")
    if isinstance(marimo, str):
        notes.append(marimo)
    else:
        variants["marimo persistent_cache"] = marimo
    variants["functools.lru_cache"] = functools.lru_cache(maxsize=None)(bench_add)
    variants["plain call (no cache)"] = bench_add
    expected = bench_add(1, 2)
    written = time.time()
    for fn in variants.values():
        assert fn(1, 2) == expected  # the miss that fills the cache
    settle(written, ctx.quick)  # hits of a result written more than a moment ago, as a user's are
    timings = interleaved({who: (lambda fn=fn: fn(1, 2)) for who, fn in variants.items()},
                          sz.tiny_rounds, sz.tiny_per_round)
    rows, med = [], {}
    for who, samples in timings.items():
        med[who] = statistics.median(samples)
        rows.append(stats(f"{who}: hit bench_add(1, 2), per call", samples))
    hit = variants["taskcache @task"].lookup(1, 2)
    assert hit is not None, "taskcache recorded no run for bench_add(1, 2)"
    ours = med["taskcache @task"]
    ratios = [speedup("taskcache", ours, med["joblib.Memory.cache"], "joblib"),
              speedup("taskcache", ours, med["functools.lru_cache"], "lru_cache")]
    if "marimo persistent_cache" in med:
        ratios.insert(1, speedup("taskcache", ours, med["marimo persistent_cache"], "marimo"))
    r = med["joblib.Memory.cache"] / ours
    notes.append("bench_add returns a small dict; every call is timed on its own and the "
                 "variants take turns round by round")
    return CaseResult(
        rows=rows, ratios=ratios, notes=notes,
        targets=[target("tiny hit (small dict) >= 2.5x faster than joblib.Memory, per call",
                        f"{r:.1f}x", r >= 2.5, r)],
    )
