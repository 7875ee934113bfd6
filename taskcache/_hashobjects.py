"""Objects without a dedicated hasher: records (dataclasses, namedtuples), subclasses of
built-ins, files and directories, and everything else through the parts pickle would save
(its reduce value)."""

from __future__ import annotations

import copyreg
import os
from pathlib import Path, PurePath
from typing import Any

from xxhash import xxh3_128

from . import _codehash
from ._hashcore import (
    EXACT,
    T_GLOBAL,
    T_OBJECT,
    T_SUBCLASS,
    U64,
    Ctx,
    Guard,
    Unhashable,
    feed,
    feed_items,
    feed_str,
    tag,
    type_name,
)

T_FILE, T_DIR, T_PATH, T_SUBDIR = (tag(n) for n in ("file", "dir", "path", "subdir"))
T_SUBOBJ = tag("subobject")


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
    return cls.__qualname__ if _codehash.is_user_code(cls) else type_name(cls)


def _callable_name(fn: Any) -> str:
    if _codehash.is_user_code(fn):
        return fn.__qualname__
    module = getattr(fn, "__module__", None) or type_name(type(fn))
    return f"{module}.{getattr(fn, '__qualname__', getattr(fn, '__name__', '?'))}"


def feed_reduce(h: Any, value: Any, ctx: Ctx) -> None:
    """Objects without a dedicated hasher: hash the parts pickle would save (its reduce
    value), structurally, so dicts and sets inside are order-independent and arrays inside
    go through the fast array hashers. Unpicklable objects are errors, never constants."""
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


def _feed_reduced(h: Any, cls: type, reduced: tuple, ctx: Ctx) -> None:
    func, args, *rest = reduced
    h.update(T_OBJECT + U64(len(reduced)))
    feed_str(h, record_name(cls))
    feed_str(h, _callable_name(func))
    feed(h, args, ctx)
    state, items, pairs, setter = (*rest, None, None, None, None)[:4]
    feed(h, state, ctx)
    feed(h, None if items is None else list(items), ctx)
    feed(h, None if pairs is None else dict(pairs), ctx)
    feed(h, None if setter is None else _callable_name(setter), ctx)


# --------------------------------------------------------------------------- files

_FILE_DIGESTS: dict[tuple[str, int, int], bytes] = {}


def file_digest(path: Path) -> bytes:
    """Content digest of a file, cached per process by (path, size, mtime_ns)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    cached = _FILE_DIGESTS.get(key)
    if cached is None:
        h = xxh3_128()
        buf = bytearray(1 << 22)
        view = memoryview(buf)
        with open(path, "rb") as fh:
            while n := fh.readinto(buf):
                h.update(view[:n])
        cached = _FILE_DIGESTS[key] = h.digest()
    return cached


def feed_path(h: Any, path: PurePath) -> None:
    """An existing file by content, a directory by its names and contents, else the text."""
    if not isinstance(path, Path):
        h.update(T_PATH)
        feed_str(h, str(path))
        return
    try:
        if path.is_file():
            h.update(T_FILE + file_digest(path))
        elif path.is_dir():
            entries: list[tuple[str, Path | None]] = []
            for root, dirs, files in os.walk(path):
                base = Path(root)
                entries += [(base.joinpath(d).relative_to(path).as_posix(), None) for d in dirs]
                entries += [
                    (base.joinpath(f).relative_to(path).as_posix(), base / f) for f in files
                ]
            h.update(T_DIR + U64(len(entries)))
            for name, file in sorted(entries, key=lambda e: e[0]):
                feed_str(h, name)
                h.update(T_SUBDIR if file is None or not file.is_file() else file_digest(file))
        else:
            h.update(T_PATH)
            feed_str(h, str(path))
    except OSError as exc:
        raise Unhashable(path, f"cannot read it: {exc}") from None
