"""Case 8: a parameter sweep of a 10 ms task with half the points cached, on a thread pool:
``f.map`` against joblib.Parallel + joblib.Memory, plain Dask (no cache) and the bare pool.

Every timed sweep starts from its own fresh cache (a new ``version`` for taskcache, a new
folder for joblib) with the even points computed beforehand, untimed. Overheads are wall time
per point: a sweep of cached points only, and the misses of a sweep beyond the same pool
running the bare function.
"""

from __future__ import annotations

import itertools
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from benchmarks.harness import CaseResult, Context, fmt_time, round_robin, speedup, stats, target

NAME = "sweep"
TITLE = "sweep of a 10 ms task, half cached, on 4 threads"
NEEDS: tuple[str, ...] = ()
WORKERS = 4
POINT_SECONDS = 0.01


def bench_point(x):
    time.sleep(0.01)  # POINT_SECONDS; a literal, so the code (and its key) stays fixed
    return x * 2


def run(ctx: Context) -> CaseResult:
    import dask
    import joblib

    import taskcache

    points = 16 if ctx.quick else 200
    repeat = 2 if ctx.quick else 5
    xs = list(range(points))
    evens, odds = xs[::2], xs[1::2]
    pool = ThreadPoolExecutor(WORKERS)
    versions = itertools.count()
    folders = itertools.count()

    def fresh_task():
        f = taskcache.task(bench_point, version=f"sweep-{next(versions)}")
        f.map(evens, executor="threads", max_workers=WORKERS, progress=False)
        return f

    def fresh_joblib():
        memory = joblib.Memory(ctx.tmp / f"joblib-sweep-{next(folders)}", verbose=0)
        cached = memory.cache(bench_point)
        joblib.Parallel(n_jobs=WORKERS, backend="threading")(joblib.delayed(cached)(x) for x in evens)
        return cached

    prepared: dict[str, object] = {}

    def prepare() -> None:
        prepared["tc"] = fresh_task()
        prepared["jl"] = fresh_joblib()

    def tc_sweep() -> None:
        assert prepared.pop("tc").map(xs, executor="threads", max_workers=WORKERS,
                                      progress=False) == [2 * x for x in xs]

    def jl_sweep() -> None:
        cached = prepared.pop("jl")
        out = joblib.Parallel(n_jobs=WORKERS, backend="threading")(
            joblib.delayed(cached)(x) for x in xs)
        assert out == [2 * x for x in xs]

    def dask_all() -> None:
        out = dask.compute(*[dask.delayed(bench_point)(x) for x in xs], scheduler="threads",
                           num_workers=WORKERS)
        assert list(out) == [2 * x for x in xs]

    def pool_misses() -> None:
        assert list(pool.map(bench_point, odds)) == [2 * x for x in odds]

    samples: dict[str, list[float]] = {k: [] for k in ("tc", "jl", "dask", "pool")}
    for _ in range(repeat):  # preparing is untimed; the four sweeps are timed in turn
        prepare()
        for key, fn in (("tc", tc_sweep), ("jl", jl_sweep), ("dask", dask_all),
                        ("pool", pool_misses)):
            start = time.perf_counter()
            fn()
            samples[key].append(time.perf_counter() - start)

    warm = fresh_task()
    warm.map(xs, executor="threads", max_workers=WORKERS, progress=False)
    all_hits = round_robin({"hits": lambda: warm.map(xs, executor="threads", progress=False)},
                           repeat)["hits"]
    pool.shutdown()

    med = {k: statistics.median(v) for k, v in samples.items()}
    per_hit = statistics.median(all_hits) / points
    per_miss = max(0.0, (med["tc"] - med["pool"]) / len(odds))
    rows = [
        stats(f"taskcache f.map, {points} points, {len(evens)} cached", samples["tc"]),
        stats(f"joblib.Parallel + joblib.Memory, {len(evens)} cached", samples["jl"]),
        stats(f"plain Dask (threads), all {points} computed", samples["dask"]),
        stats(f"bare ThreadPoolExecutor, the {len(odds)} misses only", samples["pool"]),
        stats(f"taskcache f.map, all {points} cached", all_hits),
    ]
    return CaseResult(
        rows=rows,
        ratios=[speedup("taskcache", med["tc"], med["jl"], "joblib.Parallel+Memory"),
                speedup("taskcache", med["tc"], med["dask"], "plain Dask")],
        targets=[
            target("overhead per cached point <= 100 us", fmt_time(per_hit), per_hit <= 100e-6,
                   per_hit),
            target("overhead per computed point <= 2 ms beyond the pool's own",
                   fmt_time(per_miss), per_miss <= 2e-3, per_miss),
        ],
        notes=[f"{WORKERS} worker threads; each point sleeps {POINT_SECONDS * 1000:.0f} ms; "
               "a computed point is claimed, run and recorded (artifact written and fsynced, "
               "run marked completed)"],
    )
