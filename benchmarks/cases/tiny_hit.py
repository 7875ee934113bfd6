"""Case 2: a decorator hit with tiny arguments, against joblib.Memory and functools.lru_cache."""

from __future__ import annotations

import functools
import statistics

from benchmarks.harness import CaseResult, Context, interleaved, speedup, stats, target

NAME = "tiny_hit"
TITLE = "decorator hit with tiny arguments"
NEEDS: tuple[str, ...] = ()


# Module level and self-contained: taskcache hashes its source on every call, joblib.Memory
# keys it by module and name.
def bench_add(a, b):
    return a + b


def run(ctx: Context) -> CaseResult:
    """bench_add(1, 2) hit through each cache, every call timed on its own."""
    import joblib

    import taskcache

    sz = ctx.sizes
    tc = taskcache.task(bench_add)
    jl = joblib.Memory(ctx.tmp / "joblib-tiny", verbose=0).cache(bench_add)
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
    return CaseResult(
        rows=rows,
        ratios=[speedup("taskcache", med["taskcache @task"], med["joblib.Memory.cache"], "joblib"),
                speedup("taskcache", med["taskcache @task"], med["functools.lru_cache"], "lru_cache")],
        targets=[target("tiny-argument hit >= 2x faster than joblib.Memory", f"{r:.1f}x",
                        r >= 2, r)],
    )
