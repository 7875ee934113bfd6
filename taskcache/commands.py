"""The catalog subcommands, in one table shared by the ``taskcache`` command line and the
``%taskcache`` line magic: runs, show, load, why, gc, verify, doctor, summary, config,
browse, and ``serve`` (command line only).

Each :class:`Command` declares its arguments on an ``argparse`` parser and runs with the
parsed arguments and a :class:`Context` (the IPython shell when there is one). It returns
what to show: text is printed, anything else (a DataFrame, the run browser) is displayed by
the notebook or printed by the command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["COMMANDS", "Command", "Context", "add_subcommands"]


@dataclass
class Context:
    """What a command may use besides its arguments."""

    shell: Any = None              # the IPython shell; None on the command line
    last_task: str | None = None   # the task of the last %%task cell of this session
    quiet: bool = False


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Context], Any]
    needs_shell: bool = False      # load and browse work in a notebook only
    command_line_only: bool = False  # serve starts a server: not from inside a kernel


def _size(text: str) -> int:
    from taskcache.lifecycle.maintenance import size_argument

    return size_argument(text)


# -- runs ---------------------------------------------------------------------------------
def _runs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task")
    p.add_argument("--status")
    p.add_argument("--tag")
    p.add_argument("--limit", type=int, default=20)


def _runs(a: argparse.Namespace, ctx: Context) -> Any:
    from taskcache import api

    frame = api.runs(task=a.task, status=a.status, tag=a.tag, limit=a.limit)
    if ctx.shell is None:  # a terminal: the columns that fit a line
        return frame[["task", "status", "created_at", "duration", "hit_count", "tags"]]
    return frame


# -- show / load --------------------------------------------------------------------------
def _id_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", type=int)


def _show(a: argparse.Namespace, ctx: Context) -> str:
    from taskcache import api

    return api.run(a.id).describe()


def _load_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", type=int)
    p.add_argument("names", nargs="*")


def _load(a: argparse.Namespace, ctx: Context) -> str:
    from taskcache import api

    record = api.run(a.id).record
    values = api.namespace_values(record, a.names or None)  # ValueError: a usage error
    ctx.shell.user_ns.update(values)
    return f"taskcache: loaded {', '.join(values)} from run #{record.id}"


# -- why ----------------------------------------------------------------------------------
def _why_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", nargs="?")


def _why(a: argparse.Namespace, ctx: Context) -> str:
    from taskcache.lifecycle.explain import explain_text
    from taskcache.lifecycle.runner import get_runner

    task = a.task or ctx.last_task
    if task is None:
        raise ValueError("no %%task cell has run yet in this session; give a task name: "
                         "why NAME")
    return explain_text(get_runner().catalog, task)


# -- gc / verify --------------------------------------------------------------------------
def _gc_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true", help="list what would go, delete nothing")
    p.add_argument("--older-than-days", type=float, default=None)
    p.add_argument("--keep-last", type=int, default=None)
    p.add_argument("--max-size", metavar="SIZE", type=_size, default=None,
                   help="then drop the least recently used runs until their artifacts fit, "
                        "e.g. 500MB, 2GB, 1.5GiB")
    p.add_argument("--keep-failed", action="store_true")


def _gc(a: argparse.Namespace, ctx: Context) -> Any:
    from taskcache.lifecycle.maintenance import gc

    return gc(older_than_days=a.older_than_days, keep_last=a.keep_last, max_bytes=a.max_size,
              drop_failed=not a.keep_failed, dry_run=a.dry_run)


def _verify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fix", action="store_true")


def _verify(a: argparse.Namespace, ctx: Context) -> Any:
    from taskcache.lifecycle.maintenance import verify

    return verify(fix=a.fix)


def _doctor(a: argparse.Namespace, ctx: Context) -> Any:
    from taskcache.lifecycle.doctor import doctor

    return doctor()


# -- summary / config ---------------------------------------------------------------------
def _no_args(p: argparse.ArgumentParser) -> None:
    pass


def _summary(a: argparse.Namespace, ctx: Context) -> str:
    from taskcache import api

    return "\n".join(f"{key:12} {value}" for key, value in api.summary().items())


def _config(a: argparse.Namespace, ctx: Context) -> str:
    from taskcache.lifecycle.runner import current_settings

    s = current_settings()
    keys = ("cache_dir", "db_url", "allow_pickle", "lease_seconds", "busy_timeout_seconds",
            "frame_format")
    lines = [f"{key:22} {getattr(s, key)}" for key in keys]
    return "\n".join([*lines, f"{'quiet':22} {ctx.quiet}"])


# -- browse -------------------------------------------------------------------------------
def _browse_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", default=None)
    p.add_argument("--status", default=None)
    p.add_argument("--tag", default=None)
    p.add_argument("--text", default=None)
    p.add_argument("--page-size", type=int, default=25)
    p.add_argument("--no-live", action="store_true", help="no periodic refresh")


def _browse(a: argparse.Namespace, ctx: Context) -> Any:
    from taskcache.browser import RunBrowser

    filters = {k: v for k, v in (("task", a.task), ("status", a.status), ("tag", a.tag),
                                 ("text", a.text)) if v is not None}
    return RunBrowser(shell=ctx.shell, page_size=a.page_size, live=not a.no_live, **filters)


# -- serve --------------------------------------------------------------------------------
def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=8888)
    p.add_argument("--ip", default="127.0.0.1")
    p.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    p.add_argument("--allow-root", action="store_true", help="run as root (e.g. in a container)")


def _serve(a: argparse.Namespace, ctx: Context) -> None:
    """A Jupyter server with the taskcache extension, opening at /taskcache (Jupyter's own
    login: the URL printed carries the token)."""
    if not 0 < a.port < 65536:
        raise ValueError(f"--port must be between 1 and 65535, got {a.port}")
    from jupyter_server.serverapp import ServerApp

    ServerApp.launch_instance(argv=[
        f"--ServerApp.port={a.port}", f"--ServerApp.ip={a.ip}",
        "--ServerApp.default_url=/taskcache",
        f"--ServerApp.open_browser={not a.no_browser}",
        "--ServerApp.jpserver_extensions={'taskcache': True}",
        *(["--allow-root"] if a.allow_root else []),
    ])


COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("runs", "list runs, newest first", _runs_args, _runs),
    Command("show", "one run in full", _id_arg, _show),
    Command("load", "put a run's outputs into the notebook", _load_args, _load, needs_shell=True),
    Command("why", "what changed since the last completed run of a task", _why_args, _why),
    Command("gc", "free space", _gc_args, _gc),
    Command("verify", "check every artifact and the database", _verify_args, _verify),
    Command("doctor", "check the catalog and the artifact store, and say what to fix",
            _no_args, _doctor),
    Command("summary", "counts, hits, time saved, disk used", _no_args, _summary),
    Command("config", "the settings in effect", _no_args, _config),
    Command("browse", "the run browser", _browse_args, _browse, needs_shell=True),
    Command("serve", "a Jupyter server with the taskcache page (runs, task launcher)",
            _serve_args, _serve, command_line_only=True),
)}


def add_subcommands(
    parser: argparse.ArgumentParser, *, shell: bool, **subparser_options: Any,
) -> None:
    """One subparser per command available here (``shell``: inside IPython), its
    ``Command`` stored as the ``command`` default."""
    sub = parser.add_subparsers(dest="name", required=True, metavar="COMMAND",
                                **subparser_options)
    for command in COMMANDS.values():
        if (command.needs_shell and not shell) or (command.command_line_only and shell):
            continue
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        command.arguments(p)
        p.set_defaults(command=command)
