"""The "json" codec: a tagged JSON encoding that round-trips exactly, type included.

Plain JSON carries ``None``, ``bool``, ``str``, ``list``, finite ``float``, small ``int`` and
``dict`` with ``str`` keys as themselves. Everything else is a tagged object
``{"__tc__": TAG, "v": ...}``: tuples, sets, frozensets, bytes, bytearrays, big ints (hex,
so the int/str digit limit never bites), NaN and infinities, complex, Decimal, dates and
times, and dicts whose keys are not all strings or include ``"__tc__"`` (stored as a list
of ``[key, value]`` pairs, in order). A user dict containing the key ``"__tc__"`` therefore
always takes the tagged form, so every plain object in the file is a user dict.

Types are checked exactly: a subclass (``OrderedDict``, ``defaultdict``, ``IntEnum``,
``namedtuple``, ``np.float64``) is refused, so another codec (usually pickle) keeps it.
Shared references inside a value are stored as copies (equal, not identical).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

TAG = "__tc__"
FORMAT = "taskcache-json"
VERSION = 1
MAX_DEPTH = 200
_SAFE_INT = 2**53  # ints beyond this are tagged: other JSON readers lose precision

_SCALARS = (type(None), bool, str)
_CONTAINERS = (list, tuple, set, frozenset, dict)
_DATETIMES = (dt.datetime, dt.date, dt.time, dt.timedelta)


def _tz_ok(value: dt.datetime | dt.time) -> bool:
    tz = value.tzinfo
    if tz is None:
        return True
    # only unnamed fixed offsets survive isoformat(); zoneinfo/pytz zones go to pickle
    return type(tz) is dt.timezone and tz == dt.timezone(tz.utcoffset(None)) and (
        tz.tzname(None) == dt.timezone(tz.utcoffset(None)).tzname(None)
    )


def is_exact_json(value: Any, _depth: int = 0, _path: frozenset[int] = frozenset()) -> bool:
    """True when ``value`` is made only of types this codec restores exactly (no cycles)."""
    t = type(value)
    if t in _SCALARS or t is int or t is float or t is complex or t is Decimal:
        return True
    if t in (bytes, bytearray, dt.date, dt.timedelta):
        return True
    if t is dt.datetime or t is dt.time:
        return _tz_ok(value)
    if t not in _CONTAINERS or _depth >= MAX_DEPTH or id(value) in _path:
        return False
    path = _path | {id(value)}
    if t is dict:
        items: Any = (x for kv in value.items() for x in kv)
    else:
        items = value
    return all(is_exact_json(x, _depth + 1, path) for x in items)


def to_jsonable(value: Any) -> Any:
    """The JSON-ready structure of ``value`` (assumes ``is_exact_json(value)``)."""
    t = type(value)
    if t in _SCALARS:
        return value
    if t is int:
        return value if -_SAFE_INT <= value <= _SAFE_INT else {TAG: "int", "v": hex(value)}
    if t is float:
        return value if math.isfinite(value) else {TAG: "float", "v": repr(value)}
    if t is list:
        return [to_jsonable(x) for x in value]
    if t is dict:
        if all(type(k) is str for k in value) and TAG not in value:
            return {k: to_jsonable(v) for k, v in value.items()}
        return {TAG: "dict", "v": [[to_jsonable(k), to_jsonable(v)] for k, v in value.items()]}
    if t in (tuple, set, frozenset):
        return {TAG: t.__name__, "v": [to_jsonable(x) for x in value]}
    if t in (bytes, bytearray):
        return {TAG: t.__name__, "v": base64.b64encode(value).decode("ascii")}
    if t is complex:
        return {TAG: "complex", "v": [to_jsonable(value.real), to_jsonable(value.imag)]}
    if t is Decimal:
        return {TAG: "decimal", "v": str(value)}
    if t is dt.timedelta:
        return {TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if t is dt.date:
        return {TAG: "date", "v": value.isoformat()}
    if t in (dt.datetime, dt.time):
        return {TAG: t.__name__, "v": value.isoformat(), "fold": value.fold}
    raise TypeError(f"{t.__qualname__} is not supported by the json codec")


def _hook(obj: dict[str, Any]) -> Any:
    tag = obj.get(TAG)
    if tag is None:
        return obj
    v = obj["v"]
    if tag == "dict":
        return {k: x for k, x in v}
    if tag == "tuple":
        return tuple(v)
    if tag == "set":
        return set(v)
    if tag == "frozenset":
        return frozenset(v)
    if tag == "int":
        return int(v, 16)
    if tag == "float":
        return float(v)
    if tag in ("bytes", "bytearray"):
        raw = base64.b64decode(v.encode("ascii"), validate=True)
        return raw if tag == "bytes" else bytearray(raw)
    if tag == "complex":
        return complex(v[0], v[1])
    if tag == "decimal":
        return Decimal(v)
    if tag == "timedelta":
        return dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2])
    if tag == "date":
        return dt.date.fromisoformat(v)
    if tag == "datetime":
        return dt.datetime.fromisoformat(v).replace(fold=obj["fold"])
    if tag == "time":
        return dt.time.fromisoformat(v).replace(fold=obj["fold"])
    raise ValueError(f"unknown json codec tag {tag!r}; written by a newer taskcache?")


def from_jsonable(obj: Any) -> Any:
    """Inverse of :func:`to_jsonable` for a structure parsed without the tag hook."""
    return json.loads(json.dumps(obj, allow_nan=False), object_hook=_hook)


def dumps(value: Any) -> str:
    """Standard JSON text (no NaN literals, ASCII only) for an exact-JSON value."""
    doc = {"format": FORMAT, "version": VERSION, "value": to_jsonable(value)}
    return json.dumps(doc, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def loads(text: str) -> Any:
    doc = json.loads(text, object_hook=_hook)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("not a taskcache json artifact")
    if doc.get("version", 0) > VERSION:
        raise ValueError(f"taskcache json version {doc['version']} is newer than {VERSION}")
    return doc["value"]


class JsonCodec:
    """JSON-representable data, exact types (see the module docstring)."""

    name = "json"
    hash_exact = True  # decoded values hash as the originals (tests/codecs checks it)
    suffix = ".json"
    unsafe = False

    def can_encode(self, value: Any) -> bool:
        return is_exact_json(value)

    def encode(self, value: Any, path: Path) -> None:
        Path(path).write_text(dumps(value), encoding="ascii")

    def decode(self, path: Path) -> Any:
        return self.decode_bytes(Path(path).read_bytes())

    def decode_bytes(self, data: bytes) -> Any:
        return loads(data.decode("ascii"))
