"""The catalog subcommands, in one table shared by the ``taskcache`` command line and the
``%taskcache`` line magic: runs, show, load, why, gc, verify, doctor, summary, config,
flow, browse, and ``serve`` (command line only).

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


#: the largest number SQLite stores as an integer: run ids and counts beyond it are refused
MAX_INT = 2**63 - 1


def _whole(text: str, low: int, what: str) -> int:
    """``text`` as an int from ``low`` to MAX_INT, else an ArgumentTypeError saying so."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= MAX_INT:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what} (a whole number from {low})")
    return value


def run_id_argument(text: str) -> int:
    """A run id for argparse: a whole number from 1."""
    return _whole(text, 1, "a run id")


def count_argument(text: str) -> int:
    """A count for argparse: a whole number from 0."""
    return _whole(text, 0, "a count")


def positive_argument(text: str) -> int:
    """A size for argparse: a whole number from 1."""
    return _whole(text, 1, "a positive size")


def port_argument(text: str) -> int:
    """A TCP port for argparse: a whole number from 1 to 65535."""
    port = _whole(text, 1, "a port")
    if port > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (a whole number from 1 to 65535)")
    return port


def days_argument(text: str) -> float:
    """A number of days for argparse: finite, from 0 to maintenance.MAX_DAYS."""
    from taskcache.lifecycle.maintenance import MAX_DAYS

    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= MAX_DAYS:  # NaN fails both comparisons
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of days (from 0 to {MAX_DAYS}, e.g. 30 or 0.5)")
    return value


# -- runs ---------------------------------------------------------------------------------
def _runs_args(p: argparse.ArgumentParser) -> None:
    from taskcache.records import STATUSES

    p.add_argument("--task")
    # an unknown status is a usage error that lists the valid ones
    p.add_argument("--status", choices=STATUSES, metavar="STATUS",
                   help=f"one of {', '.join(STATUSES)}")
    p.add_argument("--tag")
    p.add_argument("--limit", type=count_argument, default=20)
    p.add_argument("--all", action="store_true",
                   help="every column, raw (default: id, task, status, local start time, "
                        "duration, hits, error)")


def _runs(a: argparse.Namespace, ctx: Context) -> Any:
    from taskcache import api

    return api.runs(task=a.task, status=a.status, tag=a.tag, limit=a.limit, compact=not a.all)


# -- show / load --------------------------------------------------------------------------
def _id_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", type=run_id_argument)


def _show(a: argparse.Namespace, ctx: Context) -> str:
    from taskcache import api

    return api.run(a.id).describe()


def _load_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", type=run_id_argument)
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
    from taskcache.lifecycle.explain import explain_text, input_values
    from taskcache.lifecycle.runner import get_runner

    task = a.task or ctx.last_task
    if task is None:
        raise ValueError("no %%task cell has run yet in this session; give a task name: "
                         "why NAME")
    runner = get_runner()
    namespace = ctx.shell.user_ns if ctx.shell is not None else None
    return explain_text(runner.catalog, task,
                        input_values(runner.catalog, runner.load_artifact, namespace),
                        load=runner.load_artifact)


# -- gc / verify --------------------------------------------------------------------------
def _gc_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true", help="list what would go, delete nothing")
    p.add_argument("--older-than-days", metavar="DAYS", type=days_argument, default=None)
    p.add_argument("--keep-last", metavar="N", type=count_argument, default=None,
                   help="keep the newest N completed runs of each task")
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
            "frame_format", "max_size")
    lines = [f"{key:22} {getattr(s, key)}" for key in keys]
    return "\n".join([*lines, f"{'quiet':22} {ctx.quiet}"])


# -- flow ---------------------------------------------------------------------------------
def _flow_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = sub.add_parser("run", help="run a flow: hits from the cache, independent steps at once",
                         description="run a flow: hits from the cache, independent steps at once")
    run.add_argument("file", help="flow file, .yaml/.yml or .json")
    run.add_argument("--executor", choices=("threads", "processes", "dask"), default=None,
                     help="where misses run (default: the executor setting)")
    run.add_argument("--max-workers", type=int, default=None)
    run.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="STEP.ARG=VALUE", help="replace an argument, e.g. fit.alpha=0.1")
    run.add_argument("--no-progress", action="store_true")
    show = sub.add_parser("show", help="check a flow and draw it as SVG",
                          description="check a flow and draw it as SVG")
    show.add_argument("file")
    show.add_argument("-o", "--output", help="write the SVG here instead of printing it")


def _flow(a: argparse.Namespace, ctx: Context) -> Any:
    import os
    import sys

    from taskcache.flows import Flow
    from taskcache.flows.spec import parse_overrides

    if os.getcwd() not in sys.path:  # as `python -m`: the flow's modules import from here
        sys.path.insert(0, os.getcwd())
    flow = Flow.load(a.file)  # FlowError (a ValueError): a usage error
    if a.action == "show":
        svg = flow.svg()
        if a.output is None:
            return svg
        with open(a.output, "w", encoding="utf-8") as out:
            out.write(svg)
        return f"taskcache: {a.file}: {len(flow.steps)} steps, drawn to {a.output}"
    if a.overrides:
        flow = flow.with_args(parse_overrides(a.overrides))
    result = flow.run(executor=a.executor, max_workers=a.max_workers,
                      progress=not a.no_progress, show=False if ctx.shell is None else None)
    return result.summary()


# -- browse -------------------------------------------------------------------------------
def _browse_args(p: argparse.ArgumentParser) -> None:
    from taskcache.records import STATUSES

    p.add_argument("--task", default=None)
    p.add_argument("--status", default=None, choices=STATUSES)
    p.add_argument("--tag", default=None)
    p.add_argument("--text", default=None)
    p.add_argument("--page-size", type=positive_argument, default=25)
    p.add_argument("--no-live", action="store_true", help="no periodic refresh")


def _browse(a: argparse.Namespace, ctx: Context) -> Any:
    from taskcache.browser import RunBrowser

    filters = {k: v for k, v in (("task", a.task), ("status", a.status), ("tag", a.tag),
                                 ("text", a.text)) if v is not None}
    return RunBrowser(shell=ctx.shell, page_size=a.page_size, live=not a.no_live, **filters)


# -- serve --------------------------------------------------------------------------------
def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=port_argument, default=8888)
    p.add_argument("--ip", default="127.0.0.1")
    p.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    p.add_argument("--allow-root", action="store_true", help="run as root (e.g. in a container)")


def _serve(a: argparse.Namespace, ctx: Context) -> None:
    """A Jupyter server with the taskcache extension, opening at /taskcache (Jupyter's own
    login: the URL printed carries the token)."""
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
    Command("flow", "run or draw a flow (YAML/JSON)", _flow_args, _flow),
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
