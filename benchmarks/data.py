"""The values the benchmarks measure: frames, arrays, nested records, and big run catalogs.

Everything is generated from fixed seeds, so two runs measure the same values. ``build`` makes
the named values a set of cases asked for (their ``NEEDS``) before any case runs; the catalog
of the catalog_scale case is built on first use and kept under benchmarks/results/.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.harness import RESULTS, Sizes

# ---------------------------------------------------------------------------- frames and values


def numeric_frame(rows: int, cols: int = 10, seed: int = 0) -> Any:
    """rows x cols float64, one consolidated block (contiguous columns, as read_parquet gives)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame({f"c{i}": rng.random(rows) for i in range(cols)})


def string_frame(rows: int, dtype: Any = None, seed: int = 1) -> Any:
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


def float_array(n: int, seed: int = 3) -> Any:
    """A float64 ndarray of ``n`` random elements."""
    import numpy as np

    return np.random.default_rng(seed).random(n)


def records(n: int, seed: int = 2) -> list[dict[str, Any]]:
    """``n`` small nested dicts (numbers, strings, bools, lists, a dict), like parsed JSON."""
    rng = random.Random(seed)
    return [{"id": i, "name": f"user{i}", "score": rng.random(), "active": i % 3 == 0,
             "tags": ["a", "b"] if i % 2 else ["c"], "meta": {"rank": i % 100, "group": "g" + str(i % 7)}}
            for i in range(n)]


def frame_nbytes(frame: Any) -> int:
    """Bytes held by a frame's columns, strings included (not its index)."""
    return int(frame.memory_usage(deep=True, index=False).sum())


BUILDERS: dict[str, Callable[[Sizes], Any]] = {
    "numeric_frame": lambda sz: numeric_frame(sz.frame_rows),
    "str_default": lambda sz: string_frame(sz.str_rows),
    "str_object": lambda sz: string_frame(sz.str_rows, object),
    "str_pyarrow": lambda sz: string_frame(sz.str_rows, "string[pyarrow]"),
    "array": lambda sz: float_array(sz.array_elems),
    "records": lambda sz: records(sz.records),
}


def build(names: Iterable[str], sizes: Sizes) -> dict[str, Any]:
    """The values named (keys of BUILDERS) at ``sizes``, as a dict; ValueError for a name
    that is not one."""
    wanted = set(names)
    if unknown := wanted - BUILDERS.keys():
        raise ValueError(f"no builder for {', '.join(sorted(unknown))}")
    return {name: make(sizes) for name, make in BUILDERS.items() if name in wanted}


# ---------------------------------------------------------------------------- run catalogs


TASKS = ("load", "clean", "features", "train", "evaluate")
CATALOG_DATA_VERSION = 3  # bump when build_catalog changes: cached catalogs are rebuilt


def _sa_time(dt: datetime) -> str:
    """How SQLAlchemy's SQLite DateTime stores a (naive UTC) datetime."""
    return dt.strftime("%Y-%m-%d %H:%M:%S.%f")


def build_catalog(db: Path, n: int) -> dict[str, Any]:
    """A catalog of ``n`` runs on the real schema (taskcache's Catalog creates it), filled in
    bulk with sqlite3 executemany: distinct fingerprints, 5 tasks, 90% completed / 8% failed
    / 2% cancelled, one input and one artifact each, a tag on every 10th run, and the state
    history (pending, running, final) of every run. Fingerprints are
    ``xxh3_128_hexdigest(i.to_bytes(8, "little"))`` for run id ``i``; a run is completed when
    ``(i // 5) % 50 > 4``. Returns ``{"runs": n}``."""
    from xxhash import xxh3_128_hexdigest

    from benchmarks.internals import Catalog

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
    # rows written behind the Catalog's back: its summary table is rebuilt from them
    with Catalog(f"sqlite:///{db}") as catalog:
        catalog.rebuild_summary()
    return {"runs": n}


def _check_columns() -> None:
    """build_catalog writes the runs table positionally: fail loudly if the schema moved."""
    from benchmarks.internals import runs_table

    expected = ["id", "task", "kind", "fingerprint", "code_hash", "status", "created_at",
                "started_at", "finished_at", "duration", "source", "tags", "user_version",
                "error_type", "error_message", "traceback", "host", "pid", "env", "lease_owner",
                "lease_expires_at", "hit_count", "last_hit_at", "parent_run_id", "invalid_reason"]
    actual = [c.name for c in runs_table.columns]
    if actual != expected:
        raise RuntimeError(f"the runs table changed ({actual}); update build_catalog")


def catalog_dir(n: int) -> tuple[Path, float | None]:
    """The cached catalog folder for ``n`` runs under benchmarks/results/ (its ``catalog.db``),
    built when missing; and the seconds the build took, or None when it was reused."""
    from benchmarks.internals import SCHEMA_VERSION

    _check_columns()
    folder = RESULTS / f"catalog-{n}-schema{SCHEMA_VERSION}-data{CATALOG_DATA_VERSION}"
    if (folder / "BUILT").exists():
        return folder, None
    for stale in RESULTS.glob(f"catalog-{n}-*"):  # built by an older schema or build_catalog
        shutil.rmtree(stale, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
    # built under a private name and renamed, so a run killed halfway leaves no "BUILT" folder
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
