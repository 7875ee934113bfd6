"""The "pickle" codec and the pickle policy: which artifacts may be decoded at all.

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
from pathlib import Path
from typing import Any

from taskcache.errors import PickleDisabledError


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
