"""Core of the content hash: type tags, the dispatcher and Python built-in values.

Every value streams ``tag + payload`` into an xxh3_128 state, and every payload is
self-delimiting (a length or a count goes first), so the concatenation of two encodings can
never equal another one. Dicts stream their pairs in insertion order (Python dicts are ordered
and code sees that order: ``pd.DataFrame(d).columns``); sets hash each member into its own
digest and feed the sorted digests. Everything else (records, subclasses, arrays, frames, code, files, reduce values)
is hashed by the fallback the package installs (``objects.feed_other``).
"""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from xxhash import xxh3_128

from taskcache.describe import short_repr, type_name
from taskcache.errors import FingerprintError

U64 = struct.Struct("<Q").pack
F64 = struct.Struct("<d").pack
NAN = F64(float("nan"))
_TAGS: set[bytes] = set()


def tag(name: str) -> bytes:
    """A length-prefixed type tag; each tag may be declared once."""
    raw = name.encode()
    out = bytes([len(raw)]) + raw
    assert out not in _TAGS, name
    _TAGS.add(out)
    return out


T_NONE, T_TRUE, T_FALSE, T_INT, T_FLOAT = (
    tag(n) for n in ("none", "true", "false", "int", "float")
)
T_COMPLEX, T_STR, T_BYTES, T_BYTEARRAY = (tag(n) for n in ("complex", "str", "bytes", "bytearray"))
T_MEMVIEW, T_DECIMAL, T_FRACTION = tag("memoryview"), tag("decimal"), tag("fraction")
T_DATETIME, T_DATE, T_TIME, T_DELTA = (tag(n) for n in ("datetime", "date", "time", "timedelta"))
T_UUID, T_ENUM, T_RANGE, T_LIST, T_TUPLE = (
    tag(n) for n in ("uuid", "enum", "range", "list", "tuple")
)
T_DICT, T_SET, T_FROZENSET = tag("dict"), tag("set"), tag("frozenset")
T_NAMEDTUPLE, T_DATACLASS, T_SUBCLASS = tag("namedtuple"), tag("dataclass"), tag("subclass")
T_BACKREF, T_CUSTOM, T_OBJECT, T_GLOBAL = (
    tag(n) for n in ("backref", "custom", "object", "global")
)
T_CODE, T_ELLIPSIS = tag("code"), tag("ellipsis")
MAX_DEPTH = 400


class Unhashable(Exception):
    """Internal: carries the offending value and the path to it up to the public API."""

    def __init__(self, value: Any, reason: str) -> None:
        super().__init__(reason)
        self.type_name = type_name(type(value))
        self.reason = reason
        self.path: list[str] = []  # innermost first

    def to_error(self, name: str | None) -> FingerprintError:
        reason = self.reason
        if self.path:
            where = (name or "value") + "".join(reversed(self.path))
            reason = f"at {where}: {reason}"
        return FingerprintError(name, self.type_name, reason)


class Ctx:
    """State of one top-level hash: cycle guards and the memo of code digests."""

    __slots__ = ("active", "depth", "code_active", "memo", "min_backref", "min_obj_backref")

    def __init__(self) -> None:
        self.active: dict[int, int] = {}  # id of a container being hashed -> its depth
        self.depth = 0
        self.code_active: dict[int, int] = {}  # same for functions/classes (hash_code)
        self.memo: dict[int, tuple[Any, bytes]] = {}  # id -> (object kept alive, digest)
        self.min_backref = 1 << 30  # shallowest code_active depth a back-reference reached
        self.min_obj_backref = 1 << 30  # same for Guard back-references (depth units)


def str_bytes(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    return T_STR + U64(len(raw)) + raw


def int_bytes(n: int) -> bytes:
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return T_INT + U64(len(raw)) + raw


def feed_str(h: Any, text: str) -> None:
    h.update(str_bytes(text))


def feed_int(h: Any, n: int) -> None:
    h.update(int_bytes(n))


def digest(value: Any, ctx: Ctx) -> bytes:
    h = xxh3_128()
    feed(h, value, ctx)
    return h.digest()


def _f(x: float) -> bytes:
    return NAN if x != x else F64(x)


# --------------------------------------------------------------------------- registry

_BY_TYPE: dict[type, Callable[[Any], Any]] = {}
_BY_NAME: dict[str, Callable[[Any], Any]] = {}


def register(type_: type | str, fn: Callable[[Any], Any]) -> None:
    if isinstance(type_, str):
        _BY_NAME[type_] = fn
    elif isinstance(type_, type):
        _BY_TYPE[type_] = fn
    else:
        raise TypeError(f"register_hasher needs a type or a dotted type name, not {type_!r}")


def registered(cls: type) -> Callable[[Any], Any] | None:
    """The hasher registered for ``cls`` or its nearest base, if any."""
    if not (_BY_TYPE or _BY_NAME):
        return None
    for klass in cls.__mro__:
        fn = _BY_TYPE.get(klass) or _BY_NAME.get(type_name(klass))
        if fn is not None:
            return fn
    return None


# --------------------------------------------------------------------------- containers


class Guard:
    """Cycle guard: a container met again while it is being hashed becomes a back-reference
    to the depth where it was first entered (deterministic, unlike its id)."""

    __slots__ = ("ctx", "key", "value")

    def __init__(self, ctx: Ctx, value: Any) -> None:
        self.ctx, self.key, self.value = ctx, id(value), value

    def enter(self, h: Any) -> bool:
        ctx = self.ctx
        seen = ctx.active.get(self.key)
        if seen is not None:
            h.update(T_BACKREF + U64(ctx.depth - seen))
            ctx.min_obj_backref = min(ctx.min_obj_backref, seen)
            return False
        if ctx.depth >= MAX_DEPTH:
            raise Unhashable(self.value, f"nested more than {MAX_DEPTH} levels deep")
        ctx.active[self.key] = ctx.depth
        ctx.depth += 1
        return True

    def exit(self) -> None:
        self.ctx.depth -= 1
        del self.ctx.active[self.key]


def feed_items(h: Any, items: Any, ctx: Ctx, labels: Any = None) -> None:
    """Ordered members; ``labels`` gives the path segment of each for error messages."""
    for i, item in enumerate(items):
        try:
            feed(h, item, ctx)
        except Unhashable as exc:
            exc.path.append(f"[{i}]" if labels is None else labels[i])
            raise


def _sequence(h: Any, value: Any, ctx: Ctx, tag_: bytes) -> None:
    guard = Guard(ctx, value)
    if guard.enter(h):
        try:
            h.update(tag_ + U64(len(value)))
            feed_items(h, value, ctx)
        finally:
            guard.exit()


def feed_mapping(h: Any, mapping: Any, ctx: Ctx, tag_: bytes = T_DICT) -> None:
    """Pairs in insertion order: ``{"a": 1, "b": 2}`` and ``{"b": 2, "a": 1}`` differ, as
    everything that iterates them does."""
    guard = Guard(ctx, mapping)
    if not guard.enter(h):
        return
    try:
        h.update(tag_ + U64(len(mapping)))
        for key, val in mapping.items():
            try:
                feed(h, key, ctx)
                feed(h, val, ctx)
            except Unhashable as exc:
                exc.path.append(f"[{short_repr(key, 40)}]")
                raise
    finally:
        guard.exit()


def _set(h: Any, value: Any, ctx: Ctx, tag_: bytes) -> None:
    guard = Guard(ctx, value)
    if not guard.enter(h):
        return
    try:
        members = []
        for item in value:
            try:
                members.append(digest(item, ctx))
            except Unhashable as exc:
                exc.path.append(f"{{{short_repr(item, 40)}}}")
                raise
        members.sort()
        h.update(tag_ + U64(len(members)) + b"".join(members))
    finally:
        guard.exit()


# --------------------------------------------------------------------------- scalars


def _feed_tz(h: Any, value: dt.datetime | dt.time, ctx: Ctx) -> None:
    """The time zone by what it is, not only by its name: a fixed ``timezone(+1h, "CET")``
    and ``ZoneInfo("CET")`` share a name but not their rules (summer time), so they differ.
    Zones known by a key (zoneinfo, pytz) count by type and key, any other tzinfo by its
    content; the offset and name at this instant go in too."""
    tz = value.tzinfo
    if tz is None:
        h.update(T_NONE)
        return
    if isinstance(tz, dt.timezone):
        feed_str(h, repr(tz))  # datetime.timezone(datetime.timedelta(seconds=3600), 'CET')
    else:
        key = getattr(tz, "key", None) or getattr(tz, "zone", None)  # zoneinfo, pytz
        feed_str(h, type_name(type(tz)))
        feed(h, key if isinstance(key, str) else tz, ctx)
    offset = value.utcoffset()
    feed_str(h, f"{offset}:{value.tzname()}")


def _feed_datetime(h: Any, v: dt.datetime, ctx: Ctx) -> None:
    h.update(T_DATETIME + bytes([v.fold]))
    feed_str(h, v.replace(tzinfo=None).isoformat())
    _feed_tz(h, v, ctx)


def _feed_time(h: Any, v: dt.time, ctx: Ctx) -> None:
    h.update(T_TIME + bytes([v.fold]))
    feed_str(h, v.replace(tzinfo=None).isoformat())
    _feed_tz(h, v, ctx)


def _feed_bytes(tag_: bytes) -> Callable[[Any, Any, Ctx], None]:
    def run(h: Any, v: Any, ctx: Ctx) -> None:
        h.update(tag_ + U64(len(v)))
        h.update(v)

    return run


def _feed_memoryview(h: Any, v: memoryview, ctx: Ctx) -> None:
    h.update(T_MEMVIEW)
    feed_str(h, f"{v.format}:{v.itemsize}:{v.shape}")
    _feed_bytes(T_BYTES)(h, v.tobytes() if not v.c_contiguous else v.cast("B"), ctx)


EXACT: dict[type, Callable[[Any, Any, Ctx], None]] = {
    type(None): lambda h, v, c: h.update(T_NONE),
    bool: lambda h, v, c: h.update(T_TRUE if v else T_FALSE),
    int: lambda h, v, c: feed_int(h, v),
    float: lambda h, v, c: h.update(T_FLOAT + _f(v)),
    complex: lambda h, v, c: h.update(T_COMPLEX + _f(v.real) + _f(v.imag)),
    str: lambda h, v, c: feed_str(h, v),
    bytes: _feed_bytes(T_BYTES),
    bytearray: _feed_bytes(T_BYTEARRAY),
    memoryview: _feed_memoryview,
    list: lambda h, v, c: _sequence(h, v, c, T_LIST),
    tuple: lambda h, v, c: _sequence(h, v, c, T_TUPLE),
    dict: lambda h, v, c: feed_mapping(h, v, c),
    set: lambda h, v, c: _set(h, v, c, T_SET),
    frozenset: lambda h, v, c: _set(h, v, c, T_FROZENSET),
    range: lambda h, v, c: [
        h.update(T_RANGE),
        *(feed_int(h, n) for n in (v.start, v.stop, v.step)),
    ],
    Decimal: lambda h, v, c: [h.update(T_DECIMAL), feed_str(h, str(v))],
    Fraction: lambda h, v, c: [
        h.update(T_FRACTION),
        feed_int(h, v.numerator),
        feed_int(h, v.denominator),
    ],
    dt.datetime: _feed_datetime,
    dt.date: lambda h, v, c: [h.update(T_DATE), feed_str(h, v.isoformat())],
    dt.time: _feed_time,
    dt.timedelta: lambda h, v, c: [
        h.update(T_DELTA),
        *(feed_int(h, n) for n in (v.days, v.seconds, v.microseconds)),
    ],
    uuid.UUID: lambda h, v, c: h.update(T_UUID + v.bytes),
    type(...): lambda h, v, c: h.update(T_ELLIPSIS),
}

#: hashes every value EXACT has no entry for; the package installs it
#: (``taskcache.hashing.objects.feed_other``) so the core never imports its plug-ins
_fallback: list[Callable[[Any, Any, Ctx], None]] = []


def set_fallback(fn: Callable[[Any, Any, Ctx], None]) -> None:
    """Install the hasher of values without an exact-type entry (records, subclasses,
    arrays, frames, code, modules, paths, reduce values)."""
    _fallback[:] = [fn]


def feed(h: Any, value: Any, ctx: Ctx) -> None:
    """Stream the type-tagged content of ``value`` into the xxh3 state ``h``."""
    run = EXACT.get(type(value))
    if run is not None:
        run(h, value, ctx)
    else:
        _fallback[0](h, value, ctx)
