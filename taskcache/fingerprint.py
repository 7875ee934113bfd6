"""Pure content hashing: values and code -> type-tagged xxh3_128 hex digests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

KEY_VERSION = 1  # increment on any change that alters hashes: it invalidates every cache


def hash_value(value: Any, name: str | None = None) -> str:
    """32-hex-digit content hash of ``value``; raises FingerprintError naming ``name``."""
    raise NotImplementedError


def hash_code(obj: Any) -> str:
    """Hash of a user function or class by its normalized source, closure, defaults and the
    user code/globals it references, transitively; library code counts by package version."""
    raise NotImplementedError


def register_hasher(type_: type | str, fn: Callable[[Any], Any]) -> None:
    """Hash instances of ``type_`` (or dotted type name) by hashing ``fn(value)`` instead."""
    raise NotImplementedError


def combine_key(parts: Mapping[str, Any]) -> str:
    """The run fingerprint: a hash of named parts plus KEY_VERSION."""
    raise NotImplementedError


def module_versions(obj: Any) -> dict[str, str]:
    """Top-level packages (name -> version) referenced by a user function/class or cell
    namespace values, for the run's environment record."""
    raise NotImplementedError
