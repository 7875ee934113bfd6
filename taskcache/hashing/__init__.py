"""Pure content hashing: values and code -> type-tagged xxh3_128 hex digests.

Modules: ``core`` (tags, the dispatcher, built-in values), ``objects`` (every other value:
records, subclasses, reduce values; installed here as the core's fallback), ``arrays``
(numpy, pandas, pyarrow buffers), ``code`` (functions, classes, modules, package versions),
``files`` (paths by content), ``plots`` (matplotlib figures by what they show) and
``library`` (regex matches, ufuncs, np.vectorize, array flags).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Any

from xxhash import xxh3_128, xxh3_128_hexdigest

from taskcache.describe import type_name
from taskcache.errors import FingerprintError
from taskcache.hashing import code, core, library, objects, plots
from taskcache.hashing.core import Ctx, Unhashable, feed

__all__ = [
    "KEY_VERSION",
    "hash_value",
    "hash_code",
    "register_hasher",
    "combine_key",
    "key_of_inputs",
    "module_versions",
    "record_restored",
]

# Increment on any change that alters hashes: it invalidates every cache. The pinned
# hashes in tests/data/golden_hashes.json must be regenerated in the same change.
# 2: dicts in insertion order, time zones by kind, code as loaded, user modules by attributes
# 3: numpy buffers hashed by their bits (no NaN pass), as one digest
# 4: pandas objects hashed through their pickled state leave out pandas' memo (``_cache``)
KEY_VERSION = 4

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


def _str_mapping_bytes(mapping: Mapping[str, Any]) -> bytes | None:
    """What ``feed_mapping`` streams for ``_by_name(mapping)`` when its keys are str and its
    values are str or such mappings (a run's key parts), built directly; None for anything
    else."""
    try:
        names = sorted(mapping)
    except TypeError:  # names of several types
        return None
    encoded = [core.T_DICT + core.U64(len(names))]
    for key in names:
        val = mapping[key]
        if type(key) is not str:
            return None
        if type(val) is str:
            encoded.append(core.str_bytes(key) + core.str_bytes(val))
        elif type(val) is dict:
            inner = _str_mapping_bytes(val)
            if inner is None:
                return None
            encoded.append(core.str_bytes(key) + inner)
        else:
            return None
    return b"".join(encoded)


def _by_name(parts: Mapping[str, Any]) -> dict[str, Any]:
    """Key parts and the name -> hash maps inside them, sorted by name: they are records
    (which input has which hash), not dicts the code iterates, so their order is not
    content. (A dict passed as a value is hashed by ``hash_value``, in its own order.)"""
    return {k: _by_name(v) if isinstance(v, Mapping) else v for k, v in sorted(parts.items())}


def _run(name: str | None, value: Any, body: Callable[[Any, Ctx], None]) -> str:
    h = xxh3_128()
    try:
        body(h, Ctx())
    except Unhashable as exc:
        raise exc.to_error(name) from None
    except RecursionError:
        raise FingerprintError(name, type_name(value), "it is nested too deeply") from None
    return h.hexdigest()


#: hash of a value as the cache gave it back -> hash of the value that was stored, for types
#: whose decoded copy does not hash as the original (see record_restored)
_RESTORED: dict[str, str] = {}


def hash_value(value: Any, name: str | None = None, *, as_stored: bool = True,
               reads: frozenset[str] | None = None) -> str:
    """32-hex-digit content hash of ``value``; raises FingerprintError naming ``name``.

    A value that hashes as the restored copy of a stored value (see :func:`record_restored`)
    gets the stored value's hash, so work downstream of a hit keys as it did on the miss;
    ``as_stored=False`` gives its own content hash. ``reads``: the attributes the code
    reads from ``value`` (``cfg.alpha``); for one of the user's own modules only those
    count, else all its public attributes do."""
    encode = _SCALAR_BYTES.get(type(value))
    if encode is not None:  # the same bytes feed() would stream, hashed in one call
        return xxh3_128_hexdigest(encode(value))
    if reads is not None and isinstance(value, types.ModuleType):
        digest = _run(name, value, lambda h, ctx: code.feed_module(h, value, ctx, reads))
    else:
        digest = _run(name, value, lambda h, ctx: feed(h, value, ctx))
    return _RESTORED.get(digest, digest) if as_stored and _RESTORED else digest


def record_restored(restored_hash: str, original_hash: str) -> None:
    """Declare that decoding a stored value whose hash was ``original_hash`` gives back a
    value hashing to ``restored_hash`` (an object whose pickle drops some of its state,
    such as scikit-learn's ``Bunch``): from now on, in this process, :func:`hash_value`
    answers ``original_hash`` for such values."""
    if restored_hash != original_hash:
        _RESTORED[restored_hash] = original_hash


def hash_code(obj: Any) -> str:
    """Hash of a user function or class by its normalized source (only when that compiles to
    the loaded code object; else by the code object), closure, defaults and the user
    code/globals it references, transitively (of a user module, the attributes it reads);
    library code counts by package version."""
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    return _run(name, obj, lambda h, ctx: h.update(code.code_digest(obj, ctx)))


core.set_fallback(objects.feed_other)
# library types whose object graph is the wrong thing to hash (registered by name: no import)
core.register("matplotlib.figure.Figure", plots.figure_content)
core.register("matplotlib.artist.Artist", plots.artist_content)
core.register("re.Match", library.match_content)
core.register("numpy.ufunc", library.ufunc_content)
core.register("numpy.vectorize", library.vectorize_content)
for _flags in ("numpy._core.multiarray.flagsobj", "numpy.core.multiarray.flagsobj"):  # numpy 2 / 1
    core.register(_flags, library.flags_content)
for _file_type in library.FILE_TYPES:
    core.register(_file_type, library.file_content)


def register_hasher(type_: type | str, fn: Callable[[Any], Any]) -> None:
    """Hash instances of ``type_`` (or dotted type name) by hashing ``fn(value)`` instead.

    A dotted name (``"shapely.geometry.Point"``) avoids importing the library early.
    Lookups walk the value's MRO, so registering a base class covers its subclasses.
    """
    core.register(type_, fn)


def combine_key(parts: Mapping[str, Any]) -> str:
    """The run fingerprint: a hash of named parts plus KEY_VERSION. The order of the parts,
    and of the names in mappings among them (inputs by name), does not matter."""
    encoded = _str_mapping_bytes(parts)
    if encoded is not None:  # str values and dicts of them: the same bytes, without feed()
        return xxh3_128_hexdigest(_KEY_PREFIX + encoded)

    def body(h: Any, ctx: Ctx) -> None:
        h.update(_T_KEY)
        core.feed_int(h, KEY_VERSION)
        core.feed_mapping(h, _by_name(parts), ctx)

    return _run("key", parts, body)


def key_of_inputs(parts: Mapping[str, Any]) -> Callable[[dict[str, str]], str]:
    """``inputs -> combine_key({**parts, "inputs": inputs})``, with ``parts`` encoded once:
    the points of a sweep differ only by their inputs. Same keys as combine_key, always."""
    names = sorted({*parts, "inputs"})
    if "inputs" in parts or not all(type(n) is str and type(parts.get(n, "")) is str
                                    for n in names):
        return lambda inputs: combine_key({**parts, "inputs": inputs})
    split = names.index("inputs")
    head = (_KEY_PREFIX + core.T_DICT + core.U64(len(names))
            + b"".join(core.str_bytes(n) + core.str_bytes(parts[n]) for n in names[:split])
            + core.str_bytes("inputs"))
    tail = b"".join(core.str_bytes(n) + core.str_bytes(parts[n]) for n in names[split + 1:])

    def key(inputs: dict[str, str]) -> str:
        encoded = _str_mapping_bytes(inputs)
        if encoded is None:
            return combine_key({**parts, "inputs": inputs})
        return xxh3_128_hexdigest(head + encoded + tail)

    return key


def module_versions(obj: Any) -> dict[str, str]:
    """Top-level packages (name -> version) referenced by a user function/class or cell
    namespace values, for the run's environment record."""
    return code.module_versions(obj)
