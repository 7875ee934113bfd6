"""The "parquet" and "arrow" codecs for pandas DataFrame and Series.

``can_encode`` decides by rules, before anything is written, whether a frame comes back
exactly (values, dtypes, index, column labels, names). The rules are an allow-list, checked
by property tests: anything they do not name is refused and the registry moves on (to
pickle when allowed). pandas, pyarrow and numpy are imported only when a frame is seen.

What is restored from our own metadata (schema key ``taskcache``), not from pyarrow's:
the column labels and their Index (str/object/int64/RangeIndex, name), the Series name,
object columns of strings (Arrow reads them back as ``str``), second-resolution datetimes
(Parquet has no seconds unit) and the ``freq`` of a DatetimeIndex/TimedeltaIndex.

Decoding wraps numeric columns without nulls as numpy arrays instead of copying them (see
``_frame_arrays``); every other column and the index go through ``Table.to_pandas``.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import re
from pathlib import Path
from typing import Any

from taskcache.codecs import frame_arrays as _frame_arrays
from taskcache.codecs import tagged_json as _json_codec
from taskcache.codecs.frame_arrays import ArrayOf, PrivateMap, buffer_array, frame_from_table
from taskcache.fileio import map_copy_on_write

META_KEY = b"taskcache"
SERIES_COLUMN = "__series__"
_INDEX_LEVEL = re.compile(r"__index_level_\d+__")
_MASKED = {f"{p}{n}" for p in ("Int", "UInt") for n in (8, 16, 32, 64)} | {
    "Float32", "Float64", "boolean",
}


def _exact_strs(values: Any, allow_none: bool = False) -> bool:
    """All values are exact ``str`` that UTF-8 can hold (lone surrogates cannot)."""
    for v in values:
        if type(v) is not str:
            if v is None and allow_none:
                continue
            return False
        if not v.isascii():
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True


def _dtype_problem(dtype: Any, values: Any, fmt: str, *, in_index: bool = False) -> str | None:
    """Why a column/index level of ``dtype`` would not round-trip, or None if it will."""
    import numpy as np
    import pandas as pd

    if isinstance(dtype, np.dtype):
        if dtype.kind in "biuf":
            return None
        if dtype.kind in "mM":
            return None
        if dtype.kind == "O":
            values = np.asarray(values, dtype=object)
            if len(values) == 0 and not in_index:
                return None
            if _exact_strs(values):
                return None
            if not in_index and all(v is None for v in values):
                return None
            return "object values that are not all str (mixed, bytes, None/NaN, objects...)"
        return f"numpy dtype {dtype} not supported by Arrow"
    if isinstance(dtype, pd.StringDtype):
        if in_index and str(dtype) != "str":  # comes back as "str", <NA> as NaN
            return f"index level of dtype {dtype}"
        if dtype.storage == "python" and not _exact_strs(
            values.dropna() if hasattr(values, "dropna") else values
        ):
            return "string column with values that are not UTF-8 str"
        return None
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.name in _MASKED:
        if in_index and dtype.name.startswith("Float"):
            # an index level comes back as float64 and is converted back, which would turn
            # a NaN into <NA>: the two are different values in a Float64 array
            return "nullable float index level"
        return None
    if isinstance(dtype, pd.PeriodDtype):
        return None
    if isinstance(dtype, pd.IntervalDtype):
        sub = dtype.subtype
        if sub is None or sub.kind not in "iufmM" or isinstance(sub, pd.DatetimeTZDtype):
            return f"interval subtype {sub}"
        return None
    if isinstance(dtype, pd.DatetimeTZDtype):
        if type(dtype.tz).__module__ not in ("zoneinfo", "datetime"):
            return f"time zone of type {type(dtype.tz).__qualname__}"
        return None
    if isinstance(dtype, pd.CategoricalDtype):
        cats = dtype.categories
        if cats.dtype.kind == "O" and not _exact_strs(cats):
            return "categories that are not all str"
        if fmt == "parquet" and not (cats.dtype.kind == "O" or isinstance(cats.dtype, pd.StringDtype)):
            return "non-string categories (Parquet returns them as plain values)"
        if len(values) == 0:
            return "empty categorical (no rows, no dictionary written: categories lost)"
        if isinstance(cats.dtype, pd.CategoricalDtype):
            return "nested categorical"
        return _dtype_problem(cats.dtype, cats, fmt, in_index=True)
    return f"dtype {dtype} is not on the exact round-trip list"


def _label_problem(name: Any) -> str | None:
    if name is None or type(name) is str:
        return None
    return f"name {name!r} is not a str or None"


def _index_problem(index: Any, fmt: str) -> str | None:
    import pandas as pd

    if type(index) is pd.RangeIndex:
        return _label_problem(index.name)
    if isinstance(index, pd.MultiIndex):
        names = [n for n in index.names if n is not None]
        if len(set(names)) != len(names):
            return "duplicate MultiIndex level names"
        for level in index.levels:
            if level.dtype == object or isinstance(level, pd.DatetimeIndex | pd.TimedeltaIndex):
                return "MultiIndex level of object or datetime dtype"
            if isinstance(level.dtype, pd.CategoricalDtype):
                return "categorical MultiIndex level"
            if level.hasnans:  # a missing value stored as a level (groupby(dropna=False)),
                # which comes back as a missing code: another index, shown otherwise
                return "MultiIndex level holding a missing value"
            problem = _dtype_problem(level.dtype, level, fmt, in_index=True)
            if problem:
                return problem
        return next(filter(None, map(_label_problem, index.names)), None)
    if type(index) not in (pd.Index, pd.DatetimeIndex, pd.TimedeltaIndex, pd.CategoricalIndex):
        return f"index of type {type(index).__qualname__}"
    return _label_problem(index.name) or _dtype_problem(index.dtype, index, fmt, in_index=True)


def _columns_problem(columns: Any) -> str | None:
    import pandas as pd

    if type(columns) is pd.RangeIndex:
        return _label_problem(columns.name)
    if type(columns) is not pd.Index:
        return f"column labels of type {type(columns).__qualname__}"
    if not columns.is_unique:
        return "duplicate column labels"
    if columns.dtype == "int64":
        pass
    elif columns.dtype.kind == "O" or isinstance(columns.dtype, pd.StringDtype):
        if not _exact_strs(columns):
            return "column labels that are not all str or all int"
        if pd.api.types.pandas_dtype(str(columns.dtype)) != columns.dtype:
            return f"column label dtype {columns.dtype!r}"
    else:
        return f"column labels of dtype {columns.dtype}"
    return _label_problem(columns.name)


def frame_problem(value: Any, fmt: str) -> str | None:
    """Why ``value`` would not round-trip exactly through ``fmt``; None when it will."""
    import pandas as pd

    if type(value) is pd.Series:
        if not _json_codec.is_exact_json(value.name):
            return "Series name is not exactly JSON-storable"
        frame = value.to_frame(SERIES_COLUMN)
    elif type(value) is pd.DataFrame:
        frame = value
    else:
        return f"{type(value).__qualname__} is not exactly a DataFrame or Series"
    if value.attrs:
        return "non-empty .attrs"
    if not value.flags.allows_duplicate_labels:
        return "flags.allows_duplicate_labels is False"
    problem = _columns_problem(frame.columns) or _index_problem(frame.index, fmt)
    if problem:
        return problem
    names = [str(c) for c in frame.columns]
    index_names = [n for n in frame.index.names if n is not None]
    if len(set(names)) != len(names) or set(names) & set(index_names):
        return "column labels collide with each other or with index names"
    if any(_INDEX_LEVEL.fullmatch(n) for n in names + index_names):
        return "a label looks like pyarrow's __index_level_N__"
    for i, dtype in enumerate(frame.dtypes):
        problem = _dtype_problem(dtype, frame.iloc[:, i], fmt)
        if problem:
            return f"column {names[i]!r}: {problem}"
    return None


def _metadata(value: Any, frame: Any) -> dict[str, Any]:
    import pandas as pd

    cols, index = frame.columns, frame.index
    if type(cols) is pd.RangeIndex:
        columns: dict[str, Any] = {"range": [cols.start, cols.stop, cols.step]}
    else:
        columns = {"labels": list(cols), "dtype": str(cols.dtype)}
    columns["name"] = cols.name
    meta: dict[str, Any] = {
        "version": 1,
        "kind": "series" if type(value) is pd.Series else "frame",
        "columns": columns,
        "dtypes": [str(d) for d in frame.dtypes],
        "index_dtype": None if isinstance(index, pd.MultiIndex) else str(index.dtype),
        # pyarrow restores index levels of nullable dtypes (Int64 with <NA>) as float/object
        "index_dtypes": [str(d) for d in index.dtypes] if isinstance(index, pd.MultiIndex) else None,
        "freq": getattr(index, "freqstr", None),
        "index_names": list(index.names),
        # a frame without columns keeps no rows in Arrow: its RangeIndex is restored from here
        "range": [index.start, index.stop, index.step] if type(index) is pd.RangeIndex else None,
    }
    if meta["kind"] == "series":
        meta["name"] = _json_codec.to_jsonable(value.name)
    return meta


def to_table(value: Any) -> Any:
    import pandas as pd
    import pyarrow as pa

    frame = value.to_frame(SERIES_COLUMN) if type(value) is pd.Series else value
    meta = _metadata(value, frame)
    flat = frame.set_axis(pd.Index([str(c) for c in frame.columns], dtype=object), axis=1)
    table = pa.Table.from_pandas(flat, preserve_index=None)
    extra = {META_KEY: json.dumps(meta, allow_nan=False).encode()}
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})


def _restore_dtype(values: Any, recorded: str) -> Any:
    if str(values.dtype) == recorded:
        return values
    if recorded == "object" or recorded.startswith("datetime64[s") or recorded in _MASKED:
        return values.astype(recorded)
    raise ValueError(f"stored frame came back as {values.dtype}, expected {recorded}")


def from_table(table: Any, array_of: ArrayOf | None = None) -> Any:
    """The value ``to_table`` was given; with ``array_of``, numeric columns come without a
    copy (see ``_frame_arrays.frame_from_table``)."""
    import pandas as pd

    meta = json.loads((table.schema.metadata or {})[META_KEY])
    frame = None
    if array_of is not None:
        frame = frame_from_table(table, meta["dtypes"], meta.get("range"), array_of)
    if frame is None:
        frame = table.to_pandas()
    if meta.get("range") is not None and frame.shape[1] == 0:
        frame = pd.DataFrame(index=pd.RangeIndex(*meta["range"], name=frame.index.name))
    cols = meta["columns"]
    if "range" in cols:
        frame.columns = pd.RangeIndex(*cols["range"], name=cols["name"])
    else:
        frame.columns = pd.Index(cols["labels"], dtype=cols["dtype"], name=cols["name"])
    for i, recorded in enumerate(meta["dtypes"]):
        if str(frame.dtypes.iloc[i]) != recorded:
            frame.isetitem(i, _restore_dtype(frame.iloc[:, i], recorded))
    if meta["index_dtype"] is not None:
        index = _restore_dtype(frame.index, meta["index_dtype"])
        if meta["freq"] is not None:
            index = type(index)(index, freq=meta["freq"])
        frame.index = index
    levels = meta.get("index_dtypes")
    if levels is not None and [str(d) for d in frame.index.dtypes] != levels:
        old = frame.index
        frame.index = pd.MultiIndex.from_arrays(
            [_restore_dtype(old.get_level_values(i), d) for i, d in enumerate(levels)], names=old.names)
    frame.index.names = meta["index_names"]  # pyarrow turns "" into None
    if meta["kind"] == "series":
        series = frame.iloc[:, 0]
        series.name = _json_codec.from_jsonable(meta["name"])
        return series
    return frame


# Parquet's default row groups (1Mi rows) would read back as many chunks per column, which
# to_pandas concatenates (a copy) and the zero-copy path skips; one row group per file up to
# this many rows instead.
ROW_GROUP_ROWS = 64 * 2**20


# bytes of a float column compressed on trial to decide whether compressing it pays
SAMPLE_BYTES = 1 << 20


def _read_parquet(source: Any) -> Any:
    with source:
        table = source.read()
    return from_table(table, buffer_array)


def _compression(table: Any) -> dict[str, str]:
    """Snappy for every column, except floating-point columns whose values do not compress
    (measurement data, random numbers): stored plain, they decode faster."""
    import pyarrow as pa

    chosen = {}
    for field, column in zip(table.schema, table.columns, strict=True):
        chosen[field.name] = "snappy"
        if pa.types.is_floating(field.type) and column.num_chunks and len(column) >= 4096:
            values = column.chunk(0).buffers()[1]
            sample = values.slice(0, min(values.size, SAMPLE_BYTES))
            if pa.compress(sample, "snappy").size > 0.9 * sample.size:
                chosen[field.name] = "none"
    return chosen


class ParquetCodec:
    """DataFrame/Series as Parquet (the default for frames: portable, snappy-compressed).

    Written as one row group (up to ``ROW_GROUP_ROWS`` rows), so each column reads back as
    one chunk, with dictionary encoding only for columns that are not floating point (random
    floats gain nothing from it). Read with a memory map; in large frames, numeric columns
    without nulls then become writable numpy arrays over the buffers Parquet decoded into,
    without the copy ``to_pandas`` makes (zero-copy, one block per column; see
    ``_frame_arrays``).
    """

    name = "parquet"
    hash_exact = True  # decoded values hash as the originals (tests/codecs checks it)
    suffix = ".parquet"
    unsafe = False
    fmt = "parquet"

    def can_encode(self, value: Any) -> bool:
        return frame_problem(value, self.fmt) is None

    def encode(self, value: Any, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = to_table(value)
        rows = min(max(table.num_rows, 1), ROW_GROUP_ROWS)
        dictionary = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
        pq.write_table(table, str(path), row_group_size=rows, use_dictionary=dictionary,
                       compression=_compression(table))

    def decode(self, path: Path) -> Any:
        import pyarrow.parquet as pq

        return _read_parquet(pq.ParquetFile(str(path), memory_map=True))

    def decode_mapped(self, mapped: mmap.mmap) -> Any:
        """The same from a file the store already mapped (and checked)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        return _read_parquet(pq.ParquetFile(pa.py_buffer(mapped)))


class ArrowCodec(ParquetCodec):
    """DataFrame/Series as an uncompressed Arrow IPC file, memory-mapped (faster, opt-in).

    Written as one record batch where the columns allow it, so each column reads back as
    one chunk. Read through a private copy-on-write memory map of the file: in large frames,
    numeric columns without nulls are writable numpy arrays over that mapping (zero-copy), so
    the frame is backed by the page cache until it is written to; writes go to private
    copies of the pages and never reach the file. Other columns go through ``to_pandas``.
    Files too small for that are read as before (read-only map, ``to_pandas``).
    """

    name = "arrow"
    hash_exact = True  # decoded values hash as the originals (tests/codecs checks it)
    suffix = ".arrow"
    fmt = "arrow"

    def encode(self, value: Any, path: Path) -> None:
        import pyarrow as pa

        table = to_table(value)
        if any(column.num_chunks > 1 for column in table.columns):
            with contextlib.suppress(pa.ArrowException):  # e.g. > 2 GiB of strings: keep chunks
                table = table.combine_chunks()
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)

    def decode(self, path: Path) -> Any:
        import pyarrow as pa

        # a frame worth wrapping has MIN_ROWS rows of a numeric column: at least as many bytes
        size = Path(path).stat().st_size
        if size == 0 or size < _frame_arrays.MIN_ROWS:  # (and mmap refuses empty files)
            with pa.memory_map(str(path), "r") as source:
                return from_table(pa.ipc.open_file(source).read_all())
        return self.decode_mapped(map_copy_on_write(path)[0])

    def decode_mapped(self, mapped: mmap.mmap) -> Any:
        """The same from a copy-on-write mapping the store already made (and checked)."""
        import pyarrow as pa

        private = PrivateMap(mapped)
        return from_table(pa.ipc.open_file(private.buffer).read_all(), private.array)
