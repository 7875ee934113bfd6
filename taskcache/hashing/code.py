"""Hashing code: user functions and classes by normalized source and what they reference,
library code by package version, and the package versions code depends on.

The key describes the code that runs: a function's source counts only when compiling it gives
the function's own code object (a module edited on disk but not reloaded still runs its old
code, so then the code object counts), and a user module counts by the attributes the code
reads from it at run time (``cfg.alpha``), never by its file."""

from __future__ import annotations
import __future__

import dis
import functools
import importlib.metadata
import inspect
import os
import sys
import sysconfig
import types
from typing import Any

from xxhash import xxh3_128

from taskcache.analysis import attribute_reads, free_names, normalize_source, sink_names
from taskcache.describe import type_name
from taskcache.hashing.core import U64, Ctx, Guard, Unhashable, feed, feed_int, feed_str, tag

T_FUNC, T_SOURCE, T_CODEOBJ, T_CLOSURE = (tag(n) for n in ("func", "source", "codeobj", "closure"))
T_CLASS, T_LIB, T_METHOD, T_PARTIAL = (tag(n) for n in ("class", "lib", "method", "partial"))
T_WRAPPED, T_SM, T_CM, T_PROP = (tag(n) for n in ("wrapped", "staticmethod", "classmethod", "prop"))
T_CODEREF, T_MODULE, T_USERMOD, T_EMPTY = (
    tag(n) for n in ("coderef", "module", "usermod", "empty")
)
T_GLOBALS = tag("globals")

_SKIP_CLASS_ATTRS = frozenset(
    {
        "__dict__",
        "__weakref__",
        "__module__",
        "__doc__",
        "__qualname__",
        "__annotations__",
        "__firstlineno__",
        "__static_attributes__",
        "__slots__",
        "__match_args__",
    }
)
_LIB_ROOTS = tuple(
    os.path.realpath(p) + os.sep
    for key in ("stdlib", "platstdlib", "purelib", "platlib")
    if (p := sysconfig.get_paths().get(key))
)
_PACKAGE_ROOT = os.path.dirname(os.path.realpath(__file__)) + os.sep


# --------------------------------------------------------------------------- where code lives


def _module_is_user(name: str | None) -> bool:
    """True for notebook code and the user's own modules, False for installed libraries."""
    if name is None or name == "__main__":
        return True
    top = name.split(".")[0]
    if top == "taskcache" or top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return False
    module = sys.modules.get(name)
    if module is None:
        return True  # code exec'd into a namespace that is not an imported module
    return _file_is_user(getattr(module, "__file__", None))


@functools.lru_cache(maxsize=2048)
def _file_is_user(path: str | None) -> bool:
    if not path:
        return False  # builtin, frozen or namespace package
    real = os.path.realpath(path)
    return not real.startswith(_LIB_ROOTS) and not real.startswith(_PACKAGE_ROOT)


def is_user_code(obj: Any) -> bool:
    return isinstance(obj, (types.FunctionType, type)) and _module_is_user(obj.__module__)


@functools.lru_cache(maxsize=512)
def package_version(top: str) -> str:
    """Version of a top-level package: __version__, else its distribution's, else 'unknown'."""
    if top in sys.stdlib_module_names or top in sys.builtin_module_names or top == "builtins":
        return "python-{}.{}".format(*sys.version_info[:2])
    version = getattr(sys.modules.get(top), "__version__", None)
    if isinstance(version, str):
        return version
    for dist in [top, *_distributions().get(top, [])]:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())


# --------------------------------------------------------------------------- digests


def code_digest(obj: Any, ctx: Ctx) -> bytes:
    """Digest of one function/class/callable. A function met again while it is being hashed
    (recursion) becomes a reference to the depth where it started; digests that do not
    depend on anything outside themselves are memoized for the rest of this hash."""
    key = id(obj)
    start = ctx.code_active.get(key)
    if start is not None:
        ctx.min_backref = min(ctx.min_backref, start)
        return xxh3_128(T_CODEREF + U64(len(ctx.code_active) - start)).digest()
    memo = ctx.memo.get(key)
    if memo is not None and memo[0] is obj:
        return memo[1]
    depth = len(ctx.code_active)
    ctx.code_active[key] = depth
    outer_min, ctx.min_backref = ctx.min_backref, 1 << 30
    try:
        h = xxh3_128()
        _feed_code(h, obj, ctx)
        result = h.digest()
    finally:
        del ctx.code_active[key]
        inner_min = ctx.min_backref
        ctx.min_backref = min(outer_min, inner_min)
    if inner_min >= depth:
        ctx.memo[key] = (obj, result)
    return result


def _feed_code(h: Any, obj: Any, ctx: Ctx) -> None:
    if isinstance(obj, types.MethodType):
        h.update(T_METHOD + code_digest(obj.__func__, ctx))
        feed(h, obj.__self__, ctx)
    elif isinstance(obj, functools.partial):
        h.update(T_PARTIAL + code_digest(obj.func, ctx))
        feed(h, obj.args, ctx)
        feed(h, obj.keywords, ctx)
    elif isinstance(obj, (staticmethod, classmethod)):
        h.update((T_SM if isinstance(obj, staticmethod) else T_CM) + code_digest(obj.__func__, ctx))
    elif isinstance(obj, property):
        h.update(T_PROP)
        for part in (obj.fget, obj.fset, obj.fdel):
            feed(h, part, ctx)
    elif is_user_code(obj):
        (_feed_user_class if isinstance(obj, type) else _feed_user_function)(h, obj, ctx)
    elif callable(obj) and not isinstance(obj, type) and hasattr(obj, "__wrapped__"):
        h.update(T_WRAPPED)  # e.g. functools.lru_cache around a user function
        feed_str(h, type_name(type(obj)))
        h.update(code_digest(obj.__wrapped__, ctx))
    elif isinstance(obj, types.ModuleType):
        feed_module(h, obj, ctx)
    elif isinstance(obj, type) or hasattr(obj, "__qualname__") or hasattr(obj, "__name__"):
        h.update(T_LIB)  # library code: its name and package version, never its source
        module = getattr(obj, "__module__", None) or type(obj).__module__
        feed_str(h, f"{module}.{getattr(obj, '__qualname__', getattr(obj, '__name__', ''))}")
        feed_str(h, package_version(module.split(".")[0]))
    else:  # a callable instance: hash it as a value (its class counts as code)
        feed(h, obj, ctx)


def _source_of(fn: types.FunctionType) -> str | None:
    if fn.__code__.co_name == "<lambda>" or hasattr(fn, "__wrapped__"):
        return None  # a lambda's source line holds more than the lambda; getsource unwraps
    return _source_of_code(fn.__code__)


@functools.lru_cache(maxsize=4096)
def _source_of_code(code: types.CodeType) -> str | None:
    """Source of a code object, once per code object, and only if it compiles to that code:
    a file edited since it was imported holds text the loaded code was not compiled from."""
    try:
        source = inspect.getsource(code)
        normalize_source(source)
    except (OSError, TypeError, SyntaxError):
        return None
    return source if _compiles_to(source, code) else None


#: the __future__ flags a code object carries, to compile its source the same way
_FUTURE_FLAGS = functools.reduce(
    lambda acc, name: acc | getattr(__future__, name).compiler_flag, __future__.all_feature_names, 0
)


def _compiles_to(source: str, code: types.CodeType) -> bool:
    """Whether ``source`` (a def or class cut out of its file or cell) compiles to a code
    object with the same instructions, names and constants as ``code``."""
    text = source  # as it is in the file: dedenting would change its multi-line strings
    if source[:1] in " \t":  # a method or a nested def; one using super() needs a class
        text = ("class _:\n" if "__class__" in code.co_freevars else "if 1:\n") + source
    flags = code.co_flags & _FUTURE_FLAGS
    try:
        compiled = compile(text, code.co_filename, "exec", flags=flags, dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    wanted = _shape(code)
    pending = [compiled]
    while pending:
        candidate = pending.pop()
        if candidate.co_name == code.co_name and _shape(candidate) == wanted:
            return True
        pending += [c for c in candidate.co_consts if isinstance(c, types.CodeType)]
    return False


_JUMPS = frozenset(dis.hasjrel) | frozenset(dis.hasjabs)


def _shape(code: types.CodeType) -> tuple:
    """What a code object computes (its instructions with their constants, names and
    nested code), without where it sits in its file (line numbers) and without what depends
    on the rest of its module: how an attribute is loaded (CPython loads ``mod.f`` with
    LOAD_ATTR when ``mod`` is imported in the same file, else with LOAD_METHOD; PUSH_NULL or
    not), hence jump offsets and EXTENDED_ARG, so jumps count by instruction position."""
    instructions, position = [], {}
    for ins in dis.get_instructions(code):
        position[ins.offset] = len(instructions)  # a jump to a skipped one lands on the next
        if ins.opname not in ("PUSH_NULL", "EXTENDED_ARG"):
            instructions.append(ins)
    ops = tuple(
        (
            "LOAD_ATTR" if ins.opname == "LOAD_METHOD" else ins.opname,
            position.get(ins.argval) if ins.opcode in _JUMPS
            else _shape(ins.argval) if isinstance(ins.argval, types.CodeType)
            else (type(ins.argval).__name__, repr(ins.argval)),
        )
        for ins in instructions
    )
    return (code.co_name, ops, code.co_varnames, code.co_freevars, code.co_cellvars,
            code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount)


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _feed_codeobj(h: Any, code: types.CodeType, ctx: Ctx) -> None:
    h.update(T_CODEOBJ + U64(len(code.co_code)) + code.co_code)
    for n in (code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags):
        feed_int(h, n)
    for names in (code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars):
        feed(h, names, ctx)
    h.update(U64(len(code.co_consts)))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _feed_codeobj(h, const, ctx)
        else:
            feed(h, const, ctx)


def _referenced(fn: types.FunctionType) -> tuple[str | None, list[str]]:
    source = _source_of(fn)
    if source is None:
        return None, sorted(_code_names(fn.__code__))
    # a global only written through (CALLS.append(x)) does not change what fn computes
    return source, sorted(set(free_names(source)) - sink_names(source))


def _module_reads(source: str | None, name: str) -> frozenset[str] | None:
    """The attributes ``source`` reads from the global ``name`` (None: any of them)."""
    return None if source is None else attribute_reads(source).get(name)


def _feed_user_function(h: Any, fn: types.FunctionType, ctx: Ctx) -> None:
    h.update(T_FUNC)
    feed_str(h, fn.__qualname__)
    source, names = _referenced(fn)
    if source is not None:
        h.update(T_SOURCE)
        feed_str(h, normalize_source(source))
    else:
        _feed_codeobj(h, fn.__code__, ctx)
    try:
        feed(h, fn.__defaults__, ctx)
        feed(h, fn.__kwdefaults__, ctx)
        h.update(T_CLOSURE + U64(len(fn.__closure__ or ())))
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True):
            feed_str(h, name)
            try:
                contents = cell.cell_contents
            except ValueError:  # a cell not assigned yet
                h.update(T_EMPTY)
                continue
            try:
                feed(h, contents, ctx)
            except Unhashable as exc:
                exc.path.append(f".<closure {name}>")
                raise
        scope = fn.__globals__
        present = [n for n in names if n in scope]
        h.update(T_GLOBALS + U64(len(present)))
        for name in present:
            feed_str(h, name)
            value = scope[name]
            try:
                if isinstance(value, types.ModuleType):  # a user module: what fn reads of it
                    feed_module(h, value, ctx, _module_reads(source, name))
                else:
                    feed(h, value, ctx)
            except Unhashable as exc:
                exc.path.append(f".<global {name}>")
                raise
        wrapped = getattr(fn, "__wrapped__", None)
        if wrapped is not None:
            h.update(T_WRAPPED + code_digest(wrapped, ctx))
    except Unhashable as exc:
        exc.path.append(f" (in {fn.__qualname__})")
        raise


def _feed_user_class(h: Any, cls: type, ctx: Ctx) -> None:
    h.update(T_CLASS)
    feed_str(h, cls.__qualname__)
    h.update(U64(len(cls.__bases__)))
    for base in cls.__bases__:
        h.update(code_digest(base, ctx))
    for name, value in sorted(vars(cls).items()):
        if name in _SKIP_CLASS_ATTRS or isinstance(
            value, (types.MemberDescriptorType, types.GetSetDescriptorType)
        ):
            continue
        codeish = isinstance(
            value, (types.FunctionType, staticmethod, classmethod, property, type)
        ) or (callable(value) and hasattr(value, "__wrapped__"))
        if not codeish and name.startswith("_") and name.endswith("_"):
            continue  # machinery such as __dataclass_fields__ or Enum's _member_map_
        feed_str(h, name)
        try:
            feed(h, value, ctx)
        except Unhashable as exc:
            exc.path.append(f" (in {cls.__qualname__}.{name})")
            raise


def feed_module(h: Any, module: types.ModuleType, ctx: Ctx,
                attrs: frozenset[str] | None = None) -> None:
    """A library module by name and package version. A user module (one of the user's own
    files) by the current values of the attributes the code reads from it: ``attrs``, or
    without them every public attribute (functions and classes by their loaded code, other
    values by content). Its file is never read: it may have been edited since it was loaded,
    and attributes may have been changed at run time (``cfg.alpha = 7``)."""
    name = module.__name__
    if not (getattr(module, "__file__", None) and _module_is_user(name)):
        h.update(T_MODULE)
        feed_str(h, name)
        feed_str(h, package_version(name.split(".")[0]))
        return
    guard = Guard(ctx, module)
    if not guard.enter(h):
        return
    try:
        namespace = vars(module)
        names = [n for n in namespace if not n.startswith("_")] if attrs is None else attrs
        present = sorted(n for n in names if n in namespace)
        h.update(T_USERMOD)
        feed_str(h, name)
        h.update(U64(len(present)))
        for attr in present:
            feed_str(h, attr)
            try:
                feed(h, namespace[attr], ctx)
            except Unhashable as exc:
                exc.path.append(f".{attr}")
                raise
    finally:
        guard.exit()


# --------------------------------------------------------------------------- versions


def module_versions(obj: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    seen: set[int] = set()

    def add(module: str | None) -> None:
        top = (module or "").split(".")[0]
        if top and top not in sys.stdlib_module_names and not _module_is_user(module):
            if top not in ("builtins", "taskcache"):
                found[top] = package_version(top)

    def visit(value: Any, depth: int = 0) -> None:
        if id(value) in seen or depth > 50:
            return
        seen.add(id(value))
        if isinstance(value, types.ModuleType):
            add(value.__name__)
        elif isinstance(value, (types.MethodType, staticmethod, classmethod)):
            visit(value.__func__, depth + 1)
        elif isinstance(value, functools.partial):
            visit(value.func, depth + 1)
        elif isinstance(value, property):
            for part in (value.fget, value.fset, value.fdel):
                visit(part, depth + 1)
        elif isinstance(value, types.FunctionType) and is_user_code(value):
            _, names = _referenced(value)
            refs = [value.__globals__[n] for n in names if n in value.__globals__]
            for cell in value.__closure__ or ():
                try:
                    refs.append(cell.cell_contents)
                except ValueError:
                    pass
            refs.append(getattr(value, "__wrapped__", None))
            for ref in refs:
                visit(ref, depth + 1)
        elif isinstance(value, type) and is_user_code(value):
            for ref in [*value.__bases__, *vars(value).values()]:
                visit(ref, depth + 1)
        elif isinstance(value, (types.FunctionType, type, types.BuiltinFunctionType)):
            add(getattr(value, "__module__", None))
        elif value is not None:
            add(type(value).__module__)

    if isinstance(obj, dict):
        for value in obj.values():
            visit(value)
    else:
        visit(obj)
    return dict(sorted(found.items()))
