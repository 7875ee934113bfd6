"""Pure content hashing: values and code -> type-tagged xxh3_128 hex digests.

Modules: ``core`` (tags, the dispatcher, built-in values), ``objects`` (every other value:
records, subclasses, reduce values; installed here as the core's fallback), ``arrays``
(numpy, pandas, pyarrow buffers), ``code`` (functions, classes, modules, package versions),
``files`` (paths by content) and ``plots`` (matplotlib figures by what they show).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from xxhash import xxh3_128, xxh3_128_digest, xxh3_128_hexdigest

from taskcache.describe import type_name
from taskcache.errors import FingerprintError
from taskcache.hashing import code, core, objects, plots
from taskcache.hashing.core import Ctx, Unhashable, feed

__all__ = [
    "KEY_VERSION",
    "hash_value",
    "hash_code",
    "register_hasher",
    "combine_key",
    "module_versions",
]

# Increment on any change that alters hashes: it invalidates every cache. The pinned
# hashes in tests/data/golden_hashes.json must be regenerated in the same change.
KEY_VERSION = 2  # 2: numpy buffers hashed by their bits (no NaN pass), as one digest

_T_KEY = core.tag("key")
_KEY_PREFIX = _T_KEY + core.int_bytes(KEY_VERSION)


# -- one-call encodings: the exact bytes feed() would stream, for the hit path's common values

#: the bytes EXACT's feeder streams for a scalar, for hashing it in one call
_SCALAR_BYTES: dict[type, Callable[[Any], bytes]] = {
    type(None): lambda v: core.T_NONE,
    bool: lambda v: core.T_TRUE if v else core.T_FALSE,
    int: core.int_bytes,
    float: lambda v: core.T_FLOAT + (core.NAN if v != v else core.F64(v)),
    str: core.str_bytes,
}


def _str_mapping_bytes(mapping: Any) -> bytes | None:
    """What ``feed_mapping`` streams for a dict whose keys are str and whose values are str
    or such dicts (a run's key parts), built directly; None for anything else."""
    if type(mapping) is not dict:
        mapping = dict(mapping)
    pairs = []
    for key, val in mapping.items():
        if type(key) is not str:
            return None
        if type(val) is str:
            encoded = core.str_bytes(val)
        elif type(val) is dict:
            inner = _str_mapping_bytes(val)
            if inner is None:
                return None
            encoded = inner
        else:
            return None
        pairs.append(xxh3_128_digest(core.str_bytes(key) + encoded))
    pairs.sort()
    return core.T_DICT + core.U64(len(pairs)) + b"".join(pairs)


def _run(name: str | None, value: Any, body: Callable[[Any, Ctx], None]) -> str:
    h = xxh3_128()
    try:
        body(h, Ctx())
    except Unhashable as exc:
        raise exc.to_error(name) from None
    except RecursionError:
        raise FingerprintError(name, type_name(value), "it is nested too deeply") from None
    return h.hexdigest()


def hash_value(value: Any, name: str | None = None) -> str:
    """32-hex-digit content hash of ``value``; raises FingerprintError naming ``name``."""
    encode = _SCALAR_BYTES.get(type(value))
    if encode is not None:  # the same bytes feed() would stream, hashed in one call
        return xxh3_128_hexdigest(encode(value))
    return _run(name, value, lambda h, ctx: feed(h, value, ctx))


def hash_code(obj: Any) -> str:
    """Hash of a user function or class by its normalized source, closure, defaults and the
    user code/globals it references, transitively; library code counts by package version."""
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    return _run(name, obj, lambda h, ctx: h.update(code.code_digest(obj, ctx)))


core.set_fallback(objects.feed_other)
# library types whose object graph is the wrong thing to hash (registered by name: no import)
core.register("matplotlib.figure.Figure", plots.figure_content)
core.register("matplotlib.artist.Artist", plots.artist_content)


def register_hasher(type_: type | str, fn: Callable[[Any], Any]) -> None:
    """Hash instances of ``type_`` (or dotted type name) by hashing ``fn(value)`` instead.

    A dotted name (``"shapely.geometry.Point"``) avoids importing the library early.
    Lookups walk the value's MRO, so registering a base class covers its subclasses.
    """
    core.register(type_, fn)


def combine_key(parts: Mapping[str, Any]) -> str:
    """The run fingerprint: a hash of named parts plus KEY_VERSION."""
    encoded = _str_mapping_bytes(parts)
    if encoded is not None:  # str values and dicts of them: the same bytes, without feed()
        return xxh3_128_hexdigest(_KEY_PREFIX + encoded)

    def body(h: Any, ctx: Ctx) -> None:
        h.update(_T_KEY)
        core.feed_int(h, KEY_VERSION)
        core.feed_mapping(h, dict(parts), ctx)

    return _run("key", parts, body)


def module_versions(obj: Any) -> dict[str, str]:
    """Top-level packages (name -> version) referenced by a user function/class or cell
    namespace values, for the run's environment record."""
    return code.module_versions(obj)
