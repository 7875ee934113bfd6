"""Artifact files: atomic writes, checksums, verified reads, deletes, sweeps. Bytes only."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StoredFile:
    relpath: str   # POSIX path relative to the store root
    size: int
    checksum: str  # "xxh3_128:<hex>" of the file bytes


def prepare_cache_dir(cache_dir: Path) -> Path:
    """Create the cache folder (0700) with a ``.gitignore`` holding ``*``; return it."""
    raise NotImplementedError


def sanitize_name(name: str) -> str:
    """A safe single path component for a user-supplied name (task or output)."""
    raise NotImplementedError


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        raise NotImplementedError

    def write(self, parts: Sequence[str], suffix: str, writer: Callable[[Path], None]) -> StoredFile:
        """``writer(tmp_path)`` fills a temp file in the target folder; then fsync, checksum,
        rename into ``root/<sanitized parts...><suffix>``, fsync the folder; files 0600."""
        raise NotImplementedError

    def path_of(self, relpath: str) -> Path:
        """Absolute path of ``relpath``; UnsafePathError if it resolves outside the root."""
        raise NotImplementedError

    def verify(self, relpath: str, size: int, checksum: str) -> Path:
        """The path, after checking size and checksum; Missing/CorruptArtifactError otherwise."""
        raise NotImplementedError

    def delete(self, relpath: str) -> None:
        raise NotImplementedError
