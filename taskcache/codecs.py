"""Codec registry: how a value becomes a file and back (parquet, npy, json, opt-in pickle).

Codecs only turn values into files at a path the store gives them; the store moves bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


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


def register_codec(type_: type | str, codec: Codec, *, first: bool = True) -> None:
    """Use ``codec`` for ``type_`` (or a dotted type name, so nothing is imported early)."""
    raise NotImplementedError


def codec_for(value: Any, *, allow_pickle: bool, name: str | None = None) -> Codec:
    """The codec that stores ``value`` exactly; raises UnstorableValueError naming ``name``."""
    raise NotImplementedError


def get_codec(name: str) -> Codec:
    """The codec recorded in the catalog under ``name`` (KeyError-style error if unknown)."""
    raise NotImplementedError


def describe(value: Any) -> dict[str, Any]:
    """Catalog metadata of a value: {"type": qualname, "shape": [..]|None, "rows": int|None,
    "columns": [..]|None, "repr": short repr (<= 200 chars)}. Never raises."""
    raise NotImplementedError
