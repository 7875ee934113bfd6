"""Decoding frames without copying numeric columns: exact, mutable, and the file untouched.

Only frames of at least ``MIN_ROWS`` rows are decoded that way; most tests lower that to 0,
so that small frames take the zero-copy path too (``small_frames_too``).
"""

from __future__ import annotations

import hashlib
import mmap
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskcache.codecs import frame_arrays as _frame_arrays
from taskcache.codecs import frames as _frame_codecs
from taskcache.codecs.frames import ArrowCodec, ParquetCodec, to_table

CODECS = [ParquetCodec(), ArrowCodec()]
MIN_ROWS = _frame_arrays.MIN_ROWS
NUMERIC = ["f64", "f32", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64"]


@pytest.fixture(autouse=True)
def small_frames_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_frame_arrays, "MIN_ROWS", 0)


def mixed(n: int, *, categorical: bool = True) -> pd.DataFrame:
    """Columns that decode without a copy (NUMERIC) between ones that go through to_pandas."""
    rng = np.random.default_rng(n)
    cols: dict[str, Any] = {"f64": rng.random(n)}
    cols["str"] = pd.Series([f"s{i}" for i in range(n)], dtype="str")
    cols["f32"] = rng.random(n).astype("float32")
    cols["bool"] = rng.random(n) > 0.5
    for bits in (8, 16, 32, 64):
        cols[f"i{bits}"] = rng.integers(-100, 100, n).astype(f"int{bits}")
        cols[f"u{bits}"] = rng.integers(0, 200, n).astype(f"uint{bits}")
    cols["obj"] = pd.Series([f"o{i}" for i in range(n)], dtype=object)
    cols["Int64"] = pd.array(range(n), dtype="Int64")
    cols["Int64_na"] = pd.array([None if i % 3 == 0 else i for i in range(n)], dtype="Int64")
    cols["nan"] = np.where(np.arange(n) % 4 == 0, np.nan, rng.random(n))
    if categorical:
        cols["cat"] = pd.Categorical([("x", "y", "z")[i % 3] for i in range(n)])
    cols["tz"] = pd.date_range("2024-03-30", periods=n, freq="h", tz="Europe/Paris")
    cols["secs"] = pd.date_range("2024-01-01", periods=n, freq="s", unit="s")
    return pd.DataFrame(cols)


def _with_index(frame: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
    frame.index = index
    return frame


def _int_labels(frame: pd.DataFrame) -> pd.DataFrame:
    frame.columns = pd.Index(range(100, 100 + frame.shape[1]), dtype="int64", name="k")
    return frame


VALUES = {
    "mixed": lambda: mixed(50),
    "zero rows": lambda: mixed(0, categorical=False),
    "zero columns": lambda: pd.DataFrame(index=pd.RangeIndex(3, 50, 2, name="r")),
    "zero columns, str index": lambda: pd.DataFrame(index=pd.Index(["a", "b"], name="k")),
    "range index with a name": lambda: _with_index(mixed(20), pd.RangeIndex(5, 45, 2, name="r")),
    "datetime index": lambda: _with_index(mixed(24), pd.date_range("2024", periods=24, freq="h",
                                                                   name="t")),
    "str index": lambda: _with_index(mixed(5), pd.Index(list("vwxyz"), dtype="str")),
    "duplicate index": lambda: _with_index(mixed(4), pd.Index([1, 1, 2, 2], dtype="int64")),
    "multi index": lambda: _with_index(mixed(6), pd.MultiIndex.from_arrays(
        [np.arange(6), np.arange(6) % 2], names=["a", None])),
    "int column labels": lambda: _int_labels(mixed(10)),
    "range column labels": lambda: pd.DataFrame(np.arange(12.0).reshape(4, 3)),
    "only numeric": lambda: mixed(30)[NUMERIC],
    "series": lambda: pd.Series(np.arange(7.0), name="price"),
    "int series, str index": lambda: pd.Series(np.arange(3), name=("x", 1),
                                               index=pd.Index(list("abc"), name="k")),
    "str series": lambda: pd.Series(["a", None, "c"], dtype="str"),
}


def assert_same(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    if isinstance(a, pd.Series):
        assert a.name == b.name
        a, b = a.to_frame(), b.to_frame()
    pd.testing.assert_frame_equal(a, b, check_exact=True, check_index_type=True,
                                  check_column_type=True, check_freq=True)
    assert list(a.dtypes) == list(b.dtypes)
    for x, y in ((a.index, b.index), (a.columns, b.columns)):
        assert type(x) is type(y) and x.dtype == y.dtype and list(x.names) == list(y.names)


def owner(array: np.ndarray) -> Any:
    """What finally holds the memory of ``array`` (following views and memoryviews)."""
    base: Any = array
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    return base.obj if isinstance(base, memoryview) else base


def assert_zero_copy(frame: pd.DataFrame, codec: Any) -> None:
    """Numeric columns are views of Arrow's decoded buffers (Parquet) or of the file mapping."""
    for name in NUMERIC:
        held = owner(frame[name].to_numpy())
        assert isinstance(held, mmap.mmap if codec.name == "arrow" else pa.Buffer), (name, held)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@pytest.mark.parametrize("make", VALUES.values(), ids=list(VALUES))
def test_roundtrip_exactly(codec: Any, make: Any, tmp_path: Path) -> None:
    value = make()
    assert codec.can_encode(value)
    codec.encode(value, tmp_path / "v")
    assert_same(value, codec.decode(tmp_path / "v"))


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@pytest.mark.parametrize("index", [None, pd.date_range("2024", periods=50, freq="D")],
                         ids=["range", "dates"])
def test_numeric_columns_are_not_copied(codec: Any, index: Any, tmp_path: Path) -> None:
    frame = mixed(50) if index is None else _with_index(mixed(50), index)
    codec.encode(frame, tmp_path / "v")
    decoded = codec.decode(tmp_path / "v")
    assert_same(frame, decoded)
    assert_zero_copy(decoded, codec)


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_decoded_frames_are_mutable_and_the_file_untouched(codec: Any, tmp_path: Path) -> None:
    path = tmp_path / "v"
    frame = mixed(50)
    codec.encode(frame, path)
    before = sha(path)
    decoded = codec.decode(path)
    decoded.iloc[0, 0] = 1.0
    decoded["i64"] += 1
    decoded.loc[5, "f32"] = 3
    decoded.loc[6, "u8"] = 7
    decoded.loc[1, "str"] = "changed"
    decoded.loc[2, "Int64_na"] = 42
    assert decoded.iloc[0, 0] == 1.0 and decoded.columns[0] == "f64"
    assert (decoded["i64"] == frame["i64"] + 1).all()
    assert decoded.loc[5, "f32"] == 3 and decoded.loc[6, "u8"] == 7
    assert decoded.loc[1, "str"] == "changed" and decoded.loc[2, "Int64_na"] == 42
    assert list(decoded.dtypes) == list(frame.dtypes)
    assert sha(path) == before
    assert_same(frame, codec.decode(path))


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_decoded_series_is_mutable(codec: Any, tmp_path: Path) -> None:
    series = pd.Series(np.arange(5.0), name="s")
    codec.encode(series, tmp_path / "v")
    decoded = codec.decode(tmp_path / "v")
    decoded.iloc[0] = 9.0
    decoded[1] += 1
    assert decoded.tolist() == [9.0, 2.0, 2.0, 3.0, 4.0]
    assert_same(series, codec.decode(tmp_path / "v"))


def test_arrow_mutations_stay_in_their_frame(tmp_path: Path) -> None:
    path = tmp_path / "v.arrow"
    frame = mixed(50)[NUMERIC]
    ArrowCodec().encode(frame, path)
    first, second = ArrowCodec().decode(path), ArrowCodec().decode(path)
    for name in NUMERIC:
        first.loc[:, name] = 1  # written in place, into first's private mapping
    assert (first == 1).all().all()
    assert_same(frame, second)
    assert_same(frame, ArrowCodec().decode(path))


@pytest.mark.skipif(sys.platform == "win32", reason="Windows refuses to replace a mapped file")
def test_arrow_frame_outlives_its_file(tmp_path: Path) -> None:
    """The store replaces and deletes artifacts; a frame decoded earlier keeps its values."""
    path, other = tmp_path / "v.arrow", tmp_path / "w.arrow"
    frame = mixed(50)
    ArrowCodec().encode(frame, path)
    decoded = ArrowCodec().decode(path)
    ArrowCodec().encode(frame[NUMERIC] + 1, other)
    os.replace(other, path)
    assert_same(frame, decoded)
    path.unlink()
    decoded.iloc[0, 0] = 5.0
    assert decoded.iloc[0, 0] == 5.0
    assert_same(frame.iloc[1:], decoded.iloc[1:])


def test_parquet_many_row_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files with several row groups (older ones: 1Mi rows each) decode through to_pandas."""
    monkeypatch.setattr(_frame_codecs, "ROW_GROUP_ROWS", 7)
    frame = mixed(50)
    ParquetCodec().encode(frame, tmp_path / "v")
    assert pq.ParquetFile(tmp_path / "v").num_row_groups == 8
    decoded = ParquetCodec().decode(tmp_path / "v")
    assert_same(frame, decoded)
    decoded.iloc[0, 0] = 1.0
    decoded["i64"] += 1
    decoded.loc[5, "f32"] = 3
    assert decoded.iloc[0, 0] == 1.0 and decoded.loc[5, "f32"] == 3


def test_arrow_file_with_many_record_batches(tmp_path: Path) -> None:
    frame = _with_index(mixed(50), pd.date_range("2024", periods=50, freq="D"))
    table = to_table(frame)
    with pa.OSFile(str(tmp_path / "v"), "wb") as sink:
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=7)
    decoded = ArrowCodec().decode(tmp_path / "v")
    assert_same(frame, decoded)
    decoded.iloc[0, 0] = 1.0
    decoded["i64"] += 1
    assert decoded.iloc[0, 0] == 1.0


def test_arrow_encodes_chunked_tables_as_one_batch(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    frame = mixed(50)
    chunked = pa.concat_tables([to_table(frame).slice(0, 20), to_table(frame).slice(20)])
    assert chunked.column(0).num_chunks == 2
    monkeypatch.setattr(_frame_codecs, "to_table", lambda value: chunked)
    ArrowCodec().encode(frame, tmp_path / "v")
    decoded = ArrowCodec().decode(tmp_path / "v")
    assert_same(frame, decoded)
    assert_zero_copy(decoded, ArrowCodec())


def test_parquet_layout_of_a_large_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """More rows than pyarrow's default row group: still one row group, so still no copy."""
    monkeypatch.setattr(_frame_arrays, "MIN_ROWS", MIN_ROWS)
    n = 1_100_000
    frame = pd.DataFrame({"f64": np.arange(n, dtype="float64"), "i32": np.arange(n, dtype="int32"),
                          "str": pd.Series(["a", "b"] * (n // 2), dtype="str")})
    ParquetCodec().encode(frame, tmp_path / "v")
    meta = pq.ParquetFile(tmp_path / "v").metadata
    assert meta.num_row_groups == 1
    encodings = {meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i).encodings
                 for i in range(meta.num_columns)}
    assert not any("DICTIONARY" in e for e in encodings["f64"])
    assert any("DICTIONARY" in e for e in encodings["str"])
    decoded = ParquetCodec().decode(tmp_path / "v")
    assert_same(frame, decoded)
    for name in ("f64", "i32"):
        assert isinstance(owner(decoded[name].to_numpy()), pa.Buffer)


def test_empty_arrow_file_is_an_arrow_error(tmp_path: Path) -> None:
    (tmp_path / "v").write_bytes(b"")
    with pytest.raises(pa.ArrowInvalid):
        ArrowCodec().decode(tmp_path / "v")


def wrapped(frame: pd.DataFrame) -> list[Any]:
    """The columns that are views of Arrow's decoded buffers or of the file mapping."""
    return [c for c in frame if isinstance(owner(frame[c].to_numpy()), mmap.mmap | pa.Buffer)]


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_small_and_wide_frames_come_back_consolidated(codec: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """As to_pandas makes them: one block per column would cost more than the copy saves."""
    monkeypatch.setattr(_frame_arrays, "MIN_ROWS", 100)
    monkeypatch.setattr(_frame_arrays, "MAX_COLUMNS", 3)
    frame = pd.DataFrame({"a": np.arange(100.0), "b": np.ones(100), "c": np.arange(100)})
    for value, zero_copy in ((frame, True), (frame.iloc[:99], False),
                             (frame.assign(d=frame["a"]), False)):
        codec.encode(value, tmp_path / "v")
        decoded = codec.decode(tmp_path / "v")
        assert_same(value, decoded)
        assert wrapped(decoded) == (list(value) if zero_copy else [])
        if not zero_copy:  # float columns share one 2-D block
            assert owner(decoded["a"].to_numpy()) is owner(decoded["b"].to_numpy())


COLUMN_KINDS: dict[str, Any] = {
    "f64": lambda n: np.arange(n, dtype="float64") / 3,
    "i16": lambda n: np.arange(n, dtype="int16"),
    "u64": lambda n: np.arange(n, dtype="uint64") + 2**63,
    "nan": lambda n: np.where(np.arange(n) % 2 == 0, np.nan, 1.5),
    "str": lambda n: pd.Series([f"s{i}" if i % 3 else None for i in range(n)], dtype="str"),
    "Int64": lambda n: pd.array([i if i % 2 else None for i in range(n)], dtype="Int64"),
    "bool": lambda n: np.arange(n) % 2 == 0,
    "tz": lambda n: pd.date_range("2024", periods=n, freq="D", tz="UTC"),
}
INDEX_KINDS: dict[str, Any] = {
    "range": lambda n: pd.RangeIndex(3, 3 + 2 * n, 2, name="r"),
    "str": lambda n: pd.Index([f"k{i}" for i in range(n)], dtype="str"),
    "repeated int": lambda n: pd.Index([i // 2 for i in range(n)], dtype="int64", name="i"),
    "dates": lambda n: pd.date_range("2020", periods=n, freq="h"),
    "multi": lambda n: pd.MultiIndex.from_arrays([np.arange(n), np.arange(n) % 2]),
}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(0, 6), kinds=st.lists(st.sampled_from(list(COLUMN_KINDS)), max_size=5),
       index=st.sampled_from(list(INDEX_KINDS)), series=st.booleans(),
       codec=st.sampled_from(CODECS))
def test_any_mix_roundtrips(n: int, kinds: list[str], index: str, series: bool, codec: Any,
                            tmp_path: Path) -> None:
    frame = pd.DataFrame({i: COLUMN_KINDS[k](n) for i, k in enumerate(kinds)})
    frame.index = INDEX_KINDS[index](n)
    value = frame.iloc[:, 0].rename("s") if series and kinds else frame
    assert codec.can_encode(value)
    codec.encode(value, tmp_path / "v")
    assert_same(value, codec.decode(tmp_path / "v"))


def test_sliced_chunks_keep_their_offset() -> None:
    chunk = pa.array([float(i) for i in range(10)]).slice(3, 4)
    assert _frame_arrays.buffer_array(chunk, np.dtype("float64")).tolist() == [3.0, 4.0, 5.0, 6.0]


def test_parquet_compresses_only_columns_that_gain(tmp_path: Path) -> None:
    n = 50_000
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"noise": rng.random(n), "steps": np.repeat([0.5, 1.5], n // 2),
                          "ids": np.arange(n), "few": np.where(np.arange(n) % 2, "a", "b")})
    path = tmp_path / "f.parquet"
    ParquetCodec().encode(frame, path)
    group = pq.ParquetFile(path).metadata.row_group(0)
    chosen = {group.column(i).path_in_schema: group.column(i).compression
              for i in range(group.num_columns)}
    assert chosen == {"noise": "UNCOMPRESSED", "steps": "SNAPPY", "ids": "SNAPPY",
                      "few": "SNAPPY"}
    assert ParquetCodec().decode(path).equals(frame)


# Index levels and columns of the dtypes pandas users meet, missing values included (issue 12:
# pydata-book ch10 cell 10, `groupby(["key1", "key2"], dropna=False).size()`, came back with
# its Int64 level as float). Whatever can_encode accepts must come back exactly: same values,
# dtypes, level values and codes, and the same text on screen.
LEVEL_KINDS: dict[str, Any] = {
    "Int64 with NA": lambda n: pd.array([None if i % 3 == 1 else i for i in range(n)], dtype="Int64"),
    "UInt8": lambda n: pd.array(range(n), dtype="UInt8"),
    "boolean with NA": lambda n: pd.array([None if i % 3 == 1 else i % 2 == 0 for i in range(n)],
                                          dtype="boolean"),
    "Float64 with NA": lambda n: pd.array([None if i % 3 == 1 else i / 2 for i in range(n)],
                                          dtype="Float64"),
    "str with NaN": lambda n: pd.array([None if i % 3 == 1 else f"k{i}" for i in range(n)], dtype="str"),
    "string with NA": lambda n: pd.array([None if i % 3 == 1 else f"k{i}" for i in range(n)],
                                         dtype="string"),
    "float with NaN": lambda n: np.where(np.arange(n) % 3 == 1, np.nan, np.arange(n) / 2),
    "categorical": lambda n: pd.Categorical([("x", "y")[i % 2] for i in range(n)]),
    "tz-aware": lambda n: pd.date_range("2024-03-31", periods=n, freq="h", tz="Europe/Paris"),
    "int64": lambda n: np.arange(n) % 2,
}


def _index_of(kinds: list[str], n: int, grouped: bool) -> pd.Index:
    arrays = [LEVEL_KINDS[k](n) for k in kinds]
    if len(arrays) == 1:
        return pd.Index(arrays[0], name="k0")
    if grouped:  # as groupby(dropna=False) builds it: missing values held as level values
        keys = pd.DataFrame({f"k{i}": a for i, a in enumerate(arrays)})
        return keys.groupby(list(keys.columns), dropna=False, sort=False).size().index
    return pd.MultiIndex.from_arrays(arrays, names=[f"k{i}" for i in range(len(arrays))])


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 6), kinds=st.lists(st.sampled_from(list(LEVEL_KINDS)), min_size=1, max_size=3),
       column=st.sampled_from(list(LEVEL_KINDS)), grouped=st.booleans(), series=st.booleans(),
       codec=st.sampled_from(CODECS))
def test_index_and_column_dtypes_roundtrip_or_are_refused(
        n: int, kinds: list[str], column: str, grouped: bool, series: bool, codec: Any,
        tmp_path: Path) -> None:
    index = _index_of(kinds, n, grouped)
    values = LEVEL_KINDS[column](len(index))
    value = (pd.Series(values, index=index, name="v") if series
             else pd.DataFrame({"v": values}, index=index))
    if not codec.can_encode(value):
        return  # another codec's job (pickle when allowed)
    codec.encode(value, tmp_path / "v")
    back = codec.decode(tmp_path / "v")
    assert_same(value, back)
    assert repr(back) == repr(value)
    if isinstance(index, pd.MultiIndex):
        for mine, theirs in zip(back.index.levels, index.levels, strict=True):
            assert mine.equals(theirs) and mine.dtype == theirs.dtype
        assert [list(c) for c in back.index.codes] == [list(c) for c in index.codes]


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_groupby_size_with_nullable_keys(codec: Any, tmp_path: Path) -> None:
    """ch10 cell 10: groupby(dropna=False) keeps missing keys as level values, which Arrow
    cannot hold (refused: pickle keeps them); an Int64 level with <NA> codes keeps its dtype."""
    df = pd.DataFrame({"key1": ["a", "a", None, "b", "b", "a", None],
                       "key2": pd.Series([1, 2, 1, 2, 1, None, 1], dtype="Int64")})
    assert not codec.can_encode(df.groupby(["key1", "key2"], dropna=False).size())
    index = pd.MultiIndex.from_frame(df.fillna({"key1": "-"}))
    series = pd.Series(range(7), index=index)
    assert codec.can_encode(series)
    codec.encode(series, tmp_path / "v")
    back = codec.decode(tmp_path / "v")
    assert back.index.dtypes["key2"] == "Int64" and repr(back) == repr(series)
