"""Every value the core's exact-type table does not cover, dispatched by :func:`feed_other`:
hashers registered by the user, numpy/pandas/pyarrow values, enums, code, modules, paths,
records (dataclasses, namedtuples), subclasses of built-ins, and everything else through
the parts pickle would save (its reduce value)."""

from __future__ import annotations

import copyreg
import dataclasses
import enum
import functools
import types
from pathlib import PurePath
from typing import Any

from xxhash import xxh3_128

from taskcache.describe import type_name
from taskcache.hashing import arrays, code, files
from taskcache.hashing.core import (
    EXACT,
    T_CODE,
    T_CUSTOM,
    T_DATACLASS,
    T_ENUM,
    T_GLOBAL,
    T_NAMEDTUPLE,
    T_OBJECT,
    T_SUBCLASS,
    U64,
    Ctx,
    Guard,
    Unhashable,
    feed,
    feed_items,
    feed_str,
    registered,
    tag,
)

T_SUBOBJ = tag("subobject")

#: the attribute where pandas memoizes what an object's other state determines: its
#: ``cache_readonly`` properties fill ``_cache`` on first use (a GroupBy's grouper, an Index's
#: engine, a holiday calendar's dates). Not content: using an object, or another one sharing
#: part of it (a GroupBy's column selection shares its grouper), must not change its hash,
#: and a restored copy has whatever memo was stored.
_PANDAS_MEMO = "_cache"


def record(h: Any, value: Any, ctx: Ctx, tag_: bytes, names: Any, values: Any) -> None:
    guard = Guard(ctx, value)
    if guard.enter(h):
        try:
            h.update(tag_)
            feed_str(h, record_name(type(value)))
            feed_items(h, list(names), ctx)
            h.update(U64(len(values)))
            feed_items(h, values, ctx, [f".{n}" for n in names])
        finally:
            guard.exit()


def subclass(h: Any, value: Any, ctx: Ctx) -> None:
    """A subclass of a built-in (OrderedDict, Counter, defaultdict, str enums...)."""
    h.update(T_SUBCLASS)
    feed_str(h, record_name(type(value)))
    base = next(b for b in type(value).__mro__ if b in EXACT)
    EXACT[base](h, base(value) if base in (int, float, str, bytes) else value, ctx)
    if isinstance(value, dict) and hasattr(value, "default_factory"):
        feed(h, value.default_factory, ctx)
    extra = getattr(value, "__dict__", None)
    feed(h, dict(extra) if extra else None, ctx)


def record_name(cls: type) -> str:
    """User types by qualname (a notebook's ``__main__`` is not a stable module name),
    library types by module and qualname."""
    return cls.__qualname__ if code.is_user_code(cls) else type_name(cls)


def _callable_name(fn: Any) -> str:
    if code.is_user_code(fn):
        return fn.__qualname__
    module = getattr(fn, "__module__", None) or type_name(type(fn))
    return f"{module}.{getattr(fn, '__qualname__', getattr(fn, '__name__', '?'))}"


def feed_reduce(h: Any, value: Any, ctx: Ctx) -> None:
    """Objects without a dedicated hasher: hash the parts pickle would save (its reduce
    value), structurally, so sets inside are order-independent (dicts keep their order) and
    arrays inside go through the fast array hashers. Unpicklable objects are errors, never constants."""
    cls = type(value)
    try:
        reducer = copyreg.dispatch_table.get(cls)  # as pickle does: re.Pattern, ...
        reduced = reducer(value) if reducer is not None else value.__reduce_ex__(5)
    except Exception as exc:
        raise Unhashable(value, f"it cannot be pickled: {exc}") from None
    if isinstance(reduced, str):  # a module-level singleton, pickled by name
        h.update(T_GLOBAL)
        feed_str(h, f"{cls.__module__}.{reduced}")
        return
    memo = ctx.memo.get(id(value))
    if memo is not None and memo[0] is value:  # shared sub-object met again: hash it once
        h.update(T_SUBOBJ + memo[1])
        return
    depth = ctx.depth
    guard = Guard(ctx, value)
    if not guard.enter(h):
        return
    outer_min, ctx.min_obj_backref = ctx.min_obj_backref, 1 << 30
    sub = xxh3_128()
    try:
        _feed_reduced(sub, cls, reduced, ctx)
    finally:
        guard.exit()
        inner_min = ctx.min_obj_backref
        ctx.min_obj_backref = min(outer_min, inner_min)
    digest = sub.digest()
    if inner_min >= depth:  # depends on nothing outside itself: reusable in this hash
        ctx.memo[id(value)] = (value, digest)
    h.update(T_SUBOBJ + digest)


def _content_state(cls: type, state: Any) -> Any:
    """The pickled state of ``cls`` without what only memoizes the rest (see _PANDAS_MEMO)."""
    if type(state) is dict and _PANDAS_MEMO in state and cls.__module__.startswith("pandas"):
        return {k: v for k, v in state.items() if k != _PANDAS_MEMO}
    return state


def _feed_reduced(h: Any, cls: type, reduced: tuple, ctx: Ctx) -> None:
    func, args, *rest = reduced
    h.update(T_OBJECT + U64(len(reduced)))
    feed_str(h, record_name(cls))
    feed_str(h, _callable_name(func))
    feed(h, args, ctx)
    state, items, pairs, setter = (*rest, None, None, None, None)[:4]
    feed(h, _content_state(cls, state), ctx)
    feed(h, None if items is None else list(items), ctx)
    feed(h, None if pairs is None else dict(pairs), ctx)
    feed(h, None if setter is None else _callable_name(setter), ctx)


# --------------------------------------------------------------------------- dispatch

_CODE_TYPES = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    type,
    functools.partial,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.ClassMethodDescriptorType,
    staticmethod,
    classmethod,
    property,
)
_LIB_PREFIXES = ("numpy", "pandas", "pyarrow")


def _feed_enum(h: Any, v: enum.Enum, ctx: Ctx) -> None:
    h.update(T_ENUM)
    feed_str(h, record_name(type(v)))
    feed(h, v.value, ctx)


def feed_other(h: Any, value: Any, ctx: Ctx) -> None:
    """Hash a value whose exact type the core has no entry for (installed as the core's
    fallback by the package)."""
    cls = type(value)
    fn = registered(cls)
    if fn is not None:
        h.update(T_CUSTOM)
        feed_str(h, record_name(cls))
        feed(h, fn(value), ctx)
        return
    if cls.__module__.startswith(_LIB_PREFIXES) and arrays.feed_library(h, value, ctx):
        return
    if isinstance(value, enum.Enum):
        _feed_enum(h, value, ctx)
    elif isinstance(value, _CODE_TYPES) or (callable(value) and hasattr(value, "__wrapped__")):
        h.update(T_CODE + code.code_digest(value, ctx))
    elif isinstance(value, types.ModuleType):
        code.feed_module(h, value, ctx)
    elif isinstance(value, PurePath):
        files.feed_path(h, value)
    elif isinstance(value, tuple) and hasattr(cls, "_fields"):
        record(h, value, ctx, T_NAMEDTUPLE, cls._fields, tuple(value))
    elif dataclasses.is_dataclass(value):
        names = [f.name for f in dataclasses.fields(value)]
        record(h, value, ctx, T_DATACLASS, names, [getattr(value, n) for n in names])
    elif isinstance(value, (dict, list, tuple, set, frozenset, int, float, str, bytes)):
        subclass(h, value, ctx)
    else:
        feed_reduce(h, value, ctx)
