"""Case 5: the overhead a %%task hit adds to a small cell, in a real IPython shell."""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import statistics
from typing import Any

from benchmarks.harness import CaseResult, Context, fmt_time, interleaved, stats, target

NAME = "cell_hit"
TITLE = "%%task hit overhead on a small cell in IPython"
NEEDS: tuple[str, ...] = ()


def run(ctx: Context) -> CaseResult:
    """A plain cell against the same cell as a %%task hit (with and without -q), every
    ip.run_cell timed on its own."""
    os.environ["IPYTHONDIR"] = str(ctx.tmp / "ipython")  # keep ~/.ipython untouched
    from IPython.core.interactiveshell import InteractiveShell

    import taskcache

    taskcache.configure(cache_dir=ctx.tmp / "cells")
    ip = InteractiveShell.instance()
    sink = io.StringIO()

    def run_cell(cell: str) -> Any:
        with contextlib.redirect_stdout(sink):
            result = ip.run_cell(cell)
        if not result.success:
            raise RuntimeError(f"cell failed: {cell!r}: {result.error_in_exec or result.error_before_exec}")
        return result

    run_cell("%load_ext taskcache")
    run_cell("x = 41")
    cells = [("plain cell: y = x + 1", "y = x + 1"),
             ("%%task small: y = x + 1 (hit, status line printed)", "%%task small\ny = x + 1"),
             ("%%task small_q -q: y = x + 1 (hit, quiet)", "%%task small_q -q\ny = x + 1")]
    for _, cell in cells[1:]:
        sink.seek(0)
        sink.truncate()
        run_cell(cell)  # the miss
        run_cell("y = None")
        run_cell(cell)
        if ip.user_ns["y"] != 42:
            raise AssertionError(f"%%task hit did not restore y: {ip.user_ns['y']!r}")
    sink.seek(0)
    sink.truncate()
    run_cell(cells[1][1])
    status = sink.getvalue().strip()
    if "hit" not in status:
        raise AssertionError(f"expected a hit status line, got {status!r}")
    rows, med = [], {}
    timings = interleaved({label: (lambda cell=cell: run_cell(cell)) for label, cell in cells},
                          ctx.sizes.tiny_rounds, ctx.sizes.cell_per_round)
    sink.seek(0)
    sink.truncate()
    for label, samples in timings.items():
        med[label] = statistics.median(samples)
        rows.append(stats(label, samples))
    plain, hit, quiet = (med[c[0]] for c in cells)
    extra = hit - plain
    ip.run_cell("%unload_ext taskcache")
    ip.atexit_operations()  # close its history now: the temp folder goes at the end
    atexit.unregister(ip.atexit_operations)
    InteractiveShell.clear_instance()
    return CaseResult(
        rows=rows,
        ratios=[f"%%task hit adds {fmt_time(extra)} per cell over running it plainly "
                f"({fmt_time(quiet - plain)} with -q)",
                f"status line seen on a hit: {status!r}"],
        notes=["IPython InteractiveShell.instance() with history on (IPYTHONDIR in the temp "
               "folder), stdout captured; each ip.run_cell timed on its own"],
        targets=[target("%%task hit on a small cell: at most 2 ms more than plain",
                        f"+{fmt_time(extra)}", extra <= 2e-3, extra)],
    )
