"""The cache folder and the catalog file: created private (0700 / 0600), and refused when
another user can write to them, since whoever can write there decides what taskcache loads
(pickles included)."""

from __future__ import annotations

import contextlib
import os
import shlex
import stat
from pathlib import Path

from taskcache.errors import ConfigError
from taskcache.fileio import SQLITE_SUFFIXES, atomic_write

__all__ = ["prepare_cache_dir", "prepare_catalog_file", "private_dir",
           "refuse_if_shared", "sqlite_file"]


def _write_private(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def prepare_cache_dir(cache_dir: Path, *, private: bool = True) -> Path:
    """Create the cache folder (0700) with a ``.gitignore`` holding ``*``; return it.

    An existing folder must be private (see :func:`private_dir`); ``private=False`` (a
    catalog shared on purpose, pickle off) leaves an existing folder as its owner set it.
    """
    cache_dir = private_dir(cache_dir, "cache folder", check=private)
    gitignore = cache_dir / ".gitignore"
    if not gitignore.exists():
        _write_private(gitignore, b"# created by taskcache: nothing here belongs in git\n*\n")
    return cache_dir


def private_dir(folder: Path, what: str, *, check: bool = True) -> Path:
    """Create ``folder`` (and its parents) with mode 0700; or, if it exists, refuse it when
    another user can write to it (:func:`refuse_if_shared`) and make it 0700.
    ``check=False`` leaves an existing folder alone."""
    folder = Path(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            if not folder.is_dir():
                raise ConfigError(f"the {what} {folder} exists and is not a folder; point "
                                  f"TASKCACHE_DIR (or --cache-dir) at a folder") from None
            if not check:
                return folder
            refuse_if_shared(folder, what)
        os.chmod(folder, 0o700)
    except ConfigError:
        raise
    except OSError as exc:  # e.g. a parent that is a file, no permission
        raise ConfigError(f"cannot create the {what} {folder}: {exc.strerror or exc}; point "
                          f"TASKCACHE_DIR (or --cache-dir) at a folder you can write") from None
    return folder


def refuse_if_shared(path: Path, what: str) -> None:
    """ConfigError if another user can write to ``path`` (a folder or the catalog file): it
    belongs to someone else, or it is group- or other-writable. Whoever can write there can
    make taskcache load a pickle of their choosing. Only ``path`` itself is checked, never
    its parents (a cache inside the sticky, world-writable /tmp is fine)."""
    if not hasattr(os, "geteuid"):  # Windows: no POSIX owners and modes
        return
    st = os.stat(path)
    shared = "for a catalog shared on purpose, set allow_pickle = false"
    if st.st_uid != os.geteuid():
        raise ConfigError(
            f"the {what} {path} belongs to another user (uid {st.st_uid}), who can change "
            f"what taskcache loads from it; use a folder of your own (TASKCACHE_DIR), or, "
            f"{shared}"
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        fix = f"chmod {700 if stat.S_ISDIR(st.st_mode) else 600} {shlex.quote(str(path))}"
        raise ConfigError(
            f"the {what} {path} is writable by other users (mode {mode:o}), who could make "
            f"taskcache load a pickle of their choosing; fix it with: {fix} (or, {shared})"
        )


def sqlite_file(db_url: str) -> Path | None:
    """The file of a SQLite catalog URL; None for another database, an in-memory one or a
    ``uri=true`` URL (whose file taskcache does not manage)."""
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or url.query.get("uri") or database in ("", ":memory:"):
        return None
    return Path(database).expanduser().absolute()


def prepare_catalog_file(db_url: str, cache_dir: Path) -> None:
    """The SQLite catalog file and its folder (when not the cache folder) must be private too:
    whoever can write the catalog decides which artifact is loaded. A new catalog file is
    created 0600 (so SQLite creates its -wal and -shm 0600 too); existing ones lose any
    group and other permission bits."""
    path = sqlite_file(db_url)
    if path is None:
        return
    if path.parent != cache_dir:
        if path.parent.is_dir():  # the user's own folder: checked, never chmod-ed
            refuse_if_shared(path.parent, "catalog folder")
        else:
            private_dir(path.parent, "catalog folder")
    if path.exists():
        refuse_if_shared(path, "catalog file")
    else:
        with contextlib.suppress(FileExistsError):  # SQLite takes an empty file as new
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for suffix in SQLITE_SUFFIXES:
        file = path.with_name(path.name + suffix)
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to change
            mode = stat.S_IMODE(file.stat().st_mode)
            if mode & 0o077:
                os.chmod(file, mode & 0o700)
