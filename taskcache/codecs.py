"""Codec registry: how a value becomes a file and back (parquet, npy, json, opt-in pickle).

Codecs only turn values into files at a path the store gives them; the store moves bytes.

Choosing a codec: :func:`codec_for` walks the MRO of the value's type; at each class it
tries the codecs registered for it (user codecs first) and returns the first whose
``can_encode`` is True, i.e. the first that gives back an equal value of the same type.
Third-party types are registered by dotted name (``"pandas.DataFrame"`` or
``"pandas.core.frame.DataFrame"``) and resolved only once their module is already in
``sys.modules``, so importing this module imports neither pandas, numpy nor pyarrow.

Built-in codecs, in the order they are tried:

========== ============================== ==================================================
name       types                          notes
========== ============================== ==================================================
parquet    pandas DataFrame, Series       exact round trips only (see ``_frame_codecs``)
arrow      pandas DataFrame, Series       Arrow IPC, memory-mapped; opt-in with prefer="arrow"
                                          and the fallback when only Arrow is exact
npy        numpy.ndarray (exact type)     np.save/np.load, allow_pickle=False; no object dtype
npy-scalar numpy scalars (np.float64...)  a 0-d .npy, decoded back to the scalar
json       None/bool/int/float/str/...    tagged JSON, exact types (see ``_json_codec``)
module     modules                        stored by import name, imported on decode
pickle     anything picklable             only with allow_pickle=True; protocol 5
========== ============================== ==================================================

Trust model: decoding a pickle (or any codec with ``unsafe = True``) can run arbitrary code.
taskcache only decodes an unsafe artifact after the store has verified its size and
xxh3-128 checksum against the catalog entry written when it was stored, and the cache
folder is private (0700, files 0600), so only the user who wrote it can plant one. A catalog
shared with other people must be used with ``allow_pickle=False``: then unsafe codecs are
never chosen for writing, and the runner must refuse to decode them.
"""

from __future__ import annotations

import io
import pickle
import reprlib
import sys
import types
from collections.abc import Iterator
from importlib import import_module
from pathlib import Path
from typing import Any, Protocol

from ._frame_codecs import ArrowCodec, ParquetCodec
from ._json_codec import JsonCodec
from .errors import UnknownCodecError, UnstorableValueError

__all__ = [
    "Codec",
    "UnknownCodecError",
    "register_codec",
    "codec_for",
    "get_codec",
    "describe",
    "type_name",
]


class Codec(Protocol):
    name: str        # stable id recorded in the catalog: "parquet", "npy", "json", "pickle", ...
    suffix: str      # file suffix including the dot
    unsafe: bool     # True when decoding can run code (pickle): checksum must match first

    def can_encode(self, value: Any) -> bool:
        """True only when decode(encode(value)) == value, type included."""

    def encode(self, value: Any, path: Path) -> None:
        """Write ``value`` to ``path`` (a fresh temp file path the store chose)."""

    def decode(self, path: Path) -> Any:
        """Read a value back from ``path``."""

    # optional: ``decode_bytes(data: bytes) -> Any``, the same from the file's bytes; the
    # runner uses it for small artifacts, so the bytes it checksummed are the ones decoded.
    # ``decode_mapped(mapped: mmap.mmap) -> Any``: the same from a copy-on-write mapping of
    # the file, already checked (big artifacts: checked and decoded with one mapping)



def type_name(value_or_type: Any) -> str:
    """``module.QualName`` of a value's type (or of a type)."""
    t = value_or_type if isinstance(value_or_type, type) else type(value_or_type)
    return f"{t.__module__}.{t.__qualname__}"


# ---------------------------------------------------------------- built-in codecs


class NpyCodec:
    """numpy.ndarray (exact type, no object fields) as .npy without pickle."""

    name = "npy"
    suffix = ".npy"
    unsafe = False

    def can_encode(self, value: Any) -> bool:
        import numpy as np

        return type(value) is np.ndarray and not value.dtype.hasobject

    def encode(self, value: Any, path: Path) -> None:
        import numpy as np

        with open(path, "wb") as f:  # a file object: np.save never appends ".npy"
            np.save(f, value, allow_pickle=False)

    def decode(self, path: Path) -> Any:
        import numpy as np

        with open(path, "rb") as f:
            return np.load(f, allow_pickle=False)

    def decode_bytes(self, data: bytes) -> Any:
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)


class NpyScalarCodec(NpyCodec):
    """numpy scalars (np.float32, np.int64, np.datetime64, np.str_...) as a 0-d .npy."""

    name = "npy-scalar"

    def can_encode(self, value: Any) -> bool:
        import numpy as np

        return isinstance(value, np.generic) and not np.asarray(value).dtype.hasobject

    def encode(self, value: Any, path: Path) -> None:
        import numpy as np

        super().encode(np.asarray(value), path)

    def decode(self, path: Path) -> Any:
        return super().decode(path)[()]

    def decode_bytes(self, data: bytes) -> Any:
        return super().decode_bytes(data)[()]


class ModuleCodec:
    """A module bound as a cell output (``import numpy as np``), stored by import name."""

    name = "module"
    suffix = ".json"
    unsafe = False

    def can_encode(self, value: Any) -> bool:
        name = getattr(value, "__name__", None)
        return (
            type(value) is types.ModuleType
            and isinstance(name, str)
            and name != "__main__"
            and sys.modules.get(name) is value
        )

    def encode(self, value: Any, path: Path) -> None:
        import json

        Path(path).write_text(json.dumps({"module": value.__name__}), encoding="utf-8")

    def decode(self, path: Path) -> Any:

        return self.decode_bytes(Path(path).read_bytes())

    def decode_bytes(self, data: bytes) -> Any:
        import json

        return import_module(json.loads(data.decode("utf-8"))["module"])


class _NullSink(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        return len(memoryview(b))


class PickleCodec:
    """Anything picklable, protocol 5. Unsafe: decoded only after the checksum matched."""

    name = "pickle"
    suffix = ".pkl"
    unsafe = True
    protocol = 5

    def why_not(self, value: Any) -> str | None:
        """The reason ``value`` cannot be pickled, or None. Streams to a null sink."""
        try:
            pickle.dump(value, _NullSink(), protocol=self.protocol)
        except Exception as exc:  # pickling runs user code (__reduce__): any error counts
            return f"{type(exc).__name__}: {exc}"
        return None

    def can_encode(self, value: Any) -> bool:
        return self.why_not(value) is None

    def encode(self, value: Any, path: Path) -> None:
        with open(path, "wb") as f:
            pickle.dump(value, f, protocol=self.protocol)

    def decode(self, path: Path) -> Any:
        with open(path, "rb") as f:
            return pickle.load(f)

    def decode_bytes(self, data: bytes) -> Any:
        return pickle.loads(data)


# ---------------------------------------------------------------- registry

_by_type: dict[type, list[Codec]] = {}
_pending: list[tuple[str, Codec, bool]] = []  # dotted registrations, module not imported yet
_by_name: dict[str, Codec] = {}
PICKLE = PickleCodec()


def _add(entries: list[Codec], codec: Codec, first: bool) -> None:
    entries[:] = [c for c in entries if c is not codec]
    if first:
        entries.insert(0, codec)
    else:
        entries.append(codec)


def register_codec(type_: type | str, codec: Codec, *, first: bool = True) -> None:
    """Use ``codec`` for ``type_`` (or a dotted type name, so nothing is imported early).

    ``first=True`` puts it ahead of the codecs already registered for that type (the
    built-ins included); ``first=False`` after them. Subclasses of ``type_`` are offered to
    it too; its ``can_encode`` decides. The codec's ``name`` is what the catalog records, so
    it must be stable and registered again in every process that reads its artifacts.
    """
    for attr in ("name", "suffix", "unsafe", "can_encode", "encode", "decode"):
        if not hasattr(codec, attr):
            raise TypeError(f"codec {codec!r} has no {attr!r}; see taskcache.codecs.Codec")
    _resolve_pending()
    if isinstance(type_, str):
        _pending.append((type_, codec, first))
        _resolve_pending()
    elif isinstance(type_, type):
        _add(_by_type.setdefault(type_, []), codec, first)
    else:
        raise TypeError(f"register_codec wants a type or a dotted name, not {type_!r}")
    _by_name[codec.name] = codec


def _lookup(dotted: str) -> type | None:
    """The class named ``dotted`` if its module is already imported (never imports)."""
    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:i]))
        if module is not None:
            obj: Any = module
            for attr in parts[i:]:
                obj = getattr(obj, attr, None)
            return obj if isinstance(obj, type) else None
    return None


def _resolve_pending() -> None:
    """Apply dotted registrations whose module is now imported, in registration order."""
    still: list[tuple[str, Codec, bool]] = []
    for dotted, codec, first in _pending:
        cls = _lookup(dotted)
        if cls is None:
            still.append((dotted, codec, first))
        else:
            _add(_by_type.setdefault(cls, []), codec, first)
    _pending[:] = still


def _candidates(cls: type) -> Iterator[Codec]:
    if _pending:
        _resolve_pending()
    seen: set[int] = set()
    for klass in cls.__mro__:
        late = [c for d, c, _ in _pending if d == type_name(klass)]
        for codec in [*_by_type.get(klass, ()), *late]:
            if id(codec) not in seen:
                seen.add(id(codec))
                yield codec


def codec_for(
    value: Any, *, allow_pickle: bool, name: str | None = None, prefer: str | None = None
) -> Codec:
    """The codec that stores ``value`` exactly; raises UnstorableValueError naming ``name``.

    ``prefer`` names a codec to try first (e.g. ``"arrow"`` for frames); it is used only
    when it can store the value exactly. With ``allow_pickle=False`` no unsafe codec is
    chosen.
    """
    candidates = [c for c in _candidates(type(value)) if allow_pickle or not c.unsafe]
    if prefer is not None:
        candidates.sort(key=lambda c: c.name != prefer)
    for codec in candidates:
        if codec is PICKLE:
            continue  # below, so that its failure reason reaches the message
        try:
            if codec.can_encode(value):
                return codec
        except Exception:  # a can_encode that breaks on an odd value means "not me"
            continue
    if not allow_pickle:
        raise UnstorableValueError(
            name,
            type_name(value),
            "no safe codec stores it exactly and pickle is disabled; enable it with "
            "taskcache.configure(allow_pickle=True) or register a codec with "
            "taskcache.register_codec",
        )
    reason = PICKLE.why_not(value)
    if reason is None:
        return PICKLE
    raise UnstorableValueError(name, type_name(value), f"pickle failed: {reason}")


def get_codec(name: str) -> Codec:
    """The codec recorded in the catalog under ``name`` (UnknownCodecError if unknown)."""
    try:
        return _by_name[name]
    except KeyError:
        raise UnknownCodecError(name) from None


def registered_codecs() -> list[str]:
    """Names of every registered codec."""
    return sorted(_by_name)


_FRAMES = ("pandas.core.frame.DataFrame", "pandas.core.series.Series")
_PARQUET, _ARROW = ParquetCodec(), ArrowCodec()
for _dotted in _FRAMES:
    register_codec(_dotted, _PARQUET)
    register_codec(_dotted, _ARROW, first=False)
register_codec("numpy.ndarray", NpyCodec())
register_codec("numpy.generic", NpyScalarCodec())
_JSON = JsonCodec()
for _t in (type(None), bool, int, float, complex, str, bytes, bytearray, list, tuple, dict,
           set, frozenset, "decimal.Decimal", "datetime.date", "datetime.time",
           "datetime.timedelta"):
    register_codec(_t, _JSON)
register_codec(types.ModuleType, ModuleCodec())
register_codec(object, PICKLE, first=False)


# ---------------------------------------------------------------- describe

_REPR = reprlib.Repr()
_REPR.maxstring = 120
_REPR.maxother = 160
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = _REPR.maxdict = 8
REPR_MAX = 200


def _short_repr(value: Any) -> str:
    try:
        text = _REPR.repr(value)
    except Exception as exc:
        text = f"<{type_name(value)}: repr failed ({type(exc).__name__})>"
    text = " ".join(text.split())  # multi-line reprs (frames) become one line
    return text if len(text) <= REPR_MAX else text[: REPR_MAX - 3] + "..."


def describe(value: Any) -> dict[str, Any]:
    """Catalog metadata of a value: {"type": qualname, "shape": [..]|None, "rows": int|None,
    "columns": [..]|None, "repr": short repr (<= 200 chars)}. Never raises."""
    info: dict[str, Any] = {"type": "", "shape": None, "rows": None, "columns": None, "repr": ""}
    try:
        info["type"] = type_name(value)
        shape = getattr(value, "shape", None) if not isinstance(value, type) else None
        if isinstance(shape, tuple) and all(isinstance(n, int) for n in shape):
            info["shape"] = [int(n) for n in shape]
        pd = sys.modules.get("pandas")
        if pd is not None and isinstance(value, pd.DataFrame | pd.Series):
            info["rows"] = len(value)
            if isinstance(value, pd.DataFrame):
                info["columns"] = [str(c) for c in value.columns]
        info["repr"] = _short_repr(value)
    except Exception:  # never raises: metadata is a convenience
        pass
    return info
