"""How values are named and shown in the catalog, in messages and in the browser: the type
name, a short one-line repr and the metadata recorded beside an artifact. Never raises."""

from __future__ import annotations

import os
import reprlib
import sys
from typing import Any

__all__ = ["describe", "display_path", "format_bytes", "short_repr", "type_name"]

_REPR = reprlib.Repr()
_REPR.maxstring = 120
_REPR.maxother = 160
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = _REPR.maxdict = 8


def type_name(value_or_type: Any) -> str:
    """``module.QualName`` of a value's type (or of a type)."""
    t = value_or_type if isinstance(value_or_type, type) else type(value_or_type)
    module = getattr(t, "__module__", None) or "?"
    return f"{module}.{getattr(t, '__qualname__', t.__name__)}"


def short_repr(value: Any, limit: int = 120) -> str:
    """One line of at most ``limit`` characters; a broken ``__repr__`` gives ``<type>``."""
    try:
        text = _REPR.repr(value)
    except Exception as exc:  # a broken __repr__ must not hide the real work or error
        text = f"<{type_name(value)}: repr failed ({type(exc).__name__})>"
    text = " ".join(text.split())  # multi-line reprs (frames) become one line
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(value: Any) -> dict[str, Any]:
    """Catalog metadata of a value: {"type": qualname, "shape": [..]|None, "rows": int|None,
    "columns": [..]|None, "repr": short repr (<= 200 chars)}."""
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
        info["repr"] = short_repr(value, 200)
    except Exception:  # metadata is a convenience
        pass
    return info


def format_bytes(size: int | None) -> str:
    """512 B, 1.5 KB, 20.3 MB, 1.2 GB (powers of 1024)."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def display_path(path: str) -> str:
    """``path`` relative to the working folder when it is inside it, else as it is."""
    cwd = os.getcwd()
    if path == cwd or path.startswith(cwd.rstrip(os.sep) + os.sep):
        return os.path.relpath(path, cwd)
    return path
