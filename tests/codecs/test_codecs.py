"""Codecs: exact round trips (type included), refusals, registry order and laziness."""

from __future__ import annotations

import collections
import datetime as dt
import enum
import json
import math
import os
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from taskcache.codecs import codec_for, get_codec, register_codec, registry
from taskcache.codecs.frames import frame_problem
from taskcache.codecs.tagged_json import JsonCodec
from taskcache.describe import describe
from taskcache.errors import TaskcacheError, UnknownCodecError, UnstorableValueError

SETTINGS = settings(max_examples=int(os.environ.get("TC_EXAMPLES", "150")), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def roundtrip(value: Any, tmp_path: Path, *, allow_pickle: bool = True, prefer: str | None = None,
              expect: str | None = None) -> Any:
    codec = codec_for(value, allow_pickle=allow_pickle, name="x", prefer=prefer)
    if expect is not None:
        assert codec.name == expect, (codec.name, value)
    path = tmp_path / f"value{codec.suffix}"
    codec.encode(value, path)
    return get_codec(codec.name).decode(path)


def assert_same(a: Any, b: Any) -> None:
    """Equal with NaN == NaN, -0.0 != 0.0, and the same type at every level."""
    assert type(a) is type(b), (type(a), type(b), a, b)
    if isinstance(a, float):
        assert (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    elif isinstance(a, complex):
        assert_same(a.real, b.real)
        assert_same(a.imag, b.imag)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, dict):
        assert list(a) == list(b)  # order too
        for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True):
            assert_same(ka, kb)
            assert_same(va, vb)
    elif isinstance(a, set | frozenset):
        assert a == b and sorted(map(repr, a)) == sorted(map(repr, b))
    elif isinstance(a, Decimal) and a.is_nan():
        assert b.is_nan() and str(a) == str(b)
    else:
        assert a == b


# ---------------------------------------------------------------- json

keys = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8),
    st.just("__tc__"), st.tuples(st.integers(), st.text(max_size=3)), st.binary(max_size=4),
)
hashable = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5),
                     st.floats(allow_nan=False), st.binary(max_size=4))
leaves = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.integers(min_value=2**60, max_value=2**2000),
    st.floats(), st.just(-0.0), st.just(float("nan")),
    st.text(), st.binary(), st.binary().map(bytearray),
    st.complex_numbers(), st.decimals(), st.datetimes(), st.dates(), st.times(),
    st.timedeltas(),
    st.datetimes(timezones=st.just(dt.timezone(dt.timedelta(hours=-3)))),
)
json_values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.frozensets(hashable, max_size=4),
        st.sets(hashable, max_size=4),
        st.dictionaries(st.text(max_size=6), inner, max_size=4),
        st.dictionaries(keys, inner, max_size=4),
    ),
    max_leaves=25,
)


@SETTINGS
@given(value=json_values)
def test_json_roundtrips_exactly(value: Any, tmp_path: Path) -> None:
    out = roundtrip(value, tmp_path, allow_pickle=False, expect="json")
    assert_same(value, out)
    json.loads((tmp_path / "value.json").read_text(), parse_constant=pytest.fail)  # standard JSON


def test_json_ints_beyond_str_digit_limit(tmp_path: Path) -> None:
    value = [-(2**20000) - 1, 2**53 + 1, -(2**53)]
    out = roundtrip(value, tmp_path, expect="json")
    assert out == value and all(type(x) is int for x in out)
    assert describe(value)["repr"]  # repr of huge ints fails; describe does not


def test_json_escapes_user_tag_key(tmp_path: Path) -> None:
    value = {"__tc__": "tuple", "v": [1, 2]}
    assert_same(value, roundtrip(value, tmp_path, expect="json"))


@pytest.mark.parametrize("value", [
    collections.OrderedDict(a=1), collections.defaultdict(list, a=[1]), collections.Counter("ab"),
    collections.namedtuple("P", "x y")(1, 2), enum.IntEnum("E", "A").A, np.float64(1.5),
    [collections.OrderedDict()], {"k": (1, np.int64(2))},
    dt.datetime(2020, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1), "CET")),
])
def test_json_refuses_subclasses(value: Any) -> None:
    assert not JsonCodec().can_encode(value)


def test_json_refuses_cycles() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    assert not JsonCodec().can_encode(cyclic)


class Point(collections.namedtuple("Point", "x y")):
    pass


class Color(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize("value", [
    collections.OrderedDict(a=1, b=2), collections.defaultdict(list, a=[1]), Point(1, 2),
    Color.RED, {"nested": collections.OrderedDict(z=1)},
])
def test_subclasses_keep_their_type_via_pickle(value: Any, tmp_path: Path) -> None:
    out = roundtrip(value, tmp_path, expect="pickle")
    assert type(out) is type(value) and out == value
    with pytest.raises(UnstorableValueError):
        codec_for(value, allow_pickle=False)


def test_bool_stays_bool_and_int_stays_int(tmp_path: Path) -> None:
    out = roundtrip([True, 1, 0, False, {True: 1, 2.0: 2, 3: 3, None: 4}], tmp_path, expect="json")
    assert_same([True, 1, 0, False, {True: 1, 2.0: 2, 3: 3, None: 4}], out)


# ---------------------------------------------------------------- numpy

dtypes = st.one_of(hnp.boolean_dtypes(), hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(),
                   hnp.floating_dtypes(), hnp.complex_number_dtypes(), hnp.datetime64_dtypes(),
                   hnp.timedelta64_dtypes(), hnp.unicode_string_dtypes(), hnp.byte_string_dtypes())


@SETTINGS
@given(arr=hnp.arrays(dtypes, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)))
def test_npy_roundtrips(arr: np.ndarray, tmp_path: Path) -> None:
    out = roundtrip(arr, tmp_path, allow_pickle=False, expect="npy")
    assert type(out) is np.ndarray and out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)


def test_npy_fortran_and_views(tmp_path: Path) -> None:
    arr = np.asfortranarray(np.arange(12.0).reshape(3, 4))[:, ::2]
    np.testing.assert_array_equal(roundtrip(arr, tmp_path, expect="npy"), arr)


@pytest.mark.parametrize("value", [np.float32(1.5), np.int8(-3), np.bool_(True), np.float64("nan"),
                                   np.datetime64("2020-01-01", "D"), np.str_("hé")])
def test_numpy_scalars(value: Any, tmp_path: Path) -> None:
    out = roundtrip(value, tmp_path, allow_pickle=False, expect="npy-scalar")
    assert type(out) is type(value)
    np.testing.assert_array_equal(out, value)


def test_object_arrays_and_subclasses_not_npy(tmp_path: Path) -> None:
    obj = np.array([1, "a"], dtype=object)
    assert roundtrip(obj, tmp_path, expect="pickle").tolist() == [1, "a"]
    with pytest.raises(UnstorableValueError, match="allow_pickle=True"):
        codec_for(obj, allow_pickle=False, name="obj")
    masked = np.ma.masked_array([1, 2], mask=[0, 1])
    assert codec_for(masked, allow_pickle=True).name == "pickle"


# ---------------------------------------------------------------- pandas


def _column(draw: Any, kind: str, n: int) -> Any:
    ints = st.integers(-(2**62), 2**62)
    some = lambda s: draw(st.lists(s, min_size=n, max_size=n))  # noqa: E731
    if kind == "int64":
        return np.array(some(ints), dtype=np.int64)
    if kind == "uint64":
        return np.array(some(st.integers(0, 2**64 - 1)), dtype=np.uint64)
    if kind == "float64":
        return np.array(some(st.floats() | st.just(-0.0)), dtype=np.float64)
    if kind == "float32":
        return np.array(some(st.floats(width=32)), dtype=np.float32)
    if kind == "bool":
        return np.array(some(st.booleans()), dtype=bool)
    if kind == "str":
        return pd.Series(some(st.none() | st.text(max_size=5)), dtype="str")
    if kind == "string":
        return pd.Series(some(st.none() | st.text(max_size=5)), dtype="string")
    if kind == "object-str":
        return pd.Series(some(st.text(max_size=5)), dtype=object)
    if kind == "object-mixed":
        return pd.Series(some(st.one_of(st.none(), st.integers(), st.text(max_size=3),
                                        st.binary(max_size=3), st.just(float("nan")))), dtype=object)
    if kind == "Int64":
        return pd.Series(some(st.none() | ints), dtype="Int64")
    if kind == "boolean":
        return pd.Series(some(st.none() | st.booleans()), dtype="boolean")
    if kind == "Float64":
        return pd.array(some(st.none() | st.floats(allow_nan=False)), dtype="Float64")
    if kind == "category":
        cats = draw(st.lists(st.text(max_size=3), min_size=1, max_size=4, unique=True))
        codes = some(st.integers(-1, len(cats) - 1))
        return pd.Categorical.from_codes(codes, categories=cats, ordered=draw(st.booleans()))
    if kind == "category-int":
        return pd.Categorical(some(st.integers(0, 3)))
    if kind.startswith(("datetime64", "timedelta64")):
        return pd.Series(some(st.none() | st.integers(-(10**9), 10**9)), dtype="float64").astype(kind)
    if kind == "tz":
        return pd.Series(some(st.integers(0, 10**12)), dtype="datetime64[ms]").dt.tz_localize(
            draw(st.sampled_from(["UTC", "Europe/Paris", dt.UTC])))
    if kind == "period":
        return pd.period_range("2020-01", periods=n, freq=draw(st.sampled_from(["M", "D", "Q"])))
    if kind == "interval":
        return pd.arrays.IntervalArray.from_breaks(np.arange(n + 1.0), closed=draw(
            st.sampled_from(["left", "right", "both", "neither"])))
    raise AssertionError(kind)


KINDS = ["int64", "uint64", "float64", "float32", "bool", "str", "string", "object-str",
         "object-mixed", "Int64", "boolean", "Float64", "category", "category-int",
         "datetime64[s]", "datetime64[ms]", "datetime64[ns]", "timedelta64[us]", "tz", "period",
         "interval"]


@st.composite
def indexes(draw: Any, n: int) -> Any:
    name = draw(st.none() | st.text(max_size=4))
    kind = draw(st.sampled_from(["range", "int", "str", "object-str", "dates", "multi"]))
    if kind == "range":
        start, step = draw(st.integers(-5, 5)), draw(st.integers(1, 3))
        return pd.RangeIndex(start, start + step * n, step, name=name)
    if kind == "int":
        return pd.Index(draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n)), dtype="int64", name=name)
    if kind in ("str", "object-str"):
        values = draw(st.lists(st.text(max_size=3), min_size=n, max_size=n))
        return pd.Index(values, dtype="str" if kind == "str" else object, name=name)
    if kind == "dates":
        freq = draw(st.sampled_from(["D", "h", "2min", None]))
        idx = pd.date_range("2021-03-01", periods=n, freq=freq or "D", name=name)
        return idx if freq else pd.DatetimeIndex(list(idx), name=name)
    names = draw(st.lists(st.none() | st.text(max_size=3), min_size=2, max_size=2))
    return pd.MultiIndex.from_arrays([np.arange(n), [f"k{i % 2}" for i in range(n)]], names=names)


@st.composite
def frames(draw: Any) -> Any:
    n = draw(st.integers(0, 5))
    kinds = draw(st.lists(st.sampled_from(KINDS), max_size=4))
    data = {i: _column(draw, k, n) for i, k in enumerate(kinds)}
    frame = pd.DataFrame(data, index=pd.RangeIndex(n))
    labels = draw(st.sampled_from(["str", "range", "int", "object-str"]))
    if labels == "str" or labels == "object-str":
        names = draw(st.lists(st.text(max_size=4), min_size=len(kinds), max_size=len(kinds),
                              unique=True))
        frame.columns = pd.Index(names, dtype=object if labels == "object-str" else "str")
    elif labels == "int":
        frame.columns = pd.Index(draw(st.lists(st.integers(-9, 9), min_size=len(kinds),
                                               max_size=len(kinds), unique=True)), dtype="int64")
    frame.columns.name = draw(st.none() | st.text(max_size=3))
    frame.index = draw(indexes(n))
    if draw(st.booleans()) and len(kinds):
        series = frame.iloc[:, 0]
        series.name = draw(st.one_of(st.none(), st.text(max_size=3), st.integers(),
                                     st.tuples(st.integers(), st.text(max_size=2))))
        return series
    return frame


def assert_frame_same(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    if isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b, check_exact=True, check_index_type=True,
                                       check_series_type=True, check_freq=True)
        assert_same(a.name, b.name)
        a, b = a.to_frame(), b.to_frame()
    pd.testing.assert_frame_equal(a, b, check_exact=True, check_index_type=True,
                                  check_column_type=True, check_frame_type=True, check_freq=True)
    assert list(a.dtypes) == list(b.dtypes)
    for x, y in ((a.index, b.index), (a.columns, b.columns)):
        assert type(x) is type(y) and x.dtype == y.dtype and list(x.names) == list(y.names)
        if isinstance(x, pd.MultiIndex):
            assert [lv.dtype for lv in x.levels] == [lv.dtype for lv in y.levels]
        else:
            assert [type(v) for v in x] == [type(v) for v in y]
    for i, dtype in enumerate(a.dtypes):
        if isinstance(dtype, np.dtype) and dtype.kind == "O":
            assert [type(v) for v in a.iloc[:, i]] == [type(v) for v in b.iloc[:, i]]


@SETTINGS
@given(value=frames())
def test_frames_roundtrip_exactly_with_any_chosen_codec(value: Any, tmp_path: Path) -> None:
    assert_frame_same(value, roundtrip(value, tmp_path))


@SETTINGS
@given(value=frames(), fmt=st.sampled_from(["parquet", "arrow"]))
def test_frame_rules_accept_only_exact_roundtrips(value: Any, fmt: str, tmp_path: Path) -> None:
    codec = get_codec(fmt)
    if codec.can_encode(value):
        codec.encode(value, tmp_path / "f")
        assert_frame_same(value, codec.decode(tmp_path / "f"))
    else:
        assert frame_problem(value, fmt)


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"a": [1, 2], "b": ["x", None], "c": [1.5, float("nan")]}),
    pd.DataFrame(np.zeros((3, 2))),
    pd.DataFrame({"t": pd.date_range("2020", periods=3, unit="s")}, index=pd.date_range("2020", periods=3)),
    pd.Series([1.0, 2.0], name="price", index=pd.Index(["a", "b"], name="k")),
    pd.DataFrame(index=pd.Index([1, 2], name="only_index")),
])
def test_common_frames_use_parquet(frame: Any, tmp_path: Path) -> None:
    assert_frame_same(frame, roundtrip(frame, tmp_path, allow_pickle=False, expect="parquet"))
    assert_frame_same(frame, roundtrip(frame, tmp_path, allow_pickle=False, prefer="arrow",
                                       expect="arrow"))


def _with_attrs() -> pd.DataFrame:
    frame = pd.DataFrame({"a": [1]})
    frame.attrs["unit"] = "m"
    return frame


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"a": pd.Series([1, "x"], dtype=object)}),
    pd.DataFrame({"a": pd.Series([b"x", b"y"], dtype=object)}),
    pd.DataFrame({"a": pd.Series([{"k": 1}], dtype=object)}),
    pd.DataFrame({"a": pd.Series([Decimal("1.1")], dtype=object)}),
    pd.DataFrame({"a": pd.Series(["x", None], dtype=object)}),
    pd.DataFrame([[1, 2]], columns=["a", "a"]),
    pd.DataFrame([[1, 2]], columns=[1.5, 2.5]),
    pd.DataFrame([[1, 2]], columns=["a", 1]),
    pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", 1), ("a", 2)])),
    pd.DataFrame({"a": [1, 2]}, index=pd.MultiIndex.from_tuples([(1, 2), (3, 4)], names=["x", "x"])),
    pd.DataFrame({"a": [1]}, index=pd.Index(["a"], name="a")),
    _with_attrs(),
    pd.DataFrame({"a": [1 + 2j]}),
    pd.DataFrame({"a": pd.arrays.SparseArray([0, 1])}),
    pd.DataFrame({"__index_level_0__": [1]}),
])
def test_refused_frames_go_to_pickle_or_raise(frame: Any, tmp_path: Path) -> None:
    assert not get_codec("parquet").can_encode(frame)
    codec = codec_for(frame, allow_pickle=True)
    assert codec.name in ("pickle", "arrow")
    assert_frame_same(frame, roundtrip(frame, tmp_path))
    if codec.name == "pickle":
        with pytest.raises(UnstorableValueError, match="'df'.*allow_pickle=True"):
            codec_for(frame, allow_pickle=False, name="df")


def test_int_categories_fall_back_to_arrow_not_pickle(tmp_path: Path) -> None:
    frame = pd.DataFrame({"c": pd.Categorical([1, 2, 1])})
    assert_frame_same(frame, roundtrip(frame, tmp_path, allow_pickle=False, expect="arrow"))


class MyFrame(pd.DataFrame):
    pass


def test_frame_subclass_not_parquet() -> None:
    assert codec_for(MyFrame({"a": [1]}), allow_pickle=True).name == "pickle"


# ---------------------------------------------------------------- module, pickle, registry


def test_module_codec(tmp_path: Path) -> None:
    assert roundtrip(np, tmp_path, allow_pickle=False, expect="module") is np
    assert json.loads((tmp_path / "value.json").read_text()) == {"module": "numpy"}


def test_unpicklable_names_variable_type_and_reason() -> None:
    def gen() -> Any:
        yield 1

    for value, type_name in ((gen(), "builtins.generator"), (threading.Lock(), "_thread.lock")):
        with pytest.raises(UnstorableValueError) as info:
            codec_for(value, allow_pickle=True, name="thing")
        assert "'thing'" in str(info.value) and type_name in str(info.value)
        assert "pickle failed" in str(info.value)
    with open(__file__) as f, pytest.raises(UnstorableValueError, match="TextIOWrapper"):
        codec_for(f, allow_pickle=True, name="f")


def test_pickle_roundtrip(tmp_path: Path) -> None:
    value = {"when": dt.datetime.now(dt.UTC), "p": Point(1, 2), "arr": np.arange(3)}
    out = roundtrip(value, tmp_path, expect="pickle")
    assert out["p"] == value["p"] and get_codec("pickle").unsafe


def test_get_codec_unknown() -> None:
    with pytest.raises(UnknownCodecError, match="'zstd-magic'.*register it") as info:
        get_codec("zstd-magic")
    assert isinstance(info.value, TaskcacheError) and isinstance(info.value, KeyError)


class Money:
    def __init__(self, cents: int) -> None:
        self.cents = cents

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and other.cents == self.cents


class MoneyCodec:
    name, suffix, unsafe = "test-money", ".money", False

    def can_encode(self, value: Any) -> bool:
        return type(value) is Money

    def encode(self, value: Any, path: Path) -> None:
        Path(path).write_text(str(value.cents))

    def decode(self, path: Path) -> Any:
        return Money(int(Path(path).read_text()))


class DictCodec(MoneyCodec):
    name = "test-dict"

    def can_encode(self, value: Any) -> bool:
        return type(value) is dict and value.get("magic") == 1


def test_user_codec_precedence(tmp_path: Path) -> None:
    register_codec(Money, MoneyCodec())
    assert roundtrip(Money(5), tmp_path, allow_pickle=False, expect="test-money") == Money(5)
    register_codec(dict, DictCodec())  # first=True: ahead of json for dicts it accepts
    try:
        assert codec_for({"magic": 1}, allow_pickle=False).name == "test-dict"
        assert codec_for({"magic": 2}, allow_pickle=False).name == "json"
    finally:
        registry._by_type[dict].remove(registry._by_name.pop("test-dict"))


def test_dotted_registration_resolves_lazily(tmp_path: Path) -> None:
    register_codec("tests.not_imported_yet.Thing", MoneyCodec(), first=True)  # module absent
    register_codec("pandas.DataFrame", DictCodec(), first=False)
    assert codec_for(pd.DataFrame({"a": [1]}), allow_pickle=True).name == "parquet"


def test_importing_codecs_does_not_import_heavy_modules() -> None:
    code = ("import sys, taskcache.codecs as c, taskcache.describe as d; c.codec_for({'a': (1,)}, allow_pickle=True); "
            "d.describe([1]); print(sorted(m for m in ('pandas', 'numpy', 'pyarrow') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_describe() -> None:
    frame = pd.DataFrame({"a": range(1000), 3: 1.5})
    info = describe(frame)
    assert info["type"] == "pandas.DataFrame" or info["type"].endswith(".DataFrame")
    assert info["shape"] == [1000, 2] and info["rows"] == 1000 and info["columns"] == ["a", "3"]
    assert len(info["repr"]) <= 200
    assert describe(np.zeros((2, 3)))["shape"] == [2, 3]
    long = describe(list(range(10**5)))
    assert long["type"] == "builtins.list" and len(long["repr"]) <= 200 and long["shape"] is None

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

        @property
        def shape(self) -> Any:
            raise RuntimeError("no")

    assert describe(Broken())["type"].endswith("Broken")


# -- regex match objects (issue 12: pydata-book ch07 cells 77, 81) ---------------------------

@pytest.mark.parametrize(("regex", "how", "text", "bounds"), [
    (r"(\w+)@(\w+)\.(\w+)", "search", "Dave dave@google.com Steve steve@gmail.com", ()),
    (r"(?P<user>\w+)@(?P<host>\w+)", "match", "wesm@bright.net", ()),
    (r"a+", "fullmatch", "aaa", ()),
    (r"a+?", "search", "xxaaa", (1, 4)),  # lazy: search and match agree, fullmatch does not
    (rb"(\d+)", "search", b"abc 123 def", ()),
    (r"straße", "search", "STRASSE straße", ()),
])
def test_regex_matches_come_back_found_again(regex, how, text, bounds, tmp_path):
    import re

    from taskcache.hashing import hash_value

    compiled = re.compile(regex, re.IGNORECASE if isinstance(regex, str) else 0)
    match = getattr(compiled, how)(text, *bounds)
    codec = codec_for(match, allow_pickle=False, name="m")
    assert codec.name == "re-match" and not codec.unsafe
    codec.encode(match, tmp_path / "m")
    back = codec.decode(tmp_path / "m")
    assert type(back) is re.Match and back.re == match.re and back.string == match.string
    assert (back.pos, back.endpos, back.regs, back.lastindex, back.lastgroup) == \
        (match.pos, match.endpos, match.regs, match.lastindex, match.lastgroup)
    assert back.groupdict() == match.groupdict() and hash_value(back) == hash_value(match)


def test_a_match_on_a_string_subclass_is_not_stored_as_a_match():
    import re

    class Text(str):
        pass

    match = re.search("b", Text("abc"))
    with pytest.raises(UnstorableValueError, match="'m'"):
        codec_for(match, allow_pickle=False, name="m")


# -- closed files (issue 12: pydata-book ch06 cell 30, ch13 cell 2: `with open(path) as f:`) ------


def _everything_shown(file: Any) -> dict[str, Any]:
    """Every attribute of every layer of a file object, private ones included (reading one
    of a closed file may raise: the error counts too)."""
    from taskcache.fileio import file_layers

    shown = {}
    for depth, layer in enumerate(file_layers(file)):
        for attr in dir(layer):
            if attr.startswith("__") and attr != "__dict__":
                continue
            try:
                value = getattr(layer, attr)
            except Exception as exc:  # noqa: BLE001 -- which error is part of what it shows
                value = f"raises {type(exc).__name__}: {exc}"
            if not callable(value) and not hasattr(value, "closed"):
                shown[f"{depth}.{attr}"] = repr(value)
    return shown


@pytest.mark.parametrize(("mode", "options", "content"), [
    ("r", {}, "a,b\r\nc\nd\r"),           # read all three newline kinds
    ("r", {"newline": ""}, "a\r\nb\n"),   # as csv.reader wants it
    ("r", {"encoding": "utf-16"}, "é\n"),
    ("rb", {}, "bytes"),
    ("rb", {"buffering": 0}, "raw"),
    ("w", {"encoding": "latin-1", "errors": "replace"}, None),
    ("a", {"buffering": 1}, None),
    ("wb", {}, None),
])
def test_a_closed_file_comes_back_showing_all_it_showed(mode, options, content, tmp_path):
    from taskcache.hashing import hash_value

    path = tmp_path / "data.txt"
    if content is not None:
        path.write_bytes(content.encode(options.get("encoding", "utf-8")))
    with open(path, mode, **options) as f:
        if content is not None:
            f.read()
        else:
            f.write(b"out" if "b" in mode else "out\n")
    f.custom = "set by the user"  # an attribute set on the object comes back too
    before = path.read_bytes()
    codec = codec_for(f, allow_pickle=False, name="f")
    assert codec.name == "closed-file" and not codec.unsafe
    codec.encode(f, tmp_path / "f.json")
    back = codec.decode(tmp_path / "f.json")
    assert type(back) is type(f) and back.closed and repr(back) == repr(f)
    assert _everything_shown(back) == _everything_shown(f)
    assert hash_value(back) == hash_value(f)
    assert path.read_bytes() == before  # the file itself is never opened


def test_an_open_file_or_one_that_reads_and_writes_is_not_stored(tmp_path):
    from taskcache.errors import FingerprintError
    from taskcache.hashing import hash_value

    path = tmp_path / "data.txt"
    path.write_text("x\n")
    with open(path) as f:
        with pytest.raises(UnstorableValueError, match="TextIOWrapper"):
            codec_for(f, allow_pickle=True, name="f")
        with pytest.raises(FingerprintError, match="an open file"):
            hash_value(f, "f")
    with open(path, "r+") as g:
        g.read()
    with pytest.raises(UnstorableValueError, match="'g'"):  # r+ is not rebuilt
        codec_for(g, allow_pickle=True, name="g")
    assert hash_value(g) != hash_value(f)  # both closed now: keyed by what they show
    with open(path) as same, open(path) as again:
        same.read(), again.read()
    assert hash_value(same) == hash_value(again)  # two closed files that show the same
    detached = open(path)  # noqa: SIM115 -- detached at once
    with detached.detach():  # a text layer without its buffer: an error naming it, no traceback
        with pytest.raises(FingerprintError, match="'detached'.*detached from its buffer"):
            hash_value(detached, "detached")
        with pytest.raises(UnstorableValueError, match="'detached'"):
            codec_for(detached, allow_pickle=True, name="detached")


# ---------------------------------------------------------------- decoded values hash as the originals


def assert_hash_kept(value: Any, tmp_path: Path, codec_name: str) -> None:
    """What a hit gives back keys downstream work as ``value`` did. A codec with hash_exact:
    decode(encode(value)) hashes as value by its own content. Pickle (no such promise: some
    types drop state, numpy turns big-endian datetimes native): saved and loaded by the
    runner, which records the hash of the decoded value when it differs."""
    import uuid

    from taskcache.hashing import hash_value
    from taskcache.lifecycle.runner import get_runner
    from taskcache.records import RunSpec

    codec = get_codec(codec_name)
    if codec_name != "pickle":
        path = tmp_path / f"value{codec.suffix}"
        codec.encode(value, path)
        assert hash_value(codec.decode(path), as_stored=False) == hash_value(value, as_stored=False)
        return
    runner, boxed, fingerprint = get_runner(), _Boxed(value), uuid.uuid4().hex
    claim = runner.start(RunSpec(task="t", kind="function", fingerprint=fingerprint, code_hash="c"))
    runner.save(claim, "t", {"x": boxed}, duration=0.0)
    restored = runner.lookup(fingerprint).outputs["x"]
    assert type(restored) is _Boxed and hash_value(restored) == hash_value(boxed)


class _Boxed:
    """Forces the pickle codec for values another codec would take; hashes by its value."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce__(self) -> Any:
        return (_Boxed, (self.value,))


def test_the_codecs_that_declare_exact_hashes() -> None:
    """Each codec with hash_exact has a property test below; pickle does not declare it (the
    runner records the hash of what it decodes, see tests/lifecycle/test_restored_hashes.py)."""
    from taskcache.codecs import keeps_hash, registered_codecs

    exact = {name for name in registered_codecs() if keeps_hash(get_codec(name))}
    # re-match: test_regex_matches_come_back_found_again checks the hashes
    # closed-file: test_a_closed_file_comes_back_showing_all_it_showed
    assert exact == {"json", "npy", "npy-scalar", "parquet", "arrow", "module", "re-match",
                     "closed-file"}


@SETTINGS
@given(value=json_values, codec_name=st.sampled_from(["json", "pickle"]))
def test_json_like_values_hash_as_the_originals(value: Any, codec_name: str, tmp_path: Path) -> None:
    if codec_name == "json" and not get_codec("json").can_encode(value):
        return
    assert_hash_kept(value, tmp_path, codec_name)


@SETTINGS
@given(arr=hnp.arrays(dtypes, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)),
       codec_name=st.sampled_from(["npy", "pickle"]))
def test_arrays_hash_as_the_originals(arr: np.ndarray, codec_name: str, tmp_path: Path) -> None:
    assert_hash_kept(arr, tmp_path, codec_name)


@pytest.mark.parametrize("value", [np.float32(1.5), np.int8(-3), np.bool_(True), np.float64("nan"),
                                   np.datetime64("2020-01-01", "D"), np.str_("hé")])
def test_numpy_scalars_hash_as_the_originals(value: Any, tmp_path: Path) -> None:
    assert_hash_kept(value, tmp_path, "npy-scalar")
    assert_hash_kept(value, tmp_path, "pickle")


@SETTINGS
@given(value=frames(), codec_name=st.sampled_from(["parquet", "arrow", "pickle"]))
def test_frames_hash_as_the_originals(value: Any, codec_name: str, tmp_path: Path) -> None:
    """Categorical, tz-aware, period, interval columns; MultiIndex, dates, named indexes."""
    if get_codec(codec_name).can_encode(value):
        assert_hash_kept(value, tmp_path, codec_name)


def test_modules_hash_as_the_originals(tmp_path: Path) -> None:
    assert_hash_kept(np, tmp_path, "module")
    assert_hash_kept(json, tmp_path, "module")
