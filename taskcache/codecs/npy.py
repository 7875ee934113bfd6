"""The "npy" and "npy-scalar" codecs: numpy arrays and scalars as .npy files, never pickled."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any


class NpyCodec:
    """numpy.ndarray (exact type, no object fields) as .npy without pickle."""

    name = "npy"
    hash_exact = True  # decoded values hash as the originals (tests/codecs checks it)
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
    hash_exact = True  # decoded values hash as the originals (tests/codecs checks it)

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
