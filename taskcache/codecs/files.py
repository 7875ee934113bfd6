"""The "file" codec: a copy of a file a run wrote, so that a hit can put it back.

It is never chosen for a value (``codec_for``): the runner stores a written file by giving
the store a :class:`FileContent`. Loading the artifact gives the file's bytes.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskcache.records import FILE_CODEC


@dataclass(frozen=True)
class FileContent:
    """The file at ``path``, to be copied into the store."""

    path: str


class FileCopyCodec:
    name = FILE_CODEC
    suffix = ""
    unsafe = False

    def can_encode(self, value: Any) -> bool:
        return isinstance(value, FileContent)

    def encode(self, value: Any, path: Path) -> None:
        shutil.copyfile(value.path, path)

    def decode(self, path: Path) -> Any:
        return Path(path).read_bytes()

    def decode_bytes(self, data: bytes) -> Any:
        return data
