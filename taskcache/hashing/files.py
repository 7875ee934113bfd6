"""Files and folders named by a path value: hashed by content (a folder by its sorted names
and the content of its files); any other path by its text."""

from __future__ import annotations

import os
from pathlib import Path, PurePath
from typing import Any

from taskcache.fileio import FileDigests
from taskcache.hashing.core import U64, Unhashable, feed_str, tag

T_FILE, T_DIR, T_PATH, T_SUBDIR = (tag(n) for n in ("file", "dir", "path", "subdir"))

#: digests of the files hashed in this process, by file identity
FILE_DIGESTS = FileDigests()


def file_digest(path: Path) -> bytes:
    """Content digest of a file; read again only when the file's identity changed."""
    return FILE_DIGESTS.digest(path)


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
            for root, dirs, names in os.walk(path):
                base = Path(root)
                entries += [(base.joinpath(d).relative_to(path).as_posix(), None) for d in dirs]
                entries += [
                    (base.joinpath(f).relative_to(path).as_posix(), base / f) for f in names
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
