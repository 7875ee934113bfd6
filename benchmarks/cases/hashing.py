"""Case 1: content hashing, taskcache against joblib.hash and a bare xxh3 over the buffers."""

from __future__ import annotations

import pickle
import statistics
from typing import Any

from benchmarks.data import frame_nbytes
from benchmarks.harness import (
    CaseResult,
    Context,
    fmt_bytes,
    round_robin,
    speedup,
    stats,
    target,
)

NAME = "hashing"
TITLE = "content hashing: taskcache vs joblib.hash vs bare xxh3 (floor)"
NEEDS = ("numeric_frame", "str_default", "str_object", "str_pyarrow", "array", "records")


def floor_hash(value: Any) -> str:
    """xxh3_128 over the value's raw buffers, no tags, no dtype checks: what memory bandwidth
    allows. Frames: each column's numpy buffer, or its Arrow buffers (an object column is
    converted to Arrow first, the conversion included). Anything else: pickle + xxh3.
    Returns the hex digest."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    from xxhash import xxh3_128

    h = xxh3_128()
    if isinstance(value, np.ndarray):
        h.update(np.ascontiguousarray(value).reshape(-1).view(np.uint8))
    elif isinstance(value, pd.DataFrame):
        for name in value.columns:
            arr = value[name].array
            if hasattr(arr, "__arrow_array__") and not isinstance(arr, pd.arrays.NumpyExtensionArray):
                chunked = arr.__arrow_array__()
            elif value[name].dtype == object:
                chunked = pa.chunked_array([pa.array(value[name].to_numpy(), type=pa.large_string())])
            else:
                h.update(np.ascontiguousarray(value[name].to_numpy()).view(np.uint8))
                continue
            for chunk in chunked.chunks:
                for buf in chunk.buffers():
                    if buf is not None:
                        h.update(buf)
    else:
        h.update(pickle.dumps(value, protocol=5))
    return h.hexdigest()


def run(ctx: Context) -> CaseResult:
    """Every value hashed by each hasher; leaves taskcache's median for the numeric frame in
    ``ctx.shared["hash_numeric_median"]``."""
    import joblib

    from benchmarks.internals import hash_value

    d, sz = ctx.data, ctx.sizes
    frame = d["numeric_frame"]
    datasets = [
        ("numeric frame", frame, frame_nbytes(frame)),
        ("string frame, object", d["str_object"], frame_nbytes(d["str_object"])),
        ("string frame, str (default)", d["str_default"], frame_nbytes(d["str_default"])),
        ("string frame, string[pyarrow]", d["str_pyarrow"], frame_nbytes(d["str_pyarrow"])),
        ("ndarray", d["array"], d["array"].nbytes),
        ("nested records", d["records"], None),
    ]
    rows, ratios, targets, medians = [], [], [], {}
    for label, value, nbytes in datasets:
        if nbytes is None:
            nbytes = len(pickle.dumps(value, protocol=5))
        assert hash_value(value) == hash_value(value), label
        hashers = {"taskcache": hash_value, "joblib.hash": joblib.hash, "floor xxh3": floor_hash}
        # in turn, call by call: a slow spell of the machine is shared out between them
        timings = round_robin({who: (lambda fn=fn, value=value: fn(value))
                               for who, fn in hashers.items()}, max(sz.repeat, 11))
        for who, samples in timings.items():
            med = statistics.median(samples)
            medians[(label, who)] = med
            rows.append(stats(f"{label} ({fmt_bytes(nbytes)}): {who}", samples,
                              gbps=nbytes / med / 1e9, bytes=nbytes))
        ratios.append(speedup(f"{label}: taskcache", medians[(label, "taskcache")],
                              medians[(label, "joblib.hash")], "joblib.hash"))
        ratios.append(f"{label}: taskcache takes {medians[(label, 'taskcache')] / medians[(label, 'floor xxh3')]:.1f}x the floor")
    for label in ("numeric frame", "ndarray"):
        r = medians[(label, "taskcache")] / medians[(label, "floor xxh3")]
        targets.append(target(f"{label} hashed at <= 1.2x the bare xxh3 floor", f"{r:.2f}x",
                              r <= 1.2, r))
    ctx.shared["hash_floor_median"] = medians[("numeric frame", "floor xxh3")]
    num_gbps = frame_nbytes(frame) / medians[("numeric frame", "taskcache")] / 1e9
    ctx.shared["hash_numeric_median"] = medians[("numeric frame", "taskcache")]
    targets.append(target("numeric frame hashed at >= 10 GB/s", f"{num_gbps:.1f} GB/s",
                          num_gbps >= 10, num_gbps))
    pyarrow_label = "string frame, string[pyarrow]"
    r = medians[(pyarrow_label, "joblib.hash")] / medians[(pyarrow_label, "taskcache")]
    targets.append(target("string[pyarrow] frame >= 20x faster than joblib.hash", f"{r:.1f}x",
                          r >= 20, r))
    notes = ["floor: xxh3_128 over each column's numpy buffer / Arrow buffers; for the object "
             "column it includes converting it to Arrow, for nested records it is "
             "pickle.dumps + xxh3 (GB/s there are per pickled byte)"]
    return CaseResult(rows=rows, ratios=ratios, targets=targets, notes=notes)
