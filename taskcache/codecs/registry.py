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
re-match   re.Match                       the search that finds it again (see ``matches``)
closed-    a closed file object (text,    what it still shows, rebuilt without opening the
file       buffered or raw)               file (see ``closed_files``)
pickle     anything picklable             only with allow_pickle=True; protocol 5
========== ============================== ==================================================

The pickle policy (which codecs may be decoded) is in ``pickling``.
"""

from __future__ import annotations

import functools
import mmap
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from taskcache.codecs.pickling import PICKLE
from taskcache.describe import type_name
from taskcache.errors import UnknownCodecError, UnstorableValueError

__all__ = [
    "Codec",
    "DecodesBytes",
    "DecodesMapped",
    "codec_for",
    "decodes_bytes",
    "decodes_mapped",
    "get_codec",
    "keeps_hash",
    "register_codec",
    "registered_codecs",
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


def keeps_hash(codec: Codec) -> bool:
    """Whether values ``codec`` decodes hash as the values it encoded: a codec declares it
    with ``hash_exact = True`` (the built-in ones but pickle do, and tests/codecs checks
    it). For any other codec the runner hashes the value decoded back right after writing,
    and records that hash when it differs, so work downstream of a hit keys as it did."""
    return getattr(codec, "hash_exact", False) is True



@runtime_checkable
class DecodesBytes(Protocol):
    """Optional: a codec that decodes from the file's bytes. The runner uses it for small
    artifacts, so the bytes it checksummed are the ones decoded."""

    def decode_bytes(self, data: bytes) -> Any:
        """The value from the complete, already checked bytes of its file."""


@runtime_checkable
class DecodesMapped(Protocol):
    """Optional: a codec that decodes from a copy-on-write mapping of the file, already
    checked (big artifacts are checked and decoded through one mapping)."""

    def decode_mapped(self, mapped: mmap.mmap) -> Any:
        """The value from a private mapping of its file."""


@functools.cache
def _abilities(cls: type) -> tuple[bool, bool]:
    return issubclass(cls, DecodesBytes), issubclass(cls, DecodesMapped)


def decodes_bytes(codec: Codec) -> bool:
    """Whether ``codec`` is a :class:`DecodesBytes` (checked once per codec class)."""
    return _abilities(type(codec))[0]


def decodes_mapped(codec: Codec) -> bool:
    """Whether ``codec`` is a :class:`DecodesMapped` (checked once per codec class)."""
    return _abilities(type(codec))[1]


_by_type: dict[type, list[Codec]] = {}
_pending: list[tuple[str, Codec, bool]] = []  # dotted registrations, module not imported yet
_by_name: dict[str, Codec] = {}


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
