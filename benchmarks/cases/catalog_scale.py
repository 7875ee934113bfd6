"""Case 6: a big catalog: fingerprint lookups, taskcache.runs() queries and the run browser."""

from __future__ import annotations

import itertools
import random
import statistics
from collections.abc import Callable
from typing import Any

from benchmarks.data import catalog_dir
from benchmarks.harness import (
    ROOT,
    CaseResult,
    Context,
    fmt_bytes,
    fmt_time,
    interleaved,
    stats,
    target,
    timed,
)

NAME = "catalog_scale"
TITLE = "catalog scale: lookup, runs(), browser pages"
NEEDS: tuple[str, ...] = ()


def bench_browser(repeat: int) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """The run browser widget over the configured catalog: open, page, filter, sort. Returns
    the result rows and the medians by key (open, next, deep, filter, sort)."""
    from taskcache import RunBrowser

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


def run(ctx: Context) -> CaseResult:
    """Lookups on the Catalog directly, then runs() and the browser through the public API
    configured on the catalog's folder."""
    from xxhash import xxh3_128_hexdigest

    import taskcache
    from benchmarks.internals import Catalog, reset_runner

    sz = ctx.sizes
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

    # every timed lookup of a fingerprint is its first in this process (no remembered hit),
    # except in the "repeat" row, which cycles through 100 of them; the fingerprints and the
    # completed runs are those data.build_catalog wrote
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

    reset_runner()
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
    reset_runner()
    catalog.dispose()
    first_page = med["open"]
    notes.append("browser rows drive the real RunBrowser widget (no front end): 'opens' is the "
                 "whole first paint (summary header, task and tag lists, count, first page of "
                 "25 with outputs); each page/filter/sort row is one click's SQL and widget update")
    return CaseResult(
        rows=rows,
        ratios=[f"runs in the catalog: {n:,}"],
        notes=notes,
        targets=[
            target(f"{n:,}-run catalog: fingerprint lookup <= 100 us",
                   f"{fmt_time(med['lookup_noin'])} hit path (first lookup); "
                   f"{fmt_time(med['lookup_memo'])} repeat; {fmt_time(med['lookup'])} with inputs",
                   med["lookup_noin"] <= 100e-6, med["lookup_noin"]),
            target(f"{n:,}-run catalog: browser opens in <= 300 ms",
                   f"{fmt_time(first_page)} to open the panel", first_page <= 0.3, first_page),
            target(f"{n:,}-run catalog: browser paging < 200 ms",
                   f"{fmt_time(med['next'])} next page, {fmt_time(med['deep'])} page 1,000",
                   max(med["next"], med["deep"]) < 0.2, max(med["next"], med["deep"])),
        ],
    )
