"""How values are named and shown in the catalog, in messages and in the browser: the type
name, a short one-line repr and the metadata recorded beside an artifact. Never raises."""

from __future__ import annotations

import os
import reprlib
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["describe", "display_path", "error_line", "format_bytes", "format_duration",
           "format_when", "short_repr", "type_name"]

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


def format_duration(seconds: float | None) -> str:
    """How long something took, for people: 1.5 ms, 820 ms, 2.1 s, 4 min 05 s, 2 h 03 min;
    "-" when unknown."""
    if seconds is None or seconds != seconds:  # None or NaN
        return "-"
    if seconds < 0.01:
        return f"{seconds * 1000:.2g} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 59.95:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_bytes(size: int | None) -> str:
    """A size for people, in decimal units as disks and ``gc --max-size`` count them:
    512 B, 1.5 KB, 2.4 MB, 1.2 GB; "-" when unknown."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 999.95:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:,.1f} TB"


def format_when(moment: datetime | None, now: datetime | None = None) -> str:
    """A moment in local wall-clock time, to the second; the date too when it is not today."""
    if moment is None:
        return "-"
    now = (now or datetime.now(UTC)).astimezone()
    local = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone()
    return local.strftime("%H:%M:%S" if local.date() == now.date() else "%Y-%m-%d %H:%M")


def error_line(error_type: str | None, message: str | None, limit: int = 160) -> str:
    """``KeyError: 'amout'``: a failed run's error in one line (the type without its
    ``builtins.`` module, the first line of the message); "" when there is no error."""
    if not error_type and not message:
        return ""
    kind = (error_type or "").removeprefix("builtins.")
    first = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
    text = f"{kind}: {first}" if kind and first else kind or first
    return text if len(text) <= limit else text[: limit - 1] + "…"


def display_path(path: str) -> str:
    """``path`` relative to the working folder when it is inside it, else as it is."""
    cwd = os.getcwd()
    if path == cwd or path.startswith(cwd.rstrip(os.sep) + os.sep):
        return os.path.relpath(path, cwd)
    return path
