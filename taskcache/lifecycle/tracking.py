"""Which files a run reads and writes, recorded while it executes.

Two sources:

- Python's audit events (``sys.addaudithook``): ``open`` (read or write by its mode; a
  file opened for appending is a log, neither an input nor an output),
  ``os.listdir``, ``os.scandir``, ``glob.glob`` (folders read) and ``os.rename`` (covers
  ``os.replace``: its target is written). One hook is installed once per process, on the
  first tracked run; outside runs it returns after one context-variable read. Events are
  attributed to the run of the current context (``contextvars``), and to the runs it is
  nested in, so threads running other runs are not mixed up (a thread the run starts
  itself does not inherit the context and is not seen). Imports are not data: what is read
  while a module is imported (its code, and what its top-level code reads) is left out, as
  a re-run would not import it again; so are ``.pyc`` files.
- Path values: strings and ``Path`` objects among the inputs, the arguments and the string
  literals of the code that name an existing file or folder. They catch readers and
  writers that bypass Python's ``open`` (Arrow's ``read_parquet``/``to_parquet``). Their
  state is taken before the run; one that changed during the run was written by it.

Left out everywhere: the Python installation (prefixes, site-packages, the standard
library), the cache folder, ``/proc``, ``/dev``, ``/sys``, per-user tool folders (``~/.cache``,
``~/.config``, IPython's, Jupyter's, matplotlib's), and files the run wrote before reading.
Files declared by the user (``--files``, ``@task(files=...)``) are always recorded.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import site
import stat
import sys
import sysconfig
import threading
import types
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskcache.records import FileRecord
from taskcache.storage.filestate import FILE, FOLDER, MISSING, content_hash, identity, snapshot

__all__ = ["FileLog", "RecordedFiles", "code_strings", "path_values", "tracking"]

#: the log of the run executing in this context (None outside runs: the hook does nothing)
_current: contextvars.ContextVar[FileLog | None] = contextvars.ContextVar(
    "taskcache_file_log", default=None)
_install_lock = threading.Lock()
_installed = False

_MAX_PATH = 4096
_MAX_ITEMS = 1000  # elements of a list/dict input looked at for path values


@dataclass
class RecordedFiles:
    """What a run read (FileRecords, role "read") and the paths it wrote (existing after
    the run, in the order first written)."""

    reads: list[FileRecord] = field(default_factory=list)
    written: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=16)
def _excluded_roots(cache_dir: Path | None, cwd: str) -> tuple[str, ...]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             "/proc", "/dev", "/sys"}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        with contextlib.suppress(KeyError):
            roots.add(sysconfig.get_paths()[key])
    with contextlib.suppress(AttributeError):
        roots.update(site.getsitepackages())
    with contextlib.suppress(AttributeError):
        roots.add(site.getusersitepackages())
    home = Path.home()
    roots.update(str(home / name) for name in (".cache", ".config", ".ipython", ".jupyter",
                                                ".matplotlib", ".local"))
    for variable in ("IPYTHONDIR", "MPLCONFIGDIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR",
                     "JUPYTER_RUNTIME_DIR"):
        if os.environ.get(variable):
            roots.add(os.environ[variable])
    if cache_dir is not None:
        roots.add(str(cache_dir))
    clean = {os.path.normpath(os.path.abspath(r)) for r in roots if r}
    # a root that contains the working folder would hide the user's own files
    return tuple(sorted(r for r in clean if r != "/" and not _inside(cwd, r)))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class FileLog:
    """The files one run touched, filled by the audit hook while the run executes."""

    def __init__(self, excluded: Sequence[str], parent: FileLog | None) -> None:
        self.excluded = tuple(excluded)
        self.parent = parent
        # path -> (folder?, what it was at the first read: a file's identity, a folder's
        # listing hash; None if it did not exist)
        self.reads: dict[str, tuple[bool, tuple[int, ...] | str | None]] = {}
        self.written: dict[str, None] = {}
        self.read_then_written: set[str] = set()
        self.appended: set[str] = set()  # logs: neither inputs nor outputs
        self.before: dict[str, FileRecord] = {}  # path values and declared files, pre-run
        self.declared: set[str] = set()

    def skip(self, path: str) -> bool:
        name = os.path.basename(path)
        return (name.endswith(".pyc") or "__pycache__" in path
                or any(_inside(path, root) for root in self.excluded))

    def read(self, path: str, folder: bool) -> None:
        logs = []
        log: FileLog | None = self
        while log is not None:
            if path not in log.reads and path not in log.written and not log.skip(path):
                log.reads[path] = (folder, None)  # first, so that listing it below is no event
                logs.append(log)
            log = log.parent
        if not logs:
            return
        try:
            st = os.stat(path)
        except OSError:
            return  # absent when read: recorded as missing
        seen: tuple[bool, tuple[int, ...] | str | None]
        if stat.S_ISDIR(st.st_mode):
            # a folder by its listing when read: the run may add files to it (its outputs)
            # or create temp files, which change its stat but not what it read
            try:
                seen = (True, content_hash(path, FOLDER))
            except OSError:
                seen = (True, None)
        else:
            seen = (folder, identity(st))
        for log in logs:
            log.reads[path] = seen

    def write(self, path: str) -> None:
        log: FileLog | None = self
        while log is not None:
            if not log.skip(path):
                if path in log.reads:
                    log.read_then_written.add(path)
                log.written.setdefault(path)
            log = log.parent

    def append(self, path: str) -> None:
        log: FileLog | None = self
        while log is not None:
            log.appended.add(path)
            log = log.parent

    def renamed(self, source: str, target: str) -> None:
        log: FileLog | None = self
        while log is not None:
            log.written.pop(source, None)  # a temp file moved into place
            log = log.parent
        self.write(target)

    def merge(self, files: Iterable[FileRecord]) -> None:
        """Add the files of a run served from cache inside this run: this run depends on
        them as if it had read (and written) them itself."""
        for record in files:
            if record.role == "read":
                if record.kind == MISSING:
                    self.read(record.path, False)
                else:
                    self.read(record.path, record.kind == FOLDER)
            else:
                self.write(record.path)

    def result(self) -> RecordedFiles:
        """The run's reads (each snapshotted now, or as it was before the run for a path
        value) and the paths it wrote; call after the body ran."""
        out = RecordedFiles()
        written = dict(self.written)
        for path, record in self.before.items():
            if path in written or path in self.appended:
                continue
            kind, now = _stat_now(path)
            if now == record.identity and kind == record.kind:
                if record.kind != MISSING or path in self.declared:
                    out.reads.append(record)  # a declared absence counts; a text naming nothing not
            elif kind == FILE:  # changed or created by code Python's open did not see
                written.setdefault(path)
        for path, (folder, seen) in self.reads.items():
            if path in self.before or (path in written and path not in self.read_then_written):
                continue
            record = snapshot(path, "read")
            if seen is None:
                if record.kind != MISSING:  # appeared during the run: its absence was read
                    record = FileRecord(path, "read", MISSING, content_hash=None)
            elif path in self.read_then_written or seen != (
                    record.content_hash if record.kind == FOLDER else record.identity):
                # what the run read is gone: it can never be checked (never a hit)
                record = FileRecord(path, "read", FOLDER if folder else FILE)
            out.reads.append(record)
        out.written = [p for p in written if os.path.isfile(p)]
        if self.parent is not None:  # an enclosing run depends on them too, path values included
            self.parent.merge([*out.reads, *(FileRecord(p, "written", FILE) for p in out.written)])
        return out


def _stat_now(path: str) -> tuple[str, tuple[int | None, ...]]:
    """(kind, identity) of ``path`` now, as FileRecord keeps them."""
    try:
        st = os.stat(path)
    except OSError:
        return MISSING, (None, None, None, None)
    return (FOLDER if stat.S_ISDIR(st.st_mode) else FILE), identity(st)


def _path(value: Any) -> str | None:
    if isinstance(value, int) or value is None:
        return None  # a file descriptor
    try:
        text = os.fsdecode(os.fspath(value))
    except (TypeError, ValueError):
        return None
    return os.path.normpath(os.path.abspath(text)) if text else None


def _hook(event: str, args: tuple[Any, ...], _get: Any = _current.get) -> None:
    # called for every audit event of the process (a hit sees a few): outside runs, one
    # bound-method call and out (the default argument saves two lookups per event)
    log = _get()
    if log is None:
        return
    if event not in ("open", "os.listdir", "os.scandir", "os.rename", "glob.glob"):
        return
    try:
        if _importing(sys._getframe(1)):
            return
        if event == "open":
            path = _path(args[0])
            if path is None:
                return
            mode, flags = args[1], args[2] or 0
            if (isinstance(mode, str) and "a" in mode) or flags & getattr(os, "O_APPEND", 0):
                log.append(path)  # a log: neither put back nor checked, even if named
                return
            if isinstance(mode, str):
                reads, writes = "r" in mode or "+" in mode, any(c in mode for c in "wax+")
            else:  # os.open: flags only
                access = flags & getattr(os, "O_ACCMODE", 3)
                reads = access != os.O_WRONLY
                writes = access != os.O_RDONLY or bool(flags & (os.O_CREAT | os.O_TRUNC))
            if reads:
                log.read(path, False)
            if writes:
                log.write(path)
        elif event in ("os.listdir", "os.scandir"):
            path = _path(args[0] if args and args[0] is not None else ".")
            if path is not None:
                log.read(path, True)
        elif event == "glob.glob":
            folder = _glob_root(args[0])
            if folder is not None:
                log.read(folder, True)
        else:  # os.rename and os.replace
            source, target = _path(args[0]), _path(args[1])
            if source is not None and target is not None and args[3] in (None, -1):
                log.renamed(source, target)
    except Exception:  # noqa: BLE001 -- a hook must never break the user's code
        return


def _importing(frame: types.FrameType | None) -> bool:
    """Whether the event comes from an import: reading a module, or anything its top-level
    code reads. A re-run does not import a module again, so those are not the run's data."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _glob_root(pattern: Any) -> str | None:
    """The folder a glob pattern lists first: its parts before the first wildcard."""
    text = _path(pattern)
    if text is None:
        return None
    parts = []
    for part in Path(text).parts:
        if any(c in part for c in "*?["):
            break
        parts.append(part)
    return os.path.join(*parts) if parts else None


def _install() -> None:
    global _installed
    with _install_lock:
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True


def code_strings(code: Any) -> list[str]:
    """The string constants of a code object and of the code nested in it."""
    found: list[str] = []
    stack = [code]
    while stack:
        current = stack.pop()
        for const in current.co_consts:
            if isinstance(const, str):
                found.append(const)
            elif isinstance(const, types.CodeType):
                stack.append(const)
    return found


def path_values(values: Iterable[Any]) -> list[str]:
    """Absolute paths that ``values`` may name: strings and ``os.PathLike`` objects, also
    inside lists, tuples, sets and dicts (one level), and the string literals of functions
    among them. The working folder, its parents and the home folder are never taken as
    named (a literal "." names no data). Whether they exist is for the caller to see: one
    that exists before a run is an input of it, one the run creates is an output."""
    texts: list[Any] = []
    for value in values:
        if isinstance(value, str | os.PathLike):
            texts.append(value)
        elif isinstance(value, list | tuple | set | frozenset | dict):
            items = list(value.items()) if isinstance(value, dict) else value
            for item in list(items)[:_MAX_ITEMS]:
                pair = item if isinstance(value, dict) else (item,)
                texts += [v for v in pair if isinstance(v, str | os.PathLike)]
        elif isinstance(value, types.FunctionType):
            texts += code_strings(value.__code__)
    cwd = os.getcwd()
    broad = {os.path.abspath(os.sep), str(Path.home()), *(str(p) for p in Path(cwd).parents), cwd}
    found: dict[str, None] = {}
    for text in texts:
        if isinstance(text, str) and (not text or len(text) > _MAX_PATH or "\n" in text
                                      or "\0" in text):
            continue
        path = _path(text)
        if path is not None and path not in broad:
            found[path] = None
    return list(found)


@contextlib.contextmanager
def tracking(
    *, enabled: bool, declared: Sequence[str | os.PathLike[str]] = (),
    named: Iterable[str] = (), cache_dir: Path | None = None,
) -> Iterator[FileLog]:
    """Record the files the body reads and writes (``enabled``), plus the ``declared``
    ones, always; ``named`` are path values (see :func:`path_values`) whose state is taken
    now. ``log.result()`` after the body gives what to record."""
    log = FileLog(_excluded_roots(cache_dir, os.getcwd()), _current.get())
    for item in declared:
        path = _path(item)
        if path is not None:
            log.declared.add(path)
            log.before[path] = snapshot(path, "read")
    if enabled:
        for path in named:
            if path not in log.before and not log.skip(path):
                log.before[path] = snapshot(path, "read")
        _install()
    # opted out: reads still count for an enclosing tracked run, never for this one
    token = _current.set(log) if enabled else None
    try:
        yield log
    finally:
        if token is not None:
            _current.reset(token)


def current_log() -> FileLog | None:
    """The log of the run executing in this context, if its files are tracked."""
    return _current.get()
