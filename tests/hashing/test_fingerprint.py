"""Content hashing of values and code. Real values, real modules, real subprocesses."""

from __future__ import annotations

import collections
import copy
import dataclasses
import datetime as dt
import enum
import functools
import importlib.util
import itertools
import linecache
import math
import subprocess
import sys
import textwrap
import threading
import uuid
import zoneinfo
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskcache.errors import FingerprintError
from taskcache.hashing import (
    KEY_VERSION,
    combine_key,
    hash_code,
    hash_value,
    key_of_inputs,
    module_versions,
    register_hasher,
)

# --------------------------------------------------------------------------- helpers

_counter = itertools.count()


def define(source: str, **namespace: Any) -> dict[str, Any]:
    """Run source like a notebook cell: registered in linecache, module name __main__."""
    filename = f"<taskcache-test-cell-{next(_counter)}>"
    source = textwrap.dedent(source)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns: dict[str, Any] = {"__name__": "__main__", **namespace}
    exec(compile(source, filename, "exec"), ns)
    return ns


def import_file(tmp_path: Path, source: str) -> Any:
    """Write a real module file and import it under a fresh name."""
    name = f"tc_user_mod_{next(_counter)}"
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclasses.dataclass
class Point:
    x: int
    y: float


Pair = collections.namedtuple("Pair", "a b")


class Color(enum.Enum):
    RED = 1
    BLUE = 2


# --------------------------------------------------------------------------- basics


def test_format() -> None:
    h = hash_value(1)
    assert len(h) == 32 and int(h, 16) >= 0
    assert hash_value(1) == hash_value(1)


def test_distinctness_matrix() -> None:
    values = [
        1,
        1.0,
        True,
        "1",
        b"1",
        bytearray(b"1"),
        [1],
        (1,),
        {1},
        frozenset({1}),
        {1: 1},
        np.int64(1),
        np.float64(1.0),
        np.int32(1),
        None,
        math.nan,
        -0.0,
        0.0,
        0,
        False,
        "",
        b"",
        [],
        (),
        {},
        set(),
        1 + 0j,
        Decimal(1),
        Fraction(1),
        range(1),
        [[1]],
        [1, [2]],
        [[1], 2],
        ("a", "b"),
        ("ab",),
        ["a", "b"],
        {"a": "b"},
        {"b": "a"},
        np.array([1]),
        np.array([1.0]),
        np.array(1),
        np.array([[1]]),
        Pair(1, 2),
        (1, 2),
        Point(1, 2.0),
        Color.RED,
        2**64,
        -(2**64),
        dt.date(2020, 1, 1),
        dt.datetime(2020, 1, 1),
    ]
    hashes = [hash_value(v) for v in values]
    dupes = [
        (a, b)
        for (a, ha), (b, hb) in itertools.combinations(zip(values, hashes, strict=True), 2)
        if ha == hb
    ]
    assert dupes == []


def test_floats() -> None:
    assert hash_value(math.nan) == hash_value(float("nan")) == hash_value(-math.nan)
    assert hash_value(-0.0) != hash_value(0.0)
    assert hash_value([math.nan, 1.0]) == hash_value([float("nan"), 1.0])
    assert hash_value(math.inf) != hash_value(-math.inf)
    assert hash_value(complex(math.nan, 1)) == hash_value(complex(-math.nan, 1))


def test_ints_and_text() -> None:
    assert len({hash_value(n) for n in [0, 1, -1, 255, 256, -256, 2**100, -(2**100)]}) == 8
    assert hash_value("é") != hash_value("e")
    assert hash_value("\ud800") == hash_value("\ud800")  # lone surrogates do not crash
    assert hash_value(memoryview(b"abc")) != hash_value(b"abc")
    assert hash_value(memoryview(b"abcd")[::2]) == hash_value(memoryview(b"ac"))


def test_dicts_hash_in_insertion_order_sets_do_not() -> None:
    """Dicts are ordered and code sees it (``pd.DataFrame(d).columns``); sets are not."""
    a = {"x": 1, "y": [1, 2], 3: "z"}
    b = {3: "z", "y": [1, 2], "x": 1}
    assert a == b and hash_value(a) != hash_value(b)
    assert hash_value(a) == hash_value(dict(a)) == hash_value(copy.deepcopy(a))
    assert hash_value(collections.OrderedDict(a)) != hash_value(collections.OrderedDict(b))
    assert hash_value(collections.OrderedDict(a)) != hash_value(a)  # type-tagged
    assert hash_value({"x": 1, "y": 2}) != hash_value({"x": 2, "y": 1})
    assert hash_value({"x": {"p": 1, "q": 2}}) != hash_value({"x": {"q": 2, "p": 1}})
    assert hash_value({3, 1, 2}) == hash_value({2, 3, 1})
    assert hash_value(set("abcdef")) == hash_value(set("fedcba"))
    assert hash_value(frozenset({"a", ("b", 1)})) == hash_value(frozenset({("b", 1), "a"}))
    assert hash_value([1, 2]) != hash_value([2, 1])
    # the order the columns come out in is what made one key wrong
    cols_ab, cols_ba = {"a": [1], "b": [2]}, {"b": [2], "a": [1]}
    assert list(pd.DataFrame(cols_ab).columns) != list(pd.DataFrame(cols_ba).columns)
    assert hash_value(cols_ab) != hash_value(cols_ba)


def test_scalars_of_the_standard_library() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    values = [
        dt.datetime(2020, 1, 1, 12),
        dt.datetime(2020, 1, 1, 12, tzinfo=dt.UTC),
        dt.datetime(2020, 1, 1, 13, tzinfo=paris),
        dt.time(1, 2),
        dt.time(1, 2, tzinfo=dt.UTC),
        dt.timedelta(days=1),
        dt.timedelta(seconds=1),
        uuid.UUID(int=1),
        uuid.UUID(int=2),
        Decimal("1.5"),
        Fraction(3, 2),
        Color.RED,
        Color.BLUE,
        range(3),
        range(0, 3, 2),
    ]
    assert len({hash_value(v) for v in values}) == len(values)
    assert hash_value(dt.datetime(2020, 1, 1, tzinfo=dt.UTC)) == hash_value(
        dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    )


def test_time_zones_count_by_kind_not_only_by_name() -> None:
    """A fixed ``timezone(+1h, "CET")`` and ``ZoneInfo("CET")`` share a name, not rules."""
    from dateutil import tz as dateutil_tz

    fixed, zone = dt.timezone(dt.timedelta(hours=1), "CET"), zoneinfo.ZoneInfo("CET")
    summer_fixed, summer_zone = (dt.datetime(2024, 7, 1, 12, tzinfo=t) for t in (fixed, zone))
    assert summer_fixed != summer_zone  # +01:00 against summer time +02:00
    assert hash_value(summer_fixed) != hash_value(summer_zone)
    winter_fixed, winter_zone = (dt.datetime(2024, 1, 1, 12, tzinfo=t) for t in (fixed, zone))
    assert winter_fixed == winter_zone  # the same instant, but not the same value:
    half_year = dt.timedelta(days=182)
    assert (winter_fixed + half_year).utcoffset() != (winter_zone + half_year).utcoffset()
    assert hash_value(winter_fixed) != hash_value(winter_zone)
    # equal values hash equal, whichever cache a zone came from
    assert hash_value(summer_zone) == hash_value(
        dt.datetime(2024, 7, 1, 12, tzinfo=zoneinfo.ZoneInfo.no_cache("CET")))
    assert hash_value(summer_fixed) == hash_value(
        dt.datetime(2024, 7, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=1), "CET")))
    # other tzinfo classes by their content; times too
    paris = dateutil_tz.gettz("Europe/Paris")
    by_dateutil = dt.datetime(2024, 7, 1, 12, tzinfo=paris)
    assert hash_value(by_dateutil) == hash_value(dt.datetime(2024, 7, 1, 12, tzinfo=paris))
    assert hash_value(by_dateutil) != hash_value(
        dt.datetime(2024, 7, 1, 12, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")))
    assert hash_value(dt.time(1, 2, tzinfo=zone)) != hash_value(dt.time(1, 2, tzinfo=fixed))
    assert hash_value(dt.time(1, 2, tzinfo=zone)) == hash_value(dt.time(1, 2, tzinfo=zone))


def test_records() -> None:
    assert hash_value(Point(1, 2.0)) == hash_value(Point(1, 2.0))
    assert hash_value(Point(1, 2.0)) != hash_value(Point(1, 3.0))
    assert hash_value(Pair(1, 2)) != hash_value(Pair(2, 1))
    counts = collections.Counter("hello")
    assert hash_value(counts) == hash_value(collections.Counter("hello"))
    # equal counts, another order: most_common() breaks ties by insertion order
    assert hash_value(counts) != hash_value(collections.Counter("olleh"))
    dd = collections.defaultdict(list, {"a": [1]})
    assert hash_value(dd) != hash_value(collections.defaultdict(set, {"a": [1]}))


def test_cycles_terminate() -> None:
    a: list[Any] = [1]
    a.append(a)
    b: list[Any] = [1]
    b.append(b)
    assert hash_value(a) == hash_value(b)
    d: dict[str, Any] = {"k": 1}
    d["self"] = d
    assert len(hash_value(d)) == 32
    shared = [1, 2]
    assert hash_value([shared, shared]) == hash_value([[1, 2], [1, 2]])


class Plain:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, a: Any, b: Any) -> None:
        self.a, self.b = a, b


def test_plain_objects_by_content() -> None:
    assert hash_value(Plain(a=1, b={"x", "y"})) == hash_value(Plain(a=1, b={"y", "x"}))
    # attributes set in another order: vars() differs, so the state is not the same
    assert hash_value(Plain(a=1, b=2)) != hash_value(Plain(b=2, a=1))
    assert hash_value(Plain(a=1)) != hash_value(Plain(a=2))
    assert hash_value(Slotted(1, np.arange(3))) == hash_value(Slotted(1, np.arange(3)))
    assert hash_value(Slotted(1, 2)) != hash_value(Slotted(1, 3))
    obj = Plain()
    obj.me = obj
    assert len(hash_value(obj)) == 32


def test_other_library_values() -> None:
    import re

    assert hash_value(re.compile("a+")) == hash_value(re.compile("a+"))
    assert hash_value(re.compile("a+")) != hash_value(re.compile("a*"))
    ts = pd.Timestamp("2020-01-01 00:00:00.000000001", tz="UTC")
    assert hash_value(ts) == hash_value(pd.Timestamp(ts))
    assert hash_value(ts) != hash_value(ts + pd.Timedelta(1))
    assert hash_value(pd.NaT) != hash_value(pd.NA)
    assert hash_value(collections.deque([1, 2])) != hash_value(collections.deque([2, 1]))
    dup = pd.DataFrame([[1, 2]], columns=["a", "a"])
    assert hash_value(dup) != hash_value(pd.DataFrame([[2, 1]], columns=["a", "a"]))


def test_light_import() -> None:
    code = (
        "import sys, taskcache.hashing as f; f.hash_value({'a': [1, 2.0]});"
        "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "make",
    [threading.Lock, lambda: (i for i in range(3)), lambda: open(__file__)],  # noqa: SIM115
    ids=["lock", "generator", "file"],
)
def test_unhashable_values_raise(make: Any) -> None:
    value = make()
    try:
        with pytest.raises(FingerprintError) as info:
            hash_value(value, name="thing")
        message = str(info.value)
        assert "'thing'" in message and "ignore=" in message and "register_hasher" in message
        assert info.value.name == "thing"
        with pytest.raises(FingerprintError) as info:
            hash_value({"conn": [1, value]}, name="cfg")
        assert "cfg['conn'][1]" in str(info.value)
        assert info.value.type_name == f"{type(value).__module__}.{type(value).__qualname__}"
    finally:
        if hasattr(value, "close"):
            value.close()


def test_unhashable_global_of_a_function_names_it() -> None:
    ns = define("def f():\n    return LOCK\n", LOCK=threading.Lock())
    with pytest.raises(FingerprintError) as info:
        hash_value(ns["f"], name="fn")
    assert "LOCK" in str(info.value)


def test_register_hasher() -> None:
    class Conn:
        def __init__(self, url: str) -> None:
            self.url = url
            self.lock = threading.Lock()

    with pytest.raises(FingerprintError):
        hash_value(Conn("a"))
    register_hasher(Conn, lambda c: c.url)
    assert hash_value(Conn("a")) == hash_value(Conn("a"))
    assert hash_value(Conn("a")) != hash_value(Conn("b"))
    assert hash_value(Conn("a")) != hash_value("a")

    class SubConn(Conn):
        pass

    assert len(hash_value(SubConn("a"))) == 32  # found through the MRO

    class ByName:
        lock = None

        def __init__(self) -> None:
            self.lock = threading.Lock()

    register_hasher(f"{ByName.__module__}.{ByName.__qualname__}", lambda v: 42)
    assert hash_value(ByName()) == hash_value(ByName())


# --------------------------------------------------------------------------- numpy


def test_numpy_arrays() -> None:
    a = np.arange(24, dtype=np.float64).reshape(4, 6)
    assert hash_value(a) == hash_value(a.copy())
    assert hash_value(a) == hash_value(np.asfortranarray(a))
    assert hash_value(a[:, ::2]) == hash_value(np.ascontiguousarray(a[:, ::2]))
    assert hash_value(a[1:3]) == hash_value(a[1:3].copy())
    different = [a, a.astype(np.float32), a.reshape(6, 4), a.T, a.astype(np.int64), a + 1]
    assert len({hash_value(x) for x in different}) == len(different)
    with np.errstate(invalid="ignore"):
        computed_nan = np.array([0.0]) / np.array([0.0])  # sign bit set on x86
    # NaNs are hashed by their bits (no canonicalising pass): different bits, a false miss
    assert hash_value(np.array([np.nan])) != hash_value(computed_nan)
    assert hash_value(computed_nan) == hash_value(computed_nan.copy())
    assert hash_value(np.array([-0.0])) != hash_value(np.array([0.0]))
    assert hash_value(np.array([1 + 2j, np.nan])) == hash_value(np.array([1 + 2j, np.nan]))


def test_numpy_special_dtypes() -> None:
    dates = np.array(["2020-01-01", "NaT"], dtype="datetime64[ns]")
    assert hash_value(dates) == hash_value(dates.copy())
    assert hash_value(dates) != hash_value(dates.astype("datetime64[s]"))
    assert hash_value(np.array([1, 2], dtype="timedelta64[s]")) != hash_value(np.array([1, 2]))
    rec = np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")])
    rec2 = np.array([(1, 2.0)], dtype=[("x", "i4"), ("b", "f8")])
    assert hash_value(rec) != hash_value(rec2)
    objs = np.array([1, "a", None, [1]], dtype=object)
    assert hash_value(objs) == hash_value(copy.deepcopy(objs))
    strs = np.array([f"s{i}" for i in range(50)], dtype=object)
    assert hash_value(strs) == hash_value(strs.copy())
    assert hash_value(strs) != hash_value(strs.astype(str))
    masked = np.ma.array([1, 2, 3], mask=[0, 1, 0])
    assert hash_value(masked) == hash_value(masked.copy())
    assert hash_value(masked) != hash_value(np.ma.array([1, 2, 3], mask=[0, 0, 0]))


def test_numpy_scalars() -> None:
    assert hash_value(np.float64(1)) != hash_value(1.0)
    assert hash_value(np.float64(np.nan)) != hash_value(np.float64(-np.nan))  # by bits, as arrays
    assert hash_value(np.float64(-np.nan)) == hash_value(np.float64(-np.nan))
    assert hash_value(np.float32(1)) != hash_value(np.float64(1))
    assert hash_value(np.datetime64("2020-01-01")) == hash_value(np.datetime64("2020-01-01"))
    assert hash_value(np.dtype("f8")) != hash_value(np.dtype("f4"))


# --------------------------------------------------------------------------- pandas


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f": [1.5, np.nan, 3.0],
            "s": ["a", None, "c"],  # pandas 3 default str dtype, Arrow-backed
            "o": pd.Series(["x", "y", 3], dtype=object),
            "c": pd.Categorical(["a", "b", "a"]),
            "n": pd.array([1, None, 3], dtype="Int64"),
            "b": pd.array([True, None, False], dtype="boolean"),
            "t": pd.date_range("2020-01-01", periods=3, tz="Europe/Paris"),
            "d": pd.to_timedelta([1, 2, 3], unit="s"),
        },
        index=pd.Index([10, 20, 30], name="key"),
    )


def test_dataframe_equal_copies() -> None:
    df = frame()
    assert hash_value(df) == hash_value(df.copy())
    assert hash_value(df) == hash_value(copy.deepcopy(df))
    assert hash_value(df.iloc[1:]) == hash_value(df.iloc[1:].copy())
    assert hash_value(df.iloc[::2]) == hash_value(df.iloc[::2].copy())


def test_dataframe_differences() -> None:
    df = frame()
    variants = [
        df,
        df.rename(columns={"i": "j"}),
        df.rename_axis("other"),
        df.set_axis([10, 20, 31]),
        df.astype({"i": "int32"}),
        df.assign(f=[1.5, 2.0, 3.0]),
        df.assign(s=["a", "b", "c"]),
        df.assign(n=pd.array([1, 2, 3], dtype="Int64")),
        df.assign(t=pd.date_range("2020-01-01", periods=3, tz="UTC")),
        df[list(reversed(df.columns))],
        df.reset_index(),
    ]
    hashes = [hash_value(v) for v in variants]
    assert len(set(hashes)) == len(hashes)


def test_string_columns() -> None:
    values = ["a", "bb", None, "dddd"] * 10
    kinds = [
        pd.Series(values),
        pd.Series(values, dtype=object),
        pd.Series(values, dtype="string[pyarrow]"),
        pd.Series(values, dtype="string[python]"),
    ]
    assert len({hash_value(s) for s in kinds}) == 4  # the dtype is part of the content
    for s in kinds:
        assert hash_value(s) == hash_value(s.copy())
        assert hash_value(s) != hash_value(s.where(s != "bb", "b"))
    assert hash_value(pd.Series(["a", None])) != hash_value(pd.Series(["a", ""]))
    obj = pd.Series(["x"] * 20 + [None], dtype=object)
    assert hash_value(obj) != hash_value(pd.Series(["x"] * 20 + [np.nan], dtype=object))


def test_series_and_index() -> None:
    s = pd.Series([1.0, 2.0], index=["a", "b"], name="v")
    assert hash_value(s) == hash_value(s.copy())
    assert hash_value(s) != hash_value(s.rename("w"))
    assert hash_value(s) != hash_value(s.set_axis(["a", "c"]))
    assert hash_value(pd.RangeIndex(3)) != hash_value(pd.Index([0, 1, 2]))
    assert hash_value(pd.RangeIndex(0, 3)) != hash_value(pd.RangeIndex(0, 4))
    mi = pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["x", "y"])
    assert hash_value(mi) == hash_value(mi.copy())
    assert hash_value(mi) != hash_value(mi.set_names(["x", "z"]))
    assert hash_value(pd.Categorical(["a"], ordered=True)) != hash_value(pd.Categorical(["a"]))


def test_pandas_masked_values_ignore_garbage_under_na() -> None:
    a = pd.array([1, 2, 3], dtype="Int64")
    b = pd.array([1, 99, 3], dtype="Int64")
    a[1] = pd.NA
    b[1] = pd.NA
    assert hash_value(a) == hash_value(b)



def test_what_pandas_memoized_is_not_content() -> None:
    """A GroupBy is hashed by its pickled state; pandas fills its grouper's ``_cache`` on use
    (by the GroupBy or a column selection sharing the grouper): the hash stays."""
    frame = pd.DataFrame({"k": ["a", "b", "a"], "v": [1.0, 2.0, 4.0]})
    grouped = frame.groupby("k")
    fresh = hash_value(grouped)
    grouped["v"].agg(["mean", lambda s: s.max() - s.min()])
    assert grouped._grouper._cache  # the memo is filled ...
    assert hash_value(grouped) == fresh  # ... and is not content
    assert hash_value(frame.groupby("v")) != fresh
    assert hash_value(frame.assign(v=[1.0, 2.0, 5.0]).groupby("k")) != fresh


# --------------------------------------------------------------------------- pyarrow


def arrow_table() -> pa.Table:
    return pa.table(
        {
            "i": pa.array([1, 2, None, 4, 5]),
            "f": pa.array([1.0, None, math.nan, 4.0, -0.0]),
            "s": pa.array(["a", None, "ccc", "", "e"]),
            "b": pa.array([True, False, None, True, True]),
            "l": pa.array([[1], [2, 3], None, [], [5]]),
            "st": pa.array([{"x": 1}, None, {"x": 3}, {"x": 4}, {"x": 5}]),
            "d": pa.array(["u", "v", "u", None, "v"]).dictionary_encode(),
            "m": pa.array(
                [[("k", 1)], [], None, [("j", 2)], []], type=pa.map_(pa.string(), pa.int64())
            ),
        }
    )


def test_arrow_chunking_and_slicing_do_not_matter() -> None:
    t = arrow_table()
    rechunked = pa.concat_tables([t.slice(0, 2), t.slice(2, 1), t.slice(3)])
    assert rechunked.column("s").num_chunks == 3
    assert hash_value(t) == hash_value(rechunked)
    assert hash_value(t) == hash_value(t.combine_chunks())
    sliced = t.slice(1, 3)
    rebuilt = pa.Table.from_pylist(sliced.to_pylist(), schema=t.schema)
    assert hash_value(sliced) == hash_value(rebuilt)
    batch = t.to_batches()[0]
    assert hash_value(batch) == hash_value(t)
    col = t.column("s")
    assert hash_value(col) == hash_value(col.combine_chunks())


def test_arrow_differences() -> None:
    t = arrow_table()
    assert hash_value(t) != hash_value(t.rename_columns([*t.column_names[:-1], "z"]))
    assert hash_value(pa.array([1, 2])) != hash_value(pa.array([1, 2], pa.int32()))
    assert hash_value(pa.array(["a", None])) != hash_value(pa.array(["a", ""]))
    assert hash_value(pa.array(["ab", "c"])) != hash_value(pa.array(["a", "bc"]))
    assert hash_value(pa.array([None, 1])) != hash_value(pa.array([1, None]))
    assert hash_value(pa.array([0.0])) != hash_value(pa.array([-0.0]))


# --------------------------------------------------------------------------- paths


def test_paths(tmp_path: Path) -> None:
    f = tmp_path / "data.txt"
    f.write_text("hello")
    g = tmp_path / "other.txt"
    g.write_text("hello")
    assert hash_value(f) == hash_value(g)  # content, not name
    h1 = hash_value(f)
    f.write_text("hello!")
    assert hash_value(f) != h1
    missing = tmp_path / "missing.txt"
    assert hash_value(missing) == hash_value(Path(str(missing)))
    assert hash_value(missing) != hash_value(tmp_path / "missing2.txt")
    d = tmp_path / "dir"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "a.txt").write_text("a")
    h2 = hash_value(d)
    (d / "sub" / "a.txt").write_text("b")
    assert hash_value(d) != h2
    (d / "sub" / "a.txt").write_text("a")
    assert hash_value(d) == h2
    (d / "b.txt").write_text("")
    assert hash_value(d) != h2


# --------------------------------------------------------------------------- code


def test_function_comment_edit_same_body_edit_different() -> None:
    a = define("def f(x):\n    return x + 1\n")["f"]
    b = define("def f(x):\n    '''Docs.'''\n    # a comment\n    return (x +\n      1)\n")["f"]
    c = define("def f(x):\n    return x + 2\n")["f"]
    assert hash_code(a) == hash_code(b)
    assert hash_code(a) != hash_code(c)
    assert hash_value(a) == hash_value(b)


def test_helper_edit_changes_caller() -> None:
    ns1 = define("def helper(x):\n    return x * 2\n\ndef f(x):\n    return helper(x) + 1\n")
    ns2 = define("def helper(x):\n    return x * 3\n\ndef f(x):\n    return helper(x) + 1\n")
    ns3 = define(
        "def helper(x):\n    # same code\n    return x * 2\n\ndef f(x):\n    return helper(x) + 1\n"
    )
    assert hash_code(ns1["f"]) != hash_code(ns2["f"])
    assert hash_code(ns1["f"]) == hash_code(ns3["f"])


def test_global_constant_and_closure() -> None:
    ns = define("K = 1\ndef f(x):\n    return x + K\n")
    before = hash_code(ns["f"])
    ns["K"] = 2
    assert hash_code(ns["f"]) != before
    ns["K"] = 1
    assert hash_code(ns["f"]) == before
    make = define("def make(n):\n    def add(x):\n        return x + n\n    return add\n")["make"]
    assert hash_code(make(1)) == hash_code(make(1))
    assert hash_code(make(1)) != hash_code(make(2))


def test_global_only_written_through_is_not_content() -> None:
    ns = define("CALLS = []\ndef f(x):\n    CALLS.append(x)\n    return x\n")
    before = hash_code(ns["f"])
    ns["f"](1)
    assert hash_code(ns["f"]) == before
    ns = define("SEEN = []\ndef f(x):\n    SEEN.append(x)\n    return len(SEEN)\n")
    before = hash_code(ns["f"])
    ns["f"](1)
    assert hash_code(ns["f"]) != before


def test_defaults_change_hash() -> None:
    a = define("def f(x=1, *, y=2):\n    return x + y\n")["f"]
    b = define("def f(x=1, *, y=3):\n    return x + y\n")["f"]
    assert hash_code(a) != hash_code(b)


def test_recursion_terminates() -> None:
    ns = define(
        "def fact(n):\n    return 1 if n < 2 else n * fact(n - 1)\n"
        "def even(n):\n    return n == 0 or odd(n - 1)\n"
        "def odd(n):\n    return n != 0 and even(n - 1)\n"
    )
    assert len(hash_code(ns["fact"])) == 32
    assert hash_code(ns["even"]) != hash_code(ns["odd"])
    assert hash_code(ns["even"]) == hash_code(ns["even"])
    cached = define(
        "import functools\n@functools.lru_cache\ndef fib(n):\n    return n if n < 2 else fib(n-1) + fib(n-2)\n"
    )["fib"]
    assert len(hash_code(cached)) == 32


def test_lambdas_use_code_objects() -> None:
    ns = define("a = lambda x: x + 1; b = lambda x: x + 2\n")
    assert hash_code(ns["a"]) != hash_code(ns["b"])
    assert hash_code(ns["a"]) == hash_code(define("a = lambda x: x + 1\n")["a"])


def test_classes() -> None:
    src = (
        "class Base:\n    def base(self):\n        return 1\n"
        "class Model(Base):\n    scale = 2\n    def fit(self, x):\n        return x * self.scale\n"
        "    @property\n    def name(self):\n        return 'm'\n"
        "    @staticmethod\n    def s():\n        return 0\n"
    )
    one, two = define(src), define(src)
    assert hash_code(one["Model"]) == hash_code(two["Model"])
    assert hash_code(one["Model"]) != hash_code(
        define(src.replace("x * self", "x + self"))["Model"]
    )
    assert hash_code(one["Model"]) != hash_code(
        define(src.replace("scale = 2", "scale = 3"))["Model"]
    )
    assert hash_code(one["Model"]) != hash_code(
        define(src.replace("return 1", "return 2"))["Model"]
    )
    assert hash_value(one["Model"]()) == hash_value(two["Model"]())
    bound_one, bound_two = one["Model"]().fit, two["Model"]().fit
    assert hash_code(bound_one) == hash_code(bound_two)


def test_partial_and_library_code() -> None:
    f = define("def f(a, b):\n    return a + b\n")["f"]
    assert hash_code(functools.partial(f, 1)) != hash_code(functools.partial(f, 2))
    assert hash_code(np.sum) == hash_code(np.sum)
    assert hash_code(np.sum) != hash_code(np.mean)
    assert hash_code(pd.DataFrame) != hash_code(pd.Series)
    assert hash_code(len) != hash_code(sum)


def test_user_module_functions(tmp_path: Path) -> None:
    helpers = import_file(tmp_path, "SCALE = 2\ndef helper(x):\n    return x * SCALE\n")
    helpers2 = import_file(
        tmp_path, "SCALE = 2\ndef helper(x):\n    # comment\n    return x * SCALE\n"
    )
    helpers3 = import_file(tmp_path, "SCALE = 3\ndef helper(x):\n    return x * SCALE\n")
    assert hash_code(helpers.helper) == hash_code(helpers2.helper)
    assert hash_code(helpers.helper) != hash_code(helpers3.helper)
    # a notebook function calling into a user module through the module object
    ns1 = define("def f(x):\n    return helpers.helper(x)\n", helpers=helpers)
    ns3 = define("def f(x):\n    return helpers.helper(x)\n", helpers=helpers3)
    assert hash_code(ns1["f"]) != hash_code(ns3["f"])


def test_a_file_edited_but_not_reloaded_counts_as_the_code_that_was_loaded(tmp_path: Path) -> None:
    old = import_file(tmp_path, "def f(x):\n    return x * 2\n")
    Path(old.__file__).write_text("def f(x):\n    return x * 3\n")  # not reloaded
    new = import_file(tmp_path, "def f(x):\n    return x * 3\n")
    assert old.f(1) == 2 and new.f(1) == 3
    assert hash_code(old.f) != hash_code(new.f)  # was equal: both read the new file
    again = import_file(tmp_path, "def f(x):\n    return x * 3\n    # same code\n")
    assert hash_code(again.f) == hash_code(new.f)  # unedited files: by source, as before


def test_user_modules_count_by_the_attributes_read_now(tmp_path: Path) -> None:
    cfg = import_file(tmp_path, "alpha = 1\nbeta = [1]\n")
    ns = define("def f(x):\n    return x * cfg.alpha\n", cfg=cfg)
    whole = define("def g():\n    return vars(cfg)\n", cfg=cfg)  # the module itself
    before, before_whole = hash_code(ns["f"]), hash_code(whole["g"])
    cfg.beta.append(2)  # not read by f
    assert hash_code(ns["f"]) == before and hash_code(whole["g"]) != before_whole
    cfg.alpha = 7
    assert hash_code(ns["f"]) != before
    cfg.alpha = 1
    assert hash_code(ns["f"]) == before
    assert hash_value(cfg) != hash_value(cfg, reads=frozenset({"alpha"}))
    assert hash_value(cfg, reads=frozenset({"alpha"})) == hash_value(cfg, reads=frozenset({"alpha"}))


def test_module_versions(tmp_path: Path) -> None:
    ns = define(
        "import numpy as np\nimport os\nfrom pandas import DataFrame\n"
        "def g(x):\n    return DataFrame(x)\n"
        "def f(x):\n    return np.sum(x) + g(x) + os.sep\n"
    )
    versions = module_versions(ns["f"])
    assert versions == {"numpy": np.__version__, "pandas": pd.__version__}
    assert module_versions({"df": pd.DataFrame(), "a": np.zeros(1), "n": 1}) == {
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }


def test_combine_key() -> None:
    parts = {"code": hash_value("x = 1"), "inputs": {"a": hash_value(1), "b": "2"}, "task": "t"}
    # key parts and inputs by name are records: their order is not content
    assert combine_key(parts) == combine_key(dict(reversed(parts.items())))
    assert combine_key(parts) == combine_key({**parts, "inputs": {"b": "2", "a": hash_value(1)}})
    assert combine_key(parts) != combine_key({**parts, "task": "u"})
    assert combine_key(parts) != hash_value(parts)  # KEY_VERSION is mixed in
    assert KEY_VERSION >= 1


@settings(max_examples=200, deadline=None)
@given(parts=st.dictionaries(st.sampled_from(["code", "kind", "task", "version", "a", "z", ""]),
                             st.text(max_size=8), max_size=5),
       inputs=st.dictionaries(st.text(max_size=6), st.text(max_size=8) | st.integers(),
                              max_size=4))
def test_the_key_of_a_sweeps_inputs_is_combine_key(parts: dict, inputs: dict) -> None:
    # a sweep encodes the fixed parts once; its keys must be exactly the calls' keys
    assert key_of_inputs(parts)(inputs) == combine_key({**parts, "inputs": inputs})


# --------------------------------------------------------------------------- properties

json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text() | st.binary(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=4)
        | st.frozensets(st.integers() | st.text(max_size=3), max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(json_like)
def test_equal_values_hash_equal(value: Any) -> None:
    assert hash_value(value) == hash_value(copy.deepcopy(value))


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=5), json_like, min_size=2, max_size=6), st.randoms())
def test_dict_reordering(value: dict, rnd: Any) -> None:
    items = list(value.items())
    rnd.shuffle(items)
    same_order = [k for k, _ in items] == list(value)
    assert (hash_value(value) == hash_value(dict(items))) == same_order


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=6) | st.none(), max_size=30), st.integers(0, 30))
def test_arrow_chunk_split_property(values: list, cut: int) -> None:
    arr = pa.array(values, type=pa.string())
    cut = min(cut, len(values))
    chunked = pa.chunked_array([arr.slice(0, cut), arr.slice(cut)], type=pa.string())
    assert hash_value(arr) == hash_value(chunked)


# --------------------------------------------------------------------------- processes

_SCRIPT = """
import sys, numpy as np, pandas as pd
sys.path.insert(0, sys.argv[1])
import tc_helpers_mod
from taskcache.hashing import hash_value, hash_code
print(hash_value({"b", "a", "c", "dd"}))
print(hash_value({"x": {"q", "r"}, "y": frozenset("abc")}))
print(hash_value(pd.DataFrame({"s": ["a", "b"], "v": [1.0, 2.0]})))
print(hash_value(np.arange(10)))
print(hash_code(tc_helpers_mod.f))
print(hash_value(tc_helpers_mod.Obj()))
import datetime as dt, zoneinfo
print(hash_value(dt.datetime(2024, 7, 1, 12, tzinfo=zoneinfo.ZoneInfo("CET"))))
print(hash_value(dt.datetime(2024, 7, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=1), "CET"))))
print(hash_value({"b": [2], "a": {"y": 1, "x": 2}}))
"""


def test_cross_process_determinism(tmp_path: Path) -> None:
    (tmp_path / "tc_helpers_mod.py").write_text(
        "NAMES = {'a', 'b', 'c'}\n"
        "def helper(x):\n    return x in NAMES\n"
        "def f(x):\n    return helper(x)\n"
        "class Obj:\n    def __init__(self):\n        self.tags = {'p', 'q', 'r'}\n"
    )
    script = tmp_path / "script.py"
    script.write_text(_SCRIPT)
    outputs = []
    for seed in ("1", "2"):
        env = {**__import__("os").environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, str(script), str(tmp_path)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1]
    assert len(outputs[0].split()) == len(set(outputs[0].split())) == 9


# --------------------------------------------------------------------------- golden

GOLDEN = Path(__file__).parents[1] / "data" / "golden_hashes.json"


def golden_values(tmp_path: Path) -> dict[str, Any]:
    fixed = tmp_path / "fixed.txt"
    fixed.write_bytes(b"taskcache golden file\n")
    return {
        "int": 42,
        "bigint": -(2**100),
        "float": 3.25,
        "nan": math.nan,
        "negzero": -0.0,
        "str": "héllo",
        "bytes": b"\x00\x01",
        "none_bool": [None, True, False],
        "nested": {"a": [1, (2, 3.5)], "b": {"c": frozenset({1, 2})}, 7: "x"},
        "set": {"x", "y", "z"},
        "tuple": (1, "a", b"b"),
        "dataclass": Point(1, 2.5),
        "enum": Color.BLUE,
        "datetime": dt.datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=dt.UTC),
        "datetime_zone": dt.datetime(2024, 5, 6, 7, 8, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
        "dict_order": {"b": [2], "a": [1]},
        "date": dt.date(2024, 5, 6),
        "ndarray": np.arange(12, dtype=np.float64).reshape(3, 4),
        "int_array": np.array([[1, 2], [3, 4]], dtype=np.int32),
        "frame": pd.DataFrame(
            {"i": [1, 2, 3], "f": [0.5, np.nan, 2.0], "s": ["a", "b", None]},
            index=pd.Index(["x", "y", "z"], name="key"),
        ),
        "series": pd.Series([1.5, 2.5], index=[3, 4], name="s"),
        "arrow": pa.table({"a": [1, None], "b": ["x", "y"]}),
        "path": fixed,
    }


def test_golden_hashes(tmp_path: Path) -> None:
    """Pinned hashes. If this fails, hashes changed: that invalidates every user's cache,
    so bump KEY_VERSION in taskcache/hashing/__init__.py and regenerate the file with
    ``TASKCACHE_REGEN_GOLDEN=1 pytest tests/hashing/test_fingerprint.py -k golden``."""
    import json
    import os

    actual = {k: hash_value(v) for k, v in golden_values(tmp_path).items()}
    actual["KEY_VERSION"] = str(KEY_VERSION)
    if os.environ.get("TASKCACHE_REGEN_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
    expected = json.loads(GOLDEN.read_text())
    assert actual == expected


class _Node:
    def __init__(self, child):
        self.left = child
        self.right = child


def test_shared_sub_objects_are_hashed_once_not_exponentially():
    """Each level refers twice to the same child: 2**40 paths, 40 distinct objects."""
    import time

    node = None
    for _ in range(40):
        node = _Node(node)
    start = time.perf_counter()
    first = hash_value(node)
    assert time.perf_counter() - start < 5
    copy_ = None
    for _ in range(40):
        copy_ = _Node(copy_)
    assert hash_value(copy_) == first  # shared or not, equal content hashes equal


def test_matplotlib_figures_hash_by_what_they_show():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    same_fig, same_ax = plt.subplots()
    same_ax.plot([1, 2, 3])
    other_fig, other_ax = plt.subplots()
    other_ax.plot([1, 2, 4])
    try:
        assert hash_value(ax) == hash_value(ax) == hash_value(same_ax)
        assert hash_value(fig) == hash_value(same_fig)
        assert hash_value(other_ax) != hash_value(ax) and hash_value(other_fig) != hash_value(fig)
        assert hash_value(ax) != hash_value(fig)
    finally:
        plt.close("all")


# ---------------------------------------------------------------- one-call fast paths


def _streamed(value: Any) -> str:
    """The generic path: feed() into an xxh3 state, as for any other value."""
    from xxhash import xxh3_128

    from taskcache.hashing.core import Ctx, feed

    h = xxh3_128()
    feed(h, value, Ctx())
    return h.hexdigest()


def _streamed_key(parts: dict) -> str:
    from xxhash import xxh3_128

    from taskcache import hashing as fingerprint
    from taskcache.hashing import core as _hashcore

    h = xxh3_128()
    h.update(fingerprint._T_KEY)
    _hashcore.feed_int(h, fingerprint.KEY_VERSION)
    by_name = {k: dict(sorted(v.items())) if isinstance(v, dict) else v for k, v in sorted(parts.items())}
    _hashcore.feed_mapping(h, by_name, _hashcore.Ctx())
    return h.hexdigest()


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-2**200, 2**200),
                     st.floats(allow_nan=True), st.text())


@given(_scalars)
def test_scalar_fast_path_equals_the_streamed_hash(value: Any) -> None:
    assert hash_value(value) == _streamed(value)


_parts = st.dictionaries(st.text(max_size=8), st.one_of(
    st.text(max_size=8), st.dictionaries(st.text(max_size=8), st.text(max_size=40), max_size=4)),
    max_size=6)


@given(_parts)
def test_key_fast_path_equals_the_streamed_key(parts: dict) -> None:
    assert combine_key(parts) == _streamed_key(parts)
    assert combine_key({**parts, "n": 1}) != combine_key({**parts, "n": "1"})  # generic path


# -- library objects that pickle cannot describe (issue 12: pydata-book appa 44/45/79, ch07 77)

def test_regex_matches_hash_by_what_they_matched():
    import re

    regex = re.compile(r"(\w+)@(\w+)\.com")
    first = regex.search("mail wes@bright.com now")
    assert hash_value(first) == hash_value(regex.search("mail wes@bright.com now"))
    assert hash_value(first) != hash_value(regex.search("mail dave@bright.com now"))
    assert hash_value(first) != hash_value(regex.search("mail wes@bright.com now", 1))
    assert hash_value(first) != hash_value(re.compile(r"(\w+)@(\w+)\.co").search("mail wes@bright.com now"))


def test_ufuncs_hash_by_import_name_and_frompyfunc_ones_cannot():
    assert hash_value(np.add) == hash_value(np.add) != hash_value(np.subtract)

    def add_elements(x, y):
        return x + y

    def sub_elements(x, y):
        return x - y

    made = np.frompyfunc(add_elements, 2, 1)
    with pytest.raises(FingerprintError, match="'add_them'.*np.frompyfunc"):
        hash_value(made, name="add_them")
    sub_elements.__name__ = "add_elements"  # same display name, other code: never one hash
    with pytest.raises(FingerprintError):
        hash_value(np.frompyfunc(sub_elements, 2, 1))


def test_vectorize_hashes_by_its_function_and_options():
    def add_elements(x, y):
        return x + y

    def add_more(x, y):
        return x + y + 1

    vec = np.vectorize(add_elements, otypes=[np.float64])
    vec(np.arange(3), np.arange(3))  # caches a ufunc inside: the hash does not change
    assert hash_value(vec) == hash_value(np.vectorize(add_elements, otypes=[np.float64]))
    assert hash_value(vec) != hash_value(np.vectorize(add_more, otypes=[np.float64]))
    assert hash_value(vec) != hash_value(np.vectorize(add_elements, otypes=[np.int64]))


def test_array_flags_hash_by_the_flags():
    arr = np.ones((4, 5))
    assert hash_value(arr.flags) == hash_value(np.zeros((2, 2)).flags)
    assert hash_value(arr.flags) != hash_value(arr[:, :2].flags)
    assert hash_value(arr.flags) != hash_value(np.asfortranarray(arr).flags)
