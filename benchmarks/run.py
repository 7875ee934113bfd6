#!/usr/bin/env python
"""taskcache benchmarks (issue 6): taskcache against joblib.Memory, functools.lru_cache and
the hardware floor, all in one process.

    .venv/bin/python benchmarks/run.py           # full sizes
    .venv/bin/python benchmarks/run.py --quick   # tiny sizes (the smoke test runs it)

Every case is repeated at least 5 times (median and min); tiny hits are timed call by call
(per-call median over >= 1000 calls in a full run). One table per case is printed, with
ratios and a PASS/MISS column against the targets of issue 6, and everything is written to
benchmarks/results/latest.json (or --out). Caches live in a temporary folder that is removed
at the end; only the built catalog of the catalog_scale case is kept under benchmarks/results/
so that a rerun does not rebuild it.

The cases are modules in benchmarks/cases (see harness.Case); CASES below is the registry.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout, installed or not
    sys.path.insert(0, str(ROOT))

from benchmarks import data  # noqa: E402  (needs ROOT on sys.path)
from benchmarks.cases import (  # noqa: E402
    catalog_scale,
    cell_hit,
    file_hit,
    growth,
    hash_memory,
    hashing,
    input_hit,
    output_hit,
    sweep,
    tiny_hit,
)
from benchmarks.harness import (  # noqa: E402
    FULL,
    QUICK,
    RESULTS,
    Case,
    Context,
    machine_info,
    print_case,
    print_summary,
    run_case,
    write_results,
)

# The registry: cases run, and are numbered, in this order. input_hit reads a figure that
# hashing leaves in ctx.shared, so hashing comes first.
CASES: tuple[Case, ...] = (hashing, tiny_hit, input_hit, output_hit, cell_hit, catalog_scale,
                           hash_memory, sweep, growth, file_hit)
NAMES = [case.NAME for case in CASES]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (the smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json",
                        help="JSON results file (default benchmarks/results/latest.json)")
    parser.add_argument("--only", default=None,
                        help=f"comma-separated subset of cases: {', '.join(NAMES)}")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    only = set(args.only.split(",")) if args.only else set(NAMES)
    if unknown := only - set(NAMES):
        parser.error(f"unknown case(s): {', '.join(sorted(unknown))}")

    started = time.perf_counter()
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="taskcache-bench-"))
    os.environ.pop("TASKCACHE_DB_URL", None)  # before taskcache reads its settings
    import taskcache
    from benchmarks.internals import reset_runner

    info = machine_info()
    print(f"taskcache benchmarks ({'quick' if args.quick else 'full'} sizes) on {info['cpu']}, "
          f"{info['cores']} cores, Python {info['python']}, pandas {info['pandas']}, "
          f"pyarrow {info['pyarrow']}, joblib {info['joblib']}")
    ctx = Context(sizes=sizes, quick=args.quick, tmp=tmp)
    results, failed = {}, []
    try:
        t0 = time.perf_counter()
        ctx.data = data.build({need for case in CASES if case.NAME in only for need in case.NEEDS},
                              sizes)
        print(f"data built in {time.perf_counter() - t0:.1f} s; caches in {tmp}")
        for number, case in enumerate(CASES, 1):
            if case.NAME not in only:
                continue
            reset_runner()  # every case starts on a fresh runner and an empty cache
            taskcache.configure(cache_dir=tmp / f"cache-{case.NAME}")
            record = results[case.NAME] = run_case(case, ctx)
            if "error" in record:
                failed.append(case.NAME)
            print_case(number, record, args.quick)
            print(f"  ({record['seconds']:.1f} s)")
            sys.stdout.flush()
    finally:
        reset_runner()
        shutil.rmtree(tmp, ignore_errors=True)

    total = time.perf_counter() - started
    print_summary(results, args.quick, total)
    write_results(args.out, results, quick=args.quick, sizes=sizes, machine=info, total=total,
                  failed=failed)
    print(f"results written to {args.out}")
    if failed:
        print(f"FAILED cases: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
