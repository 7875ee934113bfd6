"""A task's parameters from its signature and type hints, as plain data a form can be built
from (the web page, the run browser's Launch tab), and the checking of submitted values.

Supported annotations: ``int``, ``float``, ``bool``, ``str``, ``Literal[...]``, an ``Enum``,
``date``/``datetime``, ``Path``, ``list[int]``/``list[float]``/``list[str]``, and
``Optional[X]`` / ``X | None`` of those. Any other annotation (or none) is a ``json`` field:
the value is given as JSON and passed as decoded.
"""

from __future__ import annotations

import datetime as dt
import enum
import inspect
import json
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ArgumentError", "Param", "bind_arguments", "describe_params"]


class ArgumentError(ValueError):
    """A submitted argument does not fit the task's signature: names the parameter and why."""

    def __init__(self, param: str | None, reason: str) -> None:
        self.param = param
        self.reason = reason
        super().__init__(f"parameter {param!r}: {reason}" if param else reason)


@dataclass(frozen=True)
class Param:
    """One parameter as a form shows it."""

    name: str
    kind: str                     # int, float, bool, str, choice, date, datetime, path,
    #                               list[int], list[float], list[str], json
    required: bool
    default: Any = None           # JSON-ready (dates as ISO text, enums by name)
    optional: bool = False        # None is accepted (Optional[X])
    choices: list[Any] = field(default_factory=list)  # for "choice"
    help: str = ""
    annotation: str = ""          # the annotation as written, for people

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_SCALARS: dict[Any, str] = {int: "int", float: "float", bool: "bool", str: "str",
                            dt.date: "date", dt.datetime: "datetime", Path: "path"}
_LISTS = {int: "list[int]", float: "list[float]", str: "list[str]"}


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


def _kind(annotation: Any) -> tuple[str, list[Any]]:
    if annotation in _SCALARS:
        return _SCALARS[annotation], []
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "choice", list(typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "choice", [m.name for m in annotation]
    if origin is list:
        (item,) = typing.get_args(annotation) or (None,)
        if item in _LISTS:
            return _LISTS[item], []
    return "json", []


def _doc_help(fn: Callable[..., Any]) -> dict[str, str]:
    """Per-parameter help from a docstring: Google (``name: text`` / ``name (type): text``
    under Args/Parameters), numpydoc (``name : type`` then an indented line) or Sphinx
    (``:param name: text``)."""
    doc = inspect.getdoc(fn) or ""
    found: dict[str, str] = {}
    for m in re.finditer(r":param\s+(?:\w+\s+)?(\w+):\s*(.+)", doc):
        found[m[1]] = m[2].strip()
    lines = doc.splitlines()
    in_args = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if re.fullmatch(r"(Args|Arguments|Parameters|Params):?", stripped):
            in_args = True
            continue
        if in_args and re.fullmatch(r"-{3,}", stripped):
            continue
        if in_args and stripped and not line.startswith((" ", "\t")) and not stripped.endswith(":") and ":" not in stripped:
            # numpydoc "name : type" lines are not indented; a bare word ends the section
            in_args = False
        if not in_args:
            continue
        m = re.match(r"\s*(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)", line)
        if m is None:
            continue
        name, rest = m[1], m[2].strip()
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        numpy_style = re.match(r"\s*\w+\s+:\s", line) is not None
        text = nxt if numpy_style else rest
        if text and name not in found:
            found[name] = text
    return found


def _json_default(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def describe_params(fn: Callable[..., Any]) -> list[Param]:
    """The parameters of ``fn`` (a plain function or the function a ``@task`` wraps), in
    signature order; ``*args``/``**kwargs`` are left out (a form cannot fill them)."""
    target = inspect.unwrap(fn)
    sig = inspect.signature(target)
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # an annotation that does not resolve: every field becomes json
        hints = {}
    helps = _doc_help(target)
    params: list[Param] = []
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        annotation = hints.get(p.name, p.annotation)
        bare, optional = _strip_optional(annotation)
        kind, choices = _kind(bare) if annotation is not inspect.Parameter.empty else ("json", [])
        required = p.default is inspect.Parameter.empty
        default = None if required else _json_default(p.default)
        if not required and p.default is None:
            optional = True
        shown = "" if annotation is inspect.Parameter.empty else (
            getattr(annotation, "__name__", None) if isinstance(annotation, type) else str(annotation)
        ) or ""
        params.append(Param(p.name, kind, required, default, optional, choices,
                            helps.get(p.name, ""), shown.replace("typing.", "")))
    return params


def _coerce(param: Param, value: Any, annotation: Any) -> Any:
    """The Python value for one submitted JSON value, or ArgumentError naming the field."""
    if value is None:
        if param.optional:
            return None
        raise ArgumentError(param.name, "a value is required (it is not Optional)")
    kind = param.kind

    def fail(what: str) -> ArgumentError:
        return ArgumentError(param.name, f"expected {what}, got {value!r}")

    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise fail("an integer")
        try:
            return int(value)
        except ValueError:
            raise fail("an integer") from None
    if kind == "float":
        if isinstance(value, bool):
            raise fail("a number")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise fail("a number") from None
        if not math.isfinite(number):
            raise fail("a finite number")
        return number
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise fail("true or false")
    if kind == "str":
        if not isinstance(value, str):
            raise fail("text")
        return value
    if kind == "path":
        if not isinstance(value, str) or not value:
            raise fail("a path")
        return Path(value)
    if kind == "choice":
        bare, _ = _strip_optional(annotation)
        if isinstance(bare, type) and issubclass(bare, enum.Enum):
            if isinstance(value, str) and value in bare.__members__:
                return bare[value]
            raise fail(f"one of {', '.join(param.choices)}")
        for choice in param.choices:
            if value == choice and type(value) is type(choice):
                return choice
        raise fail(f"one of {', '.join(map(repr, param.choices))}")
    if kind in ("date", "datetime"):
        if not isinstance(value, str):
            raise fail(f"an ISO {kind}")
        try:
            return (dt.date.fromisoformat(value) if kind == "date"
                    else dt.datetime.fromisoformat(value))
        except ValueError:
            raise fail(f"an ISO {kind} (e.g. 2026-11-30)") from None
    if kind.startswith("list["):
        item = Param(param.name, kind[5:-1], True)
        if not isinstance(value, list):
            raise fail(f"a list of {item.kind}")
        return [_coerce(item, v, None) for v in value]
    return value  # json: already decoded


def bind_arguments(fn: Callable[..., Any], arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Check submitted ``{name: JSON value}`` against ``fn``'s signature and convert each
    value to its annotated type; defaults fill what is missing. Raises ArgumentError for an
    unknown name, a missing required parameter or a value of the wrong type."""
    if not isinstance(arguments, Mapping):
        raise ArgumentError(None, "arguments must be a JSON object of name: value")
    target = inspect.unwrap(fn)
    try:
        hints = typing.get_type_hints(target)
    except Exception:
        hints = {}
    params = {p.name: p for p in describe_params(fn)}
    unknown = [name for name in arguments if name not in params]
    if unknown:
        raise ArgumentError(unknown[0], f"{fn.__name__}() has no such parameter; it takes "
                                        f"{', '.join(params) or 'no parameters'}")
    bound: dict[str, Any] = {}
    for name, param in params.items():
        if name in arguments:
            bound[name] = _coerce(param, arguments[name], hints.get(name))
        elif param.required:
            raise ArgumentError(name, "missing (it has no default)")
    return bound
