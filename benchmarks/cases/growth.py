"""Case 8: how the cost of a hit grows, drawn as curves (PNG, matplotlib).

- with the number of runs in the catalog (1k to 1M): an @task hit and a first lookup;
- with the size of the input (1 MB to 1 GB), against the bare xxh3 over the same buffer, and
  for a read-only input (remembered by identity);
- with the number of files passed in as ``pathlib.Path`` arguments (0 to 1,000), each hashed
  by content and then remembered by file identity;
- with the number of outputs of a ``%%task`` cell (1 to 100).

The pictures go to benchmarks/results/growth-*.png; a full run also writes them to
docs/images/, where the README embeds them.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.data import catalog_dir
from benchmarks.harness import (
    RESULTS,
    ROOT,
    CaseResult,
    Context,
    fmt_bytes,
    fmt_time,
    per_call,
    settle,
    stats,
    target,
    timed,
)

NAME = "growth"
TITLE = "growth curves: hit latency vs catalog size, input size, files, outputs"
NEEDS: tuple[str, ...] = ()
IMAGES = ROOT / "docs" / "images"

FULL_STEPS = {"catalog": (1_000, 10_000, 100_000, 1_000_000),
              "input": (10**6, 10**7, 10**8, 10**9),
              "files": (0, 10, 100, 1000), "outputs": (1, 10, 100)}
QUICK_STEPS = {"catalog": (1_000, 5_000), "input": (10**3, 10**5, 10**6),
               "files": (0, 10, 50), "outputs": (1, 10)}


# Module level and self-contained: taskcache hashes its source on every call.
def bench_growth_add(a, b):
    return {"sum": a + b}


def bench_growth_first(x):
    return float(x[0])


def bench_growth_count(paths):
    return len(paths)


def _median(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float]]:
    samples = timed(fn, repeat)
    return statistics.median(samples), samples


def _catalog_curve(steps: tuple[int, ...], ctx: Context) -> tuple[list[dict], dict[int, dict]]:
    """@task hits and first lookups on catalogs of each size (built once, kept in results/)."""
    from xxhash import xxh3_128_hexdigest

    import taskcache
    from benchmarks.internals import Catalog, reset_runner

    rows, points = [], {}
    for n in steps:
        folder, _ = catalog_dir(n)
        reset_runner()
        taskcache.configure(cache_dir=folder)
        fn = taskcache.task(bench_growth_add)
        written = time.time()
        fn(1, 2)  # a miss the first time this catalog is used: one run more in it
        settle(written, ctx.quick)
        hits = per_call(lambda fn=fn: fn(1, 2), 1, 1000 if not ctx.quick else 100)
        reset_runner()
        catalog = Catalog(f"sqlite:///{folder / 'catalog.db'}")
        sample = random.Random(n).sample(range(1, n + 1), min(n, 1000))
        ids = [i for i in sample if (i // 5) % 50 > 4][:200]  # completed runs (data.py)
        fps = iter([xxh3_128_hexdigest(i.to_bytes(8, "little")) for i in ids])
        lookups = per_call(lambda catalog=catalog, fps=fps: catalog.find_completed(
            next(fps), inputs=False), 1, len(ids) - 25, warmup=20)
        catalog.dispose()
        points[n] = {"hit": statistics.median(hits), "lookup": statistics.median(lookups)}
        rows.append(stats(f"catalog of {n:,} runs: @task hit (tiny), per call", hits, x=n))
        rows.append(stats(f"catalog of {n:,} runs: first lookup of a fingerprint", lookups, x=n))
    reset_runner()
    taskcache.configure(cache_dir=ctx.tmp / "cache-growth")
    return rows, points


def _input_curve(steps: tuple[int, ...], repeat: int) -> tuple[list[dict], dict[int, dict]]:
    """@task hit with a float64 array input of each size: writable (hashed on every call),
    read-only over bytes (hashed once), and the bare xxh3 of the buffer."""
    import numpy as np
    from xxhash import xxh3_128_digest

    import taskcache

    fn = taskcache.task(bench_growth_first)
    rows, points = [], {}
    for nbytes in steps:
        arr = np.random.default_rng(nbytes).random(nbytes // 8)
        frozen = np.frombuffer(arr.tobytes())
        fn(arr), fn(frozen)  # the misses
        hit, s1 = _median(lambda arr=arr: fn(arr), repeat)
        memo, s2 = _median(lambda frozen=frozen: fn(frozen), repeat)
        floor, s3 = _median(lambda arr=arr: xxh3_128_digest(arr), repeat)
        points[nbytes] = {"hit": hit, "memo": memo, "floor": floor}
        label = fmt_bytes(nbytes)
        rows += [stats(f"input {label}: @task hit (writable array, hashed)", s1, x=nbytes),
                 stats(f"input {label}: @task hit (read-only array, remembered)", s2, x=nbytes),
                 stats(f"input {label}: bare xxh3_128 of the buffer (floor)", s3, x=nbytes)]
        del arr, frozen
    return rows, points


def _files_curve(steps: tuple[int, ...], folder: Path, repeat: int,
                 quick: bool) -> tuple[list[dict], dict]:
    """@task hit whose argument is a list of N Paths (1 KB files), hashed by content then
    remembered by file identity."""
    import taskcache

    folder.mkdir(parents=True, exist_ok=True)
    written = time.time()
    files = []
    for i in range(max(steps)):
        path = folder / f"f{i:04d}.bin"
        path.write_bytes(os.urandom(1000))
        files.append(path)
    fn = taskcache.task(bench_growth_count)
    for n in steps:
        fn(files[:n])
    settle(written, quick)
    rows, points = [], {}
    for n in steps:
        med, samples = _median(lambda n=n: fn(files[:n]), max(repeat, 11))
        points[n] = {"hit": med}
        rows.append(stats(f"{n} file arguments (pathlib.Path, 1 KB each): @task hit", samples,
                          x=n))
    return rows, points


def _outputs_curve(steps: tuple[int, ...], ctx: Context) -> tuple[list[dict], dict]:
    """A %%task cell binding k small values, hit in a real IPython shell."""
    os.environ["IPYTHONDIR"] = str(ctx.tmp / "ipython")
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    sink = io.StringIO()

    def run_cell(cell: str) -> None:
        with contextlib.redirect_stdout(sink):
            result = ip.run_cell(cell)
        if not result.success:
            raise RuntimeError(f"cell failed: {result.error_in_exec or result.error_before_exec}")
        sink.seek(0)
        sink.truncate()

    run_cell("%load_ext taskcache")
    run_cell("x = 1")
    cells = {k: f"%%task outputs{k} -q\n" + "\n".join(f"a{i} = x + {i}" for i in range(k))
             for k in steps}
    written = time.time()
    for cell in cells.values():
        run_cell(cell)
    settle(written, ctx.quick)
    rows, points = [], {}
    for k, cell in cells.items():
        med, samples = _median(lambda cell=cell: run_cell(cell), 21 if not ctx.quick else 5)
        points[k] = {"hit": med}
        rows.append(stats(f"%%task cell with {k} outputs: hit", samples, x=k))
    ip.run_cell("%unload_ext taskcache")
    ip.atexit_operations()
    atexit.unregister(ip.atexit_operations)
    InteractiveShell.clear_instance()
    return rows, points


def _draw(curves: dict[str, dict], folders: list[Path]) -> list[Path]:
    """One PNG per curve into each folder; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    specs = {
        "catalog": ("Hit latency vs catalog size", "runs in the catalog",
                    {"hit": "@task hit (tiny)", "lookup": "first lookup of a fingerprint"}),
        "input": ("Hit latency vs input size", "input size (bytes)",
                  {"hit": "@task hit, writable array (hashed)", "floor": "bare xxh3_128 (floor)",
                   "memo": "@task hit, read-only array (remembered)"}),
        "files": ("Hit latency vs file arguments", "files passed as pathlib.Path (1 KB each)",
                  {"hit": "@task hit"}),
        "outputs": ("Hit latency vs outputs of a cell", "outputs of the %%task cell",
                    {"hit": "%%task hit"}),
    }
    written = []
    for name, points in curves.items():
        title, xlabel, series = specs[name]
        fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
        xs = sorted(points)
        for key, label in series.items():
            plot_xs = [x for x in xs if key in points[x]]
            ys = [points[x][key] * 1e3 for x in plot_xs]
            shown = [max(x, 0.8) for x in plot_xs] if name == "files" else plot_xs  # log axis
            ax.plot(shown, ys, marker="o", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("median time (ms)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"growth-{name}.png"
            fig.savefig(path)
            written.append(path)
        plt.close(fig)
    return written


def run(ctx: Context) -> CaseResult:
    """Every curve, then the pictures."""
    steps = QUICK_STEPS if ctx.quick else FULL_STEPS
    repeat = max(ctx.sizes.repeat, 5)
    curves: dict[str, dict] = {}
    rows, catalog_points = _catalog_curve(steps["catalog"], ctx)
    curves["catalog"] = catalog_points
    more, curves["input"] = _input_curve(steps["input"], repeat)
    rows += more
    more, curves["files"] = _files_curve(steps["files"], ctx.tmp / "growth-files", repeat,
                                             ctx.quick)
    rows += more
    more, curves["outputs"] = _outputs_curve(steps["outputs"], ctx)
    rows += more
    folders = [RESULTS] if ctx.quick else [RESULTS, IMAGES]
    pictures = _draw(curves, folders)
    small, big = min(catalog_points), max(catalog_points)
    flat = catalog_points[big]["hit"] / catalog_points[small]["hit"]
    top = max(curves["input"])
    overhead = curves["input"][top]["hit"] / curves["input"][top]["floor"]
    files_top = max(curves["files"])
    per_file = ((curves["files"][files_top]["hit"] - curves["files"][0]["hit"]) / files_top
                if files_top else 0.0)
    outs = sorted(curves["outputs"])
    per_output = ((curves["outputs"][outs[-1]]["hit"] - curves["outputs"][outs[0]]["hit"])
                  / (outs[-1] - outs[0]))
    return CaseResult(
        rows=rows,
        ratios=[f"hit on a {big:,}-run catalog takes {flat:.2f}x the hit on a {small:,}-run one",
                f"{fmt_bytes(top)} input: the hit takes {overhead:.2f}x the bare hash",
                f"each file argument adds {fmt_time(per_file)} to a hit",
                f"each output of a cell adds {fmt_time(per_output)} to a hit"],
        notes=["pictures: " + ", ".join(str(p.relative_to(ROOT)) for p in pictures),
               "file arguments are pathlib.Path values (hashed by content, remembered by file "
               "identity); files a run reads by itself are not tracked on this branch yet"],
        targets=[target(f"hit latency flat in catalog size: {big:,} runs <= 1.5x {small:,} runs",
                        f"{flat:.2f}x", flat <= 1.5, flat)],
    )

