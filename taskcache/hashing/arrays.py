"""Content hashers for numpy, pandas and pyarrow.

Numeric buffers go straight into xxh3 as they are: a NaN is hashed by its bits, so two NaNs
with different bits (``np.nan`` and the ``-nan`` that ``0.0 / 0.0`` gives on x86) make two
keys -- a false miss, never a wrong hit -- and hashing costs one read of the memory. numpy,
pandas and pyarrow are imported only when a value of theirs arrives, by ``feed_library``
which the core calls for types from those packages.
"""

from __future__ import annotations

from typing import Any

from xxhash import xxh3_128, xxh3_128_digest

from taskcache.describe import type_name
from taskcache.hashing.core import (
    EXACT,
    T_STR,
    U64,
    Ctx,
    Unhashable,
    feed,
    feed_items,
    feed_str,
    tag,
)
from taskcache.hashing.memo import unchanging_array_digest

T_NDARRAY, T_MASKED, T_NPSCALAR, T_DTYPE = (tag(n) for n in ("ndarray", "masked", "np", "dtype"))
T_OBJARR, T_STRS, T_SUBARRAY = tag("objarray"), tag("strings"), tag("ndsubclass")
T_DF, T_SERIES, T_INDEX, T_RANGEIDX = (tag(n) for n in ("df", "series", "index", "rangeindex"))
T_MULTIIDX, T_PDARRAY, T_CATEG, T_MASKEDPD = (
    tag(n) for n in ("multiindex", "pdarray", "cat", "na")
)
T_AARRAY, T_ATABLE, T_ACOL, T_ASCALAR = (tag(n) for n in ("arrow", "atable", "acol", "ascalar"))


# --------------------------------------------------------------------------- numpy


def _dtype_key(dtype: Any) -> str:
    return dtype.str if dtype.fields is None and dtype.subdtype is None else str(dtype.descr)


def buffer_digest(arr: Any) -> bytes:
    """xxh3_128 digest of the raw bytes of an array, in C order (copied only when the array
    is not C-contiguous)."""
    import numpy as np

    return xxh3_128_digest(np.ascontiguousarray(arr).reshape(-1).view(np.uint8))


def feed_ndarray(h: Any, arr: Any, ctx: Ctx) -> None:
    import numpy as np

    if isinstance(arr, np.ma.MaskedArray):
        h.update(T_MASKED)
        feed_ndarray(h, np.ma.getdata(arr), ctx)
        feed_ndarray(h, np.ma.getmaskarray(arr), ctx)
        return
    if type(arr) not in (np.ndarray, np.memmap):
        h.update(T_SUBARRAY)
        feed_str(h, type_name(type(arr)))
    h.update(T_NDARRAY)
    feed_str(h, _dtype_key(arr.dtype))
    h.update(U64(arr.ndim) + b"".join(U64(n) for n in arr.shape))
    if arr.dtype == object:
        feed_object_array(h, arr.ravel(), ctx)
    elif arr.dtype.hasobject:  # structured dtype with object fields
        feed(h, arr.tolist(), ctx)
    else:
        digest = unchanging_array_digest(arr, buffer_digest)  # None: it may change, hash it
        h.update(U64(arr.nbytes) + (digest or buffer_digest(arr)))


def feed_object_array(h: Any, flat: Any, ctx: Ctx) -> None:
    """Object arrays: all-str arrays go through Arrow's string layout, others item by item."""
    h.update(T_OBJARR + U64(len(flat)))
    if len(flat) >= 8 and set(map(type, flat)) == {str}:
        import pyarrow as pa

        try:
            strings = pa.array(flat, type=pa.large_string())
        except (pa.ArrowException, UnicodeError):  # lone surrogates
            pass
        else:
            column = _Column(strings.type)
            column.update(strings, ctx)
            h.update(T_STRS + column.digest())
            return
    feed_items(h, flat, ctx)


def _make_scalar_feeder(dtype: Any) -> Any:
    """Hash numpy scalars of one fixed dtype like ``_feed_numpy`` does, without its per-call
    overhead (lists of numpy floats are common)."""
    key = _dtype_key(dtype).encode()
    prefix = T_NPSCALAR + T_STR + U64(len(key)) + key  # what feed_str would write

    def run(h: Any, value: Any, ctx: Ctx) -> None:
        h.update(prefix + value.tobytes())

    return run


def _feed_numpy(h: Any, value: Any, ctx: Ctx) -> bool:
    import numpy as np

    if isinstance(value, np.ndarray):
        feed_ndarray(h, value, ctx)
    elif isinstance(value, np.generic):
        kind = value.dtype.kind
        if kind in "biufc" and type(value) not in EXACT:  # fixed dtype per type: fast path
            EXACT[type(value)] = _make_scalar_feeder(value.dtype)
        h.update(T_NPSCALAR)
        feed_str(h, _dtype_key(value.dtype))
        h.update(np.asarray(value).tobytes())
    elif isinstance(value, np.dtype):
        h.update(T_DTYPE)
        feed_str(h, _dtype_key(value))
    else:
        return False
    return True


# --------------------------------------------------------------------------- pandas


def feed_index(h: Any, index: Any, ctx: Ctx) -> None:
    import pandas as pd

    if isinstance(index, pd.RangeIndex):
        h.update(T_RANGEIDX)
        feed(h, (index.start, index.stop, index.step), ctx)
    elif isinstance(index, pd.MultiIndex):
        h.update(T_MULTIIDX + U64(index.nlevels))
        for level in range(index.nlevels):
            feed_pandas_array(h, index.get_level_values(level).array, ctx)
    else:
        h.update(T_INDEX)
        feed_pandas_array(h, index.array, ctx)
    feed(h, list(index.names), ctx)


def feed_pandas_array(h: Any, arr: Any, ctx: Ctx) -> None:
    """Values of a Series, Index or column, by dtype and content (never pickled)."""
    import numpy as np
    import pandas as pd

    h.update(T_PDARRAY)
    feed_str(h, str(arr.dtype))
    if isinstance(arr, np.ndarray):
        feed_ndarray(h, arr, ctx)
    elif isinstance(arr, pd.arrays.NumpyExtensionArray):
        feed_ndarray(h, arr.to_numpy(), ctx)
    elif isinstance(
        arr, (pd.arrays.DatetimeArray, pd.arrays.TimedeltaArray, pd.arrays.PeriodArray)
    ):
        feed_ndarray(h, np.asarray(arr.asi8), ctx)  # int64 ticks; unit and tz are in the dtype
    elif isinstance(arr, pd.Categorical):
        h.update(T_CATEG + (b"o" if arr.ordered else b"u"))
        feed_index(h, arr.categories, ctx)
        feed_ndarray(h, arr.codes, ctx)
    elif isinstance(arr, pd.arrays.ArrowExtensionArray):
        feed_arrow_columns(h, [arr.__arrow_array__()], ctx)
    elif hasattr(arr, "_data") and hasattr(arr, "_mask"):  # Int64, boolean, Float64...
        data, mask = arr._data, arr._mask
        if mask.any():  # values under NA are arbitrary
            data = data.copy()
            data[mask] = 0
        h.update(T_MASKEDPD)
        feed_ndarray(h, data, ctx)
        feed_ndarray(h, mask, ctx)
    elif isinstance(arr, pd.arrays.IntervalArray):
        feed_str(h, arr.closed)
        feed_pandas_array(h, arr.left.array, ctx)
        feed_pandas_array(h, arr.right.array, ctx)
    else:  # python-backed strings, sparse, third-party extension arrays
        feed_object_array(h, np.asarray(arr, dtype=object).ravel(), ctx)


def _feed_pandas(h: Any, value: Any, ctx: Ctx) -> bool:
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        h.update(T_DF)
        feed_index(h, value.columns, ctx)
        feed_index(h, value.index, ctx)
        h.update(U64(value.shape[1]))
        for name, column in value.items():
            try:
                feed_pandas_array(h, column.array, ctx)
            except Unhashable as exc:
                exc.path.append(f"[{name!r}]")
                raise
    elif isinstance(value, pd.Series):
        h.update(T_SERIES)
        feed(h, value.name, ctx)
        feed_index(h, value.index, ctx)
        feed_pandas_array(h, value.array, ctx)
    elif isinstance(value, pd.Index):
        feed_index(h, value, ctx)
    elif isinstance(value, pd.api.extensions.ExtensionArray):
        feed_pandas_array(h, value, ctx)
    else:
        return False
    return True


# --------------------------------------------------------------------------- pyarrow


class _Column:
    """Streaming hash of one logical Arrow column. Each part (null positions, lengths,
    values, children) has its own xxh3 state fed chunk after chunk, so the digest does not
    depend on how the column is chunked or sliced."""

    def __init__(self, typ: Any) -> None:
        import pyarrow as pa

        t = pa.types
        self.type, self.rows = typ, 0
        self.nulls, self.lengths, self.data = xxh3_128(), xxh3_128(), xxh3_128()
        self.children: list[_Column] = []
        if t.is_null(typ):
            self.kind = "null"
        elif t.is_boolean(typ):
            self.kind = "bool"
        elif (
            t.is_string(typ) or t.is_binary(typ) or t.is_large_string(typ) or t.is_large_binary(typ)
        ):
            self.kind = "binary"
        elif t.is_dictionary(typ):
            self.kind, self.children = "dict", [_Column(typ.value_type)]
        elif t.is_list(typ) or t.is_large_list(typ) or t.is_fixed_size_list(typ):
            self.kind, self.children = "list", [_Column(typ.value_type)]
        elif t.is_struct(typ):
            self.kind = "struct"
            self.children = [_Column(typ.field(i).type) for i in range(typ.num_fields)]
        elif _bit_width(typ) % 8 == 0:
            self.kind = "fixed"
        else:
            self.kind = "other"

    def update(self, chunk: Any, ctx: Ctx) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        n, mask = len(chunk), None
        if chunk.null_count:
            mask = chunk.is_null().to_numpy(zero_copy_only=False)
            self.nulls.update(np.flatnonzero(mask).astype(np.int64) + self.rows)
        self.rows += n
        if n == 0 or self.kind == "null":
            return
        if self.kind == "fixed":
            width = _bit_width(self.type) // 8
            buf = chunk.buffers()[1]
            raw = np.frombuffer(buf, np.uint8, n * width, chunk.offset * width)
            if mask is not None:
                raw = raw.reshape(n, width).copy()
                raw[mask] = 0
            self.data.update(raw)
        elif self.kind == "bool":
            self.data.update(
                pc.fill_null(chunk, False).to_numpy(zero_copy_only=False).view(np.uint8)
            )
        elif self.kind == "binary":
            if mask is not None:
                empty = (
                    b""
                    if pa.types.is_binary(self.type) or pa.types.is_large_binary(self.type)
                    else ""
                )
                chunk = pc.fill_null(chunk, pa.scalar(empty, type=self.type))
            large = pa.types.is_large_string(self.type) or pa.types.is_large_binary(self.type)
            itemsize = 8 if large else 4
            bufs = chunk.buffers()
            offsets = np.frombuffer(bufs[1], f"<i{itemsize}", n + 1, chunk.offset * itemsize)
            self.lengths.update(np.diff(offsets))
            if offsets[-1] > offsets[0]:
                self.data.update(memoryview(bufs[2])[offsets[0] : offsets[-1]])
        elif self.kind == "dict":
            self.children[0].update(chunk.dictionary_decode(), ctx)
        elif self.kind == "list":
            lengths = pc.fill_null(pc.list_value_length(chunk), 0).to_numpy(zero_copy_only=False)
            self.lengths.update(lengths.astype(np.int64))
            self.children[0].update(chunk.flatten(), ctx)
        elif self.kind == "struct":
            for child, part in zip(self.children, chunk.flatten(), strict=True):
                child.update(part, ctx)
        else:  # maps, unions, extension types...: item by item, still chunk-independent
            for item in chunk.to_pylist():
                feed(self.data, item, ctx)

    def digest(self) -> bytes:
        h = xxh3_128(T_ACOL)
        feed_str(h, str(self.type))
        h.update(U64(self.rows) + self.nulls.digest() + self.lengths.digest() + self.data.digest())
        for child in self.children:
            h.update(child.digest())
        return h.digest()


def _bit_width(typ: Any) -> int:
    try:
        return typ.bit_width
    except ValueError:  # not a fixed-width type
        return -1


def feed_arrow_columns(h: Any, columns: list[Any], ctx: Ctx) -> None:
    """Arrays or ChunkedArrays, each hashed as one logical column."""
    import pyarrow as pa

    h.update(U64(len(columns)))
    for col in columns:
        column = _Column(col.type)
        for chunk in col.chunks if isinstance(col, pa.ChunkedArray) else [col]:
            column.update(chunk, ctx)
        h.update(column.digest())


def _feed_arrow(h: Any, value: Any, ctx: Ctx) -> bool:
    import pyarrow as pa

    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        h.update(T_AARRAY)
        feed_arrow_columns(h, [value], ctx)
    elif isinstance(value, (pa.Table, pa.RecordBatch)):
        h.update(T_ATABLE)
        feed(h, list(value.column_names), ctx)
        feed_arrow_columns(h, list(value.columns), ctx)
    elif isinstance(value, pa.Scalar):
        h.update(T_ASCALAR)
        feed_str(h, str(value.type))
        feed(h, value.as_py(), ctx)
    else:
        return False
    return True


def feed_library(h: Any, value: Any, ctx: Ctx) -> bool:
    """numpy/pandas/pyarrow values; False when the value is none of the known kinds."""
    module = type(value).__module__
    if module.startswith("numpy"):
        return _feed_numpy(h, value, ctx)
    if module.startswith("pandas"):
        return _feed_pandas(h, value, ctx)
    if module.startswith("pyarrow"):
        return _feed_arrow(h, value, ctx)
    return False
