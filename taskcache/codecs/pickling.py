"""The "pickle" codec and the pickle policy: which artifacts may be decoded at all.

Trust model: decoding a pickle (or any codec with ``unsafe = True``) can run arbitrary code.
taskcache only decodes an unsafe artifact after the store has verified its size and
xxh3-128 checksum against the catalog entry written when it was stored, and the cache
folder is private (0700, files 0600), so only the user who wrote it can plant one. A catalog
shared with other people must be used with ``allow_pickle=False``: then unsafe codecs are
never chosen for writing, and the runner must refuse to decode them; a codec that imports
on decoding (``imports = True``: the module codec) may then only hand back a module this
process has already imported (:func:`check_import`), and a decoded value must have the type
recorded when it was written (:func:`check_type`), so whoever writes the catalog cannot
make a hit import, or pass off, anything else.
"""

from __future__ import annotations

import copyreg
import io
import pickle
import sys
from pathlib import Path
from typing import Any

from taskcache.describe import type_name
from taskcache.errors import CorruptArtifactError, PickleDisabledError


class _NullSink(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        return len(memoryview(b))


def _vectorize_without_memo(vectorized: Any) -> tuple:
    """``np.vectorize`` keeps the ufunc it builds on its first call (``_ufunc``), which pickle
    cannot save (an ``np.frompyfunc`` ufunc has no importable name). It is a memo, not the
    value: saved without it, the function comes back as a fresh ``np.vectorize`` of the same
    function and options, which builds it again when called (and its hash never counted it:
    ``hashing.library.vectorize_content``)."""
    func, args, state, *rest = vectorized.__reduce_ex__(PickleCodec.protocol)
    if isinstance(state, dict) and state.get("_ufunc"):  # {} when new (None in old numpy)
        state = {**state, "_ufunc": {} if isinstance(state["_ufunc"], dict) else None}
    return (func, args, state, *rest)


def _dump(value: Any, file: Any, protocol: int) -> None:
    """pickle.dump, leaving out what library objects only memoize (numpy is looked up, not
    imported: a vectorize to save means it is loaded)."""
    pickler = pickle.Pickler(file, protocol=protocol)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        pickler.dispatch_table = {**copyreg.dispatch_table, numpy.vectorize: _vectorize_without_memo}
    pickler.dump(value)


class PickleCodec:
    """Anything picklable, protocol 5. Unsafe: decoded only after the checksum matched."""

    name = "pickle"
    suffix = ".pkl"
    unsafe = True
    protocol = 5

    def why_not(self, value: Any) -> str | None:
        """The reason ``value`` cannot be pickled, or None. Streams to a null sink."""
        try:
            _dump(value, _NullSink(), self.protocol)
        except Exception as exc:  # pickling runs user code (__reduce__): any error counts
            return f"{type(exc).__name__}: {exc}"
        return None

    def can_encode(self, value: Any) -> bool:
        return self.why_not(value) is None

    def encode(self, value: Any, path: Path) -> None:
        with open(path, "wb") as f:
            _dump(value, f, self.protocol)

    def decode(self, path: Path) -> Any:
        with open(path, "rb") as f:
            return pickle.load(f)

    def decode_bytes(self, data: bytes) -> Any:
        return pickle.loads(data)


PICKLE = PickleCodec()


def check_loadable(codec: Any, *, allow_pickle: bool, output: str) -> None:
    """Refuse, with PickleDisabledError naming ``output``, to decode an artifact whose
    codec can run code while ``allow_pickle`` is off."""
    if codec.unsafe and not allow_pickle:
        raise PickleDisabledError(
            f"output {output!r} is stored with the {codec.name} codec and allow_pickle is "
            f"off; enable it (taskcache.configure(allow_pickle=True)) only if you trust "
            f"this catalog"
        )


def imports_code(codec: Any) -> bool:
    """Whether decoding with ``codec`` may import a module (the module codec)."""
    return bool(getattr(codec, "imports", False))


def check_import(codec: Any, data: bytes, *, allow_pickle: bool, output: str) -> None:
    """With ``allow_pickle`` off, refuse (PickleDisabledError naming ``output``) to decode
    ``data`` with an importing codec unless the module it names is already imported here:
    importing runs the module's code, which whoever can write the catalog would choose."""
    if allow_pickle or not imports_code(codec):
        return
    try:
        name = codec.module_name(data)
    except ValueError as exc:
        raise PickleDisabledError(f"output {output!r}: {exc}") from None
    if name not in sys.modules:
        raise PickleDisabledError(
            f"output {output!r} is the module {name!r}, which this process has not imported; "
            f"with allow_pickle off taskcache imports nothing from a catalog: import it "
            f"yourself first, or enable allow_pickle only if you trust this catalog"
        )


def check_type(value: Any, recorded: str | None, *, relpath: str) -> Any:
    """``value``, if its type is the one recorded when its artifact (``relpath`` in the
    store) was written (or none was recorded); else CorruptArtifactError: the catalog row
    and the file disagree."""
    if recorded and type_name(value) != recorded:
        raise CorruptArtifactError(relpath, f"a value of type {recorded}",
                                   f"{type_name(value)} (the catalog's codec or type was changed)")
    return value
