"""Zero-copy numpy columns for frames decoded from Arrow tables (used by ``_frame_codecs``).

``Table.to_pandas`` copies numeric columns into consolidated 2-D blocks (~20 ms for 200 MB).
A column that is one Arrow chunk without nulls, of an int/uint/float32/float64 type whose
recorded pandas dtype is that same numpy dtype, is instead wrapped as a writable 1-D numpy
array over memory it already lives in:

* Parquet (:func:`buffer_array`): the buffer Arrow allocated while decoding (mutable, owned
  by nothing else once the table is dropped);
* Arrow IPC (:class:`PrivateMap`): a private copy-on-write mapping of the file, so the
  column is backed by the page cache until written and writes never reach the file.

The frame then has one block per column (the other columns are views of the blocks
``to_pandas`` made for them), which slows pandas' row-wise operations (``df.sum(axis=1)``,
``df.values``...) a little and makes pandas warn about fragmentation beyond 100 blocks. So
this is done only for frames of at least ``MIN_ROWS`` rows, where the copy matters, and at
most ``MAX_COLUMNS`` columns; other frames are converted as a whole, as before. Every column
not wrapped (nulls, strings, categoricals, datetimes, bool, extension dtypes, several
chunks...) and the index go through ``to_pandas``, so their conversion is what it was.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable
from typing import Any

# (arrow chunk, numpy dtype) -> a writable array over the chunk's values, or None (no such
# array: the column goes through to_pandas)
ArrayOf = Callable[[Any, Any], Any]

# Below this many rows (1 MiB of float64 per column) copying costs little: keep the frame
# consolidated, as to_pandas makes it.
MIN_ROWS = 1 << 17
# Wider frames would come back as more blocks than this (pandas warns beyond 100).
MAX_COLUMNS = 64



def zero_copy_dtype(column: Any, recorded: str) -> Any:
    """The numpy dtype of a ChunkedArray that can be wrapped without copying, else None."""
    import numpy as np
    import pyarrow as pa

    kind = column.type
    if column.num_chunks != 1 or column.null_count:
        return None
    if not (pa.types.is_integer(kind) or pa.types.is_float32(kind) or pa.types.is_float64(kind)):
        return None
    dtype = np.dtype(kind.to_pandas_dtype())
    return dtype if dtype.name == recorded else None


def buffer_array(chunk: Any, dtype: Any) -> Any:
    """The values of ``chunk`` as a numpy array over its own (mutable) Arrow buffer."""
    import numpy as np

    buffer = chunk.buffers()[1]
    if buffer is None or not buffer.is_mutable:
        return None
    array = np.frombuffer(buffer, dtype=dtype, count=len(chunk),
                          offset=chunk.offset * dtype.itemsize)
    return array if array.flags.writeable else None


class PrivateMap:
    """A file mapped copy-on-write: reads come from the page cache, writes stay private.

    :attr:`buffer` is the whole file as a ``pyarrow.Buffer`` to read an IPC file from;
    :meth:`array` turns a chunk read from it into a writable numpy array over the mapping.
    The mapping lives as long as any such array (or Arrow buffer) does.
    """

    def __init__(self, mapped: mmap.mmap) -> None:
        import pyarrow as pa

        self.map = mapped  # from store.map_copy_on_write
        self.buffer = pa.py_buffer(self.map)

    def array(self, chunk: Any, dtype: Any) -> Any:
        import numpy as np

        buffer = chunk.buffers()[1]
        if buffer is None:
            return None
        start = buffer.address - self.buffer.address + chunk.offset * dtype.itemsize
        count = len(chunk)
        if start < 0 or start + count * dtype.itemsize > self.buffer.size:
            return None  # not in the file (e.g. a compressed body decoded elsewhere)
        return np.frombuffer(self.map, dtype=dtype, count=count, offset=start)


def frame_from_table(table: Any, dtypes: list[str], index_range: list[int] | None,
                     array_of: ArrayOf) -> Any:
    """``table.to_pandas()``, except that numeric columns without nulls are numpy arrays
    from ``array_of`` (no copy); None when the frame is too small or too wide for it, no
    column qualifies, or the table is not laid out as ``to_table`` writes it (the caller
    then converts the whole table).

    ``dtypes`` are the recorded pandas dtypes of the data columns, in order;
    ``index_range`` the recorded RangeIndex, if the index is one.
    """
    import pandas as pd

    if table.num_rows == 0 or table.num_rows < MIN_ROWS or len(dtypes) > MAX_COLUMNS:
        return None
    pandas_meta = table.schema.pandas_metadata or {}
    index_fields = {c for c in pandas_meta.get("index_columns", ()) if isinstance(c, str)}
    data = [i for i, name in enumerate(table.column_names) if name not in index_fields]
    if len(data) != len(dtypes) or table.num_columns - len(data) != len(index_fields):
        return None
    arrays: dict[int, Any] = {}
    for pos, (i, recorded) in enumerate(zip(data, dtypes, strict=True)):
        column = table.column(i)
        dtype = zero_copy_dtype(column, recorded)
        array = None if dtype is None else array_of(column.chunk(0), dtype)
        if array is not None:
            arrays[pos] = array
    if not arrays:
        return None
    taken = {data[pos] for pos in arrays}
    others = [i for i in range(table.num_columns) if i not in taken]
    if others:  # the other data columns and the index columns, converted as before
        rest = table.select(others).to_pandas()
        if rest.shape[1] != len(data) - len(arrays):
            return None
        index = rest.index
        converted = iter([rest.iloc[:, j].array for j in range(rest.shape[1])])
    else:
        if index_range is None or len(range(*index_range)) != table.num_rows:
            return None
        index = pd.RangeIndex(*index_range)
        converted = iter([])
    columns = {pos: arrays[pos] if pos in arrays else next(converted) for pos in range(len(data))}
    return pd.DataFrame(columns, index=index, copy=False)
