"""Peak memory one hasher adds while hashing the numeric frame, measured in this process.

    python benchmarks/memory_probe.py HASHER ROWS REPEAT
    python -m benchmarks.memory_probe HASHER ROWS REPEAT     (from the repository root)

HASHER is one of ``taskcache``, ``joblib.hash``, ``floor xxh3``; the frame has ROWS rows and
every measurement is repeated REPEAT times. Prints one JSON line::

    {"rss": [bytes, ...], "traced": [bytes, ...], "method": "how RSS was measured",
     "calibration": [rss bytes, traced bytes]}

The hash_memory case runs it once per hasher in a fresh process, so that memory one hasher
freed (but the allocator kept) cannot hide another's peak. RSS catches what C libraries
allocate directly (Arrow), tracemalloc what goes through Python's allocator; calibration is
both measurements of a known 50 MB temporary, to show what each can see. Linux only (/proc).
"""

from __future__ import annotations

import gc
import json
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run by path from a checkout, installed or not
    sys.path.insert(0, str(ROOT))


def status(key: str) -> int:
    """A size field of /proc/self/status (VmRSS, VmHWM) in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def reset_hwm() -> bool:
    """Reset this process's VmHWM to its current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure(fn: Callable[[Any], Any], arg: Any, repeat: int) -> tuple[list[int], list[int], str]:
    """Peak bytes added by ``fn(arg)``, ``repeat`` times by RSS then ``repeat`` times by
    tracemalloc, and how RSS was measured."""
    rss, traced, method = [], [], "VmHWM reset via /proc/self/clear_refs"
    for _ in range(repeat):
        gc.collect()
        before = status("VmRSS")
        if reset_hwm():
            fn(arg)
            peak = status("VmHWM")
        else:  # no resettable high-water mark: sample VmRSS from a thread instead
            method = "VmRSS sampled every 0.2 ms"
            seen, done = [before], threading.Event()

            def sample(seen: list[int] = seen, done: threading.Event = done) -> None:
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


def known_50mb(_: Any) -> float:
    """Calibration: a 50 MB temporary that both measurements must see."""
    import numpy as np

    a = np.ones(50_000_000 // 8)
    a[::512] = 2.0  # touch every page, or RSS would not see it
    return float(a.sum())


def hasher(name: str) -> Callable[[Any], Any]:
    """The hash function called ``name`` (see the module docstring)."""
    if name == "taskcache":
        from benchmarks.internals import hash_value

        return hash_value
    if name == "joblib.hash":
        from joblib import hash as joblib_hash

        return joblib_hash
    if name == "floor xxh3":
        from benchmarks.cases.hashing import floor_hash

        return floor_hash
    raise SystemExit(f"unknown hasher {name!r}: taskcache, joblib.hash or 'floor xxh3'")


def main(argv: list[str]) -> None:
    from benchmarks.data import numeric_frame

    fn = hasher(argv[0])
    rows, repeat = int(argv[1]), int(argv[2])
    frame = numeric_frame(rows)
    fn(numeric_frame(100))  # imports and lazy setup outside the measurement
    rss, traced, method = measure(fn, frame, repeat)
    cal_rss, cal_traced, _ = measure(known_50mb, None, 1)
    print(json.dumps({"rss": rss, "traced": traced, "method": method,
                      "calibration": [cal_rss[0], cal_traced[0]]}))


if __name__ == "__main__":
    main(sys.argv[1:])
